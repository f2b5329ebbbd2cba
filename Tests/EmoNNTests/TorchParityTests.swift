import Foundation
import Testing
@testable import EmoNN

/// The network of scripts/torch_reference.py, layer for layer.
final class ParityNet: Module {
    let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, fc1: Linear, bn2: BatchNorm
    let lstm: LSTM, gru: GRU, score: Linear, head: Linear

    init(rng: RandomGenerator) {
        conv1 = Conv2d(2, 4, kernel: (3, 3), padding: (1, 1), bias: false, rng: rng)
        bn1 = BatchNorm2d(4)
        conv2 = Conv2d(4, 4, kernel: (3, 3), padding: (2, 2), dilation: (2, 2), groups: 2, rng: rng)
        fc1 = Linear(16, 6, bias: false, rng: rng)
        bn2 = BatchNorm1d(6)
        lstm = LSTM(3, 4, bidirectional: true, rng: rng)
        gru = GRU(8, 3, bidirectional: true, rng: rng)
        score = Linear(6, 1, bias: false, rng: rng)
        head = Linear(10, 4, rng: rng)
        super.init()
    }

    func callAsFunction(_ x: Tensor, _ s: Tensor, _ mask: Tensor) throws -> (Tensor, Tensor) {
        var h = try bn1(conv1(x)).relu().maxPool2d(kernel: (2, 2))
        h = try conv2(h).gelu().avgPool2d(kernel: (2, 2), stride: (1, 1))
        h = try h.adaptiveAvgPool2d((2, 2)).flattened(from: 1)
        let a = try bn2(fc1(h)).tanh()
        let q = try gru(lstm(s))
        let w = try score(q).squeezed(-1).maskedSoftmax(mask: mask, axis: 1)
        let b = try (w.unsqueezed(-1) * q).sum(axis: 1).sigmoid()
        let t = try Tensor.stack([a, b], axis: 1).transposed(1, 2).reshaped([2, 12]).sliced(axis: 1, 0..<10)
        let extra = try ((a - b) * a / (b * b + 1)).mean() + Tensor.concat([a, b], axis: 1).sum(axis: 0).mean() * 0.01
        return (try head(t), extra)
    }
}

@Suite struct TorchParityTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/torch_parity.safetensors")

    /// max |ours − torch| / max |torch|, per tensor. The scale is floored at
    /// 1e-2 because biases feeding a training-mode batch norm have a true
    /// gradient of 0, which both libraries return as rounding noise (~1e-8).
    func relativeError(_ ours: [Float], _ ref: [Float]) -> Float {
        guard ours.count == ref.count else { return .infinity }
        let scale = ref.map(abs).max() ?? 0
        let diff = zip(ours, ref).map { abs($0 - $1) }.max() ?? 0
        return diff / max(scale, 1e-2)
    }

    @Test func outputsAndAllGradientsMatchPyTorch() throws {
        let f = try SafeTensorsFile.read(from: Self.fixture)
        let net = ParityNet(rng: RandomGenerator(seed: 0))
        var weights: [String: Tensor] = [:]
        for (k, v) in f.tensors where k.hasPrefix("param.") { weights[String(k.dropFirst(6))] = v }
        try net.load(weights)
        let x = f.tensors["input.x"]!.requiringGrad(), s = f.tensors["input.s"]!.requiringGrad()
        let targets = f.integers["input.targets"]!.map { Int($0) }
        let (logits, extra) = try net(x, s, f.tensors["input.mask"]!)
        let ce = try Losses.crossEntropy(logits, targets: targets, weight: f.tensors["input.class_weight"]!,
                                         labelSmoothing: 0.1)
        let loss = try ce + extra
        try loss.backward()

        #expect(relativeError(logits.data, f.tensors["out.logits"]!.data) < 1e-4)
        #expect(relativeError(loss.data, f.tensors["out.loss"]!.data) < 1e-4)
        #expect(relativeError(x.grad!.data, f.tensors["grad.input.x"]!.data) < 1e-4)
        #expect(relativeError(s.grad!.data, f.tensors["grad.input.s"]!.data) < 1e-4)
        let params = net.namedParameters()
        #expect(params.count == f.tensors.keys.filter { $0.hasPrefix("grad.") && !$0.hasPrefix("grad.input") }.count)
        for (name, p) in params {
            let ref = try #require(f.tensors["grad.\(name)"], "torch has no gradient named \(name)")
            let err = relativeError(p.grad?.data ?? [], ref.data)
            #expect(err < 1e-4, "gradient of \(name): relative error \(err)")
        }
        for (name, b) in net.namedBuffers() {
            let ref = try #require(f.tensors["after.\(name)"])
            #expect(relativeError(b.data, ref.data) < 1e-4, "buffer \(name)")
        }

        // Clipping and three AdamW steps on these gradients, as the script does.
        let norm = clipGradNorm(net.parameters(), maxNorm: 0.5)
        #expect(relativeError([norm], f.tensors["out.grad_norm"]!.data) < 1e-4)
        let opt = AdamW(net.parameters(), learningRate: 0.01, weightDecay: 0.1)
        for _ in 0..<3 { opt.step() }
        for (name, p) in params {
            let ref = try #require(f.tensors["adamw.\(name)"])
            #expect(relativeError(p.data, ref.data) < 1e-4, "AdamW update of \(name)")
        }
    }
}
