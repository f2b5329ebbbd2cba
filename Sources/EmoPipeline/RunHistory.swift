import EmoCore
import EmoStore
import Foundation

/// One recorded run as `runs`, `diff` and `reproduce` see it: what went in (manifest, resolved
/// parameters, data, code and environment) and what came out (stage digests, metrics, model bytes).
/// Results of stages that were up to date are found in the run that computed them.
public struct RunSummary: Sendable {
    public var record: RunRecord
    public var environment: RunEnvironment?
    public var stages: [StageRunRecord]
    /// Stage → resolved parameters, as the run recorded them.
    public var params: [String: ParamValue]
    /// Why the recorded parameters are not what a run writes (unreadable JSON, a stage's value no object, a
    /// stage it ran missing): its record is damaged, and a reproduction would run other settings.
    public var parametersProblem: String?
    /// Scalar metrics from the evaluation this run stands on (`metrics.json`, and `cv.<name>.mean|std`).
    public var metrics: [(String, Double)]
    /// Result file name → SHA-256 (metrics.json, cv.json, model.onnx, model.int8.onnx, model.safetensors), where the run has them.
    public var files: [(String, String)]
    public var dataset: Dataset?
    /// Why the run's `dataset.tsv` is not taken (edited, cut short, not the run's), when it is there but not: its
    /// data is then compared by the fingerprint and count its record holds.
    public var datasetProblem: String?
    /// What of the run's database record cannot be read (edited or damaged): those fields show no value.
    public var damagedRecord: [String] = []
    /// Result files that are there but could not be read (`path: reason`): their fields show no value,
    /// and commands that compare runs say why.
    public var unreadable: [String] = []
    /// Result files changed on disk since the run wrote them (`path`; metrics files so changed are `unreadable`).
    public var edited: [String] = []
    /// metrics.json's test clips that no figure counts: clip → "stage: file name: reason".
    public var unscoredTestClips: [String: String] = [:]

    /// The files that carry a run's results, and the stage that writes each.
    static let resultFiles: [(RunFile, StageName)] = [(.metrics, .evaluate), (.crossValidation, .evaluate),
                                                      (.onnx, .export), (.int8Onnx, .export), (.weights, .export),
                                                      (.modelDescription, .export), (.features, .export), (.speakers, .export)]

    /// The run folders that hold this run's result files (its own, or those of the earlier runs whose
    /// evaluate or export it stood on) and are no longer there: nothing to compare a result with.
    public func missingResultFolders(in workspace: Workspace) -> [String] {
        let stages = Set(Self.resultFiles.map(\.1.rawValue))
        let producers = Set(self.stages.filter { stages.contains($0.stage) }.map { $0.producedByRun ?? $0.runId })
        return producers.sorted().map { workspace.runFolder($0) }.filter { folder in
            var isFolder: ObjCBool = false
            return !(FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue)
        }
    }

    /// How much of a run to read: the headline (record, stages, parameters, metrics) is what the runs
    /// table prints; the result files' digests and the dataset listing cost a read of every model file
    /// and listing, so only comparisons and --json ask for them.
    public enum Depth: Sendable { case headline, full }

    /// A run id, its folder's path, or the start of an id that only one run has (as `emopipe runs` lists them).
    public static func resolvedRunId(_ reference: String, store: ProvenanceStore, workspace: Workspace) throws -> String {
        let id = Workspace.runId(reference: reference)
        // A path names one folder: one that is not there (nor this work directory's folder of a run whose
        // results were removed) is a mistyped path, not the run its last part happens to name.
        if reference.contains("/"), !FileManager.default.fileExists(atPath: reference),
           URL(fileURLWithPath: reference).standardizedFileURL.path != URL(fileURLWithPath: workspace.runFolder(id)).standardizedFileURL.path {
            throw PipelineError.invalidFile("\(reference.echoed): no run folder there")
        }
        guard !id.isEmpty, try store.run(id: id) == nil else { return id }
        // A path names one folder: an existing one this database does not record is no run here.
        if reference.contains("/") {
            var isFolder: ObjCBool = false
            let there = FileManager.default.fileExists(atPath: reference, isDirectory: &isFolder)
                ? (isFolder.boolValue ? "a folder" : "a file, not a run folder") : "no run folder there"
            throw PipelineError.invalidFile("\(reference.echoed): \(there), and \(workspace.databasePath) records no run '\(id.echoed)'")
        }
        let matching = try store.read { try String.fetchAll($0, sql: "SELECT id FROM run WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
                                                             arguments: [id]) }
        guard matching.count > 1 else { return matching.first ?? id }
        throw PipelineError.invalidFile("run '\(reference)' is the start of \(matching.count) runs' ids (\(matching.prefix(3).joined(separator: ", "))"
            + "\(matching.count > 3 ? ", ..." : "")) in \(workspace.databasePath): give more of it")
    }

    public static func load(_ reference: String, store: ProvenanceStore, workspace: Workspace,
                            depth: Depth = .full) throws -> RunSummary {
        let id = try resolvedRunId(reference, store: store, workspace: workspace)
        guard let record = try store.run(id: id) else {
            throw PipelineError.invalidFile("no run '\(reference.echoed)' in \(workspace.databasePath) (see `emopipe runs`)")
        }
        return try load(record, store: store, workspace: workspace, depth: depth)
    }

    /// The summary of a run the database lists (its id taken as it is, not as a reference a user typed: an
    /// edited row's empty or path-like id must not make `runs` look elsewhere or fail the whole listing).
    public static func load(_ record: RunRecord, store: ProvenanceStore, workspace: Workspace, depth: Depth = .full) throws -> RunSummary {
        var record = record
        let id = record.id
        // A run recorded running while nobody holds the work directory's lock died without ending
        // (killed, out of memory): shown as the next run will record it.
        if record.status == .running, WorkDirectoryLock.isHeld(path: workspace.lockPath) == false { record.status = .interrupted }
        let stages = try store.stageRuns(runId: id)
        var params: [String: ParamValue] = [:]
        var damaged: [String] = []
        var parametersProblem: String?
        if let json = record.paramsJSON {
            switch ParamValue.recordedObject(json) {
            case .success(let object):
                params = object
                parametersProblem = Self.parametersProblem(params, ranStages: stages.map(\.stage))
            case .failure(let problem): parametersProblem = "\(problem)"
            }
        }
        if let parametersProblem { damaged.append("its recorded parameters are \(parametersProblem)") }
        // Every run records the count it ran with, which the manifest bounds: another is an edited record (reproduce refuses it).
        if !(1...Manifest.maxThreads).contains(record.threads) {
            damaged.append("its recorded thread count \(record.threads) is outside 1-\(Manifest.maxThreads)")
        }
        let environment = RunEnvironment.decode(record.environmentJSON)
        if record.environmentJSON != nil && environment == nil { damaged.append("its recorded environment (code, libraries) is not one EmoPipe writes") }
        let producer = Dictionary(stages.map { ($0.stage, $0.producedByRun ?? $0.runId) }, uniquingKeysWith: { _, b in b })
        var files: [(String, String)] = []
        var metrics: [(String, Double)] = []
        var unreadable: [String] = []
        var edited: [String] = []
        var unscored: [String: String] = [:]
        // By stage as well as run: train keeps a model.json of its own in the cache, which export's is not.
        var digests: [String: [String: String]] = [:]
        func recordedDigest(_ file: RunFile, of run: String, stage: StageName) throws -> String? {
            let key = run + "\t" + stage.rawValue
            if digests[key] == nil { digests[key] = try store.outputDigests(runId: run, stage: stage.rawValue) }
            return digests[key]?[file.rawValue]
        }
        for (file, stage) in resultFiles {
            guard let run = producer[stage.rawValue] else { continue }
            let isMetrics = [.metrics, .crossValidation].contains(file)
            if depth == .headline, !isMetrics { continue }
            // Hashed as a stream (a model can be large); only the small JSON results are read whole.
            let path = workspace.runFile(run, file)
            do {
                if !isMetrics {
                    // Compared as it is on disk; one replaced or typed over since its run wrote it is named as such.
                    let current = try SHA256Hex.file(atPath: path).hex
                    if let recorded = try recordedDigest(file, of: run, stage: stage), recorded != current { edited.append(path) }
                    files.append((file.rawValue, current))
                } else {
                    let data: Data
                    do { data = try RegularFile.read(path) } catch {
                        // Too large to read whole (damaged): still compared by its hash, streamed.
                        if depth == .full { files.append((file.rawValue, try SHA256Hex.file(atPath: path).hex)) }
                        throw error
                    }
                    let current = SHA256Hex.of(data)   // read once: hashed and parsed from the same bytes
                    if depth == .full { files.append((file.rawValue, current)) }
                    // Another run's results copied in, or figures typed over, are not this run's: none shown. Judged before
                    // parsing, which an edited file of many megabytes made take minutes.
                    if let recorded = try recordedDigest(file, of: run, stage: stage), current != recorded {
                        throw EmoError.io(path: path, reason: "edited since run \(run) wrote it (its SHA-256 is not the one recorded then)")
                    }
                    // A result that is not a JSON object (cut short, overwritten) is named, not shown as no metrics.
                    let object: [String: ParamValue]
                    switch ParamValue.recordedObject(data) {
                    case .success(let read): object = read
                    case .failure(.tooLarge(let large)): throw EmoError.io(path: path, reason: "\(large); not read")
                    case .failure(let problem): throw EmoError.io(path: path, reason: "\(problem), where EmoPipe writes a JSON object of its results")
                    }
                    metrics += scalars(inResult: file, object)
                    if file == .metrics { unscored = unscoredTestClips(object) }
                }
            } catch {
                var facts = stat()   // absent is no result, not an unreadable one, unless its run wrote it
                if lstat(path, &facts) == 0 {
                    unreadable.append("\(error)")
                } else if (try? recordedDigest(file, of: run, stage: stage)) != nil, FileManager.default.fileExists(atPath: PathText.folder(of: path)) {
                    // (A whole run folder gone is said once, by `missingResultFolders`.)
                    unreadable.append("\(path.shownPath): gone since run \(run) wrote it (deleted?)")
                }
            }
        }
        var dataset: Dataset?, datasetProblem: String?
        if depth == .full {
            let listing = Dataset.recorded(at: workspace.datasetListingPath(runId: id), record: record)
            dataset = listing.dataset
            datasetProblem = listing.problem
        }
        return RunSummary(record: record, environment: environment, stages: stages,
                          params: params, parametersProblem: parametersProblem, metrics: metrics, files: files, dataset: dataset,
                          datasetProblem: datasetProblem, damagedRecord: damaged, unreadable: unreadable, edited: edited,
                          unscoredTestClips: unscored)
    }

    /// A run records an object of parameters for every stage it selected, so each stage it ran has one:
    /// anything else is an edited record, whose missing values a reproduction would fill with today's defaults.
    static func parametersProblem(_ params: [String: ParamValue], ranStages: [String]) -> String? {
        if let notObject = params.keys.sorted().first(where: { params[$0]?.objectValue == nil }) {
            return "not an object for stage '\(notObject.escaped)'"
        }
        if let missing = ranStages.first(where: { params[$0] == nil }) {
            return "missing for stage '\(missing.escaped)', which the run ran"
        }
        return nil
    }

    /// metrics.json's `unscored_test_clips`, clip → "stage: file name: reason" (a run that changed only why
    /// a test file fails has other bytes and the same figures: this says what differs).
    static func unscoredTestClips(_ metrics: [String: ParamValue]) -> [String: String] {
        guard let list = metrics["unscored_test_clips"]?.arrayValue else { return [:] }
        var found: [String: String] = [:]
        for entry in list.compactMap(\.objectValue) {
            guard let clip = entry["clip"]?.stringValue else { continue }
            let file = entry["path"]?.stringValue.map { ($0 as NSString).lastPathComponent } ?? "?"
            found[clip] = [entry["stage"]?.stringValue ?? "?", file, entry["reason"]?.stringValue ?? "?"].joined(separator: ": ")
        }
        return found
    }

    public var id: String { record.id }
    /// The manifest's name; for a run of a command that reads none (`cache verify` dropping damaged
    /// records), that command in parentheses.
    public var manifestName: String {
        if let command = commandWithoutManifest, !command.isEmpty { return "(\(command))" }
        return (try? Manifest.parse(yaml: record.manifestJSON, path: record.manifestPath ?? "manifest.yaml").name) ?? "?"
    }
    /// The command of a run that read no manifest (`cache verify`, recorded as a run when it drops damaged
    /// records): no pipeline run, with no parameters, data or results to compare or repeat. Nil for a pipeline run.
    /// Empty when the recorded command line names none.
    public var commandWithoutManifest: String? {
        guard record.manifestJSON.isEmpty else { return nil }
        return record.command.split(separator: " ").dropFirst().prefix { !$0.hasPrefix("-") }.prefix(2).joined(separator: " ")
    }

    /// Why this run is no pipeline run (see `commandWithoutManifest`), said to a command that would take it for one; nil for a pipeline run.
    public var notAPipelineRun: String? {
        guard let command = commandWithoutManifest else { return nil }
        let what = command == "cache verify" ? "the record of `emopipe cache verify` (it dropped damaged cache records)"
            : command.isEmpty ? "the record of a command that read no manifest" : "the record of `emopipe \(command)`"
        return "it is \(what), not a pipeline run: it has no manifest, parameters or results"
    }
    public func metric(_ name: String) -> Double? { metrics.first { $0.0 == name }?.1 }

    /// A metric as JSON prints it: a count (`count`, `seven_class.count`, `int8.clips`,
    /// `confidence_interval.actors`, `confidence_interval.resamples`) as an integer, any other as a number, null where the run has none.
    /// Decided by name: JSON writes a rate of exactly 1 as `1`, which must not turn it into a count.
    public func metricValue(_ name: String) -> ParamValue {
        guard let value = metric(name) else { return .null }
        let number = ParamValue.double(value)
        return Self.isCount(name) ? number.intValue.map(ParamValue.int) ?? number : number
    }

    static func isCount(_ name: String) -> Bool {
        ["count", "clips", "actors", "resamples"].contains(name.split(separator: ".").last.map(String.init) ?? "")
    }

    /// The scalar metrics a result file holds, named as runs, diffs, nightly reports and sweeps name
    /// them: metrics.json's numbers as they are, cv.json's means and standard deviations under `cv.`.
    /// Other files hold none.
    public static func scalars(inResult file: RunFile, _ data: Data) -> [(String, Double)] {
        guard let object = (try? ParamValue.fromJSON(data))?.objectValue else { return [] }
        return scalars(inResult: file, object)
    }

    /// The same of a result already parsed.
    static func scalars(inResult file: RunFile, _ object: [String: ParamValue]) -> [(String, Double)] {
        switch file {
        case .metrics: return scalars(object, prefix: "")
        case .crossValidation: return scalars(object, prefix: "cv.").filter { $0.0.hasSuffix(".mean") || $0.0.hasSuffix(".std") }
        default: return []
        }
    }

    /// Numbers at the top level of a JSON object, and one level down (`accuracy.mean`), sorted by name.
    /// Read with the strict JSONDecoder (`ParamValue`): on Linux, JSONSerialization's 0 and 1 pass `is Bool`,
    /// which once dropped an accuracy of exactly 0 or 1 from runs, diffs, nightly reports and sweeps.
    static func scalars(_ data: Data, prefix: String) -> [(String, Double)] {
        guard let object = (try? ParamValue.fromJSON(data))?.objectValue else { return [] }
        return scalars(object, prefix: prefix)
    }

    static func scalars(_ object: [String: ParamValue], prefix: String) -> [(String, Double)] {
        var found: [(String, Double)] = []
        for (key, value) in object {
            if let number = value.doubleValue { found.append((prefix + key, number)) }
            for (inner, value) in value.objectValue ?? [:] {
                if let number = value.doubleValue { found.append((prefix + key + "." + inner, number)) }
            }
        }
        return found.sorted { $0.0 < $1.0 }
    }
}

/// Field-by-field comparison of two runs, grouped as `diff` prints it.
public struct RunComparison: Sendable {
    public struct Field: Sendable, Equatable {
        public var section: String   // params, data, code, stages, metrics, files
        public var name: String
        /// Each run's value as JSON gives it: a parameter as typed, text, a number (metrics); nil where the
        /// run has none (a parameter set to null is `.null`, not nil: the two differ).
        public var valueA: ParamValue?
        public var valueB: ParamValue?
        public var a: String { Self.shown(valueA) }
        public var b: String { Self.shown(valueB) }
        public var same: Bool { valueA == valueB }

        static func shown(_ value: ParamValue?) -> String {
            switch value {
            case nil: "—"
            case .string(let text)?: text
            case let value?: value.canonicalJSON
            }
        }
    }

    public var fields: [Field]

    /// `stagesOfFirst`: compare only the stages run A covered (a reproduction may run more).
    public init(_ a: RunSummary, _ b: RunSummary, stagesOfFirst: Bool = false) {
        var fields: [Field] = []
        func add(_ section: String, _ name: String, _ x: String?, _ y: String?) {
            fields.append(Field(section: section, name: name, valueA: x.map(ParamValue.string), valueB: y.map(ParamValue.string)))
        }
        add("params", "manifest sha256", a.record.manifestSHA256, b.record.manifestSHA256)
        for stage in Set(a.params.keys).union(b.params.keys).sorted() {
            let x = a.params[stage]?.objectValue ?? [:], y = b.params[stage]?.objectValue ?? [:]
            for key in Set(x.keys).union(y.keys).sorted() {
                fields.append(Field(section: "params", name: "\(stage).\(key)", valueA: x[key], valueB: y[key]))
            }
        }
        add("data", "root", a.record.dataRoot, b.record.dataRoot)
        // Computed again from the listings where both have one: a run recorded before file names were part
        // of it (only the hashes) compares by what it used, not by how its fingerprint was spelt then.
        if let listedA = a.dataset, let listedB = b.dataset {
            add("data", "dataset fingerprint", listedA.fingerprint, listedB.fingerprint)
        } else {
            add("data", "dataset fingerprint", a.record.datasetFingerprint, b.record.datasetFingerprint)
        }
        fields.append(Field(section: "data", name: "sources in use", valueA: a.record.sourcesInUse.map(ParamValue.int),
                            valueB: b.record.sourcesInUse.map(ParamValue.int)))
        if let old = a.dataset, let new = b.dataset {
            // Which files, not only how many: each kind once, on b's side (a is what they are measured against).
            let change = new.changes(since: old)
            for (what, paths) in [("added", change.added), ("removed", change.removed), ("changed", change.changed)] where !paths.isEmpty {
                let shown = paths.prefix(5).joined(separator: ", ") + (paths.count > 5 ? ", … (\(paths.count - 5) more)" : "")
                fields.append(Field(section: "data", name: "sources \(what)", valueA: nil, valueB: .string("\(paths.count): \(shown)")))
            }
        }
        let x = Dictionary(a.environment?.fields ?? [], uniquingKeysWith: { p, _ in p })
        let y = Dictionary(b.environment?.fields ?? [], uniquingKeysWith: { p, _ in p })
        for (name, _) in (a.environment ?? b.environment)?.fields ?? [] {
            fields.append(Field(section: "code", name: name, valueA: x[name], valueB: y[name]))
        }
        let stagesA = Dictionary(a.stages.map { ($0.stage, $0) }, uniquingKeysWith: { _, n in n })
        let stagesB = Dictionary(b.stages.map { ($0.stage, $0) }, uniquingKeysWith: { _, n in n })
        for stage in (stagesOfFirst ? a.stages : a.stages + b.stages).map(\.stage).uniqued() {
            // A refusal foretold before the stage ran is recorded without a fingerprint (""): none, as for a stage not run.
            add("stages", "\(stage) stage fingerprint", stagesA[stage].flatMap { $0.fingerprint.isEmpty ? nil : $0.fingerprint }, stagesB[stage].flatMap { $0.fingerprint.isEmpty ? nil : $0.fingerprint })
            add("stages", "\(stage) output", stagesA[stage]?.outputDigest, stagesB[stage]?.outputDigest)
        }
        for name in Set(a.metrics.map(\.0)).union(b.metrics.map(\.0)).sorted() {
            fields.append(Field(section: "metrics", name: name, valueA: a.metric(name).map { _ in a.metricValue(name) },
                                valueB: b.metric(name).map { _ in b.metricValue(name) }))
        }
        for clip in Set(a.unscoredTestClips.keys).union(b.unscoredTestClips.keys).sorted() {
            add("metrics", "unscored test clip \(clip)", a.unscoredTestClips[clip], b.unscoredTestClips[clip])
        }
        let filesA = Dictionary(a.files, uniquingKeysWith: { p, _ in p })
        let filesB = Dictionary(b.files, uniquingKeysWith: { p, _ in p })
        for name in Set(filesA.keys).union(filesB.keys).sorted() { add("files", name, filesA[name], filesB[name]) }
        self.fields = fields
    }

    public var differences: [Field] { fields.filter { !$0.same } }

    /// Whether the results (stage outputs, metrics, result files) are the same.
    public var resultsMatch: Bool {
        !fields.contains { ["stages", "metrics", "files"].contains($0.section) && !$0.same && !$0.name.hasSuffix(" fingerprint") }
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] { var seen = Set<Element>(); return filter { seen.insert($0).inserted } }
}
