import EmoCore
import Foundation
import GRDB
import Synchronization

/// Checks that an existing `emopipe.sqlite` is EmoPipe's before anything opens it for writing, so
/// an empty or foreign file is refused with a message instead of being taken for a new database
/// (which would hide every earlier run and orphan the cache).
enum DatabaseFile {
    /// The first 16 bytes of every SQLite 3 database file.
    static let sqliteHeader = Array("SQLite format 3".utf8) + [0]

    /// The migration every EmoPipe database has applied first.
    static var firstMigration: String { "v1: runs, sources, stages, failures, artifacts" }

    /// Which of the database, its write-ahead log, its shared-memory file and its folder this user may
    /// not write, said in words; nil when each may be written (or none could be judged).
    static func unwritableFiles(_ path: String) -> String? {
        let files = [path, path + "-wal", path + "-shm", PathText.folder(of: path)]
        var readOnlyFileSystem = false
        let unwritable = files.filter { file in
            guard access(file, F_OK) == 0, access(file, W_OK) != 0 else { return false }
            if errno == EROFS { readOnlyFileSystem = true }
            return true
        }
        guard !unwritable.isEmpty else { return nil }
        if readOnlyFileSystem { return "the work directory is on a read-only file system" }
        return unwritable.map(\.escaped).joined(separator: " and ") + " may not be written by this user"
    }

    /// SQLite's unix VFS opens no file whose full path (links resolved) passes 512 bytes, and it opens the
    /// database's `-journal` beside it; while the database is made, under `.new-PID`, that name too.
    static let longestPath = 512 - "-journal".utf8.count
    static let longestPathWhileMaking = longestPath - ".new-".utf8.count - 7

    /// Refuses a database SQLite could not open for its path's length (it says only "unable to open
    /// database file", which read as a read-only folder), naming the length and the limit.
    static func checkPathLength(_ path: String, making: Bool) throws {
        guard let full = ResolvedPath.of(path) else { return }
        let limit = making ? longestPathWhileMaking : longestPath
        guard full.utf8.count > limit else { return }
        throw EmoError.io(path: path, reason: "its full path\(full == path ? "" : " (\(full.shownPath))") is \(full.utf8.count) bytes, more than "
                          + "the \(limit) SQLite can open a database by (links resolved, as SQLite resolves them): give a work directory with a shorter path")
    }

    /// SQLite's own files beside the database: one that is no file fails every open as "read-only" or a
    /// log it cannot read, whether the database is there or still to be made. With the database missing
    /// (`making`), a log that holds anything is another database's: SQLite would replay it into the new one.
    static func checkCompanions(_ path: String, making: Bool = false) throws {
        for (suffix, what) in [("-wal", "write-ahead log"), ("-shm", "shared-memory file"), ("-journal", "rollback journal")] {
            var companion = stat()
            guard lstat(path + suffix, &companion) == 0 else { continue }
            if stat(path + suffix, &companion) != 0 || companion.st_mode & S_IFMT != S_IFREG {
                throw EmoError.io(path: path + suffix, reason: "is where SQLite keeps the provenance database's \(what), but is not a regular file "
                                  + "(a folder, a pipe, a device or a dangling link), so the database cannot be opened: move it away")
            }
            if making, suffix != "-shm", companion.st_size > 0 {
                throw EmoError.io(path: path + suffix, reason: "is the \(what) of a provenance database that is not here (removed?): SQLite would "
                                  + "replay it into a new one and damage it; put the database back beside it, or move the log away")
            }
        }
    }

    static func checkHeader(_ path: String) throws {
        // A pipe would block the read below for ever, and a folder would read as empty.
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            throw EmoError.io(path: path, reason: "the provenance database is not a regular file (a folder, a pipe or a device), "
                              + "so it is not EmoPipe's; it was left as it is: move it away or choose another --workdir")
        }
        try checkCompanions(path)
        if opened.contains(info) { return }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw EmoError.io(path: path, reason: "cannot read the provenance database: \(String(cString: strerror(errno)))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: sqliteHeader.count)) ?? Data())
        if head.isEmpty {
            throw EmoError.io(path: path, reason: "the provenance database is empty (0 bytes), so it is not EmoPipe's; "
                              + "it was left as it is: move it away (or restore it from a backup) to go on")
        }
        guard head == sqliteHeader else {
            throw EmoError.io(path: path, reason: "not an SQLite database, so not EmoPipe's provenance database; "
                              + "it was left as it is: move it away or choose another --workdir")
        }
        opened.insert(info)
    }

    /// Database files this process has read the header of, or opened through SQLite: their header is
    /// not read again. Reading it opens and closes a descriptor of the file, and closing any descriptor
    /// of a file drops every POSIX lock the process holds on it, SQLite's included. Another process could
    /// then take itself for the database's last user and remove the write-ahead log from under this one's
    /// connections: their commits lost, their next read a disk I/O error.
    static let opened = OpenedFiles()

    final class OpenedFiles: @unchecked Sendable {
        private struct Identity: Hashable { var device: UInt64, inode: UInt64 }
        private let lock = NSLock()
        private var identities: Set<Identity> = []

        func contains(_ info: stat) -> Bool { lock.withLock { identities.contains(Self.identity(info)) } }
        func insert(_ info: stat) { lock.withLock { _ = identities.insert(Self.identity(info)) } }

        /// After SQLite opened (or created) `path`.
        func insert(path: String) {
            var info = stat()
            if stat(path, &info) == 0 { insert(info) }
        }

        private static func identity(_ info: stat) -> Identity { Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) }
    }

    /// Refuses an SQLite database that EmoPipe's migrations never touched.
    static func checkIsEmoPipe(_ reader: any DatabaseReader, path: String) throws {
        let applied = try describingErrors(path) { try reader.read { try Schema.migrator.appliedIdentifiers($0) } }
        let unfinished = applied.isEmpty ? try isUnfinishedCreation(reader, path: path) : false
        guard applied.contains(firstMigration) || unfinished else {
            throw EmoError.io(path: path, reason: "an SQLite database without EmoPipe's schema (no '\(firstMigration)' "
                              + "migration recorded), so not EmoPipe's provenance database; it was left as it is"
                              + (foreignLogNote(path) ?? ": move it away or choose another --workdir"))
        }
        // A migration this EmoPipe does not know is a newer one's: its schema may mean what this one would misread, or
        // break with what it writes.
        let known = Set(Schema.migrator.migrations)
        if let newer = applied.sorted().first(where: { !known.contains($0) }) {
            throw EmoError.io(path: path, reason: "a newer EmoPipe made or upgraded this database (it records the migration '\(newer.echoed)', "
                              + "which this one does not know); it was left as it is: use that EmoPipe, or this one with another --workdir")
        }
        // EmoPipe makes tables and indexes only: a view or trigger (an endless recursive view, say) was put there by hand.
        let extra = try describingErrors(path) {
            try reader.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type IN ('view', 'trigger')") }
        }
        if let name = extra.first {
            throw EmoError.io(path: path, reason: "holds a view or trigger (\(name.echoed)) EmoPipe never makes; it was left as it is")
        }
        try checkTables(reader, path: path)
    }

    /// A database an older EmoPipe stopped making before its first migration took (killed, or a full
    /// disk): GRDB's empty list of migrations and no other table; or no table at all in a file already
    /// in WAL mode with no application id or user version set, as that EmoPipe's pool left it. Nothing
    /// was ever recorded in it, so it is EmoPipe's to finish; refusing it would leave the work directory
    /// unusable. (This EmoPipe makes a database whole before it takes the name.)
    static func isUnfinishedCreation(_ reader: any DatabaseReader, path: String) throws -> Bool {
        try describingErrors(path) {
            try reader.read { db in
                let names = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
                if names == ["grdb_migrations"] { return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM grdb_migrations") == 0 }
                guard names.isEmpty, try Int.fetchOne(db, sql: "PRAGMA application_id") == 0,
                      try Int.fetchOne(db, sql: "PRAGMA user_version") == 0 else { return false }
                // Asked of the connection, not read from the file: closing a descriptor of the file would
                // drop this process's locks on it (see `opened`).
                return try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal"
            }
        }
    }

    /// SQLite's own check of the tables runs look things up in, and their indexes, before anything is
    /// written: a damaged index answers lookups wrongly without an error (a run then blamed a shard it
    /// had just written, every time). The artifact table, which grows with every run and trial, is left
    /// out: about 10 ms for a 3 MB database (480 sources); the whole file of 250 MB took 1.5 s.
    static let checkedTables = ["source", "stageState", "failure", "cacheShard", "cacheRecord", "run", "stageRun"]

    static func checkIntegrity(_ reader: any DatabaseReader, path: String) throws {
        let problems: [String] = try describingErrors(path) {
            do {
                return try reader.read { db in
                    // A database an older EmoPipe made may lack a table its migrations add later.
                    let present = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
                    return try checkedTables.filter(present.contains).flatMap {
                        try String.fetchAll(db, sql: "SELECT * FROM pragma_integrity_check(?) LIMIT 5", arguments: [$0])
                    }.filter { $0 != "ok" }
                }
            } catch let error as DatabaseError where isDamage(error) {
                throw damaged(error, path: path)
            }
        }
        guard !problems.isEmpty else { return }
        let shown = problems.prefix(3).map { $0.escaped }.joined(separator: "; ")
        // Damage confined to indexes is rebuilt from the tables by REINDEX; anything else needs a copy.
        let indexesOnly = problems.allSatisfy { $0.contains(" index ") }
        throw EmoError.io(path: path, reason: "the provenance database is damaged (SQLite's integrity_check: \(shown)); it is left as it is: "
            + (indexesOnly ? "only indexes are damaged, which `sqlite3 \(path.shownPath) REINDEX` rebuilds from the tables"
                           : "restore it from a copy, or move it aside to start a new one (the cache is kept, but its records are lost)"))
    }

    /// A table or column the recorded migrations made but the file lacks was dropped by hand: named
    /// here, rather than as SQLite's "no such table" in the middle of a run.
    private static func checkTables(_ reader: any DatabaseReader, path: String) throws {
        let (completed, present) = try describingErrors(path) {
            try reader.read { db in (try Schema.migrator.completedMigrations(db).last, try tables(db)) }
        }
        guard let completed else { return }
        for (table, columns) in try expectedTables(upTo: completed).sorted(by: { $0.key < $1.key }) {
            let advice = "the database was edited or is damaged; it is left as it is: restore it from a copy, or move it "
                + "aside to start a new one (the cache is kept, but its records are lost)"
            guard let found = present[table] else {
                throw EmoError.io(path: path, reason: "the provenance database has no table '\(table)'; \(advice)")
            }
            let lacking = columns.subtracting(found).sorted()
            guard lacking.isEmpty else {
                throw EmoError.io(path: path, reason: "the table '\(table)' of the provenance database lacks the column"
                                  + "\(lacking.count == 1 ? "" : "s") \(lacking.joined(separator: ", ")); \(advice)")
            }
            let mistyped = try describingErrors(path) {
                do { return try reader.read { try misTyped(in: table, $0) } } catch let error as DatabaseError where isDamage(error) {
                    throw damaged(error, path: path)
                }
            }
            if let (column, value, takes) = mistyped {
                throw EmoError.io(path: path, reason: "the table '\(table)' of the provenance database holds \(value.echoed) in its column "
                                  + "'\(column)', which takes \(takes): EmoPipe never writes that, and reading it would give another number "
                                  + "without a word; \(advice)")
            }
        }
    }

    /// The first value of a number column that is not a number of its kind (text, a blob, or a fraction in a
    /// whole-number column), quoted as SQLite writes it: SQLite keeps what an edit put there, and reading it
    /// as a number gives 0 (a size, an actor, an exit code) or the nearest integer without a word.
    private static func misTyped(in table: String, _ db: Database) throws -> (column: String, value: String, takes: String)? {
        let quotedTable = "\"" + table.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        // An INTEGER PRIMARY KEY is the row id, always an integer: not looked at.
        let primaryKey = try db.primaryKey(table)
        let checked: [(name: String, quoted: String, condition: String, takes: String)] = try db.columns(in: table).compactMap { column in
            let quoted = "\"" + column.name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            switch column.type.uppercased() {
            case "INTEGER" where primaryKey.rowIDColumn == column.name: return nil
            case "INTEGER", "BOOLEAN": return (column.name, quoted, "typeof(\(quoted)) NOT IN ('integer', 'null')", "whole numbers")
            case "DOUBLE", "REAL": return (column.name, quoted, "typeof(\(quoted)) NOT IN ('integer', 'real', 'null')", "numbers")
            default: return nil
            }
        }
        guard !checked.isEmpty else { return nil }
        // One pass over the table finds whether any is wrong; only then is the column named.
        let any = checked.map(\.condition).joined(separator: " OR ")
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(quotedTable) WHERE \(any))") == true else { return nil }
        for column in checked {
            if let value = try String.fetchOne(db, sql: "SELECT substr(quote(\(column.quoted)), 1, 80) FROM \(quotedTable) WHERE \(column.condition) LIMIT 1") {
                return (column.name, value, column.takes)
            }
        }
        return nil
    }

    /// Each table's column names.
    private static func tables(_ db: Database) throws -> [String: Set<String>] {
        let names = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        var tables: [String: Set<String>] = [:]
        for name in names { tables[name] = Set(try db.columns(in: name).map(\.name)) }
        return tables
    }

    /// The tables the migrations up to `identifier` make, from an empty in-memory database; kept per identifier.
    private static func expectedTables(upTo identifier: String) throws -> [String: Set<String>] {
        if let known = expectedByMigration.withLock({ $0[identifier] }) { return known }
        let memory = try DatabaseQueue()
        try Schema.migrator.migrate(memory, upTo: identifier)
        let expected = try memory.read { try tables($0) }
        expectedByMigration.withLock { $0[identifier] = expected }
        return expected
    }

    private static let expectedByMigration = Mutex<[String: [String: Set<String>]]>([:])

    /// A read-only connection. When the folder cannot hold the write-ahead log's `-shm` file (a
    /// read-only work directory) and no `-wal` holds uncheckpointed commits, the file is read as
    /// immutable: every commit is then in the database file itself.
    static func openReadOnly(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            try queue.read { _ = try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM sqlite_master") }
            return queue
        } catch let error as DatabaseError where isUnreadableLogFolder(error) && !hasPendingLog(path) {
            return try describingErrors(path) { try DatabaseQueue(path: immutableURI(path), configuration: config) }
        } catch let error as DatabaseError where isUnreadableLogFolder(error) {
            throw EmoError.io(path: path, reason: "cannot read the provenance database here: its write-ahead log "
                              + "(\(path)-wal) holds commits and SQLite cannot make the shared-memory file beside it (a "
                              + "read-only folder, a full disk); open the work directory once where it is writable and has room")
        } catch let error as DatabaseError where isDamage(error) {
            throw damaged(error, path: path)
        } catch {
            throw EmoError.io(path: path, reason: "cannot open the provenance database: \(error)" + (foreignLogNote(path, after: error) ?? ""))
        }
    }

    /// What SQLite says when it cannot create or write the `-shm` file beside the database: a
    /// read-only folder, or a full disk or file-size limit that stops the file from growing
    /// (SQLITE_IOERR_SHMOPEN, _SHMSIZE, _SHMMAP).
    static func isUnreadableLogFolder(_ error: DatabaseError) -> Bool {
        let sharedMemoryErrors: [ResultCode] = [.SQLITE_IOERR_SHMOPEN, .SQLITE_IOERR_SHMSIZE, .SQLITE_IOERR_SHMMAP]
        return error.resultCode == .SQLITE_CANTOPEN || error.resultCode == .SQLITE_READONLY
            || sharedMemoryErrors.contains(error.extendedResultCode)
    }

    /// A `-wal` file with content: commits not yet copied into the database file.
    static func hasPendingLog(_ path: String) -> Bool {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0) > 0
    }

    /// The `file:` URI SQLite reads without locking or a `-shm` file (percent-encoded: a path may hold `?` or `#`).
    static func immutableURI(_ path: String) -> String {
        var encoded = ""
        for scalar in path.unicodeScalars {
            switch scalar {
            case "%": encoded += "%25"
            case "?": encoded += "%3f"
            case "#": encoded += "%23"
            default: encoded.unicodeScalars.append(scalar)
            }
        }
        return "file:\(encoded)?mode=ro&immutable=1"
    }

    /// Runs `body`, naming the database file in any error.
    static func describingErrors<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as EmoError { throw error } catch {
            throw EmoError.io(path: path, reason: "cannot read the provenance database: \(error)" + (foreignLogNote(path, after: error) ?? ""))
        }
    }

    /// A page SQLite reads as malformed: named, with what to do.
    static func damaged(_ error: DatabaseError, path: String) -> EmoError {
        .io(path: path, reason: "the provenance database is damaged: \((error.message ?? "\(error.resultCode)").escaped) "
            + "(SQLite error \(error.extendedResultCode.rawValue)); it is left as it is: restore it from a copy, "
            + "or move it aside to start a new one (the cache is kept, but its records are lost)" + (foreignLogNote(path, after: error) ?? ""))
    }

    /// SQLite reading the file as damaged, or as no database at all.
    static func isDamage(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    /// SQLite reads the write-ahead log beside a database as part of it. One of another database (copied
    /// in, or restored apart from its file) makes an intact database read as foreign or damaged, and
    /// moving the database away, as the message would otherwise advise, would throw good provenance away.
    /// Only for what a foreign log causes: a refusal as not EmoPipe's (`error` nil), or SQLite reading
    /// the database as damaged or as no database; a log beside a database is otherwise normal.
    static func foreignLogNote(_ path: String, after error: Error? = nil) -> String? {
        if let error { guard let error = error as? DatabaseError, isDamage(error) else { return nil } }
        var facts = stat()
        guard lstat(path + "-wal", &facts) == 0, facts.st_mode & S_IFMT == S_IFREG, facts.st_size > 0 else { return nil }
        return "; but it is read together with the write-ahead log beside it (\(path)-wal, \(facts.st_size) bytes): if that log "
            + "belongs to another database (copied in, or restored apart from this file), this file may be intact: keep copies "
            + "of the three files, then move \(path)-wal and \(path)-shm aside and try again"
    }
}
