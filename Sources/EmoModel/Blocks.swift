import EmoNN

/// 3x3 convolution (no bias: batch norm follows), batch norm, ReLU, 2x2 max pool.
final class ConvBlock: Module, UnaryLayer {
    let conv: Conv2d
    let bn: BatchNorm
    let pool: MaxPool2d
    /// `.int8` in `EmotionModel.int8Simulation()`: the input as the int8 graph quantises it.
    var inputPrecision = ActivationPrecision.float

    init(_ inChannels: Int, _ outChannels: Int, rng: RandomGenerator) {
        conv = Conv2d(inChannels, outChannels, kernel: (3, 3), padding: (1, 1), bias: false, rng: rng)
        bn = BatchNorm2d(outChannels)
        pool = MaxPool2d((2, 2))
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try pool(bn(conv(inputPrecision.apply(x))).relu())
    }
}

/// Attention pooling over a sequence: a score per step, a masked softmax over the steps that are
/// real, and the weighted sum. [B, T, E] with mask [B, T] → [B, E].
final class AttentionPool: Module {
    let score: Linear
    var scorePrecision = ActivationPrecision.float

    init(_ features: Int, rng: RandomGenerator) {
        score = Linear(features, 1, rng: rng)
        super.init()
    }

    func callAsFunction(_ x: Tensor, mask: Tensor) throws -> (pooled: Tensor, weights: Tensor) {
        let (b, t) = (x.shape[0], x.shape[1])
        let scores = try score(scorePrecision.apply(x.tanh())).reshaped([b, t])
        let weights = try scores.maskedSoftmax(mask: mask, axis: 1)
        let pooled = try (x * weights.unsqueezed(2)).sum(axis: 1)
        return (pooled, weights)
    }
}
