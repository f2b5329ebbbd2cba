import EmoCore
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// The command line as a new user meets it (issue 14, part 3): the remembered data root, SHA-256
/// prefixes in `show`, the two fingerprints' names, help and usage errors, and `cache get` on a
/// source the stage does not take. Each test ingests actors 01-02 (cheap); none runs a feature stage.
@Suite("command-line edges", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct CommandLineEdgesTests {
    static let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"

    /// A work directory in which `run --data DATA --until ingest` finished.
    static func ingested(_ label: String, prepare: (String) throws -> Void = { _ in }) throws -> (data: String, workdir: String) {
        let data = try IngestFixture.dataRoot()
        try prepare(data)
        let workdir = try TestSupport.temporaryFolder(label) + "/work"
        let run = try IngestFixture.emopipe(["run", "--until", "ingest"], data: data, workdir: workdir)
        // 3 when the test added a file ingest refuses.
        try #require(run.status == 0 || run.status == 3, "\(run.stderr)")
        #expect(run.stderr.contains("data root \(data) (from --data)"), "\(run.stderr)")
        // The summary ends with the run's CPU and peak, the largest stage's (the only one here).
        #expect(run.stderr.range(of: #"  in all: cpu [0-9.]+ s, peak RSS ([0-9]+ MB \(ingest\)|unknown)"#, options: .regularExpression) != nil, "\(run.stderr)")
        return (data, workdir)
    }

    static func emopipe(_ arguments: [String], workdir: String? = nil) throws -> TestSupport.ProcessResult {
        try TestSupport.run(TestSupport.emopipe, arguments + (workdir.map { ["--workdir", $0] } ?? []))
    }

    /// `status --json` by stage.
    static func states(_ result: TestSupport.ProcessResult) throws -> [String: String] {
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]], "\(result.stderr)")
        return Dictionary(uniqueKeysWithValues: rows.compactMap { row in
            (row["stage"] as? String).map { ($0, row["state"] as? String ?? "") }
        })
    }

    /// A source whose database row was edited to codes its name does not give is left out of the clips, and `cache get`
    /// says so (it said the clip had no speech file).
    @Test func cacheGetNamesASourceWhoseRowContradictsItsName() throws {
        let (data, workdir) = try Self.ingested("contradicted")
        let source = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/Actor_01").sorted().first { $0.hasPrefix("03-") })
        let path = data + "/Actor_01/" + source
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        try store.write { try $0.execute(sql: "UPDATE source SET emotion = CASE emotion WHEN 5 THEN 6 ELSE 5 END WHERE path = ?", arguments: [path]) }
        let audio = try IngestFixture.emopipe(["run", "--until", "audio"], data: data, workdir: workdir)
        #expect(audio.status == 0, "\(audio.stderr)")
        let got = try Self.emopipe(["cache", "get", Self.manifest, "--stage", "audio", "--source", path, "--json"], workdir: workdir)
        #expect(got.status == 1 && got.stderr.contains("\(path): the source is known but its database row gives the codes ")
                && got.stderr.contains("(the row was edited?), so no stage takes it: `emopipe run --force ingest`"), "\(got.stderr)")
    }

    // MARK: The remembered data root

    /// Status without a manifest judges by the default one: when the last run used another, every stage
    /// it set differently looks stale, so a note names the run's manifest and the command to judge by it.
    @Test func statusWithoutAManifestSaysWhenTheLastRunUsedAnother() throws {
        let (data, workdir) = try Self.ingested("other-manifest")
        let root = TestSupport.repositoryRoot
        let judged = try TestSupport.run(TestSupport.emopipe, ["status", "--workdir", workdir], currentDirectory: root)
        #expect(judged.status == 0, "\(judged.stderr)")
        #expect(judged.stderr.contains("note: judged against \(root)/manifests/default.yaml, the default manifest; the last run here (")
                && judged.stderr.contains("used \(Self.manifest): `emopipe status \(Self.manifest) --workdir \(workdir)` judges against it"), "\(judged.stderr)")
        // cache get, judging by the default manifest, finds no record: the note names the run's manifest there too.
        let source = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/Actor_01").sorted().first { $0.hasPrefix("03-") })
        let got = try TestSupport.run(TestSupport.emopipe, ["cache", "get", "--stage", "audio", "--source", data + "/Actor_01/" + source,
                                                            "--json", "--workdir", workdir], currentDirectory: root)
        #expect(got.status == 1 && got.stderr.contains("note: judged against \(root)/manifests/default.yaml, the default manifest")
                && got.stderr.contains("`emopipe cache get \(Self.manifest) --stage audio --source \(data)/Actor_01/\(source) --json --workdir \(workdir)`"),
                "\(got.stderr)")
        // A failure the manifest has no part in gets no note.
        let unknown = try TestSupport.run(TestSupport.emopipe, ["cache", "get", "--stage", "audio", "--source", "/no/such.wav", "--json", "--workdir", workdir],
                                          currentDirectory: root)
        #expect(unknown.status != 0 && !unknown.stderr.contains("note:"), "\(unknown.stderr)")
        // The suggestion is a command to paste: a recorded path is quoted for the shell; one gone is said to be gone.
        let odd = try TestSupport.temporaryFolder("odd-manifest") + "/it's $(touch x).yaml"
        #expect(FileManager.default.createFile(atPath: odd, contents: Data()))
        _ = try TestSupport.shell("python3 -c \"import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE run SET manifestPath = ?', (sys.argv[2],)); c.commit()\" '\(workdir)/emopipe.sqlite' \"\(odd.replacingOccurrences(of: "$", with: "\\$"))\"")
        let quoted = try TestSupport.run(TestSupport.emopipe, ["status", "--workdir", workdir], currentDirectory: root)
        #expect(quoted.stderr.contains("`emopipe status '\(odd.replacingOccurrences(of: "'", with: "'\\''"))' --workdir \(workdir)`"), "\(quoted.stderr)")
        try FileManager.default.removeItem(atPath: odd)
        let gone = try TestSupport.run(TestSupport.emopipe, ["status", "--workdir", workdir], currentDirectory: root)
        #expect(gone.stderr.contains("used \(odd), which is no longer there") && !gone.stderr.contains("judges against it"), "\(gone.stderr)")
        // A control character is spelt as bash's $'…' spells it: the pasted word names the same file.
        let broken = (odd as NSString).deletingLastPathComponent + "/new\nline's \u{1B}[2J.yaml"
        #expect(FileManager.default.createFile(atPath: broken, contents: Data()))
        let edit = try TestSupport.run("/usr/bin/env", ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                                                        + "c.execute('UPDATE run SET manifestPath = ?', (sys.argv[2],)); c.commit()", workdir + "/emopipe.sqlite", broken])
        #expect(edit.status == 0, "\(edit.stderr)")
        let spelt = try TestSupport.run(TestSupport.emopipe, ["status", "--workdir", workdir], currentDirectory: root)
        let word = try #require(spelt.stderr.components(separatedBy: "`emopipe status ").dropFirst().first?.components(separatedBy: " --workdir").first,
                                "\(spelt.stderr)")
        #expect(word.hasPrefix("$'") && !word.contains("\n") && !word.contains("\u{1B}"), "\(word)")
        #expect(try TestSupport.run("/bin/bash", ["-c", "printf %s " + word]).stdout == broken, "\(word)")
        _ = try TestSupport.shell("python3 -c \"import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE run SET manifestPath = ?', (sys.argv[2],)); c.commit()\" '\(workdir)/emopipe.sqlite' '\(Self.manifest)'")
        // Outside the checkout the default manifest is not there: the refusal comes with the run's own.
        let elsewhere = try TestSupport.run(TestSupport.emopipe, ["status", "--workdir", workdir], currentDirectory: try TestSupport.temporaryFolder("elsewhere"))
        #expect(elsewhere.status == 64 && elsewhere.stderr.contains("note: no manifest was given, and manifests/default.yaml is not in this folder; "
                                                                     + "the last run here used \(Self.manifest)"), "\(elsewhere.stderr)")
        // Named, or the same as the run's, there is nothing to say.
        let named = try TestSupport.run(TestSupport.emopipe, ["status", Self.manifest, "--workdir", workdir], currentDirectory: root)
        #expect(named.status == 0 && !named.stderr.contains("note: judged against"), "\(named.stderr)")
        let fresh = try TestSupport.temporaryFolder("fresh") + "/work"
        let nothingRan = try TestSupport.run(TestSupport.emopipe, ["status", "--workdir", fresh], currentDirectory: root)
        #expect(nothingRan.status == 0 && !nothingRan.stderr.contains("note: judged against"), "\(nothingRan.stderr)")
    }

    @Test func statusWithoutDataJudgesTheRootTheLastRunWasGivenAndSaysSo() throws {
        let fresh = try TestSupport.temporaryFolder("fresh") + "/work"
        let before = try Self.emopipe(["status", Self.manifest, "--json"], workdir: fresh)
        #expect(before.stderr.contains("(the manifest's data)"), "nothing remembered yet: \(before.stderr)")

        let (data, workdir) = try Self.ingested("remembered")
        #expect(try Workspace(root: workdir).rememberedDataRoot() == data)
        let status = try Self.emopipe(["status", Self.manifest, "--json"], workdir: workdir)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stderr.contains("data root \(data) (remembered by the work directory"), "\(status.stderr)")
        #expect(try Self.states(status)["ingest"] == "up-to-date", "\(status.stdout)")
        let plan = try Self.emopipe(["run", Self.manifest, "--until", "ingest", "--dry-run", "--json"], workdir: workdir)
        #expect(plan.status == 0, "\(plan.stderr)")
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [[String: Any]])
        #expect(planned.first { $0["stage"] as? String == "ingest" }?["action"] as? String == "up-to-date", "\(plan.stdout)")

        // An explicit --data wins, and status (which changes nothing) does not make it the remembered one.
        let other = try TestSupport.temporaryFolder("other-data")
        let elsewhere = try Self.emopipe(["status", Self.manifest, "--json", "--data", other], workdir: workdir)
        #expect(elsewhere.stderr.contains("data root \(other) (from --data)"), "\(elsewhere.stderr)")
        #expect(try Self.states(elsewhere)["ingest"] != "up-to-date", "\(elsewhere.stdout)")
        #expect(try Workspace(root: workdir).rememberedDataRoot() == data)

        // A run given another --data is remembered in its turn.
        let moved = try IngestFixture.dataRoot()
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: moved, workdir: workdir).status == 0)
        #expect(try Workspace(root: workdir).rememberedDataRoot() == moved)
        let after = try Self.emopipe(["status", Self.manifest], workdir: workdir)
        #expect(after.stderr.contains("data root \(moved) (remembered"), "\(after.stderr)")

        // An empty --data would be the current directory, remembered: it is refused, nothing is remembered.
        for command in ["run", "status"] {
            let empty = try Self.emopipe([command, Self.manifest, "--data", ""], workdir: workdir)
            #expect(empty.status == 64 && empty.stderr.contains("--data \"\": expected the data root's folder"), "\(command): \(empty.stderr)")
            // Longer than a path can be: refused by name, cut short, before any lookup.
            let long = "/tmp/" + String(repeating: "d", count: 5000)
            let tooLong = try Self.emopipe([command, Self.manifest, "--data", long], workdir: workdir)
            #expect(tooLong.status == 64 && tooLong.stderr.contains("argument 4, after --data, is 5005 bytes long, longer than a path can be (at most \(PATH_MAX - 1) bytes)")
                    && tooLong.stderr.contains("… (5005 characters)") && tooLong.stderr.count < 600, "\(command): \(tooLong.stderr.prefix(400))")
        }
        // A --data that is not a folder is refused before anything runs: no run is recorded, and it
        // is not left for the commands after it.
        let runsBefore = try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().count
        let aFile = try TestSupport.temporaryFolder("not-a-folder") + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: aFile))
        let loop = aFile + "-loop"
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: loop)
        let why = ["/nonexistent-emopipe-root": "does not exist", aFile: "is not a folder", loop: "cannot be reached (Too many levels of symbolic links)"]
        for root in ["/nonexistent-emopipe-root", aFile, loop] {
            for command in [["run", Self.manifest, "--until", "ingest"], ["run", Self.manifest, "--dry-run"], ["nightly", Self.manifest],
                            ["run", Self.manifest, "--only", "audio", "--force", "audio"], ["run", Self.manifest, "--only", "split"],
                            // Every run records the sources under its root as its dataset: evaluate's too.
                            ["run", Self.manifest, "--only", "evaluate"]] {
                let missing = try Self.emopipe(command + ["--data", root], workdir: workdir)
                #expect(missing.status == 64 && missing.stderr.contains("data root \(root) (from --data)\nemopipe: \(root): the data root (--data) \(why[root]!)"),
                        "\(command): \(missing.stderr)")
            }
            // status reports all the same (ingest is stale against it) and says what a run would do.
            let status = try Self.emopipe(["status", Self.manifest, "--data", root], workdir: workdir)
            #expect(status.status == 0 && status.stdout.contains("ingest    stale")
                    && status.stderr.contains("emopipe: warning: \(root): the data root (--data) \(why[root]!); `run` refuses it (exit 64)"),
                    "\(status.stderr)")
        }
        // A manifest's own data root is named with the manifest it came from.
        let noRootFolder = try TestSupport.temporaryFolder("no-root")
        let noRoot = try TestSupport.writeManifest(at: noRootFolder + "/no-root.yaml", data: noRootFolder + "/gone", "seed: 1")
        let fromManifest = try Self.emopipe(["run", noRoot, "--until", "ingest"], workdir: noRootFolder + "/work")
        #expect(fromManifest.status == 64 && fromManifest.stderr.contains(
            "emopipe: \(noRootFolder)/gone: the data root (given by \(noRoot)) does not exist"), "\(fromManifest.stderr)")
        #expect(try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().count == runsBefore)
        #expect(try Workspace(root: workdir).rememberedDataRoot() == moved)

        // The root last ingested, gone (an unmounted disk) or emptied: status still reports, ingest stale saying why.
        try FileManager.default.moveItem(atPath: moved, toPath: moved + "-away")
        let gone = try Self.emopipe(["status", Self.manifest], workdir: workdir)
        #expect(gone.status == 0 && gone.stdout.contains("ingest    stale") && gone.stdout.contains("the data root cannot be ingested now: ")
                && gone.stderr.contains("`run` refuses it (exit 64)"), "\(gone.stdout) \(gone.stderr)")
        try FileManager.default.createDirectory(atPath: moved, withIntermediateDirectories: true)
        let empty = try Self.emopipe(["status", Self.manifest, "--json"], workdir: workdir)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(empty.stdout.utf8)) as? [[String: Any]], "\(empty.stderr)")
        let ingest = try #require(rows.first { $0["stage"] as? String == "ingest" })
        #expect(empty.status == 0 && ingest["state"] as? String == "stale"
                && (ingest["reason"] as? String ?? "").contains("the data root holds no RAVDESS file"), "\(ingest)")
        try FileManager.default.removeItem(atPath: moved)
        try FileManager.default.moveItem(atPath: moved + "-away", toPath: moved)
    }

    /// A data-root.txt that is not one absolute path (garbage, many lines, a NUL, megabytes) is
    /// refused by name (exit 1) without being read whole; `--data` still works past it.
    @Test func aDamagedRememberedRootIsRefusedByNameAndDataStillWins() throws {
        let (data, workdir) = try Self.ingested("damaged-root")
        let file = Workspace(root: workdir).dataRootPath
        let damaged: [(String, Data)] = [
            ("binary", Data([0xff, 0xfe, 0x00, 0x41])), ("two lines", Data((data + "\n" + data + "\n").utf8)),
            ("a NUL", Data((data + "\u{0}x").utf8)), ("relative", Data("data\n".utf8)),
            ("10 MB", Data(repeating: UInt8(ascii: "a"), count: 10_000_000)),
        ]
        for (what, bytes) in damaged {
            try bytes.write(to: URL(fileURLWithPath: file))
            let status = try Self.emopipe(["status", Self.manifest], workdir: workdir)
            #expect(status.status == 1, "\(what): \(status.stderr)")
            #expect(status.stderr.contains("data-root.txt") && status.stderr.count < 2_000, "\(what): \(status.stderr.prefix(300))")
            let given = try Self.emopipe(["status", Self.manifest, "--data", data], workdir: workdir)
            #expect(given.status == 0, "\(what), with --data: \(given.stderr)")
        }
        // An emptied file, blank lines or not, remembers nothing: the manifest's data is judged, as without the file.
        for emptied in ["", "\n", "\n\n  \n"] {
            try Data(emptied.utf8).write(to: URL(fileURLWithPath: file))
            let status = try Self.emopipe(["status", Self.manifest], workdir: workdir)
            #expect(status.status == 0 && status.stderr.contains("(the manifest's data)"), "\(emptied.debugDescription): \(status.stderr)")
        }
        // A folder read as empty (so silently not remembered), and a pipe would block.
        for (what, make) in [("a folder", { try FileManager.default.createDirectory(atPath: file, withIntermediateDirectories: false) }),
                             ("a pipe", { #expect(mkfifo(file, 0o644) == 0) })] as [(String, () throws -> Void)] {
            try FileManager.default.removeItem(atPath: file)
            try make()
            let status = try Self.emopipe(["status", Self.manifest], workdir: workdir)
            #expect(status.status == 1 && status.stderr.contains("data-root.txt: is not a regular file"), "\(what): \(status.stderr)")
        }
    }

    /// The root a run was given is remembered as the run starts: a run killed in its first stage
    /// leaves it too, so the next command without --data does not turn to the manifest's root
    /// (whose ingest would call every source removed).
    @Test func aRunKilledInItsFirstStageStillLeavesItsDataRootRemembered() throws {
        let data = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("killed-root") + "/work"
        let run = try TestSupport.Background(TestSupport.emopipe, ["run", Self.manifest, "--data", data, "--until", "ingest",
                                                                   "--workdir", workdir])
        #expect(run.waitForStderr(containing: "ingest: running"), "\(run.stderr)")
        #expect(run.kill(), "the run ended before it was killed: \(run.stderr)")
        #expect(try Workspace(root: workdir).rememberedDataRoot() == data)
        let status = try Self.emopipe(["status", Self.manifest], workdir: workdir)
        #expect(status.stderr.contains("data root \(data) (remembered by the work directory"), "\(status.stderr)")
    }

    /// A scale-out worker given another data root does not move the main work directory's remembered one once
    /// the main has one (its next plain run would have read the workers' root, whose workers merge refuses);
    /// before the main has run, the workers' root is remembered, as one given to a first run is.
    @Test func aWorkerDoesNotMoveTheMainsRememberedDataRoot() throws {
        let main = try IngestFixture.dataRoot()
        let other = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1)])
        let fresh = try TestSupport.temporaryFolder("worker-root-fresh") + "/work"
        let first = try TestSupport.run(TestSupport.emopipe, ["run", Self.manifest, "--data", other, "--until", "ingest", "--worker", "0/2", "--workdir", fresh])
        let rememberedFirst = try Workspace(root: fresh).rememberedDataRoot()
        #expect(first.status == 0 && rememberedFirst == other, "\(first.stderr)")
        let workdir = try TestSupport.temporaryFolder("worker-root") + "/work"
        #expect(try TestSupport.run(TestSupport.emopipe, ["run", Self.manifest, "--data", main, "--until", "ingest", "--workdir", workdir]).status == 0)
        let worker = try TestSupport.run(TestSupport.emopipe, ["run", Self.manifest, "--data", other, "--until", "ingest", "--worker", "0/2", "--workdir", workdir])
        #expect(worker.status == 0, "\(worker.stderr)")
        #expect(try Workspace(root: workdir).rememberedDataRoot() == main)
    }

    // MARK: show with a SHA-256 prefix

    @Test func showTakesAUniquePrefixOfFourAndRefusesAmbiguousShortOrNonHexOnes() throws {
        let (data, workdir) = try Self.ingested("prefix")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let sources = try store.sources(status: .ok)
        let hashes = Set(try store.allSources().compactMap(\.sha256))
        // A source whose first four digits no other content shares.
        let unique = try #require(sources.first { source in
            guard let sha = source.sha256 else { return false }
            return hashes.filter { $0.hasPrefix(sha.prefix(4)) }.count == 1
        })
        let sha = try #require(unique.sha256)
        let shown = try Self.emopipe(["show", String(sha.prefix(4)).uppercased()], workdir: workdir)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("sha256   \(sha)"), "\(shown.stdout)")
        // The same file through a link to the data root is the recorded source.
        let link = try TestSupport.temporaryFolder("linked-root") + "/data"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: data)
        let linked = try Self.emopipe(["show", link + String(unique.path.dropFirst(data.count))], workdir: workdir)
        #expect(linked.status == 0 && linked.stdout.contains("source   \(unique.path)"), "\(linked.stdout) \(linked.stderr)")

        // Another content starting with the same five digits makes that prefix ambiguous.
        let prefix = String(sha.prefix(5))
        let twinPath = data + "/Actor_01/not-really-there.wav"
        var impostor = unique
        impostor.path = twinPath
        impostor.sha256 = prefix + String(repeating: sha.hasSuffix("0") ? "1" : "0", count: 64 - prefix.count)
        try store.write { try impostor.insert($0) }
        let ambiguous = try Self.emopipe(["show", prefix], workdir: workdir)
        #expect(ambiguous.status == 64, "\(ambiguous.stderr)")
        #expect(ambiguous.stderr.contains("SHA-256 prefix '\(prefix)' is ambiguous"), "\(ambiguous.stderr)")
        #expect(ambiguous.stderr.contains(sha) && ambiguous.stderr.contains(twinPath), "the candidates are listed: \(ambiguous.stderr)")
        // More digits settle it.
        #expect(try Self.emopipe(["show", String(sha.prefix(20))], workdir: workdir).status == 0)

        let short = try Self.emopipe(["show", String(sha.prefix(3))], workdir: workdir)
        #expect(short.status == 64 && short.stderr.contains("too short: give at least 4 hex digits"), "\(short.stderr)")
        let empty = try Self.emopipe(["show", ""], workdir: workdir)
        #expect(empty.status == 64 && empty.stderr.contains("an empty argument names no source"), "\(empty.stderr)")
        // A whole SHA-256 is the longest a prefix can be; longer (here 50,000 digits) is refused the same way.
        #expect(try Self.emopipe(["show", sha], workdir: workdir).status == 0)
        let tooLong = try Self.emopipe(["show", sha + "0"], workdir: workdir)
        #expect(tooLong.status == 64 && tooLong.stderr.contains("is longer than a SHA-256 (65 hex digits, at most 64)"), "\(tooLong.stderr.prefix(300))")
        // Longer than any argument but a --set value may be: refused before any command looks at it, cut short.
        let blob = String(repeating: sha, count: 782)
        for arguments in [["show", blob], ["params", blob], ["diff", blob, "latest"], ["merge", blob], ["cache", "export", "--stage", "audio", "--format", "npz", blob],
                          ["faces", "preview", "x.mp4", "--out", blob], ["predict", "--run", "r", blob], ["params", "--", blob],
                          ["predict", "--run", "r", "--files-from", blob, "--format", "lavfi"]] {
            let refused = try Self.emopipe(arguments, workdir: workdir)
            #expect(refused.status == 64 && refused.stderr.contains("… (50048 characters): argument ") && refused.stderr.contains(" is 50048 bytes long, longer than a path can be")
                    && refused.stderr.count < 600, "\(arguments.prefix(2)): \(refused.stderr.prefix(300))")
        }
        // Free text may be longer: a stream's URL (a token in it), a --format graph; never an option's value.
        for arguments in [["predict", "--run", "r", "https://example.invalid/live.wav?token=" + blob], ["predict", "--run", "r", "--format", "lavfi", "sine=" + blob],
                          ["predict", "--run", "r", "--", "https://example.invalid/" + blob]] {
            let taken = try Self.emopipe(arguments, workdir: workdir)
            #expect(!taken.stderr.contains("longer than a path can be (at most"), "\(arguments.prefix(2)): \(taken.stderr.prefix(300))")
        }
        let word = try Self.emopipe(["show", "xyz123"], workdir: workdir)
        #expect(word.status == 64 && word.stderr.contains("'xyz123' is neither a recorded source path nor a SHA-256 prefix"), "\(word.stderr)")
        let missing = try Self.emopipe(["show", data + "/Actor_01/absent.wav"], workdir: workdir)
        #expect(missing.status == 1 && missing.stderr.contains("no recorded source has this path or SHA-256"), "\(missing.stderr)")
    }

    // MARK: Two fingerprints, two names

    /// `runs` lists the ids the database holds as they are: an edited row's empty, path-like or control-character
    /// id is listed (spelt out), not looked up as a reference a user typed, which failed the whole listing with exit 64.
    @Test func runsListsEveryRecordedIdAsItIs() throws {
        let workdir = try TestSupport.temporaryFolder("odd-run-ids") + "/work"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        for id in ["20261206-120000-abcdef", "", "../../etc", "x\u{1B}[31mred"] {
            try store.insert(RunRecord(id: id, command: "test", manifestJSON: "name: t\n", manifestSHA256: "", dataRoot: "/",
                                       threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        }
        let table = try Self.emopipe(["runs"], workdir: workdir)
        #expect(table.status == 0 && table.stdout.contains("20261206-120000-abcdef") && table.stdout.contains("../../etc"), "\(table.stdout)\(table.stderr)")
        #expect(!table.stdout.contains("\u{1B}") && table.stdout.split(separator: "\n").count == 5, "\(table.stdout)")
        let json = try Self.emopipe(["runs", "--json"], workdir: workdir)
        let documents = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], "\(json.stderr)")
        #expect(json.status == 0 && Set(documents.compactMap { $0["id"] as? String }) == ["20261206-120000-abcdef", "", "../../etc", "x\u{1B}[31mred"])
    }

    @Test func stageFingerprintsAndCacheKeysAreNamedApartWhereverPrinted() throws {
        let (_, workdir) = try Self.ingested("names")
        let again = try IngestFixture.emopipe(["run", "--until", "ingest", "--force", "ingest"], workdir: workdir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("running (cache key "), "the run log names the cache key: \(again.stderr)")
        #expect(!again.stderr.contains("(fingerprint "), "\(again.stderr)")

        let runs = try Self.emopipe(["runs", "--json"], workdir: workdir)
        let documents = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(documents.count == 2)
        let stages = documents.flatMap { ($0["stages"] as? [[String: Any]]) ?? [] }
        #expect(!stages.isEmpty)
        for stage in stages {
            #expect(stage["fingerprint"] == nil, "\(stage)")
            let fingerprint = try #require(stage["stage_fingerprint"] as? String)
            let key = try #require(stage["cache_key"] as? String)
            #expect(fingerprint.count == 64 && key.count == 64 && fingerprint != key, "\(stage)")
        }

        let ids = documents.compactMap { $0["id"] as? String }
        let diff = try Self.emopipe(["diff", ids[0], ids[1], "--all"], workdir: workdir)
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.contains("ingest stage fingerprint:") && diff.stdout.contains("dataset fingerprint:"), "\(diff.stdout)")
        let bare = diff.stdout.split(separator: "\n").filter { $0.contains("fingerprint:") && !$0.contains("stage fingerprint:") && !$0.contains("dataset fingerprint:") }
        #expect(bare.isEmpty, "every fingerprint diff prints is named: \(bare)")
        // A value edited in the database to hold terminal escapes and a line break is spelt out, not printed raw.
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        try store.write { try $0.execute(sql: "UPDATE run SET dataRoot = dataRoot || ? WHERE id = ?", arguments: ["\u{1B}[31mRED\nfake | b", ids[1]]) }
        let escaped = try Self.emopipe(["diff", ids[0], ids[1]], workdir: workdir)
        #expect(escaped.status == 0 && escaped.stdout.contains("\\u{1B}[31mRED\\nfake | b") && !escaped.stdout.contains("\u{1B}"), "\(escaped.stdout)")
        // Recorded parameters edited to megabytes are refused by their length, not decoded (seconds and hundreds of MB per 8 MB).
        let huge = "{\"x\": [" + String(repeating: "0,", count: 3 << 20) + "0]}"
        try store.write { try $0.execute(sql: "UPDATE stageState SET paramsJSON = ? WHERE stage = 'ingest'", arguments: [huge]) }
        let status = try Self.emopipe(["status", Self.manifest], workdir: workdir)
        #expect(status.stdout.contains("recorded parameters unreadable (\(huge.utf8.count) bytes, more than the \(4 << 20) EmoPipe records)"),
                "\(status.stdout)\(status.stderr)")
        // A run's, by runs: named by its length, not called "not a JSON object".
        try store.write { try $0.execute(sql: "UPDATE run SET paramsJSON = ? WHERE id = ?", arguments: [huge, ids[1]]) }
        let listed = try Self.emopipe(["runs"], workdir: workdir)
        #expect(listed.stderr.contains("note: run \(ids[1])'s record is damaged: its recorded parameters are \(huge.utf8.count) bytes of JSON, more than the \(4 << 20) read"),
                "\(listed.stderr)")

        let stats = try Self.emopipe(["cache", "stats"], workdir: workdir)
        #expect(stats.status == 0 && stats.stdout.hasPrefix("stage     cache key "), "\(stats.stdout)")
        let gc = try Self.emopipe(["cache", "gc", Self.manifest, "--dry-run", "--json"], workdir: workdir)
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(!gc.stdout.contains("\"fingerprint\""), "\(gc.stdout)")
    }

    // MARK: cache get on a source the stage does not take

    @Test func cacheGetSaysWhenTheStageDoesNotTakeTheSourceRatherThanSuggestingARun() throws {
        // A clip that has only its wav (no mp4 of any kind), beside the materialized actors.
        let (data, workdir) = try Self.ingested("not-taken") { data in
            try FileManager.default.createDirectory(atPath: data + "/Actor_09", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: data + "/Actor_01/03-01-02-01-01-01-01.wav",
                                             toPath: data + "/Actor_09/03-01-02-01-01-01-09.wav")
            _ = FileManager.default.createFile(atPath: data + "/Actor_09/03-01-02-01-01-02-09.wav", contents: Data())
        }
        func get(_ stage: String, _ source: String) throws -> TestSupport.ProcessResult {
            try Self.emopipe(["cache", "get", Self.manifest, "--stage", stage, "--source", source, "--json"], workdir: workdir)
        }
        let wav = data + "/Actor_01/03-01-01-01-01-01-01.wav"
        let mp4 = data + "/Actor_01/01-01-01-01-01-01-01.mp4"
        try #require(FileManager.default.fileExists(atPath: mp4), "actor 01's audio-video clip is materialized")

        // audio computes this clip from its wav: the mp4 is known, but asking for it needs the wav.
        let viaWav = try get("audio", mp4)
        #expect(viaWav.status == 1, "\(viaWav.stderr)")
        #expect(viaWav.stderr.contains("audio holds no record for \(mp4): the source is known but audio takes a clip's speech"), "\(viaWav.stderr)")
        #expect(viaWav.stderr.contains("ask for \(wav)") && !viaWav.stderr.contains("emopipe run"), "\(viaWav.stderr)")
        // faces, conversely, takes the mp4 of the wav's clip.
        let viaMp4 = try get("faces", wav)
        #expect(viaMp4.stderr.contains("faces holds no record for \(wav): the source is known but faces takes a clip's video")
                && viaMp4.stderr.contains("ask for \(mp4)"), "\(viaMp4.stderr)")
        // A clip with no video at all.
        let lone = data + "/Actor_09/03-01-02-01-01-01-09.wav"
        let none = try get("faces", lone)
        #expect(none.status == 1 && none.stderr.contains("and clip ") && none.stderr.contains("has none"), "\(none.stderr)")
        // A source ingest failed.
        let empty = data + "/Actor_09/03-01-02-01-01-02-09.wav"
        let failed = try get("audio", empty)
        #expect(failed.stderr.contains("audio holds no record for \(empty): the source is known but ingest judged it failed (empty file"),
                "\(failed.stderr)")
        // A stage without per-source records.
        let split = try get("split", wav)
        #expect(split.status == 1 && split.stderr.contains("split keeps no cached records"), "\(split.stderr)")
        // A source the stage takes but has not computed yet: then a run is the answer.
        let notYet = try get("audio", wav)
        #expect(notYet.status == 1 && notYet.stderr.contains("run `emopipe run --until audio`"), "\(notYet.stderr)")
        // A --data that is no folder is said, as status says it (it went by without a word).
        for arguments in [["cache", "get", Self.manifest, "--stage", "audio", "--source", wav, "--json"], ["cache", "gc", Self.manifest, "--dry-run"]] {
            let result = try Self.emopipe(arguments + ["--data", data + "/nonexistent"], workdir: workdir)
            #expect(result.stderr.contains("warning: \(data)/nonexistent: the data root (--data) does not exist"),
                    "\(arguments): \(result.stderr)")
        }
    }

    /// A file where the work directory needs a folder (or a folder where it writes a file) is named
    /// with what to do; the work already recorded stays, and the run goes on once it is moved.
    @Test func aFileOrFolderInTheWayOfTheWorkDirectoryIsNamedAndNothingIsLost() throws {
        let (data, workdir) = try Self.ingested("in-the-way")
        let audioFolder = workdir + "/cache/audio"
        try? FileManager.default.removeItem(atPath: audioFolder)
        try Data().write(to: URL(fileURLWithPath: audioFolder))
        let blocked = try IngestFixture.emopipe(["run", "--until", "audio"], data: data, workdir: workdir)
        #expect(blocked.status == 1, "\(blocked.stderr)")
        #expect(blocked.stderr.contains("\(audioFolder): is a file where a folder should be: move or remove it"), "\(blocked.stderr)")
        #expect(!blocked.stderr.contains("could not be completed"), "\(blocked.stderr)")
        #expect(try Self.states(try Self.emopipe(["status", Self.manifest, "--json"], workdir: workdir))["ingest"] == "up-to-date")

        try FileManager.default.removeItem(atPath: audioFolder)
        let runsFolder = workdir + "/runs"
        try FileManager.default.removeItem(atPath: runsFolder)
        try Data().write(to: URL(fileURLWithPath: runsFolder))
        let noRuns = try IngestFixture.emopipe(["run", "--until", "audio"], data: data, workdir: workdir)
        #expect(noRuns.status == 1 && noRuns.stderr.contains("\(runsFolder): is a file where a folder should be"), "\(noRuns.stderr)")

        try FileManager.default.removeItem(atPath: runsFolder)
        let resumed = try IngestFixture.emopipe(["run", "--until", "audio"], data: data, workdir: workdir)
        #expect(resumed.status == 0, "\(resumed.stderr)")

        // A work directory that is a link to itself is named as unusable, not as one that is not there yet.
        let loop = workdir + "-loop"
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: loop)
        for command in [["runs"], ["sources"], ["status", Self.manifest], ["run", Self.manifest, "--until", "ingest"]] {
            let looped = try Self.emopipe(command, workdir: loop)
            #expect(looped.status == 64 && looped.stderr.contains("\(loop): cannot be used as a work directory: Too many levels of symbolic links"),
                    "\(command): \(looped.stderr)")
        }
        // A link to nothing, as the work directory or on the way to it, is a usage error (64) as a loop is, not a failure (1);
        // and a path too long for SQLite is refused before any folder or lock file is made in it.
        let dangling = workdir + "-dangling"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: workdir + "-gone")
        for (given, says) in [(dangling, "\(dangling) is a link to a folder that does not exist"),
                              (dangling + "/below", "\(dangling) is a link to a folder that does not exist")] {
            for plan in [[], ["--dry-run"]] {   // a dry run answers as the run would (it exited 1)
                let refused = try Self.emopipe(["run", Self.manifest, "--until", "ingest"] + plan, workdir: given)
                #expect(refused.status == 64 && refused.stderr.contains(says), "\(given) \(plan): \(refused.stderr)")
            }
        }
        let deepRoot = workdir + "-deep"
        let deep = deepRoot + String(repeating: "/" + String(repeating: "d", count: 60), count: 8)
        for plan in [[], ["--dry-run"]] {   // a dry run had said nothing, exit 0
            let tooDeep = try Self.emopipe(["run", Self.manifest, "--until", "ingest"] + plan, workdir: deep)
            #expect(tooDeep.status == 64 && tooDeep.stderr.contains("more than the") && tooDeep.stderr.contains("give a work directory with a shorter path"),
                    "\(plan): \(tooDeep.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: deepRoot), "a refused work directory left folders behind")
        // A command that only reads is not refused for a path it makes nothing at: it says there is no work directory there.
        let reading = try Self.emopipe(["sources"], workdir: deep)
        #expect(reading.status != 64 && !reading.stderr.contains("shorter path"), "\(reading.stderr)")
        // One on /proc, or reached through it, would be recorded under a name that means another folder to every other process.
        for (kernelPath, says) in [("/proc", "the work directory is on the kernel's /proc or /sys filesystem"),
                                   ("/proc/self/cwd", "the work directory is reached through the kernel's /proc or /sys filesystem")] {
            let refused = try TestSupport.run(TestSupport.emopipe, ["sources", "--workdir", kernelPath], currentDirectory: workdir)
            #expect(refused.status == 64 && refused.stderr.contains("\(kernelPath): \(says)"), "\(kernelPath): \(refused.stderr)")
        }
    }
}

/// Usage errors, help and `--version`: no work directory or data needed.
@Suite("command-line usage", .enabled(if: TestSupport.hasEmopipe))
struct CommandLineUsageTests {
    /// Run from a folder without `manifests/default.yaml` and given no manifest, a command says why and what to do (run from
    /// the checkout's root, or name one), not only that a file cannot be read; a mistyped key or stage gets the name meant.
    @Test func aMissingDefaultManifestAndMistypedNamesAreExplained() throws {
        let elsewhere = try TestSupport.temporaryFolder("no-manifest-here")
        for command in [["status"], ["params"], ["run", "--dry-run"]] {
            let refused = try TestSupport.run(TestSupport.emopipe, command, currentDirectory: elsewhere)
            #expect(refused.status == 64 && refused.stderr.contains("no manifest was given, and the default one, manifests/default.yaml, is not in "
                                                                    + "this folder (\(elsewhere)): run emopipe from the checkout's root, or name a manifest"),
                    "\(command): \(refused.stderr)")
        }
        let manifest = TestSupport.repositoryRoot + "/manifests/default.yaml"
        let key = try TestSupport.run(TestSupport.emopipe, ["params", manifest, "--set", "train.epoch=3"])
        #expect(key.status == 64 && key.stderr.contains("train.epoch = 3: not a parameter of train (did you mean epochs?); known: "), "\(key.stderr)")
        let stage = try TestSupport.run(TestSupport.emopipe, ["params", manifest, "--set", "trian.epochs=3"])
        #expect(stage.status == 64 && stage.stderr.contains("unknown stage 'trian'; did you mean train? (stages: "), "\(stage.stderr)")
    }

    /// A work directory among another one's own files (its cache, runs, sweeps, nightly folder) is refused to the
    /// commands that write one (run, sweep, nightly, merge, reproduce --into): `cache gc` in the outer one removed a
    /// nested one's shards as leftovers. Commands that only read may look from there (`predict --run .` inside a run
    /// folder reads the run, whatever the default work directory), as may a dry run. Its reproductions folder holds
    /// work directories by design; and --into through /proc is refused as --workdir is.
    @Test func aWorkDirectoryAmongAnotherOnesOwnFilesIsRefused() throws {
        let outer = try TestSupport.temporaryFolder("outer-work")
        _ = try ProvenanceStore(path: outer + "/emopipe.sqlite")
        for folder in ["cache", "runs", "sweeps", "nightly", "workers"] {
            try FileManager.default.createDirectory(atPath: outer + "/" + folder, withIntermediateDirectories: true)
            let said = "lies in \(outer)/\(folder), a folder of the work directory \(outer) whose files EmoPipe manages"
            for command in [["run", "m.yaml"], ["sweep", "m.yaml"], ["nightly", "m.yaml"], ["merge"]] {
                let nested = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", outer + "/\(folder)/y"])
                #expect(nested.status == 64 && nested.stderr.contains(said), "\(command) in \(folder): \(nested.stderr)")
            }
            let reading = try TestSupport.run(TestSupport.emopipe, ["sources", "--workdir", outer + "/\(folder)/y"])
            #expect(reading.status == 1 && reading.stderr.contains("no work directory here yet"), "\(folder): \(reading.stderr)")
            let dryRun = try TestSupport.run(TestSupport.emopipe, ["run", "m.yaml", "--dry-run", "--workdir", outer + "/\(folder)/y"])
            #expect(!dryRun.stderr.contains(said), "\(folder): \(dryRun.stderr)")
        }
        let through = outer + "/link"
        try FileManager.default.createSymbolicLink(atPath: through, withDestinationPath: outer + "/cache")
        let linked = try TestSupport.run(TestSupport.emopipe, ["run", "--workdir", through + "/z", "--until", "ingest"])
        #expect(linked.status == 64 && linked.stderr.contains("a folder of the work directory"), "\(linked.stderr)")
        for into in [outer + "/cache/y", "/proc/self/cwd/x"] {
            let refused = try TestSupport.run(TestSupport.emopipe, ["reproduce", "latest", "--workdir", outer, "--into", into])
            #expect(refused.status == 64 && refused.stderr.contains("--into \(into):"), "\(into): \(refused.stderr)")
        }
        let reproduction = try TestSupport.run(TestSupport.emopipe, ["run", "m.yaml", "--workdir", outer + "/reproductions/r-1"])
        #expect(!reproduction.stderr.contains("whose files EmoPipe manages"), "\(reproduction.stderr)")
    }

    /// A work directory that is empty or a file is a usage error, named as the option or the
    /// environment variable it may have come from.
    @Test func aWorkDirectoryThatIsNoFolderIsRefusedNamingBothPlacesItComesFrom() throws {
        let file = try TestSupport.temporaryFolder("workdir-file") + "/afile"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        for (arguments, environment) in [(["sources", "--workdir", file], [String: String]()), (["sources"], ["EMOPIPE_WORKDIR": file]),
                                         (["sources", "--workdir", ""], [:])] {
            let result = try TestSupport.run(TestSupport.emopipe, arguments, environment: environment)
            #expect(result.status == 64 && result.stderr.contains("--workdir (or $EMOPIPE_WORKDIR)"), "\(arguments): \(result.stderr)")
        }
        // A relative work directory from a current folder that was deleted is said to lead nowhere.
        let gone = try TestSupport.temporaryFolder("cwd-gone")
        let orphan = try TestSupport.run("/bin/bash", ["-c", "cd '\(gone)' && rmdir '\(gone)' && exec '\(TestSupport.emopipe)' runs"])
        #expect(orphan.status == 64 && orphan.stderr.contains("work is relative, and the current folder is gone (deleted)"), "\(orphan.stderr)")
        // Nor may `reproduce --into ''` mean the current folder.
        let into = try TestSupport.run(TestSupport.emopipe, ["reproduce", "latest", "--into", "", "--workdir", file + "-work"])
        #expect(into.status == 64 && into.stderr.contains("--into '': an empty path names no folder"), "\(into.stderr)")
        // Standard input holds one list.
        let twice = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", "x", "--files-from", "-", "--files-from", "-", "--workdir", file + "-work"])
        #expect(twice.status == 64 && twice.stderr.contains("--files-from - is given twice: standard input holds one list"), "\(twice.stderr)")
        // An option given twice is refused (the parser kept the last one without a word); --set, --force and
        // --files-from are the repeatable ones, and a `--` ends the options.
        for arguments in [["run", "--until", "train", "--until", "audio"], ["run", "--workdir", file + "-a", "--workdir=" + file + "-b"],
                          ["predict", "--run", "x", "--hop", "1", "--hop", "2", "a.wav"]] {
            let repeated = try TestSupport.run(TestSupport.emopipe, arguments)
            #expect(repeated.status == 64 && repeated.stderr.contains("emopipe: \(arguments[arguments[1] == "--run" ? 3 : 1]) is given twice: give it once"),
                    "\(arguments): \(repeated.stderr)")
        }
        // params takes neither --data nor --threads (it lists the manifest's), and its help offers neither.
        for option in ["--data", "--threads"] {
            let params = try TestSupport.run(TestSupport.emopipe, ["params", option, "2"])
            #expect(params.status == 64 && params.stderr.contains("Unknown option '\(option)'"), "\(params.stderr)")
        }
        let paramsHelp = try TestSupport.run(TestSupport.emopipe, ["params", "--help"])
        #expect(paramsHelp.status == 0 && !paramsHelp.stdout.contains("--data") && !paramsHelp.stdout.contains("--threads"), "\(paramsHelp.stdout)")
        let aliased = try TestSupport.run(TestSupport.emopipe, ["cache", "export", "--stage", "audio", "--cache-key", "zzzz", "--fingerprint", "0000", "d"])
        #expect(aliased.status == 64 && aliased.stderr.contains("--fingerprint is --cache-key given again: give it once"), "\(aliased.stderr)")
        let afterDashes = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", "x", "--workdir", file + "-work", "--", "--run", "--run"])
        #expect(afterDashes.status == 1 && afterDashes.stderr.contains("no work directory here yet"), "the files after -- are files: \(afterDashes.stderr)")
        // A worker's path is named once, escaped and cut as messages echo it (it was named twice, raw and echoed).
        let mainWork = try TestSupport.temporaryFolder("merge-names")
        for worker in ["/nonexistent-emopipe/no\u{1B}such", "/nonexistent-emopipe/" + String(repeating: "w", count: 250)] {
            let merged = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", mainWork, worker])
            let line = merged.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(merged.status == 1 && line.hasPrefix("emopipe: \(worker.echoed): no such folder") && line.hasSuffix("; not merged")
                    && !line.contains("\u{1B}") && line.components(separatedBy: "/nonexistent-emopipe/").count == 2, "\(merged.stderr)")
        }
        // Nor may `merge ''` name the current folder as a worker.
        let worker = try TestSupport.run(TestSupport.emopipe, ["merge", "", "--workdir", file + "-work"])
        #expect(worker.status == 64 && worker.stderr.contains("an empty argument names no worker's work directory"), "\(worker.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file + "-work"), "nothing created")
    }

    /// Foundation traps on the folder of a one-character name (`m`, `x/`): a manifest, an output file or a
    /// work directory so named is read and written like any other (every command crashed on a manifest `m`).
    @Test func oneCharacterNamesAreReadAndWrittenLikeAnyOther() throws {
        let folder = try TestSupport.temporaryFolder("one-character")
        try FileManager.default.createDirectory(atPath: folder + "/d/Actor_01", withIntermediateDirectories: true)
        // RAVDESS names for the dry run to plan (it refuses a data root without one, as a run does, and fewer actors than folds).
        for actor in 1...4 {
            try FileManager.default.createDirectory(atPath: folder + "/d/Actor_0\(actor)", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: folder + "/d/Actor_0\(actor)/03-01-01-01-01-01-0\(actor).wav", contents: Data())
        }
        // The pipeline and data named relative to the manifest's folder, which the crashing call worked out.
        try FileManager.default.createSymbolicLink(atPath: folder + "/p", withDestinationPath: TestSupport.repositoryRoot + "/pipelines")
        try "pipeline: p/ravdess.yaml\ndata: d\nname: m\nparams:\n  train: {epochs: 7}\n".write(toFile: folder + "/m", atomically: true, encoding: .utf8)
        for arguments in [["params", "m"], ["params", "./m"], ["run", "m", "--dry-run", "--workdir", "w"], ["status", "m", "--workdir", "w/"]] {
            let result = try TestSupport.run(TestSupport.emopipe, arguments, currentDirectory: folder)
            #expect(result.status == 0 && !result.stderr.contains("crashed"), "\(arguments): \(result.status) \(result.stderr.prefix(300))")
            if arguments[0] == "params" {
                let epochs = result.stdout.split(separator: "\n").first { $0.hasPrefix("train.epochs ") }.map { $0.split(separator: " ") } ?? []
                #expect(epochs.count >= 3 && epochs[1] == "7" && epochs[2] == "manifest", "\(result.stdout.prefix(300))")
            }
        }
        if TestSupport.hasSharedData {
            let preview = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", FacesPreviewCommandTests.clip, "--manifest", "m", "--out", "x"], currentDirectory: folder)
            #expect(preview.status == 0 && preview.stdout == "wrote x (1 clip)\n", "\(preview.status) \(preview.stderr.prefix(300))")
            #expect(FileManager.default.contents(atPath: folder + "/x")?.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a PNG named x")
            // A relative name with a colon is a file, not a protocol libavformat does not allow ("take" or "data").
            for name in ["take:2.mp4", "data:x.mp4"] {
                try? FileManager.default.removeItem(atPath: folder + "/" + name)
                try FileManager.default.copyItem(atPath: FacesPreviewCommandTests.clip, toPath: folder + "/" + name)
                let colon = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", name, "--manifest", "m", "--out", "y.png"], currentDirectory: folder)
                #expect(colon.status == 0 && colon.stdout == "wrote y.png (1 clip)\n", "\(name): \(colon.status) \(colon.stderr.prefix(300))")
            }
        }
    }

    /// An argument that is not UTF-8 reached Swift with U+FFFD for its bad bytes: `--data` said a folder that
    /// is there did not exist, `--npy`, `--out` and `--workdir` made files named with U+FFFD. Each is refused,
    /// shown with \x escapes, before anything is done.
    @Test func anArgumentThatIsNotUTF8IsRefusedShownWithEscapes() throws {
        let folder = try TestSupport.temporaryFolder("not-utf8")
        let manifest = "pipeline: \(TestSupport.repositoryRoot)/pipelines/ravdess.yaml\ndata: \(folder)\nname: m\n"
        try manifest.write(toFile: folder + "/m.yaml", atomically: true, encoding: .utf8)
        let emopipe = "'\(TestSupport.emopipe)'"
        for (command, shown) in [("run m.yaml --dry-run --data $'d\\xff'", "d\\xff"), ("run m.yaml --dry-run --workdir $'w\\xe9x'", "w\\xe9x"),
                                 ("faces preview --manifest m.yaml --out $'\\xff.png' a.mp4", "\\xff.png"),
                                 ("cache get --stage audio --source x --npy $'\\xff.npy'", "\\xff.npy")] {
            let result = try TestSupport.run("/bin/bash", ["-c", "\(emopipe) \(command)"], currentDirectory: folder)
            #expect(result.status == 64 && result.stderr.hasPrefix("emopipe: \(shown): argument ") && result.stderr.contains("is not valid UTF-8"),
                    "\(command): \(result.status) \(result.stderr)")
        }
        // So is the environment's work directory.
        let environment = try TestSupport.run("/bin/bash", ["-c", "EMOPIPE_WORKDIR=$'w\\xff' \(emopipe) run m.yaml --dry-run"], currentDirectory: folder)
        #expect(environment.status == 64 && environment.stderr.contains("$EMOPIPE_WORKDIR w\\xff is not valid UTF-8"), "\(environment.stderr)")
        // ... when it is used: --workdir overrides it, and --help reads no work directory.
        for arguments in ["status m.yaml --workdir ok", "--help"] {
            let overridden = try TestSupport.run("/bin/bash", ["-c", "EMOPIPE_WORKDIR=$'w\\xff' \(emopipe) \(arguments)"], currentDirectory: folder)
            #expect(overridden.status == 0, "\(arguments): \(overridden.stderr)")
        }
        let made = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(made == ["m.yaml"], "nothing made: \(made)")
    }

    static func emopipe(_ arguments: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(TestSupport.emopipe, arguments)
    }

    /// Every command path: `[]` for emopipe itself, `["cache", "get"]`, ...
    static let commandPaths: [[String]] = [
        [], ["run"], ["nightly"], ["status"], ["params"], ["sources"], ["show"], ["runs"], ["diff"], ["reproduce"],
        ["merge"], ["cache"], ["cache", "get"], ["cache", "verify"], ["cache", "stats"], ["cache", "gc"],
        ["faces"], ["faces", "preview"], ["predict"],
    ]

    /// A watched name the pipeline never writes could never alert: `nightly` refuses it before anything
    /// runs, naming it (quoted and escaped) with the known names; commands that ignore the block accept it.
    @Test func nightlyRefusesAMetricThePipelineNeverWrites() throws {
        let folder = try TestSupport.temporaryFolder("nightly-metric")
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: folder, "nightly: {metrics: [weighted_f1, \"acu\\nracy\"]}")
        let refused = try Self.emopipe(["nightly", manifest, "--workdir", folder + "/work"])
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("m.yaml: nightly.metrics: \"acu\\nracy\" is not a metric this pipeline writes (known: accuracy, ")
                && refused.stderr.contains("cv.weighted_f1.mean") && refused.stderr.contains(", weighted_f1)"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").filter { $0.hasPrefix("emopipe:") }.count == 1, "one line: \(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/work/emopipe.sqlite"), "nothing ran")
        #expect(try Self.emopipe(["params", manifest]).status == 0, "params ignores the nightly block")

        // Names the pipeline writes, but not under these settings (one split: no cv.*): all of them is refused, some warned of.
        let single = try TestSupport.writeManifest(at: folder + "/single.yaml", data: folder,
                                                   "params: {split: {test_actors: [1], val_actors: [2]}}\nnightly: {metrics: [cv.weighted_f1.mean]}")
        let never = try Self.emopipe(["nightly", single, "--workdir", folder + "/work"])
        #expect(never.status == 64 && never.stderr.contains("single.yaml: nightly.metrics: none is written under these settings, so no night could "
                                                            + "compare one (\"cv.weighted_f1.mean\": cv.* (over the folds) is written only when several folds "
                                                            + "are scored (split.test_fold: all); here split.test_actors makes one split)"), "\(never.stderr)")
        // Counts are reported and never alert: a watch of only those could not alert either.
        let counted = try TestSupport.writeManifest(at: folder + "/counted.yaml", data: folder, "nightly: {metrics: [count]}")
        let countsOnly = try Self.emopipe(["nightly", counted, "--workdir", folder + "/work"])
        #expect(countsOnly.status == 64 && countsOnly.stderr.contains("counted.yaml: nightly.metrics: \"count\" is a count or setting, which are reported but never alert"),
                "\(countsOnly.stderr)")
        let some = try TestSupport.writeManifest(at: folder + "/some.yaml", data: folder, "nightly: {metrics: [weighted_f1, cv.uar.mean]}")
        let warned = try Self.emopipe(["nightly", some, "--workdir", folder + "/work"])
        #expect(warned.status != 64 && warned.stderr.contains("nightly.metrics: \"cv.uar.mean\" is never written under these settings, so never compared "
                                                              + "(cv.* (over the folds) is written only when several folds are scored (split.test_fold: all); here split.test_fold is 0)"),
                "\(warned.stderr)")
    }

    /// A pipeline file whose `needs` do not lead from a stage to one whose output its code reads would keep
    /// a stale result when that stage changes (train on 64-mel features after audio went to 32): refused.
    @Test func aPipelineWhoseNeedsSkipAStageItsCodeReadsIsRefused() throws {
        let folder = try TestSupport.temporaryFolder("pipeline-needs")
        let shipped = try String(contentsOfFile: TestSupport.repositoryRoot + "/pipelines/ravdess.yaml", encoding: .utf8)
        for (needs, missing) in [("needs: [split]", "audio"), ("needs: [audio, split]", "faces")] {
            let edited = shipped.replacingOccurrences(of: "needs: [audio, faces, split]", with: needs)
            #expect(edited != shipped)
            try edited.write(toFile: folder + "/pipeline.yaml", atomically: true, encoding: .utf8)
            let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: folder)
            try String(contentsOfFile: manifest, encoding: .utf8)
                .replacingOccurrences(of: "pipeline: \(TestSupport.repositoryRoot)/pipelines/ravdess.yaml", with: "pipeline: pipeline.yaml")
                .write(toFile: manifest, atomically: true, encoding: .utf8)
            let refused = try Self.emopipe(["status", manifest, "--workdir", folder + "/work"])
            #expect(refused.status == 64, "\(refused.stderr)")
            #expect(refused.stderr.contains("pipeline.yaml: stage 'train' reads the output of '\(missing)', but its needs"), "\(refused.stderr)")
        }
        // A speech-only model reads no face crops: train may leave faces out of its needs then.
        let speech = try Self.emopipe(["params", folder + "/m.yaml", "--set", "train.modalities=[audio]"])
        #expect(speech.status == 0, "\(speech.stderr)")
        // A pipeline without a faces stage at all is fine: there is nothing to reach.
        let faces = try #require(shipped.range(of: "\n  faces:")), split = try #require(shipped.range(of: "\n  split:"))
        var speechOnly = shipped
        speechOnly.removeSubrange(faces.lowerBound..<split.lowerBound)
        try speechOnly.replacingOccurrences(of: "needs: [audio, faces, split]", with: "needs: [audio, split]")
            .write(toFile: folder + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let accepted = try Self.emopipe(["params", folder + "/m.yaml"])
        #expect(accepted.status == 0 && !accepted.stdout.contains("faces."), "\(accepted.stderr)")
        // But a model of faces alone, with no faces stage, would learn from nothing: refused.
        let facesOnly = try Self.emopipe(["params", folder + "/m.yaml", "--set", "train.modalities=[faces]"])
        #expect(facesOnly.status == 64 && facesOnly.stderr.contains("train.modalities = [faces]")
                && facesOnly.stderr.contains("modalities whose feature stage the pipeline declares (it has no 'faces' stage)"), "\(facesOnly.stderr)")
        // A stage none of whose inputs the pipeline declares would read nothing (audio: "0 sources"): refused.
        for (stages, reader, absent) in [("stages: {audio: {}, split: {}, train: {needs: [audio, split]}}", "audio", "ingest"),
                                         ("stages: {export: {}}", "export", "train")] {
            try stages.write(toFile: folder + "/pipeline.yaml", atomically: true, encoding: .utf8)
            let refused = try Self.emopipe(["run", folder + "/m.yaml", "--dry-run", "--workdir", folder + "/work"])
            #expect(refused.status == 64 && refused.stderr.contains("stage '\(reader)' reads the output of '\(absent)', which this pipeline does not declare"),
                    "\(refused.stderr)")
        }
    }

    /// A data root whose path holds a line break cannot be written on data-root.txt's one line: the
    /// run works, says it is not remembered, and the commands after it are not broken by a damaged file.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func aDataRootWithALineBreakIsUsedButNotRemembered() throws {
        let folder = try TestSupport.temporaryFolder("line-break-root")
        let root = folder + "/two\nlines"
        try FileManager.default.createDirectory(atPath: root + "/Actor_01", withIntermediateDirectories: true)
        let synthesized = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1)])
        try FileManager.default.copyItem(atPath: synthesized + "/Actor_01/03-01-01-01-01-01-01.wav",
                                         toPath: root + "/Actor_01/03-01-01-01-01-01-01.wav")
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let run = try Self.emopipe(["run", manifest, "--data", root, "--workdir", folder + "/work", "--until", "ingest"])
        #expect(run.status == 0 && run.stderr.contains("1 file: 1 ok"), "\(run.stderr)")
        // Its log lines name it escaped, each on one line.
        #expect(run.stderr.contains("ingest: 1 file under \(folder)/two\\nlines: 1 to read"), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").allSatisfy { !$0.hasPrefix("lines") }, "\(run.stderr)")
        #expect(run.stderr.contains("emopipe: warning: the data root is not remembered: its path holds a line break"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/work/data-root.txt"))
        let status = try Self.emopipe(["status", manifest, "--workdir", folder + "/work"])
        #expect(status.status == 0 && status.stderr.contains("(the manifest's data)"), "\(status.stderr)")
    }

    /// `cache export` writes the records of current sources only: one left by a file changed since has
    /// no labels to give (a WebDataset sample without them), and is counted, not exported.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func cacheExportLeavesOutRecordsOfContentNoSourceHasNow() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-01.wav", 1)])
        let folder = try TestSupport.temporaryFolder("export-leftover")
        let (workdir, manifest) = (folder + "/work", TestSupport.repositoryRoot + "/manifests/demo.yaml")
        #expect(try Self.emopipe(["run", manifest, "--data", data, "--workdir", workdir, "--until", "audio"]).status == 0)
        try TestSupport.shell("sox -n -r 16000 -b 16 -c 1 '\(data)/Actor_01/03-01-02-01-01-01-01.wav' synth 1.5 pinknoise vol 0.2")
        #expect(try Self.emopipe(["run", manifest, "--workdir", workdir, "--until", "audio"]).status == 0)
        let export = try Self.emopipe(["cache", "export", "--stage", "audio", "--format", "npz", folder, "--workdir", workdir])
        #expect(export.status == 0 && export.stdout.contains("exported 2 audio records"), "\(export.stdout)\(export.stderr)")
        #expect(export.stderr.contains("left out 1 record(s) of content no source has now"), "\(export.stderr)")
    }

    /// A landmark model that is not there stops a run that computes faces before anything runs, naming
    /// the key; commands that only read, and runs that leave faces out, do not need the file.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func aMissingLandmarkModelStopsOnlyARunThatComputesFaces() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("landmarks") + "/work"
        let settings = ["--set", "faces.align=true", "--set", "faces.landmark_model=/nonexistent/shape_predictor_68_face_landmarks.dat",
                        "--data", data, "--workdir", workdir]
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let faces = try Self.emopipe(["run", manifest, "--until", "faces"] + settings)
        #expect(faces.status == 64 && faces.stderr.contains("faces.landmark_model") && faces.stderr.contains("No such file or directory"),
                "\(faces.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "refused before any stage ran")
        // `params` and a dry run check as a run checks: they do not promise a run that would be refused.
        let faceSettings = Array(settings.prefix(4)) + ["--set", "train.modalities=[audio, faces]"]
        for command in [["params", manifest], ["run", manifest, "--dry-run", "--data", data, "--workdir", workdir]] {
            let checked = try TestSupport.run(TestSupport.emopipe, command + faceSettings)
            #expect(checked.status == 64 && checked.stderr.contains("faces.landmark_model"), "\(command): \(checked.stderr)")
        }
        #expect(try Self.emopipe(["status", manifest] + settings).status == 0)
        #expect(try Self.emopipe(["run", manifest, "--until", "audio"] + settings).status == 0)
        // `status` reads only, but says what a run of the faces would meet.
        let status = try Self.emopipe(["status", manifest] + faceSettings + Array(settings.suffix(4)))
        let facesLine = status.stdout.split(separator: "\n").first { $0.hasPrefix("faces ") }.map(String.init) ?? ""
        #expect(status.status == 0 && facesLine.contains("a run would refuse to start now: ") && facesLine.contains("faces.landmark_model"),
                "\(status.stdout)")
    }

    /// The default landmark model (libdlib-data).
    static let dlibModel = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"

    /// The landmark model is fingerprinted by its bytes: edited in place, it makes the faces stale, saying
    /// which file, and a run computes them again.
    @Test(.enabled(if: TestSupport.hasTool("sox") && FileManager.default.fileExists(atPath: Self.dlibModel), "needs sox and dlib's model"))
    func aLandmarkModelEditedInPlaceMakesTheFacesStale() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1)])
        let folder = try TestSupport.temporaryFolder("landmarks-edited")
        let model = folder + "/lm.dat"
        try FileManager.default.copyItem(atPath: Self.dlibModel, toPath: model)
        let settings = ["--set", "faces.align=true", "--set", "faces.landmark_model=\(model)", "--set", "train.modalities=[audio, faces]",
                        "--data", data, "--workdir", folder + "/work"]
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        #expect(try Self.emopipe(["run", manifest, "--until", "faces"] + settings).status == 0)
        let before = try Self.emopipe(["status", manifest] + settings)
        #expect(before.stdout.contains("faces     up-to-date"), "\(before.stdout)")
        let handle = try #require(FileHandle(forWritingAtPath: model))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("x".utf8))
        try handle.close()
        let after = try Self.emopipe(["status", manifest] + settings)
        #expect(after.stdout.contains("faces     stale       the file landmark_model names (\(model)) does not hash as when this stage ran"), "\(after.stdout)")
        let again = try Self.emopipe(["run", manifest, "--until", "faces", "--dry-run"] + settings)
        #expect(again.stdout.range(of: #"faces +run "#, options: .regularExpression) != nil, "\(again.stdout)")
    }

    /// A shard deleted from under the cache makes its stage stale, saying why, and the next run computes
    /// its records again into a new shard, after which the stage is up to date.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func aDeletedShardIsComputedAgainByTheNextRun() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-01.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("deleted-shard") + "/work"
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        #expect(try Self.emopipe(["run", manifest, "--data", data, "--workdir", workdir, "--until", "audio"]).status == 0)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let first = try store.read { try CacheShardRow.fetchAll($0) }
        #expect(first.count == 1)
        let shard = try #require(first.first)
        // A record read into a folder that cannot be written names the option and the system's reason.
        let source = data + "/Actor_01/03-01-01-01-01-01-01.wav"
        let unwritable = try Self.emopipe(["cache", "get", "--stage", "audio", "--source", source, "--npy", "/proc/self/x.npy", "--workdir", workdir])
        #expect(unwritable.status == 1 && unwritable.stderr.contains("/proc/self/x.npy: --npy: cannot create: "), "\(unwritable.stderr)")
        #expect(!unwritable.stderr.contains("NSCocoaErrorDomain"), "\(unwritable.stderr)")
        try FileManager.default.removeItem(atPath: workdir + "/" + shard.file)
        // The index still counts the shard; stats says it is gone and what repairs it.
        let stats = try Self.emopipe(["cache", "stats", "--workdir", workdir])
        #expect(stats.status == 0 && stats.stderr.contains("1 indexed shard(s) missing or not of their recorded size (\(shard.file)): `emopipe cache verify`"),
                "\(stats.stderr)")
        // --json: the same figures, the missing shard named in the document.
        let statsJSON = try Self.emopipe(["cache", "stats", "--json", "--workdir", workdir])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(statsJSON.stdout.utf8)) as? [String: Any], "\(statsJSON.stderr)")
        let stages = try #require(document["stages"] as? [[String: Any]])
        let total = try #require(document["total"] as? [String: Int])
        #expect(statsJSON.status == 0 && document["unsound_shards"] as? [String] == [shard.file] && stages.contains { $0["stage"] as? String == "audio" }
                && total["records"] == stages.reduce(0) { $0 + ($1["records"] as? Int ?? 0) }, "\(statsJSON.stdout)")
        let status = try Self.emopipe(["status", manifest, "--workdir", workdir])
        #expect(status.stdout.contains("audio     stale       2 source(s) have no cached log-mel tensors (new, dropped by `cache verify`, or their shard file is gone or of another size than written)"),
                "\(status.stdout)")
        let again = try Self.emopipe(["run", manifest, "--workdir", workdir, "--until", "audio"])
        #expect(again.status == 0 && again.stderr.contains("2 to compute, 0 cached"), "\(again.stderr)")
        let records = try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").fetchAll($0) }
        #expect(records.count == 2 && !records.contains { $0.shardId == shard.id }, "both rows now name the new shard")
        let after = try Self.emopipe(["status", manifest, "--workdir", workdir])
        #expect(after.stdout.contains("audio     up-to-date"), "\(after.stdout)")
        // Sizes edited by hand near Int.max in two groups: the total saturates rather than trap.
        try store.write { db in
            try db.execute(sql: "UPDATE cacheShard SET bytes = 9000000000000000000")
            var other = shard
            other.id = nil; other.stage = "faces"; other.fingerprint = "edited"; other.file = "cache/faces/edited/x.shard"
            other.bytes = 9_000_000_000_000_000_000
            try other.insert(db)
        }
        let huge = try Self.emopipe(["cache", "stats", "--json", "--workdir", workdir])
        let hugeTotal = (try? JSONSerialization.jsonObject(with: Data(huge.stdout.utf8)) as? [String: Any])?["total"] as? [String: Any]
        #expect(huge.status == 0 && hugeTotal?["bytes"] as? Int == Int.max, "\(huge.stdout)\(huge.stderr)")
    }

    /// `reproduce` replays the parameters the run recorded: a default edited in the pipeline file since
    /// (audio's n_mels) does not make the reproduction run other settings and call the result different.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func reproduceReplaysTheRecordedParametersAfterThePipelineDefaultsChanged() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-01.wav", 1)])
        let folder = try TestSupport.temporaryFolder("repro-defaults")
        let shipped = try String(contentsOfFile: TestSupport.repositoryRoot + "/pipelines/ravdess.yaml", encoding: .utf8)
        try shipped.write(toFile: folder + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, "params: {train: {epochs: 2}}")
        try String(contentsOfFile: manifest, encoding: .utf8)
            .replacingOccurrences(of: "pipeline: \(TestSupport.repositoryRoot)/pipelines/ravdess.yaml", with: "pipeline: pipeline.yaml")
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let run = try Self.emopipe(["run", manifest, "--workdir", folder + "/work", "--until", "audio"])
        #expect(run.status == 0, "\(run.stderr)")
        let edited = shipped.replacingOccurrences(of: "      n_mels: preset", with: "      n_mels: 32")
        #expect(edited != shipped)
        try edited.write(toFile: folder + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let runs = try JSONSerialization.jsonObject(with: Data(try Self.emopipe(["runs", "--json", "--workdir", folder + "/work"]).stdout.utf8))
        let id = try #require((runs as? [[String: Any]])?.first?["id"] as? String)
        let repro = try Self.emopipe(["reproduce", id, "--workdir", folder + "/work", "--into", folder + "/repro", "--json"])
        #expect(repro.status == 0, "\(repro.stdout) \(repro.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(repro.stdout.utf8)) as? [String: Any]
        let fields = report?["fields"] as? [[String: Any]] ?? []
        #expect(fields.contains { $0["name"] as? String == "audio.n_mels" && $0["same"] as? Bool == true && $0["a"] as? Int == 64 },
                "\(fields.filter { ($0["name"] as? String)?.hasPrefix("audio.") == true })")
        // The reproduction's run folder, given by path, is read from its own work directory.
        let reproRuns = try JSONSerialization.jsonObject(with: Data(try Self.emopipe(["runs", "--json", "--workdir", folder + "/repro"]).stdout.utf8))
        let reproId = try #require((reproRuns as? [[String: Any]])?.first?["id"] as? String)
        let diff = try Self.emopipe(["diff", id, folder + "/repro/runs/" + reproId, "--workdir", folder + "/work"])
        #expect(diff.status == 0 && diff.stdout.contains("a = \(id)\nb = \(reproId)"), "\(diff.stdout) \(diff.stderr)")
        // reproduce reads it from there too; an --into folder with a terminal escape in its name is named escaped.
        let oddInto = folder + "/repro2\u{1B}[7m"
        let again = try Self.emopipe(["reproduce", folder + "/repro/runs/" + reproId, "--workdir", folder + "/work", "--into", oddInto])
        #expect(again.status == 0 && again.stderr.contains("reproducing run \(reproId) in \(oddInto.escaped)\n")
                && again.stdout.contains(" in \(oddInto.escaped)\n") && !(again.stdout + again.stderr).contains("\u{1B}"), "\(again.stdout) \(again.stderr)")
        // A plain run of the edited pipeline does use the new default: only reproduce replays the record.
        let params = try Self.emopipe(["params", manifest, "--json"])
        #expect(params.stdout.contains("\"key\":\"n_mels\",\"origin\":\"pipeline\",\"stage\":\"audio\",\"value\":32"), "\(params.stdout.prefix(400))")
    }

    /// A file name with a terminal escape and a line break is listed escaped, on one line.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func sourcesListsOddFileNamesEscaped() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1)])
        let odd = data + "/Actor_01/x\u{1B}[31mred\nline.wav"
        try FileManager.default.copyItem(atPath: data + "/Actor_01/03-01-01-01-01-01-01.wav", toPath: odd)
        let workdir = try TestSupport.temporaryFolder("odd-names") + "/work"
        let run = try Self.emopipe(["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "ingest"])
        #expect(run.status == 0, "\(run.stderr)")
        let sources = try Self.emopipe(["sources", "--workdir", workdir])
        #expect(sources.status == 0 && !sources.stdout.contains("\u{1B}"), "\(sources.stdout)")
        #expect(sources.stdout.contains("x\\u{1B}[31mred\\nline.wav  — not a RAVDESS file name"), "\(sources.stdout)")
        #expect(sources.stdout.split(separator: "\n").count == 2, "one line per source: \(sources.stdout)")
        // An empty list says what it is empty of, not "0 sources: ".
        let none = try Self.emopipe(["sources", "--failed", "--workdir", workdir])
        #expect(none.status == 0 && none.stdout.isEmpty && none.stderr == "no failed sources (of 2)\n", "\(none.stderr)")
        try Folder.create(workdir + "-fresh")
        _ = try ProvenanceStore(path: workdir + "-fresh/emopipe.sqlite")   // a work directory no ingest has filled
        let fresh = try Self.emopipe(["sources", "--workdir", workdir + "-fresh"])
        #expect(fresh.status == 0 && fresh.stderr == "no sources recorded yet (run ingest first)\n", "\(fresh.stderr)")
    }

    /// A negative number after a numeric option is its value, refused by name with the range, not taken
    /// for an unknown flag "-1" with the option said to be missing its value.
    @Test func negativeNumbersAfterNumericOptionsAreRefusedAsValues() throws {
        let folder = try TestSupport.temporaryFolder("negative")
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let cases: [([String], String)] = [
            (["status", manifest, "--workdir", folder + "/work", "--threads", "-1"], "--threads -1: out of range; expected an integer from 1 to"),
            // Too long for Int: out of range by name too, not the argument parser's "invalid for '--threads <n>'".
            (["status", manifest, "--workdir", folder + "/work", "--threads", "99999999999999999999"], "--threads 99999999999999999999: out of range; expected an integer from 1 to"),
            (["status", manifest, "--workdir", folder + "/work", "--threads", "two"], "--threads two: expected an integer from 1 to"),
            (["runs", "--limit", "-3", "--workdir", folder + "/work"], "--limit -3: expected 0 or more runs"),
            (["cache", "export", "--stage", "audio", "--format", "npz", "--records-per-file", "-5", folder, "--workdir", folder + "/work"],
             "--records-per-file -5 is outside"),
            // Not a number, but as wrong an argument: a file where the folder to write into goes.
            (["cache", "export", "--stage", "audio", "--format", "npz", manifest, "--workdir", folder + "/work"],
             "DIR \(manifest): exists and is not a folder"),
            (["predict", "--run", "x", "--timeout", "-2", "-"], "--timeout -2: expected a number of seconds"),
            (["run", manifest, "--worker", "-1/2", "--workdir", folder + "/work"], "worker -1/2: the index I counts from 0, so of 2 workers it is 0 to 1"),
            (["sweep", manifest, "--worker", "-1/2", "--workdir", folder + "/work"], "worker -1/2: the index I counts from 0"),
            (["run", manifest, "--worker", "99999999999999999999/1", "--workdir", folder + "/work"],
             "--worker '99999999999999999999/1': out of range; the count N is from 1 to"),
        ]
        for (arguments, message) in cases {
            let result = try Self.emopipe(arguments)
            #expect(result.status == 64 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }

    /// Every cache command answers a stage alike: no such stage is a usage error (64), a stage that keeps no
    /// cached records has none to give (1), as the README says (verify said 64 of train, get 1).
    @Test func cacheCommandsAnswerAStageWithoutRecordsAlike() throws {
        let folder = try TestSupport.temporaryFolder("cache-stage")
        for (stage, status, says) in [("train", Int32(1), "train keeps no cached records (those that do: audio, faces)"),
                                      ("nosuch", Int32(64), "--stage nosuch: no such stage; the cached stages are audio and faces")] {
            for arguments in [["cache", "get", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--stage", stage, "--source", "x.wav", "--json"],
                              ["cache", "export", "--stage", stage, "--format", "npz", folder + "/out"], ["cache", "verify", "--stage", stage]] {
                let result = try Self.emopipe(arguments + ["--workdir", folder + "/work"])
                #expect(result.status == status && result.stderr.contains(says), "\(arguments): \(result.status) \(result.stderr)")
            }
        }
    }

    @Test func noCommandAndHelpOnAnUnknownCommandAreUsageErrors() throws {
        let bare = try Self.emopipe([])
        #expect(bare.status == 64, "\(bare.stdout) \(bare.stderr)")
        #expect(bare.stderr.contains("say which command to run") && bare.stderr.contains("SUBCOMMANDS"), "\(bare.stderr)")
        // A command group named without one of its commands is the same usage error, its own help shown.
        for group in ["cache", "faces"] {
            let bareGroup = try Self.emopipe([group])
            #expect(bareGroup.status == 64, "\(group): \(bareGroup.stdout) \(bareGroup.stderr)")
            #expect(bareGroup.stderr.contains("emopipe \(group): say which command to run") && bareGroup.stderr.contains("USAGE: emopipe \(group)"),
                    "\(bareGroup.stderr)")
        }
        let unknown = try Self.emopipe(["help", "NOSUCH"])
        #expect(unknown.status == 64 && unknown.stderr.contains("no command 'NOSUCH' in `emopipe`"), "\(unknown.stderr)")
        let nested = try Self.emopipe(["help", "cache", "NOSUCH"])
        #expect(nested.status == 64 && nested.stderr.contains("no command 'NOSUCH' in `emopipe cache`"), "\(nested.stderr)")
        let known = try Self.emopipe(["help", "cache", "get"])
        #expect(known.status == 0 && known.stdout.contains("--stage"), "\(known.stderr)")
    }

    /// What an error echoes (a manifest's path, an argument) cannot steer the terminal: escapes are spelt out,
    /// and a name taken from such a file name says to give one.
    @Test func errorsEchoControlCharactersSpeltOut() throws {
        let folder = try TestSupport.temporaryFolder("escape")
        let manifest = folder + "/e\u{1B}[2Jx.yaml"
        try "pipeline: \(TestSupport.repositoryRoot)/pipelines/ravdess.yaml\ndata: \(folder)\n".write(toFile: manifest, atomically: true, encoding: .utf8)
        let named = try Self.emopipe(["run", manifest, "--dry-run", "--workdir", folder + "/w"])
        #expect(named.status == 64 && !named.stderr.contains("\u{1B}"), "\(named.stderr)")
        #expect(named.stderr.contains("e\\u{1B}[2Jx.yaml: name = \"e\\u{001B}[2Jx\" (taken from the file's name, as none is given: add a `name:`)"),
                "\(named.stderr)")
        let plain = folder + "/plain.yaml"
        try "pipeline: \(TestSupport.repositoryRoot)/pipelines/ravdess.yaml\ndata: \(folder)\n".write(toFile: plain, atomically: true, encoding: .utf8)
        let stage = try Self.emopipe(["run", plain, "--until", "\u{1B}[2J\u{7}", "--workdir", folder + "/w"])
        #expect(stage.status == 64 && stage.stderr.contains("--until: unknown stage '\\u{1B}[2J\\u{7}'")
                && !stage.stderr.contains("\u{1B}") && !stage.stderr.contains("\u{7}"), "\(stage.stderr)")
        // A value the argument parser itself refuses (not a number) is echoed by its message: spelt out too.
        // A line feed in a value is spelt out too: it made the message's line two.
        let lineFeed = try Self.emopipe(["runs", "--limit=1\n\u{1B}2", "--workdir", folder + "/w"])
        #expect(lineFeed.status == 64 && lineFeed.stderr.hasPrefix("Error: The value '1\\n\\u{1B}2' is invalid for '--limit <limit>'\n"), "\(lineFeed.stderr)")
        for arguments in [["runs", "--limit", "1\u{1B}]0;x\u{7}", "--workdir", folder + "/w"], ["no\u{1B}[2Jcommand"], ["runs", "--\u{1B}[2J"]] {
            let refused = try Self.emopipe(arguments)
            #expect(refused.status == 64 && refused.stderr.contains("\\u{1B}") && !refused.stderr.contains("\u{1B}")
                    && !refused.stderr.contains("\u{7}") && refused.stderr.contains("\nUsage: emopipe"), "\(arguments): \(refused.stderr)")
        }
        // Each stage option is named with its value.
        for option in ["--only", "--force"] {
            let named = try Self.emopipe(["run", plain, option, "bogus", "--workdir", folder + "/w"])
            #expect(named.status == 64 && named.stderr.contains("\(option): unknown stage 'bogus' (stages: ingest,"), "\(named.stderr)")
        }
    }

    @Test func versionBelongsToTheRootCommandOnly() throws {
        let version = try Self.emopipe(["--version"])
        #expect(version.status == 0 && version.stdout.contains("GEMM: "), "\(version.stdout) \(version.stderr)")
        #expect(try Self.emopipe(["--help"]).stdout.contains("--version"))
        for path in Self.commandPaths where !path.isEmpty {
            let help = try Self.emopipe(["help"] + path)
            #expect(help.status == 0, "\(path): \(help.stderr)")
            #expect(!help.stdout.contains("--version"), "\(path) lists --version: \(help.stdout)")
            let asked = try Self.emopipe(path + ["--version"])
            #expect(asked.status == 64 && !asked.stdout.contains("GEMM"), "\(path) --version: \(asked.stdout) \(asked.stderr)")
        }
    }

    /// ArgumentParser appends "(default: …)" to an option's help by itself: a help string that says
    /// its default too prints it twice.
    @Test func everyHelpPrintsEachDefaultOnce() throws {
        for path in Self.commandPaths {
            let help = try Self.emopipe(["help"] + path)
            #expect(help.status == 0, "\(path): \(help.stderr)")
            var entries: [String] = []
            for line in help.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                let trimmed = line.drop { $0 == " " }
                if line.hasPrefix("  ") && (trimmed.hasPrefix("-") || trimmed.hasPrefix("<")) { entries.append(String(line)) }
                else if line.hasPrefix("    "), !entries.isEmpty { entries[entries.count - 1] += " " + trimmed }
                else if !line.hasPrefix(" ") { entries.append("") }
            }
            for entry in entries {
                // The word, not the file manifests/default.yaml a default may name.
                let words = entry.lowercased().replacingOccurrences(of: "default.yaml", with: "")
                let mentions = words.components(separatedBy: "default").count - 1
                #expect(mentions <= 1, "\(path): \(entry)")
            }
        }
    }

    /// Every number the command line takes, at and past its edges (negative, zero, Int.max): a
    /// documented status and a one-line message, never a trap (`runs --limit=-1` trapped in `prefix`).
    @Test func numericOptionsAtTheirEdgesGetAStatusNeverATrap() throws {
        let workdir = try TestSupport.temporaryFolder("numeric-edges")
        let export = try TestSupport.temporaryFolder("numeric-export")
        let huge = String(Int.max)
        var cases: [[String]] = []
        for value in ["-1", "0", huge] {
            cases += [["runs", "--limit=\(value)"], ["status", "--threads=\(value)"],
                      ["cache", "export", "--stage", "audio", "--format", "npz", "--records-per-file=\(value)", export],
                      ["predict", "--run", "NOSUCH", "clip.wav", "--timeout=\(value)"], ["predict", "--run", "NOSUCH", "clip.wav", "--hop=\(value)"]]
        }
        for arguments in cases {
            let result = try Self.emopipe(arguments + ["--workdir", workdir])
            #expect([0, 1, 64].contains(result.status) && !result.stderr.contains("crashed"), "\(arguments): \(result.status) \(result.stderr)")
        }
        let negative = try Self.emopipe(["runs", "--limit=-1", "--workdir", workdir])
        #expect(negative.status == 64 && negative.stderr.contains("--limit -1: expected 0 or more runs"), "\(negative.stderr)")
    }

    /// --set values that would make the recorded manifest larger than a manifest may be are refused up
    /// front: the run's record could not be read back by `reproduce`.
    @Test func overridesTooLargeToRecordAreRefused() throws {
        let long = String(repeating: "/x", count: 60_000)
        let settings = ["a", "b", "c"].flatMap { ["--set", "faces.landmark_model=\(long)\($0)"] }
        let refused = try TestSupport.run(TestSupport.emopipe, ["params", CommandLineEdgesTests.manifest] + settings)
        #expect(refused.status == 64 && refused.stderr.contains("would be recorded as") && refused.stderr.count < 400, "\(refused.stderr.prefix(300))")
        let one = try TestSupport.run(TestSupport.emopipe, ["params", CommandLineEdgesTests.manifest] + settings.prefix(2))
        #expect(one.status == 0, "\(one.stderr.prefix(300))")
    }

    @Test func predictRefusesAHopOutsideItsBoundsAndARunThatDoesNotExist() throws {
        let workdir = try TestSupport.temporaryFolder("predict")
        // Decimal only: Double would read 0x10 as 16 seconds.
        for hop in ["-1", "--hop=-1", "0.05", "nan", "100000.0", "0x10", "inf", "1e400", "10s"] {
            let arguments = hop.hasPrefix("--") ? [hop] : ["--hop", hop]
            let result = try Self.emopipe(["predict", "--run", "NOSUCH", "clip.wav", "--workdir", workdir] + arguments)
            #expect(result.status == 64, "\(hop): \(result.stderr)")
            let value = hop.hasPrefix("--") ? "-1" : hop
            #expect(result.stderr.contains("--hop \(value)") && result.stderr.contains("from 0.1 to 86400"), "\(hop): \(result.stderr)")
        }
        // A run id where there is no work directory: said as every command that reads one says it (it was "no run", 64).
        let noWorkDirectory = try Self.emopipe(["predict", "--run", "NOSUCH", "clip.wav", "--workdir", workdir])
        #expect(noWorkDirectory.status == 1 && noWorkDirectory.stderr.contains("\(workdir): no work directory here yet (run `emopipe run` first, or name an existing one with --workdir"), "\(noWorkDirectory.stderr)")
        _ = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let missing = try Self.emopipe(["predict", "--run", "NOSUCH", "clip.wav", "--workdir", workdir])
        #expect(missing.status == 64, "\(missing.stderr)")
        #expect(missing.stderr.contains("no run 'NOSUCH'") && missing.stderr.contains("emopipe runs"), "\(missing.stderr)")
        // Neither the runs folder (an empty reference) nor a file is a run.
        let file = try TestSupport.temporaryFolder("not-a-run") + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        for reference in ["", file] {
            let refused = try Self.emopipe(["predict", "--run", reference, "clip.wav", "--workdir", workdir])
            #expect(refused.status == 64 && refused.stderr.contains("no run '\(reference)'"), "\(reference): \(refused.stderr)")
        }
        // Nor is a folder that holds neither a run's manifest nor a model (it was "run the export stage", exit 1).
        for reference in [workdir, "/etc", "."] {
            let refused = try Self.emopipe(["predict", "--run", reference, "clip.wav", "--workdir", workdir])
            #expect(refused.status == 64 && refused.stderr.contains("--run \(reference): a folder, but no run's"), "\(reference): \(refused.stderr)")
        }
        // A file named like an option, given alone, reads as one (the parser drops it without a word): said so,
        // with the spelling that works; and --format with no stream after it names what is missing.
        let dashedFolder = try TestSupport.temporaryFolder("dashed")
        try Data("x".utf8).write(to: URL(fileURLWithPath: dashedFolder + "/-x.wav"))
        let dashed = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", "NOSUCH", "--workdir", workdir, "-x.wav"], currentDirectory: dashedFolder)
        #expect(dashed.status == 64 && dashed.stderr.contains("-x.wav begins with -, so it reads as an option: give that file as ./-x.wav, or after --"),
                "\(dashed.stderr)")
        for arguments in [["--format", "lavfi"], ["--format=", "clip.wav"]] {
            let formatOnly = try Self.emopipe(["predict", "--run", "NOSUCH", "--workdir", workdir] + arguments)
            let named = arguments == ["--format", "lavfi"] ? "lavfi" : "clip.wav"
            #expect(formatOnly.status == 64 && formatOnly.stderr.contains("--format \(named) opens one stream input, and none is given"), "\(formatOnly.stderr)")
        }
        // A closed standard input is said to be closed (a stream read /dev/null, which SQLite had put there).
        for (arguments, named) in [("-", "-"), ("--files-from -", "--files-from -")] {
            let closed = try TestSupport.run("/bin/bash", ["-c", "exec '\(TestSupport.emopipe)' predict --run NOSUCH --workdir '\(workdir)' \(arguments) <&-"])
            #expect(closed.status == 64 && closed.stderr.contains("\(named): standard input is closed (<&-): there is nothing to read"), "\(closed.stderr)")
        }
        // An empty standard input is said to be empty ("Invalid data found" read as a damaged recording).
        let emptyFile = try TestSupport.temporaryFolder("empty-input") + "/empty"
        try Data().write(to: URL(fileURLWithPath: emptyFile))
        for (source, named) in [("/dev/null", "/dev/null"), (emptyFile, "an empty file")] {
            let empty = try TestSupport.run("/bin/bash", ["-c", "exec '\(TestSupport.emopipe)' predict --run NOSUCH --workdir '\(workdir)' - < '\(source)'"])
            #expect(empty.status == 64 && empty.stderr.contains("-: standard input is \(named): there is nothing to read"), "\(empty.stderr)")
        }
        // A folder holding only an ONNX file (copied out for onnxruntime) is told what predict reads, not to run export.
        let onnxOnly = try TestSupport.temporaryFolder("onnx-only")
        try Data("onnx".utf8).write(to: URL(fileURLWithPath: onnxOnly + "/model.int8.onnx"))
        let onlyOnnx = try Self.emopipe(["predict", "--run", onnxOnly, "clip.wav", "--workdir", workdir])
        #expect(onlyOnnx.status == 1 && onlyOnnx.stderr.contains("holds model.int8.onnx but not model.safetensors")
                && !onlyOnnx.stderr.contains("run the export stage"), "\(onlyOnnx.stderr)")
        // A model.onnx that is a link to nothing, or a folder, is no file to give onnxruntime: no model here.
        let noOnnx = try TestSupport.temporaryFolder("no-onnx")
        try FileManager.default.createSymbolicLink(atPath: noOnnx + "/model.onnx", withDestinationPath: noOnnx + "/gone")
        try FileManager.default.createDirectory(atPath: noOnnx + "/model.int8.onnx", withIntermediateDirectories: true)
        let noModel = try Self.emopipe(["predict", "--run", noOnnx, "clip.wav", "--workdir", workdir])
        #expect(noModel.status == 1 && noModel.stderr.contains("no exported model here") && !noModel.stderr.contains("onnxruntime"), "\(noModel.stderr)")
        // A folder whose model is a link that leads nowhere is a run's folder with a broken model, said as such (exit 1).
        let dangling = try TestSupport.temporaryFolder("dangling-model")
        try FileManager.default.createSymbolicLink(atPath: dangling + "/model.safetensors", withDestinationPath: dangling + "/gone")
        let broken = try Self.emopipe(["predict", "--run", dangling, "clip.wav", "--workdir", workdir])
        #expect(broken.status == 1 && broken.stderr.contains("\(dangling)/model.safetensors: cannot read the exported weights"), "\(broken.stderr)")
        // Weights without model.json: an export stopped part way in this run's folder (its run then finished elsewhere).
        let halfExported = try TestSupport.temporaryFolder("half-exported")
        try Data("weights".utf8).write(to: URL(fileURLWithPath: halfExported + "/model.safetensors"))
        let half = try Self.emopipe(["predict", "--run", halfExported, "clip.wav", "--workdir", workdir])
        #expect(half.status == 1 && half.stderr.contains("\(halfExported): holds model.safetensors but not model.json: its export did not finish here")
                && half.stderr.contains("emopipe runs"), "\(half.stderr)")
        // A format FFmpeg does not have is the option's mistake, said before anything is opened (it was exit 1, as the input's).
        for format in ["bogus", ""] {
            let refused = try Self.emopipe(["predict", "--run", "NOSUCH", "--format", format, "default", "--workdir", workdir])
            #expect(refused.status == 64 && refused.stderr.contains("--format: FFmpeg has no input format or device named \"\(format)\""),
                    "\(format): \(refused.stderr)")
        }
    }
}
