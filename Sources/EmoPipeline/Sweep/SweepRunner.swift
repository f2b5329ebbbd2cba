import EmoCore
import EmoStore
import Foundation

/// How one trial (at one epoch budget, for halving) ended. `stopped`: successive halving dropped it.
public enum SweepStatus: String, Codable, Sendable {
    /// `running`: being trained by the sweep that holds the sweep's lock now (only in a leaderboard).
    case done, failed, interrupted, stopped, pending, running
}

/// The trial a sweep is training (`sweeps/<sweep>/running.json`, removed when it ends): what a
/// leaderboard read meanwhile, or after the sweep was killed, says of it.
struct RunningTrial: Codable, Equatable {
    var trial: Int
    var epochs: Int?
}

/// One recorded run of one trial: what `sweeps/<sweep>/state.json` keeps between invocations, so a
/// killed sweep resumes without redoing the trials it finished.
public struct SweepAttempt: Codable, Equatable, Sendable {
    public var trial: Int
    /// The epoch budget (halving), or nil: the manifest's own `train.epochs`.
    public var epochs: Int?
    public var run: String?
    public var metric: Double?
    public var seconds: Double
    public var status: SweepStatus
    public var reason: String?
    /// What the trial's result rests on besides its settings (`SweepRunner.basis`): a trial finished on
    /// another basis runs again when the sweep resumes. Nil in state files from before it was recorded.
    public var basis: String?
}

public struct SweepState: Codable, Equatable, Sendable {
    public var sweep: String
    public var metric: String
    public var attempts: [SweepAttempt] = []

    func attempt(trial: Int, epochs: Int?) -> SweepAttempt? {
        attempts.last { $0.trial == trial && $0.epochs == epochs }
    }

    /// What no sweep writes (a negative trial, a run that is not a plain run folder name, negative or
    /// non-finite seconds, a finished attempt without a finite figure), said of the first attempt holding it; nil when sound.
    var damage: String? {
        for a in attempts {
            if a.trial < 0 { return "names trial \(a.trial), which no sweep has" }
            if let run = a.run, !Workspace.isRunFolderName(run) { return "trial \(a.trial) names run \(run.echoed), not a plain name" }
            if !a.seconds.isFinite || a.seconds < 0 { return "trial \(a.trial) took \(a.seconds) seconds" }
            if a.status == .done, !(a.metric?.isFinite ?? false) { return "trial \(a.trial) is done without a finite figure" }
        }
        return nil
    }

    mutating func record(_ attempt: SweepAttempt) {
        attempts.removeAll { $0.trial == attempt.trial && $0.epochs == attempt.epochs }
        attempts.append(attempt)
        attempts.sort { ($0.trial, $0.epochs ?? 0) < ($1.trial, $1.epochs ?? 0) }
    }
}

/// Runs a manifest's sweep: every trial is an ordinary recorded run (`emopipe run` with the trial's
/// settings as `--set` overrides, up to evaluate) in the same work directory, so the stages before
/// train are computed by the first trial and found up to date by the others. Finished trials are
/// kept in `WORKDIR/sweeps/<sweep>/state.json` and skipped when the sweep is run again.
///
///     let sweep = try SweepRunner(manifest: manifest, workspace: work, stages: StageCatalog.all())
///     let board = try sweep.run(command: "emopipe sweep manifests/sweep.yaml")
public final class SweepRunner {
    public let manifest: Manifest
    public let spec: SweepSpec
    public let workspace: Workspace
    public let trials: [SweepTrial]
    /// `<manifest name>-<12 hex digits of the manifest's text and data root>`: editing the manifest starts a new sweep.
    public let id: String
    public var log: (String) -> Void = { _ in }
    private let stages: [any Stage]
    private let cancellation: Cancellation
    private let libraries: [String: String]

    /// The stage whose metrics.json the sweep reads; trials run up to it.
    static let scoringStage = StageName.evaluate.rawValue

    /// The work directory given; trials run in `workspace`, which is a worker's own inside it for `--worker`.
    public let mainWorkspace: Workspace
    public let worker: WorkerSlice?
    /// The pipeline file, read once: every trial runs the same stages, even if the file is edited meanwhile.
    private let pipeline: PipelineDefinition

    public init(manifest: Manifest, workspace: Workspace, stages: [any Stage], cancellation: Cancellation = Cancellation(),
                libraries: [String: String] = [:], worker: WorkerSlice? = nil) throws {
        guard let spec = manifest.sweep else {
            throw PipelineError.invalidFile("\(manifest.path): no `sweep:` block (see README, \"Hyper-parameter sweeps\")")
        }
        if worker != nil, spec.strategy == .halving {
            throw PipelineError.invalidFile("\(manifest.path): sweep.strategy = halving cannot be spread over workers: each budget needs every trial's result at the one before")
        }
        // A --set of a key every trial sets would be recorded with each trial and used by none.
        for override in manifest.commandLine {
            if let swept = spec.sweptKeys.first(where: { $0.key.stage == override.stage && $0.key.key == override.key }) {
                throw PipelineError.invalidFile("--set \(override.stage).\(override.key): every trial of the sweep sets it (\(swept.block) in \(manifest.path)), "
                                                + "so this value would be used by none; leave it out of --set or out of the sweep")
            }
        }
        let id = Self.sweepId(manifest)
        self.manifest = manifest
        self.spec = spec
        self.id = id
        self.mainWorkspace = workspace
        self.worker = worker
        self.workspace = worker.map { SweepWorker.workspace(main: workspace, sweepId: id, slice: $0) } ?? workspace
        self.stages = stages
        self.cancellation = cancellation
        self.libraries = libraries
        self.trials = try spec.trials()
        self.pipeline = try PipelineDefinition.load(path: manifest.pipelinePath, manifest: manifest.path)
        try validateEveryTrial()
    }

    /// The trials this process runs: all, or a worker's share (trial number modulo the worker count).
    var myTrials: [SweepTrial] {
        guard let worker else { return trials }
        return trials.filter { $0.index % worker.count == worker.index }
    }

    static func sweepId(_ manifest: Manifest) -> String {
        let safeName = folderNamePart(manifest.name)
        // `--threads` with another count than the file gives too (it is not in the text): training's results
        // depend on it, so trials finished with the other count are another sweep's. Without it the id
        // is the text's and root's alone, the same on workers and on the machine that merges them.
        let threads = manifest.threadsOverride.map { "\nthreads \($0)" } ?? ""
        return safeName + "-" + SHA256Hex.of(manifest.recordedText + "\n" + manifest.dataRoot + threads).prefix(12)
    }

    /// The manifest's name as the start of a folder name: letters, digits, - and _ (others become _; "sweep"
    /// when nothing is left), at most 64 characters and at most 200 bytes (64 Devanagari or astral characters take more), so that the
    /// id ("-" and 12 digits more) fits a file name of 255 bytes also as a sweep worker's folder,
    /// `sweep-<id>-<I>-of-<N>`, for any worker count.
    static func folderNamePart(_ name: String) -> String {
        let cleaned = name.map { isNameCharacter($0) ? $0 : "_" }.prefix(64)
        let byteLimit = 200
        var part = "", bytes = 0
        for character in cleaned {
            bytes += character.utf8.count
            guard bytes <= byteLimit else { break }
            part.append(character)
        }
        // A name with nothing left (one character of hundreds of bytes) is not made an id that starts with "-":
        // the folder says what it is. (A name of emoji alone keeps its underscores: its sweeps' folders have them.)
        return part.isEmpty ? "sweep" : part
    }

    private static func isNameCharacter(_ character: Character) -> Bool {
        character.isLetter || character.isNumber || character == "-" || character == "_"
    }

    /// Whether `text` can be a sweep id as `sweepId` makes them (a worker's marker names one): a name part
    /// of letters (any script), digits, - and _, then "-" and 12 hexadecimal digits.
    static func isSweepId(_ text: some StringProtocol) -> Bool {
        let digest = text.suffix(12)
        return text.utf8.count <= 255 && text.count >= 13 && text.dropLast(12).last == "-"
            && digest.allSatisfy { $0.isASCII && $0.isHexDigit && !$0.isUppercase } && text.dropLast(13).allSatisfy(isNameCharacter)
    }

    public var files: SweepFolder { workspace.sweepFolder(id) }

    /// The folders in `workspace` of sweeps whose manifest is named `name` (one per manifest text, data root
    /// and thread count), sorted.
    public static func folders(ofSweepNamed name: String, in workspace: Workspace) -> [SweepFolder] {
        let prefix = folderNamePart(name) + "-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workspace.sweepsRoot)) ?? []
        return names.filter { $0.hasPrefix(prefix) && $0.utf8.count == prefix.utf8.count + 12 && isSweepId($0) }.sorted()
            .map(workspace.sweepFolder)
    }

    /// The epoch budgets each trial may run at: halving's rungs, or the manifest's own epochs.
    var budgets: [Int?] { spec.strategy == .halving ? (spec.halving?.budgets ?? []).map { $0 } : [nil] }

    /// The manifest a trial runs: the sweep's, with the trial's settings (and budget) laid over it in their own layer
    /// (recorded with the run as `--set` lines, so `reproduce` replays them).
    func manifest(for trial: SweepTrial, epochs: Int?) -> Manifest {
        var trialManifest = manifest
        trialManifest.commandLine += trial.overrides.map { ParameterOverride(stage: $0.stage, key: $0.key, value: $0.value, bySweep: true) }
        if let epochs {
            trialManifest.commandLine.append(ParameterOverride(stage: SweepKey.epochs.stage, key: SweepKey.epochs.key, value: .int(epochs), bySweep: true))
        }
        return trialManifest
    }

    private func runner(for trial: SweepTrial, epochs: Int?) throws -> PipelineRunner {
        try PipelineRunner(manifest: manifest(for: trial, epochs: epochs), workspace: workspace, stages: stages,
                           cancellation: cancellation, libraries: libraries, pipeline: pipeline)
    }

    /// Every trial's parameters are resolved and validated, as a manifest's are, before any runs.
    private func validateEveryTrial() throws {
        try PipelineRunner.checkSweepMetric(spec, manifest: manifest, pipeline: pipeline, stages: stages)
        // What the manifest and its --set lines are refused for without any trial's values: a trial refused
        // for the very same is refused for a value it inherits (a value every trial overrides is no fault).
        let inherited: String?
        do {
            _ = try PipelineRunner(manifest: manifest, workspace: workspace, stages: stages, cancellation: cancellation, libraries: libraries, pipeline: pipeline)
            inherited = nil
        } catch { inherited = "\(error)" }
        /// Why each trial checked so far writes no sweep.metric (a trial that writes it adds nothing).
        var unscored: [String] = []
        /// Each trial's resolved settings (the parameters of every stage its score is made from): two trials
        /// that resolve alike (`[8, 16]` and `[8.0, 16]`, a set of modalities in two orders, `faces.size` for a
        /// speech-only model, which reads no face crops) would measure one setting twice.
        var resolvedTrials: [String: SweepTrial] = [:]
        /// The first two trials found alike: said once every trial is checked, so a value no trial may take
        /// (`[1, 10000, 10001]` for checkpoint_every, whose first two are alike) is named before it.
        var sameSettings: PipelineError?
        /// The sweep's axes some trial's score is made from (a stage it reads fingerprints the key, or borrows it).
        var axesRead = Set<SweepKey>()
        /// Resolves `trial` at every budget; a refusal is the trial's (`named`), unless it is the inherited one.
        func check(_ trial: SweepTrial, named: String, distinct: Bool = false) throws {
            // 10,000 trials × 8 budgets take minutes: Ctrl-C must stop here too, not only once trials run.
            try cancellation.check()
            for epochs in budgets {
                let resolved: PipelineRunner
                do { resolved = try runner(for: trial, epochs: epochs) } catch {
                    if "\(error)" == inherited { throw error }
                    throw PipelineError.invalidFile("\(manifest.path): \(named): \(error)")
                }
                if epochs == budgets.first, let never = resolved.metricNeverWritten(spec.metric) { unscored.append(never) }
                if distinct, epochs == budgets.first {
                    let read = resolved.readClosure(of: [Self.scoringStage])
                    let settings = Self.settings(of: resolved.pipeline.stageNames.filter(read.contains), in: resolved)
                    for (key, _) in trial.settings where Self.scoreReads(key, read: read, in: resolved) { axesRead.insert(key) }
                    if let earlier = resolvedTrials.updateValue(trial, forKey: settings) {
                        // Only the keys the two trials set apart say why they are one setting: the stages no score
                        // reads, then keys of a read stage these settings leave unread (face_channels without faces, an
                        // augmentation with augment: false).
                        let earlierValues = Dictionary(earlier.settings.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                        let apart = trial.settings.filter { earlierValues[$0.key] != $0.value }.map(\.key)
                        let unread = Set(apart.map(\.stage)).subtracting(read).sorted()
                        let unreadKeys = apart.filter { read.contains($0.stage) && !Self.scoreReads($0, read: read, in: resolved) }
                        let executionOnly = unreadKeys.filter { Self.isExecutionOnly($0, in: resolved) }
                        let notRead = unreadKeys.filter { !executionOnly.contains($0) }
                        func listed(_ keys: [SweepKey]) -> String { keys.map(\.description).joined(separator: ", ") + (keys.count == 1 ? " is" : " are") }
                        let why = !unread.isEmpty ? " (no stage they are scored by reads \(unread.joined(separator: ", ")) under these settings)"
                            : unreadKeys.isEmpty ? ""
                            : " (" + [executionOnly.isEmpty ? nil : "\(listed(executionOnly)) \(Self.executionOnlyMeaning)",
                                      notRead.isEmpty ? nil : "\(listed(notRead)) not read under trial \(trial.index)'s other settings"]
                                .compactMap { $0 }.joined(separator: "; ") + ")"
                        sameSettings = sameSettings ?? PipelineError.invalidFile("\(manifest.path): sweep trials \(earlier.index) (\(earlier.params.shown)) and \(trial.index) "
                            + "(\(trial.params.shown)) resolve to the same settings\(why): one of them would measure nothing new; list each setting once")
                    }
                }
            }
        }
        for trial in trials { try check(trial, named: "sweep trial \(trial.index) (\(trial.params.shown))", distinct: true) }
        if let sameSettings { throw sameSettings }
        // A single value no trial reads makes no duplicate, but would show in the leaderboard as if it were tuned.
        if let unread = trials.first?.settings.map(\.key).first(where: { !axesRead.contains($0) }) {
            let executionOnly = (try? runner(for: trials[0], epochs: budgets.first ?? nil)).map { Self.isExecutionOnly(unread, in: $0) } ?? false
            let why = executionOnly ? "it is \(Self.executionOnlyMeaning)"
                : "no stage they are scored by reads \(unread.stage).\(unread.key) under these settings"
            throw PipelineError.invalidFile("\(manifest.path): sweep axis \(unread): no trial's score depends on it (\(why)): "
                + "it would be ranked as if tuned; leave it out of the sweep")
        }
        // A metric no trial writes would fail every trial after training it; some trials without it fail alone.
        if unscored.count == trials.count, let why = unscored.first {
            throw PipelineError.invalidFile("\(manifest.path): sweep.metric = \(ParamValue.string(spec.metric).shown) is written by no trial: \(why)")
        }
        // A random block's ranges are checked at their ends, with the first trial's other values: which
        // values a seed draws must not decide whether an invalid range is accepted.
        guard let random = spec.random, let first = trials.first else { return }
        for parameter in random.params {
            for value in parameter.distribution.extremes {
                var trial = first
                trial.settings = first.settings.map { $0.key == parameter.key ? (parameter.key, value) : $0 }
                try check(trial, named: "sweep.random \(parameter.key) = \(value.shown), a value its draws can take, is refused")
            }
        }
    }

    // MARK: Running

    /// Runs every trial not finished yet and returns the leaderboard (also written to the sweep folder).
    public func run(command: String) throws -> SweepLeaderboard {
        if worker != nil {
            // Checked in the main work directory first, so a snapshot is taken only of ready features.
            guard mainWorkspace.exists else {
                throw PipelineError.missingData("\(mainWorkspace.root): no main work directory; run `emopipe sweep MANIFEST --prepare --workdir \(mainWorkspace.root)` first, so the workers share its features")
            }
            for trial in myTrials {
                try SweepWorker.checkFeaturesReady(try PipelineRunner(manifest: manifest(for: trial, epochs: nil), workspace: mainWorkspace,
                                                                      stages: stages, libraries: libraries, pipeline: pipeline), main: mainWorkspace)
            }
        }
        // Two sweeps of one manifest at once would run the same trials twice. Taken before a worker
        // prepares its folder: a second copy of a running worker must not replace the database it writes.
        let fresh = worker != nil && !FileManager.default.fileExists(atPath: workspace.root)
        let lock: WorkDirectoryLock
        do {
            try Folder.create(files.path)
            lock = try WorkDirectoryLock.acquire(path: files.lock, holder: "emopipe sweep (pid \(getpid()))")
            if let worker {
                do { try SweepWorker.prepare(worker: workspace, main: mainWorkspace, sweepId: id, slice: worker) } catch {
                    lock.release()
                    throw error
                }
                log("worker \(worker): \(myTrials.count) of \(trials.count) trial(s) in \(workspace.root.echoed)")
            }
        } catch {
            // A worker turned away before its copy (the main directory locked by a run) leaves nothing a merge would stop on.
            if fresh { try? FileManager.default.removeItem(atPath: workspace.root) }
            throw error
        }
        defer { lock.release() }
        var state = try loadState()
        // The text of the manifest is the sweep's id; the pipeline file, the stages' code and the data may have
        // changed since trials finished: such trials run again rather than be ranked beside the others.
        // Ingest runs first (a run of its own) only when the data root changed since it last did.
        let plain = try PipelineRunner(manifest: manifest, workspace: workspace, stages: stages, cancellation: cancellation,
                                       libraries: libraries, pipeline: pipeline)
        if worker == nil, state.attempts.contains(where: { $0.status == .done }), pipeline.stageNames.contains(StageName.ingest.rawValue) {
            try cancellation.check()
            if try plain.stageStatus(StageName.ingest.rawValue).state != .upToDate {
                _ = try plain.run(RunSelection(targets: [StageName.ingest.rawValue]), command: command + " # the data, before resuming")
            }
        }
        state = try withoutStaleResults(state, data: try dataDigest(), saying: log)
        try saveState(state)
        if pipeline.stageNames.contains(StageName.split.rawValue),
           let testFold = plain.resolvedParams(StageName.split.rawValue)["test_fold"], testFold != .string("all") {
            log("note: trials are ranked on one split's test actors, so the best trial's \(spec.metric) there is optimistic; "
                + "cross-validate (split.test_fold: all) to choose, and score the choice on actors no choice was made on")
        }
        if let asked = spec.random?.trials, trials.count < asked {
            log("sweep.random.n_trials = \(asked), but \(trials.count) distinct setting(s) were drawn: the ranges, at 4 significant digits, repeat")
        }
        log("sweep \(id): \(trials.count) trial(s), \(spec.strategy.rawValue) search, \(spec.direction.rawValue) \(spec.metric); state in \(files.state.escaped)")
        switch spec.strategy {
        case .grid, .random:
            for trial in myTrials { try ensure(trial, epochs: nil, state: &state, command: command) }
            // Data that changed while the sweep ran made its first trials another basis than its last:
            // those run once more, so the ranking compares trials on the same data.
            let current = try withoutStaleResults(state, data: try dataDigest(), saying: log)
            if current.attempts.count < state.attempts.count {
                state = current
                try saveState(state)
                for trial in myTrials { try ensure(trial, epochs: nil, state: &state, command: command) }
            }
        case .halving:
            var candidates = trials.map(\.index)
            let rungs = spec.halving?.budgets ?? []
            for (rung, budget) in rungs.enumerated() {
                log("halving: \(candidates.count) trial(s) at \(budget) epoch(s)")
                for index in candidates { try ensure(trials[index], epochs: budget, state: &state, command: command) }
                if rung < rungs.count - 1 { candidates = survivors(of: candidates, epochs: budget, state: state) }
            }
            let current = try withoutStaleResults(state, data: try dataDigest(), saying: { _ in })
            if current.attempts.count < state.attempts.count {
                log("the data changed while the sweep ran: \(state.attempts.count - current.attempts.count) result(s) rest on the earlier data; "
                    + "run the sweep again to redo them (the leaderboard leaves them out)")
                state = current
                try saveState(state)
            }
        }
        let board = leaderboard(state)
        try writeOutputs(board)
        return board
    }

    /// Runs the stages before train that some trial reads (a speech-only sweep needs no face crops), once
    /// for each of their settings the trials hold (a sweep over `audio.n_mels` computes each band count),
    /// in the work directory given: what sweep workers then read. One run per distinct setting, in trial order.
    public func prepareFeatures(command: String) throws -> [RunReport] {
        var prepared = Set<String>(), reports: [RunReport] = []
        for trial in trials {
            try cancellation.check()
            let runner = try PipelineRunner(manifest: manifest(for: trial, epochs: nil), workspace: mainWorkspace, stages: stages,
                                            cancellation: cancellation, libraries: libraries, pipeline: pipeline)
            // Not split: each worker makes its trials' plans itself, so a setting of split alone prepares nothing.
            let read = SweepWorker.featureStages(runner).filter { !SweepWorker.ownCacheFolders.contains($0) }
            // Empty targets would mean the whole pipeline.
            let setting = Self.settings(of: read, in: runner)
            guard !read.isEmpty, prepared.insert(setting).inserted else { continue }
            reports.append(try runner.run(RunSelection(targets: read), command: command + " # trial \(trial.index)'s features"))
        }
        return reports
    }

    /// Whether `key` changes what a run scored through the `read` stages computes: its own stage is read and
    /// fingerprints it, or a read stage borrows it.
    static let executionOnlyMeaning = "execution-only: it changes how a stage runs, not what it computes"

    /// A key that changes how its stage runs, never what it computes (`train.checkpoint_every`).
    static func isExecutionOnly(_ key: SweepKey, in runner: PipelineRunner) -> Bool {
        runner.parameters[key.stage].map { type(of: $0.value).executionOnlyKeys.contains(key.key) } ?? false
    }

    static func scoreReads(_ key: SweepKey, read: Set<String>, in runner: PipelineRunner) -> Bool {
        guard runner.parameters[key.stage]?.fingerprints(key.key) == true else { return false }
        return read.contains(key.stage) || read.contains { runner.resolvedParams($0)["\(key.stage).\(key.key)"] != nil }
    }

    /// The stages' resolved parameters, one line each: two runners with equal text run those stages alike.
    static func settings(of stages: [String], in runner: PipelineRunner) -> String {
        stages.map { "\($0)\t\(ParamValue.object(runner.resolvedParams($0)).canonicalJSON)" }.joined(separator: "\n")
    }

    /// The leaderboard of what the state file holds now, running nothing.
    public func currentLeaderboard() throws -> SweepLeaderboard {
        // The data basis is ingest's record: a data root changed since is not in it until the sweep ingests it.
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: manifest.dataRoot, isDirectory: &isFolder) || !isFolder.boolValue {
            // The leaderboard needs no data root; a sweep run would refuse this one (exit 64).
            log("note: the data root \(manifest.dataRoot) is not a folder here: these results rest on the data as last ingested, "
                + "and `emopipe sweep` refuses to run on it")
        } else if worker == nil, pipeline.stageNames.contains(StageName.ingest.rawValue), mainWorkspace.exists {
            // Best effort: an unreadable data root is no error here.
            let ingest = try? PipelineRunner(manifest: manifest, workspace: workspace, stages: stages, libraries: libraries, pipeline: pipeline)
                .stageStatus(StageName.ingest.rawValue)
            if let ingest, ingest.state == .stale {
                log("note: ingest is not up to date (\(ingest.reason)); these results rest on the data as last "
                    + "ingested: `emopipe sweep` without --leaderboard ingests it and runs again the trials whose data changed")
            }
        }
        return leaderboard(try withoutStaleResults(try loadState(), data: try dataDigest(), saying: { _ in }))
    }

    private func ensure(_ trial: SweepTrial, epochs: Int?, state: inout SweepState, command: String) throws {
        let label = "trial \(trial.index)" + (epochs.map { " at \($0) epoch(s)" } ?? "")
        if let done = state.attempt(trial: trial.index, epochs: epochs), done.status == .done {
            log("\(label): finished before (run \(done.run ?? "?")), skipped")
            return
        }
        try cancellation.check()
        log("\(label): \(trial.params.canonicalJSON)")
        // Said for a leaderboard read meanwhile; not needed for resuming, so a failed write is no error.
        try? DurableFile.write(Data(try JSONOutput.text(RunningTrial(trial: trial.index, epochs: epochs)).utf8), to: files.running)
        defer { unlink(files.running) }
        // An interrupted attempt's time counts: the leaderboard's seconds are every run of the trial.
        let spentBefore = state.attempt(trial: trial.index, epochs: epochs).map { $0.status == .interrupted ? $0.seconds : 0 } ?? 0
        let started = Date().addingTimeInterval(-spentBefore)
        var attempt = SweepAttempt(trial: trial.index, epochs: epochs, run: nil, metric: nil, seconds: 0, status: .failed, reason: nil)
        let runner = try runner(for: trial, epochs: epochs)
        if worker != nil {
            try SweepWorker.bringIngestUpToDate(runner, command: command)
            try SweepWorker.checkFeaturesReady(runner, main: mainWorkspace)
        }
        do {
            let report = try runner
                .run(RunSelection(until: Self.scoringStage), command: command + " # trial \(trial.index)" + (epochs.map { " at \($0) epochs" } ?? ""))
            attempt.run = report.runId
            let producer = report.stages.first { $0.stage == Self.scoringStage }?.producedByRun ?? report.runId
            // An evaluate found up to date in a worker may be a main run's, from the snapshot.
            let folder = [workspace, mainWorkspace].map { $0.runFolder(producer) }
                .first { FileManager.default.fileExists(atPath: RunFile.metrics.path(in: $0)) } ?? workspace.runFolder(producer)
            attempt.metric = try readMetric(runFolder: folder)
            attempt.status = .done
        } catch let error as EmoError where error == .interrupted {
            attempt.status = .interrupted
            attempt.run = runner.recordedRunId
            attempt.seconds = Date().timeIntervalSince(started)
            state.record(attempt)
            try saveState(state)
            throw error
        } catch let error as PipelineError {
            // A locked work directory or a damaged manifest would fail every trial alike: stop. A parameter
            // refused only now (a batch size over the memory budget, known once the features are loaded)
            // is this trial's: it fails, and the trials after it run.
            switch error {
            case .locked, .invalidFile: throw error
            default: attempt.reason = "\(error)"
            }
        } catch {
            attempt.reason = "\(error)"
        }
        attempt.seconds = Date().timeIntervalSince(started)
        attempt.run = attempt.run ?? runner.recordedRunId
        // A trial's run brings ingest up to date (data added since are this trial's too).
        attempt.basis = try basis(of: trial, epochs: epochs, data: try dataDigest())
        state.record(attempt)
        try saveState(state)
        let result = attempt.metric.map { String(format: "%@ %.4f", spec.metric, $0) } ?? "failed: \(attempt.reason ?? "?")"
        log("\(label): \(result) in \(ProgressReporter.duration(attempt.seconds)) (run \(attempt.run ?? "none"))")
    }

    /// What a trial's result rests on besides the manifest's text (the sweep's id): every stage the scoring
    /// stage reads under the trial's settings, with its code version and resolved parameters, and the
    /// data as ingest last recorded it (`data`, its output digest). A stage no trial reads (faces for a
    /// speech-only sweep) is not part of it.
    func basis(of trial: SweepTrial, epochs: Int?, data: String) throws -> String {
        let runner = try runner(for: trial, epochs: epochs)
        let read = runner.readClosure(of: [Self.scoringStage])
        let code = Dictionary(stages.map { ($0.name, $0.codeVersion) }, uniquingKeysWith: { a, _ in a })
        let lines = pipeline.stageNames.filter(read.contains).map { name in
            "\(name)\t\(code[name] ?? "?")\t\(ParamValue.object(runner.resolvedParams(name)).canonicalJSON)"
        }
        return String(SHA256Hex.of((lines + ["data " + data]).joined(separator: "\n")).prefix(16))
    }

    /// The finished trials whose run left failed units (a clip that did not decode, say) in the stages it
    /// read: their results stand on part of the data, which `emopipe run` tells with exit status 3.
    public func trialsOnPartialData(_ board: SweepLeaderboard) throws -> [Int] {
        guard FileManager.default.fileExists(atPath: workspace.databasePath) else { return [] }
        let store = try workspace.openStore(.readOnly)
        return try board.entries.filter { $0.status == .done }.compactMap { entry in
            guard let id = entry.run, let run = try store.run(id: id) else { return nil }
            return run.status == .partial ? entry.trial.index : nil
        }
    }

    /// The data as recorded now ("" before the first run): ingest's output digest, which follows the files
    /// that work, and the files that failed with their reasons (evaluate lists a test clip's failure in
    /// metrics.json, so a failure that changes changes a result).
    func dataDigest() throws -> String {
        guard FileManager.default.fileExists(atPath: workspace.databasePath) else { return "" }
        let store = try workspace.openStore(.readOnly)
        let failed = try store.sources(status: .failed).map { "\($0.path)\t\($0.reason ?? "")" }
        return (try store.stageState(.ingest)?.outputDigest ?? "") + " " + SHA256Hex.of(failed.joined(separator: "\n"))
    }

    /// `state` without the finished results whose basis is not the one their trial would have now (the
    /// pipeline file, a stage's code or the data changed since): those trials run again, and no ranking
    /// or halving rung counts them meanwhile. Results from before bases were recorded are kept.
    func withoutStaleResults(_ state: SweepState, data: String, saying: (String) -> Void) throws -> SweepState {
        var kept = state
        for attempt in state.attempts where attempt.status == .done {
            guard let was = attempt.basis, trials.indices.contains(attempt.trial) else { continue }
            guard try basis(of: trials[attempt.trial], epochs: attempt.epochs, data: data) != was else { continue }
            kept.attempts.removeAll { $0.trial == attempt.trial && $0.epochs == attempt.epochs }
            saying("trial \(attempt.trial)" + (attempt.epochs.map { " at \($0) epoch(s)" } ?? "")
                   + ": finished before (run \(attempt.run ?? "?")) on another pipeline file, stage code or data than now: runs again")
        }
        return kept
    }

    /// The metric from a run's metrics.json. A name the pipeline never writes was refused before trial 0;
    /// one this trial's settings do not produce (`int8.*` without quantising, `cv.*` on one split) fails the trial.
    func readMetric(runFolder: String) throws -> Double {
        let path = RunFile.metrics.path(in: runFolder)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineError.missingData("\(path): missing; the sweep scores trials by evaluate's metrics.json")
        }
        let scalars = RunSummary.scalars(data, prefix: "")
        guard let value = scalars.first(where: { $0.0 == spec.metric })?.1 else {
            throw PipelineError.missingData("sweep.metric '\(spec.metric)' is not a scalar of \(path): this trial's settings do not produce it (scalars: \(scalars.map(\.0).joined(separator: ", ")))")
        }
        return value
    }

    /// The better half (rounded up) of the candidates that finished this budget; failed ones never go on.
    func survivors(of candidates: [Int], epochs: Int, state: SweepState) -> [Int] {
        let scored = candidates.compactMap { index -> (Int, Double)? in
            guard let attempt = state.attempt(trial: index, epochs: epochs), attempt.status == .done, let metric = attempt.metric else { return nil }
            return (index, metric)
        }
        let keep = (candidates.count + 1) / 2
        return Array(scored.sorted { isBetter($0, than: $1) }.prefix(keep).map(\.0)).sorted()
    }

    /// Better metric first; equal metrics keep the trial order.
    func isBetter(_ a: (Int, Double), than b: (Int, Double)) -> Bool {
        if a.1 != b.1 { return spec.direction == .maximize ? a.1 > b.1 : a.1 < b.1 }
        return a.0 < b.0
    }

    // MARK: State

    func loadState() throws -> SweepState {
        var facts = stat()
        guard lstat(files.state, &facts) == 0 else { return SweepState(sweep: id, metric: spec.metric) }
        // Anything else in its place (a folder, a pipe) is named, as a run of the sweep names it.
        let data = try RegularFile.read(files.state)
        let state: SweepState
        do { state = try JSONOutput.decoder().decode(SweepState.self, from: data) } catch {
            throw EmoError.io(path: files.state, reason: "not a sweep state file (\(JSONOutput.problem(error, in: data))); remove it to start the sweep again")
        }
        guard state.sweep == id else {
            throw EmoError.io(path: files.state, reason: "belongs to sweep \(state.sweep.echoed), not \(id); remove it to start again")
        }
        if let stray = state.attempts.first(where: { !trials.indices.contains($0.trial) }) {
            throw EmoError.io(path: files.state, reason: "names trial \(stray.trial), which this sweep (trials 0-\(trials.count - 1)) does not have "
                              + "(edited, or merged from a damaged worker): remove that attempt, or the file to start again")
        }
        // Another budget would reach the trial's manifest as train.epochs and be refused there, as if the
        // manifest's sweep block were wrong.
        if let stray = state.attempts.first(where: { !budgets.contains($0.epochs) }) {
            let allowed = spec.strategy == .halving ? "none of this sweep's budgets (\(budgets.compactMap { $0.map(String.init) }.joined(separator: ", ")))"
                : "but this sweep is not halving, so its attempts record none"
            throw EmoError.io(path: files.state, reason: "trial \(stray.trial) records \(stray.epochs.map { "\($0) epochs" } ?? "no epoch budget"), \(allowed) "
                              + "(edited, or merged from a damaged worker): remove that attempt, or the file to start again")
        }
        if let damage = state.damage {
            throw EmoError.io(path: files.state, reason: "\(damage) (edited, or merged from a damaged worker): remove that attempt, or the file to start again")
        }
        guard state.metric == spec.metric else {
            throw EmoError.io(path: files.state, reason: "holds figures of \(state.metric.echoed), while the sweep scores \(spec.metric.echoed); remove it to start again")
        }
        return state
    }

    func saveState(_ state: SweepState) throws {
        try DurableFile.write(Data(try JSONOutput.text(state, pretty: true).utf8), to: files.state)
    }
}
