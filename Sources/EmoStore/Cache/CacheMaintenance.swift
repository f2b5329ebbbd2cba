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

public struct CollectReport: Equatable, Sendable {
    public var removedShards = 0
    public var removedBytes = 0
    public var removedRecords = 0
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

    private func verify(stage: String?, runId: String, newRun: RunRecord?, progress: ((Int, Int) -> Void)?) throws -> VerifyReport {
        let rows = try store.read { db -> [CacheRecordRow] in
            var request = CacheRecordRow.order(Column("shardId"), Column("dataOffset"))
            if let stage { request = request.filter(Column("stage") == stage) }
            return try request.fetchAll(db)
        }
        var report = VerifyReport()
        for (i, row) in rows.enumerated() {
            var problem: String?
            do {
                let tensor = try self.tensor(row)
                report.checkedBytes += tensor.entry.dataLength + tensor.entry.metaLength
                if !tensor.shard.verify(tensor.entry) || Int64(tensor.entry.crc32c) != row.crc32c {
                    problem = "cached record fails its CRC-32C check"
                }
            } catch {
                problem = "cached record unreadable: \(error)"
            }
            report.checkedRecords += 1
            progress?(i + 1, rows.count)
            guard let problem else { continue }
            let shard = try shardFile(row.shardId) ?? "?"
            let sources = try store.sources(sha256: row.key).map(\.path)
            report.damaged.append(DamagedRecord(stage: row.stage, fingerprint: row.fingerprint, key: row.key,
                                                shard: shard, sources: sources, reason: problem))
            let recordRun = newRun != nil && report.damaged.count == 1
            try store.write { db in
                if recordRun, let newRun { try newRun.insert(db) }
                try row.delete(db)
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

    public func stats() throws -> [CacheStats] {
        try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.stage, s.fingerprint, COUNT(*) AS shards, SUM(s.bytes) AS bytes,
                       (SELECT COUNT(*) FROM cacheRecord r WHERE r.stage = s.stage AND r.fingerprint = s.fingerprint) AS records
                FROM cacheShard s GROUP BY s.stage, s.fingerprint ORDER BY s.stage, s.fingerprint
                """).map { row in
                CacheStats(stage: row["stage"], fingerprint: row["fingerprint"], shards: row["shards"],
                           records: row["records"], bytes: row["bytes"])
            }
        }
    }

    /// Removes shards no fingerprint in `keep` (stage → parameters fingerprint) refers to, shards
    /// none of whose records is indexed any more, and files no index row names (left by a crash).
    /// With `liveKeys` (the content hashes of the sources still on disk), records of other keys —
    /// sources removed or changed since — are dropped too, and shards left part-used are rewritten
    /// with only their live records (bytes unchanged), so their space comes back.
    public func collectGarbage(keep: [String: String], liveKeys: Set<String>? = nil) throws -> CollectReport {
        var report = CollectReport()
        if let liveKeys {
            let rows = try store.read { try CacheRecordRow.fetchAll($0) }
            let gone = rows.filter { !liveKeys.contains($0.key) }
            try store.write { db in for row in gone { try row.delete(db) } }
            report.removedRecords += gone.count
        }
        try compactPartlyUsedShards(keep: keep)
        let shards = try store.read { try CacheShardRow.fetchAll($0) }
        let referenced = try store.read { db in
            Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT shardId FROM cacheRecord"))
        }
        for shard in shards where keep[shard.stage] != shard.fingerprint || !referenced.contains(shard.id!) {
            let records = try store.write { db -> Int in
                let count = try CacheRecordRow.filter(Column("shardId") == shard.id!).fetchCount(db)
                _ = try CacheShardRow.deleteOne(db, key: shard.id!)
                return count
            }
            unlink(workspace.path(shard.file))
            report.removedShards += 1
            report.removedBytes += shard.bytes
            report.removedRecords += records
        }
        let known = Set(try store.read { try String.fetchAll($0, sql: "SELECT file FROM cacheShard") })
        let cacheRoot = workspace.cacheRoot
        if let walker = FileManager.default.enumerator(atPath: cacheRoot) {
            for case let relative as String in walker where relative.hasSuffix(".shard") || relative.contains(".shard.part-") {
                guard !known.contains(workspace.relativeCachePath(relative)) else { continue }
                let path = cacheRoot + "/" + relative
                report.removedBytes += (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                unlink(path)
                report.removedShards += 1
            }
        }
        return report
    }

    /// Rewrites each kept shard that some of its records left as a new shard holding only the
    /// records still indexed; the old shard, then unreferenced, is removed by the caller's sweep.
    /// A crash in between leaves either the old or the new shard referenced, never neither.
    private func compactPartlyUsedShards(keep: [String: String]) throws {
        let counts = try store.read { db in
            try Row.fetchAll(db, sql: "SELECT shardId, COUNT(*) AS n FROM cacheRecord GROUP BY shardId")
                .reduce(into: [Int64: Int]()) { $0[$1["shardId"]] = $1["n"] }
        }
        let runId = "gc-" + String(Int(Date().timeIntervalSince1970))
        for shard in try store.read({ try CacheShardRow.fetchAll($0) }) where keep[shard.stage] == shard.fingerprint {
            guard let live = counts[shard.id!], live > 0, live < shard.records else { continue }
            let rows = try store.read { try CacheRecordRow.filter(Column("shardId") == shard.id!).order(Column("dataOffset")).fetchAll($0) }
            let records = try rows.map { row -> TensorRecord in
                let tensor = try self.tensor(row, verify: true)
                return TensorRecord(key: row.key, dtype: tensor.dtype, shape: tensor.shape, data: Data(tensor.bytes),
                                    metadata: tensor.metadata)
            }
            try publish(stage: shard.stage, fingerprint: shard.fingerprint, runId: runId, records: records, failures: [])
        }
    }
}
