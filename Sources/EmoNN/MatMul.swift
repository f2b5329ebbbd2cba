// Matrix products through sgemm, with their gradients.

extension Tensor {
    /// [m,k]·[k,n], batched [b,m,k]·[b,k,n], or [..., m, k]·[k, n].
    public func matmul(_ other: Tensor) throws -> Tensor {
        let a = self, b = other
        guard a.rank >= 2, b.rank >= 2 else {
            throw ShapeError("matmul", a.shape, b.shape, "both operands need at least two dimensions")
        }
        let k = a.shape[a.rank - 1]
        guard b.shape[b.rank - 2] == k else {
            throw ShapeError("matmul", a.shape, b.shape, "inner dimensions differ")
        }
        if b.rank == 2 {
            // Leading dimensions of `a` fold into the rows of one product.
            let m = a.count / max(k, 1)
            let n = b.shape[1]
            let out = Tensor.gemmForward(a.data, b.data, m: m, n: n, k: k, batch: 1)
            let outShape = Array(a.shape.dropLast()) + [n]
            return Tensor.recordMatmul(out, a, b, outShape, m: m, n: n, k: k, batch: 1, sharedB: true)
        }
        guard a.rank == 3, b.rank == 3, a.shape[0] == b.shape[0] else {
            throw ShapeError("matmul", a.shape, b.shape, "batched matmul needs [b,m,k]·[b,k,n] with equal b")
        }
        let (batch, m, n) = (a.shape[0], a.shape[1], b.shape[2])
        let out = Tensor.gemmForward(a.data, b.data, m: m, n: n, k: k, batch: batch)
        return Tensor.recordMatmul(out, a, b, [batch, m, n], m: m, n: n, k: k, batch: batch, sharedB: false)
    }

    static func gemmForward(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, batch: Int) -> [Float] {
        var out = [Float](repeating: 0, count: batch * m * n)
        // Empty operands have no base address; the product is all zeros (or empty).
        guard !a.isEmpty, !b.isEmpty, !out.isEmpty else { return out }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    for i in 0..<batch {
                        parallelSgemm(false, false, m, n, k, 1, pa.baseAddress! + i * m * k, k,
                              pb.baseAddress! + i * k * n, n, 0, pc.baseAddress! + i * m * n, n)
                    }
                }
            }
        }
        return out
    }

    private static func recordMatmul(_ out: [Float], _ a: Tensor, _ b: Tensor, _ outShape: [Int],
                                     m: Int, n: Int, k: Int, batch: Int, sharedB: Bool) -> Tensor {
        let (ad, bd) = (a.data, b.data)
        let (needA, needB) = (a.requiresGrad, b.requiresGrad)
        return Autograd.record(Tensor(raw: outShape, out, leaf: false), [a, b]) { g in
            var ga: [Float]? = nil, gb: [Float]? = nil
            if g.isEmpty || ad.isEmpty || bd.isEmpty {
                return [needA ? [Float](repeating: 0, count: ad.count) : nil,
                        needB ? [Float](repeating: 0, count: bd.count) : nil]
            }
            g.withUnsafeBufferPointer { pg in
                if needA {
                    var r = [Float](repeating: 0, count: ad.count)
                    bd.withUnsafeBufferPointer { pb in
                        r.withUnsafeMutableBufferPointer { pr in
                            for i in 0..<batch {
                                // dA = dC · Bᵀ
                                parallelSgemm(false, true, m, k, n, 1, pg.baseAddress! + i * m * n, n,
                                      pb.baseAddress! + (sharedB ? 0 : i * k * n), n,
                                      0, pr.baseAddress! + i * m * k, k)
                            }
                        }
                    }
                    ga = r
                }
                if needB {
                    var r = [Float](repeating: 0, count: bd.count)
                    ad.withUnsafeBufferPointer { pa in
                        r.withUnsafeMutableBufferPointer { pr in
                            for i in 0..<batch {
                                // dB = Aᵀ · dC
                                parallelSgemm(true, false, k, n, m, 1, pa.baseAddress! + i * m * k, k,
                                      pg.baseAddress! + i * m * n, n,
                                      0, pr.baseAddress! + (sharedB ? 0 : i * k * n), n)
                            }
                        }
                    }
                    gb = r
                }
            }
            return [ga, gb]
        }
    }

    /// x·Wᵀ + b with W shaped [out, in] (PyTorch's layout); x is [..., in].
    public func linear(weight: Tensor, bias: Tensor?) throws -> Tensor {
        guard weight.rank == 2, rank >= 1, shape[rank - 1] == weight.shape[1] else {
            throw ShapeError("linear", shape, weight.shape, "input features must equal weight.shape[1]")
        }
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        if let bias, bias.shape != [outF] {
            throw ShapeError("linear", weight.shape, bias.shape, "bias must be [out features]")
        }
        guard count > 0, inF > 0, outF > 0 else {
            // Degenerate sizes: compose from ops that handle emptiness.
            return try matmul(weight.transposed(0, 1)).adding(bias ?? Tensor.zeros([outF]))
        }
        let m = count / inF
        var out = [Float](repeating: 0, count: m * outF)
        if let bias {
            for r in 0..<m { for j in 0..<outF { out[r * outF + j] = bias.data[j] } }
        }
        data.withUnsafeBufferPointer { px in
            weight.data.withUnsafeBufferPointer { pw in
                out.withUnsafeMutableBufferPointer { po in
                    parallelSgemm(false, true, m, outF, inF, 1, px.baseAddress!, inF, pw.baseAddress!, inF,
                          bias == nil ? 0 : 1, po.baseAddress!, outF)
                }
            }
        }
        let outShape = Array(shape.dropLast()) + [outF]
        let (xd, wd) = (data, weight.data)
        let (needX, needW, needB) = (requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return Autograd.record(Tensor(raw: outShape, out, leaf: false), inputs) { g in
            var gx: [Float]? = nil, gw: [Float]? = nil, gb: [Float]? = nil
            g.withUnsafeBufferPointer { pg in
                if needX {
                    var r = [Float](repeating: 0, count: m * inF)
                    wd.withUnsafeBufferPointer { pw in
                        r.withUnsafeMutableBufferPointer { pr in
                            parallelSgemm(false, false, m, inF, outF, 1, pg.baseAddress!, outF, pw.baseAddress!, inF,
                                  0, pr.baseAddress!, inF)
                        }
                    }
                    gx = r
                }
                if needW {
                    var r = [Float](repeating: 0, count: outF * inF)
                    xd.withUnsafeBufferPointer { px in
                        r.withUnsafeMutableBufferPointer { pr in
                            parallelSgemm(true, false, outF, inF, m, 1, pg.baseAddress!, outF, px.baseAddress!, inF,
                                  0, pr.baseAddress!, inF)
                        }
                    }
                    gw = r
                }
                if needB {
                    var r = [Float](repeating: 0, count: outF)
                    for row in 0..<m { for j in 0..<outF { r[j] += pg[row * outF + j] } }
                    gb = r
                }
            }
            return inputs.count == 3 ? [gx, gw, gb] : [gx, gw]
        }
    }
}
