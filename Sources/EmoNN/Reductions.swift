// Sums and means over all elements or chosen axes.

extension Tensor {
    public func sum() -> Tensor {
        var s: Float = 0
        for v in data { s += v }
        let n = count
        return Autograd.record(Tensor(raw: [], [s], leaf: false), [self]) { g in
            [[Float](repeating: g[0], count: n)]
        }
    }

    public func mean() -> Tensor {
        sum() / Float(max(count, 1))
    }

    /// Sum over `axis`; the axis is kept as size 1 when `keepDims`.
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "sum", shape: shape)
        let (outer, length, inner) = splitAround(shape, axis: a)
        var out = [Float](repeating: 0, count: outer * inner)
        out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { x in
                for p in 0..<outer {
                    for l in 0..<length {
                        let base = (p * length + l) * inner
                        for i in 0..<inner { o[p * inner + i] += x[base + i] }
                    }
                }
            }
        }
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let n = count
        return Autograd.record(Tensor(raw: outShape, out, leaf: false), [self]) { g in
            var gx = [Float](repeating: 0, count: n)
            for p in 0..<outer {
                for l in 0..<length {
                    let base = (p * length + l) * inner
                    for i in 0..<inner { gx[base + i] = g[p * inner + i] }
                }
            }
            return [gx]
        }
    }

    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "mean", shape: shape)
        return try sum(axis: a, keepDims: keepDims) / Float(max(shape[a], 1))
    }

    /// Sum over several axes (reduced from the highest down so indices stay valid).
    public func sum(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let resolved = try axes.map { try normalizeAxis($0, rank: rank, op: "sum", shape: shape) }
        var t = self
        for a in Set(resolved).sorted(by: >) { t = try t.sum(axis: a, keepDims: keepDims) }
        return t
    }

    public func mean(axes: [Int], keepDims: Bool = false) throws -> Tensor {
        let resolved = try axes.map { try normalizeAxis($0, rank: rank, op: "mean", shape: shape) }
        let n = Set(resolved).map { shape[$0] }.reduce(1, *)
        return try sum(axes: resolved, keepDims: keepDims) / Float(max(n, 1))
    }
}

extension Tensor {
    /// Index of the largest value along the last axis, per row (not
    /// differentiable; for accuracy and predictions). Ties give the first index.
    public func argmaxLastAxis() throws -> [Int] {
        guard rank >= 1, let width = shape.last, width > 0 else {
            throw ShapeError("argmax", shape, [], "needs a non-empty last axis")
        }
        return (0..<(count / width)).map { row in
            var best = 0
            for j in 1..<width where data[row * width + j] > data[row * width + best] { best = j }
            return best
        }
    }
}
