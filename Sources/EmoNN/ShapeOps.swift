// Reshape, permute, concat, stack and slice. Reshape shares storage; the
// others copy, because every tensor here is contiguous.

extension Tensor {
    /// One dimension may be -1 and is then inferred.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var target = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw ShapeError("reshape", shape, newShape, "cannot infer the -1 dimension")
            }
            target[hole] = count / known
        }
        guard target.allSatisfy({ $0 >= 0 }), shapeCount(target) == count else {
            throw ShapeError("reshape", shape, newShape, "element counts differ")
        }
        return Autograd.record(Tensor(raw: target, data, leaf: false), [self]) { g in [g] }
    }

    public func flattened(from axis: Int = 1) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "flatten", shape: shape)
        return try reshaped(Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    public func unsqueezed(_ axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        guard a >= 0, a <= rank else { throw ShapeError("unsqueeze", shape, [axis], "axis out of range") }
        var s = shape
        s.insert(1, at: a)
        return try reshaped(s)
    }

    public func squeezed(_ axis: Int) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "squeeze", shape: shape)
        guard shape[a] == 1 else { throw ShapeError("squeeze", shape, [axis], "dimension is not 1") }
        var s = shape
        s.remove(at: a)
        return try reshaped(s)
    }

    /// Reorders axes: output axis i is input axis `order[i]`.
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw ShapeError("permute", shape, order, "order is not a permutation of the axes")
        }
        let outShape = order.map { shape[$0] }
        let inStrides = contiguousStrides(shape)
        let gathered = order.map { inStrides[$0] }
        let out = permuteCopy(data, outShape: outShape, sourceStrides: gathered)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        let inShape = shape
        return Autograd.record(Tensor(raw: outShape, out, leaf: false), [self]) { g in
            let outStrides = contiguousStrides(outShape)
            return [permuteCopy(g, outShape: inShape, sourceStrides: inverse.map { outStrides[$0] })]
        }
    }

    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        let x = try normalizeAxis(a, rank: rank, op: "transpose", shape: shape)
        let y = try normalizeAxis(b, rank: rank, op: "transpose", shape: shape)
        var order = Array(0..<rank)
        order.swapAt(x, y)
        return try permuted(order)
    }

    /// Elements `range` along `axis`.
    public func sliced(axis: Int, _ range: Range<Int>) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "slice", shape: shape)
        guard range.lowerBound >= 0, range.upperBound <= shape[a] else {
            throw ShapeError("slice", shape, [range.lowerBound, range.upperBound], "range outside the axis")
        }
        let (outer, length, inner) = splitAround(shape, axis: a)
        let m = range.count
        var outShape = shape
        outShape[a] = m
        var out = [Float](repeating: 0, count: outer * m * inner)
        let start = range.lowerBound
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<outer {
                    let s = (o * length + start) * inner
                    let d = o * m * inner
                    for i in 0..<(m * inner) { dst[d + i] = src[s + i] }
                }
            }
        }
        let inCount = count
        return Autograd.record(Tensor(raw: outShape, out, leaf: false), [self]) { g in
            var gx = [Float](repeating: 0, count: inCount)
            for o in 0..<outer {
                let s = (o * length + start) * inner
                let d = o * m * inner
                for i in 0..<(m * inner) { gx[s + i] = g[d + i] }
            }
            return [gx]
        }
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw NNError.invalidArgument("concat of no tensors") }
        let a = try normalizeAxis(axis, rank: first.rank, op: "concat", shape: first.shape)
        for t in tensors.dropFirst() {
            var x = t.shape, y = first.shape
            guard x.count == y.count else { throw ShapeError("concat", first.shape, t.shape, "ranks differ") }
            x[a] = 0
            y[a] = 0
            guard x == y else { throw ShapeError("concat", first.shape, t.shape, "non-concat dimensions differ") }
        }
        let lengths = tensors.map { $0.shape[a] }
        let total = lengths.reduce(0, +)
        let (outer, _, inner) = splitAround(first.shape, axis: a)
        var outShape = first.shape
        outShape[a] = total
        var out = [Float](repeating: 0, count: outer * total * inner)
        var offset = 0
        for (t, len) in zip(tensors, lengths) {
            let block = len * inner
            for o in 0..<outer {
                let d = (o * total + offset) * inner
                for i in 0..<block { out[d + i] = t.data[o * block + i] }
            }
            offset += len
        }
        return Autograd.record(Tensor(raw: outShape, out, leaf: false), tensors) { g in
            var grads: [[Float]?] = []
            var off = 0
            for len in lengths {
                let block = len * inner
                var gi = [Float](repeating: 0, count: outer * block)
                for o in 0..<outer {
                    let s = (o * total + off) * inner
                    for i in 0..<block { gi[o * block + i] = g[s + i] }
                }
                grads.append(gi)
                off += len
            }
            return grads
        }
    }

    /// Joins equally shaped tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw NNError.invalidArgument("stack of no tensors") }
        for t in tensors where t.shape != first.shape {
            throw ShapeError("stack", first.shape, t.shape, "stacked tensors must have equal shapes")
        }
        return try concat(tensors.map { try $0.unsqueezed(axis) }, axis: axis)
    }
}

/// Gathers `source` read with `sourceStrides` into a contiguous `outShape` array.
func permuteCopy(_ source: [Float], outShape: [Int], sourceStrides: [Int]) -> [Float] {
    var out = [Float](repeating: 0, count: shapeCount(outShape))
    let zero = [Int](repeating: 0, count: outShape.count)
    out.withUnsafeMutableBufferPointer { o in
        source.withUnsafeBufferPointer { s in
            forEachBroadcast(outShape, sourceStrides, zero) { i, j, _ in o[i] = s[j] }
        }
    }
    return out
}
