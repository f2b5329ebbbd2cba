// 2-D convolution as im2col + sgemm, per sample and per group.
//
// Samples are split across workers, each with its own column buffer and a
// single-threaded sgemm. The column buffer is rebuilt in backward instead of
// being kept, which trades one extra im2col for not holding C·k²·H·W floats
// per sample.

public struct Conv2dOptions: Equatable, Sendable {
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int

    public init(stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation && a.groups == b.groups
    }
}

struct Conv2dPlan {
    let n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow: Int
    var cinG: Int { cin / groups }
    var coutG: Int { cout / groups }
    var colRows: Int { cinG * kh * kw }
    var spatial: Int { oh * ow }
    /// A 1×1, stride-1, unpadded kernel reads the input as its own column matrix.
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }
}

extension Tensor {
    /// x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] → [N, O, OH, OW].
    public func conv2d(weight: Tensor, bias: Tensor? = nil, options o: Conv2dOptions = .init()) throws -> Tensor {
        guard rank == 4, weight.rank == 4 else {
            throw ShapeError("conv2d", shape, weight.shape, "input must be [N,C,H,W] and weight [O,C/g,kh,kw]")
        }
        let g = o.groups
        guard g >= 1, shape[1] % g == 0, weight.shape[0] % g == 0, weight.shape[1] * g == shape[1] else {
            throw ShapeError("conv2d", shape, weight.shape, "channels do not match weight with groups=\(g)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw ShapeError("conv2d", weight.shape, bias.shape, "bias must be [out channels]")
        }
        guard o.stride.0 > 0, o.stride.1 > 0, o.dilation.0 > 0, o.dilation.1 > 0, o.padding.0 >= 0, o.padding.1 >= 0 else {
            throw NNError.invalidArgument("conv2d: stride and dilation must be ≥ 1 and padding ≥ 0")
        }
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        let oh = (shape[2] + 2 * o.padding.0 - o.dilation.0 * (kh - 1) - 1) / o.stride.0 + 1
        let ow = (shape[3] + 2 * o.padding.1 - o.dilation.1 * (kw - 1) - 1) / o.stride.1 + 1
        guard oh > 0, ow > 0 else {
            throw ShapeError("conv2d", shape, weight.shape, "kernel larger than padded input")
        }
        guard count > 0, weight.count > 0 else {
            throw ShapeError("conv2d", shape, weight.shape, "empty input or weight")
        }
        let p = Conv2dPlan(n: shape[0], cin: shape[1], h: shape[2], w: shape[3], cout: weight.shape[0],
                           kh: kh, kw: kw, sh: o.stride.0, sw: o.stride.1, ph: o.padding.0, pw: o.padding.1,
                           dh: o.dilation.0, dw: o.dilation.1, groups: g, oh: oh, ow: ow)
        let out = convForward(p, data, weight.data, bias?.data)
        let (x, wd) = (data, weight.data)
        let (needX, needW, needB) = (requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return Autograd.record(Tensor(raw: [p.n, p.cout, oh, ow], out, leaf: false), inputs) { gy in
            let (gx, gw) = convBackward(p, x, wd, gy, needX: needX, needW: needW)
            var grads: [[Float]?] = [gx, gw]
            if inputs.count == 3 { grads.append(needB ? convBiasGrad(p, gy) : nil) }
            return grads
        }
    }
}

func convForward(_ p: Conv2dPlan, _ x: [Float], _ w: [Float], _ bias: [Float]?) -> [Float] {
    let colSize = p.isPointwise ? 0 : p.colRows * p.spatial
    return uninitializedFloats(p.n * p.cout * p.spatial) { po in
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                // Samples are independent: each worker owns a column buffer and a
                // contiguous run of samples.
                parallelChunks(p.n) { samples, _ in
                    var col = [Float](repeating: 0, count: colSize)
                    col.withUnsafeMutableBufferPointer { pc in
                        for s in samples {
                            convForwardSample(p, s, px.baseAddress!, pw.baseAddress!, bias, pc.baseAddress, po.baseAddress!)
                        }
                    }
                }
            }
        }
    }
}

/// One sample's output: per group, im2col then W_g · col, then the bias.
@inline(__always)
private func convForwardSample(_ p: Conv2dPlan, _ s: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                               _ bias: [Float]?, _ col: UnsafeMutablePointer<Float>?,
                               _ out: UnsafeMutablePointer<Float>) {
    for g in 0..<p.groups {
        let xg = x + (s * p.cin + g * p.cinG) * p.h * p.w
        let src = p.isPointwise ? xg : im2colInto(p, xg, col!)
        sgemm(false, false, p.coutG, p.spatial, p.colRows, 1, w + g * p.coutG * p.colRows, p.colRows,
              src, p.spatial, 0, out + (s * p.cout + g * p.coutG) * p.spatial, p.spatial)
    }
    guard let bias else { return }
    for c in 0..<p.cout {
        let row = out + (s * p.cout + c) * p.spatial
        let b = bias[c]
        for i in 0..<p.spatial { row[i] += b }
    }
}

@inline(__always)
private func im2colInto(_ p: Conv2dPlan, _ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
    im2col(p, x, col)
    return UnsafePointer(col)
}

/// Pointers one backward worker needs; bundled to keep signatures short.
private struct ConvBackwardBuffers {
    let x, w, gy: UnsafePointer<Float>
    let gx: UnsafeMutablePointer<Float>?
    let gw: UnsafeMutablePointer<Float>?
    let col, dcol: UnsafeMutablePointer<Float>?
}

func convBackward(_ p: Conv2dPlan, _ x: [Float], _ w: [Float], _ gy: [Float],
                  needX: Bool, needW: Bool) -> ([Float]?, [Float]?) {
    var gx = [Float](repeating: 0, count: needX ? x.count : 0)
    // One weight-gradient accumulator per worker, summed in worker order
    // afterwards so that the result does not depend on scheduling.
    let workers = max(1, min(Engine.threads, p.n))
    var partialW = [[Float]](repeating: [], count: workers)
    let colSize = p.isPointwise ? 0 : p.colRows * p.spatial
    partialW.withUnsafeMutableBufferPointer { partials in
        x.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                gy.withUnsafeBufferPointer { pg in
                    gx.withUnsafeMutableBufferPointer { pgx in
                        parallelChunks(p.n, workers: workers) { samples, worker in
                            var gw = [Float](repeating: 0, count: needW ? w.count : 0)
                            var col = [Float](repeating: 0, count: needW ? colSize : 0)
                            var dcol = [Float](repeating: 0, count: needX ? colSize : 0)
                            gw.withUnsafeMutableBufferPointer { pgw in
                                col.withUnsafeMutableBufferPointer { pc in
                                    dcol.withUnsafeMutableBufferPointer { pd in
                                        let buffers = ConvBackwardBuffers(
                                            x: px.baseAddress!, w: pw.baseAddress!, gy: pg.baseAddress!,
                                            gx: needX ? pgx.baseAddress : nil, gw: needW ? pgw.baseAddress : nil,
                                            col: pc.baseAddress, dcol: pd.baseAddress)
                                        for s in samples { convBackwardSample(p, s, buffers) }
                                    }
                                }
                            }
                            partials[worker] = gw
                        }
                    }
                }
            }
        }
    }
    guard needW else { return (needX ? gx : nil, nil) }
    var gw = partialW[0]
    for k in 1..<workers where !partialW[k].isEmpty { addInPlace(&gw, partialW[k]) }
    return (needX ? gx : nil, gw)
}

/// One sample's contribution: dW_g += dY_g · colᵀ and dX = col2im(W_gᵀ · dY_g).
@inline(__always)
private func convBackwardSample(_ p: Conv2dPlan, _ s: Int, _ b: ConvBackwardBuffers) {
    for g in 0..<p.groups {
        let xOff = (s * p.cin + g * p.cinG) * p.h * p.w
        let gyg = b.gy + (s * p.cout + g * p.coutG) * p.spatial
        if let gw = b.gw {
            let src = p.isPointwise ? b.x + xOff : im2colInto(p, b.x + xOff, b.col!)
            sgemm(false, true, p.coutG, p.colRows, p.spatial, 1, gyg, p.spatial,
                  src, p.spatial, 1, gw + g * p.coutG * p.colRows, p.colRows)
        }
        if let gx = b.gx {
            let target = p.isPointwise ? gx + xOff : b.dcol!
            sgemm(true, false, p.colRows, p.spatial, p.coutG, 1, b.w + g * p.coutG * p.colRows, p.colRows,
                  gyg, p.spatial, 0, target, p.spatial)
            if !p.isPointwise { col2im(p, UnsafePointer(target), gx + xOff) }
        }
    }
}

func convBiasGrad(_ p: Conv2dPlan, _ gy: [Float]) -> [Float] {
    var gb = [Float](repeating: 0, count: p.cout)
    for s in 0..<p.n {
        for c in 0..<p.cout {
            let base = (s * p.cout + c) * p.spatial
            var acc: Float = 0
            for i in 0..<p.spatial { acc += gy[base + i] }
            gb[c] += acc
        }
    }
    return gb
}

/// Unfolds one sample's group of channels into [C·kh·kw, OH·OW].
@inline(__always)
func im2col(_ p: Conv2dPlan, _ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
    var row = 0
    for c in 0..<p.cinG {
        let plane = x + c * p.h * p.w
        for i in 0..<p.kh {
            for j in 0..<p.kw {
                let dst = col + row * p.spatial
                for y in 0..<p.oh {
                    let iy = y * p.sh - p.ph + i * p.dh
                    let line = dst + y * p.ow
                    if iy < 0 || iy >= p.h {
                        line.update(repeating: 0, count: p.ow)
                        continue
                    }
                    let srcLine = plane + iy * p.w
                    let xOff = j * p.dw - p.pw
                    if p.sw == 1 {
                        // Valid ow range where 0 ≤ ow + xOff < w; zeros either side.
                        let lo = max(0, -xOff), hi = min(p.ow, p.w - xOff)
                        if lo > 0 { line.update(repeating: 0, count: min(lo, p.ow)) }
                        if hi > lo { (line + lo).update(from: srcLine + lo + xOff, count: hi - lo) }
                        if hi < p.ow { (line + max(hi, 0)).update(repeating: 0, count: p.ow - max(hi, 0)) }
                    } else {
                        for xo in 0..<p.ow {
                            let ix = xo * p.sw + xOff
                            line[xo] = ix >= 0 && ix < p.w ? srcLine[ix] : 0
                        }
                    }
                }
                row += 1
            }
        }
    }
}

/// Adds a column matrix back onto the image it came from (the adjoint of im2col).
@inline(__always)
func col2im(_ p: Conv2dPlan, _ col: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
    var row = 0
    for c in 0..<p.cinG {
        let plane = x + c * p.h * p.w
        for i in 0..<p.kh {
            for j in 0..<p.kw {
                let src = col + row * p.spatial
                for y in 0..<p.oh {
                    let iy = y * p.sh - p.ph + i * p.dh
                    guard iy >= 0 && iy < p.h else { continue }
                    let line = src + y * p.ow
                    let dstLine = plane + iy * p.w
                    let xOff = j * p.dw - p.pw
                    if p.sw == 1 {
                        let lo = max(0, -xOff), hi = min(p.ow, p.w - xOff)
                        if hi > lo {
                            for xo in lo..<hi { dstLine[xo + xOff] += line[xo] }
                        }
                    } else {
                        for xo in 0..<p.ow {
                            let ix = xo * p.sw + xOff
                            if ix >= 0 && ix < p.w { dstLine[ix] += line[xo] }
                        }
                    }
                }
                row += 1
            }
        }
    }
}
