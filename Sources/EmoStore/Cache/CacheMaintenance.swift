import EmoCore
import Foundation
import GRDB

/// A record whose bytes no longer match their CRC, with the sources it was computed from.
public struct DamagedRecord: Equatable, Sendable {
    public var stage: String
    public var fingerprint: String
    public var key: String
    public var shard: String
    public var sources: [String]
    public var reason: String
}

public struct VerifyReport: Equatable, Sendable {
    public var checkedRecords = 0
    public var checkedBytes = 0
    public var damaged: [DamagedRecord] = []
}

public struct CacheStats: Equatable, Sendable {
    public var stage: String
    public var fingerprint: String
    public var shards: Int
    public var records: Int
    public var bytes: Int
}

extension TensorCache {
    /// Re-checks every record's CRC (of one stage, or all). A damaged record is dropped from the
    /// index and recorded as a failure naming its sources, so the next run recomputes it — and only it.
    /// The failure rows belong to run `runId`, which must be recorded already.
    public func verify(stage: String? = nil, runId: String, progress: ((Int, Int) -> Void)? = nil) throws -> VerifyReport {
        try verify(stage: stage, runId: runId, newRun: nil, progress: progress)
    }

    /// As `verify(stage:runId:)`, for a verification that is a run of its own: `run` is recorded
    /// with the first damaged record (a clean cache leaves no trace), and its failure rows belong to it.
    public func verify(stage: String? = nil, as run: RunRecord, progress: ((Int, Int) -> Void)? = nil) throws -> VerifyReport {
        try verify(stage: stage, runId: run.id, newRun: run, progress: progress)
    }

    /// What marks a stage's output digest once `verify` dropped records of it.
    static let droppedMarker = "records-dropped-by-verify:"

    private func verify(stage: String?, runId: String, newRun: RunRecord?, progress: ((Int, Int) -> Void)?) throws -> VerifyReport {
        let rows = try store.read { db -> [CacheRecordRow] in
            var request = CacheRecordRow.order(Column("shardId"), Column("dataOffset"))
            if let stage { request = request.filter(Column("stage") == stage) }
            return try request.fetchAll(db)
        }
        var report = VerifyReport()
        // A shard of another size than written was changed after it was indexed (appended to, replaced):
        // its records are not trusted even where their CRCs still hold. One that is no regular file any
        // more (gone, or a folder or FIFO put in its place) is what `run` recomputes and `cache stats` names: dropped too.
        let resized = Dictionary(try store.read { try CacheShardRow.fetchAll($0) }.compactMap { shard -> (Int64, String)? in
            switch (shard.id, fileProblem(shard)) {
            case (let id?, .resized(let bytes)?): return (id, "its shard is \(bytes) bytes, written as \(shard.bytes)")
            case (let id?, .missing?):
                // A row naming a path outside cache/ says so, as reading it would.
                do { _ = try workspace.cacheFile(shard.file) } catch { return (id, "cached record unreadable: \(error)") }
                return (id, "its shard is gone or no longer a regular file")
            default: return nil
            }
        }, uniquingKeysWith: { a, _ in a })
        for (i, row) in rows.enumerated() {
            // Ctrl-C: each drop is committed on its own, so stopping between records keeps the index sound.
            if StopRequest.isSet { throw EmoError.interrupted }
            let problem = try resized[row.shardId] ?? recordProblem(row, checkedBytes: &report.checkedBytes)
            report.checkedRecords += 1
            progress?(i + 1, rows.count)
            guard let problem else { continue }
            let shard = try shardFile(row.shardId) ?? "shard \(row.shardId), not listed"
            let sources = try store.sources(sha256: row.key).map(\.path)
            report.damaged.append(DamagedRecord(stage: row.stage, fingerprint: row.fingerprint, key: row.key,
                                                shard: shard, sources: sources, reason: problem))
            let recordRun = newRun != nil && report.damaged.count == 1
            try store.write { db in
                if recordRun, let newRun { try newRun.insert(db) }
                try row.delete(db)
                // The stage's output is no longer what its digest says: the stages reading it are stale until it is
                // computed again (a `--only train` meanwhile is recorded as trained on other inputs, not these).
                try db.execute(sql: """
                    UPDATE stageState SET outputDigest = ? || outputDigest
                    WHERE stage = ? AND parametersFingerprint = ? AND outputDigest NOT LIKE ? || '%'
                    """, arguments: [Self.droppedMarker, row.stage, row.fingerprint, Self.droppedMarker])
                for subject in sources.isEmpty ? [row.key] : sources {
                    var failure = FailureRecord(stage: "cache", fingerprint: row.fingerprint, subject: subject,
                                                sha256: row.key, reason: "\(row.stage): \(problem) in \(shard); recomputed by the next run",
                                                runId: runId)
                    try failure.insert(db)
                }
            }
        }
        return report
    }

    /// Indexed shards that are not on disk as written: gone, not a regular file, or of another size than
    /// recorded. `stats` counts what the index holds; this says what of it cannot be read.
    public func unsoundShards() throws -> [CacheShardRow] {
        // Only shards whose records are still indexed: verify drops a damaged shard's records, and gc its row later.
        try store.read { db in
            try CacheShardRow.filter(sql: "id IN (SELECT DISTINCT shardId FROM cacheRecord)").order(Column("file")).fetchAll(db)
        }.filter { fileProblem($0) != nil }
    }

    /// Why one record cannot be trusted (unreadable, or failing its CRC-32C), or nil; its bytes are counted.
    private func recordProblem(_ row: CacheRecordRow, checkedBytes: inout Int) throws -> String? {
        do {
            let tensor = try self.tensor(row)
            checkedBytes += tensor.entry.dataLength + tensor.entry.metaLength
            let sound = try tensor.shard.verify(tensor.entry) && Int64(tensor.entry.crc32c) == row.crc32c
            guard sound else { return "cached record fails its CRC-32C check" }
            // The index's copy of the metadata is what `show` and the Python reader offer: it must be the shard's.
            return try tensor.metadata == row.metadata ? nil : "the index's metadata differs from its shard's"
        } catch let error as CacheError {
            // A shard this process may not read is not damaged: stop, keeping every record.
            if case .denied = error { throw error }
            return "cached record unreadable: \(error)"
        } catch {
            return "cached record unreadable: \(error)"
        }
    }

    public func stats() throws -> [CacheStats] {
        // Summed here, clamped, not by SQL: SUM overflows into an error and TOTAL rounds through a double. A
        // hand-edited row's bytes (text, negative) count nothing.
        try store.read { db in
            let records = Dictionary(try Row.fetchAll(db, sql: "SELECT stage, fingerprint, COUNT(*) AS n FROM cacheRecord GROUP BY stage, fingerprint").map { row in
                ([try row.decode(String.self, forColumn: "stage"), try row.decode(String.self, forColumn: "fingerprint")], try row.decode(Int.self, forColumn: "n"))
            }, uniquingKeysWith: +)
            let shards = try Row.fetchAll(db, sql: """
                SELECT stage, fingerprint, CASE WHEN typeof(bytes) = 'integer' AND bytes >= 0 THEN bytes ELSE 0 END AS bytes
                FROM cacheShard ORDER BY stage, fingerprint
                """)
            var stats: [CacheStats] = []
            for row in shards {
                let stage: String = try row.decode(forColumn: "stage"), fingerprint: String = try row.decode(forColumn: "fingerprint")
                let bytes: Int = try row.decode(forColumn: "bytes")
                if let last = stats.indices.last, stats[last].stage == stage, stats[last].fingerprint == fingerprint {
                    stats[last].shards += 1
                    stats[last].bytes = stats[last].bytes.clampedAdding(bytes)
                } else {
                    stats.append(CacheStats(stage: stage, fingerprint: fingerprint, shards: 1,
                                            records: records[[stage, fingerprint]] ?? 0, bytes: bytes))
                }
            }
            return stats
        }
    }

    /// What `collectGarbage` would remove, computed without changing anything (`cache gc --dry-run`).
    ///
    /// - `keep`: stage → the parameters fingerprints whose records stay. Records and shards of any
    ///   other fingerprint go.
    /// - `liveKeys` (the content hashes of the sources still on disk): records of other keys go too.
    /// Shards left with no live record go whole; shards left part-used are rewritten with their live
    /// records (bytes unchanged). Files under `cache/` that no index row names (left by a crash) go.
    public func planGarbage(keep: [String: Set<String>], liveKeys: Set<String>? = nil) throws -> GarbagePlan {
        let (records, shards) = try store.read { db in
            (try CacheRecordRow.fetchAll(db), try CacheShardRow.fetchAll(db))
        }
        var plan = GarbagePlan()
        var liveByShard: [Int64: [CacheRecordRow]] = [:]
        var shardsWithGoneSources: Set<Int64> = []
        for row in records {
            if keep[row.stage]?.contains(row.fingerprint) != true {
                plan.add(row, reason: .fingerprintNotKept)
            } else if let liveKeys, !liveKeys.contains(row.key) {
                plan.add(row, reason: .sourceGone)
                shardsWithGoneSources.insert(row.shardId)
            } else {
                liveByShard[row.shardId, default: []].append(row)
            }
        }
        for shard in shards {
            guard let id = shard.id else { continue }
            let live = liveByShard[id] ?? []
            if live.isEmpty {
                let reason: GarbagePlan.Reason = keep[shard.stage]?.contains(shard.fingerprint) != true ? .fingerprintNotKept
                    : shardsWithGoneSources.contains(id) ? .sourceGone : .noRecordInUse
                // What removing it frees is what is there: nothing when the file is already gone. Anything
                // but a regular file in its place is not the cache's to remove: its row goes, it stays.
                let onDisk = (try? workspace.cacheFile(shard.file)).flatMap(Self.fileFacts)
                if let onDisk, onDisk.isRegular == false { plan.leftInPlace.append(GarbagePlan.File(path: shard.file, bytes: 0)) }
                plan.removeShard(shard, reason: reason, bytes: onDisk?.isRegular == true ? onDisk?.bytes ?? 0 : 0)
            } else if live.count < shard.records,
                      (try? workspace.cacheFile(shard.file)).flatMap(Self.fileFacts)?.isRegular == true {
                // (A shard whose file is gone holds damage for `cache verify`, not bytes to win back.)
                plan.compactShard(shard, keeping: live)
            }
        }
        let known = Set(shards.map(\.file))
        let cacheRoot = workspace.cacheRoot
        if let walker = FileManager.default.enumerator(atPath: cacheRoot) {
            for case let relative as String in walker {
                if relative.contains(GarbagePlan.supersededMarker) {
                    walker.skipDescendants()
                    plan.supersededFolders.append(GarbagePlan.File(path: workspace.relativeCachePath(relative), bytes: Self.size(of: cacheRoot + "/" + relative)))
                    continue
                }
                let name = (relative as NSString).lastPathComponent
                guard relative.hasSuffix(".shard") || DurableFile.isLeftover(name: name),
                      !known.contains(workspace.relativeCachePath(relative)),
                      let found = Self.fileFacts(cacheRoot + "/" + relative), found.isRegular else { continue }
                plan.leftoverFiles.append(GarbagePlan.File(path: workspace.relativeCachePath(relative), bytes: found.bytes))
            }
        }
        // Run, sweep and nightly-report folders and the work directory's own files: writes a kill cut short
        // (manifest.yaml.part-<pid>, state.json.part-<pid>, ...). Where writers do not hold the lock gc holds,
        // a process gone from this PID namespace may be a live one in another container: only a file left
        // alone for `unlockedLeftoverAge` is taken there.
        let topFiles = ((try? FileManager.default.contentsOfDirectory(atPath: workspace.root)) ?? []).map { ($0, true) }
        let nestedFiles = Workspace.durablyWrittenFolders.flatMap { folder in
            (FileManager.default.enumerator(atPath: workspace.path(folder.name))?.compactMap { $0 as? String } ?? [])
                .map { (folder.name + "/" + $0, folder.underWorkDirectoryLock) }
        }
        for (relative, locked) in nestedFiles + topFiles where DurableFile.isLeftover(name: (relative as NSString).lastPathComponent) {
            guard let found = Self.fileFacts(workspace.path(relative)), found.isRegular,
                  locked || found.age >= Self.unlockedLeftoverAge else { continue }
            plan.leftoverFiles.append(GarbagePlan.File(path: relative, bytes: found.bytes))
        }
        plan.leftoverFiles.sort { $0.path < $1.path }
        plan.supersededFolders.sort { $0.path < $1.path }
        return plan
    }

    /// How long a leftover where writers do not hold the work-directory lock must have been left alone:
    /// a `DurableFile` write takes milliseconds.
    static let unlockedLeftoverAge: TimeInterval = 600

    /// What `lstat` finds at `path`: whether it is a regular file, its bytes and the seconds since it was
    /// last modified; nil when nothing is there.
    static func fileFacts(_ path: String) -> (isRegular: Bool, bytes: Int, age: TimeInterval)? {
        var facts = stat()
        guard lstat(path, &facts) == 0 else { return nil }
        return (facts.st_mode & S_IFMT == S_IFREG, Int(facts.st_size), Date().timeIntervalSince1970 - Double(facts.mtimeNanos) / 1e9)
    }

    /// Bytes of a file, or of the files under a folder.
    static func size(of path: String) -> Int {
        let manager = FileManager.default
        func bytes(_ file: String) -> Int { (try? manager.attributesOfItem(atPath: file)[.size] as? Int) ?? 0 }
        var directory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &directory), directory.boolValue else { return bytes(path) }
        let files = manager.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
        return files.reduce(0) { $0 + bytes(path + "/" + $1) }
    }

    /// Carries out `plan` (from `planGarbage`, under the work-directory lock) and returns it.
    @discardableResult
    public func collectGarbage(_ plan: GarbagePlan) throws -> GarbagePlan {
        var plan = plan
        try store.write { db in
            for row in plan.records { try row.delete(db) }
        }
        let runId = "gc-" + String(Int(Date().timeIntervalSince1970))
        var compacted: [CacheShardRow] = []
        for compaction in plan.compactions {
            do {
                let records = try compaction.live.map { row -> TensorRecord in
                    let tensor = try self.tensor(row, verify: true)
                    return TensorRecord(key: row.key, dtype: tensor.dtype, shape: tensor.shape, data: try tensor.bytes,
                                        metadata: try tensor.metadata)
                }
                try publish(stage: compaction.shard.stage, fingerprint: compaction.shard.fingerprint, runId: runId,
                            records: records, failures: [])
                compacted.append(compaction.shard)
            } catch let damage as CacheError where damage.repair != nil {
                // A live record there is damaged: the shard stays as it is (its live records still indexed in
                // it, nothing lost) and the rest of the collection goes on; verify, then gc, finish it.
                plan.leaveUncompacted(compaction.shard, because: "\(damage)")
            }
        }
        // The old shards, whole or compacted: no index row refers to them any more.
        for shard in plan.shards + compacted {
            guard let id = shard.id else { continue }
            _ = try store.write { db in try CacheShardRow.deleteOne(db, key: id) }
            // A row naming a file outside cache/ loses its row; the file it names is not touched. Nor is
            // anything but a regular file standing where the shard was (`leftInPlace`).
            if let file = try? workspace.cacheFile(shard.file), Self.fileFacts(file)?.isRegular == true { unlink(file) }
        }
        for file in plan.leftoverFiles { unlink(workspace.path(file.path)) }
        for folder in plan.supersededFolders {
            do { try FileManager.default.removeItem(atPath: workspace.path(folder.path)) } catch {
                throw CacheError.io(path: workspace.path(folder.path), reason: "cannot remove the set-aside checkpoints: \(error.localizedDescription)")
            }
        }
        return plan
    }

    /// Plans and collects in one step (see `planGarbage`).
    @discardableResult
    public func collectGarbage(keep: [String: Set<String>], liveKeys: Set<String>? = nil) throws -> GarbagePlan {
        try collectGarbage(try planGarbage(keep: keep, liveKeys: liveKeys))
    }
}

/// What a cache collection removes, grouped by stage, fingerprint and why.
public struct GarbagePlan: Sendable {
    public enum Reason: String, Codable, Sendable, CaseIterable {
        /// The stage's parameters fingerprint is not among those kept.
        case fingerprintNotKept = "cache key not kept"
        /// The record's source is removed from the data root, or its content changed.
        case sourceGone = "source gone"
        /// A shard none of whose records is indexed any more (replaced by a recomputation, or
        /// dropped by `cache verify`).
        case noRecordInUse = "no record in use"
        /// A shard rewritten with its live records: the bytes of the others come back.
        case compacted
    }

    /// One line of the listing: records, shards and bytes that go for one stage, fingerprint and reason.
    public struct Group: Equatable, Sendable {
        public var stage: String
        public var fingerprint: String
        public var reason: Reason
        public var records = 0
        public var shards = 0
        public var bytes = 0
    }

    public struct File: Equatable, Sendable {
        public var path: String
        public var bytes: Int
    }

    public struct Compaction: Sendable {
        public var shard: CacheShardRow
        public var live: [CacheRecordRow]

        /// What rewriting the shard with its live records gives back: its size less the rewritten file's.
        var freedBytes: Int {
            max(0, shard.bytes.clampedSubtracting(ShardFormat.fileSize(records: live.map { ($0.metaLength, $0.dataLength) })))
        }
    }

    /// Index rows to delete (their shard stays only when compacted).
    public private(set) var records: [CacheRecordRow] = []
    /// Shards removed whole.
    public private(set) var shards: [CacheShardRow] = []
    public private(set) var compactions: [Compaction] = []
    /// Files no index row names: shard files a crash left, and temporaries of writes a kill cut short
    /// (in cache/, runs/ and the work directory itself). Counted with the shards in the totals.
    public var leftoverFiles: [File] = []
    /// Paths of shards removed whole where something other than a regular file stands (a folder, a
    /// link): their index rows go, the things themselves are left alone and named.
    public var leftInPlace: [File] = []
    /// Checkpoint folders `--force` set aside (`<folder>.superseded-<run id>`).
    public var supersededFolders: [File] = []
    /// What marks a folder of checkpoints set aside (by `--force`, or for weights deleted or edited since; see `TrainStage.setAside`).
    public static let supersededMarker = ".superseded-"
    private var groupsByKey: [String: Group] = [:]

    public init() {}

    /// The listing, by stage, fingerprint and reason.
    public var groups: [Group] {
        groupsByKey.values.sorted { ($0.stage, $0.fingerprint, $0.reason.rawValue) < ($1.stage, $1.fingerprint, $1.reason.rawValue) }
    }

    public var totalRecords: Int { groupsByKey.values.map(\.records).clampedSum() }
    public var totalShards: Int { groupsByKey.values.map(\.shards).clampedSum().clampedAdding(leftoverFiles.count) }
    public var totalBytes: Int {
        groupsByKey.values.map(\.bytes).clampedSum().clampedAdding((leftoverFiles + supersededFolders).map(\.bytes).clampedSum())
    }

    private mutating func update(_ stage: String, _ fingerprint: String, _ reason: Reason, _ change: (inout Group) -> Void) {
        let key = "\(stage)\t\(fingerprint)\t\(reason.rawValue)"
        var group = groupsByKey[key] ?? Group(stage: stage, fingerprint: fingerprint, reason: reason)
        change(&group)
        groupsByKey[key] = group
    }

    mutating func add(_ row: CacheRecordRow, reason: Reason) {
        records.append(row)
        update(row.stage, row.fingerprint, reason) { $0.records += 1 }
    }

    /// A whole shard goes: the `bytes` its file holds on disk count under the reason its records go for.
    mutating func removeShard(_ shard: CacheShardRow, reason: Reason, bytes: Int) {
        shards.append(shard)
        update(shard.stage, shard.fingerprint, reason) { $0.shards += 1; $0.bytes = $0.bytes.clampedAdding(bytes) }
    }

    /// A shard a compaction left as it was (a live record in it is damaged), and why.
    public struct NotCompacted: Equatable, Sendable {
        public var path: String
        public var problem: String
    }
    public private(set) var notCompacted: [NotCompacted] = []

    /// A planned compaction that could not be done: its bytes do not come back.
    mutating func leaveUncompacted(_ shard: CacheShardRow, because problem: String) {
        guard let compaction = compactions.first(where: { $0.shard.id == shard.id }) else { return }
        update(shard.stage, shard.fingerprint, .compacted) { $0.shards -= 1; $0.bytes = $0.bytes.clampedSubtracting(compaction.freedBytes) }
        notCompacted.append(NotCompacted(path: shard.file, problem: problem))
    }

    /// A shard is rewritten with `live`: what comes back is its size less the live records' bytes.
    mutating func compactShard(_ shard: CacheShardRow, keeping live: [CacheRecordRow]) {
        let compaction = Compaction(shard: shard, live: live.sorted { $0.dataOffset < $1.dataOffset })
        compactions.append(compaction)
        update(shard.stage, shard.fingerprint, .compacted) { $0.shards += 1; $0.bytes = $0.bytes.clampedAdding(compaction.freedBytes) }
    }
}
