/// Batch normalisation over channels (axis 1). One class serves 1-d inputs
/// ([N, C] or [N, C, L]) and 2-d inputs ([N, C, H, W]); the aliases below
/// keep PyTorch's names.
public final class BatchNorm: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// Count of training batches seen; kept so that checkpoints load into
    /// PyTorch with strict=True (float here, int64 there: exact below 2²⁴).
    public let numBatchesTracked: Tensor
    public let momentum: Float
    public let eps: Float
    let ranks: Set<Int>

    init(_ channels: Int, momentum: Float, eps: Float, ranks: Set<Int>) {
        weight = Tensor.ones([channels]).requiringGrad()
        bias = Tensor.zeros([channels]).requiringGrad()
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        numBatchesTracked = Tensor(scalar: 0)
        self.momentum = momentum
        self.eps = eps
        self.ranks = ranks
        super.init()
    }

    public override var bufferNames: Set<String> { ["running_mean", "running_var", "num_batches_tracked"] }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard ranks.contains(x.rank) else {
            throw ShapeError("BatchNorm", x.shape, weight.shape, "expected rank in \(ranks.sorted())")
        }
        if training { numBatchesTracked.data[0] += 1 }
        return try x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                               training: training, momentum: momentum, eps: eps)
    }
}

public func BatchNorm1d(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) -> BatchNorm {
    BatchNorm(channels, momentum: momentum, eps: eps, ranks: [2, 3])
}

public func BatchNorm2d(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) -> BatchNorm {
    BatchNorm(channels, momentum: momentum, eps: eps, ranks: [4])
}
