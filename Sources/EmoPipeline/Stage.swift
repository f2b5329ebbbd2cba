import EmoCore
import EmoStore
import Foundation
import Logging

/// What a stage foretells of its own refusal before the stages ahead of it run.
public struct Forecast: Sendable, Equatable {
    /// What will be refused and why (`split: 4 folds need at least 4 actors …`).
    public var reason: String
    /// What follows (`split will refuse the run when its turn comes`), said after the reason in the warning.
    public var consequence: String
    /// Said last, after either (` (all 24 RAVDESS actors are in Zenodo record 1188976)`).
    public var note: String
    /// The refusal is certain whatever the stages before it produce, judged from the data root's file names with
    /// nothing left unseen (every folder listed): the run refuses with it before any stage runs, provided it reads
    /// the data root afresh (ingest is among its stages).
    public var certain: Bool

    public init(reason: String, consequence: String, note: String = "", certain: Bool = false) {
        (self.reason, self.consequence, self.note, self.certain) = (reason, consequence, note, certain)
    }

    /// As a warning: the reason, and that the stage will (likely) refuse the run when its turn comes.
    public var warning: String { "\(reason): \(consequence)\(note)" }
    /// The warning where a run reads the data root afresh (`ingestRuns`): a certain one says that the run stops once
    /// ingest has recorded the files, not that the stage refuses when its turn comes.
    public func warning(ingestRuns: Bool) -> String {
        certain && ingestRuns ? "\(reason): the run stops once ingest has recorded the files, before the stages after it\(note)" : warning
    }
    /// As the run refuses with it, when certain.
    public var certainRefusal: String? { certain ? reason + note : nil }
}

/// A pipeline stage. Implementations live in EmoStages, one file each.
///
/// A stage's fingerprint is the SHA-256 of its name, `codeVersion`, its parameters' canonical
/// encoding and the output digests of its upstream stages: bump `codeVersion` whenever a change in
/// the code changes what the stage produces.
public protocol Stage: Sendable {
    associatedtype Parameters: StageParameters
    var name: String { get }
    var codeVersion: String { get }
    /// Manifest-wide settings (`label_map`, `include_song`, `seed`) whose values change this stage's output.
    var manifestFields: [String] { get }
    /// Other stages' parameters whose values change this stage's output (stage → keys): they join its
    /// fingerprint as `stage.key` and reach it in `context.fingerprint.params`.
    var borrowedParameters: [String: [String]] { get }
    /// The stages whose recorded output this code reads. A pipeline file must reach each of them that
    /// it has through the stage's `needs` (directly or further up): otherwise the stage's fingerprint
    /// would not follow their changes, and a stale result would be kept.
    var reads: Set<String> { get }
    /// Works source by source, so N scale-out workers can split it (`--worker I/N`).
    var perSource: Bool { get }
    /// The stages among its pipeline `needs` whose output these parameters leave unread (train with
    /// `modalities: [audio]` reads no face crops): they stay out of its fingerprint, and a run leaves
    /// out a stage that nothing it runs reads, unless the stage is asked for by name.
    func unreadNeeds(_ parameters: Parameters) -> Set<String>
    /// Does the work not yet done and returns what was produced.
    func run(_ context: StageContext, parameters: Parameters) throws -> StageOutcome
    /// Why the stage's recorded output no longer matches the world outside the work directory
    /// (for ingest: files added, changed or removed), or nil. Only cheap checks belong here.
    func externalChanges(_ context: StageContext, parameters: Parameters) throws -> String?
    /// How many units of work a run would compute now (for `run --dry-run`), or nil where only
    /// running tells.
    func plannedUnits(_ context: StageContext, parameters: Parameters) throws -> Int?
    /// Work a run under `context.fingerprint` already did and will go on from (train: checkpoints of
    /// folds stopped partway), said where the stage is not up to date; nil when there is none.
    func progress(_ context: StageContext, parameters: Parameters) throws -> String?
    /// Refuses a combination of this stage's parameters with other stages' (stage → resolved) that
    /// can only fail when it runs; called once every stage's parameters are resolved, before anything runs.
    func checkAcross(_ parameters: [String: ResolvedParameters]) throws
    /// Refuses, before a run starts, what only this stage running needs of the machine (a model file
    /// it loads): called for the stages a run will execute, not for commands that only read. `loading`:
    /// may load what it checks (a run, `params`); `status` asks without, to stay quick.
    func checkBeforeRunning(_ parameters: ResolvedParameters, loading: Bool) throws
    /// What this stage will refuse when its turn comes (train: a batch size the memory budget will not
    /// hold), said as a run or `run --dry-run` starts, so that hours of upstream work are not done in vain.
    /// Mostly a likelihood, since the data it will get is not known yet; a certain one refuses the run. Empty when nothing.
    func forecast(_ parameters: [String: ResolvedParameters], manifest: Manifest) -> [Forecast]
    /// The scalars this stage's result files hold, by file (`metrics.json` → `weighted_f1`, ...; `cv.json`
    /// → `cv.weighted_f1.mean`, ...), named as `RunSummary` reads them: what `nightly.metrics` and
    /// `sweep.metric` may watch. Empty for a stage that writes no results.
    var resultScalars: [RunFile: [String]] { get }
    /// Why a run with these parameters (every stage's, by stage name) writes no `scalar` of
    /// `resultScalars` (a part written only under some settings), or nil when it is written.
    func scalarNotWritten(_ scalar: String, parameters: [String: ResolvedParameters], manifest: Manifest) -> String?
}

public extension Stage {
    var manifestFields: [String] { [] }
    var borrowedParameters: [String: [String]] { [:] }
    var reads: Set<String> { [] }
    var perSource: Bool { false }
    func unreadNeeds(_ parameters: Parameters) -> Set<String> { [] }
    func externalChanges(_ context: StageContext, parameters: Parameters) throws -> String? { nil }
    func plannedUnits(_ context: StageContext, parameters: Parameters) throws -> Int? { nil }
    func progress(_ context: StageContext, parameters: Parameters) throws -> String? { nil }
    func checkAcross(_ parameters: [String: ResolvedParameters]) throws {}
    func checkBeforeRunning(_ parameters: ResolvedParameters, loading: Bool) throws {}
    func forecast(_ parameters: [String: ResolvedParameters], manifest: Manifest) -> [Forecast] { [] }
    var resultScalars: [RunFile: [String]] { [:] }
    func scalarNotWritten(_ scalar: String, parameters: [String: ResolvedParameters], manifest: Manifest) -> String? { nil }
    /// The keys this stage's parameters take.
    var parameterKeys: Set<String> { Parameters.acceptedKeys }

    func plannedUnits(_ context: StageContext, resolved: ResolvedParameters) throws -> Int? {
        try plannedUnits(context, parameters: try typed(resolved))
    }

    func progress(_ context: StageContext, resolved: ResolvedParameters) throws -> String? {
        try progress(context, parameters: try typed(resolved))
    }

    /// The pipeline file's, manifest's and command line's values over the defaults, decoded strictly.
    func resolveParameters(layers: [ParameterResolver.Layer]) throws -> ResolvedParameters {
        try ParameterResolver.resolve(Parameters.self, stage: name, layers: layers)
    }

    /// `run` for parameters resolved by `resolveParameters`.
    func run(_ context: StageContext, resolved: ResolvedParameters) throws -> StageOutcome {
        try run(context, parameters: try typed(resolved))
    }

    func externalChanges(_ context: StageContext, resolved: ResolvedParameters) throws -> String? {
        try externalChanges(context, parameters: try typed(resolved))
    }

    func unreadNeeds(resolved: ResolvedParameters) -> Set<String> {
        (try? typed(resolved)).map(unreadNeeds) ?? []
    }

    /// The keys the other values left unread in parameters recorded as JSON (a stage state's), or nil when
    /// they no longer decode (recorded by an older stage).
    func unreadKeys(recordedJSON: String) -> Set<String>? {
        guard let recorded = try? ParamValue.fromJSON(Data(recordedJSON.utf8)) else { return nil }
        return (try? ParamValueDecoder.decode(Parameters.self, from: recorded))?.unreadKeys
    }

    private func typed(_ resolved: ResolvedParameters) throws -> Parameters {
        guard let parameters = resolved.value as? Parameters else {
            throw PipelineError.invalidFile("\(name): parameters were resolved for stage '\(resolved.stage)'")
        }
        return parameters
    }
}

/// Words a stage's summary starts with that commands read back.
public enum StageSummary {
    /// Train took every fold's weights from an earlier training on the same clips: nothing was trained.
    public static let weightsTaken = "every fold's weights taken from an earlier training of the same clips and settings"
    /// Train took some folds' weights so: "<n> of <m> folds' weights taken from an earlier training of the same clips".
    public static let someWeightsTaken = "folds' weights taken from an earlier training of the same clips"
}

/// What a stage produced.
public struct StageOutcome: Equatable, Sendable {
    /// Digest of the stage's output facts: downstream fingerprints are built from it.
    public var outputDigest: String
    public var unitsDone: Int
    public var unitsSkipped: Int
    public var unitsFailed: Int
    /// One line for the run's summary.
    public var summary: String

    public init(outputDigest: String, unitsDone: Int, unitsSkipped: Int, unitsFailed: Int, summary: String) {
        self.outputDigest = outputDigest; self.unitsDone = unitsDone
        self.unitsSkipped = unitsSkipped; self.unitsFailed = unitsFailed; self.summary = summary
    }
}

/// Everything a stage may use while it runs.
public struct StageContext: @unchecked Sendable {
    public var runId: String
    public var manifest: Manifest
    public var workspace: Workspace
    public var store: ProvenanceStore
    public var fingerprint: Fingerprint
    public var forced: Bool
    public var logger: Logger
    public var cancellation: Cancellation
    /// Set for a scale-out worker: ingest takes only this slice of the data root's files.
    public var worker: WorkerSlice? = nil
    /// Where each of this stage's parameters came from (key → origin), so a refusal at run time names
    /// the file or `--set` that gave the value.
    public var parameterOrigins: [String: ParameterOrigin] = [:]
    /// The stages the pipeline file declares (nil: not known, every stage counts as declared). A stage
    /// reads another's records only when the pipeline has it: a store may hold the state of a stage an
    /// earlier pipeline file had, which the fingerprints of this one do not cover.
    public var pipelineStages: Set<String>? = nil

    /// Whether the pipeline file declares `stage`.
    public func declares(_ stage: StageName) -> Bool { pipelineStages?.contains(stage.rawValue) ?? true }

    public var dataRoot: String { manifest.dataRoot }
    public var threads: Int { manifest.threads }
    /// The manifest's memory budget in bytes (`resources.max_memory_mb`), if any.
    public var memoryBudget: Int? { manifest.resources.maxMemoryBytes }

    public func progress(total: Int, unit: String) -> ProgressReporter {
        ProgressReporter(label: fingerprint.stage, total: total, unit: unit, heartbeat: true)
    }
}

/// Set by SIGINT/SIGTERM; stages check it between batches so finished work is kept.
public final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public func cancel() { lock.lock(); cancelled = true; lock.unlock() }
    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }
    public func check() throws { if isCancelled { throw EmoError.interrupted } }
}
