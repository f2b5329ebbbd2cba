import EmoCore
import Foundation
import Yams

/// An experiment manifest (`manifests/*.yaml`): which pipeline, which data, which labels, seed,
/// thread count and parameter overrides. Relative paths are resolved against the manifest's folder,
/// so a manifest means the same thing from any working directory.
///
///     pipeline: ../pipelines/ravdess.yaml
///     data: ../demo-data
///     label_map: ravdess8
///     seed: 7
///     params:
///       audio: {preset: reference}
public struct Manifest: Equatable, Sendable {
    public var name: String
    public var path: String
    public var pipelinePath: String
    public var dataRoot: String
    public var labelMap: String
    public var includeSong: Bool
    public var seed: Int
    public var threads: Int
    /// `--threads` when it changed `threads` from what the file gives: not in the recorded text, so
    /// what must key anything the text keys (a sweep's state).
    public var threadsOverride: Int?
    /// Per-stage parameter overrides: stage name → parameters.
    public var overrides: [String: [String: ParamValue]]
    /// The file's own text, recorded with every run.
    public var text: String
    /// How far a watched metric may fall from one nightly run to the next before `nightly` exits 4.
    public var nightly = NightlySettings()
    /// How many scale-out workers a Kubernetes Indexed Job starts (its index comes from the environment).
    public var workers: Int?
    /// The `resources:` block: a memory budget.
    public var resources = ResourceSettings()
    /// `--set stage.key=value` overrides given with the manifest, laid over its `params`.
    public var commandLine: [ParameterOverride] = []
    /// The `sweep:` block `emopipe sweep` reads (`emopipe run` ignores it and runs the base settings).
    public var sweep: SweepSpec?
    /// The keys of `globals` the file gives (the others are defaults).
    public var givenGlobals: Set<String> = []

    public static let commandLineMarker = "# emopipe --set overrides, laid over this manifest's params:"

    /// What a run records as its manifest: the file's text, and the command line's overrides as
    /// comments that `parse` reads back as part of the manifest (so `reproduce`, and a run of a copy
    /// of the file, apply them too).
    public var recordedText: String {
        guard !commandLine.isEmpty else { return text }
        let lines = commandLine.map { "# --set \($0.stage).\($0.key)=\($0.value.canonicalJSON)" }
        return text + (text.hasSuffix("\n") ? "" : "\n") + ([Self.commandLineMarker] + lines).joined(separator: "\n") + "\n"
    }

    /// The overrides a recorded manifest text carries (see `recordedText`): the file's last lines, the
    /// marker and then only `# --set` lines, as `recordedText` writes them. Those lines are honoured only
    /// when they are comments: a quoted value that holds them (`description: "…\n# --set …"`) would
    /// otherwise set parameters its text merely mentions.
    public static func recordedOverrides(in text: String) throws -> [ParameterOverride] {
        guard let block = overrideBlock(in: text) else { return [] }
        // Cut where a quoted value holds the lines, the text before them is no longer valid YAML.
        guard let before = try? document(String(block.before)), try before == document(text) else { return [] }
        return try block.lines.map { try ParameterOverride(parsing: String($0.dropFirst("# --set ".count))) }
    }

    /// The text before the trailing override blocks (a recorded manifest run again with `--set` has
    /// two), and their `# --set` lines in order. The blocks lie in the file's trailing comments, which
    /// may also hold blank lines and other comments; the text before them is kept byte for byte (a
    /// final `|` block's last line break is part of its value). Lines may end in LF or CRLF.
    private static func overrideBlock(in text: String) -> (before: Substring, lines: [Substring])? {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        var start = lines.endIndex
        while start > lines.startIndex {
            let line = lines[start - 1]
            guard line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") else { break }
            start -= 1
        }
        guard let marker = lines[start...].firstIndex(where: { $0 == commandLineMarker }) else { return nil }
        return (text[..<lines[marker].startIndex], lines[(marker + 1)...].filter { $0.hasPrefix("# --set ") })
    }

    private static func document(_ text: String) throws -> ParamValue? {
        try SafeYAML.compose(text, origin: "the manifest").map { try ParamValue(yaml: $0, origin: nil) }
    }

    static let knownKeys: Set<String> = ["name", "pipeline", "data", "label_map", "include_song", "seed",
                                         "threads", "params", "description", "nightly", "workers", "sweep",
                                         "resources"]

    public static let maxThreads = 256

    public static func load(path: String) throws -> Manifest {
        try parse(yaml: try SafeYAML.read(path: path, what: "manifest"), path: path)
    }

    public static func parse(yaml text: String, path: String) throws -> Manifest {
        // Named as every later refusal of its values names it (ParameterOrigin), however it was given: the
        // file that was read (a `..` after a linked folder is the filesystem's), its control characters spelt out.
        let absolute = ResolvedPath.tidied(path)
        let shown = absolute.shownPath
        func fail(_ why: String) -> PipelineError { .invalidFile("\(shown): \(why)") }
        guard let node = try SafeYAML.compose(text, origin: shown), case .object(let fields) = try ParamValue(yaml: node, origin: shown) else {
            throw fail("expected a mapping of manifest fields")
        }
        if let unknown = fields.keys.sorted().first(where: { !knownKeys.contains($0) }) {
            throw fail("unknown field '\(unknown.shownKey)' (known: \(knownKeys.sorted().joined(separator: ", ")))")
        }
        let folder = PathText.folder(of: path)
        func resolve(_ relative: String) -> String {
            let joined = relative.hasPrefix("/") ? relative : (folder.isEmpty ? relative : folder + "/" + relative)
            return ResolvedPath.tidied(joined)
        }
        func string(_ key: String, default value: String) throws -> String {
            guard let field = fields[key] else { return value }
            guard let s = field.stringValue else { throw fail("\(key) = \(field.shown): expected a string, got \(field.kindDescription)") }
            return s
        }
        // An empty path would stand for the manifest's own folder.
        func filePath(_ key: String, default value: String) throws -> String {
            let text = try string(key, default: value)
            guard !text.isEmpty else { throw fail("\(key) = \"\": expected a path, got an empty one") }
            // URL(fileURLWithPath:) would make the NUL "%00", a path the manifest never named (and C calls would stop at it).
            guard !text.utf8.contains(0) else { throw fail("\(key) = \(text.echoed): the path holds a NUL byte, which no file name can") }
            guard text.utf8.count < PATH_MAX else {
                throw fail("\(key) = \(text.echoed): a path of \(text.utf8.count) bytes is longer than a path can be (\(PATH_MAX))")
            }
            return PathText.withHome(text)
        }
        func int(_ key: String, default value: Int) throws -> Int {
            guard let field = fields[key] else { return value }
            guard let i = field.intValue else { throw fail("\(key) = \(field.shown): expected an integer, got \(field.kindDescription)") }
            return i
        }
        var overrides: [String: [String: ParamValue]] = [:]
        if let params = fields["params"] {
            guard let stages = params.objectValue else { throw fail("'params' must map stage names to parameters") }
            for (stage, value) in stages {
                if let dot = stage.firstIndex(of: "."), dot != stage.startIndex {
                    // The form --set takes; a manifest nests it.
                    let (name, key) = (stage[..<dot], stage[stage.index(after: dot)...])
                    throw fail("params.\(stage.shownKey): a dotted key is --set's form; in a manifest nest it: "
                               + "params: {\(String(name).shownKey): {\(String(key).shownKey): …}}")
                }
                guard let object = value.objectValue else { throw fail("params.\(stage.shownKey) must be a mapping") }
                overrides[stage] = object
            }
        }
        // A run's recorded manifest (`recordedText`) carries its --set overrides as comments: they are
        // part of what the file means, so running a copy of it trains what the run trained, and
        // `reproduce` of that second run agrees with it.
        let recorded: [ParameterOverride]
        do { recorded = try recordedOverrides(in: text) } catch { throw fail("a recorded --set line: \(error)") }
        for override in recorded {
            overrides[override.stage] = ParamValue.merge(overrides[override.stage] ?? [:], [override.key: override.value])
        }
        let labelMap = try string("label_map", default: "ravdess8")
        do { _ = try LabelMap(named: labelMap) } catch { throw fail("\(error)") }
        let threads = try int("threads", default: ProcessInfo.processInfo.activeProcessorCount)
        guard (1...Self.maxThreads).contains(threads) else { throw fail("threads = \(threads): expected an integer from 1 to \(Self.maxThreads)") }
        if let song = fields["include_song"], song.boolValue == nil {
            // YAML 1.2 reads yes/no/on/off as text: say so, as a user of YAML 1.1 would expect them to work.
            throw fail("include_song = \(song.shown): expected true or false, got \(song.kindDescription)")
        }
        // Free text (or empty), but text: a mapping there is a misplaced block.
        if let description = fields["description"], description != .null { _ = try string("description", default: "") }
        let seed = try int("seed", default: 0)
        guard seed >= 0 else { throw fail("seed = \(seed): expected an integer from 0 to \(Int.max)") }
        let nightly = try NightlySettings(fields["nightly"], fail: fail)
        let resources = try ResourceSettings(fields["resources"], fail: fail)
        // Read as threads is: 1e9 is the integer it names, said as one.
        let workers = try fields["workers"].map { _ in try int("workers", default: 1) }
        if let workers, !(1...WorkerSlice.maximumCount).contains(workers) {
            throw fail("workers = \(workers): expected an integer from 1 to \(WorkerSlice.maximumCount)")
        }
        let name = try string("name", default: ((path as NSString).lastPathComponent as NSString).deletingPathExtension)
        // Printed raw in tables and logs: an escape sequence there would steer the terminal, a newline split a row.
        // Line and paragraph separators break a line too; bidirectional overrides (U+202E) reorder what
        // follows. (Other format characters are text: U+200C in Persian words, U+200D in emoji.)
        let breaking: Set<Unicode.GeneralCategory> = [.control, .lineSeparator, .paragraphSeparator]
        let reordering: Set<UInt32> = Set(0x202A...0x202E).union(0x2066...0x2069)
        func unprintable(_ scalar: Unicode.Scalar) -> Bool { breaking.contains(scalar.properties.generalCategory) || reordering.contains(scalar.value) }
        if name.unicodeScalars.contains(where: unprintable) {
            let shown = name.unicodeScalars.map { unprintable($0) ? String(format: "\\u{%04X}", $0.value) : String($0) }.joined()
            let given = fields["name"] == nil ? " (taken from the file's name, as none is given: add a `name:`)" : ""
            throw fail("name = \"\(shown)\"\(given): a name is one line of text; control characters (newlines, escapes), line separators "
                       + "and bidirectional overrides (U+202A-U+202E, U+2066-U+2069) are not allowed")
        }
        // Invisible alone too: zero-width spaces and joiners, a byte-order mark.
        if name.unicodeScalars.allSatisfy({ $0.properties.isWhitespace || $0.properties.isDefaultIgnorableCodePoint }) {
            throw fail("name = \(name.echoed): a name is needed (runs and sweeps list it); leave the key out for the file's name")
        }
        var manifest = Manifest(
            name: name,
            path: absolute,
            pipelinePath: resolve(try filePath("pipeline", default: "../pipelines/ravdess.yaml")),
            dataRoot: resolve(try filePath("data", default: "../data")),
            labelMap: labelMap,
            includeSong: fields["include_song"]?.boolValue ?? false,
            seed: seed,
            threads: threads,
            overrides: overrides,
            text: text)
        manifest.nightly = nightly
        manifest.resources = resources
        manifest.workers = workers
        manifest.sweep = try fields["sweep"].map { try SweepSpec($0, fail: fail) }
        manifest.givenGlobals = Set(manifest.globals.keys.filter { fields[Self.fileKey(ofGlobal: $0)] != nil })
        return manifest
    }

    /// The manifest's key for a setting of `globals` (the data root is given as `data`).
    public static func fileKey(ofGlobal name: String) -> String { name == "data_root" ? "data" : name }

    /// The names of `globals`, which `params` lists under the stages that read them.
    public static let globalNames: Set<String> = ["data_root", "label_map", "include_song", "seed", "threads"]

    /// Manifest-wide settings every stage can read; the ones a stage reads join its fingerprint.
    public var globals: [String: ParamValue] {
        ["data_root": .string(dataRoot), "label_map": .string(labelMap), "include_song": .bool(includeSong),
         "seed": .int(seed), "threads": .int(threads)]
    }
}

/// The manifest's `nightly:` block: `{tolerance: 0.02, metrics: [accuracy, weighted_f1, macro_f1]}`.
public struct NightlySettings: Equatable, Sendable {
    /// The largest fall (absolute) of a watched metric that is not an alert.
    public var tolerance = 0.02
    /// The metrics.json fields watched.
    public var metrics = ["accuracy", "weighted_f1", "macro_f1"]

    public init() {}

    init(_ value: ParamValue?, fail: (String) -> PipelineError) throws {
        guard let value else { return }
        guard let fields = value.objectValue else { throw fail("'nightly' must be a mapping {tolerance, metrics}") }
        if let unknown = fields.keys.sorted().first(where: { !["tolerance", "metrics"].contains($0) }) {
            throw fail("nightly: unknown field '\(unknown.shownKey)' (known: metrics, tolerance)")
        }
        if let tolerance = fields["tolerance"] {
            guard let number = tolerance.doubleValue, number.isFinite, number >= 0 else {
                throw fail("nightly.tolerance = \(tolerance.shown): expected a finite number ≥ 0")
            }
            self.tolerance = number
        }
        if let metrics = fields["metrics"] {
            guard let items = metrics.arrayValue, case let names = items.compactMap(\.stringValue), names.count == items.count, !names.isEmpty else {
                throw fail("nightly.metrics = \(metrics.shown): expected a non-empty list of metric names (e.g. [accuracy, weighted_f1])")
            }
            var seen = Set<String>()
            if let twice = names.first(where: { !seen.insert($0).inserted }) {
                throw fail("nightly.metrics: \(ParamValue.string(twice).shown) is listed twice")
            }
            self.metrics = names
        }
    }
}
