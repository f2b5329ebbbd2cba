import Foundation

/// The seven codes of a RAVDESS file name, e.g. `03-01-05-01-02-01-12.wav`:
/// modality, vocal channel, emotion, intensity, statement, repetition, actor.
///
///     let parsed = RavdessName.parse(fileName: "03-01-05-01-02-01-12.wav")
///     if case .source(let codes) = parsed { print(codes.emotion, codes.clipID) }
public struct RavdessCodes: Codable, Hashable, Sendable {
    public var modality: Int
    public var channel: Int
    public var emotion: Int
    public var intensity: Int
    public var statement: Int
    public var repetition: Int
    public var actor: Int

    public init(modality: Int, channel: Int, emotion: Int, intensity: Int,
                statement: Int, repetition: Int, actor: Int) {
        self.modality = modality; self.channel = channel; self.emotion = emotion
        self.intensity = intensity; self.statement = statement
        self.repetition = repetition; self.actor = actor
    }

    /// The clip: the last six codes. The mp4 and wav sources of one performance share it.
    public var clipID: String {
        [channel, emotion, intensity, statement, repetition, actor]
            .map { String(format: "%02d", $0) }.joined(separator: "-")
    }

    /// The seven codes as a file name spells them, without its extension: `03-01-05-01-02-01-12`.
    public var nameStem: String {
        [modality, channel, emotion, intensity, statement, repetition, actor].map { String(format: "%02d", $0) }.joined(separator: "-")
    }

    public var sourceKind: SourceKind { modality == 3 ? .wav : .mp4 }
    public var isSong: Bool { channel == 2 }
}

public enum SourceKind: String, Codable, Sendable {
    case wav, mp4
}

/// What a file name says about a file.
public enum ParsedName: Equatable, Sendable {
    /// A valid RAVDESS source.
    case source(RavdessCodes)
    /// RAVDESS-shaped (seven two-digit codes, .wav or .mp4) but a code is invalid.
    case invalid(reason: String)
    /// Not a RAVDESS name at all; such files are ignored, not errors.
    case notRavdess(reason: String)
}

public enum RavdessName {
    /// The actors RAVDESS has.
    public static let actorRange = 1...24

    static let modalityNames = [1: "audio-video", 2: "video-only", 3: "audio-only"]

    public static func parse(fileName: String) -> ParsedName {
        // A name, not a path: NSString's path methods drop a trailing "/", so "…-12.wav/" would pass.
        guard !fileName.contains("/") else { return .notRavdess(reason: "a file name has no \"/\" in it") }
        let ext = (fileName as NSString).pathExtension.lowercased()
        guard ext == "wav" || ext == "mp4" else {
            return .notRavdess(reason: ext.isEmpty ? "no file extension" : "extension .\(ext) is not .wav or .mp4")
        }
        let stem = (fileName as NSString).deletingPathExtension
        let parts = stem.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 7, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              case let c = parts.map({ Int($0)! }) else {
            return .notRavdess(reason: "name is not seven two-digit codes (MM-CC-EE-II-SS-RR-AA)")
        }
        let codes = RavdessCodes(modality: c[0], channel: c[1], emotion: c[2], intensity: c[3],
                                 statement: c[4], repetition: c[5], actor: c[6])
        if let problem = validate(codes, extension: ext) { return .invalid(reason: problem) }
        return .source(codes)
    }

    /// The first problem with the codes, in file-name order, or nil when they are valid.
    public static func validate(_ c: RavdessCodes, extension ext: String) -> String? {
        func outOfRange(_ name: String, _ value: Int, _ range: ClosedRange<Int>) -> String? {
            range.contains(value) ? nil
                : String(format: "%@ %02d out of range %02d-%02d", name, value, range.lowerBound, range.upperBound)
        }
        if let p = outOfRange("modality", c.modality, 1...3) { return p }
        let wanted = c.modality == 3 ? "wav" : "mp4"
        if ext != wanted {
            return String(format: "modality %02d (%@) must be a .%@ file, not .%@",
                          c.modality, modalityNames[c.modality]!, wanted, ext)
        }
        if let p = outOfRange("vocal channel", c.channel, 1...2) { return p }
        if let p = outOfRange("emotion", c.emotion, c.channel == 2 ? 1...6 : 1...8) {
            return c.channel == 2 ? p + " for song" : p
        }
        if let p = outOfRange("intensity", c.intensity, 1...2) { return p }
        if c.emotion == 1 && c.intensity == 2 { return "intensity 02 (strong) is not used with emotion 01 (neutral)" }
        if let p = outOfRange("statement", c.statement, 1...2) { return p }
        if let p = outOfRange("repetition", c.repetition, 1...2) { return p }
        if let p = outOfRange("actor", c.actor, actorRange) { return p }
        return nil
    }
}
