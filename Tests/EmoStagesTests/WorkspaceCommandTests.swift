import EmoCore
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// The work directory as commands meet it: a database that is not EmoPipe's, a read-only work
/// directory, and the one JSON convention of everything printed and written.
@Suite("workspace commands", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct WorkspaceCommandTests {
    @Test func aZeroByteDatabaseIsRefusedByEveryCommandAndLeftAsItIs() throws {
        let data = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("workspace") + "/work"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        let database = workdir + "/emopipe.sqlite"
        #expect(FileManager.default.createFile(atPath: database, contents: Data()))
        for args in [["run"], ["status"], ["sources"], ["runs"], ["cache", "stats"]] {
            let result = try IngestFixture.emopipe(args, data: data, workdir: workdir)
            #expect(result.status == 1, "\(args): \(result.stderr)")
            #expect(result.stderr.contains(database + ": the provenance database is empty (0 bytes)"), "\(args): \(result.stderr)")
        }
        #expect(try FileManager.default.attributesOfItem(atPath: database)[.size] as? Int == 0)
        #expect(!FileManager.default.fileExists(atPath: database + "-wal"))
        // Nothing is made beside it but the lock: no cache or runs folder it never had.
        let made = try FileManager.default.contentsOfDirectory(atPath: workdir).filter { !$0.hasPrefix(".") }.sorted()
        #expect(made == ["emopipe.lock", "emopipe.sqlite"], "\(made)")
    }

    @Test func anotherProgramsSQLiteDatabaseIsRefusedAndLeftAsItIs() throws {
        let data = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("workspace") + "/work"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        let database = workdir + "/emopipe.sqlite"
        try TestSupport.shell("python3 -c \"import sqlite3; c = sqlite3.connect('\(database)'); "
                              + "c.execute('CREATE TABLE notes (body TEXT)'); c.commit(); c.close()\"")
        let before = try TestSupport.sha256sum(database)
        for args in [["run"], ["status"], ["runs"]] {
            let result = try IngestFixture.emopipe(args, data: data, workdir: workdir)
            #expect(result.status == 1, "\(args): \(result.stderr)")
            #expect(result.stderr.contains(database + ": an SQLite database without EmoPipe's schema"), "\(args): \(result.stderr)")
        }
        #expect(try TestSupport.sha256sum(database) == before)
        #expect(!FileManager.default.fileExists(atPath: database + "-wal"))
    }

    /// Commands that only read open the database read-only: they used to fail with SQLite error 14
    /// where the folder cannot take SQLite's `-shm` file. Read-only right after a run (no `-wal` or
    /// `-shm` beside the database), then again with the ones a reader leaves, each command prints
    /// what it prints while the work directory is writable.
    @Test func aReadOnlyWorkDirectoryCanBeInspected() throws {
        let data = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("workspace") + "/work"
        let run = try IngestFixture.emopipe(["run", "--until", "ingest"], data: data, workdir: workdir)
        try #require(run.status == 0, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite-shm"), "the run closed its log")
        let source = data + "/Actor_01/03-01-01-01-01-01-01.wav"
        let commands = [["status"], ["sources"], ["sources", "--json"], ["runs"], ["runs", "--json"], ["show", source], ["cache", "stats"],
                        ["cache", "gc", "--dry-run"]]
        func inspect() throws -> [String] {
            try commands.map { args in
                let result = try IngestFixture.emopipe(args, data: data, workdir: workdir)
                #expect(result.status == 0, "\(args): \(result.stderr)")
                return result.stdout
            }
        }
        func readOnly<T>(_ body: () throws -> T) throws -> T {
            let restore = try ReadOnlyFolder.make(workdir)
            defer { restore() }
            #expect(throws: (any Error).self, "the folder really is read-only") {
                try Data().write(to: URL(fileURLWithPath: workdir + "/probe"))
            }
            return try body()
        }
        let fresh = try readOnly(inspect)
        let writable = try inspect()
        #expect(FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite-shm"), "readers leave SQLite's -shm")
        let afterReaders = try readOnly(inspect)
        for (i, args) in commands.enumerated() {
            #expect(!writable[i].isEmpty, "\(args) printed something")
            #expect(fresh[i] == writable[i] && afterReaders[i] == writable[i], "\(args) prints the same")
        }
        let refused = try readOnly { try IngestFixture.emopipe(["run", "--until", "ingest"], data: data, workdir: workdir) }
        #expect(refused.status == 1 && refused.stderr.contains("emopipe.lock"), "a run cannot write here: \(refused.stderr)")
        let verify = try readOnly { try IngestFixture.emopipe(["cache", "verify"], data: data, workdir: workdir) }
        // Said as what it is: a read-only mount (root), or files this user may not write (chmod).
        let why = getuid() == 0 ? "the work directory is on a read-only file system" : "may not be written by this user"
        #expect(verify.status == 1 && verify.stderr.contains("emopipe.sqlite: cannot be written (") && verify.stderr.contains(why),
                "\(verify.stderr)")
    }

    /// Everything printed or written as JSON: snake_case keys, and no escaped slashes.
    @Test func everyJSONOutputUsesSnakeCaseKeysAndPlainSlashes() throws {
        let (manifest, workdir) = try TrainEvaluateTests.copyOfPrepared()
        let nightly = try TestSupport.run(TestSupport.emopipe, ["nightly", manifest, "--workdir", workdir, "--json"])
        try #require(nightly.status == 0, "\(nightly.stderr)")
        let runFolder = try TrainEvaluateTests.lastRunFolder(workdir)
        let source = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").sources(status: .ok).first).path
        var documents: [(String, String)] = [("nightly --json", nightly.stdout)]
        for args in [["runs", "--json"], ["sources", "--json"], ["status", manifest, "--json"],
                     ["cache", "get", manifest, "--stage", "audio", "--source", source, "--json"], ["cache", "stats", "--json"],
                     ["predict", "--run", runFolder, "--json", source]] {
            let result = try TestSupport.run(TestSupport.emopipe, args + ["--workdir", workdir])
            try #require(result.status == 0, "\(args): \(result.stderr)")
            documents.append((args.joined(separator: " "), result.stdout))
        }
        let files = try TestSupport.shell("ls '\(runFolder)'/*.json '\(workdir)'/nightly/*.json")
            .split(separator: "\n").map(String.init)
        #expect(files.contains { $0.hasSuffix("/model.json") } && files.contains { $0.hasSuffix("/features.json") }
                && files.contains { $0.hasSuffix("/metrics.json") })
        for file in files { documents.append((file, try String(contentsOfFile: file, encoding: .utf8))) }

        for (name, text) in documents {
            #expect(!text.contains("\\/"), "\(name) escapes a slash")
            let document = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            let camel = Self.keys(of: document).filter { $0.range(of: "[a-z0-9][A-Z]", options: .regularExpression) != nil }
            #expect(camel.isEmpty, "\(name) has camelCase keys: \(camel.sorted())")
        }
    }

    /// Every object key in a JSON document, however deep.
    static func keys(of value: Any) -> Set<String> {
        if let object = value as? [String: Any] {
            return object.reduce(into: Set(object.keys)) { $0.formUnion(keys(of: $1.value)) }
        }
        if let array = value as? [Any] { return array.reduce(into: Set<String>()) { $0.formUnion(keys(of: $1)) } }
        return []
    }
}

/// Makes a folder read-only for this process: permissions for an ordinary user; for root, whom
/// permissions do not stop, a read-only bind mount of the folder over itself.
enum ReadOnlyFolder {
    static func make(_ folder: String) throws -> () -> Void {
        if getuid() != 0 {
            try TestSupport.shell("chmod -R a-w '\(folder)'")
            return { _ = try? TestSupport.shell("chmod -R u+w '\(folder)'") }
        }
        try TestSupport.shell("mount --bind -o ro '\(folder)' '\(folder)'")
        return { _ = try? TestSupport.shell("umount '\(folder)'") }
    }
}
