import EmoCore
import EmoModel
import EmoPipeline
import EmoStages
import EmoStore
import EmoTestSupport
import Foundation
import GRDB
import Testing

/// Train and evaluate end to end on three real actors' speech with a tiny network: the documents
/// they write and determinism across work directories (kills during training: FaultToleranceTests).
@Suite("train and evaluate", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct TrainEvaluateTests {
    /// A work directory with ingest, audio and split done (copied per test: features cost the most).
    static let prepared: Result<(manifest: String, workdir: String), Error> = Result {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("train")
        let manifest = try tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let workdir = folder + "/work"
        let result = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "split", "--workdir", workdir])
        guard result.status == 0 else { throw TestFailure("preparing failed: \(result.stderr)") }
        return (manifest, workdir)
    }

    /// The tiny network on actors 1-3: tests on actor 01, validates on 02, three epochs.
    static func tinyManifest(at path: String, data: String, speakerNorm: Bool) throws -> String {
        try TestSupport.writeManifest(at: path, data: data, """
        seed: 3
        threads: 2
        params:
          split: {test_actors: [1], val_actors: [2]}
          train: {audio_channels: [4, 8], face_channels: [4, 8], embedding: 16, epochs: 3, batch_size: 16, checkpoint_every: 1,
                  patience: 10, speaker_norm: \(speakerNorm)}
        """)
    }

    static func copyOfPrepared() throws -> (manifest: String, workdir: String) {
        let (manifest, workdir) = try prepared.get()
        let copy = try TestSupport.temporaryFolder("work") + "/w"
        try TestSupport.shell("cp -a '\(workdir)' '\(copy)'")
        return (manifest, copy)
    }

    /// SIGINT while `predict` works through its files: no further file is started, the answers so far
    /// (fewer than the files) are printed as JSON, and the exit status is 130, saying how many.
    static func checkPredictInterruptedMidway(runFolder: String, files: [String]) throws {
        let predict = Process()
        predict.executableURL = URL(fileURLWithPath: TestSupport.emopipe)
        predict.arguments = ["predict", "--run", runFolder, "--json", "--files-from", "-"]
        let list = Pipe()
        let output = try TestSupport.temporaryFile(), errors = try TestSupport.temporaryFile()
        predict.standardInput = list
        predict.standardOutput = FileHandle(forWritingAtPath: output)
        predict.standardError = FileHandle(forWritingAtPath: errors)
        try predict.run()
        try list.fileHandleForWriting.write(contentsOf: Data((files.joined(separator: "\n") + "\n").utf8))
        try list.fileHandleForWriting.close()
        // The trap is set, once the list is read, when /proc shows SIGINT caught: libdispatch's handler is in.
        // Ignored alone is the moment before it, when a SIGINT is dropped (under load this test sent it then, and
        // predict answered every file).
        func trapped() -> Bool { TestSupport.handles(SIGINT, pid: predict.processIdentifier, ignored: false) }
        let deadline = Date().addingTimeInterval(120)
        while !trapped() && predict.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(kill(predict.processIdentifier, SIGINT) == 0)
        predict.waitUntilExit()
        let stderr = try String(contentsOfFile: errors, encoding: .utf8)
        #expect(predict.terminationReason == .exit && predict.terminationStatus == ExitStatus.interrupted, "\(stderr)")
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [Any])
        #expect(answers.count < files.count)
        #expect(stderr.contains("emopipe: interrupted: \(answers.count) of \(files.count) files answered"), "\(stderr)")
    }

    /// The newest run that finished (`partial`: some sources failed).
    static func lastRunFolder(_ workdir: String, finished: Set<RunStatus> = [.done]) throws -> String {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let run = try #require(try store.runs().first { finished.contains($0.status) })
        return workdir + "/runs/" + run.id
    }

    static func bestWeights(_ workdir: String) throws -> Data {
        let path = try TestSupport.shell("ls '\(workdir)'/cache/train/*/fold-0/best.safetensors").trimmingCharacters(in: .whitespacesAndNewlines)
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test func writesMetricsAndAReportAndIsDeterministic() throws {
        let (manifest, a) = try Self.copyOfPrepared()
        let first = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", a])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("epoch 3/3"), "progress per epoch is logged")
        let runFolder = try Self.lastRunFolder(a)
        let metricsData = try Data(contentsOf: URL(fileURLWithPath: runFolder + "/metrics.json"))
        let metrics = try #require(try JSONSerialization.jsonObject(with: metricsData) as? [String: Any])
        for key in ["accuracy", "weighted_f1", "macro_f1", "labels", "confusion_matrix", "per_class"] {
            #expect(metrics[key] != nil, "metrics.json has \(key)")
        }
        let matrix = try #require(metrics["confusion_matrix"] as? [[Int]])
        #expect(matrix.count == 8 && matrix.allSatisfy { $0.count == 8 })
        #expect(matrix.flatMap { $0 }.reduce(0, +) == 60, "actor 01's 60 clips are the test set")
        // A speech-only root feeds no face branch: the model is built without one, and says so.
        let modelJSON = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/model.json"))) as? [String: Any])
        #expect((modelJSON["config"] as? [String: Any])?["modalities"] as? [String] == ["audio"])
        #expect(first.stderr.contains("no training clip has face crops: the model is built without the faces branch (modalities: audio)"), "\(first.stderr)")
        let report = try String(contentsOfFile: runFolder + "/report.html", encoding: .utf8)
        #expect(report.contains("<svg") && !report.contains("http://") && !report.contains("https://"))
        try Self.checkPredictionFiles(runFolder: runFolder, metrics: metrics, report: report)

        // Same manifest, data, code and threads in another work directory: the same bytes.
        let (_, b) = try Self.copyOfPrepared()
        #expect(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", b]).status == 0)
        let metricsB = try Data(contentsOf: URL(fileURLWithPath: try Self.lastRunFolder(b) + "/metrics.json"))
        #expect(metricsB == metricsData)
        #expect(try Self.bestWeights(b) == (try Self.bestWeights(a)))
        let models = try ProvenanceStore(path: a + "/emopipe.sqlite").read { db in
            try ArtifactRecord.filter(sql: "kind = 'model'").fetchAll(db)
        }
        let onnxA = try Data(contentsOf: URL(fileURLWithPath: runFolder + "/model.onnx"))
        let onnxB = try Data(contentsOf: URL(fileURLWithPath: try Self.lastRunFolder(b) + "/model.onnx"))
        #expect(onnxA == onnxB, "model.onnx is byte-identical")
        // Lineage: every source the exported fold learnt from reaches model.onnx, as it reaches the trained model.
        let (fedTraining, fedExport) = try ProvenanceStore(path: a + "/emopipe.sqlite").read { db in
            (Set(try String.fetchAll(db, sql: "SELECT sourceSHA256 FROM artifact WHERE stage = 'train' AND sourceSHA256 IS NOT NULL")),
             Set(try String.fetchAll(db, sql: "SELECT sourceSHA256 FROM artifact WHERE stage = 'export' AND sourceSHA256 IS NOT NULL")))
        }
        #expect(!fedExport.isEmpty && fedExport == fedTraining)
        let lineage = try TestSupport.run(TestSupport.emopipe, ["show", try #require(fedExport.sorted().first), "--workdir", a])
        #expect(lineage.stdout.contains("artifact export exported onnx \(runFolder)/model.onnx"), "\(lineage.stdout)")

        // predict: JSON per file, a timeline for a clip longer than the model's window, bad files reported.
        let long = try TestSupport.temporaryFolder("long") + "/long.wav"
        let wavs = try FileManager.default.contentsOfDirectory(atPath: TestSupport.sharedData + "/speech-flac/Actor_01")
            .sorted().prefix(3).map { "'\(TestSupport.sharedData)/speech-flac/Actor_01/\($0)'" }.joined(separator: " ")
        try TestSupport.shell("sox \(wavs) '\(long)'")
        let notMedia = try TestSupport.temporaryFolder("bad") + "/notes.wav"
        try "text".write(toFile: notMedia, atomically: true, encoding: .utf8)
        // The run named by the start of its id, as diff and reproduce take it.
        let idStart = String((runFolder as NSString).lastPathComponent.dropLast(2))
        let predict = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", a, "--run", idStart, "--json", long, notMedia])
        #expect(predict.status == ExitStatus.partial, "\(predict.stderr)")
        #expect(predict.stderr.contains(notMedia))
        let predictions = try #require(try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [[String: Any]])
        #expect(predictions.count == 1)
        let probabilities = try #require(predictions[0]["probabilities"] as? [String: Double])
        #expect(probabilities.count == 8 && abs(probabilities.values.reduce(0, +) - 1) < 1e-3)
        #expect(probabilities[predictions[0]["label"] as? String ?? ""] == probabilities.values.max())
        let timeline = try #require(predictions[0]["timeline"] as? [[String: Any]])
        #expect(timeline.count >= 5, "a ~10 s file gives windows every second")
        #expect(timeline.map { $0["start"] as? Double ?? -1 }.prefix(3) == [0, 1, 2], "the model's hop: 100 frames of 10 ms")
        #expect((timeline.first?["start"] as? Double) == 0)

        // An audio-video clip: the speech-only model hears it and does not look at it.
        let av = TestSupport.sharedData + "/av-original/Actor_01/01-01-01-01-01-01-01.mp4"
        let onVideo = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", av])
        #expect(onVideo.status == 0, "\(onVideo.stderr)")
        let videoAnswers = try #require(try JSONSerialization.jsonObject(with: Data(onVideo.stdout.utf8)) as? [[String: Any]])
        #expect(videoAnswers.count == 1 && videoAnswers.first?["modalities"] as? [String] == ["audio"], "\(videoAnswers)")

        try Self.checkPredictEqualsEvaluate(runFolder: runFolder)
        // A run folder whose features.json is damaged is refused naming that file (exit 1), not per input.
        let damaged = try TestSupport.temporaryFolder("damaged-run") + "/run"
        try FileManager.default.copyItem(atPath: runFolder, toPath: damaged)
        for garbage in ["{not json", "{\"audio\": {\"n_mels\": 7}}", "{\"audio\": null}"] {
            try garbage.write(toFile: damaged + "/features.json", atomically: true, encoding: .utf8)
            let refused = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", damaged, long])
            #expect(refused.status == 1 && refused.stderr.contains(damaged + "/features.json"), "\(garbage): \(refused.stderr)")
        }
        // Valid feature parameters other than the model's (a copied folder has no store to check it against)
        // are refused by the digest model.json records; the same values laid out otherwise are the same file.
        let exportedFeatures = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/features.json"))) as? [String: Any])
        var audio = try #require(exportedFeatures["audio"] as? [String: Any])
        let hop = try #require(audio["hop_length"] as? Int)
        audio["hop_length"] = hop / 2
        var otherFeatures = exportedFeatures
        otherFeatures["audio"] = audio
        for (features, refusedAs) in [(otherFeatures, true), (exportedFeatures, false)] {
            try JSONSerialization.data(withJSONObject: features, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: damaged + "/features.json"))
            let answer = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", damaged, long])
            #expect((answer.status == 1) == refusedAs, "\(answer.stderr)")
            #expect(answer.stderr.contains("features.json: not the feature parameters this model was exported with") == refusedAs, "\(answer.stderr)")
            #expect(!answer.stderr.contains("records no features_sha256"), "\(answer.stderr)")
        }
        // Without the digest (an older export, or the key taken out) the file is used unchecked, and predict says so.
        let exportedModel = try String(contentsOfFile: runFolder + "/model.json", encoding: .utf8)
        let undigested = exportedModel.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("\"features_sha256\"") }.joined(separator: "\n")
        #expect(undigested != exportedModel)
        try undigested.write(toFile: damaged + "/model.json", atomically: true, encoding: .utf8)
        let unchecked = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", damaged, long])
        #expect(unchecked.status == 0 && unchecked.stderr.contains("note: model.json records no features_sha256 (an export before 2026-12-05, "
                                                                    + "or the key was taken out): features.json is used unchecked"), "\(unchecked.stderr)")
        try exportedModel.write(toFile: damaged + "/model.json", atomically: true, encoding: .utf8)
        // Weights that are a folder or a pipe are named as such (Foundation said "permission" for a pipe).
        try FileManager.default.removeItem(atPath: damaged + "/model.safetensors")
        for (what, make) in [("a folder", { try FileManager.default.createDirectory(atPath: damaged + "/model.safetensors", withIntermediateDirectories: false) }),
                             ("a pipe", { #expect(mkfifo(damaged + "/model.safetensors", 0o644) == 0) })] as [(String, () throws -> Void)] {
            try? FileManager.default.removeItem(atPath: damaged + "/model.safetensors")
            try make()
            let refused = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", damaged, long])
            #expect(refused.status == 1 && refused.stderr.contains("model.safetensors: not a regular file"), "\(what): \(refused.stderr)")
        }
        // A link looping round is named as that, not as "no exported model" or a missing file.
        try FileManager.default.createSymbolicLink(atPath: damaged + "/loop-a", withDestinationPath: damaged + "/loop-b")
        try FileManager.default.createSymbolicLink(atPath: damaged + "/loop-b", withDestinationPath: damaged + "/loop-a")
        for file in ["model.safetensors", "features.json"] {
            try? FileManager.default.removeItem(atPath: damaged + "/" + file)
            try FileManager.default.createSymbolicLink(atPath: damaged + "/" + file, withDestinationPath: damaged + "/loop-a")
            let refused = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", damaged, long])
            #expect(refused.status == 1 && refused.stderr.contains("\(damaged)/\(file): cannot read") && refused.stderr.contains("symbolic links"),
                    "\(file): \(refused.stderr)")
            try FileManager.default.removeItem(atPath: damaged + "/" + file)
            try FileManager.default.copyItem(atPath: runFolder + "/" + file, toPath: damaged + "/" + file)
        }
        // A description far larger than export writes (a sparse file claims 50 GB, allocating it trapped)
        // is refused by its size before it is read.
        for file in ["model.json", "features.json"] {
            let saved = try Data(contentsOf: URL(fileURLWithPath: damaged + "/" + file))
            #expect(truncate(damaged + "/" + file, 50 << 30) == 0)
            let refused = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", damaged, long])
            #expect(refused.status == 1 && refused.stderr.contains("\(damaged)/\(file)") && refused.stderr.contains("it is 53687091200 bytes, more than the"),
                    "\(file): \(refused.stderr)")
            try saved.write(to: URL(fileURLWithPath: damaged + "/" + file))
        }
        // Within the work directory, weights edited after export are refused (they would answer with
        // confidence); put back, they are used again.
        let weights = runFolder + "/model.safetensors"
        let exported = try Data(contentsOf: URL(fileURLWithPath: weights))
        var edited = exported
        edited[edited.count - 4] ^= 0x40
        try edited.write(to: URL(fileURLWithPath: weights))
        let runId = (runFolder as NSString).lastPathComponent
        let tampered = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", a, "--run", runId, long])
        #expect(tampered.status == 1 && tampered.stderr.contains("\(weights): is not the file export wrote"), "\(tampered.stderr)")
        // So in a copy of the work directory, named by --workdir or reached by the run folder's path alone: its own
        // rows judge it (reached by path, another work directory's run was not judged at all).
        let copy = a + "-copied"
        try TestSupport.shell("cp -a '\(a)' '\(copy)'")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        for arguments in [["--workdir", copy, "--run", runId], ["--run", copy + "/runs/" + runId]] {
            let copied = try TestSupport.run(TestSupport.emopipe, ["predict"] + arguments + [long])
            #expect(copied.status == 1 && copied.stderr.contains("\(copy)/runs/\(runId)/model.safetensors: is not the file export wrote"),
                    "\(arguments): \(copied.stderr)")
        }
        // Without the database the edit could not be seen: such a work directory is refused, as every command refuses it.
        let database = a + "/emopipe.sqlite", aside = a + "/emopipe.sqlite.aside"
        try FileManager.default.moveItem(atPath: database, toPath: aside)
        let withoutDatabase = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", a, "--run", runId, long])
        try FileManager.default.moveItem(atPath: aside, toPath: database)
        #expect(withoutDatabase.status == 1 && withoutDatabase.stdout.isEmpty && withoutDatabase.stderr.contains("runs/ is here but not emopipe.sqlite, the provenance database whose rows check a run's exported files"), "\(withoutDatabase.stderr)")
        try exported.write(to: URL(fileURLWithPath: weights))
        #expect(try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", a, "--run", runId, long]).status == 0)
        // A file past what loading reads is refused for its size, not hashed first (gigabytes took half a minute)
        // and called another file.
        let description = runFolder + "/model.json"
        let savedDescription = try Data(contentsOf: URL(fileURLWithPath: description))
        #expect(truncate(description, 20 << 20) == 0)
        let oversized = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", a, "--run", runId, long])
        try savedDescription.write(to: URL(fileURLWithPath: description))
        #expect(oversized.status == 1 && oversized.stderr.contains("\(description): it is 20971520 bytes, more than the"), "\(oversized.stderr)")
        try Self.checkONNXOnRealSamples(workdir: a, runFolder: runFolder)

        let weightsA = try Self.bestWeights(a)
        #expect(models.count == 1 && models[0].sha256 == SHA256Hex.of(weightsA))
    }

    /// A cache index row edited to a length its shard does not hold (terabytes, or negative) or to a shard the
    /// index does not list is damage: train drops the record, computes it again and goes on (it refused the
    /// features as terabytes, or said "try again" for ever), and `cache verify` finds it (it found nothing).
    @Test func anIndexRowThatDisagreesWithItsShardIsRepairedNotBelieved() throws {
        let (manifest, workdir) = try Self.copyOfPrepared()
        let features = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--until", "audio"])
        try #require(features.status == 0, "\(features.stderr)")
        let database = workdir + "/emopipe.sqlite"
        // As a hand edit makes it: without the foreign-key check EmoPipe's own connections make.
        var unchecked = Configuration()
        unchecked.foreignKeysEnabled = false
        func edit(_ sql: String) throws -> String {
            try DatabaseQueue(path: database, configuration: unchecked).write { db -> String in
                let key = try #require(try String.fetchOne(db, sql: "SELECT key FROM cacheRecord WHERE stage = 'audio' ORDER BY key LIMIT 1 OFFSET 3"))
                try db.execute(sql: sql + " WHERE stage = 'audio' AND key = ?", arguments: [key])
                return key
            }
        }
        let huge = try edit("UPDATE cacheRecord SET dataLength = 9223372036854775807")
        let trained = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--set", "train.epochs=1", "--set", "train.warmup_epochs=0"])
        #expect(trained.status == 0 && trained.stderr.contains("record for source \(huge) holds")
                && trained.stderr.contains("where the provenance database's index says 9223372036854775807"), "\(trained.stderr.suffix(1500))")
        let dangling = try edit("UPDATE cacheRecord SET shardId = 999")
        let again = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--force", "train", "--set", "train.epochs=1", "--set", "train.warmup_epochs=0"])
        #expect(again.status == 0 && again.stderr.contains("lists the record for source \(dangling) in shard 999, which it does not list"), "\(again.stderr.suffix(1500))")
        _ = try edit("UPDATE cacheRecord SET dataLength = -64")
        let verify = try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir])
        #expect(verify.status == ExitStatus.partial && verify.stdout.contains(", 1 damaged"), "\(verify.stdout)\(verify.stderr)")
        // So is a row whose metadata's place is not the shard's (verify found nothing).
        for column in ["metaOffset", "metaLength"] {
            let edited = try edit("UPDATE cacheRecord SET \(column) = -5")
            let found = try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir])
            #expect(found.status == ExitStatus.partial && found.stdout.contains(", 1 damaged") && (found.stdout + found.stderr).contains(edited),
                    "\(column): \(found.stdout)\(found.stderr)")
        }
    }

    /// `show` links a model to the sources it learnt from: a training actor's recording whose audio failed
    /// (silent) fed it nothing and is not linked, while its good recordings are (every training file was).
    @Test func aSourceWhoseFeaturesFailedIsNotLinkedToTheModel() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let wavs = try FileManager.default.contentsOfDirectory(atPath: data + "/Actor_03").filter { $0.hasSuffix(".wav") }.sorted()
        let (silent, good) = (data + "/Actor_03/" + wavs[0], data + "/Actor_03/" + wavs[1])
        // A new file in its place: the laid-out copy may share its inode with the shared data.
        try FileManager.default.removeItem(atPath: silent)
        try TestSupport.shell("sox -D -n -r 48000 -b 16 -c 1 '\(silent)' trim 0 2")
        let folder = try TestSupport.temporaryFolder("unlinked")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work", "--set", "train.epochs=1", "--set", "train.warmup_epochs=0"])
        #expect(run.status == ExitStatus.partial && run.stderr.contains("all zero"), "\(run.stderr)")
        let shownSilent = try TestSupport.run(TestSupport.emopipe, ["show", silent, "--workdir", folder + "/work"])
        #expect(shownSilent.status == 0 && shownSilent.stdout.contains("audio: audio is all zero"), "\(shownSilent.stdout)\(shownSilent.stderr)")
        #expect(!shownSilent.stdout.contains("artifact train") && !shownSilent.stdout.contains("artifact export"), "\(shownSilent.stdout)")
        let shownGood = try TestSupport.run(TestSupport.emopipe, ["show", good, "--workdir", folder + "/work"])
        #expect(shownGood.stdout.contains("artifact train trained model") && shownGood.stdout.contains("artifact export exported onnx"), "\(shownGood.stdout)")
    }

    /// Video of a test actor only: no training clip could teach a face branch, so none is built, and
    /// that clip is scored on its speech alone.
    @Test func aBranchOnlyTestClipsCouldFeedIsNotBuilt() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 1)
        let folder = try TestSupport.temporaryFolder("test-video")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("faces: ran") && run.stderr.contains("1 face tracks, 0 failed"), "the faces stage read the video: \(run.stderr)")
        #expect(run.stderr.contains("no training clip has face crops: the model is built without the faces branch"), "\(run.stderr)")
        let runFolder = try Self.lastRunFolder(folder + "/work")
        let model = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/model.json"))) as? [String: Any])
        #expect((model["config"] as? [String: Any])?["modalities"] as? [String] == ["audio"])
        let rows = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 61 && rows.contains { $0.hasPrefix(data + "/Actor_01/03-01-01-01-01-01-01.wav,") },
                "the clip with video is scored, from its speech")
    }

    /// Video for a training actor whose every face detection failed: the model is built without the face
    /// branch, and train warns (not a note, as for a root without video) naming the failed stage.
    @Test func trainingVideoWhoseFacesAllFailedIsAWarning() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("faces-all-failed")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work", "--until", "train",
                                                            "--set", "faces.min_score=5"])
        #expect(run.status == 3 && run.stderr.contains("warning train: no training clip has face crops: the model is built without the faces branch "
                                                         + "(modalities: audio), though 1 training clip has video: the faces stage gave it none (failed"), "\(run.stderr)")
    }

    /// A faces-only model whose test actor has no video: refused before training, saying why (it trained
    /// every epoch, then evaluate said only that the fold had no test clips).
    /// Text the database holds (a stage's summary) is shown escaped by status and by a run's summary: an edited
    /// row's terminal controls (clear the screen, set the title) reached the terminal.
    @Test func recordedTextReachesTheTerminalEscaped() throws {
        let (manifest, workdir) = try Self.copyOfPrepared()
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        try store.write { try $0.execute(sql: "UPDATE stageState SET summary = char(27) || '[2J' || char(27) || ']0;title' || char(7) || 'done'") }
        let status = try TestSupport.run(TestSupport.emopipe, ["status", manifest, "--workdir", workdir])
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir])
        for (name, result) in [("status", status), ("run", run)] {
            let text = result.stdout + result.stderr
            #expect(!text.contains("\u{1B}") && !text.contains("\u{7}") && text.contains("\\u{1B}[2J"), "\(name): \(text)")
        }
    }

    @Test func aFacesOnlyModelWithoutTestVideoIsRefusedBeforeTraining() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("faces-only-no-test-video")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work", "--set", "train.modalities=[faces]",
                                                            "--set", "split.test_actors=[1]", "--set", "split.val_actors=[2]"])
        #expect(run.status == 1 && run.stderr.contains("train: fold 0 has no test clips with features (faces): their 60 clips have no video the model reads; "
                                                         + "evaluate could score none of its test clips, so nothing was trained") && !run.stderr.contains("epoch 1/"), "\(run.stderr)")
    }

    /// When only some folds cannot be used, the refusal says how many of the split's, and the way out: the others
    /// were fine (it said "evaluate could score none" of a split whose other two folds could be scored).
    @Test func aRefusalForSomeFoldsCountsThemAndSaysHowToLeaveThemOut() throws {
        let data = try TestSupport.materialize(actors: 1...3)   // video for actors 01 and 02 only
        let folder = try TestSupport.temporaryFolder("faces-only-some-folds")
        let manifest = try TestSupport.writeManifest(at: folder + "/cv.yaml", data: data, """
        seed: 3
        params:
          faces: {frames: 2, size: 32}
          split: {folds: 3, test_fold: all, val_count: 0}
          train: {modalities: [faces], selection: last, face_channels: [4, 8], embedding: 16, epochs: 1, warmup_epochs: 0, batch_size: 16}
        """)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work"])
        let line = run.stderr.split(separator: "\n").first { $0.contains("train: fold ") }.map(String.init) ?? ""
        #expect(run.status == 1 && line.contains("fold 2 has no test clips with features (faces)") && !line.contains("fold 0") && !line.contains("fold 1")
                && line.hasSuffix("; evaluate could score none of its test clips (1 of the split's 3 folds: a run trains all of them or none; "
                                  + "leave it out with split.actors, or train one fold with split.test_fold), so nothing was trained"), "\(run.stderr)")
    }

    /// Faces-only cross-validation with video for one actor: no fold can be both trained and scored. Every fold is
    /// named with its own cause before anything trains (the first untestable one stopped the run, after a warning
    /// that a fold with no face crops to train on "never learns" every class).
    @Test func everyFoldThatCannotBeTrainedOrScoredIsNamedAtOnce() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("faces-only-folds")
        let manifest = try TestSupport.writeManifest(at: folder + "/cv.yaml", data: data, """
        seed: 3
        params:
          split: {folds: 3, test_fold: all, val_count: 1}
          train: {modalities: [faces], face_channels: [4, 8], embedding: 16, epochs: 3, batch_size: 16}
        """)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work"])
        let line = run.stderr.split(separator: "\n").first { $0.contains("train: fold ") }.map(String.init) ?? ""
        #expect(run.status == 1 && (0..<3).allSatisfy { line.contains("fold \($0)") } && line.contains("no training clip has face crops (training actors")
                && line.contains("has no test clips with features (faces)") && line.hasSuffix("; none of them could be both trained and scored, so nothing was trained"), "\(run.stderr)")
        #expect(!run.stderr.contains("no training clip is") && !run.stderr.contains("epoch 1/"), "\(run.stderr)")
    }

    /// Cross-validation with video for actor 1 alone: fold 0 tests actor 1 and trains on the others, so its
    /// face branch never learns. Its model.json and the export say so, and evaluate and predict give that
    /// model no face input: predict on the clip's mp4 answers what evaluate recorded.
    @Test func aFoldsUntrainedBranchGetsNoInput() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 1)
        let folder = try TestSupport.temporaryFolder("untrained-branch")
        let manifest = try TestSupport.writeManifest(at: folder + "/cv.yaml", data: data, """
        seed: 3
        threads: 2
        params:
          split: {folds: 3, test_fold: all, val_count: 1}
          train: {audio_channels: [4, 8], face_channels: [4, 8], embedding: 16, epochs: 2, batch_size: 16, speaker_norm: false}
        """)
        let work = folder + "/work"
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("fold 0: no training clip has face crops, so its faces branch stays untrained")
                && run.stderr.contains("fold 0: no training clip had faces input, so that branch never learnt"), "\(run.stderr)")
        let runFolder = try Self.lastRunFolder(work)
        let model = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/model.json"))) as? [String: Any])
        #expect((model["fold"] as? [String: Any])?["test"] as? [Int] == [1] && model["untrained_modalities"] as? [String] == ["faces"], "\(model)")
        #expect((model["config"] as? [String: Any])?["modalities"] as? [String] == ["audio", "faces"], "the branch exists, unfed")
        // The clip with video was scored by fold 0 (it tests actor 1); predict uses fold 0's model.
        let mp4 = data + "/Actor_01/01-01-01-01-01-01-01.mp4"
        let rows = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        let header = rows[0].split(separator: ",").map(String.init)
        let row = try #require(rows.first { $0.contains("03-01-01-01-01-01-01.wav") }).split(separator: ",").map(String.init)
        let recorded = header.indices.filter { header[$0].hasPrefix("p_") }.map { Double(row[$0]) ?? -1 }
        let predict = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", mp4])
        #expect(predict.status == 0, "\(predict.stderr)")
        let answer = try #require((try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [[String: Any]])?.first)
        let probabilities = try #require(answer["probabilities"] as? [String: Double])
        #expect(answer["modalities"] as? [String] == ["audio"], "the answer says it used the speech alone: \(answer)")
        // The clip's mp4 and its wav get one answer: the untrained branch changes nothing (fed the crops, it did).
        let wav = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", data + "/Actor_01/03-01-01-01-01-01-01.wav"])
        let fromWav = (try JSONSerialization.jsonObject(with: Data(wav.stdout.utf8)) as? [[String: Any]])?.first?["probabilities"] as? [String: Double]
        #expect(fromWav == probabilities, "\(wav.stderr)")
        let labels = header.filter { $0.hasPrefix("p_") }.map { String($0.dropFirst(2)) }
        for (label, p) in zip(labels, recorded) {
            #expect(abs((probabilities[label] ?? -1) - p) < 1e-5, "\(label): predict \(probabilities[label] ?? -1), evaluate \(p)")
        }
        // Fold 0's model learnt from actors 2 and 3: a file of theirs is answered with a note saying so, once.
        #expect(!predict.stderr.contains("note: files named as recordings"), "actor 1 is fold 0's test actor: \(predict.stderr)")
        let seen = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, data + "/Actor_03/03-01-02-01-01-01-03.wav",
                                                             data + "/Actor_02/03-01-02-01-01-01-02.wav"])
        #expect(seen.status == 0 && seen.stderr.contains("note: files named as recordings of actors 02, 03, whom this model (fold 0) "
                                                          + "was trained or validated on"), "\(seen.stderr)")
    }

    /// A test clip whose file fails ingest, and one whose speech fails the audio stage, count in no
    /// figure: metrics.json lists both (file, stage, reason), the report says so, and a test file
    /// failing otherwise since is noticed though nothing upstream of evaluate changes.
    @Test func testClipsWhoseFilesFailedAreListedAsUnscored() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let notMedia = data + "/Actor_01/03-01-01-01-01-01-01.wav", tooShort = data + "/Actor_01/03-01-03-01-01-01-01.wav"
        try TestSupport.shell("rm -f '\(notMedia)' '\(tooShort)' && echo 'not audio' > '\(notMedia)' && sox -n -r 16000 -b 16 -c 1 '\(tooShort)' trim 0 10s")
        let folder = try TestSupport.temporaryFolder("unscored")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let work = ["--workdir", folder + "/work"]
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + work)
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stderr.contains("over 58 test clips; 2 test clip(s) not scored"), "\(run.stderr)")
        let runFolder = try Self.lastRunFolder(folder + "/work", finished: [.partial])
        func unscored() throws -> [[String: Any]] {
            let metrics = try #require(try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: try Self.lastRunFolder(folder + "/work", finished: [.partial]) + "/metrics.json"))) as? [String: Any])
            return try #require(metrics["unscored_test_clips"] as? [[String: Any]])
        }
        let listed = try unscored()
        #expect(listed.map { $0["path"] as? String } == [notMedia, tooShort])
        #expect(listed.map { $0["stage"] as? String } == ["ingest", "audio"])
        #expect(listed.map { $0["clip"] as? String } == ["01-01-01-01-01-01", "01-03-01-01-01-01"])
        #expect(listed.allSatisfy { $0["actor"] as? Int == 1 && $0["fold"] as? Int == 0 && !($0["reason"] as? String ?? "").isEmpty })
        let rows = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 1 + 58 && !rows.contains { $0.hasPrefix(notMedia + ",") || $0.hasPrefix(tooShort + ",") })
        let report = try String(contentsOfFile: runFolder + "/report.html", encoding: .utf8)
        #expect(report.contains("Test clips not scored (2)") && report.contains(notMedia), "the report lists them")

        // The same file failing for another reason changes no ok file, so train stays; evaluate says it anew.
        let before = try #require(listed.first?["reason"] as? String)
        try TestSupport.shell("rm -f '\(notMedia)' && printf 'RIFF\\000\\000' > '\(notMedia)'")
        _ = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "ingest"] + work)
        let status = try TestSupport.run(TestSupport.emopipe, ["status", manifest] + work)
        #expect(status.stdout.contains("train     up-to-date") && status.stdout.contains("the test clips not scored changed since run")
                && status.stdout.contains("clip 01-01-01-01-01-01 fails now otherwise (\(notMedia), ingest: "),
                "\(status.stdout)")
        let again = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + work)
        #expect(again.status == 3 && again.stderr.contains("train: up to date") && again.stderr.contains("evaluate: ran"), "\(again.stderr)")
        let after = try #require(try unscored().first?["reason"] as? String)
        #expect(after != before, "\(after)")
        // diff (and reproduce) say what differs when only a failure's reason does: the figures are the same.
        let firstRun = (runFolder as NSString).lastPathComponent
        let secondRun = (try Self.lastRunFolder(folder + "/work", finished: [.partial]) as NSString).lastPathComponent
        let diff = try TestSupport.run(TestSupport.emopipe, ["diff", firstRun, secondRun] + work)
        let line = diff.stdout.split(separator: "\n").first { $0.contains("unscored test clip 01-01-01-01-01-01") }
        #expect(line.map { $0.contains(before.prefix(16)) && $0.contains(after.prefix(16)) } == true, "\(diff.stdout)")
        let json = try TestSupport.run(TestSupport.emopipe, ["diff", firstRun, secondRun, "--json"] + work)
        let name = (notMedia as NSString).lastPathComponent
        #expect(json.stdout.contains("\"a\":\"ingest: \(name): \(before)\"") && json.stdout.contains("\"b\":\"ingest: \(name): \(after)\""),
                "\(json.stdout)")
        #expect(!diff.stdout.contains("unscored test clip 01-03-01-01-01-01") && !diff.stdout.contains("weighted_f1"),
                "only what differs: \(diff.stdout)")
        let third = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + work)
        #expect(third.stderr.contains("evaluate: up to date"), "nothing changed since: \(third.stderr)")
        // The last line says where the results are: the run's own folder, or the one of the run that computed them.
        let results = "results: \(folder)/work/runs/\(secondRun)/"
        let lastLines = [again, third].map { $0.stderr.split(separator: "\n").last.map(String.init) ?? "" }
        // Evaluate ran again, export did not: its model is named in the folder of the run that exported it.
        let exported = "\(folder)/work/runs/\((runFolder as NSString).lastPathComponent)/: model.onnx"
        #expect(again.status == 3 && lastLines[0] == results + ": report.html, metrics.json; " + exported + " (this run found some up to date)",
                "\(again.stderr)")
        #expect(lastLines[1] == results + ": report.html, metrics.json; " + exported + " (this run found them up to date)", "\(third.stderr)")
    }

    /// A fold with one training clip makes no batch of two: refused naming the fold, its actors and what to change,
    /// not only in the engine's words.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func aFoldWithOneTrainingClipIsRefusedNamingTheFold() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 2), ("03-01-02-01-01-01-01.wav", 2),
                                                      ("03-01-01-01-01-01-02.wav", 2), ("03-01-02-01-01-01-02.wav", 2),
                                                      ("03-01-03-01-01-01-03.wav", 2)])
        let folder = try TestSupport.temporaryFolder("one-training-clip")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work"])
        #expect(run.status == 1 && run.stderr.contains("train: fold 0 (1 training clip of actors [3]): 1 training sample(s) make no batch of two")
                && run.stderr.contains("give the fold more training clips"), "\(run.stderr)")
    }

    /// A test clip with no file of an input the model reads (a video-only clip under a model that, with no
    /// training clip of faces, reads audio alone) counts in no figure either: listed with the reason, not left out unsaid.
    @Test(.enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func testClipsTheModelTakesNoInputOfAreListedAsUnscored() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let videoOnly = data + "/Actor_01/02-01-04-02-01-01-01.mp4"
        // The clip's speech file taken away: the video file alone makes the clip.
        try FileManager.default.removeItem(atPath: data + "/Actor_01/03-01-04-02-01-01-01.wav")
        try TestSupport.shell("ffmpeg -nostdin -v error -i '\(TestSupport.sharedData)/av-original/Actor_01/01-01-01-01-01-01-01.mp4' -an -c copy '\(videoOnly)'")
        // A clip whose speech file failed ingest, beside its video-only file, is named by that failure, not as video only.
        let brokenSpeech = data + "/Actor_01/03-01-05-02-01-01-01.wav"
        try FileManager.default.removeItem(atPath: brokenSpeech)
        try Data("not audio\n".utf8).write(to: URL(fileURLWithPath: brokenSpeech))
        try FileManager.default.copyItem(atPath: videoOnly, toPath: data + "/Actor_01/02-01-05-02-01-01-01.mp4")
        let folder = try TestSupport.temporaryFolder("not-taken")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work"])
        #expect(run.status == 3, "one file failed: \(run.stderr)")
        #expect(run.stderr.contains("2 test clip(s) not scored") && run.stderr.contains("test clip 01-04-02-01-01-01 not scored: \(videoOnly): "
                                                                                       + "has only a video file (no speech), and the model reads audio"), "\(run.stderr)")
        let runFolder = try Self.lastRunFolder(folder + "/work", finished: [.partial])
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/metrics.json"))) as? [String: Any])
        let listed = try #require(metrics["unscored_test_clips"] as? [[String: Any]])
        #expect(listed.map { $0["stage"] as? String } == ["evaluate", "ingest"] && listed.map { $0["path"] as? String } == [videoOnly, brokenSpeech], "\(listed)")
        // Listed alike when status recomputes the list: evaluate stays up to date.
        let again = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/work"])
        #expect(again.status == 3 && again.stderr.contains("evaluate: up to date"), "\(again.stderr)")
    }

    /// A fold whose every test clip failed the audio stage cannot be scored: train refuses before training,
    /// saying how many failed where and why, not only that the fold has no test clips.
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func aFoldWhoseTestClipsAllFailedSaysWhy() throws {
        var clips: [(name: String, seconds: Double)] = []
        for actor in ["01", "02"] {
            for emotion in 1...8 { clips.append(("03-01-0\(emotion)-01-01-01-\(actor).wav", 1.5)) }
        }
        let data = try TestSupport.synthesizedSpeech(clips)
        try FileManager.default.createDirectory(atPath: data + "/Actor_03", withIntermediateDirectories: true)
        for emotion in 1...3 {
            try TestSupport.shell("sox -n -r 48000 -b 16 -c 1 '\(data)/Actor_03/03-01-0\(emotion)-01-01-01-03.wav' synth 0.004 sine 440")
        }
        let workdir = try TestSupport.temporaryFolder("all-test-failed") + "/work"
        let run = try TestSupport.run(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
            "--set", "split.test_actors=[3]", "--set", "split.val_actors=[2]",
        ])
        #expect(run.status == 1, "\(run.stderr)")
        // Said before any training, which could only be in vain.
        #expect(run.stderr.contains("train: fold 0 has no test clips with features (audio): the 3 test clips of actor 03 failed (audio: 3; first: "
                                    + "\(data)/Actor_03/03-01-01-01-01-01-03.wav: audio too short: ")
                && run.stderr.contains("evaluate could score none of its test clips, so nothing was trained") && !run.stderr.contains("epoch 1/"), "\(run.stderr)")
        // The same actor as the validation one: train says which validation clips failed, and why.
        let validating = try TestSupport.run(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
            "--set", "split.test_actors=[2]", "--set", "split.val_actors=[3]",
        ])
        #expect(validating.status == 1 && validating.stderr.contains("train: fold 0 has 8 training and 0 validation clips with features (audio): "
            + "the 3 validation clips of actor 03 failed (audio: 3; first: \(data)/Actor_03/03-01-01-01-01-01-03.wav: audio too short: "),
                "\(validating.stderr)")
    }

    /// A speech-only model reads no face crops: the faces stage is left out of the run (saying so)
    /// even with video for training actors, runs when named, and cannot make train stale.
    @Test func aSpeechOnlyModelLeavesTheFacesStageOut() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("speech-only")
        let manifest = try Self.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let options = ["--workdir", folder + "/work", "--set", "train.modalities=[audio]"]
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + options)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("faces: left out: train does not read it with these parameters (run it by name: --until faces)")
                && !run.stderr.contains("faces: running"), "\(run.stderr)")
        let status = try TestSupport.run(TestSupport.emopipe, ["status", manifest] + options)
        #expect(status.stdout.contains("nothing reads it with these parameters, so a run leaves it out"), "\(status.stdout)")
        let runFolder = try Self.lastRunFolder(folder + "/work")
        let features = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/features.json"))) as? [String: Any])
        #expect(features["faces"] is NSNull && features["audio"] is [String: Any], "\(features)")
        let report = try String(contentsOfFile: runFolder + "/report.html", encoding: .utf8)
        #expect(report.contains("audio stage fingerprint") && !report.contains("faces stage fingerprint"))

        let faces = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "faces"] + options)
        #expect(faces.status == 0 && faces.stderr.contains("1 face tracks, 0 failed"), "\(faces.stderr)")
        let again = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + options)
        #expect(again.status == 0 && again.stderr.contains("train: up to date") && again.stderr.contains("faces: left out"),
                "new face crops change nothing a speech-only model read: \(again.stderr)")
        // What the manifest needs now holds no face crops: gc --current-only would remove them.
        let gc = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", manifest, "--current-only", "--dry-run", "--json"] + options)
        let listing = try #require(try JSONSerialization.jsonObject(with: Data(gc.stdout.utf8)) as? [String: Any], "\(gc.stderr)")
        #expect((listing["kept"] as? [String: Any])?["faces"] == nil && (listing["kept"] as? [String: Any])?["audio"] != nil, "\(listing)")
        #expect((listing["removed"] as? [[String: Any]] ?? []).contains { $0["stage"] as? String == "faces" && $0["records"] as? Int == 1 }, "\(listing)")
        let speechPlan = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--dry-run"] + options)
        #expect(!speechPlan.stdout.contains("faces") && speechPlan.stderr.contains("faces: left out"), "the plan says so too: \(speechPlan)")
        let plan = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--dry-run", "--workdir", folder + "/work",
                                                             "--set", "train.modalities=[faces, audio]"]).stdout
        let trainLine = plan.split(separator: "\n").first { $0.hasPrefix("train ") } ?? ""
        #expect(trainLine.contains(" run ") && trainLine.contains(#"modalities ["audio"] → ["audio","faces"]"#),
                "reading the faces makes train run; the modalities are a set, in one order: \(plan)")
    }

    /// A modality whose feature stage the pipeline file does not declare is left out of the model, said as
    /// such (it was "no training clip has face crops"), and the store's records of a stage an earlier
    /// pipeline file had (faces, here) are not read: this pipeline's fingerprints do not cover them.
    @Test func aModalityWhosePipelineHasNoFeatureStageIsLeftOutSayingSo() throws {
        let (manifest, work) = try Self.copyOfPrepared()
        let withFaces = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work, "--until", "faces"])
        #expect(withFaces.status == 0, "\(withFaces.stderr)")
        #expect(try ProvenanceStore(path: work + "/emopipe.sqlite").stageState(.faces) != nil, "the earlier pipeline's faces ran")
        let shipped = try String(contentsOfFile: TestSupport.repositoryRoot + "/pipelines/ravdess.yaml", encoding: .utf8)
        let faces = try #require(shipped.range(of: "\n  faces:")), split = try #require(shipped.range(of: "\n  split:"))
        var speechOnly = shipped
        speechOnly.removeSubrange(faces.lowerBound..<split.lowerBound)
        let folder = (manifest as NSString).deletingLastPathComponent
        try speechOnly.replacingOccurrences(of: "needs: [audio, faces, split]", with: "needs: [audio, split]")
            .write(toFile: folder + "/speech-pipeline.yaml", atomically: true, encoding: .utf8)
        let speechManifest = folder + "/speech.yaml"
        try String(contentsOfFile: manifest, encoding: .utf8)
            .replacingOccurrences(of: "\(TestSupport.repositoryRoot)/pipelines/ravdess.yaml", with: folder + "/speech-pipeline.yaml")
            .write(toFile: speechManifest, atomically: true, encoding: .utf8)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", speechManifest, "--workdir", work, "--until", "train",
                                                            "--set", "train.modalities=[audio, faces]", "--set", "train.epochs=2"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("warning train: train.modalities = [\"audio\",\"faces\"] (from --set): the pipeline \(folder)/speech-pipeline.yaml "
                                    + "has no faces stage, so the model is built without the faces branch"), "\(run.stderr)")
        #expect(!run.stderr.contains("no training clip has face crops"), "\(run.stderr)")
        // Only the default asked for faces: information, not a warning.
        let byDefault = try TestSupport.run(TestSupport.emopipe, ["run", speechManifest, "--workdir", work, "--until", "train",
                                                                  "--set", "train.epochs=3"])
        #expect(byDefault.status == 0 && byDefault.stderr.contains("info    train: train.modalities = [\"audio\",\"faces\"] (from the built-in defaults): the pipeline"),
                "\(byDefault.stderr)")
    }

    /// Asking only for a modality no training clip has is refused by name, not as a fold without clips: once ingest has
    /// read the root, by the file names (no actor has a video file), before the feature stages; by train itself, from the
    /// features, when it is the first stage to run after ingest.
    @Test func onlyAModalityNoTrainingClipHasIsRefusedByName() throws {
        let (manifest, work) = try Self.copyOfPrepared()
        let refused = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work, "--set", "train.modalities=[faces]"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("emopipe: train.modalities = [\"faces\"] (from --set): no training actor (03) has a file of video (a 01 or 02 mp4) under ")
                && !refused.stderr.contains("faces: running"), "\(refused.stderr)")
        // The reason stays findable: under the run in `runs`, in its JSON, and in status while train would run again.
        let why = "train.modalities = [\"faces\"] (from --set): no training actor (03) has a file of video"
        let runs = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", work, "--limit", "1"])
        #expect(runs.stdout.contains("    train failed: \(why)"), "\(runs.stdout)")
        let runsJSON = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", work, "--limit", "1", "--json"])
        let stages = ((try JSONSerialization.jsonObject(with: Data(runsJSON.stdout.utf8)) as? [[String: Any]])?.first?["stages"] as? [[String: Any]]) ?? []
        #expect((stages.first { $0["stage"] as? String == "train" }?["message"] as? String)?.hasPrefix(why) == true, "\(stages)")
        let status = try TestSupport.run(TestSupport.emopipe, ["status", manifest, "--workdir", work, "--set", "train.modalities=[faces]"])
        #expect(status.stdout.contains("; its last attempt with these parameters failed (run ") && status.stdout.contains("): \(why)"), "\(status.stdout)")
        // With other parameters that attempt says nothing of what a run would do.
        let other = try TestSupport.run(TestSupport.emopipe, ["status", manifest, "--workdir", work])
        #expect(!other.stdout.contains("last attempt"), "\(other.stdout)")
        // With the faces stage done, train is the first stage to run after ingest, and refuses by itself, from the features.
        #expect(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work, "--until", "faces"]).status == 0)
        let own = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work, "--set", "train.modalities=[faces]"])
        #expect(own.status == 1 && own.stderr.contains("emopipe: train.modalities = [\"faces\"] (from --set): no training clip has face crops (training actors 03)"),
                "\(own.stderr)")
    }

    /// A fold without validation actors trains to its last epoch, but only when the manifest says so;
    /// evaluate, the report, export and predict work as with validation.
    @Test func aFoldWithoutValidationActorsTrainsToItsLastEpochWhenAskedTo() throws {
        let (manifest, work) = try Self.copyOfPrepared()
        let options = ["--set", "split.val_actors=[]", "--workdir", work]
        let runsBefore = try ProvenanceStore(path: work + "/emopipe.sqlite").runs().count
        for dryRun in [[], ["--dry-run"]] {
            let refused = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + options + dryRun)
            #expect(refused.status == 64 && refused.stderr.contains("--set: split.val_actors = []: with split.test_actors [1], the fold has no validation actors")
                    && refused.stderr.contains("train.selection must be last"), "\(refused.stderr)")
        }
        #expect(try ProvenanceStore(path: work + "/emopipe.sqlite").runs().count == runsBefore, "refused before any run is recorded")
        let trained = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.selection=last"] + options)
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stderr.contains("training clips (actors [2, 3]), no validation actors: trains to the last epoch"), "\(trained.stderr)")
        #expect(trained.stderr.contains("fold 0 last epoch (epoch 3)") && !trained.stderr.contains("val loss"), "\(trained.stderr)")
        let state = try TrainingState.decode(Data(contentsOf: URL(fileURLWithPath: try TestSupport.shell(
            "ls '\(work)'/cache/train/*/fold-0/state.json").trimmingCharacters(in: .whitespacesAndNewlines))))
        #expect(state.bestEpoch == 3 && state.epochs.count == 3 && state.epochs.allSatisfy { $0.valLoss.isNaN })
        let runFolder = try Self.lastRunFolder(work)
        let report = try String(contentsOfFile: runFolder + "/report.html", encoding: .utf8)
        #expect(report.contains("the weights kept: the last epoch, without validation actors"))
        #expect(!report.contains("Val loss") && !report.contains("val W-F1"), "no validation figures to show")
        #expect(FileManager.default.fileExists(atPath: runFolder + "/model.onnx"))
        #expect(try Self.checkPredictEqualsEvaluate(runFolder: runFolder).count == 60)
    }

    /// Per-speaker normalisation (the default; the other tests here turn it off to feed onnxruntime
    /// raw cached log-mels) and a selection window run through train, evaluate and export;
    /// predict, given the test actor's files together, normalises them as evaluate did and says so.
    @Test func speakerNormalisedModelsAreEvaluatedExportedAndPredictedAlike() throws {
        let (manifest, work) = try Self.copyOfPrepared()
        let options = ["--set", "train.speaker_norm=true", "--set", "train.selection_window=2", "--workdir", work]
        let evaluated = try TestSupport.run(TestSupport.emopipe, ["run", manifest] + options)
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        #expect(evaluated.stderr.contains("best mean val wF1 over 2 epochs"))
        let model = try TestSupport.shell("cat '\(work)'/cache/train/*/fold-0/model.json")
        #expect(model.contains("\"speaker_norm\" : true") || model.contains("\"speaker_norm\":true"), "\(model)")
        let runFolder = try Self.lastRunFolder(work)
        let report = try String(contentsOfFile: runFolder + "/report.html", encoding: .utf8)
        #expect(report.contains("over 2 epochs ending there"))
        let predictions = try Self.checkPredictEqualsEvaluate(runFolder: runFolder)
        #expect(predictions.allSatisfy { ($0["speaker"] as? [String: Any])?["name"] as? String == "actor 1" })
        #expect(predictions.allSatisfy { ($0["speaker"] as? [String: Any])?["files"] as? Int == 60 })
        #expect(predictions.allSatisfy { ($0["speaker"] as? [String: Any])?["statistics"] as? String == "recorded" })
        // model.json records speakers.json's SHA-256: a copied folder whose statistics went missing or were edited is refused.
        let copied = try TestSupport.temporaryFolder("copied-export") + "/run"
        try FileManager.default.copyItem(atPath: runFolder, toPath: copied)
        let onePath = try #require(predictions[0]["path"] as? String)
        let speakersText = try String(contentsOfFile: copied + "/speakers.json", encoding: .utf8)
        // Another actor number for actor 1's statistics: valid, and not what export wrote.
        try speakersText.replacingOccurrences(of: "\"actor\":1,", with: "\"actor\":4,")
            .write(toFile: copied + "/speakers.json", atomically: true, encoding: .utf8)
        let editedStatistics = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", copied, onePath])
        #expect(editedStatistics.status == 1 && editedStatistics.stderr.contains("speakers.json: not the speaker statistics this model was exported with"),
                "\(editedStatistics.stderr)")
        // Nor may the digest be taken out to let edited statistics through.
        let exportedModel = try String(contentsOfFile: copied + "/model.json", encoding: .utf8)
        try exportedModel.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("\"speakers_sha256\"") }
            .joined(separator: "\n").write(toFile: copied + "/model.json", atomically: true, encoding: .utf8)
        let undigested = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", copied, onePath])
        #expect(undigested.status == 1 && undigested.stderr.contains("model.json: records no speakers_sha256, yet speakers.json is beside it"),
                "\(undigested.stderr)")
        // Normalisation switched off with the digest: speakers.json beside such a model says model.json was edited.
        try exportedModel.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("\"speakers_sha256\"") }
            .joined(separator: "\n").replacingOccurrences(of: "\"speaker_norm\" : true", with: "\"speaker_norm\" : false")
            .write(toFile: copied + "/model.json", atomically: true, encoding: .utf8)
        let unnormalised = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", copied, onePath])
        #expect(unnormalised.status == 1 && unnormalised.stderr.contains("model.json: says the model does not normalise by speaker")
                && unnormalised.stderr.contains("yet speakers.json is beside it"), "\(unnormalised.stderr)")
        try exportedModel.write(toFile: copied + "/model.json", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: copied + "/speakers.json")
        let missing = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", copied, onePath])
        #expect(missing.status == 1 && missing.stderr.contains("speakers.json: missing: export wrote it beside model.json"), "\(missing.stderr)")
        // An export from before speakers.json (no file, no digest): the 60 files given together reproduce evaluate as well.
        let copiedModel = try String(contentsOfFile: copied + "/model.json", encoding: .utf8)
        let withoutDigest = copiedModel.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("\"speakers_sha256\"") }.joined(separator: "\n")
        #expect(withoutDigest != copiedModel)
        try withoutDigest.write(toFile: copied + "/model.json", atomically: true, encoding: .utf8)
        let older = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", copied, "--json"] + predictions.compactMap { $0["path"] as? String })
        #expect(older.status == 0 && older.stderr.contains("actor 1 (60 files: the run folder has no speakers.json, an export from before it was written)"), "\(older.stderr)")
        let groupedAnswers = try #require(try JSONSerialization.jsonObject(with: Data(older.stdout.utf8)) as? [[String: Any]])
        #expect(groupedAnswers.count == 60 && groupedAnswers.allSatisfy { ($0["speaker"] as? [String: Any])?["statistics"] as? String == "given" })
        // A new recording (a renamed copy) is blended with the training actors' statistics where speakers.json is, and
        // normalised by itself where it is not: two answers. The prior is the fold's training actors', weighted as 10 s.
        let lone = try TestSupport.temporaryFolder("lone") + "/recording.wav"
        try FileManager.default.copyItem(atPath: onePath, toPath: lone)
        func answer(_ folder: String) throws -> [String: Any] {
            let result = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", folder, "--json", lone])
            let answers = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
            return try #require(answers?.first, "\(result.stderr)")
        }
        let blendedAnswer = try answer(runFolder), aloneAnswer = try answer(copied)
        #expect((blendedAnswer["speaker"] as? [String: Any])?["statistics"] as? String == "blended"
                && (aloneAnswer["speaker"] as? [String: Any])?["statistics"] as? String == "given")
        let (pb, pa) = (try #require(blendedAnswer["probabilities"] as? [String: Double]), try #require(aloneAnswer["probabilities"] as? [String: Double]))
        #expect(pb.keys.contains { abs(pb[$0]! - (pa[$0] ?? 0)) > 1e-4 }, "blending changed nothing: \(pb) \(pa)")
        // A fold whose training actors speakers.json has no statistics of (model.json edited): the file is
        // normalised by itself, and the message names the actors model.json lists rather than blaming speakers.json.
        let refolded = try TestSupport.temporaryFolder("refolded") + "/run"
        try FileManager.default.copyItem(atPath: runFolder, toPath: refolded)
        var refoldedModel = try TrainedModel.description(in: URL(fileURLWithPath: refolded))
        refoldedModel.fold.train = [24]
        try refoldedModel.jsonData().write(to: URL(fileURLWithPath: refolded + "/model.json"))
        let foreignFold = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", refolded, "--json", lone])
        let foreignFoldAnswer = (try? JSONSerialization.jsonObject(with: Data(foreignFold.stdout.utf8)) as? [[String: Any]])?.first
        #expect(foreignFold.status == 0 && (foreignFoldAnswer?["speaker"] as? [String: Any])?["statistics"] as? String == "given"
                && foreignFold.stderr.contains("speakers.json holds none of the training actors model.json lists (24) to blend them with"), "\(foreignFold.stderr)")
        let prior = try #require(try Predictor(run: runFolder).speakerPrior)
        let trainedOn = try TrainedModel.load(folder: URL(fileURLWithPath: runFolder), weights: .exported).trained.fold.train
        let recorded = try RecordedSpeakers.read(runFolder + "/speakers.json", nMels: prior.mean.count).speakers.filter { trainedOn.contains($0.actor) }
        #expect(!recorded.isEmpty && prior.frames == 1000, "10 s at a 10 ms hop: \(prior.frames)")
        #expect(abs(prior.mean[0] - recorded.map { Double($0.mean[0]) }.reduce(0, +) / Double(recorded.count)) < 1e-9)
        #expect(zip(groupedAnswers, predictions).allSatisfy { $0["label"] as? String == $1["label"] as? String })
        // With no room to keep features between the statistics pass and scoring, every file is read
        // again for scoring: the same answers to the bit, so long recordings need not be held together.
        let predictor = try Predictor(run: runFolder, hopSeconds: nil)
        let files = predictions.compactMap { $0["path"] as? String }
        let kept = try predictor.predict(paths: files).map { try $0.get() }
        let reread = try predictor.predict(paths: files, heldFeatureBytes: 0).map { try $0.get() }
        #expect(kept.count == 60 && kept == reread)
        // Cancelled after the first file is read, a speaker-normalised model answers none: an answer from
        // part of a speaker's statistics would not be the one the whole list gives.
        // Each pass shows its own progress: every file is paired, read for its speaker's statistics, then scored.
        let cancellation = Cancellation()
        nonisolated(unsafe) var shown: [Predictor.Pass: String] = [:]
        let passes = { (pass: Predictor.Pass) in
            ProgressReporter(label: pass.label, total: files.count, isTerminal: false, write: { shown[pass] = $0 })
        }
        #expect(predictor.predict(paths: files, progress: passes).count == files.count)
        #expect(shown.keys.sorted { $0.rawValue < $1.rawValue } == [.pairing, .speakerStatistics, .scoring]
                && shown.allSatisfy { pass, line in line.contains(" \(pass.label): \(files.count)/\(files.count) (100%)") }, "\(shown)")
        let cancelling = { (pass: Predictor.Pass) in
            ProgressReporter(label: pass.label, total: files.count, isTerminal: true, write: { _ in if pass == .speakerStatistics { cancellation.cancel() } })
        }
        #expect(predictor.predict(paths: files, progress: cancelling, cancellation: cancellation).isEmpty)
        try Self.checkPredictInterruptedMidway(runFolder: runFolder, files: files)
        // A list file gives the same answers as the arguments (thousands of arguments parse slowly).
        let list = try TestSupport.temporaryFolder("files-from") + "/list.txt"
        try (files.joined(separator: "\r\n") + "\r\n  \n\t\n\n").write(toFile: list, atomically: true, encoding: .utf8)
        let listed = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", "--files-from", list])
        #expect(listed.status == 0, "\(listed.stderr)")
        let fromList = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
        #expect(fromList.map { $0 as NSArray } == predictions as NSArray)
        // `--files-from -` reads the list from a pipe; a pipe named as a path is refused with that hint.
        let piped = try TestSupport.shell("cat '\(list)' | '\(TestSupport.emopipe)' predict --run '\(runFolder)' --json --files-from -")
        #expect((try JSONSerialization.jsonObject(with: Data(piped.utf8)) as? [[String: Any]]).map { $0 as NSArray } == predictions as NSArray)
        // Two lists are read in turn (the second once replaced the first): the same answers, in the same order.
        let (firstHalf, secondHalf) = (list + ".a", list + ".b")
        try files.prefix(files.count / 2).joined(separator: "\n").write(toFile: firstHalf, atomically: true, encoding: .utf8)
        try files.dropFirst(files.count / 2).joined(separator: "\n").write(toFile: secondHalf, atomically: true, encoding: .utf8)
        let halves = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", "--files-from", firstHalf, "--files-from", secondHalf])
        #expect((try JSONSerialization.jsonObject(with: Data(halves.stdout.utf8)) as? [[String: Any]]).map { $0 as NSArray } == predictions as NSArray,
                "\(halves.stderr)")
        // A listed path holding a NUL byte names no file: refused by name (C calls would read the part before it).
        let withNUL = try TestSupport.temporaryFolder("files-from-nul") + "/list.txt"
        try Data((files[0] + "\n" + files[1] + "\0/no/such.mp4\n").utf8).write(to: URL(fileURLWithPath: withNUL))
        let nul = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", "--files-from", withNUL])
        #expect(nul.status == 3 && nul.stderr.contains("emopipe: " + files[1] + "\\u{0}/no/such.mp4: cannot be read: the path holds a NUL byte"),
                "the path is named once: \(nul.stderr)")
        let nulAnswers = try #require(try JSONSerialization.jsonObject(with: Data(nul.stdout.utf8)) as? [[String: Any]])
        #expect(nulAnswers.count == 1 && nulAnswers[0]["path"] as? String == files[0], "\(nul.stdout)")
        // A line longer than any path (a blob pasted in) is a failure of its own, named cut; the others are answered.
        let withBlob = try TestSupport.temporaryFolder("files-from-blob") + "/list.txt"
        let blob = "/x/" + String(repeating: "b", count: 3_000_000)
        try Data((files[0] + "\n" + blob + "\n").utf8).write(to: URL(fileURLWithPath: withBlob))
        let blobbed = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", "--files-from", withBlob])
        #expect(blobbed.status == 3 && blobbed.stderr.contains("emopipe: /x/bbb") && blobbed.stderr.count < 1000
                && blobbed.stderr.contains("… (3000003 bytes): a path of 3000003 bytes is longer than a path can be (\(PATH_MAX))"), "\(blobbed.stderr.prefix(1000))")
        let blobAnswers = try #require(try JSONSerialization.jsonObject(with: Data(blobbed.stdout.utf8)) as? [[String: Any]])
        #expect(blobAnswers.count == 1 && blobAnswers[0]["path"] as? String == files[0], "\(blobbed.stdout)")
        try Data((blob + "\n").utf8).write(to: URL(fileURLWithPath: withBlob))
        let onlyBlob = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", "--files-from", withBlob])
        #expect(onlyBlob.status == 3 && onlyBlob.stdout == "[]\n", "JSON all the same: \(onlyBlob.stdout.prefix(200))")
        let substituted = try TestSupport.run("/bin/bash", ["-c", "'\(TestSupport.emopipe)' predict --run '\(runFolder)' --files-from <(cat '\(list)')"])
        #expect(substituted.status == 64 && substituted.stderr.contains("give --files-from - and pipe it in"), "\(substituted.stderr)")
        // More files than one call takes are refused before any is read: short lines within the list's byte
        // bound would need gigabytes (blank lines, CRLF pairs and U+2028 are counted as the split counts them).
        let long = try TestSupport.temporaryFolder("files-from-long") + "/list.txt"
        try Data(("x\r\n\n \n" + String(repeating: "x\n", count: 99_998) + "x\u{2028}x").utf8).write(to: URL(fileURLWithPath: long))
        let refusedLong = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--files-from", long])
        #expect(refusedLong.status == 64 && refusedLong.stderr.contains("names 100001 files; at most 100000 are taken in one call"),
                "\(refusedLong.stderr)")
        // Files whose names carry no actor are one group of their own, and stderr says how files were grouped.
        let renamed = try TestSupport.temporaryFolder("renamed")
        let paths = try predictions.prefix(2).enumerated().map { i, p in
            let copy = renamed + "/take-\(i).wav"
            try FileManager.default.copyItem(atPath: try #require(p["path"] as? String), toPath: copy)
            return copy
        }
        let grouped = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json"] + paths + [predictions[2]["path"] as? String ?? ""])
        #expect(grouped.status == 0, "\(grouped.stderr)")
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(grouped.stdout.utf8)) as? [[String: Any]])
        let groups = answers.map { ($0["speaker"] as? [String: Any]).map { "\($0["name"] ?? "") \($0["files"] ?? "") \($0["statistics"] ?? "")" } }
        // The actor 1 file alone is one of the run's own: the run's statistics of actor 1 (60 clips) normalise it,
        // and its answer is evaluate's, as given with all 60.
        #expect(groups == ["unnamed 2 blended", "unnamed 2 blended", "actor 1 60 recorded"])
        #expect(answers[2]["probabilities"] as? [String: Double] == predictions[2]["probabilities"] as? [String: Double])
        #expect(grouped.stderr.contains("the files of actor 1 are all the run's own, so the run's statistics of that actor (recorded by export, as evaluate takes them) normalised them")
                && grouped.stderr.contains("statistics from the files given together, blended with its training actors'")
                && grouped.stderr.contains(": unnamed (2 files: no RAVDESS actor in their names)"), "\(grouped.stderr)")
        // A file of actor 1 that is not one of the run's (its bytes changed) groups the files given, and says so.
        let edited = renamed + "/" + ((predictions[3]["path"] as? String ?? "") as NSString).lastPathComponent
        try FileManager.default.copyItem(atPath: try #require(predictions[3]["path"] as? String), toPath: edited)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: edited))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0]))
        try handle.close()
        let mixed = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", predictions[2]["path"] as? String ?? "", edited])
        let mixedAnswers = try #require(try JSONSerialization.jsonObject(with: Data(mixed.stdout.utf8)) as? [[String: Any]])
        #expect(mixedAnswers.allSatisfy { ($0["speaker"] as? [String: Any])?["statistics"] as? String == "blended"
                                          && ($0["speaker"] as? [String: Any])?["files"] as? Int == 2 }, "\(mixed.stdout)")
        #expect(mixed.stderr.contains("normalised by itself): actor 1 (2 files: not all are the run's own sources of actor 1)"), "\(mixed.stderr)")
        // Under the name of an actor the run did not have, a file is normalised by its own statistics blended with the
        // training actors', and the reason says so.
        let stranger = renamed + "/" + ((predictions[4]["path"] as? String ?? "") as NSString).lastPathComponent.replacingOccurrences(of: "-01.wav", with: "-05.wav")
        try FileManager.default.copyItem(atPath: try #require(predictions[4]["path"] as? String), toPath: stranger)
        let strangers = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, stranger])
        #expect(strangers.status == 0 && strangers.stderr.contains("actor 5 (1 file: the run had no actor 5)"), "\(strangers.stderr)")
        // A run's own file given first under another actor's name (a link) is still the actor the run had it under:
        // the answer does not depend on the order.
        let own = try #require(predictions[2]["path"] as? String)
        let alias = renamed + "/" + (own as NSString).lastPathComponent.replacingOccurrences(of: "-01.wav", with: "-03.wav")
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: own)
        for order in [[alias, own], [own, alias]] {
            let aliased = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json"] + order)
            let aliasedAnswers = try #require(try JSONSerialization.jsonObject(with: Data(aliased.stdout.utf8)) as? [[String: Any]])
            #expect(aliasedAnswers.allSatisfy { ($0["speaker"] as? [String: Any])?["statistics"] as? String == "recorded"
                                                && $0["probabilities"] as? [String: Double] == predictions[2]["probabilities"] as? [String: Double] },
                    "\(order): \(aliased.stdout)")
        }
        // Text output is for a terminal: a name holding a line break and an escape stays one escaped line.
        let odd = renamed + "/take\n\u{1B}[2J.wav"
        try FileManager.default.copyItem(atPath: paths[0], toPath: odd)
        let text = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, odd])
        #expect(text.status == 0 && !text.stdout.contains("\u{1B}")
                && text.stdout.hasPrefix(renamed + "/take\\n\\u{1B}[2J.wav: "), "\(text.stdout)")
        // Export past an audio stage changed since train (`--only export`) would record other statistics: refused.
        #expect(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "audio", "--set", "audio.n_mels=32"] + options).status == 0)
        let stale = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--only", "export", "--force", "export", "--set", "audio.n_mels=32"] + options)
        #expect(stale.status == 1 && stale.stderr.contains("mel bands the model takes (the audio stage changed since train ran)"), "\(stale.stderr)")
    }

    /// `emopipe predict` on every test clip of a single-split run, all at once, gives each the
    /// probabilities and label evaluate wrote in predictions.csv (6 decimals). Returns predict's answers.
    /// `given` names the file predict is given for a row's path (by default that path).
    @discardableResult
    /// `naming`: how predict is told the run (default: `--run` and the folder's path).
    static func checkPredictEqualsEvaluate(runFolder: String, clips: Int = 60, environment: [String: String]? = nil,
                                           naming: [String]? = nil,
                                           given: (String) -> String = { $0 }) throws -> [[String: Any]] {
        let csv = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8)
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = try #require(lines.first)
        let rows = Array(lines.dropFirst())
        #expect(rows.count == clips)
        let predict = try TestSupport.run(TestSupport.emopipe, ["predict"] + (naming ?? ["--run", runFolder]) + ["--json"] + rows.map { given($0[0]) },
                                          environment: environment)
        #expect(predict.status == 0, "\(predict.stderr)")
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [[String: Any]])
        #expect(answers.count == rows.count)
        let labels = header[6...].map { String($0.dropFirst(2)) }
        for (row, answer) in zip(rows, answers) {
            #expect(answer["path"] as? String == given(row[0]))
            #expect(answer["label"] as? String == row[5], "\(row[1]): predict says \(answer["label"] ?? "nothing"), evaluate said \(row[5])")
            let probabilities = try #require(answer["probabilities"] as? [String: Double])
            for (label, recorded) in zip(labels, row[6...]) {
                // Both print six decimals of the same float: the same digits, not merely close ones.
                let p = try #require(probabilities[label])
                #expect(String(format: "%.6f", p) == recorded, "\(row[1]) p_\(label): predict \(p), evaluate \(recorded)")
            }
        }
        return answers
    }

    /// predict scores with the thread count of the run that evaluated: a product split over another count
    /// rounds differently on some CPUs' kernels. OpenBLAS's Haswell kernels (every AVX2 CPU has them) show it
    /// here, for a run of one thread and predict's default of one per core.
    @Test(.enabled(if: ProcessInfo.processInfo.activeProcessorCount > 1, "needs two cores"))
    func predictScoresWithTheThreadCountOfTheRun() throws {
        let data = try TestSupport.materialize(actors: 1...4, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("predict-threads")
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, """
        threads: 1
        params:
          split: {test_actors: [3], val_actors: [2]}
          train: {epochs: 4, checkpoint_every: 2}
        """)
        let haswell = ["OPENBLAS_CORETYPE": "Haswell"]
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", folder + "/w"], environment: haswell)
        #expect(run.status == 0, "\(run.stderr)")
        let runs = try FileManager.default.contentsOfDirectory(atPath: folder + "/w/runs")
        let id = try #require(runs.first), runFolder = folder + "/w/runs/" + id
        // Found through another work directory's database (the folder's path), and through this one's (an id).
        #expect(try Self.checkPredictEqualsEvaluate(runFolder: runFolder, environment: haswell).count == 60)
        #expect(try Self.checkPredictEqualsEvaluate(runFolder: runFolder, environment: haswell,
                                                    naming: ["--workdir", folder + "/w", "--run", String(id.prefix(18))]).count == 60)
        // The control: copied away from its database, the folder is scored with one thread per core, which is
        // what predict did before; stderr says so, and some probability's sixth decimal is not evaluate's.
        let copied = try TestSupport.temporaryFolder("copied-run") + "/run"
        try FileManager.default.copyItem(atPath: runFolder, toPath: copied)
        let csv = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",").map(String.init) }
        let away = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", copied, "--json"] + csv.map { $0[0] }, environment: haswell)
        #expect(away.status == 0 && away.stderr.contains("scored with one thread per core"), "\(away.stderr)")
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(away.stdout.utf8)) as? [[String: Any]])
        let labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
        let differing = zip(csv, answers).filter { row, answer in
            let probabilities = answer["probabilities"] as? [String: Double] ?? [:]
            return zip(labels, row[6...]).contains { String(format: "%.6f", probabilities[$0] ?? -1) != $1 }
        }
        #expect(!differing.isEmpty, "two threads round as one does on these kernels: the checks above would pass without the fix")
        // A count no run can record (an edited database) is named as such, not taken for a missing database.
        try ProvenanceStore(path: folder + "/w/emopipe.sqlite").write { try $0.execute(sql: "UPDATE run SET threads = 0") }
        let edited = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, csv[0][0]], environment: haswell)
        #expect(edited.status == 0 && edited.stderr.contains("the database records 0 threads for run \(id), outside 1-256 (an edited database?): "
                                                             + "scored with one thread per core"), "\(edited.stderr)")
    }

    /// The modality ablations withhold an input from the test clips that have both: `oneInputOnly` (clip
    /// ids) are left out of every row, and the full model's row is its answers on the others, as
    /// predictions.csv gives them.
    static func checkAblationsScoreOnlyClipsWithBothInputs(runFolder: String, oneInputOnly: Set<String>) throws {
        let metrics = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/metrics.json"))) as? [String: Any])
        let rows = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let both = rows.filter { !oneInputOnly.contains($0[1]) }
        #expect(rows.count - both.count == oneInputOnly.count, "every clip named is a test clip")
        let ablations = try #require(metrics["ablations"] as? [[String: Any]])
        #expect(ablations.compactMap { $0["name"] as? String } == ["audio + faces", "audio only", "faces only"])
        for ablation in ablations {
            #expect((ablation["metrics"] as? [String: Any])?["count"] as? Int == both.count, "\(ablation)")
        }
        let full = try #require(ablations.first?["metrics"] as? [String: Any])
        let accuracy = Double(both.filter { $0[4] == $0[5] }.count) / Double(both.count)
        #expect(abs((full["accuracy"] as? Double ?? -1) - accuracy) < 1e-12, "\(full) against \(accuracy)")
        let report = try String(contentsOfFile: runFolder + "/report.html", encoding: .utf8)
        #expect(report.contains("The \(both.count) of the \(rows.count) test clips that have both inputs"))
    }

    /// A model with a face branch, on clips that have a wav and an mp4 each: evaluate reads the wav's
    /// speech and the mp4's pictures; predict pairs them the same way whichever of the two it is given
    /// (the other beside it), and given both counts the clip once in its speaker's statistics.
    @Test func predictPairsAClipsWavAndMp4AsEvaluateDoes() throws {
        let data = try TestSupport.materialize(actors: 1...2)
        // Eight clips per actor (intensity 1, statement 1, repetition 1 of every emotion), each a wav and an mp4.
        try TestSupport.shell("cd '\(data)' && find . -type f ! -name '0?-01-0?-01-01-01-*' -delete")
        let kept = try TestSupport.shell("cd '\(data)' && find . -type f | sort").split(separator: "\n")
        #expect(kept.count == 32, "\(kept)")
        // One test clip's speech is digital silence: the audio stage fails it, evaluate scores the clip on its
        // pictures, and predict, given the wav, answers the same from the pictures, saying why.
        let silent = data + "/Actor_01/03-01-03-01-01-01-01.wav"
        try TestSupport.shell("sox -D -n -r 48000 -c 1 -b 16 '\(silent).tmp.wav' trim 0 3 && mv '\(silent).tmp.wav' '\(silent)'")
        // Another's mp4 is not a video: ingest fails it, evaluate scores the clip on its speech, and predict,
        // given the wav, answers the same from the speech, naming the mp4.
        let junkVideo = data + "/Actor_01/01-01-04-01-01-01-01.mp4", junkVideosWav = data + "/Actor_01/03-01-04-01-01-01-01.wav"
        try Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: junkVideo))
        let folder = try TestSupport.temporaryFolder("paired")
        let manifest = try TestSupport.writeManifest(at: folder + "/paired.yaml", data: data, """
        seed: 3
        threads: 2
        params:
          split: {test_actors: [1]}
          train: {modalities: [audio, faces], audio_channels: [4], face_channels: [4], embedding: 8, epochs: 2,
                  warmup_epochs: 0, batch_size: 8, selection: last}
        """)
        let work = folder + "/work"
        let ran = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work])
        #expect(ran.status == ExitStatus.partial && ran.stderr.contains("all zero"), "\(ran.stderr)")
        let runFolder = work + "/runs/" + (try #require(try ProvenanceStore(path: work + "/emopipe.sqlite").runs().first)).id
        try Self.checkAblationsScoreOnlyClipsWithBothInputs(runFolder: runFolder, oneInputOnly: ["01-03-01-01-01-01", "01-04-01-01-01-01"])
        func mp4(_ wav: String) -> String {
            (wav as NSString).deletingLastPathComponent + "/01" + ((wav as NSString).lastPathComponent.dropFirst(2).dropLast(4)) + ".mp4"
        }
        let onWavs = try Self.checkPredictEqualsEvaluate(runFolder: runFolder, clips: 8)
        for answer in onWavs {
            let wav = try #require(answer["path"] as? String)
            if wav == junkVideosWav {
                #expect(answer["modalities"] as? [String] == ["audio"] && answer["video_file"] == nil, "\(answer)")
                #expect((answer["video_error"] as? String)?.hasPrefix(junkVideo + ": ") == true, "\(answer)")
                #expect(answer["speech_file"] as? String == wav && answer["audio_error"] == nil, "\(answer)")
                continue
            }
            #expect(answer["video_error"] == nil, "\(answer)")
            if wav == silent {
                #expect(answer["modalities"] as? [String] == ["faces"] && answer["speech_file"] == nil, "\(answer)")
                #expect((answer["audio_error"] as? String)?.contains("all zero") == true, "\(answer)")
                #expect(answer["video_file"] as? String == mp4(wav), "\(answer)")
                continue
            }
            #expect(wav.hasSuffix(".wav") && answer["modalities"] as? [String] == ["audio", "faces"], "\(answer)")
            #expect(answer["speech_file"] as? String == wav && answer["video_file"] as? String == mp4(wav), "\(answer)")
            #expect(answer["audio_error"] == nil, "\(answer)")
        }
        #expect(Set([silent, junkVideosWav]).isSubset(of: onWavs.compactMap { $0["path"] as? String }), "both odd clips are test clips")
        // Given the junk mp4 itself, its clip is answered from its wav, as evaluate scored it.
        let readableMP4 = mp4
        try Self.checkPredictEqualsEvaluate(runFolder: runFolder, clips: 8, given: readableMP4)
        // Both files of every clip: sixteen answers, each clip's two alike, normalised with the run's statistics of
        // the speaker, over its 7 clips with speech (the digitally silent one gives no log-mel, here as in the run).
        let wavs = onWavs.compactMap { $0["path"] as? String }
        let both = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json"] + wavs + wavs.map(readableMP4))
        #expect(both.status == 0, "\(both.stderr)")
        #expect(both.stderr.contains("\(junkVideosWav): the pictures could not be read (\(junkVideo): "), "\(both.stderr)")
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(both.stdout.utf8)) as? [[String: Any]])
        #expect(answers.count == 16)
        for (wavAnswer, mp4Answer) in zip(answers.prefix(8), answers.dropFirst(8)) {
            #expect(wavAnswer["label"] as? String == mp4Answer["label"] as? String)
            #expect(wavAnswer["probabilities"] as? [String: Double] == mp4Answer["probabilities"] as? [String: Double])
            // The silent clip is answered from its pictures: no log-mel, so no speaker's statistics.
            if wavAnswer["path"] as? String == silent {
                #expect(mp4Answer["speaker"] == nil && wavAnswer["speaker"] == nil, "\(mp4Answer)")
                continue
            }
            #expect((mp4Answer["speaker"] as? [String: Any])?["files"] as? Int == 7
                    && (mp4Answer["speaker"] as? [String: Any])?["statistics"] as? String == "recorded", "\(mp4Answer)")
        }
        // A clip whose wav no longer opens: given its mp4, the speech is read from the mp4, and why is said.
        let plain = try #require(wavs.first { $0 != silent && $0 != junkVideosWav })
        let original = try Data(contentsOf: URL(fileURLWithPath: plain))
        try Data("not a recording".utf8).write(to: URL(fileURLWithPath: plain))
        let passed = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", mp4(plain)])
        // Given the unreadable wav itself, the clip is answered as evaluate scores it, from its mp4, not refused.
        let givenWav = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", plain])
        try original.write(to: URL(fileURLWithPath: plain))
        let passedAnswer = try #require((try JSONSerialization.jsonObject(with: Data(passed.stdout.utf8)) as? [[String: Any]])?.first)
        #expect(passed.status == 0 && passedAnswer["speech_file"] as? String == mp4(plain)
                && (passedAnswer["speech_passed_over"] as? String)?.hasPrefix(plain + ": ") == true, "\(passedAnswer) \(passed.stderr)")
        #expect(passed.stderr.contains("\(mp4(plain)): speech read from \(mp4(plain)), as the pipeline does when the clip's better file cannot be read (\(plain): "),
                "\(passed.stderr)")
        let givenWavAnswer = try #require((try JSONSerialization.jsonObject(with: Data(givenWav.stdout.utf8)) as? [[String: Any]])?.first, "\(givenWav.stderr)")
        #expect(givenWav.status == 0 && givenWavAnswer["path"] as? String == plain && givenWavAnswer["speech_file"] as? String == mp4(plain)
                && givenWavAnswer["video_file"] as? String == mp4(plain)
                && givenWavAnswer["speech_passed_over"] as? String == passedAnswer["speech_passed_over"] as? String, "\(givenWavAnswer)")
        #expect(givenWavAnswer["probabilities"] as? [String: Double] == passedAnswer["probabilities"] as? [String: Double], "\(givenWavAnswer)")
        // An audio-video mp4 without its sound, alone in its folder: answered from the faces, saying why.
        let silentCopy = try TestSupport.temporaryFolder("no-sound") + "/" + (mp4(plain) as NSString).lastPathComponent
        try TestSupport.shell("ffmpeg -loglevel error -i '\(mp4(plain))' -an -c copy '\(silentCopy)'")
        let muted = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", silentCopy])
        let mutedAnswer = try #require((try JSONSerialization.jsonObject(with: Data(muted.stdout.utf8)) as? [[String: Any]])?.first, "\(muted.stderr)")
        #expect(muted.status == 0 && mutedAnswer["modalities"] as? [String] == ["faces"]
                && mutedAnswer["audio_error"] as? String == silentCopy + ": no audio track", "\(mutedAnswer)")
        // The line names the file once: its own error is not prefixed with it again.
        #expect(muted.stderr.contains("\(silentCopy): the speech could not be read (no audio track); answered from the faces alone"), "\(muted.stderr)")
        // No log-mel was normalised, so no speaker's statistics are claimed (they said "given", from 1 file).
        #expect(mutedAnswer["speaker"] == nil || mutedAnswer["speaker"] is NSNull, "\(mutedAnswer)")
        #expect(!muted.stderr.contains("statistics from the files given together"), "\(muted.stderr)")
        // A clip whose speech is digital silence and whose pictures hold no face: both reasons are named, not only the speech's.
        let blank = try TestSupport.temporaryFolder("blank-clip") + "/01-01-01-01-01-01-01.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i anullsrc=r=48000:cl=mono -t 3 "
                              + "-c:v mpeg4 -c:a aac '\(blank)'")
        let nothing = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", blank])
        #expect(nothing.status == 3 && nothing.stderr.contains("\(blank): nothing to predict from: its speech: ")
                && nothing.stderr.contains("all zero") && nothing.stderr.contains("; its pictures: "), "\(nothing.stderr)")
        // A video-only clip's file (modality 02) with sound in it, alone: its sound is not speech, as ingest fails it.
        let videoOnly = try TestSupport.temporaryFolder("video-only") + "/02" + (silentCopy as NSString).lastPathComponent.dropFirst(2)
        try FileManager.default.copyItem(atPath: mp4(plain), toPath: videoOnly)
        let pictures = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", videoOnly])
        let picturesAnswer = try #require((try JSONSerialization.jsonObject(with: Data(pictures.stdout.utf8)) as? [[String: Any]])?.first, "\(pictures.stderr)")
        #expect(pictures.status == 0 && picturesAnswer["modalities"] as? [String] == ["faces"] && picturesAnswer["speech_file"] == nil
                && (picturesAnswer["audio_error"] as? String)?.contains("a video-only clip (modality 02), from which the pipeline reads no speech") == true,
                "\(picturesAnswer)")
        // Beside its clip's wav and audio-video mp4 that cannot be read, those are why it has no speech, and named.
        let clipName = (videoOnly as NSString).lastPathComponent.dropFirst(2).dropLast(4), companions = PathText.folder(of: videoOnly)
        let (junkWav, junkAV) = (companions + "/03" + clipName + ".wav", companions + "/01" + clipName + ".mp4")
        for junk in [junkWav, junkAV] { try Data("not a recording".utf8).write(to: URL(fileURLWithPath: junk)) }
        let unheard = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", videoOnly])
        let unheardAnswer = try #require((try JSONSerialization.jsonObject(with: Data(unheard.stdout.utf8)) as? [[String: Any]])?.first, "\(unheard.stderr)")
        let unheardWhy = unheardAnswer["audio_error"] as? String ?? ""
        #expect(unheard.status == 0 && unheardAnswer["modalities"] as? [String] == ["faces"] && unheardWhy.hasPrefix(junkWav + ": ")
                && unheardWhy.contains("; " + junkAV + ": ") && !unheardWhy.contains("modality 02"), "\(unheardAnswer)")
        // The unreadable wav given, with no readable file for its speech: answered from its clip's pictures, saying why.
        let fromWav = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", junkWav])
        let fromWavAnswer = try #require((try JSONSerialization.jsonObject(with: Data(fromWav.stdout.utf8)) as? [[String: Any]])?.first, "\(fromWav.stderr)")
        #expect(fromWav.status == 0 && fromWavAnswer["video_file"] as? String == videoOnly && fromWavAnswer["audio_error"] as? String == unheardWhy
                && fromWavAnswer["probabilities"] as? [String: Double] == unheardAnswer["probabilities"] as? [String: Double], "\(fromWavAnswer)")
        // Alone, an unreadable file is its own error.
        try FileManager.default.removeItem(atPath: videoOnly)
        let alone = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", junkWav])
        #expect(alone.status == 3 && alone.stderr.contains(junkWav), "\(alone.stderr)")
        // A recording of sound alone lacks no pictures, whatever its name: without an extension, or with a
        // trailing space, a wav is answered from its speech with no note of a missing video track.
        let renamed = try TestSupport.temporaryFolder("renamed-wav")
        for name in ["take", "take.wav "] { try FileManager.default.copyItem(atPath: plain, toPath: renamed + "/" + name) }
        let sound = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json", renamed + "/take", renamed + "/take.wav "])
        let soundAnswers = try #require(try JSONSerialization.jsonObject(with: Data(sound.stdout.utf8)) as? [[String: Any]], "\(sound.stderr)")
        #expect(sound.status == 0 && soundAnswers.count == 2, "\(sound.stderr)")
        #expect(soundAnswers.allSatisfy { $0["modalities"] as? [String] == ["audio"] && $0["video_error"] == nil }, "\(soundAnswers)")
        #expect(!sound.stderr.contains("no video track"), "\(sound.stderr)")
        // A faces-only model has no log-mels to normalise by speaker (speaker_norm is on by default): predict
        // answers each file alone and says nothing of speakers.
        let facesOnly = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work, "--set", "train.modalities=[faces]"])
        #expect(facesOnly.status == ExitStatus.partial, "\(facesOnly.stderr)")
        let facesRun = work + "/runs/" + (try #require(try ProvenanceStore(path: work + "/emopipe.sqlite").runs().first)).id
        let mp4s = wavs.filter { $0 != junkVideosWav }.map(mp4)
        let facesAnswers = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", facesRun, "--json"] + mp4s)
        #expect(facesAnswers.status == 0 && !facesAnswers.stderr.contains("normalises each speaker"), "\(facesAnswers.stderr)")
        let facesJSON = try #require(try JSONSerialization.jsonObject(with: Data(facesAnswers.stdout.utf8)) as? [[String: Any]])
        #expect(facesJSON.count == mp4s.count && facesJSON.allSatisfy { $0["speaker"] == nil && $0["modalities"] as? [String] == ["faces"] },
                "\(facesJSON)")
        // The same kind of model tested on actor 02 with its videos gone: nothing to withhold, so no ablations, and evaluate runs.
        try TestSupport.shell("find '\(data)/Actor_02' -name '*.mp4' -delete")
        let noVideo = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work, "--set", "split.test_actors=[2]"])
        #expect(noVideo.status == ExitStatus.partial, "\(noVideo.stderr)")
        let noVideoRun = work + "/runs/" + (try #require(try ProvenanceStore(path: work + "/emopipe.sqlite").runs().first)).id
        let noVideoMetrics = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: noVideoRun + "/metrics.json"))) as? [String: Any])
        #expect((noVideoMetrics["ablations"] as? [Any])?.isEmpty == true && noVideoMetrics["count"] as? Int == 8, "\(noVideoMetrics)")
    }

    /// predictions.csv and .jsonl: one row per test clip (actor 01's 60), whose truth and predicted
    /// columns give back metrics.json's confusion matrix; the report names the actors and lists
    /// exactly the misclassified clips.
    static func checkPredictionFiles(runFolder: String, metrics: [String: Any], report: String) throws {
        let labels = try #require(metrics["labels"] as? [String])
        let csv = try String(contentsOfFile: runFolder + "/predictions.csv", encoding: .utf8)
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines.first == ["path", "clip", "actor", "fold", "truth", "predicted"] + labels.map { "p_" + $0 })
        let rows = lines.dropFirst()
        #expect(rows.count == 60)
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: labels.count), count: labels.count)
        for row in rows {
            #expect(row.count == 6 + labels.count)
            #expect(FileManager.default.fileExists(atPath: row[0]), "path \(row[0]) names the clip's source")
            #expect(row[0].contains(row[1]), "the clip id is the source's name")
            #expect(row[2] == "1" && row[3] == "0")
            let truth = try #require(labels.firstIndex(of: row[4])), predicted = try #require(labels.firstIndex(of: row[5]))
            matrix[truth][predicted] += 1
            let p = row[6...].compactMap(Double.init)
            #expect(p.count == labels.count && abs(p.reduce(0, +) - 1) < 1e-4)
            #expect(p[predicted] == p.max(), "predicted is the most probable class")
        }
        #expect(matrix == (metrics["confusion_matrix"] as? [[Int]]), "predictions.csv agrees with metrics.json")
        let jsonl = try String(contentsOfFile: runFolder + "/predictions.jsonl", encoding: .utf8)
        let objects = try jsonl.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.count == 60)
        #expect(zip(objects, rows).allSatisfy { ($0["clip"] as? String) == $1[1] && ($0["predicted"] as? String) == $1[5] })
        #expect(metrics["confidence_interval"] == nil, "one test actor: no interval over actors")
        // Seven classes: the eight-class matrix with calm's row and column added into neutral's.
        let seven = try #require(metrics["seven_class"] as? [String: Any])
        #expect(seven["labels"] as? [String] == labels.filter { $0 != "calm" })
        let merge = labels.indices.map { $0 <= 1 ? 0 : $0 - 1 }
        var merged = [[Int]](repeating: [Int](repeating: 0, count: 7), count: 7)
        for i in 0..<8 { for j in 0..<8 { merged[merge[i]][merge[j]] += matrix[i][j] } }
        #expect(seven["confusion_matrix"] as? [[Int]] == merged)
        #expect(report.contains("id=\"seven-class\""))
        #expect(report.contains("id=\"actors-table\"") && report.contains("<td class=\"text\">01</td><td class=\"text\">02</td>"),
                "the report names test actor 01 and validation actor 02")
        #expect(metrics["test_actors"] as? [Int] == [1] && (metrics["test_clips_seen_in_training"] as? [Any])?.isEmpty == true,
                "\(metrics["test_actors"] ?? "none")")
        #expect(report.contains("Speaker-independent: whole actors are held out, and no test clip's file has the bytes of a file trained on"))
        let wrong = rows.filter { $0[4] != $0[5] }.count
        #expect(report.contains("Misclassified clips (\(wrong) of 60)"))
        if wrong > 0 {
            let table = try #require(report.components(separatedBy: "id=\"misclassified-table\"").last?
                .components(separatedBy: "</table>").first)
            #expect(table.components(separatedBy: "<tr><td").count - 1 == wrong, "one line per misclassified clip")
        }
    }

    /// onnxruntime on real cached log-mels (the first window of actor 01's test clips, batch 7 and 1,
    /// padded where a clip is short, no faces) against the Swift forward pass as `emopipe predict`
    /// runs it (its timeline's first window).
    static func checkONNXOnRealSamples(workdir: String, runFolder: String) throws {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let cache = TensorCache(workspace: Workspace(root: workdir), store: store)
        let fingerprint = try #require(try store.stageState("audio")?.parametersFingerprint)
        let sources = Array(try store.sources(status: .ok).filter { $0.actor == 1 }.prefix(7))
        #expect(sources.count == 7)
        let model = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: runFolder + "/model.json"))) as? [String: Any])
        let config = try #require(model["config"] as? [String: Any])
        let k = try #require(config["face_frames"] as? Int), size = try #require(config["face_size"] as? Int)
        let window = try #require(config["frames"] as? Int)
        // The graph takes one window: each clip's first `window` frames, zero-padded and masked.
        var logmel: [Float] = [], mask: [Float] = []
        var shape: [Int] = []
        for source in sources {
            let tensor = try #require(try cache.tensor(stage: "audio", fingerprint: fingerprint, key: source.sha256!))
            let meta = try #require(try JSONSerialization.jsonObject(with: Data(try tensor.metadata.utf8)) as? [String: Any])
            let real = min(window, try #require(meta["real_frames"] as? Int))
            let values = try tensor.floats(), stride = tensor.shape[1]
            shape = [tensor.shape[0], window]
            for band in 0..<tensor.shape[0] {
                logmel += (0..<window).map { $0 < real ? values[band * stride + $0] : 0 }
            }
            mask += (0..<window).map { $0 < real ? 1 : 0 }
        }
        let predict = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runFolder, "--json"] + sources.map(\.path))
        #expect(predict.status == 0, "\(predict.stderr)")
        let predictions = try #require(try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [[String: Any]])
        let labels = try #require(model["labels"] as? [String])
        let swift: [[Double]] = try predictions.map { p in
            let timeline = p["timeline"] as? [[String: Any]] ?? []
            let first = try #require((timeline.first?["probabilities"] ?? p["probabilities"]) as? [String: Double])
            return labels.map { first[$0] ?? -1 }
        }
        for batch in [7, 1] {
            let folder = try TestSupport.temporaryFolder("onnx-real")
            func save(_ name: String, _ dtype: DType, _ dims: [Int], _ bytes: Data) throws {
                try NumpyFile.encode(dtype: dtype, shape: dims, data: bytes).write(to: URL(fileURLWithPath: folder + "/\(name).npy"))
            }
            func floats(_ v: [Float]) -> Data { v.withUnsafeBufferPointer { Data(buffer: $0) } }
            try save("logmel", .float32, [batch] + shape, floats(Array(logmel.prefix(batch * shape[0] * shape[1]))))
            try save("logmel_mask", .float32, [batch, shape[1]], floats(Array(mask.prefix(batch * shape[1]))))
            try save("faces", .uint8, [batch, k, size, size, 3], Data(count: batch * k * size * size * 3))
            try save("faces_mask", .float32, [batch, k], floats([Float](repeating: 0, count: batch * k)))
            try save("modality_mask", .float32, [batch, 2], floats((0..<batch).flatMap { _ in [Float(1), 0] }))
            let out = try TestSupport.shell("'\(TestSupport.repositoryRoot)/.venv/bin/python' '\(TestSupport.repositoryRoot)/scripts/onnx_check.py' '\(runFolder)/model.onnx' '\(folder)'")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
            let metadata = try #require(report["metadata"] as? [String: String])
            let policy = try #require(try JSONSerialization.jsonObject(with: Data((metadata["window_policy"] ?? "").utf8)) as? [String: Int])
            #expect(policy == ["frames": window, "hop_frames": 100], "the metadata says how a clip is scored")
            #expect(metadata["clip_policy"]?.contains("mean of its windows' softmax") == true && metadata["speaker_norm"] == "false")
            let producer = report["producer"] as? [String]
            #expect(producer?.first == "emopipe" && producer?.last == metadata["emopipe_version"] && producer?.last?.isEmpty == false,
                    "\(producer ?? [])")
            // The data's fingerprint is the one `emopipe runs` shows for the run that exported the model.
            let exporter = try #require(try store.runs().first { $0.id == (runFolder as NSString).lastPathComponent })
            #expect(metadata["dataset_fingerprint"] == exporter.datasetFingerprint && exporter.datasetFingerprint != nil, "\(metadata)")
            let logits = try #require(report["logits"] as? [[Double]])
            if FileManager.default.fileExists(atPath: runFolder + "/model.int8.onnx") {
                try Self.checkInt8ONNX(runFolder: runFolder, inputs: folder, floatLogits: logits, floatMetadata: metadata)
            }
            for (row, expected) in zip(logits, swift) {
                let top = row.max()!
                let exps = row.map { Foundation.exp($0 - top) }
                let probabilities = exps.map { $0 / exps.reduce(0, +) }
                let diff = zip(probabilities, expected).map { abs($0 - $1) }.max()!
                #expect(diff <= 1e-4, "batch \(batch): onnxruntime vs Swift probabilities differ by \(diff)")
            }
        }
    }
}
