import EmoNN

/// How much memory training a model needs on top of what is already resident (the features, the
/// code): the parameters seven times over (weights, gradients, Adam's two moments, and a checkpoint's
/// snapshot of weights and moments, held while it is written; a weight average adds its own copy and
/// that copy's snapshot), and per batch the activations the backward pass keeps, and each thread's
/// im2col buffers. Gradients of activations are counted only where they pile up: the backward pass
/// frees each op's saved tensors as it passes it, so beyond the activations at most about two
/// gradients of the widest conv output are alive at once (pool and ReLU backward at that block, its
/// activations still held). Measured: peak RSS grew by 7.3-7.8 MB per sample for the speech defaults
/// and 41-42 MB for audio+faces (counting every activation's gradient had the estimate at 2.5x and
/// 2.9x), and by 113 MB for one 256-channel block before the GRU, where the widest output is most of
/// what a sample holds (the activations alone had the estimate 10% low).
///
///     let bytes = TrainingMemory.bytes(config, batchSize: 16, threads: 2)
///     let largest = TrainingMemory.largestBatch(config, threads: 2, available: 200 << 20, upTo: 64)
///
/// Counted per conv block (3x3 conv, batch norm, ReLU, 2x2 max pool) from the block's output
/// channels and the input size it sees: conv, batch-norm and ReLU outputs at full size, the pooled
/// output and its Int32 argmax at a quarter. `calibration` scales the sum to what `make bench`'s
/// train run measured (README, "Resources and budgets").
public enum TrainingMemory {
    /// A margin over the count: measured growth was at most 0.94x of it (before the margin).
    public static let calibration = 1.25

    /// Copies of the parameters training holds at its peak: weights, gradients and Adam's two moments,
    /// with a checkpoint's snapshot of the weights and moments (measured: 7.5 copies of the weights at
    /// a 2048- and a 3072-wide GRU, where counting four had the estimate at half the peak).
    static func parameterCopies(averagingWeights: Bool) -> Int { 7 + (averagingWeights ? 2 : 0) }

    /// Estimated bytes for one training step of `batchSize` samples on `threads` threads; `averagingWeights`:
    /// whether training keeps a moving average of the weights (`train.weight_average_epochs`).
    /// `weights`: `parameterCount(config)` when the caller has it (counting builds the model).
    public static func bytes(_ config: ModelConfig, batchSize: Int, threads: Int, averagingWeights: Bool = false, weights: Int? = nil) -> Int {
        let perSample = Double(activationFloats(config) + 2 * widestOutputFloats(config))
        let columns = Double(max(1, threads)) * 2 * Double(largestColumnFloats(config))
        let parameters = Double(parameterCopies(averagingWeights: averagingWeights)) * Double(weights ?? parameterCount(config))
        let floats = Double(max(0, batchSize)) * perSample + columns + parameters
        let total = floats * 4 * calibration
        return total < Double(Int.max / 2) ? Int(total) : Int.max / 2
    }

    /// The largest batch size from 2 (a batch of one teaches nothing) to `upTo` whose estimate fits in
    /// `available` bytes, or nil when not even two samples fit.
    /// `weights`, as for `bytes`.
    public static func largestBatch(_ config: ModelConfig, threads: Int, available: Int, upTo: Int, averagingWeights: Bool = false,
                                    weights: Int? = nil) -> Int? {
        let weights = weights ?? parameterCount(config)   // once, not at every step of the bisection
        func bytes(_ config: ModelConfig, batchSize: Int, threads: Int) -> Int {
            TrainingMemory.bytes(config, batchSize: batchSize, threads: threads, averagingWeights: averagingWeights, weights: weights)
        }
        let smallest = TrainingConfig.minBatchSize
        guard upTo >= smallest, bytes(config, batchSize: smallest, threads: threads) <= available else { return nil }
        var (fits, tooBig) = (smallest, upTo + 1)           // bytes() grows with the batch size: bisect
        while tooBig - fits > 1 {
            let middle = fits + (tooBig - fits) / 2
            if bytes(config, batchSize: middle, threads: threads) <= available { fits = middle } else { tooBig = middle }
        }
        return fits
    }

    /// Weights above which the model is not built to count them: building allocates them all (a model
    /// of billions, within the parameters' ranges, would take gigabytes for an estimate). Past it the
    /// largest matrices, which are then nearly all of it, stand for the count.
    static let countedByBuilding = 50_000_000

    public static func parameterCount(_ config: ModelConfig) -> Int {
        if config.uses(.audio) {
            guard let dominant = config.dominantWeightCount else { return Int.max / 64 }   // past Int: no memory holds it
            if dominant > countedByBuilding { return dominant }
        }
        return EmotionModel(config, seed: 0).parameters().reduce(0) { $0 + $1.count }
    }

    /// Floats one sample keeps for the backward pass.
    static func activationFloats(_ config: ModelConfig) -> Int {
        var floats = 0
        if config.uses(.audio) {
            let (blocks, height, width) = convStack(config.audioChannels, height: config.nMels, width: config.frames)
            floats += config.audioInputChannels * config.nMels * config.frames + blocks
            let steps = width, stepWidth = (config.audioChannels.last ?? 1) * height
            // The GRU's gates and states per step and direction, the projection and pooling.
            floats += steps * (stepWidth + (config.recurrent ? 8 * config.embedding : 0) + 3 * config.embedding)
        }
        if config.uses(.faces) {
            let (blocks, _, _) = convStack(config.faceChannels, height: config.faceSize, width: config.faceSize)
            floats += config.faceFrames * (3 * config.faceSize * config.faceSize + blocks + 3 * config.embedding)
        }
        return floats + 4 * config.embedding + 2 * config.classes
    }

    /// The largest conv output one sample makes (all of a clip's face frames together).
    static func widestOutputFloats(_ config: ModelConfig) -> Int {
        func widest(_ channels: [Int], height: Int, width: Int) -> Int {
            var (h, w, most) = (height, width, 0)
            for c in channels { most = max(most, c * h * w); h /= 2; w /= 2 }
            return most
        }
        var most = 0
        if config.uses(.audio) { most = max(most, widest(config.audioChannels, height: config.nMels, width: config.frames)) }
        if config.uses(.faces) { most = max(most, config.faceFrames * widest(config.faceChannels, height: config.faceSize, width: config.faceSize)) }
        return most
    }

    /// The floats a stack of conv blocks keeps, and the size it leaves.
    static func convStack(_ channels: [Int], height: Int, width: Int) -> (floats: Int, height: Int, width: Int) {
        var (h, w, floats) = (height, width, 0)
        for c in channels {
            floats += 3 * c * h * w + c * (h / 2) * (w / 2) * 2
            h /= 2; w /= 2
        }
        return (floats, h, w)
    }

    /// The largest im2col buffer any conv block needs for one sample (in channels × 9 × output size).
    static func largestColumnFloats(_ config: ModelConfig) -> Int {
        func largest(_ channels: [Int], inChannels: Int, height: Int, width: Int) -> Int {
            var (cin, h, w, most) = (inChannels, height, width, 0)
            for c in channels { most = max(most, cin * 9 * h * w); cin = c; h /= 2; w /= 2 }
            return most
        }
        var most = 0
        if config.uses(.audio) { most = max(most, largest(config.audioChannels, inChannels: config.audioInputChannels, height: config.nMels, width: config.frames)) }
        if config.uses(.faces) { most = max(most, largest(config.faceChannels, inChannels: 3, height: config.faceSize, width: config.faceSize)) }
        return most
    }
}
