import EmoCore
import EmoFeatures
import EmoMedia
import EmoModel
import EmoNN
import EmoPipeline
import Foundation

/// Predictions for new media files with an exported run's model (`runs/<run>/model.safetensors`,
/// `model.json`, `features.json`): the same features the pipeline computes, then the model. A file
/// longer than the model's window also gets a timeline of windows, audio and video aligned by time.
public final class Predictor {
    public struct Window: Codable, Equatable, Sendable {
        public var start: Double
        public var end: Double
        public var label: String
        public var probabilities: [String: Double]
    }

    public struct Prediction: Codable, Equatable, Sendable {
        public var path: String
        public var label: String
        public var probabilities: [String: Double]
        public var timeline: [Window]
    }

    let classifier: EmotionClassifier
    var trained: TrainedModel { classifier.trained }
    let logMel: LogMelParameters?
    let faces: FaceParameters?
    public let hopSeconds: Double

    /// `run` is a run folder holding an export.
    public init(run: String, hopSeconds: Double = 1.0) throws {
        let folder = URL(fileURLWithPath: run)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent(TrainedModel.Weights.exported.rawValue).path) else {
            throw PipelineError.missingData("\(run): no exported model here (run the export stage: `emopipe run --until export`)")
        }
        classifier = try TrainedModel.load(folder: folder, weights: .exported)
        try classifier.trained.requireRawFeatures(for: "predict", model: run)
        let features = try ParamValue.fromJSON(Data(contentsOf: folder.appendingPathComponent("features.json"))).objectValue ?? [:]
        logMel = try features[StageName.audio.rawValue].flatMap { $0 == .null ? nil : $0 }.map {
            var p = try ParamValueDecoder.decode(LogMelParameters.self, from: $0)
            p.frames = nil   // every frame: windows are cut here
            return p
        }
        faces = try features[StageName.faces.rawValue].flatMap { $0 == .null ? nil : $0 }.map {
            try ParamValueDecoder.decode(FaceParameters.self, from: $0)
        }
        self.hopSeconds = hopSeconds
        Engine.configure(threads: ProcessInfo.processInfo.activeProcessorCount)
    }

    public func predict(path: String) throws -> Prediction {
        let c = trained.config
        let facts = try MediaProbe.probe(path: path)
        var mel: LogMel?
        if c.uses(.audio), let logMel, facts.audioStreamCount > 0 {
            mel = try LogMelExtractor(logMel).compute(signal: MonoAudioFile(path: path, sampleRate: logMel.sampleRate))
        }
        let secondsPerFrame = logMel.map { Double($0.hopLength) / Double($0.sampleRate) } ?? 0.01
        let duration = mel?.durationSeconds ?? facts.durationSeconds ?? 0
        let windowSeconds = Double(c.frames) * secondsPerFrame
        let starts = duration <= windowSeconds ? [0.0]
            : stride(from: 0.0, through: duration - windowSeconds, by: hopSeconds).map { $0 }
        let crops = facts.videoStreamCount > 0 ? faceCrops(path: path, windows: starts.count) : nil
        // Windows are built and scored a chunk at a time (a whole number of inference batches, so the
        // arithmetic is the same as scoring them all at once): a long recording never holds every
        // window's input in memory.
        let chunk = max(1, trained.training.batchSize) * 8
        var probabilities: [[Float]] = []
        var usable = false
        for first in stride(from: 0, to: starts.count, by: chunk) {
            let samples = starts[first..<min(first + chunk, starts.count)].map { start in
                sample(mel: mel, crops: crops, start: start, end: start + windowSeconds, secondsPerFrame: secondsPerFrame)
            }
            usable = usable || samples.contains { $0.logmel != nil || $0.faces != nil }
            probabilities += try classifier.probabilities(samples)
        }
        guard usable else {
            throw PipelineError.missingData("\(path): neither speech nor a face to predict from")
        }
        let windows = zip(starts, probabilities).map { start, p in
            Window(start: start, end: min(duration, start + windowSeconds), label: trained.labels[Inference.argmax(p)],
                   probabilities: named(p))
        }
        let mean = (0..<c.classes).map { k in probabilities.map { Double($0[k]) }.reduce(0, +) / Double(probabilities.count) }
        return Prediction(path: path, label: trained.labels[Inference.argmax(mean.map(Float.init))],
                          probabilities: Dictionary(uniqueKeysWithValues: zip(trained.labels, mean)),
                          timeline: starts.count > 1 ? windows : [])
    }

    /// K crops per window, sampled evenly over the whole clip, with their times.
    private func faceCrops(path: String, windows: Int) -> FaceClip? {
        guard trained.config.uses(.faces), var p = faces else { return nil }
        p.frames = trained.config.faceFrames * windows
        return try? FaceExtractor(p).extract(path: path)
    }

    private func sample(mel: LogMel?, crops: FaceClip?, start: Double, end: Double, secondsPerFrame: Double) -> Sample {
        let c = trained.config
        var logmel: [Float]?
        var real = 0
        if let mel {
            let first = Int((start / secondsPerFrame).rounded())
            real = max(0, min(c.frames, mel.frames - first))
            var window = [Float](repeating: 0, count: c.nMels * c.frames)
            for band in 0..<c.nMels { for t in 0..<real { window[band * c.frames + t] = mel.values[band * mel.frames + first + t] } }
            logmel = real > 0 ? window : nil
        }
        var faces: [UInt8]?
        var mask = [Float](repeating: 0, count: c.faceFrames)
        if let crops {
            let inside = crops.frames.indices.filter { crops.frames[$0].time >= start && crops.frames[$0].time < end }
            if !inside.isEmpty {
                let chosen = (0..<c.faceFrames).map { inside[$0 * inside.count / c.faceFrames] }
                faces = chosen.flatMap { Array(crops.crop($0)) }
                mask = chosen.map { crops.frames[$0].found || crops.frames[$0].borrowed ? 1 : 0 }
            }
        }
        return Sample(id: "", logmel: logmel, realFrames: real, faces: faces, faceMask: mask, label: 0)
    }

    private func named(_ p: [Float]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(trained.labels, p.map { (Double($0) * 1e6).rounded() / 1e6 }))
    }
}
