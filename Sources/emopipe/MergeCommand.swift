import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStore
import Foundation

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold scale-out workers' work directories into the main work directory.",
        discussion: Help.reflow("""
        Each worker (`emopipe run --worker I/N`) wrote its own shards and provenance database under
        WORKDIR/workers/<I>-of-<N>. merge copies their shards (durably) and then their sources,
        failures, runs and cache index rows in one transaction; records already present are kept,
        so merging twice is harmless. With no WORKER_DIR, every folder under WORKDIR/workers (but hidden ones
        and lost+found) is merged.
        A worker still running (its lock held, exit 75) is refused, and so is one that read another data
        root than the others (or than WORKDIR's last run). A worker whose last run did not finish, whose
        lock file is a link or a folder, or a folder that is not a worker's (one without a database included),
        is left out while the others are merged. A worker's rows and files are checked before use: shard
        rows must name the cache's own shard paths, run ids must be plain names, sources must lie under the
        data root its last run read and that run must be of the slice its worker.txt names, a shard is
        published only when the copy's records all match their CRC-32C and nothing follows its index, and
        each index row must agree with its shard's own index. A worker whose shards or rows are damaged is
        not merged (stderr says why and what makes it sound) while the others are, sweep workers too, exit
        status 3 (1 when none is); merge again once it is sound or finished. A worker's lock file this
        process may not open (permissions, a read-only mount) stops the merge (exit 1).
        Afterwards `emopipe run` on WORKDIR finds the per-source work done and runs split, train and on.

        A sweep worker's folder (`emopipe sweep --worker`, WORKDIR/workers/sweep-*) brings its trials'
        runs, run folders and trained models, and its finished trials join WORKDIR/sweeps/<sweep>/state.json
        (refused, exit 75, while a sweep of that manifest runs in WORKDIR);
        `emopipe sweep MANIFEST` on WORKDIR then prints the whole leaderboard and writes best.yaml.

        Example (3 local workers):
          for i in 0 1 2; do emopipe run manifests/default.yaml --worker $i/3 & done; wait
          emopipe merge && emopipe run manifests/default.yaml
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Argument(help: "Worker work directories (default: all under WORKDIR/workers).")
    var workers: [String] = []

    /// One line naming the worker left out and why; most reasons start with its folder or a file in it, named once.
    static func sayNotMerged(_ folder: String, _ error: Error) {
        let why = "\(error)", shown = folder.echoed
        // Named as given, or as a message echoes it (escaped, a long one cut).
        let named = [folder, shown].contains { why.hasPrefix($0 + ":") || why.hasPrefix($0 + "/") || why.hasPrefix($0 + " ") }
        let line = named ? "\(why); not merged" : "\(shown): not merged: \(why)"
        StandardStream.error.write(Data("emopipe: \(line)\n".utf8))
    }

    func validate() throws {
        // An empty path would quietly mean the current folder.
        if workers.contains("") { throw ValidationError("an empty argument names no worker's work directory") }
        try workDirectoryOptions.requireOwnPlace()
    }

    func run() throws {
        do {
            let main = workDirectoryOptions.workspace
            let signals = SignalTrap(cancellation: Cancellation(), stopping: "stopping after the shard in hand; the workers merged stay merged")
            defer { signals.restore() }
            let given = workers.isEmpty ? WorkerMerge.workerFolders(in: main) : workers
            try WorkerMerge.checkNamedOnce(given)
            // Sweep workers (`emopipe sweep --worker`) bring runs and trials, not per-source records.
            let sweepWorkers = given.filter(SweepMerge.isSweepWorker)
            /// Workers judged, and those left out.
            var (judged, notMerged) = (0, 0)
            for folder in sweepWorkers {
                judged += 1
                do {
                    let report = try SweepMerge(main: main).merge(folder)
                    print("\(folder.escaped): \(report.trials) sweep trials, \(report.runs) runs (\(report.runFolders) run folders, \(report.trainFolders) trained models)")
                    fflush(stdout)   // said now: a second Ctrl-C exits without flushing
                } catch where WorkerMerge.isWorkersOwn(error, worker: Workspace(root: folder)) {
                    // One sweep worker's damage or mistake keeps neither the other sweep workers nor the run workers out.
                    Self.sayNotMerged(folder, error)
                    notMerged += 1
                }
            }
            let folders = given.filter { !SweepMerge.isSweepWorker($0) }
            if !folders.isEmpty || sweepWorkers.isEmpty {
                // Each worker is said as it is done: a merge a later problem stops has still merged those.
                let results = try WorkerMerge(main: main).merge(folders) { folder, result in
                    switch result {
                    case .success(let report):
                        let leftOut = report.recordsInShardsAlreadyPresent == 0 ? ""
                            : "; \(report.recordsInShardsAlreadyPresent) records left out, their shards' names already the main cache's (the next run computes them)"
                        print("\(folder.escaped): \(report.sources) sources, \(report.failures) failures, \(report.records) records in "
                              + "\(report.shards) shards (\(report.recordsAlreadyPresent) already present\(leftOut)), \(report.runs) runs")
                        fflush(stdout)
                    case .failure(let damage):
                        Self.sayNotMerged(folder, damage)
                    }
                }
                judged += results.count
                notMerged += results.filter { (try? $0.1.get()) == nil }.count
            }
            if notMerged > 0 {
                let merged = judged - notMerged
                let others = merged == 0 ? "none was merged" : "the other \(merged) \(merged == 1 ? "was" : "were")"
                StandardStream.error.write(Data("emopipe: \(notMerged) of \(judged) worker(s) not merged; \(others)\n".utf8))
                throw ExitCode(merged == 0 ? ExitStatus.failure : ExitStatus.partial)
            }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}
