import ArgumentParser
import EmoCore
import EmoNN
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the pipeline's stages that are not up to date.",
        discussion: Help.reflow("""
        Stages run in dependency order; a stage whose stage fingerprint (code version, parameters, the
        outputs of the upstream stages it reads) is unchanged is skipped, and a stage nothing in the run
        reads with these parameters (faces, for train.modalities [audio]) is left out unless named. The log names each running stage's cache key (code version and
        parameters), which keys its cached records. Per-source stages redo only new or changed sources.

        `--force STAGE` recomputes STAGE from scratch and every selected stage that reads its output:
        per-source stages recompute every source (the records come out byte-identical), and train sets
        its checkpoints for the stage fingerprint aside (to cache/train/<stage fingerprint>.superseded-<run id>,
        removed by `emopipe cache gc`) and trains from epoch 1.

        Ctrl-C (SIGINT), SIGTERM or SIGHUP (the terminal closed; not under nohup) stops after the
        current batch, keeping everything finished so far; the run is recorded `interrupted` and
        emopipe exits 130 (a stop that arrives while the last stage finishes anyway, as export
        does, leaves nothing undone: the run ends finished, exit 0). Training writes a checkpoint at the last epoch boundary, so the next run
        resumes to exactly the weights an uninterrupted run gives; the summary on stderr lists the stages
        finished, the one stopped in and what the run cost. A second Ctrl-C stops at once, with no summary:
        what was finished and checkpointed is kept, and the run stays recorded `interrupted`.

        What a later stage will refuse is said as the first stage starts (a warning), and, when the data
        root's file names make it certain (a split naming actors the root has no file of, more folds than
        actors), the run stops once ingest has recorded the files, before the feature stages (exit 1, as
        the stage's own refusal); `--dry-run` refuses alike.

        The work directory remembers the data root of a run given --data (WORKDIR/data-root.txt): later
        commands without --data (run, status, nightly, cache) use it rather than the manifest's `data`,
        and say so in one line on stderr.

        Each stage execution records its seconds, CPU seconds and peak RSS (`emopipe runs`). A manifest's
        `resources: {max_memory_mb: N}` keeps the audio and faces stages' peak RSS under N MiB (they run
        fewer sources at once) and makes train refuse a batch_size whose estimated memory does not fit,
        naming the largest that does (exit 64); results are the same with or without it.
        `resources: {publish_after_seconds: S}` (default 3) publishes a finished source's record about S
        seconds later at most (checked every 0.5 s or S/2): a kill loses about that much finished work. `--threads N` overrides the
        manifest's `threads`.

        Examples:
          emopipe run                                  # manifests/default.yaml, ./work
          emopipe run manifests/demo.yaml --until ingest
          emopipe run --data ~/RAVDESS --workdir /scratch/emopipe
          emopipe run manifests/demo.yaml --set train.epochs=3 --dry-run

        Scale-out: `--worker I/N` (I from 0) runs the per-source stages the run reads (ingest, audio, and
        faces unless train.modalities leaves it out) over the
        I-th of N stable hash partitions of the data root's files, in WORKDIR/workers/<I>-of-<N>;
        `--worker env` takes I and N from a Slurm array job ((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) /
        SLURM_ARRAY_TASK_STEP, SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, and the manifest's
        `workers`). Then `emopipe merge` folds the workers into WORKDIR and `emopipe run` does the rest.
        See pipelines/deploy/ for an sbatch script and a Kubernetes Job.
        """))

    @OptionGroup var manifestOptions: ManifestOptions
    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Option(help: "Run this stage and the upstream stages it reads, then stop.")
    var until: String?

    @Option(help: "Run only this stage on the last outputs of the stages it reads (they must have completed; one not up to date is said).")
    var only: String?

    @Option(help: "Recompute this stage from scratch, and every selected stage that reads it (repeatable).")
    var force: [String] = []

    @Flag(help: "Print the plan — per stage: run or up to date, why, and how many units it would compute — and run nothing.")
    var dryRun = false

    @Flag(help: "With --dry-run: print the plan as one JSON document ({stage, action, reason, units, units_after} per stage).")
    var json = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Run as scale-out worker I of N (I/N, or `env` for Slurm/Kubernetes).", valueName: "I/N|env"))
    var worker: String?

    func validate() throws {
        if until != nil && only != nil { throw ValidationError("--until and --only exclude each other") }
        if json && !dryRun { throw ValidationError("--json goes with --dry-run (a run prints its summary on stderr)") }
        if dryRun { try workDirectoryOptions.requireCreatable() } else { try workDirectoryOptions.requireOwnPlace() }
    }

    func run() throws {
        var pipelineRunner: PipelineRunner?
        do {
            let (manifest, dataRoot) = try manifestOptions.load(in: workDirectoryOptions.workspace)
            dataRoot.announce()
            let slice = try worker.map { text in
                text == "env" ? try WorkerSlice(environment: ProcessInfo.processInfo.environment, manifestWorkers: manifest.workers)
                              : try WorkerSlice(parsing: text)
            }
            let directory = slice?.workspace(inside: workDirectoryOptions.workspace) ?? workDirectoryOptions.workspace
            if let slice { StandardStream.error.write(Data("worker \(slice): work directory \(directory.root.escaped)\n".utf8)) }
            let cancellation = Cancellation()
            let signals = SignalTrap(cancellation: cancellation)
            defer { signals.restore() }
            let runner = try PipelineRunner(manifest: manifest, workspace: directory,
                                            stages: StageCatalog.all(), cancellation: cancellation,
                                            libraries: StageCatalog.libraryVersions)
            pipelineRunner = runner
            // Checked once the manifest and parameters are: what is wrong with those is said first.
            // Every run records the sources under the root as its dataset, `--only evaluate` too.
            try dataRoot.requireFolder(apartFrom: directory)
            // A stage option's value is named with the option (the runner's own check cannot say which was given).
            let named = [("--until", until), ("--only", only)].compactMap { option, name in name.map { (option, $0) } } + force.map { ("--force", $0) }
            if let (option, name) = named.first(where: { !runner.pipeline.stageNames.contains($0.1) }) {
                throw UsageError("\(option): \(PipelineError.unknownStage(name, known: runner.pipeline.stageNames))")
            }
            let selection = RunSelection(until: until, only: only, force: Set(force), worker: slice)
            // Train and evaluate refuse an address-space limit OpenBLAS would hang on: said now, not after the
            // feature stages' hours (a dry run warns). Only when one of them will run, as the plan says: forced,
            // or not up to date. The status is read only when the limit is too small.
            let selected = try runner.selectedStages(selection)
            let engineStages = Set([StageName.train.rawValue, StageName.evaluate.rawValue]).intersection(selected)
            if !engineStages.isEmpty, let problem = Engine.addressSpaceShortfall(threads: manifest.threads) {
                let forced = runner.forcedStages(selection, selected: selected)
                let stale = Set(try runner.status().filter { $0.state != .upToDate }.map(\.stage))
                let running = engineStages.filter { forced.contains($0) || stale.contains($0) }.sorted()
                if !running.isEmpty && dryRun {
                    StandardStream.error.write(Data("emopipe: warning: \(problem); \(running.joined(separator: " and ")) would refuse to run\n".utf8))
                } else if !running.isEmpty {
                    throw EmoError.invalidConfiguration(problem + "; nothing was run")
                }
            }
            if dryRun { return printPlan(try runner.plan(selection)) }
            // Remembered as the run starts, so that a killed run leaves it for the commands after it too.
            let workspace = workDirectoryOptions.workspace
            // A worker's root is the main's only when the main remembers none yet: after the main's own runs, a
            // worker given another root must not move the main's next run there (merge refuses such workers).
            let remembers = slice == nil || ((try? workspace.rememberedDataRoot()) ?? nil) == nil
            runner.started = { if remembers { dataRoot.remember(in: workspace) } }
            let report = try runner.run(selection, command: CommandLine.arguments.joined(separator: " "))
            printSummary(runId: report.runId, stages: report.stages)
            if report.failedUnits > 0 {
                StandardStream.error.write(Data("  \(report.failedUnits) failed (see `emopipe sources --failed`); exit status 3\n".utf8))
            }
            printResultsFolder(report.stages, runId: report.runId, workspace: workspace)
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        } catch {
            // What finished before the stop is kept; the summary says what that was and what it cost.
            if let stopped = pipelineRunner?.stopped, !stopped.finished.isEmpty || stopped.stoppedIn != nil {
                printSummary(runId: "\(stopped.runId) (\(stopped.how.rawValue))", stages: stopped.finished, stoppedIn: stopped.stoppedIn, how: stopped.how)
            }
            throw Failure.exit(for: error)
        }
    }

    /// Whether a run that failed got far enough to record sources of its data root: a refusal
    /// before the start (locked, a bad selection or manifest) did not.
    static func recordedAnything(_ error: Error) -> Bool {
        guard let pipeline = error as? PipelineError else { return true }
        if case .missingData = pipeline { return true }
        return false
    }

    private func printPlan(_ plan: [PlannedStage]) {
        if json {
            return JSONOutput.print(.array(plan.map {
                .object(["stage": .string($0.stage), "action": .string($0.action.rawValue), "reason": .string($0.reason),
                         "units": JSONOutput.optional($0.units), "units_after": JSONOutput.optional($0.unitsAfter)])
            }))
        }
        let width = plan.map(\.stage.count).max() ?? 0
        for stage in plan {
            let units = stage.action != .run ? ""
                : Self.unitsText(stage.units, after: stage.unitsAfter)
            print("\(stage.stage.padding(toLength: width, withPad: " ", startingAt: 0))  \(stage.action.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))  \(stage.reason)\(units)")
        }
    }

    /// How many units a planned stage computes; `after`: the stage that runs first and may change them.
    static func unitsText(_ units: Int?, after: String?) -> String {
        switch (units, after) {
        case (nil, _): " — whole stage"
        case (0, let first?): " — units known once \(first) has run"
        case (let count?, let first?): " — \(count) unit(s) to compute on the sources recorded now (\(first) runs first and may change that)"
        case (let count?, nil): " — \(count) unit(s) to compute"
        }
    }

    /// The last line: where the results are, in this run's folder or, for evaluate or export up to date, in the folder
    /// of the run that computed them (a new user looked for them in the newest folder, which then holds none). One
    /// line, each folder with its files: evaluate's and export's may be two runs' when only evaluate ran again.
    private func printResultsFolder(_ stages: [StageReport], runId: String, workspace: Workspace) {
        let written: [(stage: StageName, files: [RunFile])] = [(.evaluate, [.report, .metrics, .crossValidation]), (.export, [.onnx])]
        var groups: [(run: String, files: [String])] = []
        for (stage, files) in written {
            guard let run = stages.first(where: { $0.stage == stage.rawValue })?.producedByRun else { continue }
            let present = files.filter { FileManager.default.fileExists(atPath: workspace.runFile(run, $0)) }.map(\.rawValue)
            guard !present.isEmpty else { continue }
            if let index = groups.firstIndex(where: { $0.run == run }) { groups[index].files += present } else { groups.append((run, present)) }
        }
        guard !groups.isEmpty else { return }
        let places = groups.map { "\(workspace.runFolder($0.run).escaped)/: \($0.files.joined(separator: ", "))" }.joined(separator: "; ")
        let earlier = groups.contains { $0.run != runId } ? " (this run found \(groups.allSatisfy { $0.run != runId } ? "them" : "some") up to date)" : ""
        StandardStream.error.write(Data("results: \(places)\(earlier)\n".utf8))
    }

    /// `stoppedIn`: the stage a run stopped in (`how`), listed after the finished ones and counted in the cost.
    private func printSummary(runId: String, stages: [StageReport], stoppedIn: (stage: String, usage: ResourceUsage)? = nil,
                              how: StoppedRun.How = .failed) {
        var lines = ["run \(runId):"]
        for stage in stages {
            // An up-to-date stage's counts ("2 new", "1 computed now") are those of the run that made its output.
            let timing = stage.action == .ran ? " in \(ProgressReporter.duration(stage.seconds))" : " (run \(stage.producedByRun))"
            lines.append("  \(stage.stage): \(stage.action.rawValue)\(timing) — \(stage.outcome.summary.escaped)")
        }
        // The run's peak is its largest stage's: each stage resets the kernel's high-water mark, so an outside
        // measure (/usr/bin/time) sees only the last stage's.
        // Of the stages that ran: an up-to-date stage's figures are what deciding so cost.
        var ran = stages.filter { $0.action == .ran }.map { (stage: $0.stage, usage: $0.usage) }
        if let stoppedIn {
            lines.append("  \(stoppedIn.stage): \(how.rawValue) after \(ProgressReporter.duration(stoppedIn.usage.seconds))")
            ran.append(stoppedIn)
        }
        let peaks = ran.compactMap { stage in stage.usage.peakRSSMB.map { (stage: stage.stage, megabytes: $0) } }
        if !ran.isEmpty {
            let cpu = ran.map(\.usage.cpuSeconds).reduce(0, +)
            // Unknown where the kernel refused the per-stage reset (some sandboxes): the CPU time is still known.
            let peak = peaks.max(by: { $0.megabytes < $1.megabytes })
                .map { "\($0.megabytes.fixedText(places: 0)) MB (\($0.stage))" } ?? "unknown"
            lines.append("  in all: cpu \(cpu.fixedText(places: 1)) s, peak RSS \(peak)")
        }
        // Forced again, a stage starts over (train from epoch 1, ingest reading every file); without --force a
        // run goes on from what was kept, but does not finish what the force asked for (every file read again).
        if how == .interrupted && !ran.isEmpty {
            lines.append(force.isEmpty ? "  the same command resumes from here"
                         : "  the same command starts the --force stages over; without --force, a run goes on from what was kept")
        }
        StandardStream.error.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}

/// SIGINT and SIGTERM ask the run to stop after its current batch; a second SIGINT stops at once.
/// SIGHUP (the terminal closed under a run) asks the same, so the run is recorded interrupted and
/// resumes, unless emopipe started with it ignored (`nohup`), which stays so. Only a SIGINT once
/// stopping (a user pressing Ctrl-C again) stops at once: a closing terminal sends SIGHUP twice, and a
/// session manager SIGTERM then SIGHUP, and neither must cut the recording of the interrupted run short.
final class SignalTrap {
    private var sources: [DispatchSourceSignal] = []
    private var trapped: [Int32] = []
    private let lock = NSLock()
    private var stopping = false

    /// The signals that ask a command to stop: SIGINT, SIGTERM, SIGHUP (the terminal closed), but not
    /// SIGHUP when it is ignored (`nohup`), as asked, and SIGXCPU (the soft CPU-time limit, `ulimit -t`, reached:
    /// its default killed a run unrecorded, status 152). Leaves SIGHUP ignored for the caller to trap.
    static func stopSignals() -> [Int32] {
        let hangupIgnored = unsafeBitCast(signal(SIGHUP, SIG_IGN), to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
        return hangupIgnored ? [SIGINT, SIGTERM, SIGXCPU] : [SIGINT, SIGTERM, SIGHUP, SIGXCPU]
    }

    /// `stopping` is said on the first signal: what happens to the work done so far.
    init(cancellation: Cancellation, stopping: String = "stopping; finished work is kept") {
        // A log reader that goes away (`| head`, a `| tee` whose terminal closed) must not kill the work
        // (SIGPIPE, exit 141) with the run unrecorded: stderr's lost lines are let go; stdout's end the command (1).
        signal(SIGPIPE, SIG_IGN)
        trapped = Self.stopSignals()
        for sig in trapped {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self, self.firstToStop(sig) else { return }
                // Stop first, then say so: writing to a stderr nobody reads must not come before the stop.
                cancellation.cancel()
                StopRequest.set()
                let now = sig == SIGINT ? "Ctrl-C again to stop now" : "Ctrl-C (SIGINT) to stop now"
                let why = sig == SIGXCPU ? "\(Self.cpuLimitReached): " : ""
                StandardStream.error.write(Data("\nemopipe: \(why)\(stopping) (\(now))\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Whether `sig` is the first stop asked for; a SIGINT once stopping exits here and now.
    private func firstToStop(_ sig: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if stopping && sig == SIGINT { _exit(ExitStatus.interrupted) }
        defer { stopping = true }
        return !stopping
    }

    /// Back to the dispositions every command starts with (`installAtStart`), unless a stop was asked for: the
    /// process is then ending, and a second SIGTERM arriving between here and its exit must not kill it by the signal (143).
    func restore() {
        sources.forEach { $0.cancel() }
        lock.lock(); defer { lock.unlock() }
        guard !stopping else { return }
        trapped.forEach { signal($0, $0 == SIGINT ? SIG_DFL : Self.exitInterrupted) }
    }

    /// Ends the process at once with the interrupted status: async-signal-safe, nothing but `_exit` (and for
    /// SIGXCPU a `write` of why, which nothing else would say).
    static let exitInterrupted: @convention(c) (Int32) -> Void = { sig in
        if sig == SIGXCPU {
            // Literals' bytes: nothing is allocated or counted in a handler.
            for part: StaticString in ["\nemopipe: ", cpuLimitReached, ": stopping now\n"] {
                _ = write(STDERR_FILENO, part.utf8Start, part.utf8CodeUnitCount)
            }
        }
        _exit(ExitStatus.interrupted)
    }

    static let cpuLimitReached: StaticString = "the soft CPU-time limit (ulimit -t) was reached"

    /// For the time before a command traps the stop signals itself (start-up, and commands with nothing to finish
    /// such as `cache gc` or `status`): SIGTERM and SIGHUP end the process with 130, as documented, not by the signal
    /// (a shell's 143 and 129). SIGINT keeps its default, which a shell reports as 130 already; left alone, a caller can
    /// tell from /proc when a command's own trap for it is set. SIGHUP only when it is not ignored (`nohup`), which
    /// `stopSignals` must still see.
    static func installAtStart() {
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        for sig in stopSignals() {
            if sig != SIGINT { signal(sig, exitInterrupted) }
            sigaddset(&unblocked, sig)
        }
        // A parent that started emopipe from a thread with these signals blocked (a dispatch worker's mask is inherited
        // through posix_spawn) would leave a stop pending for ever.
        pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
    }
}
