import Testing
import Foundation
@testable import EmoNN

@Suite struct TensorBasics {
    @Test func shapeMismatchNamesBothShapes() throws {
        let a = Tensor.zeros([2, 3]), b = Tensor.zeros([4, 5])
        #expect(throws: ShapeError.self) { try a.matmul(b) }
        do {
            _ = try a + b
            Issue.record("expected a ShapeError")
        } catch let e as ShapeError {
            #expect(e.description.contains("[2, 3]") && e.description.contains("[4, 5]"))
        }
        #expect(throws: ShapeError.self) { try Tensor(shape: [2, 2], data: [1, 2, 3]) }
        #expect(throws: ShapeError.self) { try a.reshaped([5]) }
    }

    @Test func broadcastingValues() throws {
        let a = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [3], data: [10, 20, 30])
        #expect(try (a + b).data == [11, 22, 33, 14, 25, 36])
        let c = try Tensor(shape: [2, 1], data: [2, 3])
        #expect(try (a * c).data == [2, 4, 6, 12, 15, 18])
    }

    @Test func matmulValues() throws {
        let a = try Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        let b = try Tensor(shape: [2, 2], data: [5, 6, 7, 8])
        #expect(try a.matmul(b).data == [19, 22, 43, 50])
    }

    @Test func noGradRecordsNothing() throws {
        let w = randomTensor([3, 3], seed: 1).requiringGrad()
        let y = try Autograd.noGrad { try w.matmul(w) }
        #expect(!y.requiresGrad)
        #expect(y.node == nil)
    }

    @Test func fanOutAccumulates() throws {
        let x = try Tensor(shape: [2], data: [1, 2], requiresGrad: true)
        let y = try (x * x + x).sum()
        try y.backward()
        #expect(x.grad?.data == [3, 5])
    }

    @Test func permuteAndSliceValues() throws {
        let a = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        #expect(try a.transposed(0, 1).data == [1, 4, 2, 5, 3, 6])
        #expect(try a.sliced(axis: 1, 1..<3).data == [2, 3, 5, 6])
        let c = try Tensor.concat([a, a], axis: 0)
        #expect(c.shape == [4, 3])
        #expect(try Tensor.stack([a, a], axis: 1).shape == [2, 2, 3])
    }
}

@Suite struct CoreGradients {
    @Test func elementwiseBroadcast() throws {
        let a = randomTensor([3, 4], seed: 1), b = randomTensor([4], seed: 2)
        #expect(try gradientCheck([a, b]) { try $0[0] + $0[1] } < 1e-2)
        #expect(try gradientCheck([a, b]) { try $0[0] - $0[1] } < 1e-2)
        #expect(try gradientCheck([a, b]) { try $0[0] * $0[1] } < 1e-2)
        let d = randomTensor([3, 1], seed: 3)
        d.data = d.data.map { $0 >= 0 ? $0 + 1 : $0 - 1 }
        #expect(try gradientCheck([a, d]) { try $0[0] / $0[1] } < 1e-2)
    }

    @Test func unaryActivations() throws {
        let x = awayFromZero([2, 5], seed: 4)
        #expect(try gradientCheck([x]) { $0[0].relu() } < 1e-2)
        #expect(try gradientCheck([x]) { $0[0].gelu() } < 1e-2)
        #expect(try gradientCheck([x]) { $0[0].sigmoid() } < 1e-2)
        #expect(try gradientCheck([x]) { $0[0].tanh() } < 1e-2)
        #expect(try gradientCheck([x]) { $0[0].exp() } < 1e-2)
        #expect(try gradientCheck([x]) { $0[0].square() * 0.5 - 1 } < 1e-2)
        let pos = x.detached()
        pos.data = pos.data.map { abs($0) + 0.5 }
        #expect(try gradientCheck([pos]) { $0[0].log() } < 1e-2)
        #expect(try gradientCheck([pos]) { $0[0].sqrt() } < 1e-2)
        #expect(try gradientCheck([pos]) { $0[0].pow(1.5) } < 1e-2)
        #expect(try gradientCheck([pos]) { -($0[0] / 2 + 1) } < 1e-2)
    }

    @Test func maximumAndMaskedFill() throws {
        let a = awayFromZero([3, 4], seed: 30), b = Tensor.zeros([4])
        #expect(try gradientCheck([a, b]) { try $0[0].maximum($0[1]) } < 1e-2)
        let mask = try Tensor(shape: [1, 4], data: [1, 0, 1, 0])
        let y = try a.maskedFill(mask, value: -5)
        #expect(y.data[1] == -5 && y.data[0] == a.data[0])
        #expect(try gradientCheck([a]) { try $0[0].maskedFill(mask, value: -5) } < 1e-2)
        #expect(throws: ShapeError.self) { try a.maskedFill(Tensor.zeros([3]), value: 0) }
    }

    @Test func matmulAndLinear() throws {
        let a = randomTensor([3, 4], seed: 5), b = randomTensor([4, 2], seed: 6)
        #expect(try gradientCheck([a, b]) { try $0[0].matmul($0[1]) } < 1e-2)
        let x = randomTensor([2, 3, 4], seed: 7), y = randomTensor([2, 4, 5], seed: 8)
        #expect(try gradientCheck([x, y]) { try $0[0].matmul($0[1]) } < 1e-2)
        let w = randomTensor([5, 4], seed: 9), bias = randomTensor([5], seed: 10)
        #expect(try gradientCheck([x, w, bias]) { try $0[0].linear(weight: $0[1], bias: $0[2]) } < 1e-2)
    }

    @Test func reductions() throws {
        let x = randomTensor([2, 3, 4], seed: 11)
        #expect(try gradientCheck([x]) { $0[0].sum() } < 1e-2)
        #expect(try gradientCheck([x]) { $0[0].mean() } < 1e-2)
        #expect(try gradientCheck([x]) { try $0[0].sum(axis: 1) } < 1e-2)
        #expect(try gradientCheck([x]) { try $0[0].mean(axes: [0, 2], keepDims: true) } < 1e-2)
    }

    @Test func shapeOps() throws {
        let x = randomTensor([2, 3, 4], seed: 12), y = randomTensor([2, 1, 4], seed: 13)
        #expect(try gradientCheck([x]) { try $0[0].reshaped([6, -1]) } < 1e-2)
        #expect(try gradientCheck([x]) { try $0[0].permuted([2, 0, 1]) } < 1e-2)
        #expect(try gradientCheck([x]) { try $0[0].sliced(axis: 1, 1..<3) } < 1e-2)
        #expect(try gradientCheck([x, y]) { try Tensor.concat([$0[0], $0[1]], axis: 1) } < 1e-2)
        #expect(try gradientCheck([x, x.detached()]) { try Tensor.stack([$0[0], $0[1]], axis: 0) } < 1e-2)
    }

    @Test func softmaxFamily() throws {
        let x = randomTensor([3, 5], seed: 14)
        #expect(try gradientCheck([x]) { try $0[0].softmax(axis: 1) } < 1e-2)
        #expect(try gradientCheck([x]) { try $0[0].softmax(axis: 0) } < 1e-2)
        #expect(try gradientCheck([x]) { try $0[0].logSoftmax(axis: -1) } < 1e-2)
        let mask = try Tensor(shape: [3, 5], data: [1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        #expect(try gradientCheck([x]) { try $0[0].maskedSoftmax(mask: mask, axis: 1) } < 1e-2)
        let p = try x.maskedSoftmax(mask: mask, axis: 1)
        #expect(p.data[2] == 0 && p.data[4] == 0)
        #expect(p.data[5..<10].allSatisfy { $0 == 0 })  // nothing present: zeros, not NaN
        #expect(abs(p.data[0] + p.data[1] + p.data[3] - 1) < 1e-6)
    }

    @Test func crossEntropyWeightsAndSmoothing() throws {
        let logits = randomTensor([4, 3], seed: 15)
        let weight = try Tensor(shape: [3], data: [0.5, 1, 2])
        #expect(try gradientCheck([logits]) {
            try Losses.crossEntropy($0[0], targets: [0, 2, 1, 2], weight: weight, labelSmoothing: 0.1)
        } < 1e-2)
        // Uniform logits: every log-prob is −log C, so the loss is log C times
        // ((1−ε)·Σw[y] + ε/C·N·Σw) / Σw[y] = (0.8·6 + 0.05·2·10) / 6.
        let flat = Tensor.zeros([2, 4])
        let l = try Losses.crossEntropy(flat, targets: [1, 3], weight: Tensor([1, 2, 3, 4]), labelSmoothing: 0.2)
        #expect(abs(l.item - Float(5.8 / 6) * log(Float(4))) < 1e-5)
        #expect(throws: ShapeError.self) { try Losses.crossEntropy(flat, targets: [1]) }
    }
}

@Suite struct EdgeCases {
    @Test func emptyBatchesDoNotCrash() throws {
        let x = Tensor.zeros([0, 4]).requiringGrad()
        let w = randomTensor([3, 4], seed: 40).requiringGrad()
        let y = try x.linear(weight: w, bias: Tensor.zeros([3]))
        #expect(y.shape == [0, 3])
        try y.sum().backward()
        #expect(w.grad?.data.allSatisfy { $0 == 0 } ?? true)
        #expect(try Tensor.zeros([0, 2]).matmul(Tensor.zeros([2, 5])).shape == [0, 5])
        #expect(throws: ShapeError.self) { try Tensor.zeros([0, 1, 4, 4]).conv2d(weight: Tensor.zeros([2, 1, 3, 3])) }
    }
}

/// In the serialized ThreadingTests suite: these switch Engine.threads.
extension ThreadingTests {
    /// Row and column splits compute disjoint blocks with the full K sum:
    /// repeatable bits for a thread count, rounding-level agreement across counts.
    @Test func splitProductsAreDeterministic() throws {
        let a = randomTensor([96, 130], seed: 50), b = randomTensor([130, 120], seed: 51)
        let tall = randomTensor([3, 700], seed: 52), wide = randomTensor([700, 900], seed: 53)
        func run(_ threads: Int) throws -> [UInt32] {
            Engine.configure(threads: threads)
            defer { Engine.configure(threads: 1) }
            let (x, y) = (a.detached().requiringGrad(), b.detached().requiringGrad())
            let z = try x.matmul(y)
            try z.backward(Tensor.ones(z.shape))
            let t = try tall.matmul(wide)
            let l = try a.linear(weight: b.transposed(0, 1), bias: nil)
            return (z.data + x.grad!.data + y.grad!.data + t.data + l.data).map(\.bitPattern)
        }
        let (a2, b2, one) = (try run(2), try run(2), try run(1))
        #expect(a2 == b2)
        // Across thread counts only the summation order may differ. Two orders of a float32 sum of k
        // terms differ by at most 2·k·u·Σ|term| (u = 2^-24), whatever kernel the CPU's BLAS picks
        // (an AVX-512 kernel blocks K otherwise than an AVX2 one): the bound, per output, in Double.
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        let (av, bv, tv, wv) = (a.data, b.data, tall.data, wide.data)
        let product = Self.reorderingBounds(m, k, n, { av[$0 * k + $1] }, { bv[$0 * n + $1] })
        let xGrad = Self.reorderingBounds(m, n, k, { _, _ in 1 }, { q, p in bv[p * n + q] })     // ones · bᵀ
        let yGrad = Self.reorderingBounds(k, m, n, { p, i in av[i * k + p] }, { _, _ in 1 })     // aᵀ · ones
        let tallWide = Self.reorderingBounds(3, 700, 900, { tv[$0 * 700 + $1] }, { wv[$0 * 900 + $1] })
        let bounds = product + xGrad + yGrad + tallWide + product
        #expect(bounds.count == one.count)
        var beyond = 0
        for (index, bound) in bounds.enumerated() {
            let difference = abs(Double(Float(bitPattern: a2[index])) - Double(Float(bitPattern: one[index])))
            if difference > bound { beyond += 1 }
        }
        #expect(beyond == 0, "\(beyond) of \(one.count) outputs differ by more than reordering can explain")
    }

    /// Per output of x·y (x [m, k], y [k, n], read through the closures): 2·k·u·Σ_p |x_ip·y_pj|, in Double.
    static func reorderingBounds(_ m: Int, _ k: Int, _ n: Int, _ x: (Int, Int) -> Float, _ y: (Int, Int) -> Float) -> [Double] {
        let scale = Double(k) * Double(Float.ulpOfOne)   // 2·k·u with u = ulpOfOne / 2
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k {
                let left = Double(abs(x(i, p)))
                for j in 0..<n { out[i * n + j] += left * Double(abs(y(p, j))) }
            }
        }
        return out.map { $0 * scale }
    }

    @Test func badKernelArgumentsThrow() {
        let x = Tensor.zeros([1, 1, 4, 4])
        #expect(throws: NNError.self) { try x.maxPool2d(kernel: (2, 2), stride: (0, 1)) }
        #expect(throws: NNError.self) { try x.conv2d(weight: Tensor.zeros([1, 1, 2, 2]), options: .init(stride: (0, 1))) }
    }
}
