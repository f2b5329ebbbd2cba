/// NumPy-style broadcasting: shapes align on the right; a size-1 or missing
/// dimension stretches.
func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw ShapeError(op, a, b, "not broadcastable")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides that read `shape` as if it had `outShape` (zero along stretched axes).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let offset = outShape.count - shape.count
    return (0..<outShape.count).map { i in
        i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
    }
}

/// Calls `body(outIndex, aIndex, bIndex)` for every output element in order.
/// The innermost axis is a plain loop so that the closure inlines well.
@inline(__always)
func forEachBroadcast(_ outShape: [Int], _ sa: [Int], _ sb: [Int],
                      _ body: (Int, Int, Int) -> Void) {
    let total = shapeCount(outShape)
    guard total > 0 else { return }
    let rank = outShape.count
    if rank == 0 {
        body(0, 0, 0)
        return
    }
    let inner = outShape[rank - 1]
    let ia = sa[rank - 1], ib = sb[rank - 1]
    var index = [Int](repeating: 0, count: rank)
    var offA = 0, offB = 0, o = 0
    while o < total {
        var pa = offA, pb = offB
        for _ in 0..<inner {
            body(o, pa, pb)
            o += 1
            pa += ia
            pb += ib
        }
        // Odometer over the outer axes.
        var d = rank - 2
        while d >= 0 {
            index[d] += 1
            offA += sa[d]
            offB += sb[d]
            if index[d] < outShape[d] { break }
            offA -= sa[d] * outShape[d]
            offB -= sb[d] * outShape[d]
            index[d] = 0
            d -= 1
        }
    }
}

/// Sums a gradient of `outShape` back down to the operand's `shape`.
func reduceToShape(_ g: [Float], from outShape: [Int], to shape: [Int]) -> [Float] {
    if outShape == shape { return g }
    var result = [Float](repeating: 0, count: shapeCount(shape))
    let strides = broadcastStrides(shape, to: outShape)
    let zero = [Int](repeating: 0, count: outShape.count)
    result.withUnsafeMutableBufferPointer { r in
        g.withUnsafeBufferPointer { gp in
            forEachBroadcast(outShape, strides, zero) { o, i, _ in r[i] += gp[o] }
        }
    }
    return result
}
