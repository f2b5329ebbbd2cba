import EmoCore
import Foundation
import GRDB

/// The provenance database of a work directory (`emopipe.sqlite`, WAL mode): runs, sources,
/// stage executions, failures and artifacts.
///
///     let store = try ProvenanceStore(path: "work/emopipe.sqlite")
///     let failed = try store.sources(status: .failed)
public final class ProvenanceStore: @unchecked Sendable {
    public let path: String
    let pool: DatabasePool

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // Durable commits: a published batch must survive a power cut, not only a crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            try Schema.migrator.migrate(pool)
        } catch {
            throw EmoError.io(path: path, reason: "cannot open the provenance database: \(error)")
        }
    }

    /// The SQLite library version GRDB runs on.
    public static var sqliteVersion: String {
        (try? DatabaseQueue().read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }) ?? "unknown"
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    /// One transaction. When the file system refuses the write (disk full, file-size limit, I/O
    /// error), the error names the database file: SQLite's own message does not say which file.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(body)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR {
            throw EmoError.io(path: path, reason: "cannot write: \(error.message ?? "\(error.resultCode)") "
                              + "(SQLite error \(error.extendedResultCode.rawValue)); the transaction was rolled back")
        }
    }

    // MARK: Runs

    public func insert(_ run: RunRecord) throws { try write { try run.insert($0) } }

    public func finishRun(id: String, status: String, exitCode: Int, at date: Date = Date()) throws {
        try write { db in
            try db.execute(sql: "UPDATE run SET status = ?, exitCode = ?, finishedAt = ? WHERE id = ?",
                           arguments: [status, exitCode, date, id])
        }
    }

    public func runs() throws -> [RunRecord] {
        try pool.read { try RunRecord.order(Column("startedAt").desc).fetchAll($0) }
    }

    /// Runs left `running` by a process that died: marked interrupted so history stays honest.
    public func markInterruptedRuns() throws {
        try write { db in
            try db.execute(sql: "UPDATE run SET status = 'interrupted' WHERE status = 'running'")
            try db.execute(sql: "UPDATE stageRun SET state = 'interrupted' WHERE state = 'running'")
        }
    }

    // MARK: Sources

    public func allSources() throws -> [SourceRecord] {
        try pool.read { try SourceRecord.order(Column("path")).fetchAll($0) }
    }

    public func sources(status: SourceStatus? = nil, under root: String? = nil) throws -> [SourceRecord] {
        try pool.read { db in
            var request = SourceRecord.order(Column("path"))
            if let status { request = request.filter(Column("status") == status.rawValue) }
            if let root { request = request.filter(Column("path").like(Self.likePrefix(root), escape: "\\")) }
            return try request.fetchAll(db)
        }
    }

    public func source(path: String) throws -> SourceRecord? {
        try pool.read { try SourceRecord.fetchOne($0, key: path) }
    }

    public func sources(sha256: String) throws -> [SourceRecord] {
        try pool.read { try SourceRecord.filter(Column("sha256") == sha256).order(Column("path")).fetchAll($0) }
    }

    /// Groups of ok sources whose bytes are identical (RAVDESS has such pairs).
    public func duplicateContent() throws -> [[SourceRecord]] {
        let rows = try pool.read { db in
            try SourceRecord.fetchAll(db, sql: """
                SELECT * FROM source WHERE status = 'ok' AND sha256 IN
                  (SELECT sha256 FROM source WHERE status = 'ok' GROUP BY sha256 HAVING COUNT(*) > 1)
                ORDER BY sha256, path
                """)
        }
        return Dictionary(grouping: rows, by: { $0.sha256 ?? "" }).values
            .map { $0.sorted { $0.path < $1.path } }.sorted { $0[0].path < $1[0].path }
    }

    // MARK: Stages

    public func stageState(_ stage: String) throws -> StageStateRecord? {
        try pool.read { try StageStateRecord.fetchOne($0, key: stage) }
    }

    /// Stage → the parameters fingerprints some recorded run executed it with (or found it up to date with).
    public func parametersFingerprintsUsed() throws -> [String: Set<String>] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT DISTINCT stage, parametersFingerprint FROM stageRun
                WHERE parametersFingerprint IS NOT NULL AND runId IN (SELECT id FROM run)
                """).reduce(into: [String: Set<String>]()) { used, row in
                used[row["stage"] as String, default: []].insert(row["parametersFingerprint"] as String)
            }
        }
    }

    public func stageRuns(runId: String) throws -> [StageRunRecord] {
        try pool.read { try StageRunRecord.filter(Column("runId") == runId).order(Column("id")).fetchAll($0) }
    }

    public func failures(stage: String? = nil, subject: String? = nil) throws -> [FailureRecord] {
        try pool.read { db in
            var request = FailureRecord.order(Column("stage"), Column("subject"), Column("id"))
            if let stage { request = request.filter(Column("stage") == stage) }
            if let subject { request = request.filter(Column("subject") == subject) }
            return try request.fetchAll(db)
        }
    }

    /// The failures one run recorded.
    public func failures(runId: String) throws -> [FailureRecord] {
        try pool.read { try FailureRecord.filter(Column("runId") == runId).order(Column("stage"), Column("subject")).fetchAll($0) }
    }

    public func artifacts(sourceSHA256: String) throws -> [ArtifactRecord] {
        try pool.read { try ArtifactRecord.filter(Column("sourceSHA256") == sourceSHA256).order(Column("id")).fetchAll($0) }
    }

    /// Records the artifact rows of one file in one transaction, replacing the rows an earlier,
    /// interrupted execution of the same stage (same fingerprint) left for that file.
    public func replaceArtifacts(_ artifacts: [ArtifactRecord], stage: String, fingerprint: String, path: String) throws {
        try write { db in
            try ArtifactRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint
                                      && Column("path") == path).deleteAll(db)
            for var artifact in artifacts { try artifact.insert(db) }
        }
    }

    static func likePrefix(_ root: String) -> String {
        let escaped = root.replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return (escaped.hasSuffix("/") ? escaped : escaped + "/") + "%"
    }
}

extension ProvenanceStore {
    /// Records a finished stage execution and what it now stands for, in one transaction.
    public func recordStageCompletion(_ stageRun: StageRunRecord, state: StageStateRecord) throws {
        try write { db in
            var finished = stageRun
            try finished.save(db)
            try state.save(db)
        }
    }

    public func save(_ stageRun: inout StageRunRecord) throws {
        var copy = stageRun
        try write { db in try copy.save(db) }
        stageRun = copy
    }
}
