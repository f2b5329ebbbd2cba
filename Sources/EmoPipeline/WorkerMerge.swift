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
        try main.create()
        let lock = try main.lock(holder: "emopipe merge (pid \(getpid()))")
        defer { lock.release() }
        let store = try main.openStore(.readWrite)
        var reports: [(String, MergeReport)] = []
        for folder in folders {
            let worker = Workspace(root: folder)
            // Its own lock would be reported as held by "another" merge: say what is wrong instead.
            guard URL(fileURLWithPath: folder).standardizedFileURL.path != URL(fileURLWithPath: main.root).standardizedFileURL.path else {
                throw PipelineError.invalidFile("\(folder) is the work directory merged into; give the workers' work directories")
            }
            guard worker.exists else { throw PipelineError.missingData("\(folder): not a work directory (no emopipe.sqlite)") }
            // A worker still running holds its lock: merging half its work would be fine, but surprising.
            let workerLock = try worker.lock(holder: "emopipe merge into \(main.root) (pid \(getpid()))")
            defer { workerLock.release() }
            let workerStore = try worker.openStore(.readOnly)
            try checkFinished(workerStore, folder: folder)
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

    private func checkFinished(_ store: ProvenanceStore, folder: String) throws {
        let runs = try store.runs()
        guard let last = runs.first else { throw PipelineError.missingData("\(folder): the worker never ran") }
        let worker = Workspace(root: folder)
        guard let marker = worker.workerMarker else {
            throw PipelineError.invalidFile("\(folder) is not a worker's work directory (no worker.txt: it was not made by `emopipe run --worker`)")
        }
        guard worker.workerSlice != nil else {
            throw PipelineError.invalidFile("\(worker.workerMarkerPath): \(marker.echoed) is not a worker slice I/N (0 <= I < N)")
        }
        guard [RunStatus.done, .partial].contains(last.status) else {
            throw PipelineError.missingData("\(folder): the worker's last run \(last.id) is \(last.status.rawValue); run it again to finish, then merge")
        }
    }
}
