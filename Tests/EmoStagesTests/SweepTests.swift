import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// `emopipe sweep` end to end on three real actors' speech with a tiny network: a 4-trial grid
/// that is killed mid-way, resumes without redoing its finished trials, and whose best manifest
/// trains the best trial's model again in a fresh work directory, to the same metrics.
@Suite("hyper-parameter sweeps", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct SweepTests {
    static func writeSweepManifest(_ folder: String, data: String, grid: String) throws -> String {
        try TestSupport.writeManifest(at: folder + "/sweep.yaml", data: data, """
        name: tiny-sweep
        seed: 3
        threads: 2
        params:
          split: {test_actors: [1], val_actors: [2]}
          train: {audio_channels: [4, 8], embedding: 16, epochs: 4, batch_size: 16, checkpoint_every: 1, patience: 10,
                  speaker_norm: false, recurrent: false}
        sweep:
          metric: weighted_f1
          direction: maximize
          strategy: grid
          grid: \(grid)
        """)
    }

    /// A sweep manifest under a 200 MB memory budget: batch 16 (about 50 MB estimated) fits on the ~100 MB
    /// resident; all 60 training clips at once (batch 4096, about 180 MB) do not, which train finds only
    /// once the features load.
    static func writeBudgetedSweepManifest(_ folder: String, data: String, grid: String, metric: String = "weighted_f1") throws -> String {
        let manifest = try writeSweepManifest(folder, data: data, grid: grid)
        try String(contentsOfFile: manifest, encoding: .utf8)
            .replacingOccurrences(of: "metric: weighted_f1", with: "metric: \(metric)")
            .replacingOccurrences(of: "threads: 2\n", with: "threads: 2\nresources: {max_memory_mb: 200}\n")
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        return manifest
    }

    static func sweepFolder(_ workdir: String, prefix: String = "tiny-sweep-") throws -> String {
        try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/sweeps").first { $0.hasPrefix(prefix) })
    }

    static func state(_ workdir: String, prefix: String = "tiny-sweep-") throws -> [[String: Any]] {
        let folder = try sweepFolder(workdir, prefix: prefix)
        let data = try Data(contentsOf: URL(fileURLWithPath: workdir + "/sweeps/" + folder + "/state.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(object["attempts"] as? [[String: Any]])
    }

    /// Whether a fold folder of the train stage holds a checkpoint of a training that has not finished.
    static func aTrialIsPartway(_ workdir: String) -> Bool {
        let root = Workspace(root: workdir).trainRoot
        let fingerprints = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return fingerprints.contains { fingerprint in
            let fold = root + "/" + fingerprint + "/" + Workspace.foldFolderName(0)
            guard let data = FileManager.default.contents(atPath: fold + "/state.json"),
                  let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let epochs = (state["epochs"] as? [Any])?.count, state["finished"] as? Bool == false else { return false }
            return epochs >= 2 && FileManager.default.fileExists(atPath: fold + "/checkpoint-\(epochs).safetensors")
        }
    }

    @Test func aKilledGridSweepResumesAndItsBestManifestReproducesTheBestTrial() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep")
        let manifest = try Self.writeSweepManifest(folder, data: data,
                                                   grid: "{train.learning_rate: [0.001, 0.003], train.dropout: [0.1, 0.3]}")
        let workdir = folder + "/work"

        // Killed (SIGKILL) while trial 1 trains (after its second epoch's checkpoint), trial 0 finished.
        let first = try TestSupport.Background(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir])
        #expect(first.waitForStderr(containing: "sweep: trial 0: weighted_f1 "), "\(first.stderr)")
        let deadline = Date().addingTimeInterval(300)
        while first.isRunning, Date() < deadline, first.stderr.components(separatedBy: "fold 0: epoch 2/4").count < 3 {
            Thread.sleep(forTimeInterval: 0.01)
        }
        // The epoch's checkpoint is written after its log line: the kill waits for it on disk (a fixed
        // pause after the line lost the race on a loaded machine), and lands inside the next epoch.
        while first.isRunning, Date() < deadline, !Self.aTrialIsPartway(workdir) { Thread.sleep(forTimeInterval: 0.005) }
        #expect(first.kill(), "the kill landed while the sweep ran: \(first.stderr)")
        let finished = try Self.state(workdir).filter { $0["status"] as? String == "done" }
        let finishedRuns = Dictionary(uniqueKeysWithValues: finished.compactMap { a in (a["trial"] as? Int).map { ($0, a["run"] as? String ?? "") } })
        #expect(finishedRuns.keys.contains(0) && finishedRuns.count < 4, "\(finished)")

        // The leaderboard says which trial the killed sweep was training; while a sweep holds the sweep's
        // lock (taken here, as a running sweep holds it), that trial is running.
        func statuses() throws -> [String] {
            let board = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard", "--json"])
            let trials = (try JSONSerialization.jsonObject(with: Data(board.stdout.utf8)) as? [String: Any])?["trials"] as? [[String: Any]]
            return (trials ?? []).sorted { ($0["trial"] as? Int ?? 0) < ($1["trial"] as? Int ?? 0) }.map { $0["status"] as? String ?? "?" }
        }
        let killedIn = try #require((0..<4).first { !finishedRuns.keys.contains($0) })
        let afterKill = try statuses()
        #expect(afterKill[killedIn] == "interrupted", "\(afterKill)")
        let sweepLock = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/sweeps").first.map { workdir + "/sweeps/\($0)/sweep.lock" })
        let held = try WorkDirectoryLock.acquire(path: sweepLock, holder: "a sweep")
        let whileHeld = try statuses()
        #expect(whileHeld[killedIn] == "running", "\(whileHeld)")
        held.release()

        let second = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--json"])
        #expect(second.status == 0, "\(second.stderr)")
        for (trial, run) in finishedRuns {
            #expect(second.stderr.contains("trial \(trial): finished before (run \(run)), skipped"), "\(second.stderr)")
        }
        #expect(second.stderr.contains("resuming after epoch"), "the killed trial resumes from its checkpoint: \(second.stderr)")
        let board = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        let trials = try #require(board["trials"] as? [[String: Any]])
        #expect(trials.count == 4 && trials.allSatisfy { $0["status"] as? String == "done" }, "\(trials)")
        for (trial, run) in finishedRuns { #expect(trials[trial]["run"] as? String == run, "trial \(trial) was not redone") }
        // Keys are nested snake_case names, as everywhere in the tool's JSON (train.dropout is {"train": {"dropout": …}}).
        let params = trials.compactMap { ($0["params"] as? [String: [String: Double]])?["train"] }
        #expect(Set(params.map { [$0["learning_rate"] ?? -1, $0["dropout"] ?? -1] })
                == [[0.001, 0.1], [0.001, 0.3], [0.003, 0.1], [0.003, 0.3]])

        // The best is the highest weighted F1 among the trials' own metrics.json files.
        let metricsByTrial = try trials.map { trial -> Double in
            let run = try #require(trial["run"] as? String)
            let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: workdir + "/runs/\(run)/metrics.json"))) as? [String: Any]
            let value = try #require(metrics?["weighted_f1"] as? Double)
            #expect(abs(value - (trial["metric"] as? Double ?? -1)) < 1e-12)
            return value
        }
        let best = try #require(board["best"] as? Int)
        #expect(metricsByTrial[best] == metricsByTrial.max())
        #expect(metricsByTrial.firstIndex(of: metricsByTrial.max() ?? -1) == best, "ties go to the first trial")

        // Features were computed once, by the first trial; every trial is a recorded run.
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let runs = try store.runs()
        #expect(runs.filter { $0.status == .done }.count == 4, "\(runs.map { "\($0.id) \($0.status)" })")
        let audioComputed = try runs.flatMap { try store.stageRuns(runId: $0.id) }.filter { $0.stage == "audio" && $0.state == .done }
        #expect(audioComputed.count == 1)

        // The leaderboard without running anything, and the report.
        let text = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(text.status == 0 && text.stdout.contains("best: trial \(best) (weighted_f1"), "\(text.stdout)")
        let sweepFolder = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/sweeps").first)
        let report = try String(contentsOfFile: workdir + "/sweeps/\(sweepFolder)/report.html", encoding: .utf8)
        #expect(report.components(separatedBy: "<tr").count - 1 == 5, "a header and four trials")

        // best.yaml in a fresh work directory: the best trial's model and metrics, byte for byte.
        let bestManifest = workdir + "/sweeps/\(sweepFolder)/best.yaml"
        let fresh = folder + "/fresh"
        let rerun = try TestSupport.run(TestSupport.emopipe, ["run", bestManifest, "--workdir", fresh, "--until", "evaluate"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let rerunRun = try #require(try ProvenanceStore(path: fresh + "/emopipe.sqlite").runs().first { $0.status == .done })
        let bestRun = try #require(trials[best]["run"] as? String)
        let original = try Data(contentsOf: URL(fileURLWithPath: workdir + "/runs/\(bestRun)/metrics.json"))
        let again = try Data(contentsOf: URL(fileURLWithPath: fresh + "/runs/\(rerunRun.id)/metrics.json"))
        #expect(original == again)
        // A run with no export is told how to make one: a trial by its sweep's best.yaml (trials stop at evaluate),
        // another run by its own manifest run to the export stage (not `emopipe run`'s default manifest).
        let trialPredict = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", workdir, "--run", bestRun, bestManifest])
        #expect(trialPredict.status == 1 && trialPredict.stderr.contains("run \(bestRun) is a trial of sweep tiny-sweep, and trials stop at evaluate: "
                + "`emopipe run \(bestManifest) --workdir \(workdir)` trains and exports"), "\(trialPredict.stderr)")
        let plainPredict = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", fresh, "--run", rerunRun.id, bestManifest])
        #expect(plainPredict.status == 1 && plainPredict.stderr.contains("`emopipe run \(bestManifest) --until export --workdir \(fresh)`"),
                "\(plainPredict.stderr)")

        // A state file that is not the sweep's (another metric's figures, or a folder in its place) is
        // named for what it is, by the leaderboard as by a run.
        let statePath = workdir + "/sweeps/\(sweepFolder)/state.json"
        let saved = try Data(contentsOf: URL(fileURLWithPath: statePath))
        try Data(String(decoding: saved, as: UTF8.self).replacingOccurrences(of: "\"weighted_f1\"", with: "\"accuracy\"").utf8)
            .write(to: URL(fileURLWithPath: statePath))
        let otherMetric = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(otherMetric.status == 1 && otherMetric.stderr.contains("holds figures of accuracy, while the sweep scores weighted_f1"), "\(otherMetric.stderr)")
        // A damaged field is named as the file spells it, not in Swift's decoding words.
        try Data(String(decoding: saved, as: UTF8.self).replacingOccurrences(of: "\"metric\"", with: "\"metric_\"").utf8)
            .write(to: URL(fileURLWithPath: statePath))
        let damaged = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(damaged.status == 1 && damaged.stderr.contains("not a sweep state file (`metric` is missing)")
                && !damaged.stderr.contains("CodingKeys"), "\(damaged.stderr)")
        // A value outside a field's choices, and values no sweep writes, are named too.
        try Data(String(decoding: saved, as: UTF8.self).replacingOccurrences(of: "\"done\"", with: "\"weird\"").utf8)
            .write(to: URL(fileURLWithPath: statePath))
        let outside = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(outside.status == 1 && outside.stderr.contains(": \"weird\" is not one of the values it takes")
                && !outside.stderr.contains("Cannot initialize"), "\(outside.stderr)")
        var object = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        var attempts = try #require(object["attempts"] as? [[String: Any]])
        attempts[0]["metric"] = NSNull()
        object["attempts"] = attempts
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: statePath))
        let unscored = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(unscored.status == 1 && unscored.stderr.contains("trial \(attempts[0]["trial"] as? Int ?? -1) is done without a finite figure"),
                "\(unscored.stderr)")
        // An epoch budget this sweep does not have is the state file's damage, not the manifest's sweep block's.
        attempts = try #require((try JSONSerialization.jsonObject(with: saved) as? [String: Any])?["attempts"] as? [[String: Any]])
        attempts[0]["epochs"] = -1
        object["attempts"] = attempts
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: statePath))
        let budget = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(budget.status == 1 && budget.stderr.contains("\(statePath): trial \(attempts[0]["trial"] as? Int ?? -1) records -1 epochs, "
                                                             + "but this sweep is not halving") && !budget.stderr.contains("sweep block"), "\(budget.stderr)")
        try FileManager.default.removeItem(atPath: statePath)
        try FileManager.default.createDirectory(atPath: statePath, withIntermediateDirectories: false)
        let folderState = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(folderState.status == 1 && folderState.stderr.contains("state.json: not a regular file"), "\(folderState.stderr)")
        try FileManager.default.removeItem(atPath: statePath)
        try saved.write(to: URL(fileURLWithPath: statePath))
    }

    /// The sweep's id is its manifest's text: trials that finished on other data (or another pipeline
    /// file or stage code) run again when it resumes, rather than be ranked beside the others.
    @Test func trialsFinishedOnOtherDataRunAgainWhenTheSweepResumes() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-basis")
        let manifest = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.3]}")
        let workdir = folder + "/work"
        let first = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir])
        #expect(first.status == 0, "\(first.stderr)")
        let bases = try Self.state(workdir).compactMap { $0["basis"] as? String }
        #expect(bases.count == 2 && Set(bases).count == 2, "each trial's own settings are part of its basis: \(bases)")

        let unchanged = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir])
        #expect(unchanged.status == 0 && unchanged.stderr.contains("trial 0: finished before") && unchanged.stderr.contains("trial 1: finished before")
                && !unchanged.stderr.contains("train: running"), "\(unchanged.stderr)")

        // A test file that fails now changes no working file, yet metrics.json lists it: the trials run again.
        let test = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/Actor_01").sorted().first)
        try FileManager.default.removeItem(atPath: data + "/Actor_01/" + test)
        try Data("not audio".utf8).write(to: URL(fileURLWithPath: data + "/Actor_01/" + test))
        let failing = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir])
        #expect(failing.stderr.contains("trial 0: finished before (run ") && failing.stderr.contains("than now: runs again"), "\(failing.stderr)")
        // As `run` tells a result on part of the data with exit 3, so does the sweep, naming the trials.
        #expect(failing.status == ExitStatus.partial && failing.stderr.contains("sweep: trial(s) 0, 1 ran on data with failed sources or clips"),
                "\(failing.stderr)")

        let training = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/Actor_03").sorted().first)
        try FileManager.default.removeItem(atPath: data + "/Actor_03/" + training)
        // Until the sweep ingests the change, the leaderboard's results rest on the data as it was: said.
        let board = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(board.status == 0 && board.stderr.contains("note: ingest is not up to date (data root changed: 0 added, 0 changed, 1 removed)")
                && board.stderr.contains("these results rest on the data as last ingested"), "\(board.stderr)")
        let resumed = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir])
        #expect(resumed.status == ExitStatus.partial, "the test file still fails: \(resumed.stderr)")
        for trial in 0..<2 {
            #expect(resumed.stderr.contains("trial \(trial): finished before (run ") && resumed.stderr.contains("than now: runs again"), "\(resumed.stderr)")
        }
        let after = try Self.state(workdir)
        #expect(after.count == 2 && after.allSatisfy { $0["status"] as? String == "done" }, "\(after)")
        let current = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(current.status == 0 && !current.stderr.contains("ingest is not up to date"), "\(current.stderr)")
        // The leaderboard needs no data root: one moved away is no error.
        try FileManager.default.moveItem(atPath: data, toPath: data + "-moved")
        defer { try? FileManager.default.moveItem(atPath: data + "-moved", toPath: data) }
        let rootless = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"])
        #expect(rootless.status == 0 && rootless.stdout.contains("trial")
                && rootless.stderr.contains("note: the data root \(data) is not a folder here"), "\(rootless.stderr)")
        #expect(Set(after.compactMap { $0["basis"] as? String }).isDisjoint(with: bases), "\(after)")
    }

    @Test func everyTrialIsValidatedBeforeAnyRuns() throws {
        let folder = try TestSupport.temporaryFolder("sweep-bad")
        let data = try IngestFixture.dataRoot()
        let workdir = folder + "/work"
        let bad = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 7.5], train.batch_size: [16]}")
        let refused = try TestSupport.run(TestSupport.emopipe, ["sweep", bad, "--workdir", workdir])
        #expect(refused.status == ExitStatus.usage, "\(refused.stderr)")
        #expect(refused.stderr.contains("sweep trial 1") && refused.stderr.contains("the sweep block: train.dropout = 7.5"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("--set"), "a grid value is not called a --set: \(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")

        let unknown = try Self.writeSweepManifest(folder, data: data, grid: "{train.no_such_key: [1]}")
        let refusedKey = try TestSupport.run(TestSupport.emopipe, ["sweep", unknown, "--workdir", workdir])
        #expect(refusedKey.status == ExitStatus.usage && refusedKey.stderr.contains("train.no_such_key"), "\(refusedKey.stderr)")

        // Values written apart that resolve to one setting would train it twice.
        let alike = try Self.writeSweepManifest(folder, data: data, grid: "{train.audio_channels: [[8, 16], [8.0, 16]]}")
        let refusedAlike = try TestSupport.run(TestSupport.emopipe, ["sweep", alike, "--workdir", workdir])
        #expect(refusedAlike.status == ExitStatus.usage && refusedAlike.stderr.contains("sweep trials 0 (")
                && refusedAlike.stderr.contains("resolve to the same settings"), "\(refusedAlike.stderr)")
        // A setting of a stage the trials' scores are not made from (face crops for a speech-only model) changes nothing.
        let unreadAxis = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[audio]], faces.size: [64, 112]}")
        let refusedUnread = try TestSupport.run(TestSupport.emopipe, ["sweep", unreadAxis, "--workdir", workdir])
        #expect(refusedUnread.status == ExitStatus.usage && refusedUnread.stderr.contains("sweep trials 0 (")
                && refusedUnread.stderr.contains("resolve to the same settings (no stage they are scored by reads faces under these settings)"),
                "\(refusedUnread.stderr)")
        // So is a key these settings leave unread in a stage that is read (a face branch's channels without faces),
        // named as such: crossed with modalities, the speech-only trials would train one model twice.
        let crossed = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[audio], [audio, faces]], train.face_channels: [[4, 8], [8, 8]]}")
        let refusedCrossed = try TestSupport.run(TestSupport.emopipe, ["sweep", crossed, "--workdir", workdir])
        #expect(refusedCrossed.status == ExitStatus.usage && refusedCrossed.stderr.contains("resolve to the same settings (train.face_channels is not read under trial ")
                && refusedCrossed.stderr.contains("'s other settings)"), "\(refusedCrossed.stderr)")
        // The same for a crop without `frames` (every frame is kept), padding without `center`, and a selection window
        // when the last epoch is kept: each computed the same tensors or trained the same model twice.
        for (grid, key) in [("{audio.frames: [null], audio.crop: [start, center]}", "audio.crop"), ("{audio.center: [false], audio.pad_mode: [constant, reflect]}", "audio.pad_mode"),
                            ("{train.selection: [last], train.selection_window: [1, 2]}", "train.selection_window")] {
            let manifest = try Self.writeSweepManifest(folder, data: data, grid: grid)
            let refused = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir])
            #expect(refused.status == ExitStatus.usage && refused.stderr.contains("resolve to the same settings (\(key) is not read under trial 1's other settings)"),
                    "\(grid): \(refused.stderr)")
        }
        // One such value makes no duplicate, but would be ranked as if tuned.
        let unreadSingle = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[audio]], train.dropout: [0.1, 0.2], faces.size: [64]}")
        let refusedSingle = try TestSupport.run(TestSupport.emopipe, ["sweep", unreadSingle, "--workdir", workdir])
        #expect(refusedSingle.status == ExitStatus.usage
                && refusedSingle.stderr.contains("sweep axis faces.size: no trial's score depends on it"), "\(refusedSingle.stderr)")
        // An execution-only key changes how a stage runs, not its result: said so.
        let executionOnly = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[faces, audio]], faces.decode_threads: [2]}")
        let refusedExecution = try TestSupport.run(TestSupport.emopipe, ["sweep", executionOnly, "--workdir", workdir])
        #expect(refusedExecution.status == ExitStatus.usage && refusedExecution.stderr.contains("sweep axis faces.decode_threads: no trial's score depends on it (it is execution-only"),
                "\(refusedExecution.stderr)")
        // Two values of one, as two trials resolving alike: the reason is the same, not "not read".
        let checkpoints = try Self.writeSweepManifest(folder, data: data, grid: "{train.checkpoint_every: [1, 2]}")
        let refusedCheckpoints = try TestSupport.run(TestSupport.emopipe, ["sweep", checkpoints, "--workdir", workdir])
        #expect(refusedCheckpoints.status == ExitStatus.usage
                && refusedCheckpoints.stderr.contains("resolve to the same settings (train.checkpoint_every is execution-only: it changes how a stage runs")
                && !refusedCheckpoints.stderr.contains("not read"), "\(refusedCheckpoints.stderr)")
        // A value no trial may take is named before two trials found alike earlier in the grid.
        let outOfRange = try Self.writeSweepManifest(folder, data: data, grid: "{train.checkpoint_every: [1, 10000, 10001]}")
        let refusedPastRange = try TestSupport.run(TestSupport.emopipe, ["sweep", outOfRange, "--workdir", workdir])
        #expect(refusedPastRange.status == ExitStatus.usage && refusedPastRange.stderr.contains("sweep trial 2")
                && refusedPastRange.stderr.contains("10001") && !refusedPastRange.stderr.contains("resolve to the same settings"), "\(refusedPastRange.stderr)")
        // Only the keys the two trials set apart are named (both trials here have checkpoint_every 1).
        let mixedAxes = try Self.writeSweepManifest(folder, data: data,
                                                    grid: "{train.modalities: [[audio]], train.checkpoint_every: [1, 2], train.face_channels: [[4, 8], [8, 8]]}")
        let refusedMixed = try TestSupport.run(TestSupport.emopipe, ["sweep", mixedAxes, "--workdir", workdir])
        #expect(refusedMixed.status == ExitStatus.usage && refusedMixed.stderr.contains("(train.face_channels is not read under trial 1's other settings)")
                && !refusedMixed.stderr.contains("checkpoint_every is execution-only"), "\(refusedMixed.stderr)")
        // Nor is a stage the two trials share a value of (faces.size, one value for both).
        let sharedStage = try Self.writeSweepManifest(folder, data: data,
                                                      grid: "{train.modalities: [[audio]], faces.size: [96], train.face_channels: [[4, 8], [8, 8]]}")
        let refusedShared = try TestSupport.run(TestSupport.emopipe, ["sweep", sharedStage, "--workdir", workdir])
        #expect(refusedShared.status == ExitStatus.usage && refusedShared.stderr.contains("(train.face_channels is not read under trial 1's other settings)")
                && !refusedShared.stderr.contains("reads faces"), "\(refusedShared.stderr)")
        // A preset is read through the values it sets (it is no value of its own), one value or two.
        for grid in ["{audio.preset: [speech, reference]}", "{audio.preset: [reference], train.dropout: [0.1, 0.3]}"] {
            let presets = try Self.writeSweepManifest(folder, data: data, grid: grid)
            let board = try TestSupport.run(TestSupport.emopipe, ["sweep", presets, "--workdir", workdir, "--leaderboard"])
            #expect(board.status == 0, "\(grid): \(board.stderr)")
        }
        // With the faces read, the same axis is two settings.
        let readAxis = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[faces, audio]], faces.size: [64, 112]}")
        let planned = try TestSupport.run(TestSupport.emopipe, ["sweep", readAxis, "--workdir", workdir, "--leaderboard"])
        #expect(planned.status == 0 && !planned.stderr.contains("resolve to the same settings"), "\(planned.stderr)")

        let wrongType = try Self.writeSweepManifest(folder, data: data, grid: "{train.batch_size: [16, 2.5]}")
        let refusedType = try TestSupport.run(TestSupport.emopipe, ["sweep", wrongType, "--workdir", workdir])
        #expect(refusedType.status == ExitStatus.usage && refusedType.stderr.contains("train.batch_size"), "\(refusedType.stderr)")

        // A --set of a key every trial sets would be recorded with each trial and used by none.
        let swept = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.2]}")
        let refusedSet = try TestSupport.run(TestSupport.emopipe, ["sweep", swept, "--workdir", workdir, "--set", "train.dropout=0.9"])
        #expect(refusedSet.status == ExitStatus.usage, "\(refusedSet.stderr)")
        #expect(refusedSet.stderr.contains("--set train.dropout: every trial of the sweep sets it (sweep.grid in \(swept))"), "\(refusedSet.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")

        // A --set value every trial inherits is refused as the --set's, not blamed on the first trial.
        let badSet = try TestSupport.run(TestSupport.emopipe, ["sweep", swept, "--workdir", workdir, "--set", "train.batch_size=0"])
        #expect(badSet.status == ExitStatus.usage, "\(badSet.stderr)")
        #expect(badSet.stderr.contains("--set: train.batch_size = 0: an integer from 2") && !badSet.stderr.contains("sweep trial"), "\(badSet.stderr)")

        // A base value every trial overrides is no fault: a trial refused for its own value is named as itself.
        let overridden = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.2], train.learning_rate: [0.001, -1]}")
        try String(contentsOfFile: overridden, encoding: .utf8).replacingOccurrences(of: "embedding: 16,", with: "embedding: 16, dropout: 5,")
            .write(toFile: overridden, atomically: true, encoding: .utf8)
        let trialOwn = try TestSupport.run(TestSupport.emopipe, ["sweep", overridden, "--workdir", workdir])
        #expect(trialOwn.status == ExitStatus.usage && trialOwn.stderr.contains("sweep trial") && trialOwn.stderr.contains("train.learning_rate = -1")
                && !trialOwn.stderr.contains("dropout = 5"), "\(trialOwn.stderr)")

        // A random range is checked at both ends, whichever values the seed draws (here one below 1; rounding
        // to four digits can draw 1.0 itself).
        let ranged = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1]}")
        try String(contentsOfFile: ranged, encoding: .utf8)
            .replacingOccurrences(of: "strategy: grid\n  grid: {train.dropout: [0.1]}",
                                  with: "strategy: random\n  random: {n_trials: 1, seed: 3, params: {train.dropout: {distribution: uniform, low: 0.1, high: 1}}}")
            .write(toFile: ranged, atomically: true, encoding: .utf8)
        let refusedRange = try TestSupport.run(TestSupport.emopipe, ["sweep", ranged, "--workdir", workdir])
        #expect(refusedRange.status == ExitStatus.usage
                && refusedRange.stderr.contains("sweep.random train.dropout = 1.0, a value its draws can take, is refused:"), "\(refusedRange.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")

        // A metric metrics.json does not hold is named before trial 0 trains, not after.
        let misspelt = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.2]}")
        try String(contentsOfFile: misspelt, encoding: .utf8).replacingOccurrences(of: "metric: weighted_f1", with: "metric: weighted_f")
            .write(toFile: misspelt, atomically: true, encoding: .utf8)
        let refusedMetric = try TestSupport.run(TestSupport.emopipe, ["sweep", misspelt, "--workdir", workdir])
        #expect(refusedMetric.status == ExitStatus.usage, "\(refusedMetric.stderr)")
        #expect(refusedMetric.stderr.contains("sweep.metric = \"weighted_f\": not a scalar of metrics.json (known: accuracy,")
                && refusedMetric.stderr.contains(" weighted_f1)") && !refusedMetric.stderr.contains("sweep trial"), "\(refusedMetric.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")
        // A metric the pipeline writes, but no trial's settings do: seven classes under ravdess7, int8
        // figures when no trial quantises. (Some trials without it fail alone, after training.)
        // (The intervals' scalars are counts and settings, refused as no score at all: SweepSpecTests.)
        for (metric, setting, says) in [("seven_class.accuracy", "seed: 3\nlabel_map: ravdess7", "seven_class.* is written only under label_map ravdess8"),
                                        ("int8.weighted_f1", "seed: 3", "int8.* is written only when export.quantize is int8; here it is none")] {
            let unscored = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.2]}")
            try String(contentsOfFile: unscored, encoding: .utf8).replacingOccurrences(of: "metric: weighted_f1", with: "metric: \(metric)")
                .replacingOccurrences(of: "seed: 3", with: setting).write(toFile: unscored, atomically: true, encoding: .utf8)
            let refused = try TestSupport.run(TestSupport.emopipe, ["sweep", unscored, "--workdir", workdir])
            #expect(refused.status == ExitStatus.usage && refused.stderr.contains("sweep.metric = \"\(metric)\" is written by no trial: \(says)"),
                    "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")
        }
    }

    /// A trial refused only once it runs (its batch size over the memory budget, known after the features
    /// load) or whose settings do not produce the sweep's metric (int8 figures without quantising) fails
    /// alone: the trials after it run, the failures are recorded with their reasons, and the exit status is 3.
    @Test func aTrialThatFailsAtRunTimeDoesNotStopTheOthers() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-trial-fails")
        let manifest = try Self.writeBudgetedSweepManifest(folder, data: data, grid: "{train.batch_size: [4096, 16], export.quantize: [none, int8]}",
                                                           metric: "int8.weighted_f1")
        let workdir = folder + "/work"
        let result = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--json"])
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        let board = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let trials = try #require(board["trials"] as? [[String: Any]])
        func trial(batch: Int, quantize: String) -> [String: Any]? {
            trials.first { t in
                let params = t["params"] as? [String: [String: Any]]
                return params?["train"]?["batch_size"] as? Int == batch && params?["export"]?["quantize"] as? String == quantize
            }
        }
        for quantize in ["none", "int8"] {
            let big = try #require(trial(batch: 4096, quantize: quantize), "\(trials)")
            #expect(big["status"] as? String == "failed" && (big["reason"] as? String ?? "").contains("resources.max_memory_mb = 200"), "\(big)")
            // The failed trial names its recorded (failed) run.
            let run = try #require(big["run"] as? String, "\(big)")
            #expect(try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().first { $0.id == run }?.status == .failed)
        }
        let unquantized = try #require(trial(batch: 16, quantize: "none"))
        #expect(unquantized["status"] as? String == "failed"
                && (unquantized["reason"] as? String ?? "").contains("this trial's settings do not produce it"), "\(unquantized)")
        let scored = try #require(trial(batch: 16, quantize: "int8"))
        #expect(scored["status"] as? String == "done" && scored["metric"] is Double, "\(scored)")
        #expect(board["best"] as? Int == scored["trial"] as? Int)
        // The best trial's manifest keeps the budget it ran under.
        let sweepFolder = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/sweeps").first)
        let best = try String(contentsOfFile: workdir + "/sweeps/\(sweepFolder)/best.yaml", encoding: .utf8)
        #expect(best.contains("\nresources: {\"max_memory_mb\": 200}\n"), "\(best)")
    }

    /// Two sweep workers each run one trial of a 2-trial grid in their own work directories, reading
    /// the main cache without writing it; merge folds them in and the main sweep finds both finished.
    @Test func workersShareTheMainFeaturesAndMergeBack() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-workers")
        let manifest = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.3]}")
        let workdir = folder + "/work"

        let early = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "0/2"])
        #expect(early.status == 1 && early.stderr.contains("--prepare"), "no features yet: \(early.stderr)")
        let partial = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "split", "--workdir", workdir])
        #expect(partial.status == 0, "\(partial.stderr)")
        let notReady = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "0/2"])
        #expect(notReady.status == 1 && notReady.stderr.contains("stage audio would run (has never completed), and 180 unit(s) of it are not in the main cache"),
                "\(notReady.stderr)")
        let prepare = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--prepare", "--workdir", workdir])
        #expect(prepare.status == 0, "\(prepare.stderr)")
        let cacheBefore = try TestSupport.shell("cd '\(workdir)/cache' && find . -type f -exec sha256sum {} + | sort")

        // A worker turned away by a run holding the main directory leaves no folder a merge would stop on.
        let held = try WorkDirectoryLock.acquire(path: workdir + "/emopipe.lock", holder: "emopipe run (pid 1)")
        let turnedAway = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "0/2"])
        held.release()
        #expect(turnedAway.status == 75, "\(turnedAway.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: workdir + "/workers")) ?? []).isEmpty, "no worker folder is left")

        for index in 0..<2 {
            let worker = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "\(index)/2"])
            #expect(worker.status == 0, "\(worker.stderr)")
            #expect(worker.stderr.contains("trial \(index): weighted_f1") && !worker.stderr.contains("trial \(1 - index): weighted_f1"))
            #expect(!worker.stderr.contains("audio: running"), "features are read from the main cache")
        }
        // gc and verify in a worker's directory would act on the main cache through its links: refused, naming the main one.
        let someWorker = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/workers").sorted().first)
        // A second copy of a worker that is running (its sweep lock held) is refused before it touches the
        // database the first writes (it replaced it, and a trial's run was lost to the merge).
        let database = workdir + "/workers/" + someWorker + "/emopipe.sqlite"
        let databaseBefore = try Data(contentsOf: URL(fileURLWithPath: database))
        let sweepLock = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/workers/" + someWorker + "/sweeps").first)
        // As while its first trial trains: no trial recorded in its state yet (a copy would then be taken anew).
        let statePath = workdir + "/workers/\(someWorker)/sweeps/\(sweepLock)/state.json"
        let state = try Data(contentsOf: URL(fileURLWithPath: statePath))
        try FileManager.default.removeItem(atPath: statePath)
        let running = try WorkDirectoryLock.acquire(path: workdir + "/workers/\(someWorker)/sweeps/\(sweepLock)/sweep.lock", holder: "emopipe sweep (pid 1)")
        let second = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", someWorker.hasSuffix("0-of-2") ? "0/2" : "1/2"])
        running.release()
        try state.write(to: URL(fileURLWithPath: statePath))
        #expect(second.status == 75 && second.stderr.contains("emopipe sweep (pid 1)"), "\(second.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: database)) == databaseBefore)
        for command in [["cache", "gc", manifest, "--current-only", "--set", "audio.n_mels=32"], ["cache", "verify"]] {
            let refused = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir + "/workers/" + someWorker])
            #expect(refused.status == 64 && refused.stderr.contains("is a sweep worker's work directory")
                    && refused.stderr.contains("--workdir \(workdir)` there"), "\(refused.stderr)")
        }
        // One killed before its marker was written has the links only: refused all the same.
        let markerless = workdir + "/workers/" + someWorker
        let marker = "sweep-worker.txt"
        try FileManager.default.moveItem(atPath: markerless + "/" + marker, toPath: folder + "/marker-aside")
        let unmarked = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", manifest, "--workdir", markerless])
        #expect(unmarked.status == 64 && unmarked.stderr.contains("is a link to another work directory's cache"), "\(unmarked.stderr)")
        try FileManager.default.moveItem(atPath: folder + "/marker-aside", toPath: markerless + "/" + marker)
        #expect(try TestSupport.shell("cd '\(workdir)/cache' && find . -type f -exec sha256sum {} + | sort") == cacheBefore,
                "the workers wrote nothing into the main cache")
        let runsBefore = try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().count
        #expect(runsBefore == 2, "the main work directory holds only its own two runs until the merge")

        // Into another work directory, a worker would bring the snapshot's runs as that one's: refused.
        let elsewhere = folder + "/elsewhere"
        #expect(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "ingest", "--workdir", elsewhere]).status == 0)
        let workerFolder = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/workers").sorted().first)
        let foreign = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", elsewhere, workdir + "/workers/" + workerFolder])
        #expect(foreign.status == 64 && foreign.stderr.contains("was prepared from another work directory than \(elsewhere): 2 run(s)"), "\(foreign.stderr)")
        #expect(try ProvenanceStore(path: elsewhere + "/emopipe.sqlite").runs().count == 1, "nothing came in")

        // A worker whose finished trial lost its run folder is left out, named; the other merges (exit 3).
        let workerFolders = try FileManager.default.contentsOfDirectory(atPath: workdir + "/workers").sorted().map { workdir + "/workers/" + $0 }
        let secondRuns = workerFolders[1] + "/runs"
        let trialRun = try #require(try FileManager.default.contentsOfDirectory(atPath: secondRuns).first)
        try FileManager.default.moveItem(atPath: secondRuns + "/" + trialRun, toPath: folder + "/kept-aside")
        let lacking = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        #expect(lacking.status == ExitStatus.partial && lacking.stdout.contains("\(workerFolders[0]): 1 sweep trials")
                && lacking.stderr.contains("\(secondRuns)/\(trialRun): is missing, but run \(trialRun) finished")
                && lacking.stderr.contains("1 of 2 worker(s) not merged; the other 1 was"), "\(lacking.stdout) \(lacking.stderr)")
        try FileManager.default.moveItem(atPath: folder + "/kept-aside", toPath: secondRuns + "/" + trialRun)
        // A worker whose last trial did not finish (killed: its run still recorded running) is left out until run again,
        // so its trials are trained by a worker, never by the merge's sweep.
        let killed = try ProvenanceStore(path: workerFolders[1] + "/emopipe.sqlite")
        let lastTrial = try #require(try killed.runs(limit: 1).first)
        try killed.finishRun(id: lastTrial.id, status: .running, exitCode: 0)
        let died = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        try killed.finishRun(id: lastTrial.id, status: lastTrial.status, exitCode: lastTrial.exitCode ?? 0)
        #expect(died.status == ExitStatus.partial && died.stderr.contains("the worker's last run \(lastTrial.id) did not finish (its process died)"),
                "\(died.stdout) \(died.stderr)")
        // Records `cache gc` removed from the main cache since the workers started are not the workers' to bring back.
        let gc = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", manifest, "--current-only", "--set", "audio.n_mels=32", "--workdir", workdir])
        #expect(gc.status == 0, "\(gc.stderr)")
        let merge = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        #expect(merge.status == 0 && merge.stdout.contains("\(workerFolders[1]): 1 sweep trials"), "\(merge.stdout) \(merge.stderr)")
        let again = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        #expect(again.status == 0 && again.stdout.contains("0 sweep trials, 0 runs"), "merging twice adds nothing: \(again.stdout)")

        let main = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--json"])
        #expect(main.status == 0, "\(main.stderr)")
        #expect(main.stderr.contains("trial 0: finished before") && main.stderr.contains("trial 1: finished before"), "\(main.stderr)")
        let board = try #require(try JSONSerialization.jsonObject(with: Data(main.stdout.utf8)) as? [String: Any])
        let trials = try #require(board["trials"] as? [[String: Any]])
        #expect(trials.count == 2 && trials.allSatisfy { $0["status"] as? String == "done" })
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.runs().count == runsBefore + 2, "the workers' two trial runs joined; the sweep ran nothing more")
        for trial in trials {
            let run = try #require(trial["run"] as? String)
            #expect(FileManager.default.fileExists(atPath: workdir + "/runs/\(run)/metrics.json"))
        }
    }

    /// `--prepare` computes the feature stages some trial reads: a speech-only grid no face crops,
    /// and the workers of that grid find everything they read ready; a trial that adds the faces
    /// makes them part of what is prepared.
    @Test func prepareComputesOnlyWhatSomeTrialReads() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("sweep-read")
        let workdir = folder + "/work"
        let speechOnly = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[audio]], train.dropout: [0.1]}")
        let prepare = try TestSupport.run(TestSupport.emopipe, ["sweep", speechOnly, "--prepare", "--workdir", workdir])
        #expect(prepare.status == 0 && prepare.stderr.contains("audio: running") && !prepare.stderr.contains("faces: running"), "\(prepare.stderr)")
        let worker = try TestSupport.run(TestSupport.emopipe, ["sweep", speechOnly, "--workdir", workdir, "--worker", "0/1"])
        #expect(worker.status == 0 && worker.stderr.contains("trial 0: weighted_f1"), "\(worker.stderr)")

        let withFaces = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[audio], [faces, audio]]}")
        let again = try TestSupport.run(TestSupport.emopipe, ["sweep", withFaces, "--prepare", "--workdir", workdir])
        #expect(again.status == 0 && again.stderr.contains("faces: running") && again.stderr.contains("1 face tracks, 0 failed")
                && again.stderr.contains("audio: up to date"), "\(again.stderr)")
    }

    /// `--prepare` stopped by SIGTERM says what it kept and how to go on (exit 130). (That a run goes on
    /// from what was kept is the interrupt tests' and crash-safety tests' subject.)
    @Test(.enabled(if: TestSupport.hasTool("sox"), "needs sox"))
    func anInterruptedPrepareSaysSoAndTheSameCommandGoesOn() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 2), ("03-01-02-01-01-01-01.wav", 60),
                                                      ("03-01-01-01-01-01-02.wav", 2), ("03-01-02-01-01-01-02.wav", 2)])
        let folder = try TestSupport.temporaryFolder("sweep-prepare-stop")
        let workdir = folder + "/work"
        let manifest = try Self.writeSweepManifest(folder, data: data, grid: "{train.modalities: [[audio]], train.dropout: [0.1]}")
        // A 2-sample hop makes the long clip's log-mel take long enough to be stopped inside it.
        let run = try TestSupport.Background(TestSupport.emopipe, ["sweep", manifest, "--prepare", "--workdir", workdir,
                                                                   "--set", "audio.hop_length=2"])
        #expect(run.waitForStderr(containing: "audio: 1/4"), "\(run.stderr)")
        #expect(kill(run.pid, SIGTERM) == 0)
        #expect(run.wait() == ExitStatus.interrupted, "\(run.stderr)")
        #expect(run.stderr.contains("sweep: --prepare interrupted; what it computed is kept, and the same command goes on from there"),
                "\(run.stderr)")
    }

    /// A grid over a feature stage's setting: `--prepare` computes each setting's features, and each
    /// worker's trial reads its own from the main cache, computing and writing nothing there.
    @Test func workersOfASweepOverFeatureSettingsReadEachSettingsFeatures() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-feature-axis")
        let manifest = try Self.writeSweepManifest(folder, data: data, grid: "{audio.n_mels: [16, 24], split.val_actors: [[2], [3]]}")
        let workdir = folder + "/work"
        let prepare = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--prepare", "--workdir", workdir])
        // One per band count: split's settings are the workers' own to make.
        #expect(prepare.status == 0 && prepare.stderr.contains("for 2 setting(s) of them"), "\(prepare.stderr)")
        // Two band counts computed, once each; the manifest's own (64), which no trial uses, not at all.
        #expect(prepare.stderr.components(separatedBy: "180 to compute").count - 1 == 2, "\(prepare.stderr)")
        let cacheBefore = try TestSupport.shell("cd '\(workdir)/cache' && find . -type f -exec sha256sum {} + | sort")
        for index in 0..<2 {
            let worker = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "\(index)/2"])
            #expect(worker.status == 0 && worker.stderr.contains("trial \(index): weighted_f1") && worker.stderr.contains("trial \(index + 2): weighted_f1")
                    && worker.stderr.contains("0 to compute, 180 cached")
                    && worker.stderr.range(of: #"[1-9][0-9]* computed now in"#, options: .regularExpression) == nil, "\(worker.stderr)")
        }
        // A file chmod'ed after a worker's snapshot, with a trial of the worker still to run: --prepare hashes it
        // again in the main directory, and the worker its own copy's row before the trial (it refused, and
        // sent the user to --prepare, which could not help).
        let pendingWorker = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/workers").sorted().last.map { workdir + "/workers/" + $0 })
        let statePath = try #require(try FileManager.default.contentsOfDirectory(atPath: pendingWorker + "/sweeps").first.map { pendingWorker + "/sweeps/" + $0 + "/state.json" })
        var state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as? [String: Any])
        state["attempts"] = (state["attempts"] as? [[String: Any]] ?? []).filter { $0["trial"] as? Int != 3 }
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
        try TestSupport.shell("chmod 600 '\(data)/Actor_01/03-01-01-01-01-01-01.wav'")
        #expect(try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--prepare", "--workdir", workdir]).status == 0)
        let resumed = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "1/2"])
        #expect(resumed.status == 0 && resumed.stderr.contains("trial 3: weighted_f1"), "\(resumed.stderr)")
        // A worker folder an older emopipe prepared links split's plans to the main cache too: made its own
        // again when the worker starts (here a fresh start: its state gone, so its trials run again).
        let older = try #require(try FileManager.default.contentsOfDirectory(atPath: workdir + "/workers").sorted().first.map { workdir + "/workers/" + $0 })
        try FileManager.default.removeItem(atPath: older + "/cache/split")
        try FileManager.default.createSymbolicLink(atPath: older + "/cache/split", withDestinationPath: workdir + "/cache/split")
        try TestSupport.shell("rm '\(older)'/sweeps/*/state.json")
        let again = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "0/2"])
        #expect(again.status == 0 && again.stderr.contains("trial 2: weighted_f1"), "\(again.stderr)")
        var facts = stat()
        #expect(lstat(older + "/cache/split", &facts) == 0 && facts.st_mode & S_IFMT == S_IFDIR, "the worker's own folder, not a link")
        #expect(try TestSupport.shell("cd '\(workdir)/cache' && find . -type f -exec sha256sum {} + | sort") == cacheBefore,
                "the workers wrote nothing into the main cache")
        let merge = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        #expect(merge.status == 0, "\(merge.stderr)")
        let main = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--json"])
        let board = try #require(try JSONSerialization.jsonObject(with: Data(main.stdout.utf8)) as? [String: Any], "\(main.stderr)")
        let trials = try #require(board["trials"] as? [[String: Any]])
        #expect(main.status == 0 && trials.count == 4 && trials.allSatisfy { $0["status"] as? String == "done" }, "\(main.stdout)")
        #expect((0..<4).allSatisfy { main.stderr.contains("trial \($0): finished before") }, "the workers' trials are not run again: \(main.stderr)")
    }

    /// A trial that failed in a worker comes into the main leaderboard failed, with its reason, not as
    /// pending; the main sweep then tries it again, as it does its own failed trials.
    @Test func aWorkersFailedTrialIsMergedWithItsReason() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-worker-fails")
        let manifest = try Self.writeBudgetedSweepManifest(folder, data: data, grid: "{train.batch_size: [4096, 16]}")
        let workdir = folder + "/work"
        #expect(try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--prepare", "--workdir", workdir]).status == 0)
        let failing = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "0/2"])
        #expect(failing.status == ExitStatus.partial && failing.stderr.contains("trial 0: failed"), "\(failing.stderr)")
        #expect(try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--worker", "1/2"]).status == 0)
        let merge = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        #expect(merge.status == 0 && merge.stdout.contains("0-of-2: 1 sweep trials"), "\(merge.stdout) \(merge.stderr)")
        let board = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard", "--json"])
        let trials = try #require((try JSONSerialization.jsonObject(with: Data(board.stdout.utf8)) as? [String: Any])?["trials"] as? [[String: Any]],
                                  "\(board.stderr)")
        let failed = try #require(trials.first { $0["trial"] as? Int == 0 }, "\(trials)")
        #expect(failed["status"] as? String == "failed" && (failed["reason"] as? String ?? "").contains("resources.max_memory_mb = 200"), "\(failed)")
        #expect(trials.first { $0["trial"] as? Int == 1 }?["status"] as? String == "done", "\(trials)")
        // A worker state the main sweep could not load (a trial no sweep has) is refused by merge, naming it;
        // the main state stays loadable.
        let workerState = try #require(try TestSupport.shell("ls '\(workdir)'/workers/*-0-of-2/sweeps/*/state.json")
            .split(separator: "\n").first.map(String.init))
        let edited = try String(contentsOfFile: workerState, encoding: .utf8).replacingOccurrences(of: "\"trial\" : 0", with: "\"trial\" : -1")
        try edited.write(toFile: workerState, atomically: true, encoding: .utf8)
        let refused = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
        #expect(refused.status == ExitStatus.partial && refused.stderr.contains("\(workerState): names trial -1, which no sweep has"),
                "\(edited.prefix(300)) \(refused.stderr)")
        #expect(try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"]).status == 0)
        // So is a trial this worker does not run (worker 0 of 2 runs the even ones): one past the sweep's last would
        // have made the main sweep refuse its own state once merged.
        for stray in ["99", "1"] {
            try edited.replacingOccurrences(of: "\"trial\" : -1", with: "\"trial\" : \(stray)").write(toFile: workerState, atomically: true, encoding: .utf8)
            let outside = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", workdir])
            #expect(outside.status == ExitStatus.partial && outside.stderr.contains("\(workerState): names trial \(stray), which worker 0/2 does not run"),
                    "\(outside.stderr)")
        }
        #expect(try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--leaderboard"]).status == 0)
    }

    /// A sweep worker's links to the main cache name the main directory where it was: after the work directory
    /// is moved, the worker's next use points them at the new place, rather than finding the features missing and
    /// sending the user to a `--prepare` that changes nothing.
    @Test func aSweepWorkerFollowsAMovedWorkDirectory() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-moved")
        let manifest = try Self.writeSweepManifest(folder, data: data, grid: "{train.dropout: [0.1, 0.2, 0.3, 0.4]}")
        #expect(try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--prepare", "--workdir", folder + "/a"]).status == 0)
        let first = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", folder + "/a", "--worker", "0/2"])
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.moveItem(atPath: folder + "/a", toPath: folder + "/b")
        let link = try #require(try TestSupport.shell("ls -d '\(folder)'/b/workers/*-0-of-2/cache/audio").split(separator: "\n").first.map(String.init))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == folder + "/a/cache/audio")
        let moved = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", folder + "/b", "--worker", "0/2"])
        #expect(moved.status == 0 && !moved.stderr.contains("would run"), "\(moved.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == folder + "/b/cache/audio")
        // Where the links lead is the main directory's managed cache: no export into it through the worker.
        let worker = (link as NSString).deletingLastPathComponent.replacingOccurrences(of: "/cache", with: "")
        let export = try TestSupport.run(TestSupport.emopipe, ["cache", "export", "--workdir", worker, "--stage", "audio", "--format", "npz", link + "/exp"])
        #expect(export.status != 0 && export.stderr.contains("DIR lies in the work directory's own folder"), "\(export.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/b/cache/audio/exp"))
    }

    /// Successive halving over 4 trials at budgets of 1 and 2 epochs: the better half at 1 epoch
    /// goes on, the others are stopped, and the best is the better of the two that reached 2 epochs.
    @Test func halvingStopsTheWorseHalfAndPicksAmongTheSurvivors() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("sweep-halving")
        let manifest = try TestSupport.writeManifest(at: folder + "/halving.yaml", data: data, """
        name: tiny-halving
        seed: 3
        threads: 2
        params:
          split: {test_actors: [1], val_actors: [2]}
          train: {audio_channels: [4, 8], embedding: 16, batch_size: 16, checkpoint_every: 1, patience: 10, warmup_epochs: 0,
                  speaker_norm: false, recurrent: false}
        sweep:
          metric: weighted_f1
          strategy: halving
          halving: {budgets: [1, 2]}
          random: {n_trials: 4, seed: 2, params: {train.learning_rate: {distribution: log_uniform, low: 1.0e-3, high: 3.0e-2}}}
        """)
        let workdir = folder + "/work"
        let result = try TestSupport.run(TestSupport.emopipe, ["sweep", manifest, "--workdir", workdir, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let board = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let trials = try #require(board["trials"] as? [[String: Any]])
        #expect(trials.count == 4)
        let stopped = trials.filter { $0["status"] as? String == "stopped" }, done = trials.filter { $0["status"] as? String == "done" }
        #expect(stopped.count == 2 && done.count == 2, "\(trials)")
        #expect(stopped.allSatisfy { $0["epochs"] as? Int == 1 } && done.allSatisfy { $0["epochs"] as? Int == 2 })

        // Every trial's 1-epoch score, from its own run's metrics.json: the survivors are the top two.
        let state = try Self.state(workdir, prefix: "tiny-halving-")
        let firstRung = Dictionary(uniqueKeysWithValues: try state.filter { $0["epochs"] as? Int == 1 }.map { attempt -> (Int, Double) in
            let run = try #require(attempt["run"] as? String)
            let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: workdir + "/runs/\(run)/metrics.json"))) as? [String: Any]
            return (try #require(attempt["trial"] as? Int), try #require(metrics?["weighted_f1"] as? Double))
        })
        #expect(firstRung.count == 4)
        let survivors = Set(done.compactMap { $0["trial"] as? Int })
        for loser in stopped.compactMap({ $0["trial"] as? Int }) {
            #expect(survivors.allSatisfy { (firstRung[$0] ?? -1) >= (firstRung[loser] ?? 2) }, "\(firstRung) kept \(survivors)")
        }
        let best = try #require(board["best"] as? Int)
        #expect(survivors.contains(best))
        let bestMetric = done.first { $0["trial"] as? Int == best }?["metric"] as? Double ?? -1
        #expect(done.allSatisfy { ($0["metric"] as? Double ?? 2) <= bestMetric })
        let bestManifest = try String(contentsOfFile: workdir + "/sweeps/" + (try Self.sweepFolder(workdir, prefix: "tiny-halving-")) + "/best.yaml", encoding: .utf8)
        #expect(bestManifest.contains("\"epochs\": 2") && !bestManifest.contains("sweep:"), "\(bestManifest)")
    }
}
