// Max, average, adaptive-average and global-average pooling over [N, C, H, W].

extension Tensor {
    private func poolOutput(_ op: String, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) throws -> (Int, Int) {
        guard rank == 4 else { throw ShapeError(op, shape, [kernel.0, kernel.1], "input must be [N,C,H,W]") }
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
        data.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                argmax.withUnsafeMutableBufferPointer { pa in
                    for p in 0..<planes {
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
        let inCount = count
        let outPlane = oh * ow
        return Autograd.record(Tensor(raw: [shape[0], shape[1], oh, ow], out, leaf: false), [self]) { g in
            var gx = [Float](repeating: 0, count: inCount)
            for p in 0..<planes {
                for k in 0..<outPlane {
                    let o = p * outPlane + k
                    gx[p * h * w + Int(argmax[o])] += g[o]
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
            for p in 0..<planes {
                var s: Float = 0
                for i in 0..<area { s += px[p * area + i] }
                out[p] = s / Float(area)
            }
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
