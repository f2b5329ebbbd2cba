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

    /// The worker work directories inside the main one, sorted.
    public static func workerFolders(in main: Workspace) -> [String] { main.workerFolders }

    public func merge(_ folders: [String]) throws -> [(String, MergeReport)] {
        guard !folders.isEmpty else {
            throw PipelineError.missingData("nothing to merge: no worker work directories given, and none under \(main.workersRoot)")
        }
        try checkTogether(try folders.map(finishedWork))
        try main.create()
        let lock = try main.lock(holder: "emopipe merge (pid \(getpid()))")
        defer { lock.release() }
        let store = try main.openStore(.readWrite)
        var reports: [(String, MergeReport)] = []
        for folder in folders {
            let worker = Workspace(root: folder)
            // A worker still running holds its lock: merging half its work would be fine, but surprising.
            let workerLock = try worker.lock(holder: "emopipe merge into \(main.root) (pid \(getpid()))")
            defer { workerLock.release() }
            let workerStore = try worker.openStore(.readOnly)
            let report = try store.absorb(workerStore) { relative in
                try copyShard(worker.path(relative), to: main.path(relative))
            }
            reports.append((folder, report))
        }
        return reports
    }

    /// Copies a worker's shard only when it is sound: a regular file whose header and index hold
    /// together and whose every record matches its CRC (a damaged record merged would be trusted by
    /// every later run). Mapped, not read into memory.
    private func copyShard(_ source: String, to target: String) throws {
        let shard = try ShardFile(path: source)
        if let damaged = shard.entries.first(where: { !shard.verify($0) }) {
            throw CacheError.badShard(path: source, reason: "record \(damaged.key.echoed) does not match its CRC-32C; run the worker again")
        }
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try DurableFile.write(bytes: shard.bytes, to: target)
    }

    /// What a finished worker did: its slice and the data root its last run read.
    struct FinishedWork {
        var folder: String
        var slice: WorkerSlice
        var dataRoot: String
    }

    private func finishedWork(_ folder: String) throws -> FinishedWork {
        // Its own lock would be reported as held by "another" merge: say what is wrong instead.
        guard URL(fileURLWithPath: folder).standardizedFileURL.path != URL(fileURLWithPath: main.root).standardizedFileURL.path else {
            throw PipelineError.invalidFile("\(folder) is the work directory merged into; give the workers' work directories")
        }
        let worker = Workspace(root: folder)
        guard worker.exists else { throw PipelineError.missingData("\(folder): not a work directory (no emopipe.sqlite)") }
        guard let last = try worker.openStore(.readOnly).runs().first else { throw PipelineError.missingData("\(folder): the worker never ran") }
        guard let marker = worker.workerMarker else {
            throw PipelineError.invalidFile("\(folder) is not a worker's work directory (no worker.txt: it was not made by `emopipe run --worker`)")
        }
        guard let slice = worker.workerSlice else {
            throw PipelineError.invalidFile("\(worker.workerMarkerPath): \(marker.echoed) is not a worker slice I/N (0 <= I < N)")
        }
        guard [RunStatus.done, .partial].contains(last.status) else {
            throw PipelineError.missingData("\(folder): the worker's last run \(last.id) is \(last.status.rawValue); run it again to finish, then merge")
        }
        // `run --worker` names the folder after its slice: a worker.txt that disagrees was edited or moved.
        let name = URL(fileURLWithPath: folder).lastPathComponent
        if name.contains("-of-"), name != "\(slice.index)-of-\(slice.count)" {
            throw PipelineError.invalidFile("\(worker.workerMarkerPath) says slice \(slice) but the folder is \(name.echoed)")
        }
        return FinishedWork(folder: folder, slice: slice, dataRoot: last.dataRoot)
    }

    /// Workers merged together must be slices of one partition of one data root: sources are keyed by
    /// their paths, so another root's would be listed beside these, and a slice taken twice is no partition.
    private func checkTogether(_ works: [FinishedWork]) throws {
        guard let first = works.first else { return }
        if let other = works.first(where: { $0.dataRoot != first.dataRoot }) {
            throw PipelineError.invalidFile("\(other.folder) read the data root \(other.dataRoot.echoed), \(first.folder) read \(first.dataRoot.echoed): "
                                            + "merge workers of one data root together")
        }
        if let other = works.first(where: { $0.slice.count != first.slice.count }) {
            throw PipelineError.invalidFile("\(other.folder) is slice \(other.slice) and \(first.folder) is slice \(first.slice): workers of one partition share N")
        }
        var seen: [Int: String] = [:]
        for work in works {
            if let earlier = seen[work.slice.index] {
                throw PipelineError.invalidFile("\(earlier) and \(work.folder) are both slice \(work.slice)")
            }
            seen[work.slice.index] = work.folder
        }
    }
}
