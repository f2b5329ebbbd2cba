import EmoCore
import EmoFeatures
import EmoModel
import EmoPipeline
import Foundation

/// Predictions on audio that arrives over time (a pipe, a URL, a capture device), window by window as
/// soon as each window's frames are in, under the model's window policy: windows of the model's length
/// every hop frames from the stream's start, and at the end of the stream one more ending at its last
/// frame when the stride leaves a tail (a stream shorter than one window is one padded window). So a
/// stream of a file gets the file's windows.
///
/// What a whole file gives and a stream cannot, a stream takes from its part received so far:
/// - the top_db floor is measured from the loudest bin so far;
/// - a speaker-normalised model gets each band's mean and deviation over every frame so far
///   (floored as it arrived): running statistics of the one voice a stream is taken to carry.
/// Streams are scored on their audio only (faces are not read from them).
public final class StreamPredictor: @unchecked Sendable {
    /// The stretch of the stream whose statistics normalised a window (speaker-normalised models).
    public struct RunningSpeaker: Codable, Equatable, Sendable {
        /// Always "stream so far".
        public var name: String
        /// Seconds of audio the statistics cover, from the stream's start.
        public var seconds: Double
    }

    /// One scored window, printed as soon as it is known.
    public struct Window: Codable, Equatable, Sendable {
        public var input: String
        public var start: Double
        public var end: Double
        public var label: String
        public var probabilities: [String: Double]
        public var modalities: [ModelConfig.Modality]
        public var speaker: RunningSpeaker?
    }

    let predictor: Predictor
    let input: String
    let mel: LiveLogMel
    let windowFrames: Int, hopFrames: Int
    /// Received frames from index `firstStored` on, n_mels dB values each (unfloored).
    private var stored: [[Float]] = []
    private var firstStored = 0
    private var frameCount = 0
    private var nextStart = 0
    private var lastScored: Int?
    private var statistics: RunningBandStatistics?
    private var probabilitySums: [Double]
    public private(set) var windowsScored = 0
    /// The first error met while taking samples: reading stops at it.
    public private(set) var failure: Error?

    public init(predictor: Predictor, input: String) throws {
        let config = predictor.trained.config
        guard config.uses(.audio), let logMel = predictor.logMel else {
            throw PipelineError.missingData("\(input): this model only looks at faces, and streams are scored on their audio")
        }
        self.predictor = predictor
        self.input = input
        mel = try LiveLogMel(logMel)
        windowFrames = predictor.policy.frames
        hopFrames = predictor.policy.hopFrames
        statistics = predictor.groupsSpeakers ? RunningBandStatistics(bands: config.nMels) : nil
        probabilitySums = [Double](repeating: 0, count: predictor.trained.labels.count)
    }

    public var sampleRate: Int { mel.extractor.parameters.sampleRate }
    public var receivedSeconds: Double { Double(mel.sampleCount) / Double(sampleRate) }
    /// The mean of the scored windows' probabilities (the answer a file of this audio would get).
    public var meanProbabilities: [String: Double] {
        predictor.named(probabilitySums.map { Float($0 / Double(max(1, windowsScored))) })
    }

    /// Takes decoded samples; each window they complete goes to `emit`. After a failure (kept in
    /// `failure`) it takes nothing more.
    public func take(_ samples: UnsafeBufferPointer<Float>, emit: (Window) -> Void) {
        guard failure == nil else { return }
        do {
            try mel.add(samples) { frame in receive(frame) }
            try scoreReadyWindows(emit)
        } catch {
            // Feature and model errors do not know the input's name; the message must.
            failure = error is PipelineError ? error : PipelineError.missingData("\(input): \(error)")
        }
    }

    /// The stream ended: its last frames, and the window ending at its last frame if the stride left a tail.
    public func finish(emit: (Window) -> Void) throws {
        if let failure { throw failure }
        try mel.finish { frame in receive(frame) }
        try scoreReadyWindows(emit)
        guard frameCount > 0 else {
            throw PipelineError.missingData("\(input): the stream ended before any audio arrived")
        }
        if lastScored == nil {
            emit(try score(start: 0, count: frameCount, atEnd: true))
        } else if frameCount > windowFrames, lastScored != frameCount - windowFrames {
            emit(try score(start: frameCount - windowFrames, count: windowFrames, atEnd: true))
        }
    }

    private func receive(_ frame: [Float]) {
        stored.append(frame)
        frameCount += 1
        statistics?.add(frame, floor: floorDb)
    }

    private var floorDb: Float { mel.topDb.map { mel.peakDb - $0 } ?? -Float.infinity }

    private func scoreReadyWindows(_ emit: (Window) -> Void) throws {
        while nextStart + windowFrames <= frameCount {
            emit(try score(start: nextStart, count: windowFrames, atEnd: false))
            // Bounded far below Int.max: frames are counted one by one.
            nextStart += hopFrames
        }
        dropFramesNoWindowNeeds()
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

    private func score(start: Int, count: Int, atEnd: Bool) throws -> Window {
        let trained = predictor.trained
        let nMels = trained.config.nMels
        let floor = floorDb
        let norm = statistics?.meanAndDeviation()
        var values = [Float](repeating: 0, count: nMels * count)
        for t in 0..<count {
            let index = start + t - firstStored
            guard stored.indices.contains(index), stored[index].count == nMels else {
                throw PipelineError.missingData("\(input): frame \(start + t) is no longer held (internal window bookkeeping)")
            }
            let frame = stored[index]
            for band in 0..<nMels {
                var v = max(frame[band], floor)
                if let norm { v = (v - norm.mean[band]) / norm.std[band] }
                values[band * count + t] = v
            }
        }
        let clip = ClipFeatures(id: input, logmel: values, melFrames: count, faces: nil,
                                faceMask: [Float](repeating: 0, count: trained.config.faceFrames), label: 0)
        let policy = WindowPolicy(frames: windowFrames, hopFrames: hopFrames)
        guard let p = try predictor.classifier.inference.windowProbabilities(clip, policy: policy).first,
              p.count == trained.labels.count else {
            throw PipelineError.missingData("\(input): the model gave no probabilities for the window at frame \(start)")
        }
        for k in p.indices { probabilitySums[k] += Double(p[k]) }
        windowsScored += 1
        lastScored = start
        let spf = mel.secondsPerFrame
        let end = Double(start + windowFrames) * spf
        return Window(input: input, start: Double(start) * spf, end: atEnd ? min(receivedSeconds, end) : end,
                      label: trained.labels[Inference.argmax(p)], probabilities: predictor.named(p), modalities: [.audio],
                      speaker: norm.map { _ in RunningSpeaker(name: "stream so far", seconds: (receivedSeconds * 1000).rounded() / 1000) })
    }
}

/// Each mel band's running mean and standard deviation (Double sums) over the frames added so far.
struct RunningBandStatistics {
    private var sum: [Double], squares: [Double]
    private var count = 0

    init(bands: Int) {
        sum = [Double](repeating: 0, count: bands); squares = sum
    }

    mutating func add(_ frame: [Float], floor: Float) {
        guard frame.count == sum.count else { return }
        count += 1
        for band in frame.indices {
            let v = Double(max(frame[band], floor))
            sum[band] += v; squares[band] += v * v
        }
    }

    func meanAndDeviation() -> (mean: [Float], std: [Float])? {
        guard count > 0 else { return nil }
        let n = Double(count)
        let mean = sum.map { $0 / n }
        let std = zip(squares, mean).map { sq, m in max(SpeakerNormalizer.minimumStd, max(0, sq / n - m * m).squareRoot()) }
        return (mean.map(Float.init), std.map(Float.init))
    }
}

extension Predictor {
    /// The window's and the hop's length in seconds.
    public var windowSeconds: Double { Double(policy.frames) * Self.secondsPerFrame(logMel) }
    public var hopSeconds: Double { Double(policy.hopFrames) * Self.secondsPerFrame(logMel) }
    /// Whether the model takes face crops as well as (or instead of) audio.
    public var looksAtFaces: Bool { trained.config.uses(.faces) }
}
