// `name`: RavdessName.parse on random strings built from digit groups, separators, extensions and
// awkward Unicode. Every string gets a ParsedName; a valid one must survive a round trip.
import EmoCore
import Foundation

final class NameTarget: FuzzTarget {
    let name = "name"

    static let seedNames = [
        "03-01-05-01-02-01-12.wav", "01-01-01-01-01-01-01.mp4", "02-02-06-02-02-02-24.MP4",
        "03-02-03-02-01-02-07.Wav", "03-01-09-01-01-01-01.wav", "03-01-01-02-01-01-01.wav",
        "01-01-05-01-02-01-12.wav", "03-01-05-01-02-01-25.wav", "03-01-05-01-02-01-12.flac",
        "03-01-05-01-02-01.wav", "README.md", "01-01-07-02-02-01-01_1.mp4",
    ]

    /// Digit groups: mostly two ASCII digits, sometimes one or three, or digits from other scripts,
    /// or digits carrying combining marks (one Character, not ASCII).
    static let foreignDigits = ["٠٣", "０３", "²", "𝟘𝟙", "०१", "1\u{0301}", "0\u{20DD}", "1\u{FE0F}\u{20E3}", "Ⅻ", "½"]
    static let separators = ["-", "-", "-", "-", "_", "–", "—", "", "--", " ", "-\u{0301}", "\u{200B}-", "\u{00AD}", "\r\n", "/"]
    static let extensions = [".wav", ".mp4", ".WAV", ".Mp4", ".wAv", ".wav ", " .wav", ".flac", "", ".", ".wav.mp4",
                             ".mp4.wav", ".wav\u{0}", ".w\u{0430}v", ".wav/", "..wav", ".wav\n", ".mp4\u{0301}", ".ＷＡＶ",
                             ".wav.", ".tar.gz", ".m4a"]
    static let suffixes = ["/", "//", "/.", ".", " ", "\n", "\u{0}", "~", "\u{0301}", ":", "\\"]
    static let prefixes = ["", "", "", "", "Actor_01/", "/", "./", "~", " ", "\u{FEFF}", "\u{202E}", "..", "\u{0}"]
    static let junk = ["é", "e\u{0301}", "🙂", "👩‍👩‍👧", "\u{FFFD}", "\t", "\n", "\\", ":", "%02d", "%@", "%s%n", ".", "-", "0", "99",
                       "\u{1F1FA}\u{1F1F8}", "ß", "İ", "ﬀ", "\u{D7FF}", "\u{E000}", "𐐷", "\u{0}"]

    var seedCount: Int { Self.seedNames.count }

    func seed(_ index: Int) -> FuzzInput { FuzzInput(bytes: Array(Self.seedNames[index].utf8), fileExtension: "txt") }

    func generate(_ rng: inout FuzzRandom) -> FuzzInput {
        let text: String
        switch rng.below(5) {
        case 0: text = validName(&rng)
        case 1: text = grouped(&rng)
        case 2: text = characterEdits(validName(&rng), &rng)
        case 3: text = (0..<(1 + rng.below(12))).map { _ in rng.chance(0.5) ? rng.pick(Self.junk) : digits(&rng) }.joined()
        default:  // byte-level mutation of a seed; invalid UTF-8 is repaired by String(decoding:)
            var bytes = Array(rng.pick(Self.seedNames).utf8)
            Mutator.mutate(&bytes, rng: &rng, other: Array(rng.pick(Self.seedNames).utf8), maxSize: 256)
            text = String(decoding: bytes, as: UTF8.self)
        }
        return FuzzInput(bytes: Array(text.utf8), fileExtension: "txt")
    }

    private func digits(_ rng: inout FuzzRandom) -> String {
        switch rng.below(10) {
        case 0: return String(rng.below(10))
        case 1: return String(format: "%03d", rng.below(1000))
        case 2: return rng.pick(Self.foreignDigits)
        default: return String(format: "%02d", rng.below(rng.chance(0.8) ? 30 : 100))
        }
    }

    private func validName(_ rng: inout FuzzRandom) -> String {
        let modality = 1 + rng.below(3), channel = 1 + rng.below(2)
        let emotion = 1 + rng.below(channel == 2 ? 6 : 8)
        let intensity = emotion == 1 ? 1 : 1 + rng.below(2)
        let codes = [modality, channel, emotion, intensity, 1 + rng.below(2), 1 + rng.below(2), 1 + rng.below(24)]
        let ext = modality == 3 ? (rng.chance(0.9) ? ".wav" : ".WAV") : (rng.chance(0.9) ? ".mp4" : ".MP4")
        return codes.map { String(format: "%02d", $0) }.joined(separator: "-") + ext
    }

    private func grouped(_ rng: inout FuzzRandom) -> String {
        let groups = rng.chance(0.7) ? 7 : rng.below(10)
        var text = rng.pick(Self.prefixes)
        for i in 0..<groups {
            if i > 0 { text += rng.chance(0.85) ? "-" : rng.pick(Self.separators) }
            text += digits(&rng)
        }
        return text + rng.pick(Self.extensions)
    }

    private func characterEdits(_ name: String, _ rng: inout FuzzRandom) -> String {
        var chars = Array(name)
        for _ in 0..<rng.stackDepth(max: 4) {
            let at = rng.below(chars.count + 1)
            switch rng.below(6) {
            case 0: chars.insert(contentsOf: rng.pick(Self.junk), at: at)
            case 1: if at < chars.count { chars.remove(at: at) }
            case 2: if at < chars.count, let c = rng.pick(Self.foreignDigits + Self.junk).first { chars[at] = c }
            case 3: chars.insert(contentsOf: rng.pick(Self.prefixes), at: 0)
            case 4: chars += rng.chance(0.5) ? rng.pick(Self.extensions) : rng.pick(Self.suffixes)
            default:  // swap a separator, or drop it
                let separator = rng.pick(Self.separators)
                guard let dash = chars.indices.filter({ chars[$0] == "-" }).randomElement(using: &rng) else { break }
                chars.replaceSubrange(dash...dash, with: Array(separator))
            }
        }
        return String(chars)
    }

    /// The canonical spelling of a set of codes.
    static func canonical(_ c: RavdessCodes, ext: String) -> String { c.nameStem + "." + ext }

    func execute(_ input: FuzzInput) -> Outcome {
        let text = String(decoding: input.bytes, as: UTF8.self)
        switch RavdessName.parse(fileName: text) {
        case .source(let codes):
            let ext = codes.sourceKind.rawValue
            if let problem = RavdessName.validate(codes, extension: ext) {
                return .failure("accepted \(text.debugDescription) but validate says: \(problem)")
            }
            let canonical = Self.canonical(codes, ext: ext)
            guard RavdessName.parse(fileName: canonical) == .source(codes) else {
                return .failure("\(text.debugDescription) parsed to \(codes), but its canonical name \(canonical) does not")
            }
            // Accepted names are exactly the canonical ones, up to the extension's case.
            let stem = String(canonical.dropLast(ext.count))
            guard text.hasPrefix(stem), text.dropFirst(stem.count).lowercased() == ext else {
                return .failure("accepted \(text.debugDescription), which is not the canonical \(canonical)")
            }
            guard codes.clipID == String(stem.dropFirst(3).dropLast()) else {
                return .failure("clip id \(codes.clipID) of \(canonical) is not its last six codes")
            }
            if let broken = checkValidateExtremes(codes, ext: ext, seed: fnv1a(input.bytes)) { return .failure(broken) }
            return .accepted(codes.isSong ? "source (song)" : "source (speech)")
        case .invalid(let reason):
            guard !reason.isEmpty else { return .failure("invalid \(text.debugDescription) with an empty reason") }
            let ext = (text as NSString).pathExtension.lowercased()
            guard ext == "wav" || ext == "mp4" else {
                return .failure("\(text.debugDescription) called an invalid RAVDESS name, but its extension is .\(ext)")
            }
            return .rejected("invalid: " + normalised(reason))
        case .notRavdess(let reason):
            guard !reason.isEmpty else { return .failure("\(text.debugDescription) ignored with an empty reason") }
            // The reason quotes the extension; fold it so that one check counts once.
            let folded = reason.hasPrefix("extension .") ? "extension .EXT is not .wav or .mp4" : reason
            return .rejected("notRavdess: " + normalised(folded))
        }
    }

    /// `validate` is public: out-of-range codes of any size (negative, huge) must give a reason, not a trap.
    private func checkValidateExtremes(_ codes: RavdessCodes, ext: String, seed: UInt64) -> String? {
        let extremes = [Int.min, -1, 0, 3, 25, 100, Int(Int32.max) + 1, Int.max]
        var changed = codes
        let value = extremes[Int(seed % UInt64(extremes.count))]
        switch Int((seed >> 8) % 7) {
        case 0: changed.modality = value
        case 1: changed.channel = value
        case 2: changed.emotion = value
        case 3: changed.intensity = value
        case 4: changed.statement = value
        case 5: changed.repetition = value
        default: changed.actor = value
        }
        // A valid set of codes has a canonical name that parses back to it; an invalid one needs a reason.
        guard RavdessName.validate(changed, extension: ext) == nil else { _ = changed.clipID; return nil }
        if RavdessName.parse(fileName: Self.canonical(changed, ext: ext)) != .source(changed) {
            return "validate accepts \(changed) for .\(ext), but parse rejects its canonical name"
        }
        return nil
    }
}
