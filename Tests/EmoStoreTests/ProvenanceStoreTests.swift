import EmoCore
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("provenance store")
struct ProvenanceStoreTests {
    /// SQLite cannot open a database by a path of over 512 bytes with its journal: a work directory that deep
    /// is refused naming the length and the limit, links resolved (it said "read-only"); up to the limit it works.
    /// SQLite's files beside the database that are no files (a folder at `-shm`) are named, not taken for a read-only folder.
    @Test func aCompanionFileThatIsNoFileIsNamed() throws {
        for suffix in ["-wal", "-shm", "-journal"] {
            let path = try TestSupport.temporaryFolder("companion") + "/emopipe.sqlite"
            do { _ = try ProvenanceStore(path: path) }
            for other in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + other) }
            try FileManager.default.createDirectory(atPath: path + suffix, withIntermediateDirectories: false)
            for open in [{ _ = try ProvenanceStore(path: path) }, { _ = try ProvenanceStore(readingPath: path) }] {
                #expect(throws: (any Error).self) { try open() }
                do { try open() } catch {
                    #expect("\(error)".contains("\(path)\(suffix): is where SQLite keeps the provenance database's"), "\(error)")
                }
            }
            try FileManager.default.removeItem(atPath: path + suffix)
            _ = try ProvenanceStore(readingPath: path)
            // No database yet: named before one is made, and none is left behind.
            let fresh = try TestSupport.temporaryFolder("companion") + "/emopipe.sqlite"
            try FileManager.default.createDirectory(atPath: fresh + suffix, withIntermediateDirectories: false)
            #expect { _ = try ProvenanceStore(path: fresh) } throws: { "\($0)".contains("\(fresh)\(suffix): is where SQLite keeps") }
            #expect(!FileManager.default.fileExists(atPath: fresh))
        }
        // A log left without its database (removed) would be replayed into a new one: refused, and none is made;
        // an empty one holds nothing to replay.
        for suffix in ["-wal", "-journal"] {
            let orphan = try TestSupport.temporaryFolder("orphan-log") + "/emopipe.sqlite"
            try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: orphan + suffix))
            #expect { _ = try ProvenanceStore(path: orphan) } throws: { "\($0)".contains("\(orphan)\(suffix): is the ") && "\($0)".contains("that is not here") }
            #expect(!FileManager.default.fileExists(atPath: orphan))
            try Data().write(to: URL(fileURLWithPath: orphan + suffix))
            _ = try ProvenanceStore(path: orphan)
        }
    }

    @Test func aDatabasePathTooLongForSQLiteIsNamedAsSuch() throws {
        let base = try #require(ResolvedPath.of(try TestSupport.temporaryFolder("long-path")))
        let name = "/emopipe.sqlite", limit = 512 - 8 - 5 - 7
        func folder(makingPathOf length: Int) throws -> String {
            var folder = base
            while (folder + name).utf8.count < length {
                let part = String(repeating: "d", count: min(200, length - (folder + name).utf8.count - 1))
                folder += "/" + part
            }
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            #expect((folder + name).utf8.count == length)
            return folder
        }
        let fits = try folder(makingPathOf: limit)
        _ = try ProvenanceStore(path: fits + name)
        _ = try ProvenanceStore(readingPath: fits + name)
        let tooLong = try folder(makingPathOf: limit + 1)
        #expect { try ProvenanceStore(path: tooLong + name) } throws: { "\($0)".contains("its full path is \(limit + 1) bytes, more than the \(limit)") }
        // Through a short link the path SQLite opens is still the long one.
        let link = try TestSupport.temporaryFolder("short-link") + "/w"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: tooLong)
        #expect { try ProvenanceStore(path: link + name) } throws: { "\($0)".contains("(\(tooLong + name)) is \(limit + 1) bytes") }
        #expect(!FileManager.default.fileExists(atPath: tooLong + name), "nothing is made")
    }

    /// SQLite's "database or disk is full" does not say which file; the store's error does, and the
    /// refused transaction leaves the database as it was. (`max_page_count` stands in for a full
    /// disk: SQLite reports both as SQLITE_FULL.)
    /// A file recorded again with the bytes it had keeps the run that wrote them (a finished training taken
    /// over by a later run made nothing); other bytes are the new run's.
    @Test func recordingAFileAgainKeepsTheRunThatWroteItsBytes() throws {
        let databasePath = try TestSupport.temporaryFolder("artifacts") + "/emopipe.sqlite"
        let store = try ProvenanceStore(path: databasePath)
        for id in ["r1", "r2", "r3"] {
            try store.insert(RunRecord(id: id, command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                       threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        }
        func record(_ sha: String, by run: String, at date: Date) throws {
            let rows = [nil, "src-a", "src-b"].map { source in
                ArtifactRecord(stage: "train", fingerprint: "f", sourceSHA256: source, kind: source == nil ? "model" : "trained model",
                               path: "cache/train/f/fold-0/best.safetensors", sha256: sha, runId: run, createdAt: date)
            }
            try store.replaceArtifacts(rows, stage: "train", fingerprint: "f", path: "cache/train/f/fold-0/best.safetensors")
        }
        let first = Date(timeIntervalSince1970: 1_000_000)
        try record("aaa", by: "r1", at: first)
        try record("aaa", by: "r2", at: Date())
        let kept = try store.outputArtifacts(stage: "train", fingerprint: "f")
        #expect(kept.count == 1 && kept[0].runId == "r1" && kept[0].createdAt == first, "\(kept)")
        #expect(try store.artifacts(sourceSHA256: "src-a").map(\.runId) == ["r1"])
        try record("bbb", by: "r3", at: Date())
        #expect(try store.outputArtifacts(stage: "train", fingerprint: "f").map(\.runId) == ["r3"])
        #expect(try store.artifacts(sourceSHA256: "src-b").map(\.runId) == ["r3"])
        // A row naming a run the database does not hold (edited) is not carried forward: that failed every later run.
        // Python's sqlite3 leaves foreign keys off, as a user's editing tool may.
        guard TestSupport.hasTool("python3") else { return }
        _ = try TestSupport.shell("python3 -c \"import sqlite3; c = sqlite3.connect('\(databasePath)'); c.execute(\\\"UPDATE artifact SET runId = 'ghost'\\\"); c.commit()\"")
        try record("bbb", by: "r2", at: Date())
        #expect(try store.outputArtifacts(stage: "train", fingerprint: "f").map(\.runId) == ["r2"])
    }

    @Test func aWriteRefusedForLackOfSpaceNamesTheDatabaseAndKeepsItIntact() throws {
        let folder = try TestSupport.temporaryFolder("store")
        let store = try ProvenanceStore(path: folder + "/emopipe.sqlite")
        try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                   threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        let pages = try store.write { db -> Int in
            let count = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(count + 4)")
            return count
        }
        #expect(pages > 0)
        let padding = String(repeating: "x", count: 64 * 1024)
        do {
            try store.write { db in
                for i in 0..<8 {
                    var source = SourceRecord(path: "/data/\(i).wav", sha256: nil, size: 1, mtimeNanos: 1, status: .failed,
                                              reason: padding, runId: "r1")
                    source.kind = "wav"
                    try source.insert(db)
                }
            }
            Issue.record("512 KB of rows fitted in 4 spare pages")
        } catch let error as EmoError {
            guard case .io(let path, let reason) = error else { Issue.record("\(error)"); return }
            #expect(path == store.path)
            #expect(reason.contains("cannot write: database or disk is full"), "\(reason)")
            #expect(error.description.hasPrefix(store.path + ": "))
        }
        #expect(try store.allSources().isEmpty, "the refused transaction left nothing behind")
        #expect(try store.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") } == ["ok"])
        #expect(try store.runs().map(\.id) == ["r1"])
    }

    /// A table page damaged after the database was opened fine: SQLite's "malformed" does not name
    /// the file; the store's error does, and says what to do. The file is left as it is.
    /// A row edited into something EmoPipe never writes is named by database, value and column, without
    /// printing the whole row (a run row holds its manifest).
    /// Another connection's write transaction (here a second store in a thread; an sqlite3 shell in
    /// life) is waited out within the store's patience, and past it the error names the database.
    @Test(arguments: [(hold: 1.0, total: 20.0), (hold: 3.0, total: 0.5)])
    func aWriteWaitsOutAnotherWriterWithinItsPatience(hold: Double, total: Double) throws {
        let path = try TestSupport.temporaryFolder("store-busy") + "/emopipe.sqlite"
        let patient = try ProvenanceStore(path: path, patience: .init(perAttempt: 0.2, total: total))
        let holder = try ProvenanceStore(path: path)
        let holding = DispatchSemaphore(value: 0), released = DispatchSemaphore(value: 0)
        Thread {
            try? holder.write { _ in holding.signal(); Thread.sleep(forTimeInterval: hold) }
            released.signal()
        }.start()
        holding.wait()
        let run = RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                            threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date())
        let started = Date()
        do {
            try patient.insert(run)
            #expect(hold < total, "the write went through while the other transaction was held for \(hold) s")
            #expect(Date().timeIntervalSince(started) >= hold * 0.5, "it waited for the holder")
            #expect(try patient.runs().map(\.id) == ["r1"])
        } catch let error as EmoError {
            #expect(hold > total, "\(error)")
            guard case .io(let named, let reason) = error else { Issue.record("\(error)"); return }
            #expect(named == path && reason.contains("stayed locked by another process's write transaction"), "\(reason)")
        }
        released.wait()
    }

    /// Opening for writing meets another process's write transaction too (an sqlite3 shell's `BEGIN
    /// EXCLUSIVE`; here python3's): it is waited out there as well, not reported as "database is locked".
    @Test(.enabled(if: TestSupport.hasTool("python3"), "needs python3 to hold the database from another process"))
    func openingWaitsOutAnotherProcesssWriter() throws {
        let folder = try TestSupport.temporaryFolder("store-busy-open")
        let path = folder + "/emopipe.sqlite", held = folder + "/held"
        do { _ = try ProvenanceStore(path: path) }
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try #require(TestSupport.executable(named: "python3")))
        holder.arguments = ["-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None); db.execute('BEGIN EXCLUSIVE')
            open(sys.argv[2], 'w').close(); time.sleep(1.5); db.execute('COMMIT')
            """, path, held]
        try holder.run()
        defer { holder.waitUntilExit() }
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: held) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let started = Date()
        let opened = try ProvenanceStore(path: path, patience: .init(perAttempt: 0.2, total: 20))
        try opened.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                    threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        #expect(Date().timeIntervalSince(started) >= 0.5, "it waited for the holder")
        #expect(try opened.runs().map(\.id) == ["r1"])
    }

    /// A write-ahead log of another database beside an intact one makes it read as foreign: the message
    /// points at the log rather than advising to move the database away, and removing the log restores it.
    @Test(.enabled(if: TestSupport.hasTool("python3"), "needs python3 to leave a foreign write-ahead log"))
    func aForeignWriteAheadLogIsNamedAsTheLikelyCause() throws {
        let folder = try TestSupport.temporaryFolder("store-foreign-wal")
        let path = folder + "/emopipe.sqlite"
        do {
            let store = try ProvenanceStore(path: path)
            try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                       threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        }   // closed: checkpointed, its own log gone
        // Another database's uncheckpointed log, left as a killed process leaves it.
        let script = """
        import os, sqlite3, sys
        db = sqlite3.connect(sys.argv[1], isolation_level=None)
        db.execute('pragma journal_mode=wal'); db.execute('pragma wal_autocheckpoint=0'); db.execute('create table t(a)')
        for i in range(50): db.execute('insert into t values (?)', (os.urandom(500),))
        os._exit(0)
        """
        let other = folder + "/other.sqlite"
        let made = try TestSupport.run(try #require(TestSupport.executable(named: "python3")), ["-c", script, other])
        #expect(made.status == 0, "\(made.stderr)")
        try FileManager.default.copyItem(atPath: other + "-wal", toPath: path + "-wal")
        #expect(throws: EmoError.self) {
            do { _ = try ProvenanceStore(readingPath: path) } catch let error as EmoError {
                guard case .io(let named, let reason) = error else { throw error }
                #expect(named == path && reason.contains("\(path)-wal") && reason.contains("move \(path)-wal and \(path)-shm aside"),
                        "\(reason)")
                throw error
            }
        }
        try FileManager.default.removeItem(atPath: path + "-wal")
        try? FileManager.default.removeItem(atPath: path + "-shm")
        #expect(try ProvenanceStore(readingPath: path).runs().map(\.id) == ["r1"], "the database was intact")
    }

    /// An index whose entries no longer match its table answers lookups wrongly without any SQLite error:
    /// opening the database to write refuses it by name, says REINDEX rebuilds it, and after that it opens.
    @Test(.enabled(if: TestSupport.hasTool("python3"), "needs python3 to damage an index"))
    func aDamagedIndexIsFoundBeforeAnythingIsWritten() throws {
        let path = try TestSupport.temporaryFolder("store-index") + "/emopipe.sqlite"
        do {
            let store = try ProvenanceStore(path: path)
            try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                       threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
            try store.write { db in
                for i in 0..<3 { try SourceRecord(path: "/d/\(i).wav", sha256: "\(i)", size: 1, mtimeNanos: 1, status: .ok, reason: nil, runId: "r1").insert(db) }
            }
        }
        // The index's declared column changed under its entries: what a flipped page can do.
        let python = try #require(TestSupport.executable(named: "python3"))
        let damage = """
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1]); db.execute('pragma writable_schema=on')
        db.execute("update sqlite_master set sql = 'CREATE INDEX \\"source_on_clip\\" ON \\"source\\"(\\"path\\")' where name = 'source_on_clip'")
        db.commit()
        """
        #expect(try TestSupport.run(python, ["-c", damage, path]).status == 0)
        do {
            _ = try ProvenanceStore(path: path)
            Issue.record("a database with a damaged index was opened to write")
        } catch {
            #expect("\(error)".contains("\(path): the provenance database is damaged (SQLite's integrity_check: row 1 missing from index source_on_clip")
                    && "\(error)".contains("`sqlite3 \(path) REINDEX` rebuilds"), "\(error)")
        }
        #expect(try TestSupport.run(python, ["-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute('reindex'); db.commit()", path]).status == 0)
        #expect(try ProvenanceStore(path: path).runs().map(\.id) == ["r1"], "rebuilt, it opens")
    }

    /// `runs --limit N` reads only the N newest runs, not every run of a work directory.
    @Test func runsAreReadNewestFirstAndOnlyAsManyAsAsked() throws {
        let store = try ProvenanceStore(path: try TestSupport.temporaryFolder("store") + "/emopipe.sqlite")
        for (id, second) in [("r-middle", 20.0), ("r-newest", 30.0), ("r-oldest", 10.0)] {
            try store.insert(RunRecord(id: id, command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/", threads: 1,
                                       codeVersion: "t", host: "h", pid: 1, startedAt: Date(timeIntervalSince1970: second)))
        }
        #expect(try store.runs().map(\.id) == ["r-newest", "r-middle", "r-oldest"])
        #expect(try store.runs(limit: 2).map(\.id) == ["r-newest", "r-middle"])
        #expect(try store.runs(limit: 0).isEmpty)
    }

    @Test func aRowThatCannotBeDecodedNamesTheDatabaseAndColumnOnly() throws {
        let folder = try TestSupport.temporaryFolder("store")
        let store = try ProvenanceStore(path: folder + "/emopipe.sqlite")
        try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: String(repeating: "manifest text ", count: 500),
                                   manifestSHA256: "", dataRoot: "/", threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        try store.write { try $0.execute(sql: "UPDATE run SET startedAt = 'garbage'") }
        let error = #expect(throws: EmoError.self) { try store.runs() }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(folder + "/emopipe.sqlite") && text.contains("\"garbage\"") && text.contains("startedAt")
                && text.contains("the database was edited or is damaged") && !text.contains("manifest text") && text.count < 400, "\(text)")
    }

    /// A table or a column dropped by hand is named when the database is opened, for writing or
    /// reading, instead of SQLite's "no such table" in the middle of a run; the file is left as it is.
    @Test func aTableOrColumnDroppedByHandIsNamedWhenTheDatabaseIsOpened() throws {
        let cases = [("DROP TABLE failure", "has no table 'failure'"),
                     ("ALTER TABLE artifact DROP COLUMN sha256", "the table 'artifact' of the provenance database lacks the column sha256")]
        for (sql, said) in cases {
            let path = try TestSupport.temporaryFolder("dropped") + "/emopipe.sqlite"
            do {
                let store = try ProvenanceStore(path: path)
                try store.write { try $0.execute(sql: sql) }
            }
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            for open in [{ _ = try ProvenanceStore(path: path) }, { _ = try ProvenanceStore(readingPath: path) }] as [() throws -> Void] {
                let error = #expect(throws: EmoError.self) { try open() }
                let text = error.map { "\($0)" } ?? ""
                #expect(text.hasPrefix(path + ": ") && text.contains(said) && text.contains("restore it from a copy"), "\(sql): \(text)")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "\(sql): the database was changed")
        }
        // A database as the migrations left it passes, opened again.
        let intact = try TestSupport.temporaryFolder("intact") + "/emopipe.sqlite"
        _ = try ProvenanceStore(path: intact)
        _ = try ProvenanceStore(readingPath: intact)
    }

    /// The pool turns WAL on with synchronous = NORMAL, which syncs the log only at checkpoints: a file
    /// system that goes read-only (or a power cut) would then lose every commit since the last one.
    @Test func everyCommitIsSyncedToDisk() throws {
        let store = try ProvenanceStore(path: try TestSupport.temporaryFolder("synchronous") + "/emopipe.sqlite")
        #expect(try store.synchronousLevel == 2, "PRAGMA synchronous = FULL on the connection that writes")
    }

    /// A first run that stopped while making the database (a full disk) leaves GRDB's empty list of
    /// migrations and no table: the next run finishes making it rather than refusing the work directory.
    /// A database with a table of someone else's is still refused.
    @Test func aDatabaseWhoseMakingStoppedIsFinishedNotRefused() throws {
        /// What an older emopipe left when stopped while making the database: its WAL-mode file with an
        /// empty list of migrations, or (`noTable`) nothing at all in it yet.
        func leaveOnlyAnEmptyMigrationList(_ path: String, keeping table: String? = nil, noTable: Bool = false, extra: String? = nil) throws {
            let store = try ProvenanceStore(path: path)
            try store.write { db in
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                                                 + "AND name <> 'grdb_migrations'")
                for name in tables where name != table { try db.execute(sql: "DROP TABLE \"\(name)\"") }
                try db.execute(sql: noTable ? "DROP TABLE grdb_migrations" : "DELETE FROM grdb_migrations")
            }
            if let extra { try store.write { try $0.execute(sql: extra) } }
        }
        for open in [{ try ProvenanceStore(path: $0) }, { try ProvenanceStore(readingPath: $0) }] as [(String) throws -> ProvenanceStore] {
            for noTable in [false, true] {
                let path = try TestSupport.temporaryFolder("unfinished") + "/emopipe.sqlite"
                try leaveOnlyAnEmptyMigrationList(path, noTable: noTable)
                let store = try open(path)
                #expect(try store.runs().isEmpty)
            }
        }
        let path = try TestSupport.temporaryFolder("unfinished") + "/emopipe.sqlite"
        try leaveOnlyAnEmptyMigrationList(path)
        try ProvenanceStore(path: path).insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                                         threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        #expect(try ProvenanceStore(readingPath: path).runs().map(\.id) == ["r1"])

        // Someone else's: a table of theirs, or an empty file they marked as theirs.
        for (label, keeping, extra) in [("table", "run" as String?, nil as String?), ("marked", nil, "PRAGMA application_id = 1234")] {
            let someoneElses = try TestSupport.temporaryFolder("not-ours-\(label)") + "/emopipe.sqlite"
            try leaveOnlyAnEmptyMigrationList(someoneElses, keeping: keeping, noTable: keeping == nil, extra: extra)
            let refused = #expect(throws: EmoError.self) { try ProvenanceStore(path: someoneElses) }
            #expect(refused.map { "\($0)" }?.contains("without EmoPipe's schema") == true, "\(label): \(String(describing: refused))")
        }
    }

    /// A run row as these tests insert it.
    static func run(_ id: String = "r1", command: String = "test") -> RunRecord {
        RunRecord(id: id, command: command, manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                  threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date())
    }

    /// Text or a fraction edited into a number column (an exit code, a size, an actor) read as 0 or rounded
    /// without a word: refused naming the table, the column and the value, for reading and writing alike.
    @Test func aNumberColumnHoldingTextOrAFractionIsRefused() throws {
        for (edit, value, column) in [("UPDATE run SET exitCode = 'three'", "'three'", "exitCode"), ("UPDATE run SET threads = 2.5", "2.5", "threads"),
                                      ("UPDATE stageRun SET seconds = 'slow'", "'slow'", "seconds")] {
            let path = try TestSupport.temporaryFolder("mistyped") + "/emopipe.sqlite"
            do {
                let store = try ProvenanceStore(path: path)
                try store.insert(Self.run())
                try store.write { db in
                    try db.execute(sql: "INSERT INTO stageRun (runId, stage, fingerprint, startedAt, state, seconds) VALUES ('r1', 'ingest', 'f', '2026-12-06 07:00:00.000', 'done', 1.5)")
                }
                #expect(throws: Never.self) { _ = try ProvenanceStore(readingPath: path) }
                try store.write { try $0.execute(sql: edit) }
            }
            for open in [{ try ProvenanceStore(path: $0) }, { try ProvenanceStore(readingPath: $0) }] as [(String) throws -> ProvenanceStore] {
                let refused = #expect(throws: EmoError.self) { _ = try open(path) }
                #expect(refused.map { "\($0)" }?.contains("holds \(value) in its column '\(column)', which takes") == true, "\(edit): \(String(describing: refused))")
            }
        }
    }

    /// A database cut short (a copy that stopped halfway) is named as damaged, with what to do, whichever way it is
    /// opened: not in SQLite's own words alone.
    @Test func aDatabaseCutShortIsNamedAsDamaged() throws {
        let path = try TestSupport.temporaryFolder("cut-short") + "/emopipe.sqlite"
        do {
            let store = try ProvenanceStore(path: path)
            for i in 0..<400 { try store.insert(Self.run("r\(i)", command: String(repeating: "c", count: 200))) }
        }
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        for open in [{ try ProvenanceStore(path: $0) }, { try ProvenanceStore(readingPath: $0) }] as [(String) throws -> ProvenanceStore] {
            let refused = #expect(throws: EmoError.self) { _ = try open(path).runs() }
            #expect(refused.map { "\($0)" }?.contains("the provenance database is damaged") == true
                    && refused.map { "\($0)" }?.contains("restore it from a copy, or move it aside") == true, "\(String(describing: refused))")
        }
    }

    /// A database a newer EmoPipe migrated records a migration this one does not know: refused for reading and
    /// writing alike, and left as it is (it was used, and written to, without a word).
    @Test func aDatabaseOfANewerEmoPipeIsRefusedUntouched() throws {
        let path = try TestSupport.temporaryFolder("newer") + "/emopipe.sqlite"
        try ProvenanceStore(path: path).write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v999-from-a-newer-emopipe')") }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for open in [{ try ProvenanceStore(path: $0) }, { try ProvenanceStore(readingPath: $0) }] as [(String) throws -> ProvenanceStore] {
            let refused = #expect(throws: EmoError.self) { _ = try open(path) }
            #expect(refused.map { "\($0)" }?.contains("a newer EmoPipe made or upgraded this database (it records the migration 'v999-from-a-newer-emopipe'") == true,
                    "\(String(describing: refused))")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func aDamagedTablePageNamesTheDatabase() throws {
        let folder = try TestSupport.temporaryFolder("damaged")
        let path = folder + "/emopipe.sqlite"
        let root: Int, pageSize: Int
        do {
            let store = try ProvenanceStore(path: path)
            try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                       threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
            root = try store.read { try Int.fetchOne($0, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'run'") ?? 0 }
            pageSize = try store.read { try Int.fetchOne($0, sql: "PRAGMA page_size") ?? 0 }
        }
        // The store is closed: SQLite moved the write-ahead log into the file, so the page is there.
        #expect(root > 1 && !FileManager.default.fileExists(atPath: path + "-wal"))
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64((root - 1) * pageSize))
        try handle.write(contentsOf: Data([0x0d] + [UInt8](repeating: 0xff, count: 15)))
        try handle.close()
        let damagedBytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // Reading it finds the damage (opening, where number columns are checked); opening it to write finds it first
        // (the integrity check).
        for attempt in [{ _ = try ProvenanceStore(readingPath: path).runs() }, { _ = try ProvenanceStore(path: path) }] as [() throws -> Void] {
            let error = try #require(throws: EmoError.self) { try attempt() }
            guard case .io(let named, let reason) = error else { Issue.record("\(error)"); return }
            #expect(named == path)
            #expect(reason.contains("the provenance database is damaged") && reason.contains("malformed"), "\(reason)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damagedBytes, "left as it is")
    }
}
