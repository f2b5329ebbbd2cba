import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("audio stage", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct AudioStageTests {
    /// Actor 01 only (60 wavs, 60 AV clips), plus an AV clip with no wav and two bad wavs.
    static func dataRoot() throws -> (root: String, silent: String, short: String, avOnly: String) {
        let root = try IngestFixture.dataRoot()
        try FileManager.default.removeItem(atPath: root + "/Actor_02")
        let silent = root + "/Actor_01/03-01-03-02-02-02-01.wav.new"
        try TestSupport.shell("sox -D -n -r 48000 -b 16 -c 1 '\(silent).wav' trim 0 2 && mv '\(silent).wav' '\(root)/Actor_01/silent.tmp'")
        // Replace two real wavs by bad ones (new inode, so the shared hard links stay intact).
        let silentPath = root + "/Actor_01/03-01-03-02-02-02-01.wav"
        try FileManager.default.removeItem(atPath: silentPath)
        try FileManager.default.moveItem(atPath: root + "/Actor_01/silent.tmp", toPath: silentPath)
        let shortPath = root + "/Actor_01/03-01-04-02-02-02-01.wav"
        try FileManager.default.removeItem(atPath: shortPath)
        try TestSupport.shell("sox -n -r 48000 -b 16 -c 1 '\(shortPath)' synth 0.004 sine 440")
        // A clip whose only speech is its mp4's audio track.
        let wavOfAV = root + "/Actor_01/03-01-05-02-02-02-01.wav"
        try FileManager.default.removeItem(atPath: wavOfAV)
        return (root, silentPath, shortPath, root + "/Actor_01/01-01-05-02-02-02-01.mp4")
    }

    static func records(_ workdir: String) throws -> [String: (data: Data, meta: String)] {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let cache = TensorCache(workspace: Workspace(root: workdir), store: store)
        var out: [String: (Data, String)] = [:]
        for row in try store.read({ try CacheRecordRow.fetchAll($0) }) {
            let tensor = try cache.tensor(row, verify: true)
            out[row.key] = (try tensor.bytes, try tensor.metadata)
        }
        return out
    }

    /// A file replaced after ingest hashed it (here under `--only audio`, which leaves ingest out) is
    /// not computed under the old content's hash, nor recorded as that content's failure: the stage
    /// names it and fails (exit 1), keeping the others, and the next full run reads the new content.
    @Test func aSourceChangedAfterIngestIsNeverCachedUnderItsOldHash() throws {
        let (root, wavs) = try DataRootWalkTests.smallRoot()
        // wavs[1] on an inode of its own, so that touching it leaves the shared fixture alone.
        try TestSupport.shell("cp '\(wavs[1])' '\(wavs[1]).copy' && mv '\(wavs[1]).copy' '\(wavs[1])'")
        let workdir = try TestSupport.temporaryFolder("work")
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let oldSHA = try #require(try store.source(path: wavs[0])?.sha256)
        // Touched, same bytes: computed as recorded (the content is re-hashed to tell).
        try TestSupport.shell("touch -d '2030-01-01' '\(wavs[1])'")
        // New bytes under the same name, on a new inode (the hard-linked original stays intact).
        try FileManager.default.removeItem(atPath: wavs[0])
        try FileManager.default.copyItem(atPath: try IngestFixture.materialized.get() + "/Actor_01/03-01-08-02-02-02-01.wav",
                                         toPath: wavs[0])
        // New bytes at the same size, the mtime put back: only hashing tells.
        let sameSizeSHA = try #require(try store.source(path: wavs[2])?.sha256)
        try TestSupport.shell("cp -p '\(wavs[2])' '\(root)/reference.tmp' && cp '\(wavs[2])' '\(wavs[2]).copy' && mv '\(wavs[2]).copy' '\(wavs[2])'")
        let handle = try #require(FileHandle(forUpdatingAtPath: wavs[2]))
        try handle.seek(toOffset: 20_000)
        try handle.write(contentsOf: Data(repeating: 0x55, count: 4_000))
        try handle.close()
        try TestSupport.shell("touch -r '\(root)/reference.tmp' '\(wavs[2])' && rm '\(root)/reference.tmp'")

        let only = try IngestFixture.emopipe(["run", "--only", "audio"], data: root, workdir: workdir)
        // The run goes on without them, and its exit status says some sources were not computed.
        #expect(only.status == ExitStatus.partial, "\(only.stderr)")
        #expect(only.stderr.contains("\(wavs[0]): now") && only.stderr.contains("changed on disk after ingest"), "\(only.stderr)")
        #expect((only.stdout + only.stderr).contains("2 changed on disk since ingest (read again next run)"), "\(only.stdout)")
        #expect(only.stderr.contains("\(wavs[2]): its bytes changed after ingest hashed them"), "\(only.stderr)")
        #expect(only.stderr.contains("--only audio: ingest is not up to date (ingest: data root changed: ")
                && only.stderr.contains("audio takes its last output as it is"), "the stale input is said: \(only.stderr)")
        var records = try Self.records(workdir)
        #expect(records[oldSHA] == nil && records[sameSizeSHA] == nil, "no record under the hash of bytes the features are not of")
        #expect(records.count == wavs.count - 2, "the unchanged sources are computed and kept")
        #expect(try store.failures(stage: "audio").isEmpty, "a changed file is not the old content's failure")
        // The run's hint, `sources --failed`, lists the two it counted, saying why, and no other.
        func listedAsChanged() throws -> [String] {
            let listed = try IngestFixture.emopipe(["sources", "--failed", "--json"], workdir: workdir)
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            #expect(rows.allSatisfy { $0["changed_since_ingest"] as? Bool == true }, "\(rows)")
            return rows.compactMap { $0["path"] as? String }.sorted()
        }
        #expect(try listedAsChanged() == [wavs[0], wavs[2]].sorted())
        let table = try IngestFixture.emopipe(["sources", "--failed"], workdir: workdir)
        #expect(table.stdout.contains("\(wavs[2])  — changed on disk after ingest hashed it") && table.stderr.contains("2 changed since ingest"),
                "\(table.stdout) \(table.stderr)")

        let full = try IngestFixture.emopipe(["run", "--until", "audio"], data: root, workdir: workdir)
        #expect(full.status == 0, "\(full.stderr)")
        #expect(try listedAsChanged().isEmpty, "read again, computed: no longer listed")
        let newSHA = try #require(try store.source(path: wavs[0])?.sha256)
        let rewrittenSHA = try #require(try store.source(path: wavs[2])?.sha256)
        #expect(newSHA != oldSHA && rewrittenSHA != sameSizeSHA, "the next ingest read both files again")
        records = try Self.records(workdir)
        #expect(records[newSHA] != nil && records[rewrittenSHA] != nil && records[oldSHA] == nil && records[sameSizeSHA] == nil
                && records.count == wavs.count)
    }

    /// Identical bytes under two names are computed once, so a failure is recorded under one path; both
    /// files are listed as failed, by `sources --failed` and `show`, since neither has features.
    @Test func aFailureOfContentTwoFilesShareIsEachFilesFailure() throws {
        let data = try Self.dataRoot()
        let twin = data.root + "/Actor_01/03-01-03-01-01-01-01.wav"
        try FileManager.default.removeItem(atPath: twin)
        try FileManager.default.copyItem(atPath: data.silent, toPath: twin)
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "audio"], data: data.root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        let recorded = try ProvenanceStore(path: workdir + "/emopipe.sqlite").failures(stage: "audio")
        #expect(recorded.filter { $0.reason.contains("all zero") }.count == 1, "one computation, one row: \(recorded)")
        let listed = try IngestFixture.emopipe(["sources", "--failed", "--json"], workdir: workdir)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        let silentRows = rows.filter { [data.silent, twin].contains($0["path"] as? String ?? "") }
        #expect(silentRows.count == 2, "\(listed.stdout)")
        for row in silentRows {
            let reasons = (row["stage_failures"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
            #expect(reasons.count == 1 && reasons[0].contains("all zero"), "\(row)")
        }
        for path in [data.silent, twin] {
            let shown = try IngestFixture.emopipe(["show", path], workdir: workdir)
            #expect(shown.stdout.contains("failure  audio: ") && shown.stdout.contains("all zero"), "\(path): \(shown.stdout)")
        }
    }

    @Test func computesOneTensorPerSpeechSourceAndFailsBadAudioWithReasons() throws {
        let data = try Self.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "audio"], data: data.root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let failures = try store.failures(stage: "audio")
        #expect(Set(failures.map(\.subject)) == [data.silent, data.short])
        #expect(failures.first { $0.subject == data.silent }?.reason.contains("all zero") == true)
        #expect(failures.first { $0.subject == data.short }?.reason.contains("too short") == true)
        #expect(result.stderr.contains(data.silent), "failures are logged naming the file")
        // The run's hint, `sources --failed`, lists them too, with the stage that failed them.
        let listed = try IngestFixture.emopipe(["sources", "--failed", "--json"], workdir: workdir)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(Set(rows.compactMap { $0["path"] as? String }) == [data.silent, data.short], "\(listed.stdout)")
        for row in rows {
            let stageFailures = try #require(row["stage_failures"] as? [[String: Any]])
            #expect(row["status"] as? String == "ok" && stageFailures.map { $0["stage"] as? String } == ["audio"], "\(row)")
        }

        let records = try Self.records(workdir)
        #expect(records.count == 60 - 2)   // 59 wavs + 1 mp4, minus the two bad wavs
        let avSHA = try #require(try store.source(path: data.avOnly)?.sha256)
        let av = try #require(records[avSHA], "the clip without a wav gets its mp4's audio")
        #expect(av.meta.contains("\"source_kind\":\"mp4\""))

        let json = try IngestFixture.emopipe(["cache", "get", TestSupport.repositoryRoot + "/manifests/demo.yaml",
                                              "--data", data.root, "--stage", "audio", "--source", data.avOnly, "--json"],
                                             workdir: workdir)
        let fields = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect(fields["dtype"] as? String == "float32")
        #expect((fields["params"] as? [String: Any])?["n_fft"] as? Int == 512)
        let realFrames = try #require(fields["real_frames"] as? Int)
        let duration = try #require(fields["duration_seconds"] as? Double)
        // Every frame is kept (the model scores whole clips): 1 + samples / hop, all real.
        #expect(realFrames == Int(duration * 16000) / 160 + 1)
        #expect(fields["shape"] as? [Int] == [64, realFrames])
    }

    @Test func recordsAreByteIdenticalAcrossRunsAndThreadCountsAndOnlyNewWorkIsDone() throws {
        let data = try Self.dataRoot()
        let a = try TestSupport.temporaryFolder("work"), b = try TestSupport.temporaryFolder("work")
        _ = try IngestFixture.emopipe(["run", "--until", "audio"], data: data.root, workdir: a)
        let recordsA = try Self.records(a)
        // Another work directory, one thread instead of two.
        let manifest = try TestSupport.writeManifest(at: try TestSupport.temporaryFolder("manifest") + "/one-thread.yaml",
                                                     data: data.root, "threads: 1")
        _ = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "audio", "--workdir", b])
        let recordsB = try Self.records(b)
        #expect(recordsA.count == recordsB.count)
        for (key, record) in recordsA { #expect(recordsB[key]?.data == record.data && recordsB[key]?.meta == record.meta) }

        // A new source costs one unit; an unchanged pipeline costs none.
        try FileManager.default.createDirectory(atPath: data.root + "/Actor_03", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data.root + "/Actor_01/03-01-06-01-01-01-01.wav",
                                         toPath: data.root + "/Actor_03/03-01-06-01-01-01-03.wav")
        let third = try IngestFixture.emopipe(["run", "--until", "audio"], data: data.root, workdir: a)
        #expect(third.stderr.contains("distinct source contents: 0 to compute"),
                "identical bytes under a new name share the cached record: \(third.stderr)")
        let fourth = try IngestFixture.emopipe(["run", "--until", "audio"], data: data.root, workdir: a)
        #expect(fourth.stderr.contains("audio: up to date"), "\(fourth.stderr)")

        // A changed parameter recomputes the stage under a new fingerprint.
        let override = try TestSupport.writeManifest(at: try TestSupport.temporaryFolder("manifest") + "/mels.yaml",
                                                     data: data.root, "params: {audio: {n_mels: 40}}")
        let status = try TestSupport.run(TestSupport.emopipe, ["status", override, "--workdir", a])
        #expect(status.stdout.contains("n_mels 64 → 40"), "\(status.stdout)")
        #expect(status.stdout.split(separator: "\n").contains { $0.hasPrefix("ingest ") && $0.contains(" up-to-date ") })
        _ = try TestSupport.run(TestSupport.emopipe, ["run", override, "--until", "audio", "--workdir", a])
        let stats = try TestSupport.run(TestSupport.emopipe, ["cache", "stats", "--workdir", a]).stdout
        #expect(stats.split(separator: "\n").filter { $0.hasPrefix("audio") }.count == 2)

        // Sizes past 2^32 bytes are printed whole (they wrapped to negative numbers in the text table, not in --json).
        let shards = try ProvenanceStore(path: a + "/emopipe.sqlite").write { db in
            try db.execute(sql: "UPDATE cacheShard SET bytes = 3000000000")
            return db.changesCount
        }
        let large = try TestSupport.run(TestSupport.emopipe, ["cache", "stats", "--workdir", a]).stdout
        let totalLine = try #require(large.split(separator: "\n").first { $0.hasPrefix("total") })
        #expect(totalLine.hasSuffix(" \(3_000_000_000 * shards)") && !large.contains("-"), "\(large)")
    }
}
