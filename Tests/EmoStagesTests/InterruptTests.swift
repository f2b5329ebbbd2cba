import EmoCore
import EmoFeatures
import EmoMedia
import EmoPipeline
@testable import EmoStages
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("interrupts inside one long unit", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"),
                                                   "needs the emopipe binary and sox"))
struct InterruptTests {
    /// SIGTERM while a clip's log-mel takes a long time (60 s of audio at a 2-sample hop: about a
    /// minute in a debug build) stops the run in the middle of that clip: exit 130, the clip neither
    /// computed nor recorded as failed, and the clip that finished before is kept.
    @Test func sigtermStopsTheAudioStageInsideAClipAndKeepsWhatWasComputed() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 60), ("03-01-02-01-01-01-01.wav", 2)])
        let actor = data + "/Actor_01"
        let workdir = try TestSupport.temporaryFolder("interrupt-audio")
        let run = try TestSupport.Background(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
            "--until", "audio", "--threads", "2", "--set", "audio.hop_length=2",
        ])
        #expect(run.waitForStderr(containing: "audio: 1/2"), "\(run.stderr)")
        #expect(kill(run.pid, SIGTERM) == 0)
        #expect(run.wait() == ExitStatus.interrupted, "\(run.stderr)")

        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let records = try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").fetchAll($0) }
        let short = try #require(try store.source(path: actor + "/03-01-02-01-01-01-01.wav")?.sha256)
        #expect(records.map(\.key) == [short], "only the short clip, finished before the signal, is cached")
        #expect(try store.failures(stage: "audio").isEmpty, "a stopped clip is not a failed one")
        #expect(!run.stderr.contains("stopped on request") && !run.stderr.contains("1 failed"),
                "no error line for the stopped clip, and progress does not count it as failed: \(run.stderr)")
        // The progress line ends (at one of two: the stopped clip is neither done nor failed) before the run says why.
        #expect(run.stderr.contains(" info    audio: 1/2 (50%)") && !run.stderr.contains("audio: 2/2")
                && run.stderr.hasSuffix("emopipe: interrupted\n"), "\(run.stderr)")
        let status = try TestSupport.run(TestSupport.emopipe, [
            "status", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
        ])
        #expect(status.stdout.contains("audio     never-run"), "\(status.stdout)")
    }

    /// SIGHUP (the terminal closed) stops a run as SIGTERM does: exit 130, the run recorded interrupted,
    /// the clip finished before it kept, however many of them (and of SIGTERM) follow. Started under `nohup` (SIGHUP ignored), the run ignores it and
    /// finishes. Before, SIGHUP killed the process outright, leaving the run recorded `running`.
    @Test func sighupStopsARunUnlessItWasStartedUnderNohup() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 20), ("03-01-02-01-01-01-01.wav", 2)])
        for underNohup in [false, true] {
            let workdir = try TestSupport.temporaryFolder("hangup")
            let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
                             "--until", "audio", "--threads", "2", "--set", "audio.hop_length=2"]
            // nohup execs emopipe in its own process, so the pid signalled is emopipe's.
            let run = underNohup ? try TestSupport.Background("/usr/bin/nohup", [TestSupport.emopipe] + arguments)
                                 : try TestSupport.Background(TestSupport.emopipe, arguments)
            #expect(run.waitForStderr(containing: "audio: 1/2"), "\(run.stderr)")
            // A closing terminal sends SIGHUP twice (the shell passes it on, then the kernel to the old
            // foreground group), and a session manager SIGTERM then SIGHUP: none stops at once.
            // Sent back to back, while the run stops (two SIGHUPs pending at once may arrive as one; the
            // SIGTERM after them is another signal, and it reached the old code's "second signal" exit).
            for sig in underNohup ? [SIGHUP, SIGHUP] : [SIGHUP, SIGHUP, SIGTERM] { #expect(kill(run.pid, sig) == 0) }
            let status = run.wait()
            let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
            let cached = try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").fetchCount($0) }
            if underNohup {
                #expect(status == 0 && cached == 2, "nohup: exit \(status), \(cached) cached: \(run.stderr)")
                #expect(try store.runs().first?.status == .done)
            } else {
                #expect(status == ExitStatus.interrupted && cached == 1, "exit \(status), \(cached) cached: \(run.stderr)")
                // Ended by the run itself, which records it interrupted, not cut short by the signals after the first.
                #expect(run.stderr.hasSuffix("emopipe: interrupted\n"), "\(run.stderr)")
                #expect(try store.runs().first?.status == .interrupted)
            }
        }
    }

    /// A log reader that goes away (`| head -1`) does not kill the run by SIGPIPE (exit 141, the run left
    /// recorded running): it finishes, exit 0, recorded done.
    @Test func aLogReaderThatGoesAwayDoesNotKillTheRun() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 3), ("03-01-02-01-01-01-01.wav", 2)])
        let workdir = try TestSupport.temporaryFolder("sigpipe")
        let status = try TestSupport.shell("'\(TestSupport.emopipe)' run '\(TestSupport.repositoryRoot)/manifests/demo.yaml' --data '\(data)' "
                                           + "--workdir '\(workdir)' --until audio --threads 2 2>&1 | head -1 >/dev/null; echo ${PIPESTATUS[0]}")
        #expect(status == "0\n", "exit \(status)")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.runs().first?.status == .done)
        #expect(try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").fetchCount($0) } == 2)
    }

    /// SIGTERM while ingest hashes a huge file (200 GB, sparse: minutes of reading) stops the run within
    /// that file: exit 130, the run recorded interrupted, the huge file neither recorded nor failed.
    /// Before, hashing ran to the end, and a stop in ingest's last batch was lost (exit 3, the run `partial`).
    @Test func sigtermStopsIngestInsideTheHashingOfAHugeFile() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-02-01-01-01-01.wav", 1)])
        let huge = data + "/Actor_01/03-01-01-01-01-01-01.wav"
        #expect(FileManager.default.createFile(atPath: huge, contents: nil) && truncate(huge, 200 << 30) == 0)
        let workdir = try TestSupport.temporaryFolder("interrupt-ingest")
        let run = try TestSupport.Background(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
            "--until", "ingest", "--threads", "2",
        ])
        #expect(run.waitForStderr(containing: "2 to read"), "\(run.stderr)")
        Thread.sleep(forTimeInterval: 0.5)   // into the hashing
        #expect(kill(run.pid, SIGTERM) == 0)
        // Minutes of hashing before, when the stop waited for the file's end: not waited for here.
        let stopped = run.waitForStderr(containing: "emopipe: interrupted", timeout: 60)
        if !stopped { kill(run.pid, SIGKILL) }
        #expect(stopped, "\(run.stderr)")
        #expect(run.wait() == ExitStatus.interrupted, "\(run.stderr)")
        #expect(run.stderr.hasSuffix("emopipe: interrupted\n"), "\(run.stderr)")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.runs().first?.status == .interrupted)
        #expect(try store.source(path: huge) == nil, "the huge file is read again by the next run")
        // The small file beside it is recorded if it was examined before the stop (timing's), and then as ok.
        #expect(try store.sources(status: nil).allSatisfy { $0.status == .ok }, "a stopped file is not a failed one")
        #expect(try store.failures(stage: "ingest").isEmpty)
    }

    /// SIGKILL (no chance to clean up) while one slow clip is still being computed keeps the clips that
    /// finished beside it: finished units are published once due (3 s), not when the slowest unit of
    /// their chunk ends. Watched in the database, not the progress line (printed every 5 s off a terminal).
    @Test func sigkillBehindASlowClipKeepsTheClipsFinishedBesideIt() throws {
        let short = (2...6).map { ("03-01-0\($0)-01-01-01-01.wav", 2.0) }
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 60)] + short)
        let workdir = try TestSupport.temporaryFolder("kill-audio")
        let run = try TestSupport.Background(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
            "--until", "audio", "--threads", "2", "--set", "audio.hop_length=2",
        ])
        func cachedKeys() -> Set<String> {
            guard let store = try? ProvenanceStore(path: workdir + "/emopipe.sqlite"),
                  let rows = try? store.read({ try CacheRecordRow.filter(sql: "stage = 'audio'").fetchAll($0) }) else { return [] }
            return Set(rows.map(\.key))
        }
        let deadline = Date().addingTimeInterval(240)
        while cachedKeys().count < short.count && run.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.25) }
        let stillComputing = run.isRunning && !run.stderr.contains("audio: 6/6") && !run.stderr.contains("audio: 6 log-mel")
        #expect(kill(run.pid, SIGKILL) == 0)
        _ = run.wait()
        #expect(stillComputing, "the slow clip was still being computed when the short ones were published: \(run.stderr)")

        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let finished = try Set(short.map { try #require(try store.source(path: data + "/Actor_01/" + $0.0)?.sha256) })
        #expect(cachedKeys() == finished, "the five short clips are cached, the slow one is not")
    }

    /// A reproduction cannot resume: interrupted, it says where its part-done work directory is left and,
    /// with --into, that reproducing again needs an empty folder (the same one is refused). The data
    /// root gains a slow clip after the recorded run, so the reproduction is still in audio when signalled.
    @Test func anInterruptedReproductionSaysWhatReproducingAgainNeeds() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-02-01-01-01-01.wav", 2)])
        let workdir = try TestSupport.temporaryFolder("interrupt-reproduce")
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let recorded = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--data", data, "--workdir", workdir + "/w",
                                                                 "--until", "audio", "--threads", "2", "--set", "audio.hop_length=2"])
        try #require(recorded.status == 0, "\(recorded.stderr)")
        let slow = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 60)])
        try FileManager.default.copyItem(atPath: slow + "/Actor_01/03-01-01-01-01-01-01.wav", toPath: data + "/Actor_01/03-01-01-01-01-01-01.wav")
        let runId = try #require(try ProvenanceStore(path: workdir + "/w/emopipe.sqlite").read { try RunRecord.fetchAll($0) }.first?.id)

        let into = workdir + "/again"
        let reproduction = try TestSupport.Background(TestSupport.emopipe, ["reproduce", runId, "--workdir", workdir + "/w", "--into", into])
        #expect(reproduction.waitForStderr(containing: "audio: 1/2"), "\(reproduction.stderr)")
        #expect(kill(reproduction.pid, SIGINT) == 0)
        #expect(reproduction.wait() == ExitStatus.interrupted, "\(reproduction.stderr)")
        #expect(reproduction.stderr.contains("the interrupted reproduction's work directory is left in \(into) "
                                             + "(remove it; reproducing again needs an empty --into folder)"), "\(reproduction.stderr)")
        let again = try TestSupport.run(TestSupport.emopipe, ["reproduce", runId, "--workdir", workdir + "/w", "--into", into])
        #expect(again.status != 0 && again.stderr.contains(into), "the same folder is refused: \(again.stderr)")
    }

    /// Scoring whole clips can be long (a clip of many windows): SIGTERM stops training's validation and
    /// evaluate within one batch of windows, not at the end of the clip. Exit 130, the stopped epoch is done
    /// again by the next run, evaluate writes nothing, and the next runs finish both.
    @Test func sigtermStopsValidationAndEvaluateWithinABatchOfWindows() throws {
        // Two 60 s clips scored every frame (2 ms frames): about 30,000 windows each, tens of seconds in a
        // debug build, where training's 8 short clips take a fraction of a second.
        let short = (1...8).map { ("03-01-0\($0)-01-01-01-01.wav", 2.0) }
        let data = try TestSupport.synthesizedSpeech(short + [("03-01-01-01-01-01-02.wav", 60), ("03-01-02-01-01-01-03.wav", 60)])
        let workdir = try TestSupport.temporaryFolder("interrupt-scoring")
        let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
                         "--threads", "2", "--set", "split.test_actors=[3]", "--set", "split.val_actors=[2]",
                         "--set", "train.epochs=1", "--set", "train.warmup_epochs=0", "--set", "train.audio_channels=[4,8]",
                         "--set", "train.window_frames=100", "--set", "train.window_hop_frames=1", "--set", "audio.hop_length=32"]
        func stop(_ run: TestSupport.Background, after text: String) -> (status: Int32, seconds: Double) {
            #expect(run.waitForStderr(containing: text), "\(run.stderr)")
            Thread.sleep(forTimeInterval: 2)
            let sent = Date()
            #expect(kill(run.pid, SIGTERM) == 0)
            let status = run.wait()
            return (status, Date().timeIntervalSince(sent))
        }

        let training = try TestSupport.Background(TestSupport.emopipe, arguments + ["--until", "train"])
        let trainingStop = stop(training, after: "1 validation clips")
        #expect(trainingStop.status == ExitStatus.interrupted && trainingStop.seconds < 5,
                "exit \(trainingStop.status) \(trainingStop.seconds)s after SIGTERM: \(training.stderr)")
        #expect(training.stderr.contains("stopped while validating epoch 1; the next run starts it again"), "\(training.stderr)")
        #expect(!training.stderr.contains("epoch 1/1"), "the stopped epoch is not logged as done: \(training.stderr)")

        let evaluation = try TestSupport.Background(TestSupport.emopipe, arguments)
        let evaluationStop = stop(evaluation, after: "evaluate: running")
        #expect(evaluationStop.status == ExitStatus.interrupted && evaluationStop.seconds < 5,
                "exit \(evaluationStop.status) \(evaluationStop.seconds)s after SIGTERM: \(evaluation.stderr)")
        #expect(evaluation.stderr.contains("epoch 1/1"), "the stopped epoch was trained again: \(evaluation.stderr)")
        // Progress counts windows: the stop came part way through them.
        let windows = try #require(evaluation.stderr.split(separator: "\n").last { $0.contains(" evaluate: ") && $0.contains(" windows/s") })
        #expect(!windows.contains("(100%)"), "\(windows)")
        let runFolders = try FileManager.default.contentsOfDirectory(atPath: workdir + "/runs")
        #expect(!runFolders.contains { FileManager.default.fileExists(atPath: "\(workdir)/runs/\($0)/metrics.json") },
                "a stopped evaluate writes no metrics")

        let finished = try TestSupport.run(TestSupport.emopipe, arguments)
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(finished.stderr.contains("train: up to date") && finished.stderr.contains("evaluate: ran"), "\(finished.stderr)")
    }

    /// A unit's work stopped by the run (decoding audio or video, a log-mel) is told apart from a
    /// unit that failed, so it gets no failure row; a real failure still does.
    @Test func stoppedWorkIsToldApartFromFailedWork() {
        let stopped: [Error] = [MediaError.stopped(path: "/a.wav"), FeatureError.stopped, FaceError.media(.stopped(path: "/a.mp4"))]
        let failed: [Error] = [MediaError.silentAudio(path: "/a.wav"), FeatureError.notFinite, FaceError.noFaceFound,
                               FaceError.media(.truncated(path: "/a.mp4", reason: "cut"))]
        #expect(stopped.allSatisfy(PerSourceWork.wasStopped))
        #expect(!failed.contains(where: PerSourceWork.wasStopped))
    }
}
