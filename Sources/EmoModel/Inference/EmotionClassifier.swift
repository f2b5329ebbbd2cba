import Foundation
import EmoNN

/// Thrown by `Inference` when its `stopRequested` said so: nothing it computed is returned.
public struct InferenceStopped: Error, Equatable, Sendable {
    public init() {}
}

/// The model's forward pass over samples, in batches, in eval mode (running batch-norm statistics,
/// no dropout) and without gradients. Training's validation goes through here too, so what
/// evaluation measures after training is computed as what training selected its best epoch on.
public struct Inference {
    public let model: EmotionModel
    public let encoder: InputEncoder
    /// Samples per forward pass: the training batch size, as the models were always evaluated.
    public let batchSize: Int
    /// Asked before every forward pass; true stops the work with `InferenceStopped`, so a stop signal
    /// is obeyed within one batch however many windows the clips hold.
    public var stopRequested: () -> Bool = { false }
    /// Told the size of every batch once it is scored (progress).
    public var batchScored: (Int) -> Void = { _ in }

    public init(model: EmotionModel, standardizer: Standardizer, batchSize: Int) {
        self.model = model
        encoder = InputEncoder(config: model.config, standardizer: standardizer)
        // A validated model.json and validated train parameters never hold less; a stride of 0 would hang.
        self.batchSize = max(1, batchSize)
    }

    public func probabilities(_ samples: [Sample]) throws -> [[Float]] {
        var out: [[Float]] = []
        try forEachBatch(samples) { _, logits in out += try Self.rows(logits.softmax(axis: 1)) }
        return out
    }

    public func logits(_ samples: [Sample]) throws -> [[Float]] {
        var out: [[Float]] = []
        try forEachBatch(samples) { _, logits in out += Self.rows(logits) }
        return out
    }

    /// Each clip's probabilities under the window policy: the mean of its windows' softmax. A clip's
    /// windows are scored in batches of their own (never mixed with another clip's), so a clip gets
    /// the same numbers whether it is scored alone (`predict`) or among others (`evaluate`).
    public func clipProbabilities(_ clips: [ClipFeatures], policy: WindowPolicy) throws -> [[Float]] {
        try clips.map { Self.mean(try windowProbabilities($0, policy: policy)) }
    }

    /// The probabilities of each of a clip's windows, in order. Windows are cut and scored a few
    /// whole batches at a time, so a long recording never holds every window's input at once.
    public func windowProbabilities(_ clip: ClipFeatures, policy: WindowPolicy) throws -> [[Float]] {
        let starts = policy.starts(realFrames: clip.melFrames)
        let chunk = batchSize * 8
        var out: [[Float]] = []
        for first in stride(from: 0, to: starts.count, by: chunk) {
            out += try probabilities(starts[first..<min(first + chunk, starts.count)].map {
                clip.window(start: $0, frames: policy.frames, nMels: model.config.nMels)
            })
        }
        return out
    }

    /// Clip probabilities, and the mean negative log-likelihood of the clips' labels under them.
    public func evaluateClips(_ clips: [ClipFeatures], policy: WindowPolicy) throws -> (loss: Double, probabilities: [[Float]]) {
        let probabilities = try clipProbabilities(clips, policy: policy)
        let loss = zip(clips, probabilities).reduce(0.0) { total, pair in
            let p = pair.1.indices.contains(pair.0.label) ? Double(pair.1[pair.0.label]) : 0
            return total - Foundation.log(max(p, 1e-12))
        }
        return (clips.isEmpty ? 0 : loss / Double(clips.count), probabilities)
    }

    /// The mean of rows of probabilities, summed in Double (window order).
    public static func mean(_ rows: [[Float]]) -> [Float] {
        guard let width = rows.first?.count else { return [] }
        return (0..<width).map { k in Float(rows.reduce(0.0) { $0 + Double($1[k]) } / Double(rows.count)) }
    }

    /// The most probable class (the first, on a tie).
    public static func argmax(_ p: [Float]) -> Int { p.indices.max { p[$0] < p[$1] } ?? 0 }

    private func forEachBatch(_ samples: [Sample], _ body: ([Sample], Tensor) throws -> Void) throws {
        model.eval()
        try Autograd.noGrad {
            for start in stride(from: 0, to: samples.count, by: batchSize) {
                if stopRequested() { throw InferenceStopped() }
                let batch = Array(samples[start..<min(start + batchSize, samples.count)])
                try body(batch, try model(encoder.encode(batch)))
                batchScored(batch.count)
            }
        }
    }

    /// [B, C] → B rows of C.
    private static func rows(_ t: Tensor) -> [[Float]] {
        let (b, c) = (t.shape[0], t.shape[1])
        return (0..<b).map { i in Array(t.data[(i * c)..<((i + 1) * c)]) }
    }
}

/// A trained model ready to use: its description (`model.json`), its weights, and inference over them.
/// Made by `TrainedModel.load(folder:weights:)`.
public final class EmotionClassifier {
    public let trained: TrainedModel
    public var inference: Inference
    /// The weights file, for naming it when its scores go wrong.
    public let weightsPath: String

    public var model: EmotionModel { inference.model }
    public var labels: [String] { trained.labels }

    public init(trained: TrainedModel, model: EmotionModel, weightsPath: String = "the model's weights") {
        self.trained = trained
        self.weightsPath = weightsPath
        inference = Inference(model: model, standardizer: trained.standardizer, batchSize: trained.training.batchSize)
    }

    public func probabilities(_ samples: [Sample]) throws -> [[Float]] { try inference.probabilities(samples) }

    /// Each whole clip's probabilities under the model's window policy.
    public func clipProbabilities(_ clips: [ClipFeatures]) throws -> [[Float]] {
        try checkScores(try inference.clipProbabilities(clips.map(fedAsTrained), policy: trained.windowPolicy)) { clips[$0].id }
    }

    /// The probabilities of each of a clip's windows (`predict`: a clip's own windows, or a stream's).
    public func windowProbabilities(_ clip: ClipFeatures, policy: WindowPolicy) throws -> [[Float]] {
        try checkScores(try inference.windowProbabilities(fedAsTrained(clip), policy: policy)) { "window \($0) of \(clip.id)" }
    }

    /// The clip without the inputs whose branch no training clip fed (`TrainedModel.untrainedModalities`).
    public func fedAsTrained(_ clip: ClipFeatures) -> ClipFeatures {
        clip.without(trained.untrainedModalities ?? [])
    }

    /// Finite weights can still overflow on an input (weights near Float's largest): NaN logits come out
    /// of the softmax as all zeros, which would read as the first class, so a row of probabilities that
    /// does not sum to 1 is refused by name.
    private func checkScores(_ rows: [[Float]], _ name: (Int) -> String) throws -> [[Float]] {
        let unsound = rows.firstIndex { row in
            !(row.isEmpty || row.allSatisfy { $0.isFinite && $0 >= 0 } && abs(row.reduce(0.0) { $0 + Double($1) } - 1) < 1e-3)
        }
        if let unsound {
            throw TrainedModelError(path: weightsPath, reason: "the model's scores for \(name(unsound).echoed) are not probabilities "
                                    + "(not finite, or not summing to 1): its weights overflow on this input, so its training diverged; "
                                    + "train with a lower train.learning_rate or train.weight_decay (the same parameters train the same weights again)")
        }
        return rows
    }
}
