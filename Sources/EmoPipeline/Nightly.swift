import EmoCore
import EmoStore
import Foundation

/// One nightly reprocessing: run the whole pipeline (ingest re-scans the data root; per-source
/// stages compute only new or changed sources; train and the rest re-run only when a fingerprint
/// changed), then write a dated report — sources added, changed, removed and failed, stage timings,
/// and the watched metrics against the previous nightly run — to `WORKDIR/nightly/<run>.{json,md}`.
///
///     let report = try Nightly(runner: runner).run(command: "emopipe nightly")
///     exit(report.exitCode)   // 0, 3 (some sources failed), 4 (a metric worsened beyond the tolerance)
public struct Nightly {
    public let runner: PipelineRunner

    public init(runner: PipelineRunner) { self.runner = runner }

    public var reportsFolder: String { runner.workspace.nightlyFolder }

    public func run(command: String) throws -> NightlyReport {
        try runner.checkNightlyMetrics()
        // Checked before a night's work: a report that cannot be written loses the changes it would list.
        try prepareReportsFolder()
        let (previous, passedOver) = try baseline()
        let started = Date()
        let outcome: RunReport
        do {
            outcome = try runner.run(RunSelection(), command: command)
        } catch let error as PipelineError {
            if case .locked = error { throw error }
            return try failed(error, started: started, previous: previous, passedOver: passedOver)
        } catch {
            if (error as? EmoError) == .interrupted { throw error }
            return try failed(error, started: started, previous: previous, passedOver: passedOver)
        }
        let store = try runner.workspace.openStore(.readWrite)
        var report = NightlyReport(runId: outcome.runId, manifest: runner.manifest.path, dataRoot: runner.manifest.dataRoot,
                                   startedAt: started, finishedAt: Date(), tolerance: runner.manifest.nightly.tolerance)
        report.sources = try SourceChanges(store: store, runId: outcome.runId, since: previous?.runId, root: runner.manifest.dataRoot,
                                           workspace: runner.workspace, previousFailing: previous?.sources.failing)
        report.stages = outcome.stages.map {
            NightlyReport.StageTiming(stage: $0.stage, action: $0.action.rawValue, seconds: $0.seconds,
                                      summary: $0.action == .ran ? $0.outcome.summary : "output of run \($0.producedByRun) kept",
                                      cpuSeconds: $0.usage.cpuSeconds, peakRssMb: $0.usage.peakRSSMB, producedByRun: $0.producedByRun)
        }
        report.previousModelRun = previous?.modelRun
        report.failedUnits = outcome.failedUnits
        let summary = try RunSummary.load(outcome.runId, store: store, workspace: runner.workspace, depth: .headline)
        report.previousRunId = previous?.runId
        report.unreadableReports = passedOver
        let watched = runner.manifest.nightly.metrics.map { (name: $0, current: summary.metric($0)) }
        let absent = watched.filter { $0.current == nil }.map(\.name)
        report.absentMetrics = absent.isEmpty ? nil : absent
        report.metrics = watched.compactMap { name, current in
            guard let current else { return nil }
            let before = previous?.metrics.first { $0.name == name }?.current
            return NightlyReport.MetricChange(name: name, previous: before, current: current,
                                              tolerance: runner.manifest.nightly.tolerance)
        }
        try write(report)
        return report
    }

    /// The most recent nightly report of a night the pipeline completed for this manifest and data
    /// root, if any: figures of another manifest or root are no baseline. The one `nightly/LATEST` names
    /// when it is of these (run ids sort by second only, so names cannot order two runs in one second),
    /// else the newest such report in the folder.
    public func latestReport() throws -> NightlyReport? { try baseline().report }

    /// The latest report (as `latestReport`) and the reports newer than it that were passed over because
    /// they do not read (`path: reason`): a damaged last report must not silently move the baseline back.
    func baseline() throws -> (report: NightlyReport?, passedOver: [String]?) {
        func isComparable(_ report: NightlyReport) -> Bool {
            report.error == nil && report.manifest == runner.manifest.path && report.dataRoot == runner.manifest.dataRoot
        }
        // A LATEST that names no report of this folder (damaged, edited, a path) is passed over like a
        // report that does not read: the folder's own reports are searched instead.
        if let latest = try? RegularFile.openForReading(runner.workspace.nightlyLatestPath), { close(latest.descriptor); return latest.size <= 4096 }(),
           let bytes = try? RegularFile.read(runner.workspace.nightlyLatestPath),
           let id = String(data: bytes, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), Workspace.isPlainName(id),
           let latest = try? report(at: runner.workspace.nightlyReportPath(runId: id, fileExtension: "json")), isComparable(latest) {
            return (latest, nil)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: reportsFolder)) ?? []
        // Newest written first: run ids sort by second only (two nights in one second tie on their
        // random suffix), a report's file time to the nanosecond.
        func written(_ name: String) -> Int64 {
            var info = stat()
            guard stat(reportsFolder + "/" + name, &info) == 0 else { return 0 }
            return info.mtimeNanos
        }
        let newestFirst = names.filter { $0.hasSuffix(".json") }.map { ($0, written($0)) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 > $1.0 }.map(\.0)
        // Another manifest's reports share the folder: one that does not read (older, foreign, damaged) is
        // passed over here, where only LATEST's must read.
        var passedOver: [String] = []
        for name in newestFirst {
            do {
                let earlier = try report(at: reportsFolder + "/" + name)
                if isComparable(earlier) { return (earlier, Self.capped(passedOver)) }
            } catch {
                passedOver.append("\(error)".echoed)
            }
        }
        return (nil, Self.capped(passedOver))
    }

    /// At most 20 named, then their number: a folder of junk must not swell every report; nil for none.
    static func capped(_ notes: [String]) -> [String]? {
        if notes.isEmpty { return nil }
        return notes.count <= 20 ? notes : Array(notes.prefix(20)) + ["… and \(notes.count - 20) more that do not read"]
    }

    private func report(at path: String) throws -> NightlyReport {
        let data: Data
        do { data = try RegularFile.read(path) } catch {
            throw EmoError.io(path: path, reason: "an earlier nightly report is unreadable: \(EmoError.reason(of: error))")
        }
        do {
            return try NightlyReport.decoder.decode(NightlyReport.self, from: data)
        } catch {
            throw EmoError.io(path: path, reason: "an earlier nightly report is unreadable: \(JSONOutput.problem(error, in: data))")
        }
    }

    private func prepareReportsFolder() throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: reportsFolder, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw EmoError.io(path: reportsFolder, reason: "is not a folder; nightly reports are written there") }
        } else {
            try Folder.create(reportsFolder)
        }
        guard access(reportsFolder, W_OK | X_OK) == 0 else {
            throw EmoError.io(path: reportsFolder, reason: "nightly reports cannot be written there: \(String(cString: strerror(errno)))")
        }
        // LATEST is replaced (renamed over) after the night: only a file or a link can be.
        var facts = stat()
        let latest = runner.workspace.nightlyLatestPath
        if lstat(latest, &facts) == 0, facts.st_mode & S_IFMT != S_IFREG, facts.st_mode & S_IFMT != S_IFLNK {
            throw EmoError.io(path: latest, reason: "is not a file; it names the last good night's report, and is replaced after each night: remove it")
        }
    }

    private func failed(_ error: Error, started: Date, previous: NightlyReport?, passedOver: [String]?) throws -> NightlyReport {
        let runId = try runner.workspace.openStore(.readWrite).runs(limit: 1).first?.id ?? "none"
        var report = NightlyReport(runId: runId, manifest: runner.manifest.path, dataRoot: runner.manifest.dataRoot,
                                   startedAt: started, finishedAt: Date(), tolerance: runner.manifest.nightly.tolerance)
        report.error = "\(error)"
        report.previousRunId = previous?.runId
        report.unreadableReports = passedOver
        // What the night's ingest noticed before the failure (the files that may have caused it) is still news.
        if runId != "none", let store = try? runner.workspace.openStore(.readOnly),
           let changes = try? SourceChanges(store: store, runId: runId, since: previous?.runId, root: runner.manifest.dataRoot,
                                            workspace: runner.workspace, previousFailing: previous?.sources.failing) {
            report.sources = changes
            // The units failing in the stages' current outputs, as a completed night counts them (0 said none did).
            report.failedUnits = (try? runner.pipeline.stageNames.map { try store.stageState($0)?.unitsFailed ?? 0 }.clampedSum()) ?? 0
        }
        try write(report)
        return report
    }

    private func write(_ report: NightlyReport) throws {
        try Folder.create(reportsFolder)
        try DurableFile.write(try NightlyReport.encoder.encode(report), to: runner.workspace.nightlyReportPath(runId: report.runId, fileExtension: "json"))
        try DurableFile.write(Data(report.markdown.utf8), to: runner.workspace.nightlyReportPath(runId: report.runId, fileExtension: "md"))
        // A failed night has no metrics to compare against: the next one compares with the last good one.
        if report.error == nil { try DurableFile.write(Data((report.runId + "\n").utf8), to: runner.workspace.nightlyLatestPath) }
    }
}

/// What one nightly run found and did; `nightly/<run>.json` holds it, `nightly/<run>.md` reads it out.
public struct NightlyReport: Codable, Equatable, Sendable {
    public struct StageTiming: Codable, Equatable, Sendable {
        public var stage: String
        public var action: String       // ran, up to date
        public var seconds: Double
        public var summary: String
        /// Process CPU time (user + system, every thread); nil in reports written before it was measured.
        public var cpuSeconds: Double?
        /// Peak resident memory (MiB) while the stage ran; nil in older reports or without /proc.
        public var peakRssMb: Double?
        /// The run whose output the stage holds (this night's when it ran); nil in older reports.
        public var producedByRun: String?

        /// Every key, null where a figure is unknown (as the report's own fields).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(stage, forKey: .stage)
            try c.encode(action, forKey: .action)
            try c.encode(seconds, forKey: .seconds)
            try c.encode(summary, forKey: .summary)
            try c.encode(cpuSeconds, forKey: .cpuSeconds)
            try c.encode(peakRssMb, forKey: .peakRssMb)
            try c.encode(producedByRun, forKey: .producedByRun)
        }
    }

    /// Which way a watched figure gets better.
    public enum Direction: String, Codable, Sendable {
        /// Scores: accuracy, F1, UAR, agreement.
        case higher
        /// Losses of something: `int8.*_drop`, a spread over folds (`cv.*.std`).
        case lower
        /// Counts and settings (`count`, `confidence_interval.actors`, …): reported, never an alert.
        case neither

        public init(metric name: String) {
            let last = name.split(separator: ".").last.map(String.init) ?? name
            if last.hasSuffix("_drop") || last == "std" || last.hasSuffix("loss") {
                self = .lower
            } else if ["count", "clips", "actors", "level", "resamples", "folds"].contains(last) {
                self = .neither
            } else {
                self = .higher
            }
        }
    }

    public struct MetricChange: Codable, Equatable, Sendable {
        public var name: String
        public var previous: Double?
        public var current: Double
        public var delta: Double?
        /// Which way is better; nil in reports written before it was recorded (read as `higher`).
        public var better: Direction?
        /// Worsened by more than the tolerance since the previous nightly run: fell, or rose for a `lower` one.
        public var regressed: Bool

        init(name: String, previous: Double?, current: Double, tolerance: Double) {
            self.name = name; self.previous = previous; self.current = current
            let direction = Direction(metric: name)
            better = direction
            delta = previous.map { current - $0 }
            // A fall of exactly the tolerance (3 of 60 clips against 0.05) is no alert: the difference of two
            // rounded scores may pass it by the last bits (0.05000000000000002), which a margin of 1e-9 absorbs.
            let allowed = tolerance + 1e-9 * max(1, abs(current), abs(previous ?? 0))
            switch direction {
            case .higher: regressed = (delta ?? 0) < -allowed
            case .lower: regressed = (delta ?? 0) > allowed
            case .neither: regressed = false
            }
        }

        /// The alert's words in the report.
        var alert: String { better == .lower ? "rose" : "fell" }

        /// Every key, previous and delta null on the first night (as the report's own fields).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(previous, forKey: .previous)
            try c.encode(current, forKey: .current)
            try c.encode(delta, forKey: .delta)
            try c.encode(better, forKey: .better)
            try c.encode(regressed, forKey: .regressed)
        }
    }

    public var runId: String
    public var manifest: String
    public var dataRoot: String
    public var startedAt: Date
    public var finishedAt: Date
    public var tolerance: Double
    public var sources = SourceChanges()
    public var stages: [StageTiming] = []
    public var failedUnits = 0
    public var previousRunId: String?
    public var metrics: [MetricChange] = []
    /// Watched names this run's results do not hold (a seven-class figure under ravdess7, `cv.*` on a
    /// single split, `int8.*` without the int8 export): listed so that a watch that can never alert is seen.
    public var absentMetrics: [String]?
    /// Earlier reports newer than the previous one that do not read (`path: reason`), passed over when
    /// the previous report was looked for: the comparison is then with an older night than the last.
    public var unreadableReports: [String]?
    /// Set when the pipeline itself failed (the report then says only that).
    public var error: String?

    /// Whether the train stage ran gradient steps: one that took every fold's weights from an earlier training of
    /// the same clips (a test clip changed) ran, but trained nothing.
    public var retrained: Bool { trainRan && trainStage?.summary.hasPrefix(StageSummary.weightsTaken) == false }
    /// The train stage's row, when the manifest has one.
    var trainStage: StageTiming? { stages.first { $0.stage == StageName.train.rawValue } }
    /// Whether the train stage ran tonight (trained, or took an earlier training's weights).
    var trainRan: Bool { trainStage?.action == "ran" }
    /// The run that trained the model this report scored; nil without a train stage, or in older reports.
    public var modelRun: String? {
        trainStage.flatMap { $0.producedByRun ?? ($0.action == "ran" ? runId : nil) }
    }
    /// The run that trained the model the previous report scored, when it says.
    public var previousModelRun: String?
    public var regressions: [MetricChange] { metrics.filter(\.regressed) }

    /// design.md's alerting contract: 4 when a watched metric worsened beyond the tolerance (even if
    /// sources failed too), 3 when sources failed, 1 when the pipeline failed, else 0.
    public var exitCode: Int32 {
        if error != nil { return ExitStatus.failure }
        if !regressions.isEmpty { return ExitStatus.metricsRegressed }
        return failedUnits > 0 ? ExitStatus.partial : ExitStatus.ok
    }

    static var encoder: JSONEncoder {
        let encoder = JSONOutput.encoder(pretty: true)
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// Reads reports written before the snake_case convention too (the previous night's may be one).
    static var decoder: JSONDecoder {
        let decoder = JSONOutput.decoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    public var json: Data { (try? Self.encoder.encode(self)) ?? Data() }

    /// `exit_code`, as `runs --json` names a run's.
    private enum DerivedKeys: String, CodingKey { case exitCode }

    /// Every key in every report, null where a value does not apply (no previous report, no error), and
    /// the exit status the run ends with: a reader of the JSON need not know which keys may be missing.
    public func encode(to encoder: Encoder) throws {
        var fields = encoder.container(keyedBy: CodingKeys.self)
        try fields.encode(runId, forKey: .runId)
        try fields.encode(manifest, forKey: .manifest)
        try fields.encode(dataRoot, forKey: .dataRoot)
        try fields.encode(startedAt, forKey: .startedAt)
        try fields.encode(finishedAt, forKey: .finishedAt)
        try fields.encode(tolerance, forKey: .tolerance)
        try fields.encode(sources, forKey: .sources)
        try fields.encode(stages, forKey: .stages)
        try fields.encode(failedUnits, forKey: .failedUnits)
        try fields.encode(previousRunId, forKey: .previousRunId)
        try fields.encode(previousModelRun, forKey: .previousModelRun)
        try fields.encode(metrics, forKey: .metrics)
        // Lists are lists when empty: a reader iterates them without a null check.
        try fields.encode(absentMetrics ?? [], forKey: .absentMetrics)
        try fields.encode(unreadableReports ?? [], forKey: .unreadableReports)
        try fields.encode(error, forKey: .error)
        var derived = encoder.container(keyedBy: DerivedKeys.self)
        try derived.encode(exitCode, forKey: .exitCode)
    }
}

/// The data root's changes noticed by one run, read back from provenance.
public struct SourceChanges: Codable, Equatable, Sendable {
    public struct Failure: Codable, Equatable, Sendable {
        public var path: String
        public var stage: String
        public var reason: String
    }

    public var added: [String] = []
    public var changed: [String] = []
    public var removed: [String] = []
    public var failed: [Failure] = []
    /// Sources by status after the run (ok, failed, ignored, removed).
    public var totals: [String: Int] = [:]
    /// Every file ingest fails after the run, new or not: what the next report tells news from (nil in
    /// reports written before it was kept).
    public var failing: [Failure]? = nil
    /// Why a run's source list (its dataset.tsv) was not taken, the changes then read from the database's rows
    /// (nil when every list was taken, or none was looked at).
    public var listingsNotTaken: [String]? = nil

    public init() {}

    /// The changes noticed by `runId` and by every run after the one of the previous report
    /// (`previousRunId`): a night that was interrupted or failed, or an `emopipe run` in between, noticed
    /// changes no report listed. Without a previous report, those of every run since the work directory
    /// was made: the first report lists every source as added, even after an interrupted first night.
    /// `previousFailing`: the previous report's `failing`, when it has one.
    public init(store: ProvenanceStore, runId: String, since previousRunId: String?, root: String, workspace: Workspace? = nil,
                previousFailing: [Failure]? = nil) throws {
        let sources = try store.sources(under: root)
        let since = try previousRunId.map { try store.runIds(after: $0) } ?? store.runs().map(\.id)
        let runs = Set(since + [runId])
        func noticed(_ run: String) -> Bool { runs.contains(run) }
        var notTaken: [String] = []
        /// The run's listing when it is taken; why not, kept for the report.
        func takenListing(_ workspace: Workspace, _ run: String) -> [String: String]? {
            let (entries, problem) = Self.listing(workspace, run, store)
            if let problem { notTaken.append(problem) }
            return entries
        }
        defer { listingsNotTaken = notTaken.isEmpty ? nil : notTaken }
        if let workspace, let previousRunId, let before = takenListing(workspace, previousRunId), let now = takenListing(workspace, runId) {
            // The sources in use at the previous report against those now, content by content: a folder
            // gone for a night and back, or a file changed and changed back, is no change since that report.
            let row = Dictionary(sources.map { (DataRootPath.relative($0.path, to: root), $0) }, uniquingKeysWith: { a, _ in a })
            func absolute(_ relative: String) -> String { root.hasSuffix("/") ? root + relative : root + "/" + relative }
            // Known before the period but not in use then because it failed: now in use is a change, not an addition.
            // One that was gone then (the previous report's failing files do not hold it) and is back is an addition.
            let failingThen = previousFailing.map { Set($0.map(\.path)) }
            func knownBefore(_ relative: String) -> Bool {
                guard let source = row[relative], !noticed(source.firstSeenRun) else { return false }
                return failingThen?.contains(absolute(relative)) ?? true
            }
            let newInUse = now.keys.filter { now[$0] != before[$0] }
            changed = newInUse.filter { before[$0] != nil || knownBefore($0) }.sorted().map(absolute)
            // New files that fail are news too (ignored ones, a README, are not).
            added = (newInUse.filter { before[$0] == nil && !knownBefore($0) }.map(absolute)
                     + sources.filter { noticed($0.firstSeenRun) && $0.status == .failed }.map(\.path)).sorted()
            // Gone from use and from disk (a failure is listed as one), or a failing file known before and gone.
            removed = (before.keys.filter { now[$0] == nil && (row[$0].map { $0.status == .removed } ?? true) }.map(absolute)
                       + sources.filter { $0.status == .removed && noticed($0.lastChangedRun) && !noticed($0.firstSeenRun)
                                          && before[DataRootPath.relative($0.path, to: root)] == nil }.map(\.path)).sorted()
        } else {
            added = sources.filter { noticed($0.firstSeenRun) && $0.status != .removed }.map(\.path)
            changed = sources.filter { noticed($0.lastChangedRun) && !noticed($0.firstSeenRun) && $0.status != .removed }.map(\.path)
            removed = sources.filter { noticed($0.lastChangedRun) && !noticed($0.firstSeenRun) && $0.status == .removed }.map(\.path)
        }
        // A file that failed in several of those runs is listed once, with its latest reason.
        // Only failures of sources still under the root with the content that failed: one replaced since
        // and computed fine, or gone, is not listed.
        let current = Dictionary(sources.filter { $0.status != .removed }.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        // And only failures under the parameters each stage now runs with: a sweep trial's or an old
        // manifest's failure, under other parameters, says nothing of this pipeline.
        var inUse: [String: String] = [:]
        func inUseParameters(_ stage: String) throws -> String? {
            if let known = inUse[stage] { return known }
            let parameters = try store.stageState(stage)?.parametersFingerprint
            inUse[stage] = parameters
            return parameters
        }
        var latest: [String: Failure] = [:]
        for run in since.contains(runId) ? since : since + [runId] {
            for row in try store.failures(runId: run) where current[row.subject].map({ $0 == row.contentSHA256 }) ?? false {
                if !row.fingerprint.isEmpty, let parameters = try inUseParameters(row.stage), parameters != row.fingerprint { continue }
                latest[row.stage + "\u{0}" + row.subject] = Failure(path: row.subject, stage: row.stage, reason: row.reason)
            }
        }
        // A file ingest failed again for the same reason keeps its first failure row (rows are unique by content
        // and reason, and an unreadable file has no content hash), so its source row says when it last changed.
        // One the previous report found failing, for the same reason, is no news, though its row changed meanwhile
        // (its folder gone for a night and back, a run in between marking it removed).
        let failingBefore = Set((previousFailing ?? []).map { $0.path + "\u{0}" + $0.reason })
        for source in sources where source.status == .failed && noticed(source.lastChangedRun) {
            let key = StageName.ingest.rawValue + "\u{0}" + source.path
            let reason = source.reason ?? ""
            if latest[key] == nil, !failingBefore.contains(source.path + "\u{0}" + reason) {
                latest[key] = Failure(path: source.path, stage: StageName.ingest.rawValue, reason: reason)
            }
        }
        failing = sources.filter { $0.status == .failed }
            .map { Failure(path: $0.path, stage: StageName.ingest.rawValue, reason: $0.reason ?? "") }.sorted { $0.path < $1.path }
        failed = latest.values.sorted { ($0.stage, $0.path) < ($1.stage, $1.path) }
        // Every status, 0 where none: a reader asking for `failed` finds it.
        totals = Dictionary(uniqueKeysWithValues: SourceStatus.allCases.map { ($0.rawValue, 0) })
            .merging(Dictionary(grouping: sources, by: \.status.rawValue).mapValues(\.count)) { _, counted in counted }
    }

    /// A run's sources in use (relative path → SHA-256), from its `dataset.tsv`; nil when it has none.
    /// A run's sources in use, from its dataset.tsv as `diff` takes it: one edited or cut short (its count or
    /// fingerprint not the run's) is not taken, and the report falls back on the database's rows (an edited
    /// listing had reported sources added and changed that were not).
    private static func listing(_ workspace: Workspace, _ runId: String, _ store: ProvenanceStore) -> (entries: [String: String]?, problem: String?) {
        guard Workspace.isRunFolderName(runId), let record = (try? store.run(id: runId)) ?? nil else { return (nil, nil) }
        let (dataset, problem) = Dataset.recorded(at: workspace.datasetListingPath(runId: runId), record: record)
        return (dataset.map { Dictionary($0.entries.map { ($0.relativePath, $0.sha256) }, uniquingKeysWith: { a, _ in a }) }, problem)
    }
}

extension NightlyReport {
    /// The report as a page a person reads in the morning.
    public var markdown: String {
        let formatter = ISO8601DateFormatter()
        var lines = ["# EmoPipe nightly \(formatter.string(from: startedAt).prefix(10)) — run \(runId)", "",
                     "- manifest: \(Self.code(manifest))", "- data: \(Self.code(dataRoot))",
                     "- started \(formatter.string(from: startedAt)), took \(ProgressReporter.duration(finishedAt.timeIntervalSince(startedAt)))",
                     "- exit status: \(exitCode) (\(verdict))", ""]
        if let error { lines += ["## The pipeline failed", "", "```", error, "```", ""] }
        if let unreadableReports {
            lines += ["## Reports passed over", "", "Newer than the previous report, but they do not read:", ""]
            lines += unreadableReports.map { "- \($0)" }
            lines.append("")
        }
        lines += ["## Sources" + (previousRunId.map { " since nightly run \($0)" } ?? " (since the work directory was made)"), "",
                  "| added | changed | removed | failed since | ok | failed | ignored |", "|---:|---:|---:|---:|---:|---:|---:|",
                  "| \(sources.added.count) | \(sources.changed.count) | \(sources.removed.count) | \(sources.failed.count) | "
                  + "\(sources.totals["ok"] ?? 0) | \(sources.totals["failed"] ?? 0) | \(sources.totals["ignored"] ?? 0) |", ""]
        for problem in sources.listingsNotTaken ?? [] {
            lines += ["Compared by the database's rows: a run's source list is not taken (\(problem.escaped)).", ""]
        }
        for (title, paths) in [("Added", sources.added), ("Changed", sources.changed), ("Removed", sources.removed)] where !paths.isEmpty {
            lines.append("\(title):")
            lines += paths.prefix(50).map { "- \(Self.code($0))" }
            if paths.count > 50 { lines.append("- … and \(paths.count - 50) more") }
            lines.append("")
        }
        if !sources.failed.isEmpty {
            lines.append("Failed:")
            lines += sources.failed.prefix(50).map { "- \(Self.code($0.path)) (\($0.stage)): \($0.reason.escaped)" }
            lines.append("")
        }
        // Failures that are not new are not listed above; the exit status still counts them.
        if failedUnits > sources.failed.count {
            lines += ["\(failedUnits) unit(s) fail in the stages' current outputs, \(failedUnits - sources.failed.count) of them as before "
                      + "this report's period: `emopipe sources --failed` lists every one with its reason.", ""]
        }
        // A failed night ran no further than its error: what its ingest noticed is all there is to say.
        if error != nil { return lines.joined(separator: "\n") + "\n" }
        lines += ["## Stages", "", "| stage | action | seconds | cpu seconds | peak RSS MB | summary |", "|---|---|---:|---:|---:|---|"]
        lines += stages.map {
            let cpu = $0.cpuSeconds.map { $0.fixedText(places: 1) } ?? "—"
            let peak = $0.peakRssMb.map { $0.fixedText(places: 0) } ?? "—"
            return "| \($0.stage) | \($0.action) | \($0.seconds.fixedText(places: 1)) | \(cpu) | \(peak) | \($0.summary) |"
        }
        lines += ["", "## Metrics" + (previousRunId.map { " against nightly run \($0)" } ?? " (the first nightly run of this manifest and data root)"), "",
                  "| metric | previous | now | delta | |", "|---|---:|---:|---:|---|"]
        lines += metrics.map { m in
            // A count (clips, test actors) is a whole number: 60, not 60.0000.
            let counted = m.better == .neither
            func shown(_ value: Double, signed: Bool = false) -> String {
                counted && value.rounded() == value && abs(value) < 1e15
                    ? (signed && value >= 0 ? "+" : "") + String(Int64(value)) : String(format: signed ? "%+.4f" : "%.4f", value)
            }
            let previous = m.previous.map { shown($0) } ?? "—"
            let delta = m.delta.map { shown($0, signed: true) } ?? "—"
            return "| \(m.name) | \(previous) | \(shown(m.current)) | \(delta) | \(m.regressed ? "**\(m.alert) beyond \(tolerance)**" : "") |"
        }
        if let absentMetrics {
            lines += ["", "Watched but not in this run's results, so never compared: " + absentMetrics.map { "`\($0)`" }.joined(separator: ", ") + "."]
        }
        lines += ["", modelSentence]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A path as a Markdown code span: control characters escaped (a newline would end the list item),
    /// and fenced by two backticks when it holds one.
    static func code(_ path: String) -> String {
        let text = path.escaped
        guard text.contains("`") else { return "`\(text)`" }
        // Fenced by one backtick more than the longest run of them inside.
        var longest = 0, run = 0
        for character in text { run = character == "`" ? run + 1 : 0; longest = max(longest, run) }
        let fence = String(repeating: "`", count: longest + 1)
        return "\(fence) \(text) \(fence)"
    }

    /// Whether tonight retrained, and, when it did not, whether the model is still the one the previous
    /// report scored: an `emopipe run` in between (or a night killed after training) may have trained another.
    var modelSentence: String {
        if retrained {
            // Some folds may have taken an earlier training's weights: the train stage's summary says how many.
            let taken = trainStage?.summary.components(separatedBy: "; ").first { $0.contains(StageSummary.someWeightsTaken) }
            return "The model was retrained: a training input changed" + (taken.map { " (\($0))." } ?? ".")
        }
        if trainRan {
            return "The model was not retrained: its folds' training and validation clips and settings are those of an earlier training, whose weights were taken; it was evaluated again."
        }
        if let previousModelRun, let modelRun, modelRun != previousModelRun {
            return "The model was not retrained tonight, but it is not the one the previous report scored: run \(modelRun) trained it since."
        }
        return "The model was not retrained: no training input changed."
    }

    var verdict: String {
        switch exitCode {
        case ExitStatus.ok: return "all well"
        case ExitStatus.partial: return "\(failedUnits) source(s) failed"
        case ExitStatus.metricsRegressed: return "metrics worsened: " + regressions.map { "\($0.name) \($0.alert)" }.joined(separator: ", ")
        default: return "the pipeline failed"
        }
    }
}
