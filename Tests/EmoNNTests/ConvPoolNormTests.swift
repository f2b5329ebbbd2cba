import Testing
@testable import EmoNN

/// Direct seven-loop convolution, the reference for im2col + sgemm.
func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ o: Conv2dOptions) -> [Float] {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oc, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let oh = (h + 2 * o.padding.0 - o.dilation.0 * (kh - 1) - 1) / o.stride.0 + 1
    let ow = (wd + 2 * o.padding.1 - o.dilation.1 * (kw - 1) - 1) / o.stride.1 + 1
    let ocg = oc / o.groups
    var out = [Float](repeating: 0, count: n * oc * oh * ow)
    for s in 0..<n { for f in 0..<oc { for y in 0..<oh { for xo in 0..<ow {
        var acc: Double = Double(b?.data[f] ?? 0)
        let g = f / ocg
        for ci in 0..<cg { for i in 0..<kh { for j in 0..<kw {
            let iy = y * o.stride.0 - o.padding.0 + i * o.dilation.0
            let ix = xo * o.stride.1 - o.padding.1 + j * o.dilation.1
            guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
            let cin = g * cg + ci
            acc += Double(x.data[((s * c + cin) * h + iy) * wd + ix]) * Double(w.data[((f * cg + ci) * kh + i) * kw + j])
        } } }
        out[((s * oc + f) * oh + y) * ow + xo] = Float(acc)
    } } } }
    return out
}

@Suite struct ConvolutionTests {
    static let cases: [Conv2dOptions] = [
        .init(),
        .init(padding: (1, 1)),
        .init(stride: (2, 1), padding: (1, 2)),
        .init(padding: (2, 2), dilation: (2, 2)),
        .init(padding: (1, 1), groups: 2),
    ]

    @Test(arguments: cases)
    func matchesDirectConvolution(options: Conv2dOptions) throws {
        let x = randomTensor([2, 4, 7, 6], seed: 1)
        let w = randomTensor([6, 4 / options.groups, 3, 3], seed: 2)
        let b = randomTensor([6], seed: 3)
        let y = try x.conv2d(weight: w, bias: b, options: options)
        let ref = naiveConv(x, w, b, options)
        #expect(y.count == ref.count)
        let err = zip(y.data, ref).map { abs($0 - $1) }.max() ?? 1
        #expect(err < 1e-4)
    }

    @Test(arguments: cases)
    func gradients(options: Conv2dOptions) throws {
        let x = randomTensor([2, 4, 5, 5], seed: 4)
        let w = randomTensor([4, 4 / options.groups, 3, 3], seed: 5, scale: 0.5)
        let b = randomTensor([4], seed: 6)
        #expect(try gradientCheck([x, w, b]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], options: options) } < 2e-2)
    }

    @Test func pointwiseGradients() throws {
        let x = randomTensor([2, 3, 4, 4], seed: 7), w = randomTensor([5, 3, 1, 1], seed: 8)
        #expect(try gradientCheck([x, w]) { try $0[0].conv2d(weight: $0[1]) } < 1e-2)
    }

    @Test func rejectsMismatchedChannels() {
        let x = Tensor.zeros([1, 3, 8, 8]), w = Tensor.zeros([4, 2, 3, 3])
        #expect(throws: ShapeError.self) { try x.conv2d(weight: w) }
    }
}

@Suite struct PoolingTests {
    @Test func maxPoolValuesAndGradient() throws {
        let x = try Tensor(shape: [1, 1, 2, 4], data: [1, 5, 2, 0, 3, 4, 7, 8])
        let y = try x.maxPool2d(kernel: (2, 2))
        #expect(y.data == [5, 8])
        let r = randomTensor([2, 3, 6, 5], seed: 9)
        #expect(try gradientCheck([r]) { try $0[0].maxPool2d(kernel: (2, 2)) } < 1e-2)
        #expect(try gradientCheck([r], eps: 1e-3) { try $0[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) } < 1e-2)
    }

    @Test func averagePools() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        #expect(try x.avgPool2d(kernel: (2, 2)).data == [2.5])
        // Padded cells count in the divisor: corner window sees one value of four.
        #expect(try x.avgPool2d(kernel: (2, 2), stride: (1, 1), padding: (1, 1)).data[0] == 0.25)
        let r = randomTensor([2, 2, 7, 5], seed: 10)
        #expect(try gradientCheck([r]) { try $0[0].avgPool2d(kernel: (3, 2), stride: (2, 1), padding: (1, 1)) } < 1e-2)
        #expect(try gradientCheck([r]) { try $0[0].adaptiveAvgPool2d((3, 2)) } < 1e-2)
        #expect(try gradientCheck([r]) { try $0[0].globalAvgPool2d() } < 1e-2)
        let g = try r.globalAvgPool2d(), m = try r.mean(axes: [2, 3])
        #expect(zip(g.data, m.data).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}

@Suite struct BatchNormTests {
    @Test func trainingNormalisesAndUpdatesRunningStats() throws {
        let x = randomTensor([4, 3, 5], seed: 11)
        let rm = Tensor.zeros([3]), rv = Tensor.ones([3])
        let y = try x.batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        let mean = try y.mean(axes: [0, 2])
        #expect(mean.data.allSatisfy { abs($0) < 1e-5 })
        let st = channelStatistics(x.data, n: 4, c: 3, inner: 5)
        #expect(abs(rm.data[0] - 0.1 * st.mean[0]) < 1e-6)
        #expect(abs(rv.data[1] - (0.9 + 0.1 * st.variance[1] * 20 / 19)) < 1e-5)
    }

    @Test func gradientsTrainAndEval() throws {
        let x = randomTensor([3, 2, 4, 3], seed: 12)
        let w = randomTensor([2], seed: 13), b = randomTensor([2], seed: 14)
        #expect(try gradientCheck([x, w, b]) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: Tensor.zeros([2]),
                                runningVar: Tensor.ones([2]), training: true)
        } < 2e-2)
        let rm = randomTensor([2], seed: 15), rv = Tensor.full([2], 2)
        #expect(try gradientCheck([x, w, b]) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
        } < 1e-2)
        let x1 = randomTensor([6, 3], seed: 16)
        #expect(try gradientCheck([x1]) {
            try $0[0].batchNorm(weight: nil, bias: nil, runningMean: Tensor.zeros([3]),
                                runningVar: Tensor.ones([3]), training: true)
        } < 2e-2)
    }
}

@Suite struct VectorPathTests {
    /// Rows wide enough for the SIMD 2×2 max-pool path, checked against a scalar reference.
    @Test func maxPool2x2VectorPathMatchesReference() throws {
        let x = randomTensor([2, 3, 6, 37], seed: 20)
        let y = try x.maxPool2d(kernel: (2, 2))
        #expect(y.shape == [2, 3, 3, 18])
        for p in 0..<6 { for r in 0..<3 { for c in 0..<18 {
            let base = p * 6 * 37 + 2 * r * 37 + 2 * c
            let ref = max(max(x.data[base], x.data[base + 1]), max(x.data[base + 37], x.data[base + 38]))
            #expect(y.data[(p * 3 + r) * 18 + c] == ref)
        } } }
        #expect(try gradientCheck([x], eps: 1e-3) { try $0[0].maxPool2d(kernel: (2, 2)) } < 1e-2)
    }

    @Test func reluVectorPathGradient() throws {
        let x = awayFromZero([3, 29], seed: 21)
        #expect(try gradientCheck([x]) { $0[0].relu() } < 1e-2)
    }
}

@Suite(.serialized) struct ThreadingTests {
    /// Two workers split samples and sum weight-gradient partials in a fixed
    /// order: repeated runs give identical bits, and agree with one worker to rounding.
    @Test func twoWorkersAreDeterministic() throws {
        let x = randomTensor([5, 3, 9, 9], seed: 22), w = randomTensor([4, 3, 3, 3], seed: 23)
        func run(_ threads: Int) throws -> [UInt32] {
            Engine.configure(threads: threads)
            defer { Engine.configure(threads: 1) }
            let (xx, ww) = (x.detached().requiringGrad(), w.detached().requiringGrad())
            let y = try xx.conv2d(weight: ww, options: .init(padding: (1, 1)))
            let z = try y.batchNorm(weight: nil, bias: nil, runningMean: Tensor.zeros([4]), runningVar: Tensor.ones([4]),
                                    training: true).relu().maxPool2d(kernel: (2, 2)).sum()
            try z.backward()
            return (ww.grad!.data + xx.grad!.data).map(\.bitPattern)
        }
        let a = try run(2), b = try run(2), c = try run(1)
        #expect(a == b)
        let diff = zip(a, c).map { abs(Float(bitPattern: $0) - Float(bitPattern: $1)) }.max() ?? 1
        #expect(diff < 1e-4)
    }
}
