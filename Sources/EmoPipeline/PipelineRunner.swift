import EmoCore
import EmoStore
import Foundation
import Logging

/// Which stages a run executes.
public struct RunSelection: Equatable, Sendable {
    /// Run this stage and everything it depends on, and stop there.
    public var until: String?
    /// Run only this stage; its upstream stages must have completed before.
    public var only: String?
    /// Recompute these stages even when they are up to date.
    public var force: Set<String>
    /// Run these stages and everything they depend on (what `reproduce` re-runs).
    public var targets: [String]
    /// Run as this scale-out worker: per-source stages only, over this slice of the sources.
    public var worker: WorkerSlice?

    public init(until: String? = nil, only: String? = nil, force: Set<String> = [], targets: [String] = [],
                worker: WorkerSlice? = nil) {
        self.until = until; self.only = only; self.force = force; self.targets = targets; self.worker = worker
    }
}

/// What happened to one stage in a run.
public struct StageReport: Equatable, Sendable {
    public enum Action: String, Sendable { case ran, upToDate = "up to date" }
    public var stage: String
    public var action: Action
    public var outcome: StageOutcome
    public var seconds: Double
    /// The run whose output this is: this run's, or for an up-to-date stage the earlier one.
    public var producedByRun: String
    /// What executing it cost (for an up-to-date stage: what deciding so cost).
    public var usage: ResourceUsage
}

public struct RunReport: Sendable {
    public var runId: String
    public var stages: [StageReport]
    /// Failed units in the selected stages' current outputs (not only this run's new failures).
    public var failedUnits: Int
    public var exitCode: Int32 { failedUnits > 0 ? ExitStatus.partial : ExitStatus.ok }
}

/// What a run that stopped on an error (Ctrl-C, a stage that failed) had done by then: its summary
/// still says which stages finished and what the run cost.
public struct StoppedRun: Sendable {
    public enum How: String, Sendable { case interrupted, failed }
    public var runId: String
    /// The stages finished before it stopped, as a finished run reports them.
    public var finished: [StageReport]
    /// The stage it stopped in, with what it had cost by then (nil when it stopped between stages).
    public var stoppedIn: (stage: String, usage: ResourceUsage)?
    public var how: How
}

/// Runs a pipeline's stages in dependency order over one work directory, skipping stages whose
/// fingerprint is unchanged, and records every execution as provenance.
///
///     let runner = try PipelineRunner(manifest: manifest, workspace: dir, stages: registry)
///     let report = try runner.run(RunSelection(until: "audio"))
public final class PipelineRunner {
    public let manifest: Manifest
    public let pipeline: PipelineDefinition
    public let workspace: Workspace
    public let stages: [String: any Stage]
    public let cancellation: Cancellation
    /// Library name → version, recorded with every run (the CLI passes what it links).
    public let libraries: [String: String]
    private let logger = Log.logger("run")
    /// Called once a run holds the lock and has recorded itself, before its first stage: what must
    /// outlive a killed run (the CLI remembers the data root here) is done then, not at the end.
    public var started: (() -> Void)?
    /// The id of the run `run` last recorded (also when it then failed): a sweep names a failed trial's run.
    public private(set) var recordedRunId: String?
    /// Set when `run` stopped on an error after recording its run (nil after a run that finished).
    public private(set) var stopped: StoppedRun?
    /// The stage `execute` last saw throw, with what it had cost: the stopped run's summary names it.
    private var lastStageStopped: (stage: String, usage: ResourceUsage)?

    /// Every declared stage's parameters, decoded and validated once, before anything runs.
    public let parameters: [String: ResolvedParameters]

    /// `pipeline`: the manifest's pipeline file as already read (a sweep reads it once for all its trials).
    public init(manifest: Manifest, workspace: Workspace, stages: [any Stage],
                cancellation: Cancellation = Cancellation(), libraries: [String: String] = [:],
                pipeline alreadyRead: PipelineDefinition? = nil) throws {
        self.manifest = manifest
        self.libraries = libraries
        self.pipeline = try alreadyRead ?? PipelineDefinition.load(path: manifest.pipelinePath, manifest: manifest.path)
        self.workspace = workspace
        self.stages = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.cancellation = cancellation
        for declared in pipeline.stages where self.stages[declared.name] == nil {
            throw PipelineError.invalidFile(
                "\(manifest.pipelinePath): stage '\(declared.name)' has no implementation in this emopipe (known: \(self.stages.keys.sorted().joined(separator: ", ")))")
        }
        for stage in manifest.overrides.keys.sorted() where pipeline.stage(stage) == nil {
            throw PipelineError.invalidFile("\(manifest.path): params for unknown stage '\(stage.shownKey)'"
                + "\(NearestName.among(pipeline.stageNames, to: stage).map { "; did you mean \($0)?" } ?? "") (stages: \(pipeline.stageNames.joined(separator: ", ")))")
        }
        let overrides = manifest.commandLine
        for override in overrides where pipeline.stage(override.stage) == nil {
            let given = "\(override.bySweep ? "sweep key" : "--set") \("\(override.stage).\(override.key)".echoed)"
            // `resources.max_memory_mb` looks like a stage key; saying "unknown stage" sends a user
            // looking for a stage that was never meant.
            if Manifest.knownKeys.contains(override.stage) {
                let instead = switch override.stage {
                case "params": "name the stage without 'params' (train.epochs=3)"
                case "threads", "data": "use --\(override.stage), or give '\(override.stage)' in the manifest"
                default: "give '\(override.stage)' in the manifest"
                }
                throw PipelineError.invalidFile("\(given): '\(override.stage)' is a manifest field, not a stage; \(override.bySweep ? "a sweep" : "--set") sets stage parameters only (stages: \(pipeline.stageNames.joined(separator: ", "))): \(instead)")
            }
            throw PipelineError.invalidFile("\(given): unknown stage '\(override.stage.shownKey)'"
                + "\(NearestName.among(pipeline.stageNames, to: override.stage).map { "; did you mean \($0)?" } ?? "") (stages: \(pipeline.stageNames.joined(separator: ", ")))")
        }
        var resolved: [String: ResolvedParameters] = [:]
        for declared in pipeline.stages {
            let layers = [
                ParameterResolver.Layer(origin: .pipeline(path: manifest.pipelinePath), values: declared.params),
                ParameterResolver.Layer(origin: .manifest(path: manifest.path), values: manifest.overrides[declared.name] ?? [:]),
                ParameterResolver.Layer(origin: .commandLine, values: Self.values(of: overrides.filter { !$0.bySweep }, stage: declared.name)),
                // Last: a sweep trial's values (its budget's epochs too) are what the trial runs.
                ParameterResolver.Layer(origin: .sweep(path: manifest.path), values: Self.values(of: overrides.filter(\.bySweep), stage: declared.name)),
            ]
            resolved[declared.name] = try self.stages[declared.name]?.resolveParameters(layers: layers)
        }
        for declared in pipeline.stages { try self.stages[declared.name]?.checkAcross(resolved) }
        // What a stage's code reads under these parameters must be reached through its needs, or its
        // fingerprint would not follow changes there (train with modalities [audio] reads no faces).
        let declaredStages = Set(pipeline.stageNames)
        for declared in pipeline.stages {
            guard let stage = self.stages[declared.name], let parameters = resolved[declared.name] else { continue }
            let upstream = pipeline.closure(of: declared.name).subtracting([declared.name])
            let read = stage.reads.subtracting(stage.unreadNeeds(resolved: parameters))
            // None of them declared, the stage would read nothing and go on (audio: "0 sources"). (One of
            // several may be left out: a pipeline without faces trains on speech.)
            if !read.isEmpty, read.isDisjoint(with: declaredStages), let absent = read.sorted().first {
                throw PipelineError.invalidFile("\(manifest.pipelinePath): stage '\(declared.name)' reads the output of '\(absent)', which this "
                    + "pipeline does not declare: add a stage '\(absent)' and list it in '\(declared.name)''s needs")
            }
            if let missing = read.filter({ declaredStages.contains($0) && !upstream.contains($0) }).sorted().first {
                throw PipelineError.invalidFile("\(manifest.pipelinePath): stage '\(declared.name)' reads the output of '\(missing)', but its needs "
                    + "(\(declared.needs.joined(separator: ", "))) do not lead there: add '\(missing)' to its needs, or its results would not follow changes to '\(missing)'")
            }
        }
        self.parameters = resolved
        // Hashed once per runner: a landmark model is some 100 MB.
        self.contentDigests = resolved.mapValues { $0.contentDigests() }.filter { !$0.value.isEmpty }
    }

    /// Per stage, the SHA-256 of the files its parameters name and its output depends on.
    private let contentDigests: [String: [String: String]]

    /// The fingerprint `name` would run under with these upstream output digests.
    func fingerprint(_ name: String, stage: any Stage, inputs: [String: String]) -> Fingerprint {
        Fingerprint(stage: name, codeVersion: stage.codeVersion, params: resolvedParams(name), inputs: inputs,
                    files: contentDigests[name] ?? [:])
    }

    /// The scalars the pipeline's stages write, by result file (`metrics.json` → names); empty when
    /// no stage writes results.
    static func resultScalars(_ pipeline: PipelineDefinition, stages: [any Stage]) -> [RunFile: Set<String>] {
        var byFile: [RunFile: Set<String>] = [:]
        for stage in stages where pipeline.stage(stage.name) != nil {
            for (file, names) in stage.resultScalars { byFile[file, default: []].formUnion(names) }
        }
        return byFile
    }

    /// `nightly.metrics` must name scalars the pipeline writes: a misspelt name would never be compared.
    /// `nightly` checks before anything runs; other commands ignore the block. A pipeline that writes no
    /// results has nothing to check against: its reports list every watched name as absent.
    public func checkNightlyMetrics() throws {
        let byFile = Self.resultScalars(pipeline, stages: Array(stages.values))
        guard !byFile.isEmpty else { return }
        let known = byFile.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        if let unknown = manifest.nightly.metrics.first(where: { !known.contains($0) }) {
            throw PipelineError.invalidFile("\(manifest.path): nightly.metrics: \(ParamValue.string(unknown).shown) is not a metric this pipeline writes (known: \(known.sorted().joined(separator: ", ")))")
        }
        // A watched figure these settings never write is never compared: with all of them so, nothing could alert.
        let unwritten = manifest.nightly.metrics.compactMap { metric in metricNeverWritten(metric).map { (metric, $0) } }
        if let (metric, why) = unwritten.first, unwritten.count == manifest.nightly.metrics.count {
            throw PipelineError.invalidFile("\(manifest.path): nightly.metrics: none is written under these settings, so no night could "
                                            + "compare one (\(ParamValue.string(metric).shown): \(why))")
        }
        for (metric, why) in unwritten {
            logger.warning("nightly.metrics: \(ParamValue.string(metric).shown) is never written under these settings, so never compared (\(why))")
        }
        // Counts and settings are reported but never alert: a watch of only those could never alert either.
        let counts = manifest.nightly.metrics.filter { NightlyReport.Direction(metric: $0) == .neither }
        if let first = counts.first, counts.count == manifest.nightly.metrics.count {
            throw PipelineError.invalidFile("\(manifest.path): nightly.metrics: \(ParamValue.string(first).shown)\(counts.count > 1 ? " and the others" : "") "
                                            + "\(counts.count > 1 ? "are counts or settings" : "is a count or setting"), which are reported but never alert: "
                                            + "with no score watched, no night could alert; add one (weighted_f1, accuracy, …)")
        }
    }

    /// `sweep.metric` must name a scalar of metrics.json, which trials are scored by: checked before
    /// trial 0 trains, not after.
    static func checkSweepMetric(_ sweep: SweepSpec, manifest: Manifest, pipeline: PipelineDefinition, stages: [any Stage]) throws {
        // Counts and settings are no score to rank on (SweepSpec refuses them): not offered.
        let known = (resultScalars(pipeline, stages: stages)[.metrics] ?? []).filter { NightlyReport.Direction(metric: $0) != .neither }
        guard !known.contains(sweep.metric) else { return }
        throw PipelineError.invalidFile("\(manifest.path): sweep.metric = \(ParamValue.string(sweep.metric).shown): "
            + (known.isEmpty ? "this pipeline writes no metrics.json to score trials by (it has no evaluate stage)"
                             : "not a scalar of metrics.json (known: \(known.sorted().joined(separator: ", ")))"))
    }

    /// Why a run of these settings writes no `metric` in metrics.json although the pipeline can: a part
    /// written only under some settings. Nil when it is written.
    func metricNeverWritten(_ metric: String) -> String? {
        pipeline.stageNames.lazy.compactMap { name in
            self.stages[name]?.scalarNotWritten(metric, parameters: self.parameters, manifest: self.manifest)
        }.first
    }

    /// A stage's parameters in canonical form plus the manifest fields it reads: what its
    /// fingerprint hashes and its stage state records (execution-only keys at their defaults).
    public func resolvedParams(_ stageName: String) -> [String: ParamValue] {
        stageParams(stageName, \.fingerprinted)
    }

    /// The same with every value as given, execution-only keys too: what a run's record keeps, so that
    /// `reproduce` runs it as it ran.
    public func recordedParams(_ stageName: String) -> [String: ParamValue] {
        stageParams(stageName, \.encoded)
    }

    private func stageParams(_ stageName: String, _ form: KeyPath<ResolvedParameters, [String: ParamValue]>) -> [String: ParamValue] {
        var params = parameters[stageName]?[keyPath: form] ?? [:]
        for field in stages[stageName]?.manifestFields ?? [] { params[field] = manifest.globals[field] }
        for (other, keys) in stages[stageName]?.borrowedParameters ?? [:] {
            let values = parameters[other]?[keyPath: form] ?? [:]
            for key in keys { params["\(other).\(key)"] = values[key] ?? .null }
        }
        return params
    }

    /// The fingerprint of a stage's parameters (what its cached units are keyed by).
    public func parametersFingerprint(_ stageName: String) throws -> String {
        guard let stage = stages[stageName], pipeline.stage(stageName) != nil else {
            throw PipelineError.unknownStage(stageName, known: pipeline.stageNames)
        }
        return fingerprint(stageName, stage: stage, inputs: [:]).parameters
    }

    /// The stages `selection` runs, in order.
    public func selectedStages(_ selection: RunSelection) throws -> [String] {
        let stages = try workerStages(selection, of: try requestedStages(selection))
        // A forced stage the run would not reach is a mistake worth saying, not a no-op.
        if let unreached = selection.force.sorted().first(where: { !stages.contains($0) }) {
            let widen = selection.worker == nil ? "widen --until/--only" : "force it in the run after `emopipe merge` (a --worker runs per-source stages only)"
            throw PipelineError.invalidFile("--force \(unreached): this run does not reach '\(unreached)' (it runs \(stages.joined(separator: ", "))); drop --force \(unreached) or \(widen)")
        }
        return stages
    }

    private func workerStages(_ selection: RunSelection, of stages: [String]) throws -> [String] {
        guard selection.worker != nil else { return stages }
        // A worker does the per-source share of the work; merge, then the main run, does the rest.
        let explicit = [selection.until, selection.only].compactMap { $0 } + selection.targets
        if let whole = explicit.first(where: { self.stages[$0]?.perSource != true }) {
            throw PipelineError.invalidFile("--worker runs per-source stages only (\(pipeline.stageNames.filter { self.stages[$0]?.perSource == true }.joined(separator: ", "))); '\(whole)' runs after `emopipe merge`")
        }
        return stages.filter { self.stages[$0]?.perSource == true }
    }

    private func requestedStages(_ selection: RunSelection) throws -> [String] {
        for name in [selection.until, selection.only].compactMap({ $0 }) + selection.force.sorted() + selection.targets
        where pipeline.stage(name) == nil {
            throw PipelineError.unknownStage(name, known: pipeline.stageNames)
        }
        if let only = selection.only { return [only] }
        let wanted = readClosure(of: roots(selection))
        return pipeline.stageNames.filter(wanted.contains)
    }

    /// Where the selection's stages end: its targets, its `--until` stage, or the pipeline's final
    /// stages and any stage forced by name.
    private func roots(_ selection: RunSelection) -> [String] {
        let ends = !selection.targets.isEmpty ? selection.targets : selection.until.map { [$0] } ?? pipeline.finalStages
        // A forced stage those ends depend on in the pipeline runs even when nothing reads it now.
        let declared = pipeline.closure(of: ends)
        return ends + selection.force.sorted().filter { declared.contains($0) && !ends.contains($0) }
    }

    /// The stages `name` reads: its pipeline `needs` less those its parameters leave unread.
    public func reads(_ name: String) -> [String] {
        let needs = pipeline.stage(name)?.needs ?? []
        guard let stage = stages[name], let resolved = parameters[name] else { return needs }
        let unread = stage.unreadNeeds(resolved: resolved)
        return needs.filter { !unread.contains($0) }
    }

    /// `roots` and every stage they read from, transitively.
    func readClosure(of roots: [String]) -> Set<String> {
        var result = Set(roots)
        var frontier = roots
        while let current = frontier.popLast() {
            for need in reads(current) where result.insert(need).inserted { frontier.append(need) }
        }
        return result
    }

    /// The stages a whole run leaves out because nothing it runs reads them (for the log and `status`).
    public var unreadStages: [String] {
        let read = readClosure(of: pipeline.finalStages)
        return pipeline.stageNames.filter { !read.contains($0) }
    }

    /// The selected stages a run recomputes: the forced ones and every selected stage downstream of
    /// them (a forced stage may reproduce its output digest exactly, which alone would leave its
    /// dependents up to date).
    public func forcedStages(_ selection: RunSelection, selected: [String]) -> Set<String> {
        guard !selection.force.isEmpty else { return [] }
        return Set(selected.filter { !readClosure(of: [$0]).isDisjoint(with: selection.force) })
    }

    /// One stage's overrides as a layer's values; of two for one key, the later wins.
    static func values(of overrides: [ParameterOverride], stage: String) -> [String: ParamValue] {
        Dictionary(overrides.filter { $0.stage == stage }.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// What each stage checks of its parameters beyond decoding (a landmark model dlib must load), as
    /// a run checks it before any stage runs: `run`, `run --dry-run` and `params` refuse alike.
    public func checkBeforeRunning(_ names: [String], loading: Bool = true) throws {
        for name in names {
            if let stage = stages[name], let resolved = parameters[name] { try stage.checkBeforeRunning(resolved, loading: loading) }
        }
    }

    /// Each stage's forecasts, by stage: computed once for a run or a dry run and read from there, since each stage's
    /// may walk the whole data root.
    func forecasts(of names: some Sequence<String>) -> [String: [Forecast]] {
        Dictionary(names.map { ($0, stages[$0]?.forecast(parameters, manifest: manifest) ?? []) }, uniquingKeysWith: { first, _ in first })
    }

    /// The forecasts of `names`, as warnings. A run says them once a stage before them is about to run, so
    /// never when everything before them is up to date (a stage that then runs says its own refusal at once);
    /// a dry run, which runs nothing, says those of every stage that would run.
    func logForecasts(_ names: some Sequence<String>, _ forecasts: [String: [Forecast]], selected: [String]) {
        let ingestRuns = selected.contains(StageName.ingest.rawValue)
        for name in names {
            for forecast in forecasts[name] ?? [] { logger.warning("\(forecast.warning(ingestRuns: ingestRuns))") }
        }
    }

    /// The first certain refusal foretold among the stages of `running` after its first (stages that would run, in
    /// order, the first about to run now: it refuses by itself when it runs), as the run refuses with it before that
    /// first one runs: work whose end is already known to be a refusal is not begun. Only once ingest has read the
    /// data root in this run (`selected` holds it, and not among `running`): the forecasts judge the root's file names,
    /// while the stages read what ingest recorded; and ingest's record of the data (files added, removed, failed) is kept.
    /// `store`: a stage up to date on what is recorded now completed with these inputs, so is not refused by a forecast.
    func foretoldRefusal(running: ArraySlice<String>, forecasts: [String: [Forecast]], selected: [String],
                         store: ProvenanceStore) throws -> (stage: String, error: PipelineError)? {
        let ingest = StageName.ingest.rawValue
        guard selected.contains(ingest), !running.contains(ingest) else { return nil }
        for (offset, name) in running.enumerated().dropFirst() {
            guard let refusal = Self.certainRefusal(forecasts[name]), try !upToDateOnRecord(name, store: store) else { continue }
            let before = Array(running.prefix(offset))
            return (name, .missingData(refusal + ": refused before \(Self.listed(before)) ran (\(name) would refuse it only after)"))
        }
        return nil
    }

    /// Whether `name`'s last completion has the fingerprint its parameters and the outputs recorded now give it.
    private func upToDateOnRecord(_ name: String, store: ProvenanceStore) throws -> Bool {
        // An upstream that never completed leaves it not up to date (upstreamDigests refuses such a stage to run).
        guard let stage = stages[name], let state = try store.stageState(name), let inputs = try? upstreamDigests(name, store: store) else { return false }
        return state.fingerprint == fingerprint(name, stage: stage, inputs: inputs).full
    }

    /// The first certain refusal among a stage's forecasts, or nil.
    static func certainRefusal(_ forecasts: [Forecast]?) -> String? {
        forecasts?.lazy.compactMap(\.certainRefusal).first
    }

    /// "audio", "audio and faces", "audio, faces and split".
    static func listed(_ names: [String]) -> String {
        names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " and " + names[names.count - 1]
    }

    /// A foretold refusal as the refusing stage's failed attempt in this run, so that `runs` and `status` give its
    /// reason as they give a stage's own. It never ran: no fingerprint, no time.
    private func recordForetold(_ refusal: (stage: String, error: PipelineError), runId: String, store: ProvenanceStore) throws {
        let now = Date()
        var attempt = StageRunRecord(runId: runId, stage: refusal.stage, fingerprint: "", startedAt: now,
                                     parametersFingerprint: try parametersFingerprint(refusal.stage))
        attempt.state = .failed
        attempt.finishedAt = now
        attempt.message = "\(refusal.error)"
        try store.save(&attempt)
    }

    /// The stages a whole run reaches (what `params` checks as a run would).
    public func stagesOfAWholeRun() throws -> [String] { try selectedStages(RunSelection()) }

    // MARK: Run

    public func run(_ selection: RunSelection, command: String) throws -> RunReport {
        let selected = try selectedStages(selection)
        let forced = forcedStages(selection, selected: selected)
        try checkBeforeRunning(selected)
        logUnread(selection)
        try checkOnly(selection)
        // Only the folder the lock lives in before the database is known to be EmoPipe's: a refused one
        // (empty, foreign) is left without cache/ and runs/ folders it never had.
        try Folder.create(workspace.root)
        let runId = Self.newRunId()
        let holder = "emopipe run \(runId) (pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since \(ISO8601DateFormatter().string(from: Date())))"
        let lock = try workspace.lock(holder: holder)
        defer { lock.release() }
        if let previous = lock.previousHolder {
            logger.warning("took over the lock left by a run that is no longer alive: \(previous)")
        }
        if let missing = workspace.missingDatabase { logger.warning("\(workspace.root): \(missing)") }
        let store = try workspace.openStore(.readWrite)
        try workspace.create()
        try checkWorkerRole(selection.worker, store: store)
        try store.markInterruptedRuns()
        var record = RunRecord(
            id: runId, command: command, manifestJSON: manifest.recordedText, manifestSHA256: SHA256Hex.of(manifest.recordedText),
            dataRoot: manifest.dataRoot, threads: manifest.threads, codeVersion: EmoPipeVersion.string,
            host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), startedAt: Date())
        record.manifestPath = manifest.path
        record.worker = selection.worker?.description
        record.environmentJSON = RunEnvironment.capture(manifest: manifest, libraries: libraries, workspace: workspace).json
        record.paramsJSON = ParamValue.object(Dictionary(uniqueKeysWithValues: selected.map {
            ($0, ParamValue.object(recordedParams($0)))
        })).canonicalJSON
        try store.insert(record)
        recordedRunId = runId
        stopped = nil
        lastStageStopped = nil
        started?()

        var reports: [StageReport] = []
        do {
            try saveManifestCopy(runId: runId)
            var repaired = Set<String>()
            // A forced stage is forced once: run again after a repair, a stage this run completed is judged by
            // its fingerprint (a forced train must not train every fold anew, a forced audio recompute every source).
            var forcedNow = forced
            // What a stage did earlier in this run: gone over again after a repair, it is up to date because of it.
            var ranEarlier: [String: StageReport] = [:]
            var next = 0
            // The forecasts of the stages after the first to run, made once as it starts; judged once ingest has run.
            var foretold: [String: [Forecast]]?, refusalsJudged = false
            while next < selected.count {
                try cancellation.check()
                lastStageStopped = nil
                do {
                    let stageNow = next
                    var report = try execute(selected[next], runId: runId, store: store, forced: forcedNow.contains(selected[next]),
                                             worker: selection.worker) {
                        let firstToRun = foretold == nil
                        let forecasts = foretold ?? self.forecasts(of: selected[(stageNow + 1)...])
                        foretold = forecasts
                        // The first stage to run after ingest: a certain refusal of a stage after it stops the run
                        // before this stage's work.
                        if !refusalsJudged, let ingest = selected.firstIndex(of: StageName.ingest.rawValue), stageNow > ingest {
                            refusalsJudged = true
                            if let refusal = try foretoldRefusal(running: selected[stageNow...], forecasts: forecasts, selected: selected, store: store) {
                                try recordForetold(refusal, runId: runId, store: store)
                                throw refusal.error
                            }
                        }
                        // The first stage to run: what the stages after it will refuse is worth knowing now.
                        if firstToRun { logForecasts(selected[(stageNow + 1)...], forecasts, selected: selected) }
                    }
                    if report.action == .upToDate, report.producedByRun == runId, let earlier = ranEarlier[report.stage] { report = earlier }
                    reports.append(report)
                    forcedNow.remove(selected[next])
                    next += 1
                } catch PipelineError.damagedCache(let producer, let detail) {
                    guard let from = selected.firstIndex(of: producer) else {
                        throw PipelineError.missingData("\(detail); this run leaves the \(producer) stage out, so it cannot compute the record "
                                                        + "again: `emopipe cache verify`, then a run that includes \(producer)")
                    }
                    // Once per producing stage: a second damage there is the disk's, and stops the run.
                    guard repaired.insert(producer).inserted else {
                        throw PipelineError.missingData("\(detail); the second damage to \(producer) records in this run: stopped "
                                                        + "(check the disk; `emopipe cache verify`, then run again)")
                    }
                    try dropDamagedRecords(of: producer, found: detail, runId: runId, store: store)
                    for report in reports where selected[from...].contains(report.stage) && report.action == .ran {
                        ranEarlier[report.stage] = report
                    }
                    reports.removeAll { selected[from...].contains($0.stage) }
                    next = from
                }
            }
        } catch {
            let interrupted = (error as? EmoError) == .interrupted
            stopped = StoppedRun(runId: runId, finished: reports, stoppedIn: lastStageStopped, how: interrupted ? .interrupted : .failed)
            do {
                // As the process will exit: a training refused at run time for its parameters is 64, not 1.
                try store.finishRun(id: runId, status: interrupted ? .interrupted : .failed, exitCode: Int(ExitStatus.of(error)))
            } catch let recording {
                // The run's own error is the one to report; this says why `runs` will show it otherwise.
                logger.warning("the end of run \(runId) could not be recorded (\(EmoError.reason(of: recording))), so `emopipe runs` will list it as interrupted")
            }
            throw error
        }
        let failed = try selected.map { try store.stageState($0)?.unitsFailed ?? 0 }.clampedSum()
        let report = RunReport(runId: runId, stages: reports, failedUnits: failed)
        try recordDataset(runId: runId, store: store)
        try store.finishRun(id: runId, status: failed > 0 ? .partial : .done, exitCode: Int(report.exitCode))
        return report
    }

    /// `aboutToRun` is called when the stage is not up to date, before it runs.
    private func execute(_ name: String, runId: String, store: ProvenanceStore, forced: Bool,
                         worker: WorkerSlice?, aboutToRun: () throws -> Void) throws -> StageReport {
        guard let stage = stages[name], let resolved = parameters[name] else {
            throw PipelineError.unknownStage(name, known: pipeline.stageNames)
        }
        let fingerprint = self.fingerprint(name, stage: stage, inputs: try upstreamDigests(name, store: store))
        let context = StageContext(runId: runId, manifest: manifest, workspace: workspace, store: store,
                                   fingerprint: fingerprint, forced: forced,
                                   logger: Log.logger(name), cancellation: cancellation, worker: worker,
                                   parameterOrigins: resolved.origins, pipelineStages: Set(pipeline.stageNames))
        let started = Date()
        let meter = ResourceMeter()
        if !forced, let state = try store.stageState(name), state.fingerprint == fingerprint.full,
           try stage.externalChanges(context, resolved: resolved) == nil {
            context.logger.info("up to date (as run \(state.runId) left it: \(state.summary))")
            let outcome = StageOutcome(outputDigest: state.outputDigest, unitsDone: 0, unitsSkipped: 0,
                                       unitsFailed: state.unitsFailed, summary: state.summary)
            var skipped = StageRunRecord(runId: runId, stage: name, fingerprint: fingerprint.full, startedAt: started,
                                         parametersFingerprint: fingerprint.parameters)
            skipped.state = .upToDate
            skipped.finishedAt = started
            skipped.unitsFailed = state.unitsFailed
            skipped.message = state.summary
            skipped.outputDigest = state.outputDigest
            skipped.producedByRun = state.runId
            let usage = meter.finish()
            skipped.record(usage)
            try store.save(&skipped)
            return StageReport(stage: name, action: .upToDate, outcome: outcome, seconds: usage.seconds,
                               producedByRun: state.runId, usage: usage)
        }
        try aboutToRun()
        context.logger.info("running (cache key \(fingerprint.short)\(forced ? ", forced" : ""))")
        var stageRun = StageRunRecord(runId: runId, stage: name, fingerprint: fingerprint.full, startedAt: started,
                                         parametersFingerprint: fingerprint.parameters)
        try store.save(&stageRun)
        let outcome: StageOutcome
        do {
            outcome = try stage.run(context, resolved: resolved)
        } catch {
            stageRun.state = (error as? EmoError) == .interrupted ? .interrupted : .failed
            stageRun.finishedAt = Date()
            let usage = meter.finish()
            lastStageStopped = (name, usage)
            stageRun.record(usage)
            stageRun.message = "\(error)"
            try? store.save(&stageRun)
            throw error
        }
        stageRun.state = outcome.unitsFailed > 0 ? .partial : .done
        stageRun.finishedAt = Date()
        stageRun.unitsDone = outcome.unitsDone
        stageRun.unitsSkipped = outcome.unitsSkipped
        stageRun.unitsFailed = outcome.unitsFailed
        stageRun.message = outcome.summary
        stageRun.outputDigest = outcome.outputDigest
        stageRun.producedByRun = runId
        let usage = meter.finish()
        stageRun.record(usage)
        try store.recordStageCompletion(stageRun, state: StageStateRecord(
            stage: name, fingerprint: fingerprint.full, parametersFingerprint: fingerprint.parameters,
            codeVersion: stage.codeVersion,
            paramsJSON: fingerprint.paramsJSON, inputsJSON: fingerprint.inputsJSON,
            outputDigest: outcome.outputDigest, unitsFailed: outcome.unitsFailed, summary: outcome.summary,
            runId: runId, completedAt: Date()))
        context.logger.info("\(outcome.summary) in \(ProgressReporter.duration(usage.seconds)) (\(usage.line))")
        return StageReport(stage: name, action: .ran, outcome: outcome, seconds: usage.seconds, producedByRun: runId,
                           usage: usage)
    }

    /// What `cache verify` does for one stage, in the run: its damaged records are dropped and recorded
    /// as failures of this run, so the stage, run again, computes them (and only them) anew.
    private func dropDamagedRecords(of stage: String, found detail: String, runId: String, store: ProvenanceStore) throws {
        logger.warning("\(detail.escaped): checking every cached \(stage) record, dropping the damaged ones and computing them again in this run")
        let report = try TensorCache(workspace: workspace, store: store).verify(stage: stage, runId: runId)
        let shards = Set(report.damaged.map(\.shard)).sorted()
        let place = shards.isEmpty ? "" : " (in \(shards.joined(separator: ", ")))"
        logger.warning("\(stage): \(report.damaged.count) of \(report.checkedRecords) cached records damaged\(place); dropped, recorded as failures of this run")
    }

    /// `--only`'s checks before anything is written: the stages it reads completed (a worker's in its own
    /// work directory, which is then not made for a run that cannot start), and said when stale; in a
    /// worker, on their code and parameters alone (its slice would be judged against the whole data set).
    func checkOnly(_ selection: RunSelection) throws {
        guard let only = selection.only else { return }
        try checkUpstreamCompleted(of: only)
        if selection.worker == nil { noteStaleUpstream(of: only) } else { noteChangedUpstreamSettings(of: only) }
    }

    /// A worker's `--only`: the stages it reads judged on their code and parameters alone (its slice of the data
    /// would be judged against the whole data set), said when they changed (another `--data`, say).
    func noteChangedUpstreamSettings(of name: String) {
        guard workspace.exists, let store = try? workspace.openStore(.readOnly) else { return }
        let upstream = readClosure(of: [name]).subtracting([name])
        let changed = pipeline.stageNames.filter(upstream.contains).compactMap { stage in
            ((try? store.stageState(stage)) ?? nil).flatMap { settingsChange(of: stage, since: $0) }.map { (stage, $0) }
        }
        noteUpstream(of: name, changed, state: "ran with other settings", rerun: "`emopipe run --until \(name)` with the same --worker")
    }

    /// `--only NAME`'s warning that the stages it reads are not what a run would make now (`changed`: each with
    /// why, in pipeline order): NAME takes their last outputs, and `rerun` brings them up to date.
    private func noteUpstream(of name: String, _ changed: [(stage: String, reason: String)], state: String, rerun: String) {
        guard let first = changed.first else { return }
        let one = changed.count == 1
        let note = "--only \(name): \(changed.map(\.stage).joined(separator: ", ")) \(state) (\(first.stage): \(first.reason)); "
            + "\(name) takes \(one ? "its last output as it is" : "their last outputs as they are") (\(rerun) brings \(one ? "it" : "them") up to date)"
        logger.warning("\(note)")
    }

    /// `--only` needs every stage it reads completed once: refused (exit 64) before a run is recorded
    /// or a work directory made, as the stage itself would refuse it after.
    func checkUpstreamCompleted(of name: String) throws {
        let upstream = reads(name)
        guard let first = upstream.first else { return }
        guard workspace.exists else { throw PipelineError.upstreamNotReady(stage: name, upstream: first) }
        let store = try workspace.openStore(.readOnly)
        if let missing = try upstream.first(where: { try store.stageState($0) == nil }) {
            throw PipelineError.upstreamNotReady(stage: name, upstream: missing)
        }
    }

    /// `--only` runs one stage on what the stages it reads last produced: when one of them is not up to
    /// date (the data changed since ingest, a parameter since train), that is said, so the stage's
    /// "up to date" is not taken for the data on disk.
    func noteStaleUpstream(of name: String) {
        guard workspace.exists else { return }
        let upstream = readClosure(of: [name]).subtracting([name])
        let stale: [StageStatus]
        do {
            stale = try stageStatuses(of: upstream).filter { $0.state != .upToDate }
        } catch {
            logger.warning("--only \(name): the stages it reads could not be checked against the data (\(error)); \(name) takes their last outputs as they are")
            return
        }
        noteUpstream(of: name, stale.map { ($0.stage, $0.reason) }, state: stale.count == 1 ? "is not up to date" : "are not up to date",
                     rerun: "`emopipe run --until \(name)`")
    }

    /// Says which stages the pipeline's `needs` would have pulled in but nothing run reads, so none
    /// is left out silently.
    func logUnread(_ selection: RunSelection) {
        guard selection.only == nil else { return }
        let roots = roots(selection)
        let declared = pipeline.closure(of: roots)
        let read = readClosure(of: roots)
        for name in pipeline.stageNames where declared.contains(name) && !read.contains(name) {
            let readers = pipeline.stages.filter { $0.needs.contains(name) && read.contains($0.name) }.map(\.name)
            let who = readers.isEmpty ? "no stage this run runs reads it" : "\(readers.joined(separator: ", ")) does not read it"
            logger.info("\(name): left out: \(who) with these parameters (run it by name: --until \(name))")
        }
    }

    private func upstreamDigests(_ name: String, store: ProvenanceStore) throws -> [String: String] {
        var inputs: [String: String] = [:]
        for upstream in reads(name) {
            guard let state = try store.stageState(upstream) else {
                throw PipelineError.upstreamNotReady(stage: name, upstream: upstream)
            }
            inputs[upstream] = state.outputDigest
        }
        return inputs
    }

    /// A worker's work directory serves one slice for good (its `worker.txt` says which), and a
    /// main one never serves a slice: mixing them would make records look missing or present by accident.
    private func checkWorkerRole(_ worker: WorkerSlice?, store: ProvenanceStore) throws {
        switch (worker, workspace.workerSlice) {
        case (nil, nil): return
        case (nil, let other?):
            throw PipelineError.invalidFile("\(workspace.root) is worker \(other)'s work directory; fold it into the main one with `emopipe merge`")
        case (let mine?, let other?) where mine != other:
            throw PipelineError.invalidFile("\(workspace.root) is worker \(other)'s work directory, not \(mine)'s")
        case (let mine?, nil):
            guard try store.runs(limit: 1).isEmpty else {
                throw PipelineError.invalidFile("\(workspace.root) already holds runs that were not worker \(mine)'s")
            }
            try DurableFile.write(Data("\(mine)\n".utf8), to: workspace.workerMarkerPath)
        default: return
        }
    }

    /// The sources in use (ok, under the data root) as `runs/<id>/dataset.tsv` (relative path, SHA-256)
    /// and their fingerprint: the SHA-256 of their sorted content hashes.
    private func recordDataset(runId: String, store: ProvenanceStore) throws {
        let dataset = try Dataset(store: store, root: manifest.dataRoot)
        try DurableFile.write(Data(dataset.listing.utf8), to: workspace.datasetListingPath(runId: runId))
        try store.recordDataset(runId: runId, fingerprint: dataset.fingerprint, sourcesInUse: dataset.entries.count)
    }

    private func saveManifestCopy(runId: String) throws {
        let folder = workspace.runFolder(runId)
        try Folder.create(folder)
        try DurableFile.write(Data(manifest.recordedText.utf8), to: workspace.manifestCopyPath(runId: runId))
    }

    /// A new run id: the UTC start time and a random suffix, e.g. `20261125-131800-ab12cd`.
    public static func newRunId(now: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        // A random suffix keeps two runs started in the same second apart.
        return formatter.string(from: now) + "-" + UUID().uuidString.prefix(6).lowercased()
    }
}

extension StageRunRecord {
    /// Keeps what the execution cost with its row.
    mutating func record(_ usage: ResourceUsage) {
        seconds = usage.seconds
        cpuSeconds = usage.cpuSeconds
        peakRSSMB = usage.peakRSSMB
    }
}

/// The exit statuses scripts rely on (design.md's command-line contract).
public enum ExitStatus {
    public static let ok: Int32 = 0
    public static let failure: Int32 = 1
    public static let partial: Int32 = 3
    public static let metricsRegressed: Int32 = 4
    public static let usage: Int32 = 64
    public static let locked: Int32 = 75
    public static let interrupted: Int32 = 130

    /// The status an error that ends a command gives: the one rule for the process's exit status and
    /// for the exit code a run that the error ended is recorded with.
    public static func of(_ error: Error) -> Int32 {
        switch error {
        case let pipeline as PipelineError:
            switch pipeline {
            case .locked: return locked
            case .invalidFile, .invalidParameter, .unknownStage, .cycle, .upstreamNotReady: return usage
            case .missingData, .damagedCache, .unrepeatable: return failure
            }
        case let emo as EmoError: return emo == .interrupted ? interrupted : failure
        default: return failure
        }
    }
}

public enum EmoPipeVersion {
    public static let string = "0.1.0"
}
