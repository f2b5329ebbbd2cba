@testable import EmoPipeline
import Testing

/// The hint for a key longer than libyaml reads is found in one pass over a line, and finds what the pattern
/// `[^\s:{}\[\],]{N+1,}\s*:` finds: checked against that regex on many short lines (where its backtracking is cheap).
@Suite("the overlong-key hint")
struct OverlongKeyHintTests {
    @Test func oneScanFindsWhatThePatternFinds() throws {
        let pattern = try Regex(#"[^\s:{}\[\],]{6,}\s*:"#)
        let pieces = ["a", "b", "é", "k1", " ", "\t", ":", "{", "}", "[", "]", ",", "#", "-", "aaaaaa", "aaaaa", "  :"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {   // SplitMix64: the same lines on every run
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
        var found = 0
        for _ in 0..<5000 {
            let line = (0..<(1 + next(12))).map { _ in pieces[next(pieces.count)] }.joined()
            let expected = line.contains(pattern)
            found += expected ? 1 : 0
            #expect(SafeYAML.holdsKey(longerThan: 5, Substring(line)) == expected, "\(line.debugDescription)")
        }
        #expect(found > 100, "the lines reach both answers: \(found) of 5000 hold such a key")
    }

    @Test func aLongLineWithoutAKeyIsReadOnce() {
        let comment = Substring("# " + String(repeating: "a", count: 200_000))
        #expect(!SafeYAML.holdsKey(longerThan: 1024, comment))
        #expect(SafeYAML.holdsKey(longerThan: 1024, comment + "  :"))
    }
}
