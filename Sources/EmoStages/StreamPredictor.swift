import EmoCore
import EmoFeatures
import EmoMedia
import EmoModel
import EmoPipeline
import Foundation

/// Predictions on media that arrives over time (a pipe, a URL, a capture device), window by window as
/// soon as each window is in, under the model's window policy: windows of the model's length every hop
/// frames from the stream's start, and at the end of the stream one more ending at its last frame when
/// the stride leaves a tail (a stream shorter than one window is one padded window). So a stream of a
/// file gets the file's windows.
///
/// What a whole file gives and a stream cannot, a stream takes from its part received so far:
/// - the top_db floor is measured from the loudest bin so far;
/// - a speaker-normalised model gets each band's mean and deviation over every frame so far
///   (floored as it arrived): running statistics of the one voice a stream is taken to carry, blended
///   with the training actors' as predict blends a file's (`SpeakerPrior`).
///
/// A model with a face branch also reads the stream's video: each window gets K face crops sampled
/// over its own span (`StreamFaceSampler` says how), and the modality mask says whether it has a face.
/// Audio sets the pace when the stream has it (a window waits for its pictures, at most
/// `pictureLagSeconds` past its audio); a stream without audio, or a model without an audio branch,
/// is scored on faces alone, windows timed by the pictures.
public final class StreamPredictor: @unchecked Sendable {
    /// The stretch of the stream whose statistics normalised a window (speaker-normalised models).
    public struct RunningSpeaker: Codable, Equatable, Sendable {
        /// Always "stream so far".
        public var name: String
        /// Seconds of audio the statistics cover, from the stream's start.
        public var seconds: Double
        /// `blended` with the training actors' statistics, as predict blends files' (`given`: the stream's alone,
        /// for a run folder without `speakers.json`).
        public var statistics: Predictor.SpeakerGroup.Statistics
    }

    /// One scored window, printed as soon as it is known.
    public struct Window: Codable, Equatable, Sendable {
        public var input: String
        public var start: Double
        public var end: Double
        public var label: String
        public var probabilities: [String: Double]
        /// What the answer used: [audio], [faces] or [audio, faces].
        public var modalities: [ModelConfig.Modality]
        public var speaker: RunningSpeaker?
        /// When the video is read: of the window's K sampled pictures, how many the detector found a
        /// face in (0: no face, the window is scored without faces).
        public var facesFound: Int?
    }

    /// How long past a window's audio its pictures may still be awaited (a muxer interleaves the
    /// streams only roughly; a video that stalls must not stall the audio's answers).
    public static let pictureLagSeconds = 2.0

    let predictor: Predictor
    let input: String
    /// `input` as messages show it: a lavfi graph or a URL can be kilobytes long.
    public let named: String
    /// The log-mel of the audio, when the model listens and the stream has audio.
    private(set) var mel: LiveLogMel?
    private var faces: StreamFaceSampler?
    let windowFrames: Int, hopFrames: Int
    let secondsPerFrame: Double
    /// Received frames from index `firstStored` on, n_mels dB values each (unfloored).
    private var stored: [[Float]] = []
    private var firstStored = 0
    private var frameCount = 0
    private var nextStart = 0
    private var lastScored: Int?
    private var ended = false
    /// The stream's running statistics (speaker-normalised models).
    private var statistics: SpeakerNormalizer.Accumulator?
    private var silenceBeforeSound: (frame: [Float], count: Int)?
    private var probabilitySums: [Double]
    public private(set) var windowsScored = 0
    public private(set) var windowsWithFaces = 0
    /// Windows with neither audio nor a face (a stream scored on faces alone, nobody in the picture; or
    /// only silence so far (nothing above db_amin), nobody in the picture): not scored, and said with their span to `skipped`.
    public private(set) var windowsSkipped = 0
    public var skipped: (_ start: Double, _ end: Double) -> Void = { _, _ in }
    /// The first error met while taking samples: reading stops at it.
    public private(set) var failure: Error?

    public init(predictor: Predictor, input: String) throws {
        let config = predictor.trained.config
        self.predictor = predictor
        self.input = input
        named = input.echoed
        windowFrames = predictor.policy.frames
        hopFrames = predictor.policy.hopFrames
        secondsPerFrame = Predictor.secondsPerFrame(predictor.logMel)
        statistics = predictor.groupsSpeakers ? SpeakerNormalizer.Accumulator(nMels: config.nMels) : nil
        probabilitySums = [Double](repeating: 0, count: predictor.trained.labels.count)
    }

    /// The streams worth decoding for this model.
    public var wanted: LiveStreams {
        LiveStreams(audio: predictor.inputs.uses(.audio) && predictor.logMel != nil, video: predictor.looksAtFaces)
    }

    /// The input was opened with `streams`: sets up what each is read with, or refuses (as `failure`,
    /// which stops reading) an input with nothing this model can score.
    public func begin(_ streams: LiveStreams) {
        videoProblem = streams.videoProblem
        guarded {
            if streams.audio, let logMel = predictor.logMel { mel = try LiveLogMel(logMel) }
            if streams.video, predictor.looksAtFaces {
                faces = StreamFaceSampler(extractor: try predictor.streamFaceExtractor(input: input), windowFrames: windowFrames,
                                          secondsPerFrame: secondsPerFrame, rotation: streams.rotation)
            }
            guard mel != nil || faces != nil else {
                throw PipelineError.missingData("\(named): this model only looks at faces, and the stream has no video")
            }
        }
    }

    public var sampleRate: Int { predictor.logMel?.sampleRate ?? 16_000 }
    /// Seconds of the stream received: of audio when it has audio, else up to its last picture.
    public var receivedSeconds: Double {
        if let mel { return Double(mel.sampleCount) / Double(sampleRate) }
        return max(0, faces?.last?.time ?? 0)
    }
    /// Why the stream's video is not read although it has one (see `LiveStreams.videoProblem`).
    public private(set) var videoProblem: String?
    /// Which modalities the stream is read for, as the note on stderr says it.
    public var reading: [ModelConfig.Modality] { (mel != nil ? [.audio] : []) + (faces != nil ? [.faces] : []) }
    /// The mean of the scored windows' probabilities (the answer a file of this audio would get).
    public var meanProbabilities: [String: Double] {
        predictor.named(probabilitySums.map { Float($0 / Double(max(1, windowsScored))) })
    }

    /// Takes decoded samples; each window they complete goes to `emit`. After a failure (kept in
    /// `failure`) it takes nothing more.
    public func take(_ samples: UnsafeBufferPointer<Float>, emit: (Window) -> Void) {
        guard failure == nil, let mel else { return }
        guarded {
            try mel.add(samples) { frame in receive(frame) }
            try scoreReadyWindows(emit)
        }
    }

    /// Takes a decoded picture; the windows it completes go to `emit`.
    public func take(_ picture: LiveVideoFrame, emit: (Window) -> Void) {
        guard failure == nil, let faces else { return }
        faces.take(picture)
        guarded { try scoreReadyWindows(emit) }
    }

    private func guarded(_ body: () throws -> Void) {
        do { try body() } catch {
            // Feature and model errors do not know the input's name; the message must.
            failure = error is PipelineError ? error : PipelineError.missingData("\(named): \(error)")
        }
    }

    /// The stream ended: its last frames, and the window ending at its last frame if the stride left a tail.
    public func finish(emit: (Window) -> Void) throws {
        if let failure { throw failure }
        ended = true
        do { try mel?.finish { frame in receive(frame) } } catch {
            throw PipelineError.missingData("\(named): \(error)")
        }
        try scoreReadyWindows(emit)
        let total = clockFrames
        guard total > 0 else {
            throw PipelineError.missingData("\(named): the stream ended before any \(mel != nil ? "audio" : "picture") arrived")
        }
        if lastScored == nil {
            try score(start: 0, count: min(total, windowFrames), atEnd: true).map(emit)
        } else if total > windowFrames, lastScored != total - windowFrames {
            try score(start: total - windowFrames, count: windowFrames, atEnd: true).map(emit)
        }
    }

    /// The stream's length in clock frames: audio frames, or, without audio, frames up to the last picture.
    private var clockFrames: Int {
        if mel != nil { return frameCount }
        guard let time = faces?.last?.time, secondsPerFrame > 0 else { return 0 }
        return Int(min(time / secondsPerFrame, 1e12).rounded(.down)) + 1
    }

    private func receive(_ frame: [Float]) {
        stored.append(frame)
        frameCount += 1
        // Digital silence before the first sound has no floor yet (its dB sits far below any later
        // floor): its frames join the statistics once there is one, floored like a file's. Every such
        // frame is the same (zero power), so one and a count stand for them all, however long.
        guard mel?.heardSound != false else {
            silenceBeforeSound = (frame, (silenceBeforeSound?.count ?? 0) + 1)
            return
        }
        if let silence = silenceBeforeSound {
            statistics?.add(frame: silence.frame, floor: floorDb, times: silence.count)
            silenceBeforeSound = nil
        }
        statistics?.add(frame: frame, floor: floorDb)
    }

    private var floorDb: Float { mel.flatMap { mel in mel.topDb.map { mel.peakDb - $0 } } ?? -Float.infinity }

    private func scoreReadyWindows(_ emit: (Window) -> Void) throws {
        while skipWindowsBeforeTheEarliestPicture(), windowIsReady(at: nextStart) {
            try score(start: nextStart, count: windowFrames, atEnd: false).map(emit)
            // Bounded far below Int.max: frames are counted one by one.
            nextStart += hopFrames
        }
        faces?.forget(before: min(nextStart, max(0, clockFrames - windowFrames)))
        dropFramesNoWindowNeeds()
    }

    /// Without audio, the windows that end before the earliest picture held have nothing to score: a
    /// jump in the stream's timestamps skips them in one step and one note, not one hop at a time.
    /// Always true: it only moves `nextStart` (a condition of the scoring loop, run before each window).
    private func skipWindowsBeforeTheEarliestPicture() -> Bool {
        guard mel == nil, let faces,
              let earliest = faces.earliestHeldGrid(from: faces.firstGrid(ofWindowAt: nextStart)) else { return true }
        // Windows starting at or before this end at or before the earliest picture's grid point.
        let reaching = faces.gridFrame(earliest) - Double(windowFrames)
        guard reaching.isFinite, reaching > Double(nextStart + hopFrames) else { return true }
        let hops = Int(min((reaching - Double(nextStart)) / Double(hopFrames), 1e12).rounded(.down))
        guard hops > 1 else { return true }
        let from = nextStart
        nextStart += hops * hopFrames
        windowsSkipped += hops
        skipped(Double(from) * secondsPerFrame, Double(nextStart - hopFrames + windowFrames) * secondsPerFrame)
        return true
    }

    /// Audio sets the pace: a window is ready when its frames are in and its pictures too (or they are
    /// late by more than `pictureLagSeconds`). Without audio, when its pictures are in.
    private func windowIsReady(at start: Int) -> Bool {
        guard let faces else { return start + windowFrames <= frameCount }
        guard mel != nil else { return faces.hasPictures(forWindowAt: start) }
        guard start + windowFrames <= frameCount else { return false }
        let lagFrames = Int(Self.pictureLagSeconds / secondsPerFrame)
        return ended || faces.hasPictures(forWindowAt: start) || frameCount - (start + windowFrames) > lagFrames
    }

    /// Keeps the frames from the next window's start, and the last window's worth for the tail window.
    private func dropFramesNoWindowNeeds() {
        let keepFrom = max(0, min(nextStart, frameCount - windowFrames))
        let drop = min(keepFrom - firstStored, stored.count)
        // In steps of at least a window, so each frame moves a bounded number of times.
        guard drop > 0, drop >= windowFrames || drop == stored.count else { return }
        stored.removeFirst(drop)
        firstStored += drop
    }

    /// The window's log-mel, normalised as the model wants, or nil when the stream is scored without
    /// audio or has carried only silence so far (nothing above db_amin).
    private func windowLogMel(start: Int, count: Int) throws -> [Float]? {
        guard let mel, mel.heardSound else { return nil }
        let nMels = predictor.trained.config.nMels
        let floor = floorDb
        let norm = statistics.flatMap { $0.isEmpty ? nil : $0.statistics(blendedWith: predictor.speakerPrior) }
        var values = [Float](repeating: 0, count: nMels * count)
        for t in 0..<count {
            let index = start + t - firstStored
            guard stored.indices.contains(index), stored[index].count == nMels else {
                throw PipelineError.missingData("\(named): frame \(start + t) is no longer held (internal window bookkeeping)")
            }
            let frame = stored[index]
            for band in 0..<nMels {
                var v = max(frame[band], floor)
                if let norm { v = (v - norm.mean[band]) / norm.std[band] }
                values[band * count + t] = v
            }
        }
        return values
    }

    /// The window's answer, or nil when it has nothing to be scored on.
    private func score(start: Int, count: Int, atEnd: Bool) throws -> Window? {
        let trained = predictor.trained
        let logmel = try windowLogMel(start: start, count: count)
        let crops = faces?.crops(forWindowAt: start, ended: ended)
        let end = Double(start + windowFrames) * secondsPerFrame
        lastScored = start
        guard logmel != nil || crops != nil else {
            windowsSkipped += 1
            skipped(Double(start) * secondsPerFrame, atEnd ? min(receivedSeconds, end) : end)
            return nil
        }
        let clip = ClipFeatures(id: input, logmel: logmel, melFrames: count, faces: crops?.crops,
                                faceMask: crops?.frames.map { $0.found || $0.borrowed ? 1 : 0 }
                                    ?? [Float](repeating: 0, count: trained.config.faceFrames), label: 0)
        let policy = WindowPolicy(frames: windowFrames, hopFrames: hopFrames)
        guard let p = try predictor.classifier.windowProbabilities(clip, policy: policy).first,
              p.count == trained.labels.count else {
            throw PipelineError.missingData("\(named): the model gave no probabilities for the window at frame \(start)")
        }
        for k in p.indices { probabilitySums[k] += Double(p[k]) }
        windowsScored += 1
        if crops != nil { windowsWithFaces += 1 }
        let used: [ModelConfig.Modality] = (logmel != nil ? [.audio] : []) + (crops != nil ? [.faces] : [])
        return Window(input: input, start: Predictor.timestamp(Double(start) * secondsPerFrame),
                      end: Predictor.timestamp(atEnd ? min(receivedSeconds, end) : end),
                      label: trained.labels[Inference.argmax(p)], probabilities: predictor.named(p), modalities: used,
                      speaker: logmel == nil ? nil : statistics.map { _ in
                          RunningSpeaker(name: "stream so far", seconds: (receivedSeconds * 1000).rounded() / 1000,
                                         statistics: predictor.speakerPrior == nil ? .given : .blended)
                      },
                      facesFound: faces.map { _ in crops?.frames.filter { $0.found }.count ?? 0 })
    }
}

extension Predictor {
    /// The window's and the hop's length in seconds.
    public var windowSeconds: Double { Double(policy.frames) * Self.secondsPerFrame(logMel) }
    public var hopSeconds: Double { Double(policy.hopFrames) * Self.secondsPerFrame(logMel) }
    /// Whether the model takes face crops as well as (or instead of) audio (a face branch its training
    /// never fed takes none).
    public var looksAtFaces: Bool { inputs.uses(.faces) }
    /// K: the face crops the model takes per window.
    public var faceFrames: Int { trained.config.faceFrames }

    /// The faces stage's extractor with the run's parameters, K the model's face frames (a run without
    /// recorded face parameters gets the faces stage's defaults).
    func streamFaceExtractor(input: String) throws -> FaceExtractor {
        var p = faces ?? FaceParameters()
        p.frames = trained.config.faceFrames
        p.size = trained.config.faceSize
        do { return try FaceExtractor(p) } catch {
            throw PipelineError.missingData("\(input.echoed): the face extractor cannot start: \(error)")
        }
    }
}
