import EmoCore
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("workspace")
struct WorkspaceTests {
    /// A folder standing where a file is published is named with what to do, and nothing is left behind.
    @Test func aFolderWhereAFileIsPublishedIsNamed() throws {
        let folder = try TestSupport.temporaryFolder("publish")
        try FileManager.default.createDirectory(atPath: folder + "/metrics.json", withIntermediateDirectories: false)
        let error = #expect(throws: CacheError.self) { try DurableFile.write(Data("{}".utf8), to: folder + "/metrics.json") }
        #expect(error == .io(path: folder + "/metrics.json", reason: "is a folder where a file should be: move or remove it"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["metrics.json"], "no temporary file left")
    }

    /// A remembered data root that cannot even be looked for (a path too long to name it) is said as such: the
    /// message blamed the file's contents and advised removing it.
    @Test func aRememberedDataRootThatCannotBeLookedForIsSaidSo() throws {
        let root = try TestSupport.temporaryFolder("long") + "/" + Array(repeating: String(repeating: "d", count: 250), count: 17).joined(separator: "/")
        let thrown = try #require(throws: EmoError.self) { try Workspace(root: root).rememberedDataRoot() }
        #expect("\(thrown)".contains("data-root.txt: cannot be looked for: File name too long") && !"\(thrown)".contains("remove it"), "\(thrown)")
        #expect(try Workspace(root: try TestSupport.temporaryFolder("short")).rememberedDataRoot() == nil, "absent: nothing remembered")
    }

    /// A recorded artifact path is found where the work directory now is, under the folder it was in
    /// (also in a worker's folder inside it); never outside the work directory, whatever the row says.
    @Test func aRecordedPathIsFoundWhereTheWorkDirectoryNowIs() throws {
        let root = try TestSupport.temporaryFolder("moved")
        let w = Workspace(root: root + "/now")
        for file in ["runs/r1/model.onnx", "workers/0-of-2/cache/train/abc/fold-0/model.json"] {
            try Folder.create((w.path(file) as NSString).deletingLastPathComponent)
            try Data().write(to: URL(fileURLWithPath: w.path(file)))
        }
        try Data().write(to: URL(fileURLWithPath: root + "/outside"))
        #expect(w.whereNow(recorded: root + "/outside") == root + "/outside", "a path that is there stays")
        #expect(w.whereNow(recorded: "/old/runs/place/runs/r1/model.onnx") == w.path("runs/r1/model.onnx"))
        #expect(w.whereNow(recorded: "/old/work/workers/0-of-2/cache/train/abc/fold-0/model.json")
                == w.path("workers/0-of-2/cache/train/abc/fold-0/model.json"))
        #expect(w.whereNow(recorded: "/old/work/runs/r2/model.onnx") == nil, "gone")
        #expect(w.whereNow(recorded: "/old/work/runs/../../outside") == nil, "not led out by ..")
        // A copy's rows name the original's files, still there: this work directory's own are shown.
        let original = root + "/original"
        try Folder.create(original + "/runs/r1")
        try Data().write(to: URL(fileURLWithPath: original + "/runs/r1/model.onnx"))
        #expect(w.whereNow(recorded: original + "/runs/r1/model.onnx") == w.path("runs/r1/model.onnx"))
        #expect(w.whereNow(recorded: original + "/runs/r1/model.onnx") != nil && w.whereNow(recorded: w.path("runs/r9/x")) == nil)
    }

    /// The layout existing work directories have on disk: moving it would orphan their cache and runs.
    @Test func spellsTheLayoutExistingWorkDirectoriesHave() throws {
        let w = Workspace(root: "/w/./work/")
        let fingerprint = "0123456789abcdef" + String(repeating: "9", count: 48)
        #expect(w.root == "/w/work")
        #expect(w.databasePath == "/w/work/emopipe.sqlite")
        #expect(w.lockPath == "/w/work/emopipe.lock")
        #expect(w.executableHashPath == "/w/work/executable.sha256")
        #expect(w.relativeCacheFolder(stage: "audio", fingerprint: fingerprint) == "cache/audio/0123456789abcdef")
        #expect(w.relativeCachePath("audio/0123456789abcdef/r-00001.shard") == "cache/audio/0123456789abcdef/r-00001.shard")
        #expect(w.path("cache/audio/x.shard") == "/w/work/cache/audio/x.shard")
        #expect(w.cacheRoot == "/w/work/cache")
        #expect(w.trainFoldFolder(fingerprint: fingerprint, fold: 3) == "/w/work/cache/train/0123456789abcdef/fold-3")
        #expect(Workspace.fold(folderName: "fold-12") == 12 && Workspace.fold(folderName: "fold-x") == nil
                && Workspace.fold(folderName: "model.json") == nil)
        #expect(w.splitPlanPath(fingerprint: fingerprint) == "/w/work/cache/split/0123456789abcdef.json")
        #expect(w.runFolder("20261125-131800-ab12cd") == "/w/work/runs/20261125-131800-ab12cd")
        #expect(w.datasetListingPath(runId: "r") == "/w/work/runs/r/dataset.tsv")
        #expect(w.manifestCopyPath(runId: "r") == "/w/work/runs/r/manifest.yaml")
        #expect(w.nightlyReportPath(runId: "r", fileExtension: "md") == "/w/work/nightly/r.md")
        #expect(w.nightlyLatestPath == "/w/work/nightly/LATEST")
        #expect(w.worker(index: 1, count: 4).root == "/w/work/workers/1-of-4")
        #expect(w.workerMarkerPath == "/w/work/worker.txt")
        #expect(w.reproduction(of: "r", stamp: "17").root == "/w/work/reproductions/r-17")
    }

    @Test func aRunReferenceIsAFolderWhenOneExistsElseARunId() throws {
        let folder = try TestSupport.temporaryFolder("workspace")
        let w = Workspace(root: folder + "/work")
        #expect(w.runFolder(reference: "20261125-131800-ab12cd") == w.runFolder("20261125-131800-ab12cd"))
        #expect(w.runFolder(reference: folder) == folder)
        #expect(Workspace.runId(reference: folder + "/runs/abc") == "abc")
    }

    // MARK: The database file

    /// A database name that is a link leading nowhere (a loop, a target gone or on a disk not mounted) is
    /// named as such by every command: status said "no work directory yet" over a work directory's cache
    /// and runs, exit 0, and run "read-only".
    @Test func aDatabaseLinkThatLeadsNowhereIsNamed() throws {
        for (target, why) in [("emopipe.sqlite", "Too many levels of symbolic links"), ("/nonexistent-emopipe/db", "No such file or directory")] {
            let workspace = Workspace(root: try TestSupport.temporaryFolder("database-link"))
            try FileManager.default.createSymbolicLink(atPath: workspace.databasePath, withDestinationPath: target)
            #expect(workspace.exists, "something is there")
            for access in [Workspace.Access.readOnly, .readWrite] {
                let error = try #require(throws: EmoError.self) { try workspace.openStore(access) }
                #expect("\(error)" == "\(workspace.databasePath): a link to \(target) that cannot be followed (\(why)): restore or mount what it leads to, or remove the link",
                        "\(error)")
            }
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: workspace.databasePath) == target, "left as it is")
        }
    }

    /// A zero-byte `emopipe.sqlite` used to be taken for a new database, hiding every earlier run.
    @Test func aZeroByteDatabaseIsRefusedAndLeftAsItIs() throws {
        let w = Workspace(root: try TestSupport.temporaryFolder("workspace"))
        #expect(FileManager.default.createFile(atPath: w.databasePath, contents: Data()))
        for access in [Workspace.Access.readWrite, .readOnly] {
            let error = try #require(throws: EmoError.self) { try w.openStore(access) }
            #expect("\(error)".hasPrefix(w.databasePath + ": "), "names the file: \(error)")
            #expect("\(error)".contains("empty (0 bytes)"))
        }
        #expect(try FileManager.default.attributesOfItem(atPath: w.databasePath)[.size] as? Int == 0)
        #expect(!FileManager.default.fileExists(atPath: w.databasePath + "-wal"))
    }

    @Test func aFileThatIsNotSQLiteIsRefusedAndLeftAsItIs() throws {
        let w = Workspace(root: try TestSupport.temporaryFolder("workspace"))
        let text = Data("these are my notes, not a database\n".utf8)
        try text.write(to: URL(fileURLWithPath: w.databasePath))
        let error = try #require(throws: EmoError.self) { try w.openStore(.readWrite) }
        #expect("\(error)".hasPrefix(w.databasePath + ": ") && "\(error)".contains("not an SQLite database"), "\(error)")
        #expect(FileManager.default.contents(atPath: w.databasePath) == text)
    }

    /// Another program's SQLite database: never put in WAL mode or migrated over.
    @Test func anSQLiteDatabaseWithoutEmoPipesSchemaIsRefusedAndLeftAsItIs() throws {
        let w = Workspace(root: try TestSupport.temporaryFolder("workspace"))
        try TestSupport.shell("python3 -c \"import sqlite3; c = sqlite3.connect('\(w.databasePath)'); "
                              + "c.execute('CREATE TABLE notes (body TEXT)'); c.execute(\\\"INSERT INTO notes VALUES ('keep me')\\\"); "
                              + "c.commit(); c.close()\"")
        let before = try #require(FileManager.default.contents(atPath: w.databasePath))
        for access in [Workspace.Access.readWrite, .readOnly] {
            let error = try #require(throws: EmoError.self) { try w.openStore(access) }
            #expect("\(error)".hasPrefix(w.databasePath + ": ") && "\(error)".contains("without EmoPipe's schema"), "\(error)")
        }
        #expect(FileManager.default.contents(atPath: w.databasePath) == before)
    }

    /// Opening the database again in the same process (a command that opens a second store, a test
    /// beside the command line) must not cost the first connection its locks: reading the header
    /// through a descriptor of its own and closing it dropped them, so another process closing the
    /// database took itself for the last user and removed the write-ahead log, and the first
    /// connection's later commits went into a deleted file.
    @Test func aSecondOpenInOneProcessLeavesTheFirstConnectionsCommitsVisibleToOthers() throws {
        let w = Workspace(root: try TestSupport.temporaryFolder("workspace"))
        let first = try w.openStore(.readWrite)
        func run(_ id: String) -> RunRecord {
            RunRecord(id: id, command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                      threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date())
        }
        try first.insert(run("before"))
        for access in [Workspace.Access.readWrite, .readOnly] { _ = try w.openStore(access).runs() }
        // Another process opens the database and closes it.
        let other = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            + "print(','.join(r[0] for r in c.execute('SELECT id FROM run ORDER BY id'))); c.close()"
        #expect(try TestSupport.run("/usr/bin/python3", ["-c", other, w.databasePath]).stdout == "before\n")
        try first.insert(run("after"))
        #expect(try TestSupport.run("/usr/bin/python3", ["-c", other, w.databasePath]).stdout == "after,before\n")
        #expect(try first.runs().map(\.id).sorted() == ["after", "before"])
    }

    @Test func aMissingDatabaseIsCreatedForWritingAndNamedForReading() throws {
        let w = Workspace(root: try TestSupport.temporaryFolder("workspace"))
        let error = try #require(throws: EmoError.self) { try w.openStore(.readOnly) }
        #expect("\(error)".contains("no work directory here yet"))
        #expect(!w.exists)
        let store = try w.openStore(.readWrite)
        try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                   threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        #expect(w.exists)
        let reader = try w.openStore(.readOnly)
        #expect(try reader.runs().map(\.id) == ["r1"])
        #expect(throws: (any Error).self) { try reader.markInterruptedRuns() }
    }

    /// A work directory's folders without its database (removed, or not copied with them) are named as that,
    /// not as no work directory yet.
    @Test func aDatabaseGoneFromBesideItsFoldersIsNamed() throws {
        let w = Workspace(root: try TestSupport.temporaryFolder("workspace"))
        #expect(w.missingDatabase == nil, "nothing of a work directory: nothing missing")
        try w.create()
        let error = try #require(throws: EmoError.self) { try w.openStore(.readOnly) }
        #expect("\(error)".contains("cache/ and runs/ are here but not emopipe.sqlite, the provenance database that records them"), "\(error)")
        _ = try w.openStore(.readWrite)
        #expect(w.missingDatabase == nil)
    }
}
