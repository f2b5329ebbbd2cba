import ArgumentParser
import EmoCore
import EmoMedia
import EmoModel
import EmoPipeline
import EmoStages
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `emopipe predict` on one stream: windows printed as they are scored (JSON Lines with --json).
extension PredictCommand {
    /// Whether the inputs name a stream (standard input, a URL, or anything opened with --format).
    var streamInput: String? {
        if format != nil { return files.first }
        return files.first(where: LiveSource.isStream)
    }

    func runStream(_ input: String, predictor: Predictor) throws {
        let scorer = try StreamPredictor(predictor: predictor, input: input)
        let named = scorer.named
        StreamInterrupts.install()
        let source = LiveSource(name: input, format: format, openTimeoutSeconds: timeout, readTimeoutSeconds: timeout)
        // A skipped window is said once per stretch of them (an hour of silence is two lines, not 3,600).
        let stretch = SkippedStretch()
        let closeStretch = {
            guard let (more, end) = stretch.close(), more > 0 else { return }
            note("\(named): \(more) more window\(more == 1 ? "" : "s"), to \(String(format: "%.2f", end)) s, not scored either")
        }
        let emit: (StreamPredictor.Window) -> Void = { window in closeStretch(); writeWindow(window) }
        scorer.skipped = { start, end in
            guard stretch.add(end: end, skippedSoFar: scorer.windowsSkipped) else { return }
            let why = scorer.reading.contains(.faces) ? "no face in its pictures and no audio (or only silence so far)"
                                                      : "only silence so far (nothing above audio.db_amin, as a file of it is refused)"
            note("\(named): \(String(format: "%.2f–%.2f", start, end)) s: \(why): not scored")
        }
        let end = try LiveAudio.read(source, sampleRate: scorer.sampleRate, wanted: scorer.wanted,
                                     stop: { StreamInterrupts.requested || scorer.failure != nil },
                                     started: { streams in
                                         scorer.begin(streams)
                                         if scorer.failure == nil { note(describe(predictor: predictor, scorer: scorer, named: named)) }
                                     },
                                     deliver: { samples in scorer.take(samples, emit: emit) },
                                     picture: { picture in scorer.take(picture, emit: emit) })
        if end == .stopped, scorer.failure == nil {
            closeStretch()
            note("\(named): stopped after \(String(format: "%.2f", scorer.receivedSeconds)) s, \(scorer.windowsScored) window\(scorer.windowsScored == 1 ? "" : "s") scored")
            throw ExitCode(ExitStatus.interrupted)
        }
        if case .brokenOff(let reason) = end {
            note("\(named): the stream broke off (\(reason)); scoring what arrived")
        }
        defer { closeStretch() }   // said also when finishing fails
        try scorer.finish(emit: emit)
        closeStretch()
        guard scorer.windowsScored > 0 else {
            note("\(named): ended after \(String(format: "%.2f", scorer.receivedSeconds)) s; none of its \(scorer.windowsSkipped) window\(scorer.windowsSkipped == 1 ? "" : "s") had a sound or a face to score")
            throw ExitCode(ExitStatus.partial)
        }
        let mean = scorer.meanProbabilities
        let label = mean.max { $0.value < $1.value }?.key ?? "?"
        let faces = scorer.reading.contains(.faces) ? " (\(scorer.windowsWithFaces) with a face)" : ""
        note("\(named): ended after \(String(format: "%.2f", scorer.receivedSeconds)) s; the mean of its \(scorer.windowsScored) window\(scorer.windowsScored == 1 ? "" : "s")\(faces) says \(label)")
    }

    /// What the windows are computed from, said once on stderr before the first.
    private func describe(predictor: Predictor, scorer: StreamPredictor, named: String) -> String {
        let reading = scorer.reading.map(\.rawValue).joined(separator: " and ")
        var parts = ["\(named): scoring windows of \(String(format: "%.2f", predictor.windowSeconds)) s every \(String(format: "%.2f", predictor.hopSeconds)) s as the \(reading) arrive\(scorer.reading == [.audio] ? "s" : "")"]
        if predictor.groupsSpeakers, scorer.reading.contains(.audio) {
            parts.append("this model normalises log-mels by speaker: a stream uses running statistics of its audio so far"
                         + (predictor.speakerPrior == nil ? "" : ", blended with its training actors' as if \(Int(SpeakerPrior.seconds)) s of their speech came first"))
        }
        if scorer.reading.contains(.faces) {
            parts.append("each window's faces are \(predictor.faceFrames) pictures spread over its span; a window without a face uses \(scorer.reading.contains(.audio) ? "the audio only" : "nothing and is skipped")")
        } else if predictor.looksAtFaces {
            parts.append(scorer.videoProblem.map { "the stream's video cannot be decoded (\($0)): each window uses the audio only" }
                         ?? "the stream has no video: each window uses the audio only")
        }
        return parts.joined(separator: "; ")
    }

    private func writeWindow(_ window: StreamPredictor.Window) {
        if json {
            // One object per line, written at once (no buffering) so a reader sees it as soon as it is known.
            guard let data = try? JSONOutput.encoder().encode(window) else {
                StandardStream.error.write(Data(String(format: "emopipe: %@: the window %.2f–%.2f s has probabilities JSON cannot hold (not finite); not written\n",
                                                           window.input.echoed, window.start, window.end).utf8))
                return
            }
            StandardStream.output.write(data + Data("\n".utf8))
        } else {
            let top = window.probabilities.sorted { $0.value > $1.value }.prefix(3)
                .map { String(format: "%@ %.2f", $0.key.escaped, $0.value) }.joined(separator: ", ")
            StandardStream.output.write(Data(String(format: "%8.2f–%8.2f s  %@ (%@)\n", window.start, window.end, window.label.escaped, top).utf8))
        }
    }

    private func note(_ message: String) {
        StandardStream.error.write(Data("emopipe: \(message.escaped)\n".utf8))
    }
}

/// Consecutive windows a stream skipped: the first span is said, the windows after it counted until a
/// window is scored. (One span can hold many windows: a jump in a stream's time skips them in one step.)
private final class SkippedStretch {
    /// The stream's count of skipped windows once the stretch's first span was said.
    private var first: Int?
    private var last = 0
    private var end = 0.0

    /// Adds a skipped span, `skippedSoFar` being the stream's count with it; true when it starts a stretch.
    func add(end: Double, skippedSoFar: Int) -> Bool {
        last = skippedSoFar
        self.end = end
        guard first == nil else { return false }
        first = skippedSoFar
        return true
    }

    /// Ends the stretch: how many windows came after its first span, and where the last ended.
    func close() -> (Int, Double)? {
        defer { first = nil }
        guard let first else { return nil }
        return (last - first, end)
    }
}

/// SIGINT, SIGTERM and SIGHUP while a stream is read: the first asks reading to stop (the windows scored so far
/// stay printed; exit 130), a second SIGINT or SIGTERM stops at once. A handler without SA_RESTART, so that a read blocked
/// on a silent pipe returns (EINTR) and FFmpeg's interrupt callback sees the request; a signal that
/// lands on another thread (the BLAS pools) is passed on to the reading one, whose read must return.
enum StreamInterrupts {
    static var requested: Bool { streamInterruptCount.load(ordering: .relaxed) > 0 }

    /// Call on the thread that reads the stream.
    static func install() {
        streamReaderThread.store(UInt(pthread_self()), ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            let reader = streamReaderThread.load(ordering: .relaxed)
            if reader != 0, UInt(pthread_self()) != reader {
                pthread_kill(pthread_t(reader), signal)
                return
            }
            // A closing terminal sends SIGHUP twice, and the CPU-time limit SIGXCPU every second: neither forces the
            // exit, so the windows so far are printed.
            if streamInterruptCount.wrappingAdd(1, ordering: .relaxed).newValue > 1, signal != SIGHUP, signal != SIGXCPU { _exit(ExitStatus.interrupted) }
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        // SIGHUP (the terminal closed) too, unless ignored (under nohup), as for a run.
        let trapped = SignalTrap.stopSignals()
        var wanted = sigset_t()
        sigemptyset(&wanted)
        for sig in trapped {
            sigaction(sig, &action, nil)
            sigaddset(&wanted, sig)
        }
        // A parent may have started us with them blocked (a test runner's Process does): they would wait unseen.
        pthread_sigmask(SIG_UNBLOCK, &wanted, nil)
    }
}

private let streamInterruptCount = Atomic<Int>(0)
private let streamReaderThread = Atomic<UInt>(0)
