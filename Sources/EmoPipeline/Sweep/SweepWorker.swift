import EmoCore
import EmoStore
import Foundation

/// A sweep's scale-out worker (`emopipe sweep --worker I/N|env`): it runs the trials whose number
/// is I modulo N in its own work directory, `WORKDIR/workers/sweep-<sweep>-<I>-of-<N>`. That
/// directory starts as a snapshot of the main one's provenance database, and its `cache/<stage>`
/// folders (all but its own: train's models and split's plans) are links to the main one's, so the
/// trials read the cached features in place. The worker refuses to start, and to go on with a trial,
/// when a feature stage would compute anything: it must never write the main cache. A trial whose
/// features are in the cache under other settings than the stage's last (a sweep over `audio.n_mels`)
/// runs that stage computing nothing; its split, a plan made in a moment, it makes itself.
/// `emopipe merge` folds the trials' runs back (`SweepMerge`).
public enum SweepWorker {
    /// The main work directory of a sweep worker's (its marker says it is one), else nil.
    public static func mainWorkspace(of worker: Workspace) -> Workspace? {
        guard FileManager.default.fileExists(atPath: worker.sweepWorkerMarkerPath) else { return nil }
        let workers = PathText.folder(of: worker.root)
        return Workspace(root: PathText.folder(of: workers))
    }

    public static func workspace(main: Workspace, sweepId: String, slice: WorkerSlice) -> Workspace {
        main.sweepWorker(sweepId: sweepId, index: slice.index, count: slice.count)
    }

    /// Makes the worker's work directory on first use; later uses check it serves this sweep and slice.
    static func prepare(worker: Workspace, main: Workspace, sweepId: String, slice: WorkerSlice) throws {
        let marker = worker.sweepWorkerMarkerPath, expected = "\(sweepId) \(slice)"
        if let text = try? RegularFile.text(marker, atMost: RegularFile.markerLimit) {
            let served = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard served == expected else {
                throw PipelineError.invalidFile("\(marker.echoed): this work directory serves \(served.echoed), not \(expected)")
            }
            // A folder prepared by an emopipe that linked split's plans too: made the worker's own again.
            try ownFoldersUnlinked(worker)
            // The links name the main directory where it was when they were made: moved or copied since, they
            // lead to the old place (or nowhere), and the worker would find features missing that are there.
            try linkCacheFolders(worker: worker, main: main)
            // Until a trial has run here, a fresh snapshot picks up features the main directory gained since.
            guard try !startedTrials(worker, sweepId: sweepId) else { return }
            try FileManager.default.removeItem(atPath: marker)
        }
        try Folder.create(worker.root)
        // The main lock keeps a run from changing the database while it is copied.
        let lock = try lockWaitingForSiblings(main, holder: "emopipe sweep worker \(slice) \(copyingTheDatabase) (pid \(getpid()))")
        defer { lock.release() }
        let partial = worker.databasePath + ".part"
        for file in [worker.databasePath, worker.databasePath + "-wal", worker.databasePath + "-shm", partial, partial + "-journal"]
        where FileManager.default.fileExists(atPath: file) { try FileManager.default.removeItem(atPath: file) }
        // Copied under another name and renamed: a worker killed mid-copy leaves no half database for a
        // merge to stop on, only a folder the merge says to run again.
        try main.openStore(.readWrite).snapshot(to: partial)
        guard rename(partial, worker.databasePath) == 0 else {
            throw EmoError.io(path: worker.databasePath, reason: "cannot put the database copy in place: \(String(cString: strerror(errno)))")
        }
        try linkCacheFolders(worker: worker, main: main)
        // Written last: a worker killed while preparing starts over.
        try DurableFile.write(Data((expected + "\n").utf8), to: marker)
    }

    /// What a worker's hold of the main lock says it is doing: others wait for it.
    static let copyingTheDatabase = "copying the database"

    /// The main work directory's lock. Workers started together (as an array job starts them) each hold
    /// it for the moment their copy takes: one that finds another worker copying waits for it (up to
    /// `patience`, or until asked to stop), where it was refused with exit 75 and its trials were lost
    /// to the merge. A run or anything else holding it is refused at once, as before.
    static func lockWaitingForSiblings(_ main: Workspace, holder: String, patience: TimeInterval = 600) throws -> WorkDirectoryLock {
        let deadline = Date().addingTimeInterval(patience)
        while true {
            do { return try main.lock(holder: holder) } catch PipelineError.locked(let other)
                where other.contains(copyingTheDatabase) && Date() < deadline && !StopRequest.isSet {
                usleep(50_000)
            }
        }
    }

    /// Whether any trial has started in this worker's work directory (its sweep state holds one).
    private static func startedTrials(_ worker: Workspace, sweepId: String) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: worker.sweepFolder(sweepId).state) else { return false }
        let state = try? JSONOutput.decoder().decode(SweepState.self, from: data)
        return state.map { !$0.attempts.isEmpty } ?? true
    }

    /// The cache folders a worker writes in itself: its trials' models, and the split plans of its trials'
    /// settings (one small file each, made at once from the provenance it holds).
    static let ownCacheFolders: Set<String> = [StageName.train.rawValue, StageName.split.rawValue]

    /// Links at the worker's own cache folders removed (the links only; what they lead to stays).
    private static func ownFoldersUnlinked(_ worker: Workspace) throws {
        for name in ownCacheFolders.sorted() {
            let path = worker.cacheRoot + "/" + name
            var facts = stat()
            guard lstat(path, &facts) == 0, facts.st_mode & S_IFMT == S_IFLNK else { continue }
            guard unlink(path) == 0 else {
                throw EmoError.io(path: path, reason: "cannot remove the link to the main cache folder: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Every `cache/<stage>` of the main work directory but the worker's own, linked into the worker's.
    private static func linkCacheFolders(worker: Workspace, main: Workspace) throws {
        try Folder.create(worker.cacheRoot)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: main.cacheRoot)) ?? []
        for name in names.sorted() where !ownCacheFolders.contains(name) && !name.hasPrefix(".") {
            let link = worker.cacheRoot + "/" + name, target = main.cacheRoot + "/" + name
            var facts = stat()
            if lstat(link, &facts) == 0 {
                // A link to elsewhere (the main directory's old place) is made again; anything else is left.
                guard facts.st_mode & S_IFMT == S_IFLNK, (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != target else { continue }
                guard unlink(link) == 0 else {
                    throw EmoError.io(path: link, reason: "cannot replace the link to the main cache folder's old place: \(String(cString: strerror(errno)))")
                }
            }
            do { try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target) } catch {
                throw EmoError.io(path: link, reason: "cannot link the main cache folder there: \(error.localizedDescription)")
            }
        }
    }

    /// The stages train reads with the runner's parameters, in pipeline order: what trials share.
    static func featureStages(_ runner: PipelineRunner) -> [String] {
        let upstream = runner.readClosure(of: [StageName.train.rawValue]).subtracting([StageName.train.rawValue])
        return runner.pipeline.stageNames.filter(upstream.contains)
    }

    /// A worker's runner brings its own ingest up to date before a trial (it reads the data and writes only
    /// the worker's database; a `chmod` since the snapshot has a file hashed again), so that whether a
    /// feature stage would compute anything is judged on the data as it is.
    static func bringIngestUpToDate(_ runner: PipelineRunner, command: String) throws {
        let ingest = StageName.ingest.rawValue
        guard runner.pipeline.stageNames.contains(ingest), try runner.stageStatus(ingest).state != .upToDate else { return }
        _ = try runner.run(RunSelection(targets: [ingest]), command: command + " # the worker's ingest, before its trial")
    }

    /// Throws unless every stage before train the runner's trial reads is ready for a worker: up to date,
    /// or one that would compute nothing (every unit cached under the trial's settings), or the worker's own.
    static func checkFeaturesReady(_ runner: PipelineRunner, main: Workspace) throws {
        let plan = try runner.plan(RunSelection(targets: featureStages(runner)))
        let unready = plan.first { stage in
            stage.action != .upToDate && stage.units != 0 && !ownCacheFolders.contains(stage.stage)
        }
        if let stale = unready {
            let missing = stale.units.map { "\($0) unit(s) of it are not in the main cache" } ?? "it is not up to date in the main work directory"
            throw PipelineError.missingData("sweep worker: stage \(stale.stage) would run (\(stale.reason)), and \(missing); "
                + "run `emopipe sweep MANIFEST --prepare --workdir \(main.root)` first: workers read its features and never compute them")
        }
    }
}

/// Folds a sweep worker's work directory into the main one: its runs (provenance rows and
/// `runs/<id>/` folders), its trained models (`cache/train/<fingerprint>/`) and the trials it
/// finished (into the main `sweeps/<sweep>/state.json`), so `emopipe sweep` on the main work
/// directory finds them finished. Merging twice adds nothing the second time.
public struct SweepMerge {
    public let main: Workspace
    public init(main: Workspace) { self.main = main }

    public struct Report: Sendable {
        public var runs = 0
        public var runFolders = 0
        public var trainFolders = 0
        public var trials = 0
    }

    public static func isSweepWorker(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: Workspace(root: folder).sweepWorkerMarkerPath)
    }

    public func merge(_ folder: String) throws -> Report {
        let worker = Workspace(root: folder)
        // The marker is the worker's own file: a problem with it leaves this worker out, named by its path.
        let marker: String
        do { marker = try RegularFile.text(worker.sweepWorkerMarkerPath, atMost: RegularFile.markerLimit) ?? "" } catch {
            throw EmoError.io(path: worker.sweepWorkerMarkerPath, reason: "\(error)")
        }
        let words = marker.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let sweepId = words.first, SweepRunner.isSweepId(sweepId) else {
            throw EmoError.io(path: worker.sweepWorkerMarkerPath, reason: "expected `<sweep id> I/N`")
        }
        let slice = words.dropFirst().first.flatMap { try? WorkerSlice(parsing: $0) }
        // A sweep of this manifest running in WORKDIR saves its whole state after each trial: a merge
        // writing the state file meanwhile would be overwritten, its trials lost. Its lock keeps them apart.
        try Folder.create(main.sweepFolder(sweepId).path)
        let sweepLock = try WorkDirectoryLock.acquire(path: main.sweepFolder(sweepId).lock, holder: "emopipe merge (pid \(getpid()))")
        defer { sweepLock.release() }
        let lock = try main.lock(holder: "emopipe merge (pid \(getpid()))")
        defer { lock.release() }
        let workerLock = try WorkerMerge.lock(worker, for: main)
        defer { workerLock.release() }
        var report = Report()
        let store = try main.openStore(.readWrite), workerStore = try worker.openForeignStore()
        let known = Set(try store.runs().map(\.id))
        let fresh = try workerStore.runs().filter { !known.contains($0.id) }
        try checkPreparedHere(fresh, folder: folder)
        // As a run worker: one whose last trial did not finish (killed, or stopped) has trials left to train; merged,
        // the main sweep would train them wherever it runs (the merge job). Run it again to finish, then merge.
        if let last = try workerStore.runs(limit: 1).first, [RunStatus.running, .interrupted].contains(last.status), !known.contains(last.id) {
            let status = last.status == .running ? "did not finish (its process died)" : "was interrupted"
            throw EmoError.io(path: worker.databasePath, reason: "the worker's last run \(last.id.echoed) \(status); run it again to finish its trials, then merge")
        }
        if let stray = fresh.first(where: { !Workspace.isRunFolderName($0.id) }) {
            throw CacheError.io(path: worker.databasePath, reason: "its run id \(stray.id.echoed) is not a plain name (letters, digits, . _ -)")
        }
        // The worker's own folders must be its own: a link at `runs` or `cache/train` would bring in whatever it points to.
        for relative in Workspace.sweepWorkerOutputFolders where FileManager.default.fileExists(atPath: worker.path(relative)) && !worker.isLinkFree(relative) {
            throw CacheError.io(path: worker.path(relative), reason: "is a link or not a folder; a sweep worker's run folders and models are its own")
        }
        // A finished trial's results are its run folder's files: without them its run would be listed done with nothing to show.
        if let bare = fresh.first(where: { $0.status == .done && !FileManager.default.fileExists(atPath: worker.runFolder($0.id)) }) {
            throw CacheError.io(path: worker.runFolder(bare.id), reason: "is missing, but run \(bare.id) finished: its results (metrics.json, report) are not there to merge")
        }
        // The worker's features are the main's own (linked); a shard one of its runs wrote would be a bug.
        // Its other cache rows are the snapshot's: records `cache gc` may since have removed here, not brought back.
        if let written = try workerStore.shards(writtenBy: Set(fresh.map(\.id))).first {
            throw EmoError.io(path: worker.path(written.file), reason: "a sweep worker wrote a cache shard (in its run \(written.runId)); it should only read the main cache")
        }
        // Every refusal the worker's own files and state can give comes before the first copy, so a worker
        // said not to be merged has brought no folder in (a copy's own re-check stays as a guard).
        let state = try mergedState(sweepId: sweepId, worker: worker, slice: slice)
        let trainRoot = worker.trainRoot
        let models = ((try? FileManager.default.contentsOfDirectory(atPath: trainRoot)) ?? []).sorted()
        for folder in fresh.map({ worker.runFolder($0.id) }) + models.map({ trainRoot + "/" + $0 })
        where FileManager.default.fileExists(atPath: folder) {
            try Self.requireOnlyFiles(in: folder)
        }
        // Folders first, rows last: a merge killed midway is finished by the next one.
        for run in fresh where try copyIfMissing(worker.runFolder(run.id), to: main.runFolder(run.id)) { report.runFolders += 1 }
        for name in models where try copyIfMissing(trainRoot + "/" + name, to: main.trainRoot + "/" + name) {
            report.trainFolders += 1
        }
        report.runs = try store.absorb(workerStore, into: main, includingCache: false) { _ in }.runs
        if let state {
            try Folder.create(main.sweepFolder(sweepId).path)
            try DurableFile.write(Data(try JSONOutput.text(state.merged, pretty: true).utf8), to: main.sweepFolder(sweepId).state)
            report.trials = state.added
        }
        return report
    }

    /// A sweep worker's database starts as a snapshot of the work directory it was prepared from: the
    /// runs recorded before its marker was written are that directory's, and must all be here already.
    /// Merged into another work directory, they would all come in as runs of this one: refused.
    private func checkPreparedHere(_ fresh: [RunRecord], folder: String) throws {
        var facts = stat()
        guard stat(Workspace(root: folder).sweepWorkerMarkerPath, &facts) == 0 else { return }
        let prepared = Date(timeIntervalSince1970: Double(facts.st_mtim.tv_sec) + Double(facts.st_mtim.tv_nsec) / 1e9)
        let foreign = fresh.filter { $0.startedAt < prepared }
        guard let first = foreign.first else { return }
        throw PipelineError.invalidFile("\(folder.echoed) was prepared from another work directory than \(main.root.echoed): \(foreign.count) run(s) "
            + "of the snapshot it started from are not recorded here (\(first.id.echoed), ...); merge it into the work directory it was prepared from")
    }

    private func copyIfMissing(_ source: String, to target: String) throws -> Bool {
        let files = FileManager.default
        guard files.fileExists(atPath: source), !files.fileExists(atPath: target) else { return false }
        // copyItem copies links as links: one in a worker's tree would let later writes leave the work directory.
        try Self.requireOnlyFiles(in: source)
        let relativeTarget = String(target.dropFirst(main.root.count + 1))
        try main.createFoldersWithoutLinks(PathText.folder(of: relativeTarget))
        let partial = target + ".merging"
        try? files.removeItem(atPath: partial)
        do {
            try files.copyItem(atPath: source, toPath: partial)
            // The copy is what is checked (no link appeared after the check), with the worker's permission bits dropped.
            do { try Self.requireOnlyFiles(in: partial) } catch {
                try? files.removeItem(atPath: partial)
                throw error
            }
            Self.resetPermissions(partial)
            try files.moveItem(atPath: partial, toPath: target)
        } catch let error as CacheError {
            throw error
        } catch {
            throw EmoError.io(path: target, reason: "cannot copy \(source) there: \(error.localizedDescription)")
        }
        return true
    }

    /// Folders 0755 and files 0644 under `root` (a worker's set-uid or world-writable bits are not kept).
    static func resetPermissions(_ root: String) {
        var facts = stat()
        guard lstat(root, &facts) == 0 else { return }
        if facts.st_mode & S_IFMT == S_IFDIR {
            chmod(root, 0o755)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] { resetPermissions(root + "/" + name) }
        } else if facts.st_mode & S_IFMT == S_IFREG {
            chmod(root, 0o644)
        }
    }

    /// Refuses a tree holding anything but files and folders, naming the first such entry.
    static func requireOnlyFiles(in root: String) throws {
        if let link = firstLink(in: root) {
            throw CacheError.io(path: link, reason: "is a link (or not a file or folder); a sweep worker's run folders and models hold only files")
        }
    }

    /// The first entry under `root` (or `root` itself) that is neither a regular file nor a folder.
    static func firstLink(in root: String) -> String? {
        var facts = stat()
        guard lstat(root, &facts) == 0 else { return root }
        switch facts.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR:
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
            return names.lazy.compactMap { firstLink(in: root + "/" + $0) }.first
        default: return root
        }
    }

    /// The main directory's sweep state with the worker's finished trials added (ones the main state has
    /// finished stay), and how many were added; nil when the worker has no state. Checked and built
    /// before anything is copied.
    private func mergedState(sweepId: String, worker: Workspace, slice: WorkerSlice?) throws -> (merged: SweepState, added: Int)? {
        let theirPath = worker.sweepFolder(sweepId).state, ourFolder = main.sweepFolder(sweepId)
        guard let data = FileManager.default.contents(atPath: theirPath) else { return nil }
        let decoder = JSONOutput.decoder()
        let theirs: SweepState
        do { theirs = try decoder.decode(SweepState.self, from: data) } catch {
            throw EmoError.io(path: theirPath, reason: "not a sweep state file: \(JSONOutput.problem(error, in: data))")
        }
        var ours = SweepState(sweep: sweepId, metric: theirs.metric)
        if let mine = FileManager.default.contents(atPath: ourFolder.state) {
            do { ours = try decoder.decode(SweepState.self, from: mine) } catch {
                throw EmoError.io(path: ourFolder.state, reason: "not a sweep state file: \(JSONOutput.problem(error, in: mine))")
            }
        }
        // The worker's state is input: another sweep's, or a run name that is not a plain name (it is
        // written into best.yaml's comments), is refused rather than recorded.
        guard theirs.sweep == sweepId else {
            throw EmoError.io(path: theirPath, reason: "belongs to sweep \(theirs.sweep.echoed), not \(sweepId)")
        }
        // What the main sweep would refuse to load is refused here, before it is written into the main state.
        if let damage = theirs.damage { throw EmoError.io(path: theirPath, reason: damage) }
        // A worker runs the trials whose number is its index modulo the worker count: any other was edited in, and
        // once merged, the main sweep would refuse its own state (a trial past the sweep's last is one such).
        if let slice, let stray = theirs.attempts.first(where: { $0.trial % slice.count != slice.index }) {
            throw EmoError.io(path: theirPath, reason: "names trial \(stray.trial), which worker \(slice) does not run "
                              + "(its trials are those numbered \(slice.index) modulo \(slice.count)): edited, or another worker's")
        }
        if FileManager.default.fileExists(atPath: ourFolder.state), theirs.metric != ours.metric {
            throw EmoError.io(path: theirPath, reason: "holds figures of \(theirs.metric.echoed), while \(ourFolder.state) holds \(ours.metric.echoed)")
        }
        var added = 0
        for attempt in theirs.attempts where attempt.status == .done || attempt.status == .failed {
            if let mine = ours.attempt(trial: attempt.trial, epochs: attempt.epochs) {
                // Ours stands unless it is not done, or was finished on another basis before the worker's (run
                // ids sort by time): the sweep then resumes on the worker's result instead of training again.
                if mine.status == .done, attempt.status == .failed || mine.basis == attempt.basis || (mine.run ?? "") >= (attempt.run ?? "") { continue }
                // A worker's failure replaces only an older attempt that did not finish either.
                if attempt.status == .failed, (mine.run ?? "") >= (attempt.run ?? "") { continue }
            }
            // A failure comes in with its reason, so the leaderboard says why rather than "pending"; the
            // sweep run here tries such a trial again, as it does its own failed ones.
            ours.record(attempt)
            added += 1
        }
        return (ours, added)
    }
}
