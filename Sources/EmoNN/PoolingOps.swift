// Max, average, adaptive-average and global-average pooling over [N, C, H, W].

extension Tensor {
    private func poolOutput(_ op: String, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) throws -> (Int, Int) {
        guard rank == 4 else { throw ShapeError(op, shape, [kernel.0, kernel.1], "input must be [N,C,H,W]") }
        guard kernel.0 > 0, kernel.1 > 0, stride.0 > 0, stride.1 > 0, padding.0 >= 0, padding.1 >= 0 else {
            throw NNError.invalidArgument("\(op): kernel and stride must be ≥ 1 and padding ≥ 0")
        }
        guard padding.0 * 2 <= kernel.0, padding.1 * 2 <= kernel.1 else {
            throw ShapeError(op, shape, [kernel.0, kernel.1], "padding must be at most half the kernel")
        }
        let oh = (shape[2] + 2 * padding.0 - kernel.0) / stride.0 + 1
        let ow = (shape[3] + 2 * padding.1 - kernel.1) / stride.1 + 1
        guard oh > 0, ow > 0 else { throw ShapeError(op, shape, [kernel.0, kernel.1], "kernel larger than input") }
        return (oh, ow)
    }

    /// Max pooling; the position of each maximum is kept for the backward scatter.
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) throws -> Tensor {
        let st = stride ?? kernel
        let (oh, ow) = try poolOutput("maxPool2d", kernel: kernel, stride: st, padding: padding)
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        var out = [Float](repeating: 0, count: planes * oh * ow)
        var argmax = [Int32](repeating: 0, count: out.count)
        let fast = kernel == (2, 2) && st == (2, 2) && padding == (0, 0)
        data.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                argmax.withUnsafeMutableBufferPointer { pa in
                    parallelChunks(planes) { range, _ in
                    for p in range {
                        if fast {
                            maxPool2x2(px.baseAddress! + p * h * w, h: h, w: w, oh: oh, ow: ow,
                                       po.baseAddress! + p * oh * ow, pa.baseAddress! + p * oh * ow)
                            continue
                        }
                        let plane = px.baseAddress! + p * h * w
                        for y in 0..<oh {
                            for x in 0..<ow {
                                var best = -Float.infinity, at = -1
                                for i in 0..<kernel.0 {
                                    let iy = y * st.0 - padding.0 + i
                                    guard iy >= 0 && iy < h else { continue }
                                    for j in 0..<kernel.1 {
                                        let ix = x * st.1 - padding.1 + j
                                        guard ix >= 0 && ix < w else { continue }
                                        let v = plane[iy * w + ix]
                                        // NaN propagates, as in PyTorch.
                                        if v > best || v.isNaN || at < 0 { best = v; at = iy * w + ix }
                                    }
                                }
                                let o = (p * oh + y) * ow + x
                                po[o] = best
                                pa[o] = Int32(at)
                            }
                        }
                    }
                    }
                }
            }
        }
        let inCount = count
        let outPlane = oh * ow
        return Autograd.record(Tensor(raw: [shape[0], shape[1], oh, ow], out, leaf: false), [self]) { g in
            let gx = uninitializedFloats(inCount) { pgx in
                g.withUnsafeBufferPointer { pg in
                    argmax.withUnsafeBufferPointer { pa in
                        parallelChunks(planes) { range, _ in
                            for p in range {
                                let plane = pgx.baseAddress! + p * h * w
                                plane.update(repeating: 0, count: h * w)
                                for k in 0..<outPlane {
                                    let o = p * outPlane + k
                                    plane[Int(pa[o])] += pg[o]
                                }
                            }
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// Average pooling; padded cells count in the divisor (PyTorch's default).
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) throws -> Tensor {
        let st = stride ?? kernel
        let (oh, ow) = try poolOutput("avgPool2d", kernel: kernel, stride: st, padding: padding)
        let windows = (0..<oh).flatMap { y in
            (0..<ow).map { x in
                (y * st.0 - padding.0, min(y * st.0 - padding.0 + kernel.0, shape[2] + padding.0),
                 x * st.1 - padding.1, min(x * st.1 - padding.1 + kernel.1, shape[3] + padding.1))
            }
        }
        return try windowMean("avgPool2d", oh: oh, ow: ow, windows: windows)
    }

    /// Adaptive average pooling to a fixed output size, with PyTorch's
    /// floor/ceil window bounds.
    public func adaptiveAvgPool2d(_ size: (Int, Int)) throws -> Tensor {
        guard rank == 4, size.0 > 0, size.1 > 0 else {
            throw ShapeError("adaptiveAvgPool2d", shape, [size.0, size.1], "input must be [N,C,H,W]")
        }
        let (h, w) = (shape[2], shape[3])
        let windows = (0..<size.0).flatMap { y in
            (0..<size.1).map { x in
                (y * h / size.0, ((y + 1) * h + size.0 - 1) / size.0,
                 x * w / size.1, ((x + 1) * w + size.1 - 1) / size.1)
            }
        }
        return try windowMean("adaptiveAvgPool2d", oh: size.0, ow: size.1, windows: windows)
    }

    /// Mean over H and W: [N, C, H, W] → [N, C].
    public func globalAvgPool2d() throws -> Tensor {
        guard rank == 4 else { throw ShapeError("globalAvgPool2d", shape, [], "input must be [N,C,H,W]") }
        let planes = shape[0] * shape[1], area = shape[2] * shape[3]
        var out = [Float](repeating: 0, count: planes)
        data.withUnsafeBufferPointer { px in
            for p in 0..<planes { out[p] = vectorSum(px.baseAddress! + p * area, area) / Float(area) }
        }
        return Autograd.record(Tensor(raw: [shape[0], shape[1]], out, leaf: false), [self]) { g in
            var gx = [Float](repeating: 0, count: planes * area)
            for p in 0..<planes {
                let v = g[p] / Float(area)
                for i in 0..<area { gx[p * area + i] = v }
            }
            return [gx]
        }
    }

    /// Mean of each (y0, y1, x0, x1) window (bounds may reach into padding,
    /// whose cells count in the divisor but read as zero).
    private func windowMean(_ op: String, oh: Int, ow: Int, windows: [(Int, Int, Int, Int)]) throws -> Tensor {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        var out = [Float](repeating: 0, count: planes * oh * ow)
        let x = data
        for p in 0..<planes {
            for (k, win) in windows.enumerated() {
                let (y0, y1, x0, x1) = win
                var s: Float = 0
                for iy in max(y0, 0)..<min(y1, h) {
                    for ix in max(x0, 0)..<min(x1, w) { s += x[p * h * w + iy * w + ix] }
                }
                out[p * windows.count + k] = s / Float((y1 - y0) * (x1 - x0))
            }
        }
        let inCount = count
        return Autograd.record(Tensor(raw: [shape[0], shape[1], oh, ow], out, leaf: false), [self]) { g in
            var gx = [Float](repeating: 0, count: inCount)
            for p in 0..<planes {
                for (k, win) in windows.enumerated() {
                    let (y0, y1, x0, x1) = win
                    let v = g[p * windows.count + k] / Float((y1 - y0) * (x1 - x0))
                    for iy in max(y0, 0)..<min(y1, h) {
                        for ix in max(x0, 0)..<min(x1, w) { gx[p * h * w + iy * w + ix] += v }
                    }
                }
            }
            return [gx]
        }
    }
}

/// The 2×2, stride-2 case of the conv nets, branch-free: compares on random
/// activations mispredict half the time, which made the general loop ~10x
/// slower than memory speed. Ties keep the first position in row-major order.
@inline(__always)
private func maxPool2x2(_ x: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int,
                        _ out: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>) {
    let raw = UnsafeRawPointer(x)
    let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
    for y in 0..<oh {
        let r0 = 2 * y * w, r1 = r0 + w
        var x0 = 0
        while x0 + 8 <= ow {
            let c = 2 * x0
            let top16 = raw.loadUnaligned(fromByteOffset: (r0 + c) * 4, as: SIMD16<Float>.self)
            let bot16 = raw.loadUnaligned(fromByteOffset: (r1 + c) * 4, as: SIMD16<Float>.self)
            let (a, b, d, e) = (top16.evenHalf, top16.oddHalf, bot16.evenHalf, bot16.oddHalf)
            let i0 = SIMD8<Int32>(repeating: Int32(r0 + c)) &+ lanes
            let i1 = SIMD8<Int32>(repeating: Int32(r1 + c)) &+ lanes
            let tb = b .> a, be = e .> d
            let top = a.replacing(with: b, where: tb), topAt = i0.replacing(with: i0 &+ 1, where: tb)
            let bottom = d.replacing(with: e, where: be), bottomAt = i1.replacing(with: i1 &+ 1, where: be)
            let lower = bottom .> top
            UnsafeMutableRawPointer(out + y * ow + x0).storeBytes(
                of: top.replacing(with: bottom, where: lower), as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(arg + y * ow + x0).storeBytes(
                of: topAt.replacing(with: bottomAt, where: lower), as: SIMD8<Int32>.self)
            x0 += 8
        }
        while x0 < ow {
            let c = 2 * x0
            let a = x[r0 + c], b = x[r0 + c + 1], d = x[r1 + c], e = x[r1 + c + 1]
            let top = b > a ? b : a
            let topAt = b > a ? Int32(r0 + c + 1) : Int32(r0 + c)
            let bottom = e > d ? e : d
            let bottomAt = e > d ? Int32(r1 + c + 1) : Int32(r1 + c)
            let lower = bottom > top
            out[y * ow + x0] = lower ? bottom : top
            arg[y * ow + x0] = lower ? bottomAt : topAt
            x0 += 1
        }
    }
}
