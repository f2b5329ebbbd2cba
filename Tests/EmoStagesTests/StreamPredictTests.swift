import EmoCore
import EmoPipeline
import EmoTestSupport
import Foundation
import Testing

/// `emopipe predict` on streams: a pipe fed in real time by ffmpeg, an HTTP server on 127.0.0.1 that
/// sends a clip at its own pace, an FFmpeg device (lavfi), SIGINT, and inputs that cannot be scored.
/// The model: the tiny speaker-normalised network of the train tests, on three real actors.
@Suite("predict on streams", .serialized,
       .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"),
       .enabled(if: TestSupport.hasTool("ffmpeg"), "needs the ffmpeg command (apt install ffmpeg) to write streams"))
struct StreamPredictTests {
    /// A trained and exported run, and a ~10 s wav of three of actor 01's clips. The data is three
    /// actors' speech and the one original audio-video clip, filed as training actor 03's, so that the
    /// model has a face branch (one that no training clip can feed is not built) for the streams with
    /// video. Trained on one clip's faces, it tests the plumbing, not what faces say.
    static let trained: Result<(run: String, clip: String), Error> = Result {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("stream-train")
        let manifest = try TrainEvaluateTests.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: true)
        let work = folder + "/work"
        let result = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", work])
        guard result.status == 0 else { throw TestFailure("training failed: \(result.stderr)") }
        let clip = try TestSupport.temporaryFolder("stream") + "/long.wav"
        let wavs = try FileManager.default.contentsOfDirectory(atPath: TestSupport.sharedData + "/speech-flac/Actor_01")
            .sorted().prefix(3).map { "'\(TestSupport.sharedData)/speech-flac/Actor_01/\($0)'" }.joined(separator: " ")
        try TestSupport.shell("sox \(wavs) -b 16 '\(clip)'")
        return (try TrainEvaluateTests.lastRunFolder(work), clip)
    }

    /// One printed line: when it arrived (seconds since the epoch) and its JSON object.
    struct Line {
        var arrived: Double
        var object: [String: Any]
    }

    /// Runs `producer | emopipe predict --run RUN --json ARGS` in bash, stamping each stdout line as it
    /// arrives; returns the lines, when the pipeline started, when the producer ended, and emopipe's result.
    static func timedPredict(producer: String, arguments: String) throws -> (lines: [Line], started: Double, producerEnded: Double, result: TestSupport.ProcessResult) {
        let (run, _) = try trained.get()
        let folder = try TestSupport.temporaryFolder("timed")
        let script = """
        set -o pipefail
        date +%s.%N > '\(folder)/started'
        ( \(producer); date +%s.%N > '\(folder)/producer-ended' ) \
          | '\(TestSupport.emopipe)' predict --run '\(run)' --json \(arguments) 2> '\(folder)/stderr' \
          | while IFS= read -r line; do printf '%s %s\\n' "$(date +%s.%N)" "$line"; done > '\(folder)/lines'
        """
        var result = try TestSupport.run("/bin/bash", ["-c", script])
        result.stderr = (try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? result.stderr
        func time(_ name: String) throws -> Double {
            try #require(Double(try String(contentsOfFile: folder + "/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let lines = try String(contentsOfFile: folder + "/lines", encoding: .utf8).split(separator: "\n").map { row in
            let parts = row.split(separator: " ", maxSplits: 1)
            let arrived = try #require(Double(parts.first ?? ""))
            let object = try #require(try JSONSerialization.jsonObject(with: Data((parts.count > 1 ? parts[1] : "").utf8)) as? [String: Any])
            return Line(arrived: arrived, object: object)
        }
        return (lines, try time("started"), try time("producer-ended"), result)
    }

    /// The windows of `predict` on the clip as a file: (start, end) of its timeline.
    static func fileWindows() throws -> [(Double, Double)] {
        let (run, clip) = try trained.get()
        let file = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json", clip])
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(file.stdout.utf8)) as? [[String: Any]])
        #expect(answers.first?["modalities"] as? [String] == ["audio"], "a file's answer names the modalities it used")
        let timeline = try #require(answers.first?["timeline"] as? [[String: Any]])
        return timeline.map { ($0["start"] as? Double ?? -1, $0["end"] as? Double ?? -1) }
    }

    /// A file given twice, or again by a hard-linked path, is one file of its speaker's statistics (as
    /// the ingest stage counts it): the other files' answers do not move, and the repeat gets the same answer.
    @Test func aFileGivenTwiceCountsOnceInItsSpeakersStatistics() throws {
        let (run, _) = try Self.trained.get()
        let source = TestSupport.sharedData + "/speech-flac/Actor_01"
        let folder = try TestSupport.temporaryFolder("twice")
        try FileManager.default.createDirectory(atPath: folder + "/again", withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: source).sorted().prefix(3)
        let paths = try names.map { name -> String in
            let wav = folder + "/" + name.replacingOccurrences(of: ".flac", with: ".wav")
            try TestSupport.shell("sox '\(source)/\(name)' -b 16 '\(wav)'")
            return wav
        }
        let linked = folder + "/again/" + (paths[0] as NSString).lastPathComponent
        try FileManager.default.linkItem(atPath: paths[0], toPath: linked)
        func answers(_ files: [String]) throws -> [[String: Any]] {
            let result = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json"] + files)
            #expect(result.status == 0, "\(result.stderr)")
            // The groups are said, with what reproduces evaluate's answers (one file alone gives others).
            #expect(result.stderr.contains("statistics from the files given together, blended with its training actors' as if 10 s of their speech were among them")
                    && result.stderr.contains("normalised by itself): actor 1 (")
                    && result.stderr.contains("not all are the run's own sources of actor 1)"), "\(result.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        }
        let once = try answers(paths)
        let repeated = try answers([paths[0], paths[1], paths[0], linked, paths[2]])
        #expect(once.count == 3 && repeated.count == 5)
        func probabilities(_ answer: [String: Any]) -> [String: Double]? { answer["probabilities"] as? [String: Double] }
        #expect(probabilities(repeated[4]) == probabilities(once[2]), "a repeat must not move another file's answer")
        #expect(probabilities(repeated[2]) == probabilities(once[0]) && probabilities(repeated[3]) == probabilities(once[0]))
        for answer in repeated {
            #expect((answer["speaker"] as? [String: Any])?["files"] as? Int == 3, "three distinct files of actor 01")
        }
        // Given first under a name without an actor, then under its RAVDESS name, the file counts for actor 01.
        let unnamed = folder + "/again/first.wav"
        try FileManager.default.linkItem(atPath: paths[0], toPath: unnamed)
        let unnamedFirst = try answers([unnamed, paths[0], paths[1], paths[2]])
        #expect(probabilities(unnamedFirst[3]) == probabilities(once[2]), "the order of the paths must not regroup the speaker")
        #expect((unnamedFirst[0]["speaker"] as? [String: Any])?["name"] as? String == "actor 1")
    }

    /// Every window is a complete answer of audio, normalised by the stream so far, in order.
    static func checkWindows(_ lines: [Line], input: String) throws {
        var heard = 0.0
        for line in lines {
            let w = line.object
            #expect(w["input"] as? String == input)
            let probabilities = try #require(w["probabilities"] as? [String: Double])
            #expect(probabilities.count == 8 && abs(probabilities.values.reduce(0, +) - 1) < 1e-3)
            #expect(probabilities[w["label"] as? String ?? ""] == probabilities.values.max())
            #expect(w["modalities"] as? [String] == ["audio"])
            let speaker = try #require(w["speaker"] as? [String: Any])
            #expect(speaker["name"] as? String == "stream so far" && speaker["statistics"] as? String == "blended", "\(speaker)")
            let seconds = try #require(speaker["seconds"] as? Double)
            #expect(seconds >= heard && seconds >= (w["end"] as? Double ?? .infinity) - 0.05, "statistics cover the audio up to the window")
            heard = seconds
        }
    }

    /// Prints (for the test log) how long after a window's last byte was sent its line was printed:
    /// `sentLog` has a line "<bytes sent so far> <time>" per chunk; the clip is 48 kHz 16-bit mono.
    static func reportLatency(_ label: String, _ lines: [Line], sentLog: String, started: Double) throws {
        let sent = try String(contentsOfFile: sentLog, encoding: .utf8).split(separator: "\n").compactMap { row -> (Double, Double)? in
            let parts = row.split(separator: " ")
            guard parts.count == 2, let bytes = Double(parts[0]), let time = Double(parts[1]) else { return nil }
            return (bytes, time)
        }
        let latencies = lines.compactMap { line -> Double? in
            guard let end = line.object["end"] as? Double, let passed = sent.first(where: { $0.0 >= end * 96_000 }) else { return nil }
            return line.arrived - passed.1
        }
        let first = try #require(lines.first)
        #expect(latencies.count == lines.count)
        print("stream-predict: \(label): first window printed \(String(format: "%.2f", first.arrived - started)) s after the start, "
              + "\(String(format: "%.3f", latencies.first ?? -1)) s after its last byte was sent; every window: "
              + latencies.map { String(format: "%.3f", $0) }.joined(separator: " ") + " s")
    }

    /// A pipe that breaks off inside a sample (a 16-bit wav cut at an odd byte) is scored as far as it got,
    /// as one cut between samples is: its last, half sample is skipped, not the end of the stream's answers.
    @Test func aStreamCutInsideASampleIsScoredAsFarAsItGot() throws {
        let (_, clip) = try Self.trained.get()
        let header = try TestSupport.shell("ffprobe -v error -show_entries stream=sample_rate,channels,bits_per_sample -of csv=p=0 '\(clip)'")
        #expect(header.trimmingCharacters(in: .whitespacesAndNewlines) == "48000,1,16", "the cut below assumes 48 kHz 16-bit mono: \(header)")
        let between = 44 + 96_000 * 7   // 7 s of samples after the 44-byte header sox writes
        let cut = try Self.timedPredict(producer: "head -c \(between + 1) '\(clip)'", arguments: "-")
        let whole = try Self.timedPredict(producer: "head -c \(between) '\(clip)'", arguments: "-")
        #expect(cut.result.status == 0 && whole.result.status == 0, "\(cut.result.stderr)\n\(whole.result.stderr)")
        #expect(cut.lines.count >= 3 && cut.lines.count == whole.lines.count, "\(cut.lines.count) windows, \(whole.lines.count) without the half sample")
        let windows = { (lines: [Line]) in lines.map { [$0.object["start"] as? Double, $0.object["end"] as? Double] } }
        #expect(windows(cut.lines) == windows(whole.lines))
        try Self.checkWindows(cut.lines, input: "-")
    }

    /// Standard input redirected from an mp4 whose index comes after its data (ffmpeg's default layout)
    /// is read as the file it is, so it can be streamed, as predict advises for a recording too long to read whole.
    @Test func anMP4WithItsIndexAtTheEndIsReadFromARedirectedStandardInput() throws {
        let (run, clip) = try Self.trained.get()
        let mp4 = try TestSupport.temporaryFolder("index-last") + "/index-last.mp4"
        // Six times the clip: long enough that FFmpeg's pipe buffer cannot hold the data it must read past.
        try TestSupport.shell("ffmpeg -nostdin -v error -stream_loop 5 -i '\(clip)' -c:a aac '\(mp4)'")
        let layout = try TestSupport.shell("python3 -c \"d=open('\(mp4)','rb').read(); print(d.find(b'moov') > d.find(b'mdat'))\"")
        #expect(layout.hasPrefix("True"), "the index comes after the data")
        let streamed = try TestSupport.run("/bin/bash", ["-c", "'\(TestSupport.emopipe)' predict --run '\(run)' --json - < '\(mp4)'"])
        #expect(streamed.status == 0, "\(streamed.stderr)")
        let windows = streamed.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let file = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json", mp4])
        let timeline = (try JSONSerialization.jsonObject(with: Data(file.stdout.utf8)) as? [[String: Any]])?.first?["timeline"] as? [Any]
        #expect(timeline?.count ?? 0 > 50 && windows.count == timeline?.count, "stream: \(windows.count) windows, file: \(timeline?.count ?? -1)")
        // Through a pipe it cannot be read; the refusal says why and what to do.
        let piped = try TestSupport.run("/bin/bash", ["-c", "cat '\(mp4)' | '\(TestSupport.emopipe)' predict --run '\(run)' -"])
        #expect(piped.status == 1 && piped.stderr.contains("if its index comes after its data (ffmpeg's default), an mp4 cannot be read through a pipe: redirect the file"),
                "\(piped.stderr)")
    }

    /// A video whose decoder does not open (its pictures claim 65535 × 65535) leaves the audio to be read,
    /// streamed as given as a file, and both say why the faces were not used.
    @Test func aVideoThatCannotBeDecodedLeavesTheAudioToBeScored() throws {
        let (run, _) = try Self.trained.get()
        let mp4 = try TestSupport.temporaryFolder("undecodable-video") + "/huge-pictures.mp4"
        try TestSupport.shell("ffmpeg -nostdin -v error -f lavfi -i testsrc=size=320x240:rate=25:duration=4 -f lavfi -i sine=f=300:duration=4 "
                              + "-c:v libx264 -pix_fmt yuv420p -c:a aac -shortest '\(mp4)'")
        // The avc1 sample entry's width and height, 28 bytes after its type (in stsd: ftyp names avc1 too).
        try TestSupport.shell("python3 -c \"p='\(mp4)'; d=bytearray(open(p,'rb').read()); i=d.find(b'avc1', d.find(b'stsd'))+28; d[i:i+4]=b'\\xff\\xff\\xff\\xff'; open(p,'wb').write(d)\"")
        let streamed = try TestSupport.run("/bin/bash", ["-c", "'\(TestSupport.emopipe)' predict --run '\(run)' --json - < '\(mp4)'"])
        #expect(streamed.status == 0 && streamed.stderr.contains("the stream's video cannot be decoded ("), "\(streamed.stderr)")
        let windows = streamed.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!windows.isEmpty && windows.allSatisfy { $0["modalities"] as? [String] == ["audio"] }, "\(streamed.stdout)")
        let file = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json", mp4])
        // The face error's sentence is a clause of the line: no capital after the bracket, no full stop before its end.
        #expect(file.status == 0 && file.stderr.contains("\(mp4): the pictures could not be read (the video could not be decoded: pictures of 65535 × 65535 pixels")
                && !file.stderr.contains(".); answered"), "\(file.stderr)")
        let answer = try #require((try JSONSerialization.jsonObject(with: Data(file.stdout.utf8)) as? [[String: Any]])?.first)
        #expect(answer["modalities"] as? [String] == ["audio"] && answer["video_error"] is String, "\(answer)")
        // Cut short inside its index, an mp4 shows FFmpeg no stream at all: said so, not "no audio track, no video track".
        let cut = (mp4 as NSString).deletingLastPathComponent + "/cut.mp4"
        try TestSupport.shell("ffmpeg -nostdin -v error -f lavfi -i sine=f=300:duration=3 -c:a aac -movflags +faststart '\(cut).whole.mp4' && head -c 300 '\(cut).whole.mp4' > '\(cut)'")
        let refused = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, cut])
        #expect(refused.status == 3 && refused.stderr.contains("\(cut): nothing to predict from: no audio or video stream FFmpeg can find (a file cut short?)\n"),
                "\(refused.stderr)")
        // Without sound, and no face in its pictures: the line names the file once, not again before its video's error.
        let mute = (mp4 as NSString).deletingLastPathComponent + "/mute.mp4"
        try TestSupport.shell("ffmpeg -nostdin -v error -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -c:v libx264 -pix_fmt yuv420p '\(mute)'")
        let nothing = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, mute])
        #expect(nothing.status == 3 && nothing.stderr.contains("emopipe: \(mute): nothing to predict from: no audio track, no face was found in any sampled frame of the clip"),
                "\(nothing.stderr)")
    }

    @Test func aPipeWrittenInRealTimeGetsEachWindowBeforeTheStreamEnds() throws {
        let (_, clip) = try Self.trained.get()
        let python = try #require(TestSupport.python ?? TestSupport.executable(named: "python3"), "needs python3 to note when the stream's bytes pass")
        let folder = try TestSupport.temporaryFolder("pipe")
        // Passes ffmpeg's bytes on unchanged, noting when each chunk went on: latency is counted from there.
        let relay = "import sys, time\nlog = open(sys.argv[1], 'w')\ntotal = 0\nwhile True:\n    b = sys.stdin.buffer.read1(65536)\n    if not b: break\n    sys.stdout.buffer.write(b); sys.stdout.buffer.flush()\n    total += len(b)\n    log.write('%d %r\\n' % (total, time.time())); log.flush()\n"
        try relay.write(toFile: folder + "/relay.py", atomically: true, encoding: .utf8)
        let timed = try Self.timedPredict(producer: "ffmpeg -nostdin -loglevel error -re -i '\(clip)' -c:a copy -f wav - | '\(python)' '\(folder)/relay.py' '\(folder)/sent'",
                                          arguments: "-")
        #expect(timed.result.status == 0, "\(timed.result.stderr)")
        #expect(timed.result.stderr.contains("running statistics"), "stderr says what a stream is normalised with: \(timed.result.stderr)")
        let windows = try Self.fileWindows()
        #expect(windows.count >= 5)
        let streamed = timed.lines.map { ($0.object["start"] as? Double ?? -1, $0.object["end"] as? Double ?? -1) }
        #expect(streamed.map(\.0) == windows.map(\.0), "a stream of the file gets the file's windows")
        // Times are given to the microsecond (201 frames of 10 ms read 2.01, not 2.0100000000000002).
        #expect((streamed.flatMap { [$0.0, $0.1] } + windows.flatMap { [$0.0, $0.1] }).allSatisfy { ($0 * 1e6).rounded() / 1e6 == $0 },
                "\(streamed) \(windows)")
        #expect(zip(streamed, windows).allSatisfy { abs($0.1 - $1.1) < 0.011 })
        try Self.checkWindows(timed.lines, input: "-")
        let first = try #require(timed.lines.first)
        #expect(first.arrived < timed.producerEnded - 2, "the first window is printed while the stream is still playing")
        #expect(timed.lines.filter { $0.arrived < timed.producerEnded }.count >= windows.count - 2)
        try Self.reportLatency("pipe (ffmpeg -re)", timed.lines, sentLog: folder + "/sent", started: timed.started)
    }

    @Test func anHTTPStreamFromALocalServerIsScoredAsItArrives() throws {
        let python = try #require(TestSupport.python ?? TestSupport.executable(named: "python3"), "needs python3 for the HTTP server")
        let (_, clip) = try Self.trained.get()
        let folder = try TestSupport.temporaryFolder("http")
        // Sends the clip's bytes at its playing pace (16-bit PCM), without a length, as a live source would.
        let server = """
        import http.server, os, sys, time
        clip, port_file = sys.argv[1], sys.argv[2]
        class Live(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.end_headers()
                data = open(clip, "rb").read()
                rate = 48000 * 2
                start = time.time()
                log = open(port_file + ".sent", "w")
                for i in range(0, len(data), rate // 10):
                    self.wfile.write(data[i:i + rate // 10])
                    self.wfile.flush()
                    log.write("%d %r\\n" % (min(len(data), i + rate // 10), time.time())); log.flush()
                    time.sleep(max(0, start + (i + rate // 10) / rate - time.time()))
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Live)
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(port_file + ".tmp", port_file)
        server.handle_request()
        """
        try server.write(toFile: folder + "/server.py", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [folder + "/server.py", clip, folder + "/port"]
        try process.run()
        defer { if process.isRunning { process.terminate() }; process.waitUntilExit() }
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: folder + "/port"), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let port = try String(contentsOfFile: folder + "/port", encoding: .utf8)
        let url = "http://127.0.0.1:\(port)/live.wav"
        let timed = try Self.timedPredict(producer: "true", arguments: "'\(url)'")
        let ended = Date().timeIntervalSince1970
        #expect(timed.result.status == 0, "\(timed.result.stderr)")
        #expect(timed.result.stderr.contains("the stream broke off"), "a server closing a stream of unknown length ends it, said: \(timed.result.stderr)")
        let windows = try Self.fileWindows()
        #expect(timed.lines.map { $0.object["start"] as? Double ?? -1 } == windows.map(\.0))
        try Self.checkWindows(timed.lines, input: url)
        let first = try #require(timed.lines.first)
        #expect(first.arrived < ended - 2, "the first window is printed while the server is still sending")
        try Self.reportLatency("http (127.0.0.1)", timed.lines, sentLog: folder + "/port.sent", started: timed.started)
    }

    /// SIGHUP (a terminal closing) too: it killed the process (129) before.
    @Test(arguments: [SIGINT, SIGHUP])
    func aSignalStopsReadingAndKeepsTheWindowsPrinted(_ sig: Int32) throws {
        let (run, clip) = try Self.trained.get()
        let folder = try TestSupport.temporaryFolder("signal-\(sig)")
        let pipe = Pipe()
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: try #require(TestSupport.executable(named: "ffmpeg")))
        ffmpeg.arguments = ["-nostdin", "-loglevel", "error", "-re", "-i", clip, "-f", "wav", "-"]
        ffmpeg.standardOutput = pipe
        let predict = Process()
        predict.executableURL = URL(fileURLWithPath: TestSupport.emopipe)
        predict.arguments = ["predict", "--run", run, "--json", "-"]
        predict.standardInput = pipe
        try #require(FileManager.default.createFile(atPath: folder + "/out", contents: nil))
        try #require(FileManager.default.createFile(atPath: folder + "/err", contents: nil))
        predict.standardOutput = FileHandle(forWritingAtPath: folder + "/out")
        predict.standardError = FileHandle(forWritingAtPath: folder + "/err")
        try ffmpeg.run()
        try predict.run()
        defer { if ffmpeg.isRunning { ffmpeg.terminate() }; ffmpeg.waitUntilExit() }
        let deadline = Date().addingTimeInterval(60)
        func printed() -> String { (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? "" }
        while !printed().contains("\n"), predict.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let sent = Date()
        kill(predict.processIdentifier, sig)
        predict.waitUntilExit()
        #expect(Date().timeIntervalSince(sent) < 3, "signal \(sig) stops reading at once")
        #expect(predict.terminationReason == .exit && predict.terminationStatus == ExitStatus.interrupted)
        let lines = printed().split(separator: "\n")
        #expect(!lines.isEmpty && lines.count < 5, "stopped after the first windows")
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] }, "every printed line is whole")
        let stderr = (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? ""
        #expect(stderr.contains("-: stopped after"), "\(stderr)")
    }

    @Test func aDeviceOpenedByFormatIsAStream() throws {
        let (run, _) = try Self.trained.get()
        let result = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--format", "lavfi", "sine=frequency=220:sample_rate=16000:duration=4.5"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n")
        #expect(rows.count == 3, "4.5 s: windows at 0 and 1 s, and one ending at the last frame: \(result.stdout)")
        #expect(rows.first?.contains("0.00–    3.00 s") == true, "\(result.stdout)")
        #expect(result.stderr.contains("the mean of its 3 windows says"), "\(result.stderr)")
    }

    /// A file whose name reads like a stream (`pipe:0.wav`, a folder `http:`) is the file the user named:
    /// answered as that file, not by waiting on standard input; a name that is no file stays a stream.
    @Test func aFileNamedLikeAStreamIsReadAsThatFile() throws {
        let (run, clip) = try Self.trained.get()
        let folder = try TestSupport.temporaryFolder("stream-like-names")
        try FileManager.default.createDirectory(atPath: folder + "/http:", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: clip, toPath: folder + "/pipe:0.wav")
        try FileManager.default.copyItem(atPath: clip, toPath: folder + "/http:/x.wav")
        let original = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json", clip])
        let label = { (stdout: String) in
            ((try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [[String: Any]])?.first?["probabilities"] as? [String: Double]
        }
        #expect(original.status == 0 && label(original.stdout) != nil, "\(original.stderr)")
        for name in ["pipe:0.wav", "http://x.wav"] {
            // Standard input is a pipe that stays open and silent: were it read, this would wait for it.
            let named = try TestSupport.run("/bin/bash", ["-c", "sleep 30 | timeout 25 '\(TestSupport.emopipe)' predict --run '\(run)' --json '\(name)'"],
                                            currentDirectory: folder)
            #expect(named.status == 0, "\(name): \(named.stderr)")
            #expect(label(named.stdout) == label(original.stdout), "\(name): \(named.stdout.prefix(300))")
        }
        let absent = try TestSupport.run("/bin/bash", ["-c", "'\(TestSupport.emopipe)' predict --run '\(run)' pipe:0.wav < /dev/null"],
                                         currentDirectory: try TestSupport.temporaryFolder("no-such-file"))
        #expect(absent.status != 0 && absent.stderr.contains("pipe:0.wav"), "no such file: still a stream (standard input, here empty): \(absent.stderr)")
    }

    /// A stream's name can be a kilobytes-long lavfi graph or URL: every message shows its head and its length.
    @Test func aLongStreamNameIsShownCut() throws {
        let (run, _) = try Self.trained.get()
        let graph = "sine=frequency=220:sample_rate=16000:duration=3.5" + String(repeating: ",volume=1", count: 300)
        let scored = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--format", "lavfi", graph])
        #expect(scored.status == 0, "\(scored.stderr.prefix(2000))")
        let lines = scored.stderr.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.count < 1000 && $0.contains("… (\(graph.count) characters)") }, "\(scored.stderr.prefix(2000))")
        let broken = String(repeating: "volume=1,", count: 300) + "no_such_filter"
        let refused = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--format", "lavfi", broken])
        #expect(refused.status != 0 && refused.stderr.count < 1000 && refused.stderr.contains("… (\(broken.count) characters)"), "\(refused.stderr.prefix(2000))")
        // FFmpeg's own message, which quotes the filter it does not know, is escaped and cut too (5 KB came back whole).
        let unknown = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--format", "lavfi",
                                                                 String(repeating: "\u{1}", count: 900) + String(repeating: "z", count: 2000)])
        #expect(unknown.status == 1 && unknown.stderr.split(separator: "\n").allSatisfy { $0.utf8.count < 1000 }
                && !unknown.stderr.unicodeScalars.contains("\u{1}"), "\(unknown.stderr.prefix(3000))")
        // An empty stream's refusal too (the scorer's own messages named the input whole).
        let empty = "aevalsrc=0:d=0" + String(repeating: ",volume=1", count: 300)
        let ended = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--format", "lavfi", empty])
        let endedLines = ended.stderr.split(separator: "\n")
        #expect(ended.status == 1 && endedLines.contains { $0.hasSuffix("the stream ended before any audio arrived") }
                && endedLines.allSatisfy { $0.count < 1000 }, "\(ended.stderr.prefix(3000))")
    }

    @Test func inputsThatCannotBeScoredAreNamedWithoutATrapOrAHang() throws {
        let (run, clip) = try Self.trained.get()
        let emopipe = "'\(TestSupport.emopipe)' predict --run '\(run)'"
        let cases: [(label: String, command: String, status: Int32, says: String)] = [
            ("nothing listens", "\(emopipe) --timeout 5 http://127.0.0.1:9/nothing.wav", 1, "http://127.0.0.1:9/nothing.wav: cannot be read"),
            ("garbage on the pipe", "head -c 300000 /dev/urandom | \(emopipe) -", 1, "-: "),
            // The model has a face branch: a stream without audio is read for faces, and testsrc has none.
            ("a stream without audio or a face", "ffmpeg -nostdin -loglevel error -f lavfi -i testsrc=duration=1:rate=5 -f nut - | \(emopipe) -", 3, "none of its 1 window had a sound or a face to score"),
            // Digital silence has no level to floor against: file mode refuses it as all zero, a stream skips it.
            ("digital silence", "ffmpeg -nostdin -loglevel error -f lavfi -i anullsrc=r=16000:cl=mono -t 5 -f wav - | \(emopipe) -", 3,
             "none of its 4 windows had a sound or a face to score"),
            // A lone least-significant bit in silence is below the log-mel's floor: refused as a file (inaudible), skipped as a stream.
            ("one LSB in silence", "python3 -c \"import sys,struct,wave; w=wave.open(sys.stdout.buffer,'wb'); w.setnchannels(1); w.setsampwidth(2); "
             + "w.setframerate(16000); s=[0]*64000; s[32000]=1; w.writeframes(struct.pack('<64000h',*s))\" | \(emopipe) -", 3,
             "none of its 3 windows had a sound or a face to score"),
            ("no such format", "\(emopipe) --format no-such-device x", 64, "no input format or device named \"no-such-device\""),
            ("a stream with files", "\(emopipe) - '\(clip)'", 64, "is a stream: give it alone"),
            // Nothing at all to read is said so (it was "Invalid data found", exit 1), as a closed standard input is.
            ("/dev/null", "\(emopipe) - < /dev/null", 64, "-: standard input is /dev/null: there is nothing to read"),
            ("a pipe that ends at once", "true | \(emopipe) -", 1, "-: "),
        ]
        for c in cases {
            let started = Date()
            let result = try TestSupport.run("/bin/bash", ["-c", c.command])
            #expect(result.status == c.status && !result.signaled, "\(c.label): status \(result.status): \(result.stderr)")
            #expect(result.stderr.contains(c.says), "\(c.label): \(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 60, "\(c.label) took \(Date().timeIntervalSince(started)) s")
        }
    }

    @Test func aJumpInAVideoStreamsTimeSkipsItsEmptyWindowsInOneStep() throws {
        let (run, _) = try Self.trained.get()
        // Two MPEG-TS segments, the second an hour later: 3,600 windows fall in the gap. Each used to be
        // visited, scored and said one hop at a time (a hang for a jump of 1e8 s).
        let segment = "ffmpeg -nostdin -loglevel error -f lavfi -i testsrc=duration=1:rate=5:size=160x120"
        let command = "(\(segment) -f mpegts -; \(segment) -output_ts_offset 3600 -f mpegts -) | '\(TestSupport.emopipe)' predict --run '\(run)' -"
        let started = Date()
        let result = try TestSupport.run("/bin/bash", ["-c", command])
        let seconds = Date().timeIntervalSince(started)
        #expect(!result.signaled && result.status == ExitStatus.partial, "status \(result.status): \(result.stderr)")
        let notes = result.stderr.split(separator: "\n").filter { $0.contains("not scored") }
        // The gap is one skipped span, within the stretch of skipped windows that the stream's faceless
        // pictures make: its first window is said, then one line counts the rest, to past the hour.
        #expect(notes.count == 2, "one stretch of skipped windows, said in two lines: \(notes)")
        let reached = notes.last.flatMap { line -> Double? in
            guard let range = line.range(of: ", to ") else { return nil }
            return Double(line[range.upperBound...].prefix { $0 != " " })
        }
        #expect((reached ?? 0) > 3600, "the stretch runs past the hour's gap: \(notes)")
        // The count at the end is of windows, not of the calls that skipped them (the gap is one call).
        #expect(result.stderr.range(of: #"none of its [0-9]{4,} windows had a sound or a face"#, options: .regularExpression) != nil, "\(result.stderr)")
        #expect(seconds < 60, "took \(seconds) s")
    }

    /// RAVDESS's real audio-video clip (a face in every frame), looped three times (~10 s).
    static let avProducer = "ffmpeg -nostdin -loglevel error -re -stream_loop 2 -i '\(TestSupport.sharedData)/av-original/Actor_01/01-01-01-01-01-01-01.mp4' -c copy -f matroska -"

    @Test func aPipeWithVideoIsScoredOnAudioAndFacesAsItArrives() throws {
        let timed = try Self.timedPredict(producer: Self.avProducer, arguments: "-")
        #expect(timed.result.status == 0, "\(timed.result.stderr)")
        #expect(timed.result.stderr.contains("as the audio and faces arrive"), "stderr says what is read: \(timed.result.stderr)")
        #expect(timed.lines.count >= 7, "~10 s: windows at 0...7 s and the tail: \(timed.lines.count)")
        let starts = timed.lines.map { $0.object["start"] as? Double ?? -1 }
        #expect(Array(starts.prefix(7)) == [0, 1, 2, 3, 4, 5, 6], "windows every second, in order: \(starts)")
        for line in timed.lines {
            #expect(line.object["modalities"] as? [String] == ["audio", "faces"], "\(line.object)")
            let found = try #require(line.object["faces_found"] as? Int)
            #expect((1...8).contains(found), "the detector found the face in the window's pictures: \(found)")
            let probabilities = try #require(line.object["probabilities"] as? [String: Double])
            #expect(probabilities.count == 8 && abs(probabilities.values.reduce(0, +) - 1) < 1e-3)
        }
        let first = try #require(timed.lines.first)
        #expect(first.arrived < timed.producerEnded - 2, "the first window is printed while the stream is still playing")
        print("stream-predict: audio+faces pipe (ffmpeg -re, matroska): first window (ends at 3.00 s) printed "
              + String(format: "%.2f", first.arrived - timed.started) + " s after the start; windows printed before the stream ended: "
              + "\(timed.lines.filter { $0.arrived < timed.producerEnded }.count) of \(timed.lines.count)")
    }

    /// Pictures that run on past the audio (a 30 s video, its 3.3 s sound) are not let into the windows' place: the
    /// last window, scored when the stream ends, kept its pictures (the newest ones used to push them out).
    @Test func aVideoThatOutlastsItsAudioLeavesTheLastWindowItsFaces() throws {
        let clip = "'\(TestSupport.sharedData)/av-original/Actor_01/01-01-01-01-01-01-01.mp4'"
        let producer = "ffmpeg -nostdin -loglevel error -stream_loop 8 -i \(clip) -i \(clip) -map 0:v -map 1:a -t 30 -c copy -f matroska -"
        let timed = try Self.timedPredict(producer: producer, arguments: "-")
        #expect(timed.result.status == 0, "\(timed.result.stderr)")
        let ends = timed.lines.map { $0.object["end"] as? Double ?? -1 }
        #expect(timed.lines.count == 2 && abs((ends.last ?? 0) - 3.33) < 0.05, "the audio's windows, 0-3 s and the tail: \(ends)")
        for line in timed.lines {
            #expect(line.object["modalities"] as? [String] == ["audio", "faces"], "\(line.object)")
            #expect((1...8).contains(line.object["faces_found"] as? Int ?? 0), "\(line.object)")
        }
    }

    @Test func aStreamWithoutAudioIsScoredOnFacesAlone() throws {
        let producer = Self.avProducer.replacingOccurrences(of: "-c copy", with: "-an -c copy")
        let timed = try Self.timedPredict(producer: producer, arguments: "-")
        #expect(timed.result.status == 0, "\(timed.result.stderr)")
        #expect(timed.result.stderr.contains("as the faces arrive"), "\(timed.result.stderr)")
        #expect(timed.lines.count >= 7)
        for line in timed.lines {
            #expect(line.object["modalities"] as? [String] == ["faces"], "\(line.object)")
            #expect(line.object["speaker"] == nil, "no audio, no running statistics")
        }
        let first = try #require(timed.lines.first)
        #expect(first.arrived < timed.producerEnded - 2, "windows are timed by the pictures as they arrive")
    }

    @Test func aVideoDeviceWithoutAFaceSkipsItsWindowsAndSaysSo() throws {
        let (run, _) = try Self.trained.get()
        let result = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json", "--format", "lavfi", "testsrc=duration=4.5:rate=10:size=320x240"])
        #expect(!result.signaled && result.status == ExitStatus.partial, "status \(result.status): \(result.stderr)")
        #expect(result.stdout.isEmpty, "no window is printed without something to score: \(result.stdout)")
        let skipped = result.stderr.split(separator: "\n").filter { $0.contains("no face in its pictures and no audio (or only silence so far): not scored") }
        #expect(skipped.count == 1, "4.5 s: windows at 0 and 1 s and the tail, one stretch: \(result.stderr)")
        #expect(result.stderr.contains("2 more windows, to 4.40 s, not scored either"), "the last picture is at 4.4 s: \(result.stderr)")
        #expect(result.stderr.contains("none of its 3 windows had a sound or a face to score"), "\(result.stderr)")

        // The same pictures with a sound: every window is scored on the audio, and says no face was found.
        let both = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", run, "--json", "--format", "lavfi",
                                                             "testsrc=duration=4.5:rate=10:size=320x240[out0];sine=duration=4.5:sample_rate=16000[out1]"])
        #expect(both.status == 0, "\(both.stderr)")
        let windows = try both.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(windows.count == 3, "\(both.stdout)")
        for w in windows {
            #expect(w["modalities"] as? [String] == ["audio"] && w["faces_found"] as? Int == 0, "\(w)")
        }
        #expect(both.stderr.contains("(0 with a face)"), "\(both.stderr)")
    }

    /// A command with nothing of its own to stop (predict waiting for its list, `status`, `cache gc`), or any before it
    /// traps the stop signals, ends with 130 on SIGTERM or SIGHUP, as documented: it was killed by the signal (143, 129).
    /// Under nohup SIGHUP stays ignored.
    @Test func aStopSignalBeforeAnyWorkEndsWith130() throws {
        for (sig, underNohup) in [(SIGTERM, false), (SIGHUP, false), (SIGHUP, true)] {
            let run = try Self.trained.get().run
            let command = "exec \(underNohup ? "nohup " : "")'\(TestSupport.emopipe)' predict --run '\(run)' --files-from - < <(sleep 8 2>/dev/null)"
            let waiting = try TestSupport.Background("/bin/bash", ["-c", command])
            // Signalled once the process is emopipe (bash has exec'd it) and catches SIGTERM (its handler installed), as /proc says.
            let caught = (0..<400).contains { _ in
                let status = (try? String(contentsOfFile: "/proc/\(waiting.pid)/status", encoding: .utf8)) ?? ""
                if status.contains("Name:\temopipe") && TestSupport.handles(SIGTERM, pid: waiting.pid, ignored: false) { return true }
                usleep(25_000)
                return false
            }
            #expect(caught, "emopipe never caught SIGTERM")
            #expect(kill(waiting.pid, sig) == 0)
            if underNohup {
                usleep(300_000)
                #expect(kill(waiting.pid, 0) == 0, "SIGHUP under nohup is ignored")
                #expect(kill(waiting.pid, SIGTERM) == 0)
            }
            // (Without the signal, the list ending empty is exit 64.)
            #expect(waiting.wait() == ExitStatus.interrupted, "signal \(sig), nohup \(underNohup): \(waiting.stderr)")
        }
    }
}
