import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// Three worker processes plus `emopipe merge` against one process over the same files.
@Suite("scale-out workers", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct ScaleOutTests {
    /// Every cached record's bytes, metadata and CRC, by (stage, parameters fingerprint, source hash).
    static func records(_ workdir: String) throws -> [String: Data] {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let cache = TensorCache(workspace: Workspace(root: workdir), store: store)
        let rows = try store.read { try CacheRecordRow.fetchAll($0) }
        var found: [String: Data] = [:]
        for row in rows {
            let tensor = try cache.tensor(row, verify: true)
            found["\(row.stage) \(row.fingerprint) \(row.key)"] = try tensor.bytes + Data(try tensor.metadata.utf8)
                + Data("\(row.crc32c) \(row.shapeJSON) \(row.dtype)".utf8)
        }
        return found
    }

    /// The provenance facts that do not name runs: sources, failures, stage outputs.
    static func facts(_ workdir: String) throws -> (sources: Set<[String]>, failures: Set<[String]>, outputs: [String: String]) {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let sources = Set(try store.allSources().map(\.facts))
        let failures = Set(try store.failures().map { [$0.stage, $0.fingerprint, $0.subject, $0.sha256, $0.reason] })
        var outputs: [String: String] = [:]
        for stage in ["ingest", "audio", "faces"] { outputs[stage] = try store.stageState(stage)?.outputDigest }
        return (sources, failures, outputs)
    }

    /// ingest, audio and faces in one process (`--until` takes one stage; these are two branches).
    static func perSourceStages(_ manifest: String, _ workdir: String) throws -> (status: Int32, log: String) {
        let audio = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "audio", "--workdir", workdir])
        let faces = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "faces", "--workdir", workdir])
        return (max(audio.status, faces.status), audio.stderr + faces.stderr)
    }

    @Test func threeWorkersAndAMergeEqualOneProcess() throws {
        let data = try TestSupport.materialize(actors: 1...1)
        // A few video clips keep the faces stage in the test without making it slow; a broken file
        // and a stranger make failures and ignored files part of what must agree.
        let clips = try TestSupport.shell("find '\(data)' -name '*.mp4' | sort").split(separator: "\n").map(String.init)
        for clip in clips.dropFirst(6) { try FileManager.default.removeItem(atPath: clip) }
        try FileManager.default.createDirectory(atPath: data + "/Actor_09", withIntermediateDirectories: true)
        try Data("not audio".utf8).write(to: URL(fileURLWithPath: data + "/Actor_09/03-01-05-01-02-01-09.wav"))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: data + "/notes.txt"))
        let folder = try TestSupport.temporaryFolder("scaleout")
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, "threads: 1")

        let single = folder + "/single", multi = folder + "/multi"
        let one = try Self.perSourceStages(manifest, single)
        #expect(one.status == 3, "the broken file makes it a partial run: \(one.log)")

        // The shipped sbatch script, as three Slurm array tasks (ids 10-12) would run it.
        let script = TestSupport.repositoryRoot + "/pipelines/deploy/slurm/emopipe-workers.sbatch"
        let workers = try (0..<3).map { i -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [script]
            process.environment = ProcessInfo.processInfo.environment.merging([
                "SLURM_ARRAY_TASK_ID": "\(10 + i)", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "3",
                "EMOPIPE": TestSupport.emopipe, "MANIFEST": manifest, "WORKDIR": multi]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        workers.forEach { $0.waitUntilExit() }
        #expect(workers.map(\.terminationStatus) == [0, 0, 0], "a share with a bad source still completes its task")
        let partial = try (0..<3).map { try ProvenanceStore(path: multi + "/workers/\($0)-of-3/emopipe.sqlite").runs().first?.status }
        #expect(partial.filter { $0 == .partial }.count == 1 && partial.filter { $0 == .done }.count == 2,
                "only the worker that got the broken file recorded a partial run: \(partial)")
        let workerRecords = try (0..<3).map { try Self.records(multi + "/workers/\($0)-of-3").count }
        #expect(workerRecords.allSatisfy { $0 > 0 }, "each worker did a share: \(workerRecords)")

        let merge = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", multi])
        #expect(merge.status == 0, "\(merge.stderr)")
        #expect(try Self.records(multi) == (try Self.records(single)), "the same records, byte for byte")
        #expect(workerRecords.reduce(0, +) == (try Self.records(single)).count)

        // The main run after the merge computes nothing and reaches the same stage outputs.
        let after = try Self.perSourceStages(manifest, multi)
        #expect(after.status == 3)
        #expect(after.log.contains("0 to read"), "ingest hashed nothing again: \(after.log)")
        #expect(after.log.contains("; 0 computed now") && after.log.range(of: "; [1-9][0-9]* computed now", options: .regularExpression) == nil,
                "audio and faces computed nothing: \(after.log)")
        let (a, b) = (try Self.facts(single), try Self.facts(multi))
        #expect(a.sources == b.sources)
        #expect(a.failures == b.failures && !a.failures.isEmpty)
        #expect(a.outputs == b.outputs && a.outputs.count == 3)

        // Merging again adds nothing; a worker directory is never run as a main one.
        let again = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", multi])
        #expect(again.stdout.contains(" 0 records in 0 shards"))
        let misuse = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", multi + "/workers/0-of-3"])
        #expect(misuse.status == 64 && misuse.stderr.contains("emopipe merge"))
        let trainAsWorker = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "train", "--worker", "0/3", "--workdir", multi])
        #expect(trainAsWorker.status == 64 && trainAsWorker.stderr.contains("per-source stages only"))
        // A worker's run read its share of the data root: reproduce says it repeats whole runs, rather than reading
        // every file and calling the results different.
        let workerRun = try #require(try ProvenanceStore(path: multi + "/emopipe.sqlite").runs().first { $0.worker != nil })
        // The runs table tells the merged workers' runs from the main one's.
        let table = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", multi])
        let workerLines = table.stdout.split(separator: "\n").filter { $0.hasPrefix("    worker ") && $0.contains(" of a scale-out") }
        #expect(table.status == 0 && workerLines.count == 3 && table.stdout.contains("    worker \(workerRun.worker ?? "?") of a scale-out"), "\(table.stdout)")
        let reproduced = try TestSupport.run(TestSupport.emopipe, ["reproduce", workerRun.id, "--workdir", multi])
        #expect(reproduced.status == 1 && reproduced.stderr.contains("it is scale-out worker \(workerRun.worker ?? "")'s run, which read only its share"),
                "\(reproduced.stderr)")
    }

    /// `--only` in a worker reads what that worker's own ingest recorded: refused, dry run or not, before its
    /// work directory is made; allowed once the worker has ingested its share.
    @Test func aWorkersOnlyNeedsItsOwnIngest() throws {
        let data = try TestSupport.materialize(actors: 1...1)
        for clip in try TestSupport.shell("find '\(data)' -name '*.mp4'").split(separator: "\n") {
            try FileManager.default.removeItem(atPath: String(clip))
        }
        let folder = try TestSupport.temporaryFolder("worker-only")
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, "threads: 1")
        let work = folder + "/work"
        for dryRun in [["--dry-run"], []] {
            let refused = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--only", "audio", "--worker", "0/2", "--workdir", work] + dryRun)
            #expect(refused.status == 64 && refused.stderr.contains("upstream stage 'ingest' has never completed"), "\(dryRun): \(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: work), "\(dryRun): nothing made for a run that cannot start")
        }
        let ingest = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "ingest", "--worker", "0/2", "--workdir", work])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let planned = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--only", "audio", "--worker", "0/2", "--workdir", work, "--dry-run"])
        #expect(planned.status == 0 && planned.stdout.contains("audio") && planned.stdout.contains("run"), "\(planned.stdout)\(planned.stderr)")
        // Under another data root the worker's ingest is another setting: said, as for the main work directory.
        let elsewhere = try TestSupport.temporaryFolder("worker-only-other")
        let moved = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--only", "audio", "--worker", "0/2", "--workdir", work,
                                                              "--dry-run", "--data", elsewhere])
        #expect(moved.status == 0 && moved.stderr.contains("--only audio: ingest ran with other settings (ingest: parameters changed: data_root"),
                "\(moved.stderr)")
        let ran = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--only", "audio", "--worker", "0/2", "--workdir", work])
        #expect(ran.status == 0 && ran.stderr.contains("audio: ran") && !ran.stderr.contains("other settings"), "\(ran.stderr)")
    }
}
