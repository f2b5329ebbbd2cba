import Foundation

// Softmax, log-softmax and the masked softmax used for attention over the
// modalities that are present.

extension Tensor {
    public func softmax(axis: Int = -1) throws -> Tensor {
        try softmaxImpl(axis: axis, mask: nil, op: "softmax")
    }

    /// Softmax where entries with mask 0 get probability 0. A slice whose mask
    /// is all 0 yields all zeros (nothing present, nothing attended) rather than NaN.
    public func maskedSoftmax(mask: Tensor, axis: Int = -1) throws -> Tensor {
        let b = try broadcastShape(shape, mask.shape, op: "maskedSoftmax")
        guard b == shape else {
            throw ShapeError("maskedSoftmax", shape, mask.shape, "mask must broadcast to the input")
        }
        return try softmaxImpl(axis: axis, mask: mask, op: "maskedSoftmax")
    }

    private func softmaxImpl(axis: Int, mask: Tensor?, op: String) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: op, shape: shape)
        let (outer, length, inner) = splitAround(shape, axis: a)
        var keep = [Bool](repeating: true, count: count)
        if let mask {
            let strides = broadcastStrides(mask.shape, to: shape)
            forEachBroadcast(shape, strides, strides) { o, j, _ in keep[o] = mask.data[j] != 0 }
        }
        var y = [Float](repeating: 0, count: count)
        let x = data
        for p in 0..<outer {
            for i in 0..<inner {
                let base = p * length * inner + i
                var mx = -Float.infinity
                for l in 0..<length where keep[base + l * inner] { mx = max(mx, x[base + l * inner]) }
                guard mx > -Float.infinity else { continue }
                var s: Float = 0
                for l in 0..<length where keep[base + l * inner] {
                    let e = Foundation.exp(x[base + l * inner] - mx)
                    y[base + l * inner] = e
                    s += e
                }
                let inv = 1 / s
                for l in 0..<length { y[base + l * inner] *= inv }
            }
        }
        let out = y
        return Autograd.record(Tensor(raw: shape, y, leaf: false), [self]) { g in
            // dx = y ⊙ (g − Σ g·y) along the axis.
            var gx = [Float](repeating: 0, count: out.count)
            for p in 0..<outer {
                for i in 0..<inner {
                    let base = p * length * inner + i
                    var dot: Float = 0
                    for l in 0..<length { dot += g[base + l * inner] * out[base + l * inner] }
                    for l in 0..<length {
                        let k = base + l * inner
                        gx[k] = out[k] * (g[k] - dot)
                    }
                }
            }
            return [gx]
        }
    }

    public func logSoftmax(axis: Int = -1) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "logSoftmax", shape: shape)
        let (outer, length, inner) = splitAround(shape, axis: a)
        var y = [Float](repeating: 0, count: count)
        let x = data
        for p in 0..<outer {
            for i in 0..<inner {
                let base = p * length * inner + i
                var mx = -Float.infinity
                for l in 0..<length { mx = max(mx, x[base + l * inner]) }
                var s: Float = 0
                for l in 0..<length { s += Foundation.exp(x[base + l * inner] - mx) }
                let lse = mx + Foundation.log(s)
                for l in 0..<length { y[base + l * inner] = x[base + l * inner] - lse }
            }
        }
        let out = y
        return Autograd.record(Tensor(raw: shape, y, leaf: false), [self]) { g in
            // dx = g − softmax · Σ g along the axis.
            var gx = [Float](repeating: 0, count: out.count)
            for p in 0..<outer {
                for i in 0..<inner {
                    let base = p * length * inner + i
                    var s: Float = 0
                    for l in 0..<length { s += g[base + l * inner] }
                    for l in 0..<length {
                        let k = base + l * inner
                        gx[k] = g[k] - Foundation.exp(out[k]) * s
                    }
                }
            }
            return [gx]
        }
    }
}
