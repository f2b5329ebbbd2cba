@testable import EmoNN

/// Finite-difference gradient check. The scalar objective is Σ out ⊙ R for a
/// fixed random R, evaluated in Double so that float32 rounding in the
/// summation does not swamp the central difference.
func gradientCheck(_ inputs: [Tensor], eps: Float = 1e-2, tolerance: Float = 2e-2, seed: UInt64 = 7,
                   _ f: ([Tensor]) throws -> Tensor) throws -> Float {
    for t in inputs { t.requiresGrad = true; t.grad = nil }
    let out = try f(inputs)
    let rng = RandomGenerator(seed: seed)
    let r = Tensor.randn(out.shape, rng: rng)
    try out.backward(r)
    func objective() throws -> Double {
        let o = try Autograd.noGrad { try f(inputs) }
        var s = 0.0
        for i in 0..<o.count { s += Double(o.data[i]) * Double(r.data[i]) }
        return s
    }
    var worst: Float = 0
    for t in inputs {
        let analytic = t.grad?.data ?? [Float](repeating: 0, count: t.count)
        for i in 0..<t.count {
            let saved = t.data[i]
            t.data[i] = saved + eps
            let up = try objective()
            t.data[i] = saved - eps
            let down = try objective()
            t.data[i] = saved
            let numeric = Float((up - down) / (2 * Double(eps)))
            let err = abs(numeric - analytic[i]) / max(1, abs(numeric))
            worst = max(worst, err)
        }
    }
    return worst
}

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    Tensor.randn(shape, std: scale, rng: RandomGenerator(seed: seed))
}

/// Values kept away from zero so that kinks (ReLU, max) are not straddled.
func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = randomTensor(shape, seed: seed)
    t.data = t.data.map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
    return t
}
