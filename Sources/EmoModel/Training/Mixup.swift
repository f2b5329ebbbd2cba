import EmoNN
import Foundation

/// Mixup (Zhang et al., 2018) within a training batch: every sample is blended with a partner from
/// the same batch, inputs and targets alike, with one weight λ ~ Beta(α, α) for the batch. The
/// loss is λ·CE(own label) + (1 − λ)·CE(partner's label).
struct Mixup {
    let lambda: Float
    /// The partner of each sample: a permutation of the batch.
    let partner: [Int]

    init(alpha: Double, count: Int, rng: RandomGenerator) {
        lambda = Float(Self.beta(alpha, rng: rng))
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        partner = order
    }

    /// The blended batch. A modality is blended only where both samples have it (a missing one is
    /// zeros under a zero mask, not a signal); elsewhere the sample keeps its own. Masks of blended
    /// modalities are the union of both.
    func mix(_ input: ModelInput) throws -> ModelInput {
        var mixed = input
        let audio = both(input.modalityMask, 0), faces = both(input.modalityMask, 1)
        mixed.logmel = try Tensor(shape: input.logmel.shape, data: blend(input.logmel.data, where: audio))
        mixed.logmelMask = union(input.logmelMask, where: audio)
        if let crops = input.faces {
            mixed.faces = try Tensor(shape: crops.shape, data: blend(crops.data, where: faces))
        }
        mixed.facesMask = union(input.facesMask, where: faces)
        return mixed
    }

    func loss(_ logits: Tensor, targets: [Int], weight: Tensor, labelSmoothing: Float) throws -> Tensor {
        let own = try Losses.crossEntropy(logits, targets: targets, weight: weight, labelSmoothing: labelSmoothing)
        let partners = try Losses.crossEntropy(logits, targets: partner.map { targets[$0] }, weight: weight,
                                               labelSmoothing: labelSmoothing)
        return try own * lambda + partners * (1 - lambda)
    }

    /// Whether sample i and its partner both have modality `m` ([B, 2] mask).
    private func both(_ modality: [Float], _ m: Int) -> [Bool] {
        partner.enumerated().map { i, j in modality[i * 2 + m] > 0 && modality[j * 2 + m] > 0 }
    }

    /// Row i of `values` ([B, …]) replaced by `combine(own, partner's)` where `selected[i]`.
    private func combine(_ values: [Float], where selected: [Bool], _ combine: (Float, Float) -> Float) -> [Float] {
        let width = values.count / max(1, partner.count)
        var out = values
        for (i, j) in partner.enumerated() where selected[i] {
            for k in 0..<width { out[i * width + k] = combine(values[i * width + k], values[j * width + k]) }
        }
        return out
    }

    private func blend(_ values: [Float], where selected: [Bool]) -> [Float] {
        combine(values, where: selected) { lambda * $0 + (1 - lambda) * $1 }
    }

    private func union(_ mask: [Float], where selected: [Bool]) -> [Float] {
        combine(mask, where: selected, max)
    }

    /// Beta(α, α) as X / (X + Y) of two Gamma(α) draws.
    static func beta(_ alpha: Double, rng: RandomGenerator) -> Double {
        let x = gamma(alpha, rng: rng), y = gamma(alpha, rng: rng)
        return x + y > 0 ? x / (x + y) : 0.5
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang; below shape 1, Gamma(shape + 1)·U^(1/shape). Each try
    /// is accepted with probability above 0.95; after 1,000 rejections (never in practice) the mean
    /// is returned, so a draw cannot loop for ever.
    static func gamma(_ shape: Double, rng: RandomGenerator) -> Double {
        if shape < 1 {
            let u = max(Double(rng.uniform()), 1e-12)
            return gamma(shape + 1, rng: rng) * pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        for _ in 0..<1_000 {
            let x = Double(rng.normal())
            let v = pow(1 + c * x, 3)
            guard v > 0 else { continue }
            let u = max(Double(rng.uniform()), 1e-12)
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
        return shape
    }
}
