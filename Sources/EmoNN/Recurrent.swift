/// Single-layer recurrent networks over batch-first sequences [B, T, I],
/// built from differentiable ops so that autograd supplies the backward.
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
        let (b, t) = (x.shape[0], x.shape[1])
        // The input projection of all time steps is one sgemm.
        let projected = try x.linear(weight: wi, bias: bi)
        var state = initialState(batch: b)
        var outputs = [Tensor?](repeating: nil, count: t)
        for step in (reverse ? Array((0..<t).reversed()) : Array(0..<t)) {
            let xt = try projected.sliced(axis: 1, step..<(step + 1)).reshaped([b, gates * hiddenSize])
            let ht = try state[0].linear(weight: wh, bias: bh)
            state = try cell(xt, ht, state)
            outputs[step] = state[0]
        }
        return try Tensor.stack(outputs.map { $0! }, axis: 1)
    }

    func initialState(batch: Int) -> [Tensor] { fatalError("subclass") }
    func cell(_ xt: Tensor, _ ht: Tensor, _ state: [Tensor]) throws -> [Tensor] { fatalError("subclass") }

    func gate(_ t: Tensor, _ k: Int) throws -> Tensor {
        try t.sliced(axis: 1, (k * hiddenSize)..<((k + 1) * hiddenSize))
    }
}

/// LSTM with gates (input, forget, cell, output) in PyTorch's order.
public final class LSTM: RecurrentBase {
    public init(_ inputSize: Int, _ hiddenSize: Int, bidirectional: Bool = false, rng: RandomGenerator) {
        super.init(inputSize, hiddenSize, gates: 4, bidirectional: bidirectional, rng: rng)
    }

    override func initialState(batch: Int) -> [Tensor] {
        [Tensor.zeros([batch, hiddenSize]), Tensor.zeros([batch, hiddenSize])]
    }

    override func cell(_ xt: Tensor, _ ht: Tensor, _ state: [Tensor]) throws -> [Tensor] {
        let z = try xt + ht
        let i = try gate(z, 0).sigmoid(), f = try gate(z, 1).sigmoid()
        let g = try gate(z, 2).tanh(), o = try gate(z, 3).sigmoid()
        let c = try f * state[1] + i * g
        return [try o * c.tanh(), c]
    }
}

/// GRU with gates (reset, update, new) in PyTorch's order; the reset gate
/// multiplies the hidden projection including its bias, as in PyTorch.
public final class GRU: RecurrentBase {
    public init(_ inputSize: Int, _ hiddenSize: Int, bidirectional: Bool = false, rng: RandomGenerator) {
        super.init(inputSize, hiddenSize, gates: 3, bidirectional: bidirectional, rng: rng)
    }

    override func initialState(batch: Int) -> [Tensor] {
        [Tensor.zeros([batch, hiddenSize])]
    }

    override func cell(_ xt: Tensor, _ ht: Tensor, _ state: [Tensor]) throws -> [Tensor] {
        let r = try (gate(xt, 0) + gate(ht, 0)).sigmoid()
        let z = try (gate(xt, 1) + gate(ht, 1)).sigmoid()
        let n = try (gate(xt, 2) + r * gate(ht, 2)).tanh()
        // h' = (1 − z)·n + z·h = n + z·(h − n)
        return [try n + z * (state[0] - n)]
    }
}
