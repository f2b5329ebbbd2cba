/// The known name a mistyped one most likely meant (`epoch` for `epochs`, `trian` for `train`), for a
/// "did you mean" in a message; nil when none is close. Close is an edit distance (insertions, deletions,
/// substitutions, and two neighbours swapped) of at most a third of the longer name, and 1 at least: a
/// short name says too little to guess from.
public enum NearestName {
    public static func among(_ known: some Sequence<String>, to given: String) -> String? {
        let typed = Array(given.lowercased().utf8)
        // Names past this are no typo of a parameter's: comparing them would only cost time.
        guard !typed.isEmpty, typed.count <= 64 else { return nil }
        var best: (name: String, distance: Int)?
        for name in known.sorted() {
            let candidate = Array(name.lowercased().utf8)
            let allowed = max(1, max(candidate.count, typed.count) / 3)
            let distance = Self.distance(typed, candidate)
            guard distance <= allowed, distance < (best?.distance ?? Int.max) else { continue }
            best = (name, distance)
        }
        return best?.name
    }

    /// Optimal string alignment distance: Levenshtein's, with a swap of two neighbours counted as one edit.
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { current[j] = min(current[j], previous2[j - 2] + 1) }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
