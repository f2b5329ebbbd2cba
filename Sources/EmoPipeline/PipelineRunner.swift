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

    public init(until: String? = nil, only: String? = nil, force: Set<String> = []) {
        self.until = until; self.only = only; self.force = force
    }
}

/// What happened to one stage in a run.
public struct StageReport: Equatable, Sendable {
    public enum Action: String, Sendable { case ran, upToDate = "up to date" }
    public var stage: String
    public var action: Action
    public var outcome: StageOutcome
    public var seconds: Double
}

public struct RunReport: Sendable {
    public var runId: String
    public var stages: [StageReport]
    /// Failed units in the selected stages' current outputs (not only this run's new failures).
    public var failedUnits: Int
    public var exitCode: Int32 { failedUnits > 0 ? ExitStatus.partial : ExitStatus.ok }
}

/// Runs a pipeline's stages in dependency order over one work directory, skipping stages whose
/// fingerprint is unchanged, and records every execution as provenance.
///
///     let runner = try PipelineRunner(manifest: manifest, workDirectory: dir, stages: registry)
///     let report = try runner.run(RunSelection(until: "audio"))
public final class PipelineRunner {
    public let manifest: Manifest
    public let pipeline: PipelineDefinition
    public let workDirectory: WorkDirectory
    public let stages: [String: any Stage]
    public let cancellation: Cancellation
    private let logger = Log.logger("run")

    public init(manifest: Manifest, workDirectory: WorkDirectory, stages: [any Stage],
                cancellation: Cancellation = Cancellation()) throws {
        self.manifest = manifest
        self.pipeline = try PipelineDefinition.load(path: manifest.pipelinePath)
        self.workDirectory = workDirectory
        self.stages = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.cancellation = cancellation
        for declared in pipeline.stages where self.stages[declared.name] == nil {
            throw PipelineError.invalidFile(
                "\(manifest.pipelinePath): stage '\(declared.name)' has no implementation in this emopipe")
        }
        for (stage, overrides) in manifest.overrides {
            guard let declared = pipeline.stage(stage) else {
                throw PipelineError.invalidFile("\(manifest.path): params for unknown stage '\(stage)'")
            }
            if let unknown = overrides.keys.sorted().first(where: { declared.params[$0] == nil }) {
                throw PipelineError.invalidFile(
                    "\(manifest.path): stage '\(stage)' has no parameter '\(unknown)' (parameters: \(declared.params.keys.sorted().joined(separator: ", ")))")
            }
        }
    }

    /// Pipeline defaults, the manifest's overrides, and the manifest fields the stage reads,
    /// as the stage resolves them.
    public func resolvedParams(_ stageName: String) throws -> [String: ParamValue] {
        var params = ParamValue.merge(pipeline.stage(stageName)?.params ?? [:], manifest.overrides[stageName] ?? [:])
        for field in stages[stageName]?.manifestFields ?? [] { params[field] = manifest.globals[field] }
        guard let stage = stages[stageName] else { return params }
        try stage.validate(params: params)
        return try stage.resolve(params: params)
    }

    /// The fingerprint of a stage's parameters (what its cached units are keyed by).
    public func parametersFingerprint(_ stageName: String) throws -> String {
        guard let stage = stages[stageName] else { throw PipelineError.unknownStage(stageName, known: pipeline.stageNames) }
        return Fingerprint(stage: stageName, codeVersion: stage.codeVersion, params: try resolvedParams(stageName),
                           inputs: [:]).parameters
    }

    func selectedStages(_ selection: RunSelection) throws -> [String] {
        for name in [selection.until, selection.only].compactMap({ $0 }) + selection.force.sorted()
        where pipeline.stage(name) == nil {
            throw PipelineError.unknownStage(name, known: pipeline.stageNames)
        }
        if let only = selection.only { return [only] }
        if let until = selection.until {
            let wanted = pipeline.closure(of: until)
            return pipeline.stageNames.filter(wanted.contains)
        }
        return pipeline.stageNames
    }

    // MARK: Run

    public func run(_ selection: RunSelection, command: String) throws -> RunReport {
        let selected = try selectedStages(selection)
        try workDirectory.create()
        let runId = Self.newRunId()
        let holder = "emopipe run \(runId) (pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since \(ISO8601DateFormatter().string(from: Date())))"
        let lock = try WorkDirectoryLock.acquire(path: workDirectory.lockPath, holder: holder)
        defer { lock.release() }
        if let previous = lock.previousHolder {
            logger.warning("took over the lock left by a run that is no longer alive: \(previous)")
        }
        let store = try ProvenanceStore(path: workDirectory.databasePath)
        try store.markInterruptedRuns()
        try store.insert(RunRecord(
            id: runId, command: command, manifestJSON: manifest.text, manifestSHA256: SHA256Hex.of(manifest.text),
            dataRoot: manifest.dataRoot, threads: manifest.threads, codeVersion: EmoPipeVersion.string,
            host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), startedAt: Date()))
        try saveManifestCopy(runId: runId)

        var reports: [StageReport] = []
        do {
            for name in selected {
                try cancellation.check()
                reports.append(try execute(name, runId: runId, store: store, forced: selection.force.contains(name)))
            }
        } catch {
            let interrupted = (error as? EmoError) == .interrupted
            try? store.finishRun(id: runId, status: interrupted ? "interrupted" : "failed",
                                 exitCode: Int(interrupted ? ExitStatus.interrupted : ExitStatus.failure))
            throw error
        }
        let failed = try selected.reduce(0) { $0 + (try store.stageState($1)?.unitsFailed ?? 0) }
        let report = RunReport(runId: runId, stages: reports, failedUnits: failed)
        try store.finishRun(id: runId, status: failed > 0 ? "partial" : "done", exitCode: Int(report.exitCode))
        return report
    }

    private func execute(_ name: String, runId: String, store: ProvenanceStore, forced: Bool) throws -> StageReport {
        let stage = stages[name]!
        let params = try resolvedParams(name)
        let fingerprint = Fingerprint(stage: name, codeVersion: stage.codeVersion, params: params,
                                      inputs: try upstreamDigests(name, store: store))
        let context = StageContext(runId: runId, manifest: manifest, workDirectory: workDirectory, store: store,
                                   params: params, fingerprint: fingerprint, forced: forced,
                                   logger: Log.logger(name), cancellation: cancellation)
        let started = Date()
        if !forced, let state = try store.stageState(name), state.fingerprint == fingerprint.full,
           try stage.externalChanges(context) == nil {
            context.logger.info("up to date (\(state.summary))")
            let outcome = StageOutcome(outputDigest: state.outputDigest, unitsDone: 0, unitsSkipped: 0,
                                       unitsFailed: state.unitsFailed, summary: state.summary)
            return StageReport(stage: name, action: .upToDate, outcome: outcome, seconds: 0)
        }
        context.logger.info("running (fingerprint \(fingerprint.short)\(forced ? ", forced" : ""))")
        var stageRun = StageRunRecord(runId: runId, stage: name, fingerprint: fingerprint.full, startedAt: started)
        try store.save(&stageRun)
        let outcome: StageOutcome
        do {
            outcome = try stage.run(context)
        } catch {
            stageRun.state = (error as? EmoError) == .interrupted ? "interrupted" : "failed"
            stageRun.finishedAt = Date()
            stageRun.message = "\(error)"
            try? store.save(&stageRun)
            throw error
        }
        stageRun.state = outcome.unitsFailed > 0 ? "partial" : "done"
        stageRun.finishedAt = Date()
        stageRun.unitsDone = outcome.unitsDone
        stageRun.unitsSkipped = outcome.unitsSkipped
        stageRun.unitsFailed = outcome.unitsFailed
        stageRun.message = outcome.summary
        try store.recordStageCompletion(stageRun, state: StageStateRecord(
            stage: name, fingerprint: fingerprint.full, parametersFingerprint: fingerprint.parameters,
            codeVersion: stage.codeVersion,
            paramsJSON: fingerprint.paramsJSON, inputsJSON: fingerprint.inputsJSON,
            outputDigest: outcome.outputDigest, unitsFailed: outcome.unitsFailed, summary: outcome.summary,
            runId: runId, completedAt: Date()))
        let seconds = Date().timeIntervalSince(started)
        context.logger.info("\(outcome.summary) in \(ProgressReporter.duration(seconds))")
        return StageReport(stage: name, action: .ran, outcome: outcome, seconds: seconds)
    }

    private func upstreamDigests(_ name: String, store: ProvenanceStore) throws -> [String: String] {
        var inputs: [String: String] = [:]
        for upstream in pipeline.stage(name)?.needs ?? [] {
            guard let state = try store.stageState(upstream) else {
                throw PipelineError.upstreamNotReady(stage: name, upstream: upstream)
            }
            inputs[upstream] = state.outputDigest
        }
        return inputs
    }

    private func saveManifestCopy(runId: String) throws {
        let folder = workDirectory.runFolder(runId)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(manifest.text.utf8).write(to: URL(fileURLWithPath: folder + "/manifest.yaml"), options: .atomic)
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

/// The exit statuses scripts rely on (design.md's command-line contract).
public enum ExitStatus {
    public static let ok: Int32 = 0
    public static let failure: Int32 = 1
    public static let partial: Int32 = 3
    public static let metricsRegressed: Int32 = 4
    public static let usage: Int32 = 64
    public static let locked: Int32 = 75
    public static let interrupted: Int32 = 130
}

public enum EmoPipeVersion {
    public static let string = "0.1.0"
}
