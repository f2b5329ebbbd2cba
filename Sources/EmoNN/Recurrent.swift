/// Single-layer recurrent networks over batch-first sequences [B, T, I] with
/// a zero initial state.
/// Parameter names and gate orders follow torch.nn.LSTM / torch.nn.GRU
/// (`weight_ih_l0`, `…_reverse`), so weights load from PyTorch unchanged.
public class RecurrentBase: Module {
    public let inputSize: Int, hiddenSize: Int, bidirectional: Bool
    let gates: Int
    public let weightIhL0: Tensor, weightHhL0: Tensor, biasIhL0: Tensor, biasHhL0: Tensor
    public let weightIhL0Reverse: Tensor?, weightHhL0Reverse: Tensor?
    public let biasIhL0Reverse: Tensor?, biasHhL0Reverse: Tensor?

    init(_ inputSize: Int, _ hiddenSize: Int, gates: Int, bidirectional: Bool, rng: RandomGenerator) {
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.bidirectional = bidirectional
        self.gates = gates
        let bound = 1 / Float(hiddenSize).squareRoot()
        func u(_ shape: [Int]) -> Tensor { Tensor.uniform(shape, low: -bound, high: bound, rng: rng).requiringGrad() }
        let g = gates * hiddenSize
        weightIhL0 = u([g, inputSize]); weightHhL0 = u([g, hiddenSize]); biasIhL0 = u([g]); biasHhL0 = u([g])
        weightIhL0Reverse = bidirectional ? u([g, inputSize]) : nil
        weightHhL0Reverse = bidirectional ? u([g, hiddenSize]) : nil
        biasIhL0Reverse = bidirectional ? u([g]) : nil
        biasHhL0Reverse = bidirectional ? u([g]) : nil
        super.init()
    }

    /// [B, T, I] → [B, T, H·directions].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 3, x.shape[2] == inputSize else {
            throw ShapeError(String(describing: type(of: self)), x.shape, weightIhL0.shape,
                             "input must be [B, T, \(inputSize)]")
        }
        var outputs = [try direction(x, weightIhL0, weightHhL0, biasIhL0, biasHhL0, reverse: false)]
        if let wi = weightIhL0Reverse, let wh = weightHhL0Reverse, let bi = biasIhL0Reverse, let bh = biasHhL0Reverse {
            outputs.append(try direction(x, wi, wh, bi, bh, reverse: true))
        }
        return outputs.count == 1 ? outputs[0] : try Tensor.concat(outputs, axis: 2)
    }

    private func direction(_ x: Tensor, _ wi: Tensor, _ wh: Tensor, _ bi: Tensor, _ bh: Tensor,
                           reverse: Bool) throws -> Tensor {
        // The input projection of all time steps is one sgemm; the recurrence
        // runs in one fused op per direction (RecurrentKernels.swift).
        try sequence(x.linear(weight: wi, bias: bi), wh, bh, reverse: reverse)
    }

    func sequence(_ projected: Tensor, _ wh: Tensor, _ bh: Tensor, reverse: Bool) -> Tensor {
        fatalError("subclass")
    }
}

/// LSTM with gates (input, forget, cell, output) in PyTorch's order.
public final class LSTM: RecurrentBase {
    public init(_ inputSize: Int, _ hiddenSize: Int, bidirectional: Bool = false, rng: RandomGenerator) {
        super.init(inputSize, hiddenSize, gates: 4, bidirectional: bidirectional, rng: rng)
    }

    override func sequence(_ projected: Tensor, _ wh: Tensor, _ bh: Tensor, reverse: Bool) -> Tensor {
        Tensor.lstmSequence(projected, wh, bh, reverse: reverse)
    }
}

/// GRU with gates (reset, update, new) in PyTorch's order; the reset gate
/// multiplies the hidden projection including its bias, as in PyTorch.
public final class GRU: RecurrentBase {
    public init(_ inputSize: Int, _ hiddenSize: Int, bidirectional: Bool = false, rng: RandomGenerator) {
        super.init(inputSize, hiddenSize, gates: 3, bidirectional: bidirectional, rng: rng)
    }

    override func sequence(_ projected: Tensor, _ wh: Tensor, _ bh: Tensor, reverse: Bool) -> Tensor {
        Tensor.gruSequence(projected, wh, bh, reverse: reverse)
    }
}
