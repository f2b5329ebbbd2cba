import EmoCore
import Foundation
import GRDB

/// The provenance database of a work directory (`emopipe.sqlite`, WAL mode): runs, sources,
/// stage executions, failures and artifacts. `Workspace.openStore` opens it as a command needs.
///
///     let store = try ProvenanceStore(path: "work/emopipe.sqlite")
///     let failed = try store.sources(status: .failed)
public final class ProvenanceStore: @unchecked Sendable {
    /// How long a write waits for another process's write transaction (an sqlite3 shell, a backup
    /// tool; EmoPipe's own writers are kept apart by the work directory's lock) before it gives up.
    public struct LockPatience: Sendable {
        /// SQLite's own wait, per attempt.
        public var perAttempt: TimeInterval
        /// The whole wait of one write.
        public var total: TimeInterval
        public init(perAttempt: TimeInterval, total: TimeInterval) { self.perAttempt = perAttempt; self.total = total }
        /// Long enough for someone's open transaction to end, bounded so that a forgotten one does not hang a
        /// night's run; attempts of a second, so that a stop request (Ctrl-C) is heeded within one.
        public static let standard = LockPatience(perAttempt: 1, total: 300)
    }

    public let path: String
    let pool: any DatabaseWriter
    let patience: LockPatience

    /// Opens the database for writing: created with its schema when the file is missing, migrated
    /// when an older EmoPipe made it. A file that is there but not EmoPipe's is refused untouched.
    public init(path: String, patience: LockPatience = .standard) throws {
        self.path = path
        self.patience = patience
        var entry = stat()
        let making = lstat(path, &entry) != 0 && errno == ENOENT
        try DatabaseFile.checkPathLength(path, making: making)
        if making { try DatabaseFile.checkCompanions(path, making: true) }
        if !making && FileManager.default.fileExists(atPath: path) {
            try DatabaseFile.checkHeader(path)
            let reader = try DatabaseFile.openReadOnly(path)
            try DatabaseFile.checkIsEmoPipe(reader, path: path)
            try DatabaseFile.checkIntegrity(reader, path: path)
        }
        var config = Configuration()
        config.busyMode = .timeout(patience.perAttempt)
        do {
            if making { try Self.createWithSchema(path) }
            pool = try Self.waitingOutOtherWriters(path: path, patience: patience) {
                let pool = try DatabasePool(path: path, configuration: config)
                // Durable commits: a published batch must survive a power cut or a file system gone
                // read-only, not only a crash. Set here, not in prepareDatabase: the pool turns WAL on after
                // that hook and sets synchronous = NORMAL with it, which syncs the WAL only at checkpoints.
                try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
                DatabaseFile.opened.insert(path: path)
                try Schema.migrator.migrate(pool)
                return pool
            }
        } catch let error as DatabaseError {
            throw Self.openingError(error, path: path, making: making)
        } catch let error as EmoError {
            throw error
        } catch {
            throw EmoError.io(path: path, reason: "cannot \(making ? "make" : "open") the provenance database: \(error)")
        }
    }

    /// What stopped the database from being made or opened for writing, said as the user can act on it.
    private static func openingError(_ error: DatabaseError, path: String, making: Bool) -> EmoError {
        let code = "SQLite error \(error.extendedResultCode.rawValue)"
        let roomAdvice = "free some space first (the cache's shards under cache/ are the largest files; `emopipe cache gc` "
            + "needs a little room itself)" + (making ? "; nothing was left behind" : "")
        if error.resultCode == .SQLITE_CANTOPEN, let exhausted = OpenFileLimit.exhaustedNow() {
            return .io(path: path, reason: "cannot open the database's files (\(exhausted)): \(OpenFileLimit.advice)")
        }
        if error.resultCode == .SQLITE_FULL {
            return .io(path: path, reason: "cannot write: \(error.message ?? "database or disk is full") (\(code)); \(roomAdvice)")
        }
        // The shared-memory file beside a WAL database could not grow: a full disk or a file-size limit.
        if error.resultCode == .SQLITE_IOERR && DatabaseFile.isUnreadableLogFolder(error) {
            return .io(path: path, reason: "cannot make the shared-memory file beside the database (\(code): the disk is full, "
                       + "or a file-size limit is reached); \(roomAdvice)")
        }
        if error.resultCode == .SQLITE_READONLY || error.resultCode == .SQLITE_CANTOPEN {
            return .io(path: path, reason: "cannot be written (" + (DatabaseFile.unwritableFiles(path) ?? "the work directory or the database is read-only")
                       + "); this command changes the work directory: \(error.message ?? "\(error)")")
        }
        if making {
            // SQLite reports a write refused for room (ENOSPC, or EFBIG past `ulimit -f`) as a plain I/O error.
            let room = error.resultCode == .SQLITE_IOERR ? ": the disk may be full, or a file-size limit reached"
                + (Self.fileSizeLimitKB.map { " (ulimit -f is \($0) KB)" } ?? "") : ""
            return .io(path: path, reason: "cannot make the provenance database: \(error.message ?? "\(error.resultCode)") (\(code))\(room); "
                       + "nothing was left behind")
        }
        if DatabaseFile.isDamage(error) { return DatabaseFile.damaged(error, path: path) }
        return .io(path: path, reason: "cannot open the provenance database: \(error)")
    }

    /// The process's file-size limit in KB (`ulimit -f`), when it has one.
    static var fileSizeLimitKB: UInt64? { SoftLimit.of(RLIMIT_FSIZE).map { $0 >> 10 } }

    /// Makes a new database whole under a temporary name, then links it into place: a kill or a full
    /// disk while it is being made leaves no database (the next run makes it again), never an empty
    /// or half-made one that every later command would have to refuse as not EmoPipe's. Linked, not
    /// renamed: a database another process made meanwhile is kept, not replaced under its connections.
    static func createWithSchema(_ path: String) throws {
        let temporary = path + ".new-\(getpid())"
        removeLeftoversOfDeadProcesses(besides: path)
        defer { for suffix in ["", "-journal"] { unlink(temporary + suffix) } }
        let queue = try DatabaseQueue(path: temporary)
        try Schema.migrator.migrate(queue)
        try queue.close()
        if link(temporary, path) != 0 && errno != EEXIST {
            // A file system without hard links: renamed instead (a race with another maker is then possible).
            guard [EPERM, EOPNOTSUPP, ENOSYS].contains(errno), rename(temporary, path) == 0 else {
                throw EmoError.io(path: path, reason: "cannot put the new provenance database in place: \(String(cString: strerror(errno)))")
            }
        }
        Folder.syncEntries(holding: path)
    }

    /// Databases a killed process was making beside `path` (`<name>.new-<pid>`, and their journals).
    private static func removeLeftoversOfDeadProcesses(besides path: String) {
        let folder = PathText.folder(of: path), prefix = (path as NSString).lastPathComponent + ".new-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0.isNumber }), DurableFile.processIsGone(pid) else { continue }
            unlink((folder.isEmpty ? "" : folder + "/") + name)
        }
    }

    /// A database in memory with the schema and nothing recorded: what a dry run judges against before
    /// the work directory exists, so that it counts and refuses as a first run would. Writes nothing to disk.
    public static func empty() throws -> ProvenanceStore { try ProvenanceStore(emptyInMemory: ()) }

    private init(emptyInMemory: Void) throws {
        path = ":memory:"
        patience = .standard
        let queue = try DatabaseQueue()
        try Schema.migrator.migrate(queue)
        pool = queue
    }

    /// Opens an existing database read-only, for commands that only inspect: it works in a
    /// read-only work directory too. A database an older EmoPipe made is migrated first when the
    /// folder allows it.
    /// `upgrade: false` (another work directory's database, a worker's) refuses an older one rather than write to it.
    public init(readingPath path: String, upgrade: Bool = true) throws {
        self.path = path
        patience = .standard
        try DatabaseFile.checkPathLength(path, making: false)
        try DatabaseFile.checkHeader(path)
        let reader = try DatabaseFile.openReadOnly(path)
        try DatabaseFile.checkIsEmoPipe(reader, path: path)
        let current = try DatabaseFile.describingErrors(path) { try reader.read { try Schema.migrator.hasCompletedMigrations($0) } }
        if current {
            pool = reader
        } else if !upgrade {
            throw EmoError.io(path: path, reason: "an older EmoPipe made this database; run that work again with this one")
        } else {
            do { pool = try ProvenanceStore(path: path).pool } catch {
                let unfinished = (try? DatabaseFile.isUnfinishedCreation(reader, path: path)) == true
                throw EmoError.io(path: path, reason: (unfinished ? "a run stopped while making this database (nothing is recorded in it yet) and finishing it"
                                                       : "an older EmoPipe made this database and upgrading it")
                                  + " needs write access (run `emopipe run` once where the work directory is writable): \(error)")
            }
        }
    }

    /// The writer connection's `PRAGMA synchronous` (2: FULL, every commit synced).
    public var synchronousLevel: Int {
        get throws { try pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") ?? -1 } }
    }

    /// The SQLite library version GRDB runs on.
    public static var sqliteVersion: String {
        (try? DatabaseQueue().read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }) ?? "unknown"
    }

    /// A read. A database damaged after it was opened is named (SQLite's own message does not say which file).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch let error as DatabaseError where DatabaseFile.isDamage(error) {
            throw damaged(error)
        } catch let error as RowDecodingError {
            throw EmoError.io(path: path, reason: "a row does not hold what EmoPipe writes (\(Self.withoutRow(error))); the database was edited or is damaged")
        } catch let error as DecodingError {
            // A text column outside its enum (a source status "zzz") comes through Codable, not GRDB's row decoding.
            throw EmoError.io(path: path, reason: "a row does not hold what EmoPipe writes (\(Self.described(error))); the database was edited or is damaged")
        }
    }

    /// A Codable decoding error as one line: the column and what is wrong with its value.
    static func described(_ error: DecodingError) -> String {
        let context: DecodingError.Context
        switch error {
        case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c): context = c
        @unknown default: return "\(error)".echoed
        }
        let column = context.codingPath.map(\.stringValue).joined(separator: ".")
        return ((column.isEmpty ? "" : "column \(column): ") + context.debugDescription).echoed
    }

    /// GRDB's decoding message names the value and column, then prints the whole row (a run's manifest
    /// included): keep the first part.
    static func withoutRow(_ error: RowDecodingError) -> String {
        let text = "\(error)"
        let cut = text.range(of: " - row:") ?? text.range(of: ", row:")
        return String(text[..<(cut?.lowerBound ?? text.endIndex)]).echoed
    }

    /// One transaction. When the file system refuses the write (disk full, file-size limit, I/O
    /// error) or the file is damaged, the error names the database file: SQLite's own message does not
    /// say which file.
    /// Another process's write transaction is waited out, for at most `patience.total`, saying so once:
    /// giving up at SQLite's first timeout stopped a run and lost a finished shard that was being indexed.
    /// Only a write whose body never ran is tried again (the pool's writes begin IMMEDIATE, so the lock is
    /// waited for before the body): a body that counts as it goes (a merge's report) must not count twice.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        var entered = false
        return try Self.waitingOutOtherWriters(path: path, patience: patience, retryable: { !entered }) {
            entered = false
            return try writeOnce { db in entered = true; return try body(db) }
        }
    }

    /// `attempt` again while it meets another process's write lock (SQLITE_BUSY after SQLite's own wait)
    /// and `retryable` says it may, for about `patience.total`, saying so once; then an error naming the database.
    private static func waitingOutOtherWriters<T>(path: String, patience: LockPatience, retryable: () -> Bool = { true },
                                                  _ attempt: () throws -> T) throws -> T {
        let started = Date()
        var announced = false
        while true {
            do {
                return try attempt()
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && retryable() {
                // Asked to stop while waiting: nothing more can be recorded until the holder lets go.
                if StopRequest.isSet { throw EmoError.interrupted }
                let waited = Date().timeIntervalSince(started)
                guard waited < patience.total else {
                    throw EmoError.io(path: path, reason: "stayed locked by another process's write transaction for \(Int(waited.rounded())) s "
                                      + "(an sqlite3 shell or a backup tool holding it open?), so this write was not made: end that "
                                      + "transaction, then run again to go on from what is recorded")
                }
                if !announced {
                    announced = true
                    StandardStream.error.write(Data(("emopipe: \(path) is locked by another process's write transaction (an sqlite3 "
                                                     + "shell or a backup tool?); waiting for it, about \(Int(patience.total)) s at most\n").utf8))
                }
                // SQLite's own wait comes first; should it ever return at once, the loop must not spin.
                Thread.sleep(forTimeInterval: min(0.1, patience.perAttempt))
            }
        }
    }

    private func writeOnce<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(body)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR {
            // SQLite's "disk I/O error" for a refused write does not say why; the likely causes are named.
            let causes = error.extendedResultCode == .SQLITE_IOERR_WRITE || error.extendedResultCode == .SQLITE_IOERR_FSYNC
                ? " (a full disk, a file-size limit such as `ulimit -f`, a quota, or the disk itself)" : ""
            throw EmoError.io(path: path, reason: "cannot write: \(error.message ?? "\(error.resultCode)")\(causes) "
                              + "(SQLite error \(error.extendedResultCode.rawValue)); the transaction was rolled back")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY {
            throw EmoError.io(path: path, reason: "cannot write: \(error.message ?? "\(error.resultCode)") (SQLite error \(error.extendedResultCode.rawValue))"
                              + (DatabaseFile.unwritableFiles(path).map { ": \($0)" } ?? "") + "; the transaction was rolled back")
        } catch let error as DatabaseError where DatabaseFile.isDamage(error) {
            throw damaged(error)
        }
    }


    private func damaged(_ error: DatabaseError) -> EmoError { DatabaseFile.damaged(error, path: path) }

    // MARK: Runs

    public func insert(_ run: RunRecord) throws { try write { try run.insert($0) } }

    public func finishRun(id: String, status: RunStatus, exitCode: Int, at date: Date = Date()) throws {
        try write { db in
            try db.execute(sql: "UPDATE run SET status = ?, exitCode = ?, finishedAt = ? WHERE id = ?",
                           arguments: [status, exitCode, date, id])
        }
    }

    /// The recorded runs, newest first; with `limit`, only that many are read (a sweep of thousands of
    /// trials records as many runs, each with its manifest and parameters).
    public func runs(limit: Int? = nil) throws -> [RunRecord] {
        try read { db in
            let newestFirst = RunRecord.order(Column("startedAt").desc)
            return try (limit.map { newestFirst.limit($0) } ?? newestFirst).fetchAll(db)
        }
    }

    /// The run recorded under `id`, if any.
    public func run(id: String) throws -> RunRecord? {
        try read { try RunRecord.fetchOne($0, key: id) }
    }

    /// The runs recorded after `runId`, in the order they were recorded (started, or merged from a
    /// worker); none when `runId` is not recorded.
    public func runIds(after runId: String) throws -> [String] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT id FROM run WHERE rowid > (SELECT rowid FROM run WHERE id = ?) ORDER BY rowid",
                                arguments: [runId])
        }
    }

    /// What a run used of the data root: the fingerprint of its sources in use, and how many.
    public func recordDataset(runId: String, fingerprint: String, sourcesInUse: Int) throws {
        try write { db in
            try db.execute(sql: "UPDATE run SET datasetFingerprint = ?, sourcesInUse = ? WHERE id = ?",
                           arguments: [fingerprint, sourcesInUse, runId])
        }
    }

    /// Runs left `running` by a process that died: marked interrupted so history stays honest.
    public func markInterruptedRuns() throws {
        try write { db in
            try db.execute(sql: "UPDATE run SET status = ? WHERE status = ?",
                           arguments: [RunStatus.interrupted, RunStatus.running])
            try db.execute(sql: "UPDATE stageRun SET state = ? WHERE state = ?",
                           arguments: [StageRunState.interrupted, StageRunState.running])
        }
    }

    // MARK: Sources

    public func allSources() throws -> [SourceRecord] {
        try read { try SourceRecord.order(Column("path")).fetchAll($0) }
    }

    public func sources(status: SourceStatus? = nil, under root: String? = nil) throws -> [SourceRecord] {
        try read { db in
            var request = SourceRecord.order(Column("path"))
            if let status { request = request.filter(Column("status") == status.rawValue) }
            if let root { request = request.filter(Column("path").like(Self.likePrefix(root), escape: "\\")) }
            return try request.fetchAll(db)
        }
    }

    public func source(path: String) throws -> SourceRecord? {
        try read { try SourceRecord.fetchOne($0, key: path) }
    }

    /// The mtime a source row is given when a later stage found its bytes changed although its size
    /// and mtime were not: no file has it, so the next ingest reads the file again.
    public static let unknownMtime = Int64.min

    /// Makes the next ingest read these files again (see `unknownMtime`).
    public func requireRereading(paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            for path in paths {
                try db.execute(sql: "UPDATE source SET mtimeNanos = ? WHERE path = ?", arguments: [Self.unknownMtime, path])
            }
        }
    }

    public func sources(sha256: String) throws -> [SourceRecord] {
        try read { try SourceRecord.filter(Column("sha256") == sha256).order(Column("path")).fetchAll($0) }
    }

    /// Sources whose SHA-256 starts with `prefix` (lowercase hex), by path.
    public func sources(sha256Prefix prefix: String) throws -> [SourceRecord] {
        try read { db in
            try SourceRecord.filter(Column("sha256").like(Self.likePrefixOf(prefix), escape: "\\")).order(Column("path")).fetchAll(db)
        }
    }

    /// Groups of ok sources whose bytes are identical (RAVDESS has such pairs).
    public func duplicateContent() throws -> [[SourceRecord]] {
        let rows = try read { db in
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

    /// The last completed execution of one of this build's stages.
    public func stageState(_ stage: StageName) throws -> StageStateRecord? { try stageState(stage.rawValue) }

    public func stageState(_ stage: String) throws -> StageStateRecord? {
        try read { try StageStateRecord.fetchOne($0, key: stage) }
    }

    /// Stage → the parameters fingerprints some recorded run executed it with (or found it up to date with).
    public func parametersFingerprintsUsed() throws -> [String: Set<String>] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT DISTINCT stage, parametersFingerprint FROM stageRun
                WHERE parametersFingerprint IS NOT NULL AND runId IN (SELECT id FROM run)
                """).reduce(into: [String: Set<String>]()) { used, row in
                used[try row.decode(String.self, forColumn: "stage"), default: []].insert(try row.decode(String.self, forColumn: "parametersFingerprint"))
            }
        }
    }

    public func stageRuns(runId: String) throws -> [StageRunRecord] {
        try read { try StageRunRecord.filter(Column("runId") == runId).order(Column("id")).fetchAll($0) }
    }

    /// The newest recorded execution of `stage` (any state) under the parameters fingerprint given, if any.
    public func latestExecution(stage: String, parametersFingerprint: String) throws -> StageRunRecord? {
        try read {
            try StageRunRecord.filter(Column("stage") == stage && Column("parametersFingerprint") == parametersFingerprint)
                .order(Column("id").desc).fetchOne($0)
        }
    }

    /// The states of an execution that completed its stage.
    private static let completedStates = [StageRunState.done.rawValue, StageRunState.partial.rawValue]

    /// Whether `stage` ran to completion (done or partial) under the stage fingerprint given, in any run.
    public func hasCompleted(stage: String, fingerprint: String) throws -> Bool {
        try read { db in
            try StageRunRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint
                                      && Self.completedStates.contains(Column("state"))).fetchCount(db) > 0
        }
    }

    /// The execution of `stage` in run `runId` that completed it (done or partial), if recorded.
    public func completedExecution(stage: String, runId: String) throws -> StageRunRecord? {
        try read { db in
            try StageRunRecord.filter(Column("runId") == runId && Column("stage") == stage
                                      && Self.completedStates.contains(Column("state")))
                .order(Column("id").desc).fetchOne(db)
        }
    }

    public func failures(stage: String? = nil, subject: String? = nil, sha256: String? = nil) throws -> [FailureRecord] {
        try read { db in
            var request = FailureRecord.order(Column("stage"), Column("subject"), Column("id"))
            if let stage { request = request.filter(Column("stage") == stage) }
            if let subject { request = request.filter(Column("subject") == subject) }
            if let sha256 { request = request.filter(Column("sha256") == sha256) }
            return try request.fetchAll(db)
        }
    }

    /// The failures one run recorded.
    public func failures(runId: String) throws -> [FailureRecord] {
        try read { try FailureRecord.filter(Column("runId") == runId).order(Column("stage"), Column("subject")).fetchAll($0) }
    }

    public func artifacts(sourceSHA256: String) throws -> [ArtifactRecord] {
        try read { try ArtifactRecord.filter(Column("sourceSHA256") == sourceSHA256).order(Column("id")).fetchAll($0) }
    }

    /// The SHA-256 each output file one stage of a run wrote had then (rows naming no source), by file name (`metrics.json`,
    /// `model.onnx`; the kind says `onnx` for the latter).
    public func outputDigests(runId: String, stage: String) throws -> [String: String] {
        let rows = try read {
            try ArtifactRecord.filter(Column("runId") == runId && Column("stage") == stage && Column("sourceSHA256") == nil
                                      && Column("sha256") != nil).fetchAll($0)
        }
        return Dictionary(rows.compactMap { row in row.sha256.map { ((row.path as NSString).lastPathComponent, $0) } },
                          uniquingKeysWith: { _, later in later })
    }

    /// The files one stage recorded under one fingerprint (rows naming no source), by path; with a
    /// run id, only those that run wrote.
    public func outputArtifacts(stage: String, fingerprint: String, runId: String? = nil) throws -> [ArtifactRecord] {
        try read { db in
            var rows = ArtifactRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint
                                             && Column("sourceSHA256") == nil)
            if let runId { rows = rows.filter(Column("runId") == runId) }
            return try rows.order(Column("path"), Column("id")).fetchAll(db)
        }
    }

    /// The fingerprints one stage recorded files under (rows naming no source), in order.
    public func outputFingerprints(stage: String) throws -> [String] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT fingerprint FROM artifact WHERE stage = ? AND sourceSHA256 IS NULL AND typeof(fingerprint) = 'text' ORDER BY fingerprint",
                                arguments: [stage])
        }
    }

    /// The files one run of a stage recorded (rows naming no source), whatever its fingerprint.
    public func outputArtifacts(stage: String, runId: String) throws -> [ArtifactRecord] {
        try read { db in
            try ArtifactRecord.filter(Column("stage") == stage && Column("runId") == runId && Column("sourceSHA256") == nil)
                .order(Column("path"), Column("id")).fetchAll(db)
        }
    }

    /// Drops the rows (the file's and its sources') of files a stage no longer stands by.
    public func deleteArtifacts(stage: String, fingerprint: String, paths: Set<String>) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            _ = try ArtifactRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint
                                          && paths.contains(Column("path"))).deleteAll(db)
        }
    }

    /// The sources an artifact (a stage's file under one fingerprint) was made from, sorted, whichever
    /// root its rows were recorded under:
    /// `relative` is its path inside the work directory. A work directory copied or moved keeps the rows
    /// of the stages that stay up to date there, and those name the old root.
    public func sources(ofArtifactAt relative: String, stage: String, fingerprint: String) throws -> [String] {
        let rows = try read { db in
            try ArtifactRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint).fetchAll(db)
        }
        return Set(rows.filter { $0.path == relative || $0.path.hasSuffix("/" + relative) }.compactMap(\.sourceSHA256)).sorted()
    }

    /// Records the artifact rows of one file in one transaction, replacing the rows an earlier,
    /// interrupted execution of the same stage (same fingerprint) left for that file. Bytes recorded
    /// before keep the run that wrote them and when: a later run that took the file over as it was (a
    /// finished training found again) made nothing, and `show` must not credit it.
    public func replaceArtifacts(_ artifacts: [ArtifactRecord], stage: String, fingerprint: String, path: String) throws {
        try write { db in
            let request = ArtifactRecord.filter(Column("stage") == stage && Column("fingerprint") == fingerprint && Column("path") == path)
            let earlier = try request.fetchAll(db).filter { $0.sha256 != nil }
            try request.deleteAll(db)
            for var artifact in artifacts {
                // Only a run the database still records: a row naming another (edited, or merged without its run) is the new run's.
                if let made = try earlier.first(where: { row in
                    try row.sha256 == artifact.sha256 && Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM run WHERE id = ?)", arguments: [row.runId]) == true
                }) {
                    artifact.runId = made.runId
                    artifact.createdAt = made.createdAt
                }
                try artifact.insert(db)
            }
        }
    }

    static func likePrefix(_ root: String) -> String {
        let folder = root.hasSuffix("/") ? root : root + "/"
        return likePrefixOf(folder)
    }

    /// A LIKE pattern (escaped with a backslash) matching strings that start with `text`.
    static func likePrefixOf(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
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
