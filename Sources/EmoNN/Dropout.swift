extension Tensor {
    /// Inverted dropout: zeroes each element with probability `p` and scales
    /// the rest by 1/(1−p). The mask comes from `rng`, so a seeded run repeats.
    public func dropout(_ p: Float, rng: RandomGenerator) throws -> Tensor {
        guard p >= 0, p < 1 else { throw NNError.invalidArgument("dropout probability \(p) not in [0, 1)") }
        guard p > 0 else { return self }
        let scale = 1 / (1 - p)
        let mask = (0..<count).map { _ in rng.uniform() >= p ? scale : 0 }
        return try multiplying(Tensor(raw: shape, mask))
    }
}

/// Dropout layer; identity in evaluation mode.
public final class Dropout: Module, UnaryLayer {
    public let probability: Float
    let rng: RandomGenerator

    public init(_ probability: Float, rng: RandomGenerator) {
        self.probability = probability
        self.rng = rng
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        training ? try x.dropout(probability, rng: rng) : x
    }
}
