import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation

/// What the fault-tolerance suite runs on and compares against: a small fixed data root, a manifest
/// with a tiny network, and one uninterrupted `emopipe run` of it (the reference), made once per
/// test process.
///
/// Data: actors 01-02 of the shared speech with their first 16 AV clips each, actor 03's speech,
/// and actor 09 made of IngestFixture's bad and odd files plus an all-zero wav, a 4 ms wav and an
/// AV clip with no face in it, so that ingest, audio and faces all have failure rows to keep.
/// Training: 4 folds (one per actor), 4 epochs, a checkpoint every epoch.
struct FaultFixture {
    let root: String
    let manifest: String
    /// The work directory of the uninterrupted run.
    let reference: String
    let referenceStatus: Int32
    /// How long each stage took in the reference run.
    let seconds: [String: Double]
    /// Units each stage ends with in the reference run (see `progress`).
    let totals: [String: Int]
    /// How long one durable batch took in the reference run: ingest commits 64 files at a time,
    /// audio and faces one shard at a time (every `publishAfterSeconds`), train a checkpoint every epoch.
    let batchSeconds: [String: Double]
    let silent: String, short: String, noFace: String

    static let shared: Result<FaultFixture, Error> = Result { try FaultFixture() }

    static let folds = 4, epochs = 4
    /// Finished sources are published this soon, so audio and faces (about 3 s each here) make several
    /// shards and a kill can leave them part done (at the default 3 s faces made one shard).
    static let publishAfterSeconds = 0.3

    private init() throws {
        // Copies, not hard links: other suites change files of their data roots in place, and hard
        // links would carry such a change into this one's while it runs.
        let shared = try IngestFixture.materialized.get()
        root = try TestSupport.temporaryFolder("data") + "/ravdess"
        for actor in ["Actor_01", "Actor_02"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: shared + "/" + actor).sorted()
            try FileManager.default.createDirectory(atPath: root + "/" + actor, withIntermediateDirectories: true)
            for name in names.filter({ $0.hasSuffix(".wav") }) + names.filter({ $0.hasSuffix(".mp4") }).prefix(16) {
                try FileManager.default.copyItem(atPath: shared + "/\(actor)/\(name)", toPath: root + "/\(actor)/\(name)")
            }
        }
        let third = try TestSupport.materialize(actors: 3...3, extra: ["--no-av"])
        try TestSupport.shell("cp -a '\(third)/Actor_03' '\(root)/Actor_03'")
        _ = try IngestFixture.addBadFiles(to: root)
        silent = root + "/Actor_09/03-01-03-02-02-02-09.wav"
        short = root + "/Actor_09/03-01-04-02-02-02-09.wav"
        noFace = root + "/Actor_09/01-01-08-02-02-02-09.mp4"
        try TestSupport.shell("sox -D -n -r 48000 -b 16 -c 1 '\(silent)' trim 0 2")
        try TestSupport.shell("sox -n -r 48000 -b 16 -c 1 '\(short)' synth 0.004 sine 440")
        try TestSupport.shell("ffmpeg -nostdin -v error -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -f lavfi -i sine=duration=2 -c:v libx264 -c:a aac -shortest '\(noFace)'")

        manifest = try TestSupport.writeManifest(at: try TestSupport.temporaryFolder("faults") + "/faults.yaml", data: root, """
        seed: 5
        threads: 2
        resources: {publish_after_seconds: \(Self.publishAfterSeconds)}
        params:
          split: {folds: \(Self.folds), test_fold: all, val_count: 1}
          train: {audio_channels: [4, 8], face_channels: [4, 8], embedding: 16, epochs: \(Self.epochs), batch_size: 16,
                  checkpoint_every: 1, patience: \(Self.epochs)}
        """)

        reference = try TestSupport.temporaryFolder("work") + "/reference"
        let result = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", reference])
        guard result.status == ExitStatus.partial else {
            throw TestFailure("the reference run should finish with failed sources (exit 3): \(result.status) \(result.stderr)")
        }
        referenceStatus = result.status
        let store = try ProvenanceStore(path: reference + "/emopipe.sqlite")
        let run = try store.runs()[0]
        var seconds: [String: Double] = [:]
        for stage in try store.stageRuns(runId: run.id) {
            seconds[stage.stage] = (stage.finishedAt ?? stage.startedAt).timeIntervalSince(stage.startedAt)
        }
        self.seconds = seconds
        var totals: [String: Int] = [:]
        for stage in ["ingest", "audio", "faces", "train"] { totals[stage] = try Self.progress(stage, workdir: reference) }
        self.totals = totals
        let shards = try store.read { try CacheShardRow.fetchAll($0) }
        batchSeconds = [
            "ingest": seconds["ingest"]! / Double((totals["ingest"]! + 63) / 64),
            "audio": seconds["audio"]! / Double(shards.filter { $0.stage == "audio" }.count),
            "faces": seconds["faces"]! / Double(shards.filter { $0.stage == "faces" }.count),
            "train": seconds["train"]! / Double(totals["train"]!),
        ]
    }

    /// `emopipe run MANIFEST ARGS --workdir WORKDIR`.
    func run(_ args: [String] = [], workdir: String) throws -> TestSupport.ProcessResult {
        try TestSupport.run(TestSupport.emopipe, ["run", manifest] + args + ["--workdir", workdir])
    }

    // MARK: Progress

    /// Work a stage has made durable in a work directory: ingest's source rows, audio's and faces'
    /// records plus failure rows, train's logged epochs summed over the folds.
    static func progress(_ stage: String, workdir: String) throws -> Int {
        if stage == "train" {
            var epochs = 0
            for fold in trainFiles(workdir).filter({ $0.hasSuffix("/state.json") }) {
                let data = try Data(contentsOf: URL(fileURLWithPath: workdir + "/" + fold))
                let state = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                epochs += (state?["epochs"] as? [Any])?.count ?? 0
            }
            return epochs
        }
        guard FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite") else { return 0 }
        // Read-only: polled every few milliseconds beside a run, it must neither check the whole file
        // nor take the write lock the way a writer's open does.
        let store = try ProvenanceStore(readingPath: workdir + "/emopipe.sqlite")
        if stage == "ingest" { return try store.allSources().count }
        let records = try store.read { db in
            try CacheRecordRow.filter(sql: "stage = ?", arguments: [stage]).fetchCount(db)
        }
        return records + (try store.failures(stage: stage).count)
    }

    /// Whether the stage has completed in the work directory.
    static func completed(_ stage: String, workdir: String) throws -> Bool {
        guard FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite") else { return false }
        return try ProvenanceStore(readingPath: workdir + "/emopipe.sqlite").stageState(stage) != nil
    }

    /// Files under `cache/train/`, relative to the work directory, sorted.
    static func trainFiles(_ workdir: String) -> [String] {
        let base = workdir + "/cache/train"
        let files = FileManager.default.enumerator(atPath: base)?.compactMap { $0 as? String } ?? []
        return files.filter { !$0.hasSuffix("/") && !isDirectory(base + "/" + $0) }.map { "cache/train/" + $0 }.sorted()
    }

    private static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    // MARK: Facts

    /// One cached record as a reader sees it.
    struct Record: Equatable {
        var dtype: DType
        var shape: [Int]
        var metadata: String
        var bytes: Data
    }

    /// What must not depend on how a run was interrupted: every cached record (by stage and
    /// source SHA-256, CRC checked), source and failure rows without run ids or times, the
    /// trained models' provenance rows, the training files, metrics.json and model.onnx.
    struct Facts {
        var records: [String: Record] = [:]
        var sources: [[String]] = []
        var failures: [String] = []
        var models: [String] = []
        var files: [String: Data] = [:]

        /// Human-readable differences from `other` (empty when equal).
        func differences(from other: Facts) -> [String] {
            var out: [String] = []
            for key in Set(records.keys).union(other.records.keys).sorted() where records[key] != other.records[key] {
                let mine = records[key].map { "\($0.bytes.count) bytes" } ?? "missing"
                let theirs = other.records[key].map { "\($0.bytes.count) bytes" } ?? "missing"
                out.append("record \(key): \(mine) here, \(theirs) in the reference")
            }
            if sources != other.sources {
                out.append("source rows differ: \(Set(sources.map { $0.joined(separator: "|") }).symmetricDifference(other.sources.map { $0.joined(separator: "|") }).sorted().prefix(4))")
            }
            if failures != other.failures {
                out.append("failure rows differ: \(Set(failures).symmetricDifference(other.failures).sorted().prefix(4)) (\(failures.count) vs \(other.failures.count))")
            }
            if models != other.models { out.append("model provenance rows differ: \(models.count) here, \(other.models.count) in the reference") }
            for name in Set(files.keys).union(other.files.keys).sorted() where files[name] != other.files[name] {
                out.append("file \(name) differs (\(files[name]?.count ?? -1) vs \(other.files[name]?.count ?? -1) bytes)")
            }
            return out
        }
    }

    static func facts(_ workdir: String) throws -> Facts {
        var facts = Facts()
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let cache = TensorCache(workspace: Workspace(root: workdir), store: store)
        for row in try store.read({ try CacheRecordRow.fetchAll($0) }) {
            let tensor = try cache.tensor(row, verify: true)
            facts.records[row.stage + " " + row.key] = Record(dtype: tensor.dtype, shape: tensor.shape,
                                                              metadata: try tensor.metadata, bytes: try tensor.bytes)
        }
        (facts.sources, facts.failures) = try IngestFixture.facts(workdir: workdir)
        facts.models = try store.read { try ArtifactRecord.filter(sql: "stage = 'train'").fetchAll($0) }.map { row in
            let path = row.path.hasPrefix(workdir + "/") ? String(row.path.dropFirst(workdir.count + 1)) : row.path
            return [row.kind, path, row.sha256 ?? "", row.sourceSHA256 ?? ""].joined(separator: "\t")
        }.sorted()
        // Training files (state.json holds wall-clock seconds per epoch, so it is left out).
        for file in trainFiles(workdir) where !file.hasSuffix("/state.json") {
            facts.files[file] = try Data(contentsOf: URL(fileURLWithPath: workdir + "/" + file))
        }
        for (stage, names) in [("evaluate", ["metrics.json", "cv.json"]), ("export", ["model.onnx", "model.safetensors", "model.json"])] {
            guard let run = try store.stageState(stage)?.runId else { continue }
            for name in names {
                let path = workdir + "/runs/\(run)/" + name
                if FileManager.default.fileExists(atPath: path) {
                    facts.files["runs/RUN/" + name] = try Data(contentsOf: URL(fileURLWithPath: path))
                }
            }
        }
        return facts
    }

    // MARK: Damage checks

    /// Problems with what a failed run left: temporary shard files, shard files that do not parse
    /// or are not indexed, an unclean `emopipe cache verify`, or a database failing integrity_check.
    static func damage(_ workdir: String) throws -> [String] {
        var problems: [String] = []
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let indexed = Set(try store.read { try CacheShardRow.fetchAll($0) }.map(\.file))
        let cacheFiles = FileManager.default.enumerator(atPath: workdir + "/cache")?.compactMap { $0 as? String } ?? []
        for file in cacheFiles where file.contains(".shard") {
            if !file.hasSuffix(".shard") { problems.append("leftover \(file)"); continue }
            do { _ = try ShardFile(path: workdir + "/cache/" + file) } catch { problems.append("\(file): \(error)") }
            if !indexed.contains("cache/" + file) { problems.append("\(file) is not in the index") }
        }
        let integrity = try store.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        if integrity != ["ok"] { problems.append("integrity_check: \(integrity)") }
        let verify = try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir])
        if verify.status != 0 || !verify.stdout.contains(" 0 damaged") {
            problems.append("cache verify exited \(verify.status): \(verify.stdout) \(verify.stderr)")
        }
        return problems
    }

    /// The last line a failed emopipe printed: `emopipe: WHAT: WHY`.
    static func errorLine(_ stderr: String) -> String {
        stderr.split(separator: "\n").last { $0.hasPrefix("emopipe: ") }.map(String.init) ?? ""
    }
}
