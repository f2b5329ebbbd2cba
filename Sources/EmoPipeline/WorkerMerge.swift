import EmoCore
import EmoStore
import Foundation

/// Folds scale-out workers' work directories (`WORKDIR/workers/<I>-of-<N>`) into the main one:
/// their sources, failures, runs and cached records. The next `emopipe run` on the main work
/// directory finds every unit done and goes on with split, train and the rest.
///
///     let reports = try WorkerMerge(main: Workspace(root: "work")).merge(WorkerMerge.workerFolders(in: main))
public struct WorkerMerge {
    public let main: Workspace

    public init(main: Workspace) { self.main = main }

    /// The worker work directories inside the main one, sorted, each folder once: a link there to another
    /// worker's folder is the same worker, not one given twice.
    public static func workerFolders(in main: Workspace) -> [String] {
        var kept: [String] = []
        for folder in main.workerFolders where !kept.contains(where: { (try? isSameFolder($0, folder)) ?? false }) { kept.append(folder) }
        return kept
    }

    /// Each worker's merge, or why it was not merged: a worker that did not finish, is not a worker's
    /// folder, or whose own files or database are damaged is left out while the others are merged.
    /// `merged` hears of each worker as it is done, so what was merged is said even when a later problem
    /// of the main directory's (a full disk) stops the merge.
    public func merge(_ folders: [String], merged: (String, Result<MergeReport, Error>) -> Void = { _, _ in })
        throws -> [(String, Result<MergeReport, Error>)] {
        guard !folders.isEmpty else {
            var isFolder: ObjCBool = false
            let workersIsAFile = FileManager.default.fileExists(atPath: main.workersRoot, isDirectory: &isFolder) && !isFolder.boolValue
            throw PipelineError.missingData("nothing to merge: no worker work directories given, and "
                + (workersIsAFile ? "\(main.workersRoot) is a file, not the folder workers write into" : "none under \(main.workersRoot)"))
        }
        for folder in folders where try Self.isSameFolder(folder, main.root) {
            // Its own lock would be reported as held by "another" merge: say what is wrong instead.
            throw PipelineError.invalidFile("\(folder.echoed) is the work directory merged into; give the workers' work directories")
        }
        try Self.checkNamedOnce(folders)
        // A worker still running holds its lock (exit 75): taken first, for every worker, before its work is judged.
        var workerLocks: [WorkDirectoryLock] = []
        defer { workerLocks.forEach { $0.release() } }
        /// Workers whose lock file is no lock file (a link, a folder): left out, not merged unlocked.
        var unlockable: [String: Error] = [:]
        for folder in folders {
            let worker = Workspace(root: folder)
            var facts = stat()
            // A worker that took its lock and has not made its database yet is still running (75), not "no work directory".
            guard worker.exists || lstat(worker.lockPath, &facts) == 0 else { continue }
            do {
                workerLocks.append(try Self.lock(worker, for: main))
            } catch where Self.isWorkersOwn(error, worker: worker) {
                unlockable[folder] = error
            }
        }
        // Judged one by one: one worker killed or mistyped does not keep the finished ones out.
        let judged = folders.map { folder in
            (folder, unlockable[folder].map { Result<FinishedWork, Error>.failure($0) } ?? Result { try finishedWork(folder) })
        }
        let works = judged.compactMap { try? $0.1.get() }
        guard !works.isEmpty else {
            // Nothing to merge: the main directory is not even created.
            let reports: [(String, Result<MergeReport, Error>)] = judged.compactMap { folder, judgement in
                if case .failure(let why) = judgement { (folder, .failure(why)) } else { nil }
            }
            reports.forEach { merged($0.0, $0.1) }
            return reports
        }
        try main.create()
        let lock = try main.lock(holder: "emopipe merge (pid \(getpid()))")
        defer { lock.release() }
        let store = try main.openStore(.readWrite)
        try checkDataRoots(works, mainRoot: try store.runs().first { !$0.dataRoot.isEmpty }?.dataRoot)  // cache verify records no root
        var reports: [(String, Result<MergeReport, Error>)] = []
        for (folder, judgement) in judged {
            if StopRequest.isSet { throw EmoError.interrupted }
            if case .failure(let unfinished) = judgement {
                reports.append((folder, .failure(unfinished)))
                merged(folder, .failure(unfinished))
                continue
            }
            let worker = Workspace(root: folder)
            do {
                let workerStore = try worker.openForeignStore()
                let report = try store.absorb(workerStore, into: main) { shards in
                    // A full dataset's worker brings about a hundred shards, each copied, synced and checked.
                    let progress = ProgressReporter(label: "merge \(folder.echoed)", total: shards.count, unit: "shards", quietFor: 2)
                    defer { progress.finish() }
                    for (shard, keys) in shards {
                        // Ctrl-C: a worker's rows go in after its shards, so stopping here leaves only unindexed copies (gc's).
                        if StopRequest.isSet { throw EmoError.interrupted }
                        try copyShard(try worker.cacheFile(shard.file), to: shard.file, bytes: shard.bytes, keys: keys)
                        progress.advance()
                    }
                }
                reports.append((folder, .success(report)))
            } catch where Self.isWorkersOwn(error, worker: worker) {
                // A worker's damage is its own (its rows are written in one transaction, after its shards):
                // the others are merged.
                reports.append((folder, .failure(error)))
            }
            if let last = reports.last { merged(last.0, last.1) }
        }
        return reports
    }

    /// Takes a worker's lock for a merge into `main`. A lock file that is no lock file (a link, a folder)
    /// is the worker's damage; one held is a running worker (75); one this process may not open
    /// (permissions, the open-file limit) is the machine's, and stops the merge.
    public static func lock(_ worker: Workspace, for main: Workspace) throws -> WorkDirectoryLock {
        var facts = stat()
        if lstat(worker.lockPath, &facts) == 0, facts.st_mode & S_IFMT != S_IFREG {
            let kind = facts.st_mode & S_IFMT == S_IFLNK ? "a link" : facts.st_mode & S_IFMT == S_IFDIR ? "a folder" : "not a regular file"
            throw EmoError.io(path: worker.lockPath, reason: "the lock file is \(kind); remove it")
        }
        do {
            return try worker.lock(holder: "emopipe merge into \(main.root) (pid \(getpid()))")
        } catch PipelineError.locked(let holder) {
            // The main directory is not the one locked: name the worker's.
            throw PipelineError.locked(holder: "\(holder), in the worker's folder \(worker.root.echoed): merge once it has finished")
        } catch {
            throw PipelineError.missingData("\(error)")
        }
    }

    /// Whether an error is about the worker's own files or database (it is left out, the others merged)
    /// rather than the main directory's or the machine's (a full disk, a file this process may not read:
    /// the merge stops).
    public static func isWorkersOwn(_ error: Error, worker: Workspace) -> Bool {
        let path: String
        switch error {
        case CacheError.badShard(let p, _), CacheError.damagedRecord(let p, _), CacheError.io(let p, _): path = p
        case EmoError.io(let p, _): path = p
        default: return false
        }
        let root = worker.root.hasSuffix("/") ? worker.root : worker.root + "/"
        return path.hasPrefix(root)
    }

    /// Refuses a folder given twice, under one name or two (links, `..`): its second lock would be
    /// reported as held by a running worker.
    public static func checkNamedOnce(_ folders: [String]) throws {
        for (i, folder) in folders.enumerated() {
            if let earlier = try folders[..<i].first(where: { try isSameFolder($0, folder) }) {
                throw PipelineError.invalidFile(earlier == folder ? "\(folder.echoed) is given twice; give each worker's work directory once"
                                                : "\(earlier.echoed) and \(folder.echoed) are one folder; give each worker's work directory once")
            }
        }
    }

    /// Whether two paths name one folder (links and `..` resolved: device and inode compared).
    static func isSameFolder(_ a: String, _ b: String) throws -> Bool {
        if a == b { return true }
        var first = stat(), second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    /// Copies a worker's shard to `relative` in the main work directory only when it is sound: a regular
    /// file whose header and index hold together and whose every record matches its CRC (a damaged
    /// record merged would be trusted by every later run). The copy is what is checked, so nothing
    /// changed in the worker's file after a check gets in; folders on the way must not be links. A file of
    /// another size than its row says is refused before a byte is copied (a link to a huge file would
    /// otherwise fill the disk first).
    private func copyShard(_ source: String, to relative: String, bytes: Int, keys: Set<String>) throws {
        let destination = try main.cacheFile(relative)
        try main.createFoldersWithoutLinks(PathText.folder(of: relative))
        // Read-only, as the shards a run writes.
        try DurableFile.copy(from: source, to: destination, bytes: bytes, mode: 0o444) { copy in
            // The copy is checked, the worker's file is named: the copy's temporary name is gone after a refusal.
            let shard: ShardFile
            do { shard = try ShardFile(path: copy) } catch CacheError.badShard(_, let reason) {
                throw CacheError.badShard(path: source, reason: reason + "; " + Self.rerunAdvice)
            }
            // The records merged from it: one the worker's `cache verify` dropped is no longer indexed there.
            if let damaged = try shard.entries.first(where: { try keys.contains($0.key) && !shard.verify($0) }) {
                throw CacheError.badShard(path: source, reason: "record \(damaged.key.echoed) does not match its CRC-32C; " + Self.rerunAdvice)
            }
        }
    }

    /// What makes a damaged worker sound again: its index still names the damaged records, so running it
    /// again alone would find them done.
    static let rerunAdvice = "`emopipe cache verify --workdir` on that worker's folder, then its run again, recomputes what is damaged"

    /// What a finished worker did: its slice and the data root its last run read.
    struct FinishedWork {
        var folder: String
        var slice: WorkerSlice
        var dataRoot: String
    }

    private func finishedWork(_ folder: String) throws -> FinishedWork {
        let worker = Workspace(root: folder)
        guard worker.exists else {
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder)
            if exists && !isFolder.boolValue {
                throw PipelineError.invalidFile("\(folder.echoed): not a folder (a worker's work directory is one): leave it out")
            }
            throw PipelineError.missingData("\(folder.echoed): " + (exists ? "not a work directory (no emopipe.sqlite)" : "no such folder")
                + ": run that worker again (a worker stopped before its first run leaves its folder so), or leave the folder out")
        }
        let store = try worker.openForeignStore()
        guard let last = try store.runs(limit: 1).first else { throw PipelineError.missingData("\(folder.echoed): the worker never ran") }
        let found: String?
        do { found = try worker.readWorkerMarker() } catch { throw PipelineError.invalidFile("\(error)") }
        guard let marker = found else {
            throw PipelineError.invalidFile("\(folder.echoed) is not a worker's work directory (no worker.txt: it was not made by `emopipe run --worker`)")
        }
        let slice = try Self.slice(marker, in: worker.workerMarkerPath)
        guard [RunStatus.done, .partial].contains(last.status) else {
            // Its lock is held here, so a run recorded running died without ending (killed, out of memory).
            let status = last.status == .running ? "did not finish (its process died)" : "is \(last.status.rawValue)"
            throw PipelineError.missingData("\(folder.echoed): the worker's last run \(last.id.echoed) \(status); run it again to finish, then merge")
        }
        // `run --worker` names the folder after its slice: a worker.txt that disagrees was edited or moved.
        let name = URL(fileURLWithPath: folder).lastPathComponent
        if name.contains("-of-"), name != "\(slice.index)-of-\(slice.count)" {
            throw PipelineError.invalidFile("\(worker.workerMarkerPath.echoed) says slice \(slice) but the folder is \(name.echoed)")
        }
        // Its database is input too: a run of another slice (a worker's folder copied over this one), or a
        // source outside the root it read, would be merged as this slice's.
        if let recorded = last.worker, recorded != slice.description {
            throw PipelineError.invalidFile("\(folder.echoed): its last run \(last.id.echoed) was worker \(recorded.echoed), but \(worker.workerMarkerPath.echoed) says \(slice)")
        }
        let root = last.dataRoot.hasSuffix("/") ? last.dataRoot : last.dataRoot + "/"
        if !last.dataRoot.isEmpty, let stray = try store.sources().first(where: { !$0.path.hasPrefix(root) }) {
            throw EmoError.io(path: worker.databasePath, reason: "its source row \(stray.path.echoed) is not under the data root its last run read "
                              + "(\(last.dataRoot.echoed)): a row of an earlier run with another data root, or an edited database; "
                              + "remove that worker's folder and run the worker again")
        }
        return FinishedWork(folder: folder, slice: slice, dataRoot: last.dataRoot)
    }

    /// The slice a worker.txt names; a refusal says what is wrong with it (an empty file, not I/N, or
    /// I or N out of range).
    static func slice(_ marker: String, in path: String) throws -> WorkerSlice {
        guard let (index, count) = WorkerSlice.numbers(marker) else {
            throw PipelineError.invalidFile("\(path.echoed): " + (marker.isEmpty ? "is empty" : "\(marker.echoed) is not a worker slice I/N (0 <= I < N)"))
        }
        do { return try WorkerSlice(index: index, count: count) } catch PipelineError.invalidFile(let why) {
            throw PipelineError.invalidFile("\(path.echoed): \(why)")
        }
    }

    /// Workers merged together read one data root, the one the main work directory's last run read when
    /// it has one: sources are keyed by their paths, so another root's would be listed beside these.
    /// (Slices may overlap, e.g. after re-partitioning: a record already present is kept.)
    private func checkDataRoots(_ works: [FinishedWork], mainRoot: String?) throws {
        guard let first = works.first else { return }
        let expected = mainRoot ?? first.dataRoot
        let whose = mainRoot == nil ? "\(first.folder.echoed) read" : "\(main.root.echoed)'s last run read"
        if let other = works.first(where: { $0.dataRoot != expected }) {
            throw PipelineError.invalidFile("\(other.folder.echoed) read the data root \(other.dataRoot.echoed), \(whose) \(expected.echoed): "
                                            + "merge workers of one data root, into a work directory of that root")
        }
    }
}
