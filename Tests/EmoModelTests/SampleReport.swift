import Foundation
@testable import EmoModel

/// A deterministic, realistic report input: RAVDESS's 8 classes, a 240-sample test fold (4 actors),
/// 30 epochs, three modality ablations, 4 cross-validation folds of 360 samples (6 actors each).
enum SampleReport {
    static let labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]

    /// SplitMix64: the same numbers on every platform.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func hex(_ count: Int) -> String {
            let digits = Array("0123456789abcdef")
            return String((0..<count).map { _ in digits[below(16)] })
        }
    }

    /// How often each class is recognised by the full model, and the classes it is mistaken for.
    static let recognition: [Double] = [0.62, 0.80, 0.83, 0.64, 0.88, 0.74, 0.78, 0.84]
    static let neighbours: [[Int]] = [[1, 3], [0, 3], [7, 0], [5, 0, 1], [6, 7], [3, 7], [4, 3], [2, 5]]

    /// Truth for `actors` actors (RAVDESS speech: 4 neutral and 8 of each other emotion per actor).
    static func truth(actors: Int) -> [Int] {
        (0..<8).flatMap { c in [Int](repeating: c, count: (c == 0 ? 4 : 8) * actors) }
    }

    static func predict(_ truth: [Int], skill: Double, rng: inout Rng) -> [Int] {
        truth.map { t in
            if rng.uniform() < min(0.97, recognition[t] * skill) { return t }
            if rng.uniform() < 0.7 { return neighbours[t][rng.below(neighbours[t].count)] }
            let other = rng.below(7)
            return other >= t ? other + 1 : other
        }
    }

    static func epochs(count: Int = 30) -> [EpochLog] {
        var rng = Rng(state: 11)
        return (1...count).map { e in
            let x = Double(e)
            let noise = { (scale: Double) -> Double in (rng.uniform() - 0.5) * 2 * scale }
            let lr = e <= 2 ? 5e-4 * x : 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + cos(Double.pi * (x - 2) / Double(max(count - 2, 1))))
            let valAcc = 0.765 - 0.64 * exp(-x / 5) + noise(0.012)
            return EpochLog(epoch: e, trainLoss: 0.24 + 1.85 * exp(-x / 6) + noise(0.02),
                            trainAccuracy: 0.975 - 0.84 * exp(-x / 6) + noise(0.008),
                            valLoss: 0.80 + 1.25 * exp(-x / 5) + 0.004 * max(0, x - 18) + noise(0.03),
                            valAccuracy: valAcc, valWeightedF1: valAcc - 0.008 + noise(0.006),
                            learningRate: lr, seconds: 92 + noise(6))
        }
    }

    static func input() throws -> ReportInput {
        var rng = Rng(state: 2024)
        let truth = truth(actors: 4)
        let full = predict(truth, skill: 1.0, rng: &rng)
        let doc = try MetricsDocument.evaluate(
            labels: labels, truth: truth, predicted: full,
            ablations: [("audio only", predict(truth, skill: 0.80, rng: &rng)),
                        ("faces only", predict(truth, skill: 0.90, rng: &rng))])
        let cvTruth = Self.truth(actors: 6)
        let folds = try [0.95, 1.0, 0.91, 1.04].enumerated().map { i, skill in
            FoldResult(fold: i + 1, note: "actors \(6 * i + 1)–\(6 * i + 6)",
                       metrics: try ClassificationMetrics.compute(labels: labels, truth: cvTruth,
                                                                   predicted: predict(cvTruth, skill: skill, rng: &rng)))
        }
        var provenance: [(String, String)] = [
            ("ingest output digest", "sha256:" + rng.hex(64)),
            ("code version", "emopipe 0.4.0 (git " + rng.hex(10) + ", clean)"),
            ("manifest", "manifests/ravdess-av.yaml"),
            ("seed", "20240611"),
            ("split", "speaker-independent: test actors 21–24, validation actors 17–20"),
        ]
        for stage in ["scan", "decode-audio", "logmel", "faces", "split", "train", "evaluate", "report"] {
            provenance.append(("stage \(stage)", "sha256:" + rng.hex(64)))
        }
        let manifest = """
        # EmoPipe run manifest
        name: ravdess-av
        dataset:
          root: data/RAVDESS
          modalities: [audio, faces]
          actors: 1-24
        features:
          logmel: {sample_rate: 16000, n_mels: 64, hop_ms: 10, frames: 300}
          faces: {fps: 5, size: 64, detector: hog}
        split: {test_actors: [21, 22, 23, 24], val_actors: [17, 18, 19, 20]}
        model: {fusion: attention, classes: 8, dropout: 0.3}
        train: {epochs: 30, batch: 32, optimizer: adamw, lr: 1.0e-3, schedule: cosine, warmup_epochs: 2}
        cross_validation: {folds: 4, by: actor}
        """
        return ReportInput(title: "RAVDESS audio-visual emotion: evaluation report", runId: "run-20261125-0912-" + rng.hex(6),
                           document: doc, epochs: epochs(), provenance: provenance, manifestText: manifest,
                           crossValidation: try CrossValidationSummary.summarize(folds))
    }
}
