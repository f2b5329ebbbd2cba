import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import GRDB
import Testing

/// The cache from Python (issue 14): the package in `python/`, installed with pip, reads every record
/// of a small demo-manifest work directory byte for byte as `emopipe cache get --npy` writes it, with
/// a zero-copy view; `emopipe cache export` writes WebDataset tar shards and npz files that Python's
/// `tarfile` and `numpy.load` read back equal to the reader (scripts/check_python_reader.py is the
/// Python side); bad export requests exit with the documented status, naming the value.
@Suite("cache from Python", .serialized,
       .enabled(if: IngestFixture.available && TestSupport.python != nil, "needs ../shared/data/ravdess, the emopipe binary and the test venv"))
struct PythonCacheReaderTests {
    /// A work directory with audio and faces records: actor 01's first 8 wavs and 2 AV clips, plus
    /// one wav's bytes again under actor 09's name (one record, two sources). Made once.
    struct Fixture {
        let data: String
        let workdir: String
        /// The package installed by `pip install ./python` (into a folder put on PYTHONPATH).
        let site: String
        let duplicate: (first: String, second: String)
    }

    static let shared: Result<Fixture, Error> = Result {
        let source = try IngestFixture.materialized.get() + "/Actor_01"
        let data = try TestSupport.temporaryFolder("pydata") + "/ravdess"
        try FileManager.default.createDirectory(atPath: data + "/Actor_01", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: data + "/Actor_09", withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: source).sorted()
        for name in names.filter({ $0.hasPrefix("03-") }).prefix(8) + names.filter({ $0.hasPrefix("01-") }).prefix(2) {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: data + "/Actor_01/" + name)
        }
        let first = data + "/Actor_01/" + names.filter { $0.hasPrefix("03-") }[0]
        let second = data + "/Actor_09/03-01-05-01-01-01-09.wav"
        try FileManager.default.copyItem(atPath: first, toPath: second)

        let workdir = try TestSupport.temporaryFolder("pywork")
        for stage in ["audio", "faces"] {
            let run = try IngestFixture.emopipe(["run", "--until", stage], data: data, workdir: workdir)
            guard run.status == 0 else { throw TestFailure("run --until \(stage) exited \(run.status): \(run.stderr)") }
        }
        let site = try TestSupport.temporaryFolder("pysite")
        guard let python = TestSupport.python else { throw TestFailure("no test venv") }
        // No network: the build backend (setuptools, wheel) comes from the test venv.
        try TestSupport.shell("'\(python)' -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation "
                              + "--target '\(site)' '\(TestSupport.repositoryRoot)/python'")
        return Fixture(data: data, workdir: workdir, site: site, duplicate: (first, second))
    }

    /// Runs scripts/check_python_reader.py with the pip-installed package; its JSON answer.
    static func check(_ fixture: Fixture, _ args: [String], python: String? = TestSupport.python) throws -> [String: Any] {
        guard let python else { throw TestFailure("no test venv") }
        let result = try TestSupport.run(python,
                                         [TestSupport.repositoryRoot + "/scripts/check_python_reader.py"] + args,
                                         environment: ["PYTHONPATH": fixture.site], currentDirectory: fixture.site)
        guard result.status == 0, let answer = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("check_python_reader.py \(args.first ?? "") exited \(result.status): \(result.stderr)")
        }
        return answer
    }

    static func recordCounts(_ workdir: String) throws -> [String: Int] {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        return try store.read { db in
            var counts: [String: Int] = [:]
            for row in try CacheRecordRow.fetchAll(db) { counts[row.stage, default: 0] += 1 }
            return counts
        }
    }

    static func export(_ fixture: Fixture, _ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(TestSupport.emopipe, ["cache", "export"] + args + ["--workdir", fixture.workdir])
    }

    @Test func thePipInstalledReaderMatchesCacheGetOnEveryRecordWithoutACopy() throws {
        let fixture = try Self.shared.get()
        #expect(FileManager.default.fileExists(atPath: fixture.site + "/emopipe/__init__.py"), "pip installed the package")
        let counts = try Self.recordCounts(fixture.workdir)
        #expect(counts["audio"] == 8 && counts["faces"] == 2, "\(counts)")
        let npyFolder = try TestSupport.temporaryFolder("pynpy")
        let store = try ProvenanceStore(path: fixture.workdir + "/emopipe.sqlite")
        for row in try store.read({ try CacheRecordRow.fetchAll($0) }) {
            let get = try IngestFixture.emopipe(["cache", "get", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", fixture.data,
                                                 "--stage", row.stage, "--source", row.key,
                                                 "--npy", npyFolder + "/\(row.stage)-\(row.key).npy"], workdir: fixture.workdir)
            #expect(get.status == 0, "\(get.stderr)")
        }
        let answer = try Self.check(fixture, ["reader", fixture.workdir, npyFolder])
        #expect(answer["records"] as? [String: Int] == counts)
        #expect(answer["zero_copy"] as? Bool == true)
        #expect((answer["problems"] as? [String]) == [], "\(answer)")
        // The test venv has no torch: the package imports all the same, and the adapter says what it needs.
        #expect((answer["torch_adapter"] as? String)?.contains("needs PyTorch") == true, "\(answer)")
    }

    /// The torch venv (scripts/torch_venv.sh) is not CI's; where it exists, the Dataset adapter is checked too.
    static let torchPython: String? = {
        let path = TestSupport.repositoryRoot + "/.venv-torch/bin/python"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    @Test(.enabled(if: torchPython != nil, "needs .venv-torch (scripts/torch_venv.sh)"))
    func theTorchDatasetGivesTheReadersTensorsThroughAMultiWorkerLoader() throws {
        let fixture = try Self.shared.get()
        for stage in ["audio", "faces"] {
            let answer = try Self.check(fixture, ["torch", fixture.workdir, stage], python: Self.torchPython)
            #expect(answer["samples"] as? Int == (try Self.recordCounts(fixture.workdir))[stage])
            #expect((answer["problems"] as? [String]) == [], "\(answer)")
        }
    }

    @Test func aTarExportIsWebDatasetShardsThatTarfileAndNumpyReadAsTheReaderDoes() throws {
        let fixture = try Self.shared.get()
        let folder = try TestSupport.temporaryFolder("pytar")
        let result = try Self.export(fixture, ["--stage", "audio", "--format", "tar", "--records-per-file", "3", folder])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("exported 8 audio records"), "\(result.stdout)")
        let answer = try Self.check(fixture, ["tar", fixture.workdir, "audio", folder])
        #expect(answer["files"] as? [String] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"])
        #expect(answer["records"] as? Int == 8)
        #expect((answer["problems"] as? [String]) == [], "\(answer)")

        // Labels come from the source rows: one record whose bytes are two sources lists both.
        let sha = try TestSupport.sha256sum(fixture.duplicate.first)
        let json = try TestSupport.shell("for f in '\(folder)'/shard-*.tar; do tar -xOf \"$f\" '\(sha).json' 2>/dev/null; done; true")
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(fields["sources"] as? [String] == [fixture.duplicate.first, fixture.duplicate.second])
        #expect(fields["actor"] as? Int == 1 && fields["emotion_name"] is String && fields["real_frames"] is Int)

        // The same records give the same bytes.
        let again = try TestSupport.temporaryFolder("pytar2")
        #expect(try Self.export(fixture, ["--stage", "audio", "--format", "tar", "--records-per-file", "3", again]).status == 0)
        #expect(try TestSupport.shell("cd '\(folder)' && sha256sum shard-*") == TestSupport.shell("cd '\(again)' && sha256sum shard-*"))
    }

    @Test func anNpzExportLoadsInNumpyWithItsLabels() throws {
        let fixture = try Self.shared.get()
        let folder = try TestSupport.temporaryFolder("pynpz")
        let result = try Self.export(fixture, ["--stage", "faces", "--format", "npz", folder])
        #expect(result.status == 0, "\(result.stderr)")
        let answer = try Self.check(fixture, ["npz", fixture.workdir, "faces", folder])
        #expect(answer["files"] as? [String] == ["shard-000000.npz"])
        #expect(answer["records"] as? Int == 2)
        #expect((answer["problems"] as? [String]) == [], "\(answer)")
    }

    /// A record whose content no source has any more (its file removed since) is left out by the reader
    /// as by `cache export`: a training set read either way is the same, of current files only.
    @Test func theReaderLeavesOutRecordsOfRemovedFilesAsExportDoes() throws {
        let fixture = try Self.shared.get()
        let data = try TestSupport.temporaryFolder("pygone") + "/ravdess"
        try FileManager.default.createDirectory(atPath: data + "/Actor_01", withIntermediateDirectories: true)
        let wavs = try FileManager.default.contentsOfDirectory(atPath: fixture.data + "/Actor_01").filter { $0.hasPrefix("03-") }.sorted().prefix(3)
        for name in wavs { try FileManager.default.copyItem(atPath: fixture.data + "/Actor_01/" + name, toPath: data + "/Actor_01/" + name) }
        let workdir = try TestSupport.temporaryFolder("pygonework")
        #expect(try IngestFixture.emopipe(["run", "--until", "audio"], data: data, workdir: workdir).status == 0)
        let removed = data + "/Actor_01/" + wavs[wavs.startIndex], kept = data + "/Actor_01/" + wavs[wavs.startIndex + 1]
        // Beside it, a copy of a file in use under a name ingest refuses (emotion 09).
        let misnamed = data + "/Actor_01/03-01-09-01-01-01-01.wav"
        try FileManager.default.removeItem(atPath: removed)
        try FileManager.default.copyItem(atPath: kept, toPath: misnamed)
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: data, workdir: workdir).status == 3)
        #expect(try Self.recordCounts(workdir)["audio"] == 3, "the removed file's record stays until gc")
        // cache get serves their bytes' records, and says the path asked for is not a file in use.
        for (path, status, says) in [(removed, "removed", "which no file in use has now"), (misnamed, "failed", "which \(kept) also holds")] {
            let get = try TestSupport.run(TestSupport.emopipe, ["cache", "get", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data,
                                                                "--stage", "audio", "--source", path, "--json", "--workdir", workdir])
            let fields = try JSONSerialization.jsonObject(with: Data(get.stdout.utf8)) as? [String: Any]
            #expect(get.status == 0 && fields?["status"] as? String == status && get.stderr.contains("note: \(path) is \(status)")
                    && get.stderr.contains(says), "\(get.stdout) \(get.stderr)")
        }
        let folder = try TestSupport.temporaryFolder("pygonetar")
        let export = try TestSupport.run(TestSupport.emopipe, ["cache", "export", "--stage", "audio", "--format", "tar", "--workdir", workdir, folder])
        #expect(export.status == 0 && export.stderr.contains("left out 1 record(s) of content no source has now"), "\(export.stderr)")
        #expect(export.stdout.contains("exported 2 audio records"), "\(export.stdout)")
        let answer = try Self.check(fixture, ["tar", workdir, "audio", folder])
        #expect(answer["records"] as? Int == 2 && (answer["problems"] as? [String]) == [], "\(answer)")
    }

    @Test func badExportRequestsNameTheValueAndExitWithTheDocumentedStatus() throws {
        let fixture = try Self.shared.get()
        let empty = try TestSupport.temporaryFolder("pyempty")
        let cases: [(args: [String], status: Int32, says: String)] = [
            (["--stage", "nosuch", "--format", "tar", empty], ExitStatus.usage, "nosuch"),
            (["--stage", "audio", "--fingerprint", "ffffffff", "--format", "tar", empty], ExitStatus.usage, "ffffffff"),
            (["--stage", "audio", "--fingerprint", "xyz", "--format", "tar", empty], ExitStatus.usage, "xyz"),
            (["--stage", "audio", "--format", "zip", empty], ExitStatus.usage, "zip"),
            (["--stage", "audio", "--format", "tar", ""], ExitStatus.usage, "DIR is empty: name the folder to write into"),
            (["--stage", "audio", "--format", "tar", "--records-per-file", "0", empty], ExitStatus.usage, "0"),
            (["--stage", "split", "--format", "tar", empty], ExitStatus.failure, "split"),
            (["--stage", "audio", "--format", "tar", fixture.workdir + "/emopipe.sqlite/sub"], ExitStatus.failure,
             fixture.workdir + "/emopipe.sqlite: is a file where a folder should be: move or remove it"),
        ]
        for c in cases {
            let result = try Self.export(fixture, c.args)
            #expect(result.status == c.status, "\(c.args): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains(c.says), "\(c.args): \(result.stderr)")
        }
        // A missing folder is created, with its parents.
        #expect(try Self.export(fixture, ["--stage", "audio", "--format", "tar", empty + "/new/deeper"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: empty + "/new/deeper/shard-000000.tar"))
        // A folder holding an earlier export is refused, not mixed with a new one.
        #expect(try Self.export(fixture, ["--stage", "audio", "--format", "npz", empty]).status == 0)
        let again = try Self.export(fixture, ["--stage", "audio", "--format", "npz", empty])
        #expect(again.status == ExitStatus.failure && again.stderr.contains("already holds an earlier export (export.json)"), "\(again.stderr)")
        // Nor may DIR be the work directory, one of its own folders (reached by any name) or the kernel's.
        let workdir = fixture.workdir
        for (dir, says) in [(workdir, "DIR is the work directory itself"), (workdir + "/cache/out", "DIR lies in the work directory's own folder"),
                            (workdir + "/runs/../runs/new", "DIR lies in the work directory's own folder"),
                            ("/sys/emopipe-export", "DIR is on the kernel's /proc or /sys filesystem")] {
            let refused = try Self.export(fixture, ["--stage", "audio", "--format", "tar", dir])
            #expect(refused.status == ExitStatus.failure && refused.stderr.contains(says), "\(dir): \(refused.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: workdir + "/cache/out") && !FileManager.default.fileExists(atPath: workdir + "/runs/new"))
        // A link and `..` together: the kernel follows the link first, so `link/..` is inside the cache.
        let links = try TestSupport.temporaryFolder("pylinks")
        try FileManager.default.createSymbolicLink(atPath: links + "/audio", withDestinationPath: workdir + "/cache/audio")
        let around = try Self.export(fixture, ["--stage", "audio", "--format", "tar", links + "/audio/../out"])
        #expect(around.status == ExitStatus.failure && around.stderr.contains("DIR lies in the work directory's own folder"), "\(around.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/cache/out") && !FileManager.default.fileExists(atPath: links + "/out"))
        // A name that does not exist, `..` back from it, then a link to the work directory: still the work directory.
        try FileManager.default.createSymbolicLink(atPath: links + "/work", withDestinationPath: workdir)
        let back = try Self.export(fixture, ["--stage", "audio", "--format", "tar", links + "/nx/../work"])
        #expect(back.status == ExitStatus.failure && back.stderr.contains("DIR is the work directory itself"), "\(back.stderr)")
        // A relative DIR from a folder that was deleted leads nowhere: refused, not written under /.
        let gone = try TestSupport.shell("mkdir -p '\(links)/gone' && cd '\(links)/gone' && rmdir '\(links)/gone' && "
            + "'\(TestSupport.emopipe)' cache export --stage audio --format tar --workdir '\(workdir)' emopipe-relative-out 2>&1; echo \"status $?\"")
        #expect(gone.contains("the current folder is gone (deleted): give DIR as an absolute path") && gone.contains("status 1"), "\(gone)")
        #expect(!FileManager.default.fileExists(atPath: "/emopipe-relative-out"))
        // Nor is a relative --data from there remembered as relative (exit 64).
        let data = try TestSupport.shell("mkdir -p '\(links)/gone' && cd '\(links)/gone' && rmdir '\(links)/gone' && "
            + "'\(TestSupport.emopipe)' status '\(TestSupport.repositoryRoot)/manifests/demo.yaml' --data ../data --workdir '\(links)/w' 2>&1; echo \"status $?\"")
        #expect(data.contains("--data ../data is relative, and the current folder is gone (deleted)") && data.contains("status 64"), "\(data)")
        // A cache key prefix, as `cache stats` prints it, selects the same records.
        let store = try ProvenanceStore(path: fixture.workdir + "/emopipe.sqlite")
        let fingerprint = try #require(try store.stageState("audio")?.parametersFingerprint)
        let byPrefix = try TestSupport.temporaryFolder("pyprefix")
        let prefixed = try Self.export(fixture, ["--stage", "audio", "--cache-key", String(fingerprint.prefix(16)), "--format", "npz", byPrefix])
        #expect(prefixed.status == 0, "\(prefixed.stderr)")
        #expect(try TestSupport.shell("cmp '\(empty)/shard-000000.npz' '\(byPrefix)/shard-000000.npz' && echo same") == "same\n")
        // A key that cannot be one is refused saying why (a whole key and two digits more is too long, not "too few").
        for (key, problem) in [(fingerprint + "00", "is longer than a SHA-256 (66 hex digits, at most 64)"),
                               ("abc", "is too short: give at least 4 hex digits"), ("abcz", "is not hex digits (0-9, a-f)")] {
            let refused = try Self.export(fixture, ["--stage", "audio", "--cache-key", key, "--format", "npz", byPrefix + "-refused"])
            #expect(refused.status == 64 && refused.stderr.contains("--cache-key '\(key)' \(problem) (cached audio cache keys: "), "\(refused.stderr)")
        }
    }

    @Test func theReadersCRCCheckFindsAFlippedByteAndNamesTheRecord() throws {
        let fixture = try Self.shared.get()
        let copy = try TestSupport.temporaryFolder("pydamaged") + "/work"
        try TestSupport.shell("cp -a '\(fixture.workdir)' '\(copy)'")
        let store = try ProvenanceStore(path: copy + "/emopipe.sqlite")
        let found = try store.read { db -> (CacheRecordRow, String)? in
            guard let row = try CacheRecordRow.filter(sql: "stage = 'audio'").order(sql: "key").fetchAll(db).last,
                  let shard = try CacheShardRow.fetchOne(db, key: row.shardId) else { return nil }
            return (row, shard.file)
        }
        let (row, file) = try #require(found)
        let shard = copy + "/" + file
        chmod(shard, 0o644)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: shard))
        try handle.seek(toOffset: UInt64(row.dataOffset + 100))
        let byte = try #require(try handle.read(upToCount: 1)).first ?? 0
        try handle.seek(toOffset: UInt64(row.dataOffset + 100))
        try handle.write(contentsOf: Data([byte ^ 0x10]))
        try handle.close()
        let answer = try Self.check(fixture, ["damaged", copy, "audio", row.key])
        #expect(answer["failed"] as? [String] == [row.key])
        #expect((answer["problems"] as? [String]) == [], "\(answer)")
    }
    /// A shard row naming a file outside cache/ (a damaged or hand-edited database) makes neither
    /// reader open it nor gc delete it; a pipe in a shard's or the database's place is refused, never
    /// waited on; a flipped byte in a shard's index is found by the Python reader too.
    /// Index rows edited behind EmoPipe's back (an sqlite3 shell, a damaged page) are refused by name, never
    /// read as if sound: metadata that is not a JSON object or differs from the shard's own, a shape that is
    /// not a list of sizes, a record whose shard row is gone.
    @Test func editedIndexRowsAreRefusedNotReadAsSound() throws {
        let fixture = try Self.shared.get()
        guard let python = TestSupport.python else { throw TestFailure("no test venv") }
        let edits = [("UPDATE cacheRecord SET metadata = 'not json' WHERE rowid = (SELECT MIN(rowid) FROM cacheRecord WHERE stage = 'audio')",
                      "its metadata is not JSON"),
                     ("UPDATE cacheRecord SET metadata = '{\"real_frames\": 5}' WHERE rowid = (SELECT MIN(rowid) FROM cacheRecord WHERE stage = 'audio')",
                      "has other metadata in the shard than in the index"),
                     ("UPDATE cacheRecord SET shapeJSON = 'garbage' WHERE rowid = (SELECT MIN(rowid) FROM cacheRecord WHERE stage = 'audio')",
                      "its shape is not JSON"),
                     ("UPDATE cacheRecord SET shardId = 999 WHERE rowid = (SELECT MIN(rowid) FROM cacheRecord WHERE stage = 'audio')",
                      "1 audio record(s) name a shard the index does not hold"),
                     // Text columns turned into BLOBs: named, not a bare TypeError from deeper down.
                     ("UPDATE cacheRecord SET metadata = CAST(metadata AS BLOB) WHERE rowid = (SELECT MIN(rowid) FROM cacheRecord WHERE stage = 'audio')",
                      "its metadata is bytes, not text"),
                     ("UPDATE cacheShard SET file = CAST(file AS BLOB)", "its shard_file is bytes, not text"),
                     // Nested past Python's recursion limit, and a NUL in a file name: a bare RecursionError and ValueError before.
                     ("UPDATE cacheRecord SET shapeJSON = '\(String(repeating: "[", count: 1200))' WHERE rowid = (SELECT MIN(rowid) FROM cacheRecord WHERE stage = 'audio')",
                      "its shape is not JSON (RecursionError"),
                     ("UPDATE cacheShard SET file = file || char(0) || 'x'", "not a valid shard: cannot open: embedded null byte")]
        for (edit, said) in edits {
            let copy = try TestSupport.temporaryFolder("pyedited") + "/work"
            try TestSupport.shell("cp -a '\(fixture.workdir)' '\(copy)'")
            // Python's sqlite3, as a shell edits: foreign keys unchecked.
            let edited = try TestSupport.run(python, ["-c", "import sqlite3, sys; d = sqlite3.connect(sys.argv[1]); d.execute(sys.argv[2]); d.commit()",
                                                      copy + "/emopipe.sqlite", edit])
            #expect(edited.status == 0, "\(edit): \(edited.stderr)")
            let read = try TestSupport.run("/usr/bin/timeout", ["60", python, "-c",
                                           "import emopipe\nw = emopipe.WorkDir('\(copy)')\n[w.tensor(r) for r in w.records('audio')]"],
                                           environment: ["PYTHONPATH": fixture.site])
            // EmoPipeError, or its ShardError for a shard that cannot be opened.
            #expect(read.status == 1 && (read.stderr.contains("emopipe.errors.EmoPipeError") || read.stderr.contains("emopipe.errors.ShardError"))
                    && read.stderr.contains(said), "\(edit): \(read.stderr)")
        }
    }

    /// `source` rows edited by hand (a status ingest does not write, a code that is text or out of range) are refused
    /// by name by `cache export` and the reader alike, not passed on as labels; index values the two read alike (a size
    /// written `414.0`, a key indexed twice in a shard) give both the same records.
    @Test func editedSourceRowsAreRefusedAndOddIndexValuesReadAsSwiftReadsThem() throws {
        let fixture = try Self.shared.get()
        guard let python = TestSupport.python else { throw TestFailure("no test venv") }
        func edited(_ sql: String) throws -> String {
            let copy = try TestSupport.temporaryFolder("pysource") + "/work"
            try TestSupport.shell("cp -a '\(fixture.workdir)' '\(copy)'")
            let edit = try TestSupport.run(python, ["-c", "import sqlite3, sys; d = sqlite3.connect(sys.argv[1]); d.execute(sys.argv[2]); d.commit()",
                                                    copy + "/emopipe.sqlite", sql])
            try #require(edit.status == 0, "\(sql): \(edit.stderr)")
            return copy
        }
        func read(_ copy: String, _ code: String = "print(len([w.tensor(r, verify=True) for r in w.records('audio')]))") throws -> TestSupport.ProcessResult {
            try TestSupport.run("/usr/bin/timeout", ["60", python, "-c", "import emopipe\nw = emopipe.WorkDir('\(copy)')\n" + code],
                                environment: ["PYTHONPATH": fixture.site])
        }
        let first = "path = (SELECT MIN(path) FROM source WHERE status = 'ok' AND modality = 3)"
        for (sql, python, swift) in [("UPDATE source SET status = 'weird' WHERE \(first)", "its status 'weird' is not one of ok, failed, ignored, removed", "weird"),
                                     ("UPDATE source SET emotion = 'x' WHERE \(first)", "its emotion is 'x', not an integer", "emotion"),
                                     ("UPDATE source SET emotion = 99 WHERE \(first)", "its emotion 99 is out of range 01-08", "emotion 99 out of range 01-08")] {
            let copy = try edited(sql)
            let reader = try read(copy)
            #expect(reader.status == 1 && reader.stderr.contains("EmoPipeError") && reader.stderr.contains(python), "\(sql): \(reader.stderr)")
            let out = try TestSupport.temporaryFolder("pysourceout") + "/export"
            let export = try TestSupport.run(TestSupport.emopipe, ["cache", "export", "--stage", "audio", "--format", "npz", out, "--workdir", copy])
            #expect(export.status == 1 && export.stderr.contains(swift) && export.stderr.contains("emopipe.sqlite"), "\(sql): \(export.status) \(export.stderr)")
        }

        let store = try ProvenanceStore(path: fixture.workdir + "/emopipe.sqlite")
        let rows = try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").order(Column("key")).fetchAll($0) }
        let shape = try #require(rows.first?.shapeJSON)
        let fractional = try edited("UPDATE cacheRecord SET shapeJSON = '\(shape.replacingOccurrences(of: "]", with: ".0]"))' WHERE key = '\(rows[0].key)' AND stage = 'audio'")
        let shaped = try read(fractional)
        #expect(shaped.status == 0 && shaped.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(rows.count)", "\(shaped.stderr)")

        // Entry 1 of a shard given entry 0's key, the index CRC made to match: entry 0 reads as before; the record
        // entry 1 held is gone from the shard, as Swift's reader finds it.
        let shard = try #require(try store.read { try CacheShardRow.filter(sql: "stage = 'audio' AND records >= 2").fetchOne($0) })
        let copy = try edited("SELECT 1")
        let twice = try TestSupport.run(python, ["-c", """
            import struct, sys
            from emopipe.crc32c import crc32c
            path = sys.argv[1]
            data = bytearray(open(path, 'rb').read())
            offset, length = struct.unpack_from('<QQ', data, 24)
            data[offset + 128:offset + 160] = data[offset:offset + 32]
            struct.pack_into('<I', data, 40, crc32c(bytes(data[offset:offset + length])))
            open(path, 'wb').write(data)
            print(bytes(data[offset:offset + 32]).hex(), bytes(open(path, 'rb').read()[offset + 128:offset + 160]).hex())
            """, copy + "/" + shard.file], environment: ["PYTHONPATH": fixture.site])
        try #require(twice.status == 0, "\(twice.stderr)")
        let kept = String(twice.stdout.split(separator: " ")[0])
        let inShard = try store.read { try CacheRecordRow.filter(sql: "shardId = ?", arguments: [shard.id]).order(Column("dataOffset")).fetchAll($0) }
        try #require(inShard.count >= 2 && inShard[0].key == kept)
        let lookup = try read(copy, "r = {x.key: x for x in w.records('audio')}\nprint(w.tensor(r['\(kept)'], verify=True).shape)\nw.tensor(r['\(inShard[1].key)'])")
        #expect(lookup.stdout.contains("(") && lookup.status == 1 && lookup.stderr.contains("no record for source \(inShard[1].key)\n"), "\(lookup.stdout) \(lookup.stderr)")
    }

    /// A record longer than the reader's piece (a sparse shard can claim a gigabyte) is checked a piece at a time, to the
    /// same CRC as in one pass: it held three copies of the record at once (3.1 GB for 1 GiB).
    @Test func theReadersCRCOfALongRecordIsTakenInPiecesToTheSameValue() throws {
        let fixture = try Self.shared.get()
        guard let python = TestSupport.python else { throw TestFailure("no test venv") }
        let check = try TestSupport.run(python, ["-c", """
            import importlib
            import numpy as np
            c = importlib.import_module("emopipe.crc32c")   # the module: the package's `crc32c` is its function
            assert c.crc32c(b"123456789") == 0xE3069283   # the standard check value of CRC-32C
            data = np.random.default_rng(7).integers(0, 256, size=(3 << 20) + 5, dtype=np.uint8)
            whole = c.crc32c(data)
            c._PIECE_BYTES = 1 << 20
            pieces = c.crc32c(data)
            print(hex(whole), hex(pieces))
            assert whole == pieces
            """], environment: ["PYTHONPATH": fixture.site])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }

    @Test func rowsAndFilesThatAreNotTheCachesAreRefused() throws {
        let fixture = try Self.shared.get()
        guard let python = TestSupport.python else { throw TestFailure("no test venv") }
        let copy = try TestSupport.temporaryFolder("pyhostile") + "/work"
        try TestSupport.shell("cp -a '\(fixture.workdir)' '\(copy)'")
        let store = try ProvenanceStore(path: copy + "/emopipe.sqlite")
        let shards = try store.read { try CacheShardRow.filter(sql: "stage = 'audio'").fetchAll($0) }
        let first = try #require(shards.first)
        func reader(_ code: String) throws -> TestSupport.ProcessResult {
            try TestSupport.run("/usr/bin/timeout", ["60", python, "-c", "import emopipe\nw = emopipe.WorkDir('\(copy)')\n" + code],
                                environment: ["PYTHONPATH": fixture.site])
        }
        let readAll = "[w.tensor(r) for r in w.records('audio')]"

        // A pipe in a shard's place, then a flipped byte in a shard's index.
        let shardPath = copy + "/" + first.file
        try FileManager.default.removeItem(atPath: shardPath)
        try #require(mkfifo(shardPath, 0o644) == 0)
        let blocked = try reader(readAll)
        #expect(blocked.status == 1 && blocked.stderr.contains("not a regular file"), "\(blocked.status) \(blocked.stderr)")
        try FileManager.default.removeItem(atPath: shardPath)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: fixture.workdir + "/" + first.file))
        let indexOffset = bytes.subdata(in: 24..<32).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        bytes[Int(indexOffset) + 3] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: shardPath))
        let damaged = try reader(readAll)
        #expect(damaged.status == 1 && damaged.stderr.contains("index fails its CRC-32C check"), "\(damaged.stderr)")
        // A header whose alignment is not the format's (outside the index CRC): refused by both readers.
        bytes = try Data(contentsOf: URL(fileURLWithPath: fixture.workdir + "/" + first.file))
        bytes[20] = 4
        try bytes.write(to: URL(fileURLWithPath: shardPath))
        let misaligned = try reader(readAll)
        #expect(misaligned.status == 1 && misaligned.stderr.contains("header size 64 and alignment 4; version 1 has 64 and 64"),
                "\(misaligned.stderr)")
        // Zeros after the index, which ends a shard: refused by both readers too.
        bytes = try Data(contentsOf: URL(fileURLWithPath: fixture.workdir + "/" + first.file)) + Data(count: 4096)
        try bytes.write(to: URL(fileURLWithPath: shardPath))
        let padded = try reader(readAll)
        #expect(padded.status == 1 && padded.stderr.contains("4096 bytes follow its index, which ends a shard"), "\(padded.stderr)")
        try FileManager.default.removeItem(atPath: shardPath)
        try FileManager.default.copyItem(atPath: fixture.workdir + "/" + first.file, toPath: shardPath)

        // A row naming a file outside cache/: neither reader opens it, and gc does not delete it.
        let outside = (copy as NSString).deletingLastPathComponent + "/precious.txt"
        try "keep me\n".write(toFile: outside, atomically: true, encoding: .utf8)
        try store.write { db in try db.execute(sql: "UPDATE cacheShard SET file = '../precious.txt' WHERE id = ?", arguments: [first.id]) }
        let read = try reader(readAll)
        #expect(read.status == 1 && read.stderr.contains("'../precious.txt', which is not a file inside cache/"), "\(read.stderr)")
        let verify = try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", copy])
        #expect(verify.stderr.contains("../precious.txt") && verify.stderr.contains("not a file inside cache/"), "\(verify.status) \(verify.stderr)")
        let gc = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", TestSupport.repositoryRoot + "/manifests/demo.yaml",
                                                           "--current-only", "--workdir", copy])
        #expect(gc.status == 0 && FileManager.default.fileExists(atPath: outside), "gc leaves a file outside the cache alone: \(gc.stderr)")

        // A folder in the write-ahead log's place is said to be one (it was said to hold commits).
        try? FileManager.default.removeItem(atPath: copy + "/emopipe.sqlite-wal")
        try FileManager.default.createDirectory(atPath: copy + "/emopipe.sqlite-wal", withIntermediateDirectories: false)
        let walFolder = try reader("")
        #expect(walFolder.status == 1 && walFolder.stderr.contains("emopipe.sqlite-wal is not a file (a folder or a device in its place)"),
                "\(walFolder.status) \(walFolder.stderr)")
        try FileManager.default.removeItem(atPath: copy + "/emopipe.sqlite-wal")

        // The database itself as a pipe: refused by name at once, by emopipe and the reader.
        try FileManager.default.removeItem(atPath: copy + "/emopipe.sqlite")
        try #require(mkfifo(copy + "/emopipe.sqlite", 0o644) == 0)
        let stats = try TestSupport.run("/usr/bin/timeout", ["60", TestSupport.emopipe, "cache", "stats", "--workdir", copy])
        #expect(stats.status == 1 && stats.stderr.contains("not a regular file"), "\(stats.status) \(stats.stderr)")
        let open = try reader("")
        #expect(open.status == 1 && open.stderr.contains("not a regular file"), "\(open.status) \(open.stderr)")
    }
}
