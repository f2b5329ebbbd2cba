import EmoCore
import EmoStore
import Foundation

/// Whether a stage is up to date, and why (`emopipe status`).
public struct StageStatus: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable {
        case upToDate = "up-to-date", stale, neverRun = "never-run"
    }
    public var stage: String
    public var state: State
    public var reason: String
    /// What the execution that produced the stage's current output cost; nil when it never
    /// completed or ran before EmoPipe measured it.
    public var lastExecution: ResourceUsage? = nil
}

/// One stage of `run --dry-run`'s plan.
public struct PlannedStage: Equatable, Sendable {
    public enum Action: String, Sendable { case run, upToDate = "up-to-date" }
    public var stage: String
    public var action: Action
    public var reason: String
    /// Units of work it would compute (sources, folds), or nil where that is known only by running.
    public var units: Int?
    /// The stage before it that runs first and may change `units`, which are then counted on the sources
    /// recorded now (ingest for audio), or nil.
    public var unitsAfter: String?

    public init(stage: String, action: Action, reason: String, units: Int?, unitsAfter: String? = nil) {
        self.stage = stage
        self.action = action
        self.reason = reason
        self.units = units
        self.unitsAfter = unitsAfter
    }
}

extension PipelineRunner {
    /// Every stage's state, in pipeline order, saying of one that is not up to date when a run would
    /// leave it out. Reads the work directory; changes nothing.
    public func status() throws -> [StageStatus] {
        let unread = Set(unreadStages)
        return try stageStatuses().map { status in
            guard status.state != .upToDate else { return status }
            var noted = status
            if unread.contains(status.stage) {
                noted.reason += "; nothing reads it with these parameters, so a run leaves it out"
            } else if let refusal = refusalBeforeRunning(status.stage) {
                noted.reason += "; a run would refuse to start now: \(refusal)"
            } else {
                // What a dry run foretells of it (a split that leaves no actor to train on), said here too.
                // Not when its last attempt failed for the same reason: that failure says it already.
                let forecasts = (stages[status.stage]?.forecast(parameters, manifest: manifest) ?? []).filter { forecast in
                    !status.reason.contains(Self.withoutStagePrefix(forecast.reason, stage: status.stage))
                }.map { $0.warning(ingestRuns: pipeline.stageNames.contains(StageName.ingest.rawValue)) }
                if !forecasts.isEmpty { noted.reason += "; " + forecasts.joined(separator: "; ") }
            }
            return noted
        }
    }

    /// What `run` would refuse before starting the stage (a landmark model that cannot be read), or nil.
    private func refusalBeforeRunning(_ name: String) -> String? {
        do { try checkBeforeRunning([name], loading: false); return nil } catch { return "\(error)" }
    }

    /// One stage's state, judging only the stages it depends on (not every stage's outputs).
    public func stageStatus(_ name: String) throws -> StageStatus {
        guard let status = try stageStatuses(of: pipeline.closure(of: name)).first(where: { $0.stage == name }) else {
            throw PipelineError.unknownStage(name, known: pipeline.stageNames)
        }
        return status
    }

    /// Every stage's state (of `only` those), in pipeline order.
    func stageStatuses(of only: Set<String>? = nil) throws -> [StageStatus] {
        let names = pipeline.stageNames.filter { only?.contains($0) ?? true }
        guard workspace.exists else {
            let reason = workspace.missingDatabase.map { "\(workspace.root): \($0)" } ?? "no work directory yet at \(workspace.root)"
            return names.map { StageStatus(stage: $0, state: .neverRun, reason: reason) }
        }
        let store = try workspace.openStore(.readOnly)
        var result: [String: StageStatus] = [:]
        var ordered: [StageStatus] = []
        for name in names {
            var status = try status(of: name, store: store, upstream: result)
            status.lastExecution = try lastExecution(of: name, store: store)
            result[name] = status
            ordered.append(status)
        }
        return ordered
    }

    /// The cost of the execution that produced the stage's current output.
    private func lastExecution(of name: String, store: ProvenanceStore) throws -> ResourceUsage? {
        guard let state = try store.stageState(name),
              let execution = try store.completedExecution(stage: name, runId: state.runId),
              let seconds = execution.seconds, let cpuSeconds = execution.cpuSeconds else { return nil }
        return ResourceUsage(seconds: seconds, cpuSeconds: cpuSeconds, peakRSSMB: execution.peakRSSMB)
    }

    /// What `run` would do with `selection`, without doing it (`emopipe run --dry-run`): for each
    /// selected stage, whether it would run and why, and how many units it would compute where the
    /// stage can tell beforehand. Reads the work directory; changes nothing.
    public func plan(_ selection: RunSelection) throws -> [PlannedStage] {
        let selected = try selectedStages(selection)
        try checkBeforeRunning(selected)
        logUnread(selection)
        // A dry run refuses and warns as the run would.
        try checkOnly(selection)
        if !workspace.exists, let problem = Folder.creationProblem(workspace.root) { throw problem }
        // `--only` runs the stage on its upstream's last outputs, stale or not: judged alone, as the run judges it.
        let judged = try selection.only.map { try stageStatuses(of: [$0]) } ?? stageStatuses()
        let statuses = Dictionary(uniqueKeysWithValues: judged.map { ($0.stage, $0) })
        let forced = forcedStages(selection, selected: selected)
        // Before the work directory exists, judged against an empty record: what a first run would read, and
        // what it would refuse (a data root without a RAVDESS file) is said now, as with a work directory.
        let store = workspace.exists ? try workspace.openStore(.readOnly) : try ProvenanceStore.empty()
        var planned: [PlannedStage] = [], running: Set<String> = []
        for name in selected {
            let status = statuses[name] ?? StageStatus(stage: name, state: .neverRun, reason: "has never completed")
            let runs = forced.contains(name) || status.state != .upToDate
            let reason = forced.contains(name)
                ? (selection.force.contains(name) ? "forced (--force \(name))" : "downstream of a forced stage") : status.reason
            let units = runs ? try plannedUnits(name, store: store, forced: forced.contains(name)) : 0
            // Counted on what is recorded now: a stage before it that runs first (ingest) may add to them or take some away.
            let runsFirst = reads(name).first(where: running.contains)
            if runs { running.insert(name) }
            planned.append(PlannedStage(stage: name, action: runs ? .run : .upToDate, reason: reason, units: units,
                                        unitsAfter: units == nil ? nil : runsFirst))
        }
        // Of every stage that would run: a run leaves out the first (running, it refuses at once), but a dry run
        // runs nothing, so that stage's refusal (split naming an actor no file has) would go unsaid.
        // What the run would refuse once ingest has read the root, before the first stage after it runs; and what that stage
        // would refuse by itself, which a dry run would otherwise leave unsaid.
        let willRun = selected.filter(running.contains)
        let forecasts = forecasts(of: willRun)
        let afterIngest = willRun.drop { $0 == StageName.ingest.rawValue }
        if selected.contains(StageName.ingest.rawValue), let first = afterIngest.first {
            if let own = Self.certainRefusal(forecasts[first]) { throw PipelineError.missingData(own) }
            if let refusal = try foretoldRefusal(running: afterIngest, forecasts: forecasts, selected: selected, store: store) { throw refusal.error }
        }
        logForecasts(willRun, forecasts, selected: selected)
        return planned
    }

    private func plannedUnits(_ name: String, store: ProvenanceStore, forced: Bool) throws -> Int? {
        guard let stage = stages[name], let resolved = parameters[name] else { return nil }
        let inputs = (try? upstreamDigestsIfKnown(name, store: store)) ?? [:]
        let context = StageContext(runId: "dry-run", manifest: manifest, workspace: workspace, store: store,
                                   fingerprint: fingerprint(name, stage: stage, inputs: inputs),
                                   forced: forced, logger: Log.logger(name), cancellation: cancellation,
                                   worker: workspace.workerSlice)
        return try stage.plannedUnits(context, resolved: resolved)
    }

    private func upstreamDigestsIfKnown(_ name: String, store: ProvenanceStore) throws -> [String: String] {
        var inputs: [String: String] = [:]
        for upstream in reads(name) { inputs[upstream] = try store.stageState(upstream)?.outputDigest }
        return inputs
    }

    private func status(of name: String, store: ProvenanceStore, upstream: [String: StageStatus]) throws -> StageStatus {
        var status = try judged(name, store: store, upstream: upstream)
        // A stage a run would do again whose last attempt, with the parameters it has now, failed: the reason,
        // so it is not lost with the run's output (an attempt with other parameters says nothing of the next).
        if status.state != .upToDate, let parameters = try? parametersFingerprint(name),
           let last = try store.latestExecution(stage: name, parametersFingerprint: parameters), last.state == .failed {
            let message = last.message.map { ": \(Self.shortened(Self.withoutStagePrefix($0, stage: name)))" } ?? ""
            status.reason += "; its last attempt with these parameters failed (run \(last.runId))\(message)"
        }
        return status
    }

    /// A stage's failure message without the "stage: " its errors may start with, for a place that names the stage.
    public static func withoutStagePrefix(_ message: String, stage: String) -> String {
        message.withoutLead(stage)
    }

    /// A recorded message as one line of reasonable length.
    public static func shortened(_ message: String, limit: Int = 300) -> String {
        let line = message.replacingOccurrences(of: "\n", with: " ")
        return line.count <= limit ? line : String(line.prefix(limit)) + "…"
    }

    private func judged(_ name: String, store: ProvenanceStore, upstream: [String: StageStatus]) throws -> StageStatus {
        guard let stage = stages[name], let resolved = parameters[name] else {
            throw PipelineError.unknownStage(name, known: pipeline.stageNames)
        }
        // What a run would go on from, under the fingerprint it would run with now.
        func progress() -> String {
            let context = StageContext(runId: "status", manifest: manifest, workspace: workspace, store: store,
                                       fingerprint: fingerprint(name, stage: stage, inputs: (try? upstreamDigestsIfKnown(name, store: store)) ?? [:]),
                                       forced: false, logger: Log.logger(name), cancellation: cancellation, worker: workspace.workerSlice)
            guard let note = (try? stage.progress(context, resolved: resolved)) ?? nil else { return "" }
            // Under the inputs recorded now: a stage that reads a stale one learns its inputs only when that runs.
            let rerunning = reads(name).filter { upstream[$0].map { $0.state != .upToDate } == true }
            let named = Self.listed(rerunning)
            return "; " + note + (rerunning.isEmpty ? ""
                : " if \(named) run\(rerunning.count == 1 ? "s" : "") to the same output as before")
        }
        guard let state = try store.stageState(name) else {
            return StageStatus(stage: name, state: .neverRun, reason: "has never completed" + progress())
        }
        func stale(_ why: String) -> StageStatus { StageStatus(stage: name, state: .stale, reason: why + progress()) }
        if let change = settingsChange(of: name, since: state) { return stale(change) }
        let params = resolvedParams(name)
        // Same parameters, other fingerprint: a file they name (the landmark model) has other bytes now.
        let now = fingerprint(name, stage: stage, inputs: [:])
        if now.parameters != state.parametersFingerprint, let key = now.files.keys.sorted().first, let digest = now.files[key] {
            let path = params[key]?.stringValue ?? "?"
            if digest.hasPrefix(ResolvedParameters.unreadableFile) {
                return stale("the file \(key) names (\(path)) cannot be read now; a run that computes this stage refuses it")
            }
            return stale("the file \(key) names (\(path)) does not hash as when this stage ran, "
                         + "or was not hashed then (SHA-256 now \(digest.prefix(16))…)")
        }
        let recordedInputs = (try? JSONDecoder().decode([String: String].self, from: Data(state.inputsJSON.utf8))) ?? [:]
        let reading = reads(name)
        if Set(recordedInputs.keys) != Set(reading) {
            // The inputs are part of the fingerprint: a run recomputes a stage that reads other stages now.
            let dropped = recordedInputs.keys.filter { !reading.contains($0) }.sorted()
            let added = reading.filter { recordedInputs[$0] == nil }
            return stale("reads other upstream stages than when it ran"
                + (dropped.isEmpty ? "" : "; no longer \(dropped.joined(separator: ", "))")
                + (added.isEmpty ? "" : "; now also \(added.joined(separator: ", "))"))
        }
        for need in reading {
            if let up = upstream[need], up.state != .upToDate {
                // Known only once that stage has run: its output may come out as it was (a parameter of no effect on this data).
                return stale("upstream stage '\(need)' is \(up.state.rawValue); this stage runs after it unless its output comes out unchanged")
            }
            if try store.stageState(need)?.outputDigest != recordedInputs[need] {
                return stale("upstream stage '\(need)' produced new output since this stage ran")
            }
        }
        let context = StageContext(runId: state.runId, manifest: manifest, workspace: workspace, store: store,
                                   fingerprint: fingerprint(name, stage: stage, inputs: recordedInputs),
                                   forced: false, logger: Log.logger(name), cancellation: cancellation,
                                   worker: workspace.workerSlice)
        if let change = try stage.externalChanges(context, resolved: resolved) { return stale(change) }
        let when = ISO8601DateFormatter().string(from: state.completedAt)
        return StageStatus(stage: name, state: .upToDate, reason: "completed by run \(state.runId) at \(when): \(state.summary)")
    }

    /// How the stage's code or parameters differ from those it last completed with (`state`), or nil.
    func settingsChange(of name: String, since state: StageStateRecord) -> String? {
        guard let stage = stages[name], let resolved = parameters[name] else { return nil }
        if state.codeVersion != stage.codeVersion {
            return "stage code changed (version \(state.codeVersion) → \(stage.codeVersion))"
        }
        let params = resolvedParams(name)
        guard ParamValue.object(params).canonicalJSON != state.paramsJSON else { return nil }
        return "parameters changed: " + Self.describeChanges(from: state.paramsJSON, to: params, unread: resolved.value.unreadKeys,
                                                             unreadBefore: stage.unreadKeys(recordedJSON: state.paramsJSON) ?? [])
    }

    /// Each parameter whose hashed value differs from the recorded one. `unread`, `unreadBefore`: keys the other
    /// values leave unread now, or left unread then, hashed at their defaults: said to be unread rather than
    /// shown as a default nobody gave.
    static func describeChanges(from recordedJSON: String, to params: [String: ParamValue], unread: Set<String> = [],
                                unreadBefore: Set<String> = []) -> String {
        // Read as it was written, by ParamValue, with its bound on what is decoded: both sides print alike.
        let object: [String: ParamValue]
        do {
            guard let fields = try ParamValue.fromJSON(Data(recordedJSON.utf8)).objectValue else { return "recorded parameters unreadable" }
            object = fields
        } catch let large as ParamValue.SizeError {
            return "recorded parameters unreadable (\(large.bytes) bytes, more than the \(large.limit) EmoPipe records)"
        } catch {
            return "recorded parameters unreadable"
        }
        var changes: [String] = []
        for key in Set(object.keys).union(params.keys).sorted() {
            let (recorded, now) = (object[key]?.canonicalJSON ?? "(none)", params[key]?.canonicalJSON ?? "(none)")
            guard recorded != now else { continue }
            let old = unreadBefore.contains(key) && object[key] != nil ? "not read" : recorded
            let new = unread.contains(key) ? "not read" : now
            if old != new {
                // Cut to a line's worth and escaped: an edited value of megabytes made a line of megabytes.
                changes.append("\(key.echoed) \(old.echoedJSON) → \(new.echoedJSON)")
            } else if unread.contains(key) {
                // Hashed at its own value by an earlier version, which read it under these settings; now left unread
                // (it changes nothing here), it is hashed at its default: the output is computed once more.
                changes.append("\(key.echoed) \(recorded.echoedJSON) → not read (it changes nothing under these settings, and is no longer hashed)")
            }
        }
        return changes.isEmpty ? "parameter types changed" : changes.joined(separator: ", ")
    }
}
