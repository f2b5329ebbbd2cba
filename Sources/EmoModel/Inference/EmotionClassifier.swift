import EmoNN

/// The model's forward pass over samples, in batches, in eval mode (running batch-norm statistics,
/// no dropout) and without gradients. Training's validation goes through here too, so what
/// evaluation measures after training is computed as what training selected its best epoch on.
public struct Inference {
    public let model: EmotionModel
    public let encoder: InputEncoder
    /// Samples per forward pass: the training batch size, as the models were always evaluated.
    public let batchSize: Int

    public init(model: EmotionModel, standardizer: Standardizer, batchSize: Int) {
        self.model = model
        encoder = InputEncoder(config: model.config, standardizer: standardizer)
        // A validated model.json and validated train parameters never hold less; a stride of 0 would hang.
        self.batchSize = max(1, batchSize)
    }

    /// Class probabilities per sample, and the mean cross-entropy against the samples' labels.
    public func evaluate(_ samples: [Sample]) throws -> (loss: Double, probabilities: [[Float]]) {
        var total = 0.0
        var out: [[Float]] = []
        try forEachBatch(samples) { batch, logits in
            total += Double(try Losses.crossEntropy(logits, targets: batch.map(\.label)).item) * Double(batch.count)
            out += try Self.rows(logits.softmax(axis: 1))
        }
        return (samples.isEmpty ? 0 : total / Double(samples.count), out)
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

    /// The most probable class of each sample (the first, on a tie).
    public func predictedClasses(_ samples: [Sample]) throws -> [Int] {
        try probabilities(samples).map(Self.argmax)
    }

    public static func argmax(_ p: [Float]) -> Int { p.indices.max { p[$0] < p[$1] } ?? 0 }

    private func forEachBatch(_ samples: [Sample], _ body: ([Sample], Tensor) throws -> Void) throws {
        model.eval()
        try Autograd.noGrad {
            for start in stride(from: 0, to: samples.count, by: batchSize) {
                let batch = Array(samples[start..<min(start + batchSize, samples.count)])
                try body(batch, try model(encoder.encode(batch)))
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
    public let inference: Inference

    public var model: EmotionModel { inference.model }
    public var labels: [String] { trained.labels }

    public init(trained: TrainedModel, model: EmotionModel) {
        self.trained = trained
        inference = Inference(model: model, standardizer: trained.standardizer, batchSize: trained.training.batchSize)
    }

    public func probabilities(_ samples: [Sample]) throws -> [[Float]] { try inference.probabilities(samples) }

    public func predictedClasses(_ samples: [Sample]) throws -> [Int] { try inference.predictedClasses(samples) }
}
