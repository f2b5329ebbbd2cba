// Batch normalisation over axis 1 of [N, C], [N, C, L] or [N, C, H, W].

extension Tensor {
    /// In training, normalises with the batch statistics and updates the
    /// running buffers in place (PyTorch's momentum convention, unbiased
    /// running variance); in evaluation, uses the running buffers.
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) throws -> Tensor {
        guard rank >= 2 else { throw ShapeError("batchNorm", shape, runningMean.shape, "input needs [N, C, ...]") }
        let c = shape[1]
        for t in [weight, bias, runningMean, runningVar].compactMap({ $0 }) where t.shape != [c] {
            throw ShapeError("batchNorm", shape, t.shape, "per-channel tensors must be [C]")
        }
        let n = shape[0]
        let inner = count / max(n * c, 1)
        let m = n * inner
        guard !training || m > 1 else {
            throw ShapeError("batchNorm", shape, [c], "training needs more than one value per channel")
        }
        var mean = [Float](repeating: 0, count: c)
        var invStd = [Float](repeating: 0, count: c)
        let x = data
        if training {
            let stats = channelStatistics(x, n: n, c: c, inner: inner)
            for ch in 0..<c {
                mean[ch] = stats.mean[ch]
                invStd[ch] = 1 / (stats.variance[ch] + eps).squareRoot()
                let unbiased = stats.variance[ch] * Float(m) / Float(m - 1)
                runningMean.data[ch] = (1 - momentum) * runningMean.data[ch] + momentum * stats.mean[ch]
                runningVar.data[ch] = (1 - momentum) * runningVar.data[ch] + momentum * unbiased
            }
        } else {
            for ch in 0..<c {
                mean[ch] = runningMean.data[ch]
                invStd[ch] = 1 / (runningVar.data[ch] + eps).squareRoot()
            }
        }
        let gamma = weight?.data ?? [Float](repeating: 1, count: c)
        let beta = bias?.data ?? [Float](repeating: 0, count: c)
        let y = uninitializedFloats(count) { py in
            x.withUnsafeBufferPointer { px in
                parallelChunks(c) { channels, _ in
                    for s in 0..<n {
                        for ch in channels {
                            let base = (s * c + ch) * inner
                            let scale = gamma[ch] * invStd[ch]
                            let shift = beta[ch] - mean[ch] * scale
                            for i in 0..<inner { py[base + i] = px[base + i] * scale + shift }
                        }
                    }
                }
            }
        }
        var inputs: [Tensor] = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let (needX, needW, needB) = (requiresGrad, weight?.requiresGrad ?? false, bias?.requiresGrad ?? false)
        let (hasW, hasB) = (weight != nil, bias != nil)
        return Autograd.record(Tensor(raw: shape, y, leaf: false), inputs) { g in
            let r = batchNormBackward(x, g, mean: mean, invStd: invStd, gamma: gamma,
                                      n: n, c: c, inner: inner, training: training, needX: needX)
            var grads: [[Float]?] = [r.dx]
            if hasW { grads.append(needW ? r.dgamma : nil) }
            if hasB { grads.append(needB ? r.dbeta : nil) }
            return grads
        }
    }
}

/// Per-channel mean and biased variance, two passes with Double accumulators
/// so that large activations (millions of values per channel) stay accurate.
func channelStatistics(_ x: [Float], n: Int, c: Int, inner: Int) -> (mean: [Float], variance: [Float]) {
    var mean = [Float](repeating: 0, count: c)
    var variance = [Float](repeating: 0, count: c)
    let m = Double(n * inner)
    mean.withUnsafeMutableBufferPointer { pm in
    variance.withUnsafeMutableBufferPointer { pv in
    x.withUnsafeBufferPointer { px in
        parallelChunks(c) { channels, _ in
        for ch in channels {
            var s = 0.0
            for b in 0..<n {
                let base = (b * c + ch) * inner
                s += Double(vectorSum(px.baseAddress! + base, inner))
            }
            let mu = Float(s / m)
            var v = 0.0
            for b in 0..<n {
                let base = (b * c + ch) * inner
                v += Double(vectorSumSquaredDeviation(px.baseAddress! + base, inner, mu))
            }
            pm[ch] = mu
            pv[ch] = Float(v / m)
        }
        }
    }
    }
    }
    return (mean, variance)
}

func batchNormBackward(_ x: [Float], _ g: [Float], mean: [Float], invStd: [Float], gamma: [Float],
                       n: Int, c: Int, inner: Int, training: Bool, needX: Bool)
    -> (dx: [Float]?, dgamma: [Float], dbeta: [Float]) {
    var dgamma = [Float](repeating: 0, count: c)
    var dbeta = [Float](repeating: 0, count: c)
    dgamma.withUnsafeMutableBufferPointer { pdg in
    dbeta.withUnsafeMutableBufferPointer { pdb in
    x.withUnsafeBufferPointer { px in
        g.withUnsafeBufferPointer { pg in
            parallelChunks(c) { channels, _ in
            for ch in channels {
                var sg = 0.0, sgx = 0.0
                for b in 0..<n {
                    let base = (b * c + ch) * inner
                    let (a, bx) = vectorSumAndDeviationDot(pg.baseAddress! + base, px.baseAddress! + base,
                                                           inner, mean[ch])
                    sg += Double(a)
                    sgx += Double(bx)
                }
                pdb[ch] = Float(sg)
                pdg[ch] = Float(sgx) * invStd[ch]
            }
            }
        }
    }
    }
    }
    guard needX else { return (nil, dgamma, dbeta) }
    let m = Float(n * inner)
    let dx = uninitializedFloats(x.count) { pd in
        x.withUnsafeBufferPointer { px in
            g.withUnsafeBufferPointer { pg in
                parallelChunks(c) { channels, _ in
                for ch in channels {
                    let k = gamma[ch] * invStd[ch]
                    // Training: dx = k·(g − mean(g) − x̂·mean(g·x̂)); eval: dx = k·g.
                    let meanG = training ? dbeta[ch] / m : 0
                    let coef = training ? dgamma[ch] * invStd[ch] / m : 0
                    let mu = mean[ch]
                    for b in 0..<n {
                        let base = (b * c + ch) * inner
                        for i in 0..<inner {
                            pd[base + i] = k * (pg[base + i] - meanG - (px[base + i] - mu) * coef)
                        }
                    }
                }
                }
            }
        }
    }
    return (dx, dgamma, dbeta)
}
