import EmoCore
import Foundation

/// A stage's parameters: one value type, its defaults in `init()` (the one place they are spelled),
/// and `validate()` for ranges and rules across fields. Decoded once, strictly, before any stage runs.
public protocol StageParameters: Codable, Equatable, Sendable {
    /// The defaults.
    init()
    /// Throws `InvalidParameter` for an out-of-range value or an inconsistent combination.
    func validate() throws
    /// Keys a pipeline file, manifest or `--set` may give: by default every key the type encodes.
    static var acceptedKeys: Set<String> { get }
    /// Values that mean "not set here" (the audio stage's `preset`): dropped before decoding.
    static func isPlaceholder(_ value: ParamValue) -> Bool
    /// A key whose value sets other keys when decoded (the audio stage's `preset`), or nil.
    static var presetKey: String? { get }
    /// The preset `init()` holds, named as `presetKey` takes it.
    static var defaultPresetName: String? { get }
    /// Keys that change how the work is done, never what it produces (the faces stage's decoder threads):
    /// fingerprints hash them at their defaults, so setting one reuses the cached work.
    static var executionOnlyKeys: Set<String> { get }
    /// Keys these values leave unread (the faces stage's landmark model without `align`): hashed at their
    /// defaults too, so a value nothing reads recomputes nothing.
    var unreadKeys: Set<String> { get }
    /// Keys whose values are file paths: a relative one is read from the folder of the file that gave it
    /// (the pipeline file or manifest), or from the current folder when `--set` gave it.
    static var pathKeys: Set<String> { get }
    /// Path keys whose file's content the stage's output depends on (a model it loads): the stage's
    /// fingerprint takes the file's SHA-256, so editing it in place recomputes the stage.
    static var contentKeys: Set<String> { get }
}

public extension StageParameters {
    static var acceptedKeys: Set<String> { Set(DefaultParameters.encoded(Self.self).keys) }
    static func isPlaceholder(_ value: ParamValue) -> Bool { false }
    static var presetKey: String? { nil }
    static var defaultPresetName: String? { nil }
    static var executionOnlyKeys: Set<String> { [] }
    var unreadKeys: Set<String> { [] }
    static var pathKeys: Set<String> { [] }
    static var contentKeys: Set<String> { [] }

    /// The canonical form: every field, as the fingerprint hashes it and provenance records it.
    var encoded: [String: ParamValue] {
        // Encoding a value type of our own cannot fail; an empty object would show in every fingerprint.
        // Our own text, however long a value given made it: not held to what is read back from records.
        (try? ParamValue.fromJSON(JSONEncoder().encode(self), atMost: .max).objectValue) ?? [:]
    }
}

/// Each parameter type's defaults in canonical form, encoded once per process: a sweep resolves every
/// stage of each of its trials (up to 10,000) before the first runs, and an encode each time took most of that.
public enum DefaultParameters {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var known: [ObjectIdentifier: [String: ParamValue]] = [:]

    public static func encoded<P: StageParameters>(_ type: P.Type) -> [String: ParamValue] {
        lock.lock()
        defer { lock.unlock() }
        if let defaults = known[ObjectIdentifier(type)] { return defaults }
        let defaults = P().encoded
        known[ObjectIdentifier(type)] = defaults
        return defaults
    }
}

/// A stage without parameters.
public struct NoParameters: StageParameters {
    public init() {}
    public func validate() throws {}
}

/// Where a parameter's value came from, for messages and `emopipe params`.
public enum ParameterOrigin: Equatable, Sendable {
    case defaultValue
    case pipeline(path: String)
    case manifest(path: String)
    case commandLine
    /// A sweep trial's value, from the `sweep:` block of the manifest at `path`.
    case sweep(path: String)

    /// The file to name in an error, or how the value was given.
    public var place: String {
        switch self {
        case .defaultValue: return "the built-in defaults"
        case .pipeline(let path), .manifest(let path): return path
        case .commandLine: return "--set"
        case .sweep: return "the sweep block"
        }
    }

    var isPipeline: Bool { if case .pipeline = self { return true } else { return false } }

    /// Set by the manifest or `--set`, not by the defaults or the pipeline file that documents them.
    public var givenByTheUser: Bool {
        switch self {
        case .manifest, .commandLine, .sweep: return true
        case .defaultValue, .pipeline: return false
        }
    }

    public var label: String {
        switch self {
        case .defaultValue: return "default"
        case .pipeline: return "pipeline"
        case .manifest: return "manifest"
        case .commandLine: return "command line"
        case .sweep: return "sweep"
        }
    }
}

/// One `--set stage.key=value` override from the command line; the value is read as YAML
/// (`--set train.audio_channels=[8,16]`, `--set audio.fmax=null`).
public struct ParameterOverride: Equatable, Sendable {
    public var stage: String
    public var key: String
    public var value: ParamValue
    /// Given on the command line, or set by a sweep trial (recorded alike, named apart in messages).
    public var bySweep = false

    public init(stage: String, key: String, value: ParamValue, bySweep: Bool = false) {
        self.stage = stage; self.key = key; self.value = value; self.bySweep = bySweep
    }

    public init(parsing text: String) throws {
        guard let equals = text.firstIndex(of: "=") else {
            throw PipelineError.invalidFile("--set \(text.echoed): expected stage.key=value")
        }
        let path = text[..<equals], valueText = String(text[text.index(after: equals)...])
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty }) else {
            throw PipelineError.invalidFile("--set \(text.echoed): expected stage.key=value (e.g. train.epochs=10)")
        }
        // `train.epochs =3` would otherwise be refused as an unknown key whose trailing space no message shows.
        guard !path.contains(where: \.isWhitespace) else {
            let trimmed = parts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            // Suggested only when trimming leaves a name: `train.audio channels` has no spelling to suggest.
            let suggestion = trimmed.allSatisfy { !$0.isEmpty && !$0.contains(where: \.isWhitespace) }
                ? "write \(trimmed.joined(separator: ".").echoed)=value with no space around '.' or before '='" : "stage and key names hold none"
            throw PipelineError.invalidFile("--set \(text.echoed): the name '\(String(path).echoed)' holds a space; " + suggestion)
        }
        stage = String(parts[0]); key = String(parts[1])
        // YAML reads nothing as null; after `=` that is far more often an empty shell variable than a wish.
        guard !valueText.allSatisfy(\.isWhitespace) else {
            throw PipelineError.invalidFile("--set \(text.echoed): no value after '=' (an empty shell variable?); "
                                            + "write \(String(path).echoed)=null for none, or \"\(String(path).echoed)=''\" (quoted for the shell) for an empty string")
        }
        do { value = try SafeYAML.value(valueText, origin: "--set \(String(path).echoed)") } catch {
            // SafeYAML's message already starts with the origin, `--set stage.key`, and echoes what it quotes: cut
            // again, an escape it holds could be cut in half.
            throw PipelineError.invalidFile(String(describing: error).escaped)
        }
    }
}

extension ResolvedParameters {
    /// The SHA-256 of the file each read content key names (`StageParameters.contentKeys`), by key; a file
    /// that cannot be read is marked so (the stage that loads it says why when it runs).
    public func contentDigests() -> [String: String] {
        let keys = type(of: value).contentKeys.subtracting(value.unreadKeys)
        return Dictionary(uniqueKeysWithValues: keys.compactMap { key -> (String, String)? in
            guard let path = encoded[key]?.stringValue, !path.isEmpty else { return nil }
            return (key, ContentDigests.shared.digest(path) ?? Self.unreadableFile + path)
        })
    }

    /// What `contentDigests` holds for a file it cannot read, followed by its path.
    public static let unreadableFile = "unreadable: "
}

/// Files' SHA-256 kept by path and `stat` state for the process: every runner resolves its parameters,
/// and a sweep makes one per trial and budget, each naming the same landmark model of some 100 MB.
final class ContentDigests: @unchecked Sendable {
    static let shared = ContentDigests()
    private let lock = NSLock()
    private var known: [String: (state: FileState, digest: String)] = [:]

    /// The file's SHA-256, hashed again only when its state moved; nil when it cannot be read as a file.
    func digest(_ path: String) -> String? {
        guard let state = FileState(path) else { return nil }
        lock.lock()
        if let kept = known[path], kept.state == state { lock.unlock(); return kept.digest }
        lock.unlock()
        guard let digest = try? SHA256Hex.file(atPath: path).hex else { return nil }
        lock.lock(); known[path] = (state, digest); lock.unlock()
        return digest
    }
}

/// A stage's parameters after defaults, pipeline file, manifest and command line were laid over each
/// other, decoded and validated.
public struct ResolvedParameters: @unchecked Sendable {
    public var stage: String
    /// The typed value the stage receives.
    public var value: any StageParameters
    /// Its canonical encoding.
    public var encoded: [String: ParamValue]
    /// `encoded` with its execution-only keys at their defaults: what fingerprints hash.
    public var fingerprinted: [String: ParamValue]
    /// Whether `key`'s value reaches the fingerprint: neither execution-only nor left unread by the other values.
    /// A preset does through the values it sets (it is not among `encoded` itself).
    public func fingerprints(_ key: String) -> Bool {
        if key == preset?.key { return true }
        return encoded[key] != nil && !type(of: value).executionOnlyKeys.contains(key) && !value.unreadKeys.contains(key)
    }
    /// Where each key's value came from.
    public var origins: [String: ParameterOrigin]
    /// The preset the values start from, for stages that have one; not part of `encoded`, which
    /// holds every value the preset set (so naming a preset's own values changes no fingerprint).
    public var preset: PresetChoice?
}

public struct PresetChoice: Sendable {
    public var key: String
    public var name: ParamValue
    public var origin: ParameterOrigin
}

/// Lays the layers over each other for one stage and decodes the result strictly.
public enum ParameterResolver {
    public struct Layer {
        public var origin: ParameterOrigin
        public var values: [String: ParamValue]
        public init(origin: ParameterOrigin, values: [String: ParamValue]) { self.origin = origin; self.values = values }
    }

    /// A relative path made absolute against the folder of the file that gave it (the current folder for `--set`).
    static func anchored(_ value: ParamValue, from origin: ParameterOrigin) -> ParamValue {
        guard case .string(let given) = value, !given.isEmpty else { return value }
        let path = PathText.withHome(given)
        // Absolute, tidied all the same: two spellings of one file are one setting.
        if path.hasPrefix("/") { return .string(ResolvedPath.tidied(path)) }
        let folder: String
        switch origin {
        case .pipeline(let file), .manifest(let file), .sweep(let file):
            folder = (URL(fileURLWithPath: file).deletingLastPathComponent().path)
        case .commandLine, .defaultValue:
            folder = FileManager.default.currentDirectoryPath
        }
        return .string(ResolvedPath.tidied(folder + "/" + path))
    }

    public static func resolve<P: StageParameters>(_ type: P.Type, stage: String, layers: [Layer]) throws -> ResolvedParameters {
        var merged: [String: ParamValue] = [:]
        let defaults = DefaultParameters.encoded(P.self), accepted = P.acceptedKeys
        var origins = Dictionary(uniqueKeysWithValues: defaults.keys.map { ($0, ParameterOrigin.defaultValue) })
        for layer in layers {
            // Sorted, so the same file names the same unknown key every time (a dictionary's order changes per process).
            let unknown = layer.values.keys.filter { !accepted.contains($0) }.sorted()
            if let first = unknown.first, let value = layer.values[first] {
                let others = unknown.count > 1 ? " (nor \(unknown.count == 2 ? "is" : "are") \(unknown.dropFirst().prefix(5).map(\.shownKey).joined(separator: ", "))"
                    + (unknown.count > 6 ? " and \(unknown.count - 6) more" : "") + ")" : ""
                // `params` lists the manifest-wide settings a stage reads beside its own: said where they are set.
                let global = Manifest.globalNames.contains(first)
                    ? "; it is the manifest's own `\(Manifest.fileKey(ofGlobal: first)):` (a top-level key, one value for every stage that reads it)" : ""
                throw PipelineError.invalidParameter(
                    file: layer.origin.place, key: "\(stage).\(first.shownKey)", value: value.shown,
                    allowed: accepted.isEmpty ? "\(stage) takes no parameters\(global)"
                        : "not a parameter of \(stage)\(NearestName.among(accepted, to: first).map { " (did you mean \($0)?)" } ?? "")\(others)\(global); "
                        + "known: \(accepted.sorted().joined(separator: ", "))")
            }
            for (key, value) in layer.values {
                // URL and C calls would read a NUL as "%00" or as the path's end: a file nobody named.
                if P.pathKeys.contains(key), case .string(let path) = value, path.utf8.contains(0) {
                    throw PipelineError.invalidParameter(file: layer.origin.place, key: "\(stage).\(key.shownKey)", value: value.shown,
                                                         allowed: "a file path, and the path holds a NUL byte, which no file name can")
                }
                // (The preset itself cannot be left to the preset: `preset: preset` is refused as no preset's name.)
                if key != P.presetKey, P.isPlaceholder(value) {
                    merged[key] = nil
                    continue
                }
                merged[key] = P.pathKeys.contains(key) ? anchored(value, from: layer.origin) : value
                origins[key] = layer.origin
            }
        }
        let value: P
        do {
            value = try ParamValueDecoder.decode(P.self, from: .object(merged))
            try value.validate()
        } catch let problem as InvalidParameter {
            let top = String(problem.key.split(separator: ".").first ?? "")
            // A value no layer gave comes from the preset when one was named that sets it (`preset: reference` sets win_length).
            let presetValues = P.presetKey.flatMap { key in merged[key].flatMap { try? ParamValueDecoder.decode(P.self, from: .object([key: $0])).encoded } }
            func place(_ key: String) -> String {
                let origin = origins[key] ?? .defaultValue
                guard origin == .defaultValue, let presetKey = P.presetKey, let presetOrigin = origins[presetKey],
                      presetOrigin != .defaultValue, let name = merged[presetKey], presetValues?[key] != defaults[key] else { return origin.place }
                return "the \(name.shown) preset (\(presetOrigin.place))"
            }
            let originPlace = place(top)
            var allowed = problem.allowed
            // The keys the rule ties this one to, grouped by where their values came from when elsewhere.
            var places: [String] = []
            var keysByPlace: [String: [String]] = [:]
            for bound in problem.bounds {
                let place = place(bound)
                guard place != originPlace else { continue }
                if keysByPlace[place] == nil { places.append(place) }
                keysByPlace[place, default: []].append("\(stage).\(bound)")
            }
            for place in places {
                let keys = keysByPlace[place] ?? []
                allowed += "; \(keys.joined(separator: ", ")) \(keys.count == 1 ? "is" : "are") from \(place)"
            }
            // A value given on the command line that makes a file's (or a default) out of bounds: the way out is beside it.
            let topGivenBeside: Bool = { if case .sweep = origins[top] { return true }; return origins[top] == .commandLine }()
            if !topGivenBeside, problem.bounds.contains(where: { origins[$0] == .commandLine }) {
                allowed += " (give `--set \(stage).\(top.shownKey)=…` beside it)"
            }
            throw PipelineError.invalidParameter(file: originPlace, key: "\(stage).\(problem.key)", value: problem.value,
                                                 allowed: allowed)
        }
        // The pipeline file documents the defaults: a value it repeats is still "the default".
        let encoded = value.encoded
        // (The preset is not among the values: it is the default when it names the default preset.)
        func isDefault(_ key: String) -> Bool {
            key == P.presetKey ? merged[key] == P.defaultPresetName.map(ParamValue.string) : encoded[key] == defaults[key]
        }
        for (key, origin) in origins where origin.isPipeline && isDefault(key) { origins[key] = .defaultValue }
        // A value no layer gave that differs from the default was set by the preset: it comes from where the preset was named.
        if let presetKey = P.presetKey, let presetOrigin = origins[presetKey] {
            for (key, origin) in origins where origin == .defaultValue && encoded[key] != defaults[key] { origins[key] = presetOrigin }
        }
        let preset = P.presetKey.map { key in
            PresetChoice(key: key, name: merged[key] ?? P.defaultPresetName.map(ParamValue.string) ?? .null,
                         origin: origins[key] ?? .defaultValue)
        }
        var fingerprinted = encoded
        for key in P.executionOnlyKeys.union(value.unreadKeys) { fingerprinted[key] = defaults[key] }
        return ResolvedParameters(stage: stage, value: value, encoded: encoded, fingerprinted: fingerprinted, origins: origins, preset: preset)
    }
}
