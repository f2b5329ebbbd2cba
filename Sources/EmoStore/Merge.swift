import EmoCore
import Foundation
import GRDB

/// What folding one worker's work directory into the main one added.
public struct MergeReport: Equatable, Sendable {
    public var runs = 0
    public var sources = 0
    public var failures = 0
    public var artifacts = 0
    public var shards = 0
    public var records = 0
    public var recordsAlreadyPresent = 0
    /// Records not in the main index whose shard's file name the main cache already uses (a shard merged
    /// before, from which the main `cache verify` dropped a damaged record): not merged; the next run computes them.
    public var recordsInShardsAlreadyPresent = 0
}

extension ProvenanceStore {
    /// Folds another work directory's provenance and cache (a scale-out worker's) into this one.
    ///
    /// Shard files are copied first, each durably (`copyShards` gets the rows of the shards to copy: a row's `file` is
    /// the path relative to both work directories, its `bytes` the size it must have), then every row goes in one transaction: a merge killed midway leaves
    /// at most unindexed shard files, which `cache gc` removes and a second merge re-copies.
    /// Merging the same worker twice adds nothing the second time.
    /// `copyShards` gets each shard to copy with the keys of the records merged from it (only those are
    /// read: a record the worker's `cache verify` dropped may stay damaged in a shard its index no longer uses).
    /// `includingCache: false` leaves the worker's cache rows out (a sweep worker's are its snapshot of
    /// the main directory's, some of which `cache gc` may have removed there since).
    public func absorb(_ worker: ProvenanceStore, into main: Workspace, includingCache: Bool = true,
                       copyShards: ([(shard: CacheShardRow, keys: Set<String>)]) throws -> Void) throws -> MergeReport {
        let runs = try worker.read { try RunRecord.fetchAll($0) }
        let stageRuns = try worker.read { try StageRunRecord.fetchAll($0) }
        let sources = try worker.read { try SourceRecord.fetchAll($0) }
        let failures = try worker.read { try FailureRecord.fetchAll($0) }
        let artifacts = try worker.read { try ArtifactRecord.fetchAll($0) }
        let shards = includingCache ? try worker.read { try CacheShardRow.fetchAll($0) } : []
        let records = includingCache ? try worker.read { try CacheRecordRow.order(Column("shardId"), Column("dataOffset")).fetchAll($0) } : []

        let present = try read { db in
            Set(try Row.fetchAll(db, sql: "SELECT stage, fingerprint, key FROM cacheRecord").map { row in
                try ["stage", "fingerprint", "key"].map { column in try row.decode(String.self, forColumn: column) }.joined(separator: "\t")
            })
        }
        func id(_ r: CacheRecordRow) -> String { "\(r.stage)\t\(r.fingerprint)\t\(r.key)" }
        let newRecords = records.filter { !present.contains(id($0)) }
        let shardsNeeded = Set(newRecords.map(\.shardId))
        let knownFiles = try read { Set(try String.fetchAll($0, sql: "SELECT file FROM cacheShard")) }
        let shardsToCopy = shards.filter { shardsNeeded.contains($0.id!) && !knownFiles.contains($0.file) }
        if let stray = shardsToCopy.first(where: { !main.isShardPath($0.file, stage: $0.stage, fingerprint: $0.fingerprint) }) {
            throw CacheError.io(path: worker.path, reason: "its cacheShard row \(stray.id ?? 0) names \(stray.file.echoed), which is not "
                                + "where the cache keeps a shard of \(stray.stage.echoed) (cache/<audio|faces>/<fingerprint>/<name>.shard)")
        }
        if let stray = runs.first(where: { !Workspace.isRunFolderName($0.id) }) {
            throw CacheError.io(path: worker.path, reason: "its run id \(stray.id.echoed) is not a plain name (letters, digits, . _ -)")
        }
        if let orphan = newRecords.first(where: { record in !shards.contains { $0.id == record.shardId } }) {
            throw CacheError.io(path: worker.path, reason: "its cacheRecord row for \(orphan.stage) record \(orphan.key.echoed) names shard "
                                + "\(orphan.shardId), which it does not index; " + Self.editedWorkerAdvice)
        }
        var keysByShard: [Int64: Set<String>] = [:]
        for record in newRecords { keysByShard[record.shardId, default: []].insert(record.key) }
        try copyShards(shardsToCopy.map { ($0, keysByShard[$0.id ?? -1] ?? []) })
        do { try checkRows(newRecords, against: shardsToCopy, in: main, worker: worker) } catch {
            // The copies belong to no index row: gone with the refusal, not left for `cache gc`.
            for shard in shardsToCopy { if let file = try? main.cacheFile(shard.file) { unlink(file) } }
            throw error
        }

        var report = MergeReport()
        report.recordsAlreadyPresent = records.count - newRecords.count
        try write { db in
            for run in runs where try RunRecord.fetchOne(db, key: run.id) == nil {
                try run.insert(db); report.runs += 1
            }
            for var stageRun in stageRuns where try StageRunRecord
                .filter(Column("runId") == stageRun.runId && Column("stage") == stageRun.stage).fetchCount(db) == 0 {
                stageRun.id = nil
                try stageRun.insert(db)
            }
            for source in sources {
                // The newer sighting wins (run ids sort by time); equal rows change nothing. A row of the same
                // sighting is the snapshot's copy of ours: ours may have gained since what does not move
                // lastChangedRun (an inode state filled in, a mark to read the file again), so it stays.
                if let mine = try SourceRecord.fetchOne(db, key: source.path),
                   mine == source || mine.lastChangedRun >= source.lastChangedRun { continue }
                try source.save(db); report.sources += 1
            }
            for var failure in failures {
                failure.id = nil
                try failure.insert(db)          // the unique key ignores a failure already recorded
                if db.changesCount > 0 { report.failures += 1 }
            }
            for var artifact in artifacts where try ArtifactRecord.filter(
                Column("stage") == artifact.stage && Column("fingerprint") == artifact.fingerprint
                    && Column("path") == artifact.path && Column("sourceSHA256") == artifact.sourceSHA256
                    && Column("kind") == artifact.kind).fetchCount(db) == 0 {
                artifact.id = nil
                try artifact.insert(db); report.artifacts += 1
            }
            var shardIds: [Int64: Int64] = [:]
            for shard in shardsToCopy {
                var copy = shard
                copy.id = nil
                try copy.insert(db)
                shardIds[shard.id!] = copy.id!
                report.shards += 1
            }
            for record in newRecords {
                guard let shardId = shardIds[record.shardId] else { report.recordsInShardsAlreadyPresent += 1; continue }
                var copy = record
                copy.shardId = shardId
                try copy.insert(db)
                report.records += 1
            }
        }
        return report
    }

    /// The cache shards these runs wrote.
    public func shards(writtenBy runIds: Set<String>) throws -> [CacheShardRow] {
        try read { try CacheShardRow.fetchAll($0) }.filter { runIds.contains($0.runId) }
    }

    /// What a worker whose database disagrees with its own shards needs: its rows cannot be trusted to redo.
    static let editedWorkerAdvice = "its database was edited or damaged: remove that worker's folder and run the worker again"

    /// Every index row of a copied shard must say what the shard's own (CRC-checked) index says: an
    /// edited or damaged worker database would otherwise be trusted by every reader of the main one.
    private func checkRows(_ records: [CacheRecordRow], against shards: [CacheShardRow], in main: Workspace,
                           worker: ProvenanceStore) throws {
        for shard in shards {
            let path = try main.cacheFile(shard.file)
            let file = try ShardFile(path: path)
            guard file.entries.count == shard.records else {
                throw CacheError.io(path: worker.path, reason: "its cacheShard row for \(shard.file) says \(shard.records) records, the shard "
                                    + "holds \(file.entries.count); " + Self.editedWorkerAdvice)
            }
            let entries = Dictionary(file.entries.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
            for record in records where record.shardId == shard.id {
                let entry = entries[record.key]
                let mismatch: String? = if record.stage != shard.stage || record.fingerprint != shard.fingerprint {
                    "is of \(record.stage) \(record.fingerprint.echoed), its shard of \(shard.stage) \(shard.fingerprint.echoed)"
                } else if let entry {
                    Self.mismatch(record, entry, metadata: try file.metadata(entry))
                } else {
                    "names a record its shard does not hold"
                }
                if let mismatch {
                    throw CacheError.io(path: worker.path, reason: "its cacheRecord row for \(record.stage) record \(record.key.echoed) \(mismatch) "
                                        + "(\(shard.file)); " + Self.editedWorkerAdvice)
                }
            }
        }
    }

    /// Which field of an index row differs from the shard's entry, or nil.
    static func mismatch(_ row: CacheRecordRow, _ entry: ShardEntry, metadata: String) -> String? {
        let fields: [(String, String, String)] = [
            ("dtype", "\(row.dtype)", "\(entry.dtype.rawValue)"), ("shape", row.shapeJSON, entry.shapeJSON),
            ("crc32c", "\(row.crc32c)", "\(entry.crc32c)"), ("data offset", "\(row.dataOffset)", "\(entry.dataOffset)"),
            ("data length", "\(row.dataLength)", "\(entry.dataLength)"), ("metadata offset", "\(row.metaOffset)", "\(entry.metaOffset)"),
            ("metadata length", "\(row.metaLength)", "\(entry.metaLength)"), ("metadata", row.metadata, metadata),
        ]
        return fields.first { $0.1 != $0.2 }.map { "says \($0.0) \($0.1.echoed), its shard \($0.2.echoed)" }
    }
}
