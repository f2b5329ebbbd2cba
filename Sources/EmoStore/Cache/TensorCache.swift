import EmoCore
import Foundation
import GRDB

/// One cached record as the SQLite index knows it.
public struct CacheRecordRow: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "cacheRecord"
    public var stage: String
    public var fingerprint: String
    public var key: String
    public var shardId: Int64
    public var dtype: Int
    public var shapeJSON: String
    public var crc32c: Int64
    public var metaOffset: Int
    public var metaLength: Int
    public var dataOffset: Int
    public var dataLength: Int
    public var metadata: String
    public var runId: String

    public var shape: [Int] { (try? JSONDecoder().decode([Int].self, from: Data(shapeJSON.utf8))) ?? [] }
    /// The element type's name, or the number an edited row holds when it names none.
    public var dtypeName: String { UInt8(exactly: dtype).flatMap(DType.init(rawValue:))?.name ?? "type \(dtype)" }
}

public struct CacheShardRow: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "cacheShard"
    public var id: Int64?
    public var stage: String
    public var fingerprint: String
    public var file: String
    public var records: Int
    public var bytes: Int
    public var runId: String
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A cached record in its memory-mapped shard; its bytes are copied out when asked for.
public struct CachedTensor: @unchecked Sendable {
    public let shard: ShardFile
    public let entry: ShardEntry
    public var dtype: DType { entry.dtype }
    public var shape: [Int] { entry.shape }
    public var bytes: Data { get throws { try shard.data(entry) } }
    public var metadata: String { get throws { try shard.metadata(entry) } }

    /// The elements as Float (copies); only for float32 records.
    public func floats() throws -> [Float] {
        guard dtype == .float32 else {
            throw CacheError.badShard(path: shard.path, reason: "record for source \(entry.key.escaped) is \(dtype.name), not float32")
        }
        return try shard.floats(entry)
    }
}

/// The sharded tensor cache of a work directory: immutable shards under
/// `cache/<stage>/<fingerprint>/`, indexed in SQLite by (stage, parameters fingerprint, source SHA-256).
///
///     let cache = TensorCache(workspace: Workspace(root: "work"), store: store)
///     try cache.publish(stage: "audio", fingerprint: fp, runId: run, records: batch, failures: [])
///     let tensor = try cache.tensor(stage: "audio", fingerprint: fp, key: sha)
public final class TensorCache: @unchecked Sendable {
    public let workspace: Workspace
    public let store: ProvenanceStore
    private let lock = NSLock()
    private var shardSequence = 0
    private var openShards: [Int64: ShardFile] = [:]

    public init(workspace: Workspace, store: ProvenanceStore) {
        self.workspace = workspace
        self.store = store
    }

    /// The shard folder of a stage and fingerprint, relative to the work directory.
    public func folder(stage: String, fingerprint: String) -> String {
        workspace.relativeCacheFolder(stage: stage, fingerprint: fingerprint)
    }

    // MARK: Writing

    /// Writes `records` as one shard, durably, then commits its index rows and the batch's failure
    /// rows in one transaction: the batch becomes visible all at once or not at all.
    public func publish(stage: String, fingerprint: String, runId: String, records: [TensorRecord],
                        failures: [FailureRecord]) throws {
        var shardRow: CacheShardRow?
        var entries: [ShardEntry] = []
        if !records.isEmpty {
            let relativeFolder = folder(stage: stage, fingerprint: fingerprint)
            try Folder.create(workspace.path(relativeFolder))
            let relative = try unusedShardName(in: relativeFolder, runId: runId)
            entries = try ShardWriter.write(records, to: workspace.path(relative))
            let size = (try? FileManager.default.attributesOfItem(atPath: workspace.path(relative))[.size] as? Int) ?? 0
            shardRow = CacheShardRow(stage: stage, fingerprint: fingerprint, file: relative, records: records.count,
                                     bytes: size, runId: runId, createdAt: Date())
        }
        do { try commitIndex(shardRow, entries: entries, records: records, failures: failures, stage: stage, fingerprint: fingerprint, runId: runId) } catch {
            // The index rows were rolled back (a full disk fails SQLite too): the shard is no one's, so it goes.
            if let shardRow, let path = try? workspace.cacheFile(shardRow.file) { unlink(path) }
            throw error
        }
    }

    private func commitIndex(_ shardRow: CacheShardRow?, entries: [ShardEntry], records: [TensorRecord], failures: [FailureRecord],
                             stage: String, fingerprint: String, runId: String) throws {
        try store.write { db in
            if var shard = shardRow {
                try shard.insert(db)
                for (record, entry) in zip(records, entries) {
                    try CacheRecordRow(
                        stage: stage, fingerprint: fingerprint, key: entry.key, shardId: shard.id!,
                        dtype: Int(entry.dtype.rawValue), shapeJSON: entry.shapeJSON,
                        crc32c: Int64(entry.crc32c), metaOffset: entry.metaOffset, metaLength: entry.metaLength,
                        dataOffset: entry.dataOffset, dataLength: entry.dataLength, metadata: record.metadata, runId: runId
                    ).save(db)
                }
                // A unit computed now under the parameters it once failed under (read again by --force, after
                // a passing fault) is no longer failed: its old failure rows would count it so for ever.
                try FailureRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint
                                         && records.map(\.key).contains(Column("sha256"))).deleteAll(db)
            }
            for var failure in failures { try failure.insert(db) }
        }
    }

    /// The next shard name of this run that neither the index nor the disk holds. A run id can come
    /// back (a `cache gc` killed and run again within the same second): a shard is never written over.
    private func unusedShardName(in relativeFolder: String, runId: String) throws -> String {
        for _ in 0..<Self.shardNameAttempts {
            let sequence: Int = { lock.lock(); defer { lock.unlock() }; shardSequence += 1; return shardSequence }()
            let relative = "\(relativeFolder)/\(runId)-\(String(format: "%05d", sequence)).shard"
            var facts = stat()
            if lstat(workspace.path(relative), &facts) == 0 { continue }
            guard errno == ENOENT else {
                throw CacheError.io(path: workspace.path(relative), reason: "cannot tell whether a shard is there: \(String(cString: strerror(errno)))")
            }
            let indexed = try store.read { db in try CacheShardRow.filter(Column("file") == relative).fetchCount(db) }
            if indexed == 0 { return relative }
        }
        throw CacheError.io(path: workspace.path(relativeFolder),
                            reason: "holds \(Self.shardNameAttempts) shards of run \(runId) already: no free shard name")
    }

    private static let shardNameAttempts = 100_000

    // MARK: Reading

    public func keys(stage: String, fingerprint: String) throws -> Set<String> {
        try store.read { db in
            Set(try String.fetchAll(db, sql: "SELECT key FROM cacheRecord WHERE stage = ? AND fingerprint = ?",
                                    arguments: [stage, fingerprint]))
        }
    }

    /// Each record's tensor size in bytes, by key, as the index says: what reading them would hold.
    public func recordBytes(stage: String, fingerprint: String) throws -> [String: Int] {
        try store.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT key, dataLength FROM cacheRecord WHERE stage = ? AND fingerprint = ?",
                                        arguments: [stage, fingerprint])
            return Dictionary(try rows.map { (try $0.decode(String.self, forColumn: "key"), try $0.decode(Int.self, forColumn: "dataLength")) }, uniquingKeysWith: max)
        }
    }

    /// The bytes of the shards that hold any of `keys`' records, as the index says: a shard is mapped whole while
    /// any of its records is read, whatever else it holds, so this is what reading those records maps.
    public func shardBytes(stage: String, fingerprint: String, holding keys: Set<String>) throws -> Int {
        try store.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT r.key AS key, s.id AS shard, CASE WHEN typeof(s.bytes) = 'integer' THEN s.bytes ELSE 0 END AS bytes
                FROM cacheRecord r JOIN cacheShard s ON r.shardId = s.id
                WHERE r.stage = ? AND r.fingerprint = ? AND typeof(r.key) = 'text'
                """, arguments: [stage, fingerprint])
            var sizes: [Int64: Int] = [:]
            for row in rows where keys.contains(try row.decode(String.self, forColumn: "key")) {
                sizes[try row.decode(Int64.self, forColumn: "shard")] = max(0, try row.decode(Int.self, forColumn: "bytes"))
            }
            return Array(sizes.values).clampedSum()
        }
    }

    /// How an indexed shard's file differs from the one written.
    public enum ShardFileProblem: Equatable, Sendable {
        /// Gone, or something else (a folder, a FIFO, a dangling link) in its place.
        case missing
        /// A regular file of another size than written (appended to, replaced).
        case resized(bytes: Int)
    }

    /// What is wrong with the file of an indexed shard, or nil when it is there at its written size. One `stat`:
    /// a link to the shard (moved to another disk) is followed, as every reader of the shard follows it.
    public func fileProblem(_ shard: CacheShardRow) -> ShardFileProblem? {
        var facts = stat()
        guard let path = try? workspace.cacheFile(shard.file), stat(path, &facts) == 0,
              facts.st_mode & S_IFMT == S_IFREG else { return .missing }
        return Int(facts.st_size) == shard.bytes ? nil : .resized(bytes: Int(facts.st_size))
    }

    /// The records indexed in shards that are no longer files on disk (deleted, or something else put in
    /// their place) or not of their written size (cut short, appended to), by shard file: indexed, but
    /// not there to read or not to be trusted, so a run computes them again. One `stat` per shard.
    public func recordsInUnsoundShards(stage: String, fingerprint: String) throws -> [String: Set<String>] {
        let shards = try store.read { db in
            try CacheShardRow.filter(sql: "stage = ? AND fingerprint = ?", arguments: [stage, fingerprint]).fetchAll(db)
        }
        let unsound = Dictionary(shards.filter { fileProblem($0) != nil }.compactMap { shard in shard.id.map { ($0, shard.file) } },
                                 uniquingKeysWith: { a, _ in a })
        guard !unsound.isEmpty else { return [:] }
        let rows = try store.read { db in
            try Row.fetchAll(db, sql: "SELECT key, shardId FROM cacheRecord WHERE stage = ? AND fingerprint = ? AND shardId IN (\(unsound.keys.map(String.init).joined(separator: ",")))",
                             arguments: [stage, fingerprint])
        }
        var found: [String: Set<String>] = [:]
        for row in rows {
            let shardId: Int64 = try row.decode(forColumn: "shardId")
            if let file = unsound[shardId] { found[file, default: []].insert(try row.decode(forColumn: "key")) }
        }
        return found
    }

    public func row(stage: String, fingerprint: String, key: String) throws -> CacheRecordRow? {
        try store.read { try CacheRecordRow.fetchOne($0, key: ["stage": stage, "fingerprint": fingerprint, "key": key]) }
    }

    public func rows(stage: String, fingerprint: String) throws -> [CacheRecordRow] {
        try store.read { db in
            try CacheRecordRow.filter(Column("stage") == stage && Column("fingerprint") == fingerprint)
                .order(Column("key")).fetchAll(db)
        }
    }

    /// Every record of a stage (all fingerprints), in shard order: the order a sequential reader
    /// touches the disk in.
    public func rowsInShardOrder(stage: String) throws -> [CacheRecordRow] {
        try store.read { try CacheRecordRow.filter(Column("stage") == stage).order(Column("shardId"), Column("dataOffset")).fetchAll($0) }
    }

    public func rows(key: String) throws -> [CacheRecordRow] {
        try store.read { try CacheRecordRow.filter(Column("key") == key).order(Column("stage")).fetchAll($0) }
    }

    /// The record in its mapped shard; its CRC is checked when `verify` is set.
    public func tensor(_ row: CacheRecordRow, verify: Bool = false) throws -> CachedTensor {
        let shard: ShardFile
        do { shard = try openShard(row.shardId) } catch CacheError.missing(let said) {
            // Still listed so, after the shard's row is found gone: no gc or run rewrote it meanwhile, the index is damaged.
            let now = try store.read { try CacheRecordRow.fetchOne($0, key: ["stage": row.stage, "fingerprint": row.fingerprint, "key": row.key]) }
            if now?.shardId == row.shardId { throw CacheError.danglingRecord(key: row.key, shardId: row.shardId) }
            throw CacheError.missing(said)
        }
        guard let entry = shard.entries.first(where: { $0.key == row.key && $0.dataOffset == row.dataOffset }) else {
            // The index and the shard disagree: damage that `cache verify` repairs, as it does a bad CRC.
            throw CacheError.badShard(path: shard.path, reason: "holds no record for source \(row.key.escaped) at offset \(row.dataOffset), "
                                      + "where the provenance database's index says it is")
        }
        // The record's CRC covers its bytes only: a type or shape edited in the shard's index (its own CRC
        // fixed up) would read the same bytes as other values. The database's row is the reference.
        guard entry.dtype.rawValue == row.dtype, entry.shape == row.shape, Int64(entry.crc32c) == row.crc32c else {
            let indexed = row.dtypeName
            throw CacheError.badShard(path: shard.path, reason: "its record for source \(row.key.escaped) is \(entry.dtype.name) \(entry.shape) "
                                      + "with CRC-32C \(entry.crc32c), where the provenance database's index says \(indexed) \(row.shape) with \(row.crc32c)")
        }
        // The index's length is what memory checks add up before anything is read (an edited one refused features as terabytes).
        guard entry.dataLength == row.dataLength else {
            throw CacheError.badShard(path: shard.path, reason: "its record for source \(row.key.escaped) holds \(entry.dataLength) bytes, "
                                      + "where the provenance database's index says \(row.dataLength)")
        }
        // Every place the row gives is the shard's (merge compares them all): one edited is damage too, said by verify.
        guard entry.metaOffset == row.metaOffset, entry.metaLength == row.metaLength else {
            throw CacheError.badShard(path: shard.path, reason: "its record for source \(row.key.escaped) keeps its metadata at \(entry.metaOffset) "
                                      + "(\(entry.metaLength) bytes), where the provenance database's index says \(row.metaOffset) (\(row.metaLength) bytes)")
        }
        if try verify && !shard.verify(entry) { throw CacheError.damagedRecord(path: shard.path, key: row.key) }
        return CachedTensor(shard: shard, entry: entry)
    }

    public func tensor(stage: StageName, fingerprint: String, key: String, verify: Bool = false) throws -> CachedTensor? {
        try tensor(stage: stage.rawValue, fingerprint: fingerprint, key: key, verify: verify)
    }

    public func tensor(stage: String, fingerprint: String, key: String, verify: Bool = false) throws -> CachedTensor? {
        guard let row = try row(stage: stage, fingerprint: fingerprint, key: key) else { return nil }
        return try tensor(row, verify: verify)
    }

    /// The shard file a record lives in, relative to the work directory.
    public func shardFile(_ id: Int64) throws -> String? {
        try store.read { try CacheShardRow.fetchOne($0, key: id)?.file }
    }

    /// Lets go of the shards opened so far: each is unmapped once no tensor read from it is held either
    /// (a mapped shard's pages count in resident memory). Later reads open them again.
    public func closeShards() {
        lock.lock(); defer { lock.unlock() }
        openShards.removeAll()
    }

    private func openShard(_ id: Int64) throws -> ShardFile {
        lock.lock(); defer { lock.unlock() }
        if let shard = openShards[id] { return shard }
        guard let row = try store.read({ try CacheShardRow.fetchOne($0, key: id) }) else {
            // Read commands take no lock: a gc or run that rewrote the cache since this one listed it.
            throw CacheError.missing("shard \(id) of a record read a moment ago is no longer in the cache index: the cache changed "
                                     + "meanwhile (a `cache gc` or a run in this work directory); try again once it has finished")
        }
        let shard = try ShardFile(path: try workspace.cacheFile(row.file))
        openShards[id] = shard
        return shard
    }
}
