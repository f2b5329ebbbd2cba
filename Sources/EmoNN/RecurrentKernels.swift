import Foundation

// Whole-sequence LSTM and GRU kernels, one recorded op per direction.
// Composed from per-step ops, every step's slice of the input projection
// produced a full-size gradient in backward (quadratic in the sequence
// length); here backward-through-time runs inside one closure instead.

/// Shapes of one recurrent pass: batch, steps, hidden size, gate count.
struct RecurrentPlan {
    let b, t, h, gates: Int
    let reverse: Bool
    var width: Int { gates * h }
    /// Time indices in processing order.
    var order: [Int] { reverse ? Array((0..<t).reversed()) : Array(0..<t) }
}

extension Tensor {
    /// LSTM over `projected` = x·W_ihᵀ + b_ih, [B, T, 4H] in (i, f, g, o) order,
    /// with recurrent weight `whh` [4H, H] and bias `bhh` [4H]; zero initial
    /// state. Returns the hidden states [B, T, H].
    static func lstmSequence(_ projected: Tensor, _ whh: Tensor, _ bhh: Tensor, reverse: Bool) -> Tensor {
        let p = RecurrentPlan(b: projected.shape[0], t: projected.shape[1], h: whh.shape[1], gates: 4, reverse: reverse)
        let (b, h, w) = (p.b, p.h, p.width)
        var gates = [Float](repeating: 0, count: p.t * b * w)       // activated i, f, g, o per step
        var cells = [Float](repeating: 0, count: p.t * b * h)
        var out = [Float](repeating: 0, count: b * p.t * h)
        var hPrev = [Float](repeating: 0, count: b * h), cPrev = hPrev
        var z = [Float](repeating: 0, count: b * w)
        for step in p.order {
            recurrentProjection(&z, hPrev, whh.data, bhh.data, b: b, h: h, width: w)
            for r in 0..<b {
                let zr = r * w, gr = step * b * w + r * w
                for j in 0..<h {
                    let src = (r * p.t + step) * w
                    let i = logistic(z[zr + j] + projected.data[src + j])
                    let f = logistic(z[zr + h + j] + projected.data[src + h + j])
                    let g = Foundation.tanh(z[zr + 2 * h + j] + projected.data[src + 2 * h + j])
                    let o = logistic(z[zr + 3 * h + j] + projected.data[src + 3 * h + j])
                    let c = f * cPrev[r * h + j] + i * g
                    (gates[gr + j], gates[gr + h + j], gates[gr + 2 * h + j], gates[gr + 3 * h + j]) = (i, f, g, o)
                    cells[step * b * h + r * h + j] = c
                    cPrev[r * h + j] = c
                    hPrev[r * h + j] = o * Foundation.tanh(c)
                    out[(r * p.t + step) * h + j] = hPrev[r * h + j]
                }
            }
        }
        let (wd, hs) = (whh.data, out)
        return Autograd.record(Tensor(raw: [b, p.t, h], out, leaf: false), [projected, whh, bhh]) { grad in
            var dProj = [Float](repeating: 0, count: b * p.t * w)
            var dW = [Float](repeating: 0, count: w * h), dB = [Float](repeating: 0, count: w)
            var dhNext = [Float](repeating: 0, count: b * h), dcNext = dhNext
            var dz = [Float](repeating: 0, count: b * w)
            let order = p.order
            for (k, step) in order.enumerated().reversed() {
                let prev = k > 0 ? order[k - 1] : nil
                for r in 0..<b {
                    let gr = step * b * w + r * w
                    for j in 0..<h {
                        let (i, f, g, o) = (gates[gr + j], gates[gr + h + j], gates[gr + 2 * h + j], gates[gr + 3 * h + j])
                        let tc = Foundation.tanh(cells[step * b * h + r * h + j])
                        let cOld = prev.map { cells[$0 * b * h + r * h + j] } ?? 0
                        let dh = grad[(r * p.t + step) * h + j] + dhNext[r * h + j]
                        let dc = dcNext[r * h + j] + dh * o * (1 - tc * tc)
                        dz[r * w + j] = dc * g * i * (1 - i)
                        dz[r * w + h + j] = dc * cOld * f * (1 - f)
                        dz[r * w + 2 * h + j] = dc * i * (1 - g * g)
                        dz[r * w + 3 * h + j] = dh * tc * o * (1 - o)
                        dcNext[r * h + j] = dc * f
                    }
                }
                recurrentBackward(dz, prev, hs, wd, &dProj, &dW, &dB, &dhNext, step: step, plan: p)
            }
            return [dProj, dW, dB]
        }
    }

    /// GRU over `projected` = x·W_ihᵀ + b_ih, [B, T, 3H] in (r, z, n) order,
    /// with `whh` [3H, H] and `bhh` [3H] (the reset gate scales the hidden
    /// projection including its bias, as in PyTorch). Returns [B, T, H].
    static func gruSequence(_ projected: Tensor, _ whh: Tensor, _ bhh: Tensor, reverse: Bool) -> Tensor {
        let p = RecurrentPlan(b: projected.shape[0], t: projected.shape[1], h: whh.shape[1], gates: 3, reverse: reverse)
        let (b, h, w) = (p.b, p.h, p.width)
        var saved = [Float](repeating: 0, count: p.t * b * w)       // r, z, n per step
        var hiddenN = [Float](repeating: 0, count: p.t * b * h)     // h_n part of the hidden projection
        var out = [Float](repeating: 0, count: b * p.t * h)
        var hPrev = [Float](repeating: 0, count: b * h)
        var z = [Float](repeating: 0, count: b * w)
        for step in p.order {
            recurrentProjection(&z, hPrev, whh.data, bhh.data, b: b, h: h, width: w)
            for r in 0..<b {
                let zr = r * w, sr = step * b * w + r * w
                for j in 0..<h {
                    let src = (r * p.t + step) * w
                    let rg = logistic(projected.data[src + j] + z[zr + j])
                    let zg = logistic(projected.data[src + h + j] + z[zr + h + j])
                    let n = Foundation.tanh(projected.data[src + 2 * h + j] + rg * z[zr + 2 * h + j])
                    (saved[sr + j], saved[sr + h + j], saved[sr + 2 * h + j]) = (rg, zg, n)
                    hiddenN[step * b * h + r * h + j] = z[zr + 2 * h + j]
                    hPrev[r * h + j] = n + zg * (hPrev[r * h + j] - n)
                    out[(r * p.t + step) * h + j] = hPrev[r * h + j]
                }
            }
        }
        let (wd, hs) = (whh.data, out)
        return Autograd.record(Tensor(raw: [b, p.t, h], out, leaf: false), [projected, whh, bhh]) { grad in
            var dProj = [Float](repeating: 0, count: b * p.t * w)
            var dW = [Float](repeating: 0, count: w * h), dB = [Float](repeating: 0, count: w)
            var dhNext = [Float](repeating: 0, count: b * h)
            var dHidden = [Float](repeating: 0, count: b * w)
            let order = p.order
            for (k, step) in order.enumerated().reversed() {
                let prev = k > 0 ? order[k - 1] : nil
                for r in 0..<b {
                    let sr = step * b * w + r * w
                    for j in 0..<h {
                        let (rg, zg, n) = (saved[sr + j], saved[sr + h + j], saved[sr + 2 * h + j])
                        let hOld = prev.map { hs[(r * p.t + $0) * h + j] } ?? 0
                        let dh = grad[(r * p.t + step) * h + j] + dhNext[r * h + j]
                        let dn = dh * (1 - zg) * (1 - n * n)
                        let dzg = dh * (hOld - n) * zg * (1 - zg)
                        let dr = dn * hiddenN[step * b * h + r * h + j] * rg * (1 - rg)
                        let src = (r * p.t + step) * w
                        (dProj[src + j], dProj[src + h + j], dProj[src + 2 * h + j]) = (dr, dzg, dn)
                        (dHidden[r * w + j], dHidden[r * w + h + j], dHidden[r * w + 2 * h + j]) = (dr, dzg, dn * rg)
                        dhNext[r * h + j] = dh * zg   // the direct path h' = … + z·h
                    }
                }
                recurrentBackward(dHidden, prev, hs, wd, nil, &dW, &dB, &dhNext, step: step, plan: p, accumulateH: true)
            }
            return [dProj, dW, dB]
        }
    }
}

/// z = h·W_hhᵀ + b_hh for the whole batch ([B, G·H]).
private func recurrentProjection(_ z: inout [Float], _ hPrev: [Float], _ whh: [Float], _ bhh: [Float],
                                 b: Int, h: Int, width: Int) {
    for r in 0..<b { for k in 0..<width { z[r * width + k] = bhh[k] } }
    hPrev.withUnsafeBufferPointer { ph in
        whh.withUnsafeBufferPointer { pw in
            z.withUnsafeMutableBufferPointer { pz in
                sgemm(false, true, b, width, h, 1, ph.baseAddress!, h, pw.baseAddress!, h, 1, pz.baseAddress!, width)
            }
        }
    }
}

/// Shared tail of one backward step, given the hidden projection's gradient
/// `dHidden` [B, G·H]: dW_hh += dHiddenᵀ·h_prev, db_hh += Σ dHidden, and the
/// gradient to the previous hidden state, dHidden·W_hh (stored into `dhNext`,
/// or added to it when `accumulateH`). For the LSTM the hidden and input
/// projections share one gradient, so it is also written into `dProj`.
private func recurrentBackward(_ dHidden: [Float], _ prev: Int?, _ hs: [Float], _ whh: [Float],
                               _ dProj: UnsafeMutablePointer<[Float]>?, _ dW: inout [Float], _ dB: inout [Float],
                               _ dhNext: inout [Float], step: Int, plan p: RecurrentPlan, accumulateH: Bool = false) {
    let (b, h, w) = (p.b, p.h, p.width)
    if let dProj {
        for r in 0..<b { for k in 0..<w { dProj.pointee[(r * p.t + step) * w + k] = dHidden[r * w + k] } }
    }
    for r in 0..<b { for k in 0..<w { dB[k] += dHidden[r * w + k] } }
    if let prev {
        // h_prev rows are strided by T·H inside the [B, T, H] output.
        hs.withUnsafeBufferPointer { ph in
            dHidden.withUnsafeBufferPointer { pd in
                dW.withUnsafeMutableBufferPointer { pw in
                    sgemm(true, false, w, h, b, 1, pd.baseAddress!, w, ph.baseAddress! + prev * h, p.t * h,
                          1, pw.baseAddress!, h)
                }
            }
        }
    }
    dHidden.withUnsafeBufferPointer { pd in
        whh.withUnsafeBufferPointer { pw in
            dhNext.withUnsafeMutableBufferPointer { pn in
                sgemm(false, false, b, h, w, 1, pd.baseAddress!, w, pw.baseAddress!, h,
                      accumulateH ? 1 : 0, pn.baseAddress!, h)
            }
        }
    }
}

@inline(__always)
private func logistic(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
