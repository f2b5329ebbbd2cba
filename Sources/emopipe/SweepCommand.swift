import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStages
import Foundation

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run the trials of a manifest's sweep: block and print the leaderboard.",
        discussion: Help.reflow("""
        The manifest's `sweep:` block names a metric of metrics.json (`metric: weighted_f1`), a
        `direction` (maximize or minimize) and a `strategy`: `grid` (every combination of
        `grid: {stage.key: [values]}`), `random` (`random: {n_trials, seed, params: {stage.key:
        {distribution: uniform|log_uniform|int_uniform, low, high} or {distribution: choice, values}}}`),
        or `halving` (random's or grid's trials trained for `halving: {budgets: [2, 4, 8]}` epochs,
        the better half going on to each next budget). Every trial's values are validated as `--set`
        overrides before any trial runs (exit 64).

        Each trial is an ordinary recorded run up to evaluate (see `emopipe runs`) in the work
        directory, so the stages before train that trials read are computed once and shared. The sweep keeps its state in
        WORKDIR/sweeps/<name>-<hash>/state.json: run again (after a kill, Ctrl-C or a failed trial),
        it skips the trials already finished and resumes the interrupted one from its checkpoints.
        It writes leaderboard.json, report.html and best.yaml there: the best trial's full manifest,
        which `emopipe run best.yaml` trains and evaluates again.

        Output: the leaderboard on stdout (best first), or with --json one document
        {"sweep", "metric", "direction", "trials": [{trial, params, metric, seconds, status, run, epochs,
        reason}], "best": trial}; params nest by stage ({"train": {"dropout": 0.1}}), seconds is null for a
        trial not run yet.
        Exit status: 0 every trial finished on all of its data; 3 some trials failed (a --worker also when all of its own did), or
        some ran on data with failed sources or clips (see `emopipe sources --failed`), as `emopipe run` exits 3; 1 no trial finished; 64 a bad manifest,
        trial or data root (not a folder); 130 interrupted. With --prepare, as `emopipe run` gives it for the
        shared stages: 0 done, 3 some sources failed (see `emopipe sources --failed`), 1 a stage failed.

        Scale-out: `--worker I/N` (I from 0) runs trials I, I+N, I+2N, ... in its own work directory,
        WORKDIR/workers/sweep-<name>-<hash>-<I>-of-<N>: a snapshot of WORKDIR's database whose feature
        cache folders link to WORKDIR's, so trials read the main features and never write them. Compute
        them first with `emopipe sweep MANIFEST --prepare` (the stages before train that some trial reads,
        for each of their settings the trials hold, in WORKDIR); a worker refuses to start a trial whose
        features would be computed (it makes its split plans itself). `--worker env` takes I and N from a Slurm array or a
        Kubernetes Indexed Job (as `emopipe run --worker env`). Then `emopipe merge` folds the workers'
        runs and trials into WORKDIR and `emopipe sweep MANIFEST` there prints the whole leaderboard.
        Halving cannot be spread (each budget needs every trial's result at the one before).

        Examples:
          emopipe sweep manifests/sweep-demo.yaml
          emopipe sweep manifests/sweep-demo.yaml --leaderboard --json  # run nothing
          emopipe sweep manifests/sweep-demo.yaml --prepare   # then per machine:
          emopipe sweep manifests/sweep-demo.yaml --worker 0/2
          emopipe merge && emopipe sweep manifests/sweep-demo.yaml
        """))

    @OptionGroup var manifestOptions: ManifestOptions
    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Flag(help: "Print the leaderboard as one JSON document.")
    var json = false

    @Flag(help: "Print the leaderboard of the trials finished so far and run nothing.")
    var leaderboard = false

    @Flag(help: "Compute the stages before train that some trial reads (ingest, audio, split; faces when a trial's modalities have faces), once per setting of them among the trials, in WORKDIR and stop; sweep workers read them.")
    var prepare = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Run as sweep worker I of N (I/N, or `env` for Slurm/Kubernetes): trials I, I+N, ... in WORKDIR/workers/sweep-*.", valueName: "I/N|env"))
    var worker: String?

    func validate() throws {
        if prepare && (worker != nil || leaderboard || json) { throw ValidationError("--prepare goes alone (it runs the shared stages in WORKDIR, before any worker)") }
        if leaderboard && worker != nil { throw ValidationError("--leaderboard reads WORKDIR's sweep; give it without --worker") }
        if !leaderboard { try workDirectoryOptions.requireOwnPlace() }
    }

    func run() throws {
        do {
            let workspace = workDirectoryOptions.workspace
            let (manifest, dataRoot) = try manifestOptions.load(in: workspace)
            dataRoot.announce()
            let cancellation = Cancellation()
            let signals = SignalTrap(cancellation: cancellation)
            defer { signals.restore() }
            let slice = try worker.map { text in
                text == "env" ? try WorkerSlice(environment: ProcessInfo.processInfo.environment, manifestWorkers: manifest.workers)
                              : try WorkerSlice(parsing: text)
            }
            let sweep = try SweepRunner(manifest: manifest, workspace: workspace, stages: StageCatalog.all(),
                                        cancellation: cancellation, libraries: StageCatalog.libraryVersions, worker: slice)
            // Workers read the main work directory's features, and a leaderboard reads results only.
            if worker == nil && !leaderboard { try dataRoot.requireFolder(apartFrom: workspace) }
            sweep.log = { StandardStream.error.write(Data("sweep: \($0)\n".utf8)) }
            if prepare {
                let reports: [RunReport]
                do { reports = try sweep.prepareFeatures(command: CommandLine.arguments.joined(separator: " ")) } catch {
                    if RunCommand.recordedAnything(error) { dataRoot.remember(in: workspace) }
                    if case EmoError.interrupted = error {
                        StandardStream.error.write(Data("sweep: --prepare interrupted; what it computed is kept, and the same command goes on from there\n".utf8))
                    }
                    throw error
                }
                dataRoot.remember(in: workspace)
                let runs = reports.map(\.runId).joined(separator: ", ")
                StandardStream.error.write(Data("sweep: shared stages ready in \(workspace.root.escaped) for \(reports.count) setting(s) of them (run\(reports.count == 1 ? "" : "s") \(runs))\n".utf8))
                if let failed = reports.first(where: { $0.exitCode != 0 }) { throw ExitCode(failed.exitCode) }
                return
            }
            let board: SweepLeaderboard
            if leaderboard {
                board = try sweep.currentLeaderboard()
            } else {
                do { board = try sweep.run(command: CommandLine.arguments.joined(separator: " ")) } catch {
                    if RunCommand.recordedAnything(error) { dataRoot.remember(in: workspace) }
                    throw error
                }
                dataRoot.remember(in: workspace)
                let best = board.best != nil ? "; best manifest \(sweep.files.bestManifest.escaped)" : ""
                StandardStream.error.write(Data("sweep: report \(sweep.files.report.escaped)\(best)\n".utf8))
            }
            if json { JSONOutput.print(board.json) } else { print(board.text) }
            if leaderboard { return }
            // A worker's share may be empty, and its best is not the sweep's: only failures count.
            if slice == nil && board.best == nil { throw ExitCode(ExitStatus.failure) }
            let onPartialData = try sweep.trialsOnPartialData(board)
            if !onPartialData.isEmpty {
                let trials = onPartialData.map(String.init).joined(separator: ", ")
                StandardStream.error.write(Data("sweep: trial(s) \(trials) ran on data with failed sources or clips (see `emopipe sources --failed`)\n".utf8))
            }
            if board.entries.contains(where: { $0.status == .failed }) || !onPartialData.isEmpty { throw ExitCode(ExitStatus.partial) }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}
