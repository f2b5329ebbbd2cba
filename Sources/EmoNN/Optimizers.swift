import Foundation

/// An optimizer updates parameters in place from their `.grad`.
/// Per-parameter state is keyed by position in `parameters`, and exported by
/// name for checkpoints.
public protocol Optimizer: AnyObject {
    var parameters: [Tensor] { get }
    var learningRate: Float { get set }
    func step()
    /// Named state tensors (e.g. "0.exp_avg") and scalar counters, for checkpoints.
    func stateTensors() -> [String: Tensor]
    func loadState(_ tensors: [String: Tensor]) throws
}

extension Optimizer {
    public func zeroGrad() {
        for p in parameters { p.grad = nil }
    }
}

/// SGD with momentum and (coupled) weight decay, PyTorch's update rule:
/// b ← μ·b + g (b = g on the first step), p ← p − lr·b.
public final class SGD: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    var buffers: [[Float]?]

    public init(_ parameters: [Tensor], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            var g = grad.data
            if weightDecay != 0 { for k in 0..<g.count { g[k] += weightDecay * p.data[k] } }
            if momentum != 0 {
                if var b = buffers[i] {
                    for k in 0..<g.count { b[k] = momentum * b[k] + g[k] }
                    buffers[i] = b
                    g = b
                } else {
                    buffers[i] = g
                }
            }
            let lr = learningRate
            p.data.withUnsafeMutableBufferPointer { pp in
                for k in 0..<pp.count { pp[k] -= lr * g[k] }
            }
        }
    }

    public func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (i, b) in buffers.enumerated() {
            if let b { out["\(i).momentum_buffer"] = Tensor(raw: parameters[i].shape, b) }
        }
        return out
    }

    public func loadState(_ tensors: [String: Tensor]) throws {
        for i in parameters.indices {
            if let t = tensors["\(i).momentum_buffer"] {
                guard t.count == parameters[i].count else {
                    throw ShapeError("SGD.loadState", parameters[i].shape, t.shape, "momentum buffer size differs")
                }
                buffers[i] = t.data
            } else {
                buffers[i] = nil
            }
        }
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter), following
/// torch.optim.AdamW's arithmetic order so results agree to float rounding.
public final class AdamW: Optimizer {
    /// The most steps a state may count: it is kept as a Float, which counts whole numbers exactly up to 2^24.
    /// A checkpoint claiming more is damaged or edited.
    public static let maximumStepCount = 1 << 24
    public let parameters: [Tensor]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var stepCount = 0
    var expAvg: [[Float]]
    var expAvgSq: [[Float]]

    public init(_ parameters: [Tensor], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters
        self.learningRate = learningRate
        (beta1, beta2) = betas
        self.eps = eps
        self.weightDecay = weightDecay
        expAvg = parameters.map { [Float](repeating: 0, count: $0.count) }
        expAvgSq = parameters.map { [Float](repeating: 0, count: $0.count) }
    }

    public func step() {
        stepCount += 1
        let bc1 = 1 - Foundation.pow(beta1, Float(stepCount))
        let bc2Sqrt = (1 - Foundation.pow(beta2, Float(stepCount))).squareRoot()
        let stepSize = learningRate / bc1
        let decay = 1 - learningRate * weightDecay
        let (b1, b2, eps) = (beta1, beta2, self.eps)
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            p.data.withUnsafeMutableBufferPointer { pp in
                grad.data.withUnsafeBufferPointer { pg in
                    expAvg[i].withUnsafeMutableBufferPointer { m in
                        expAvgSq[i].withUnsafeMutableBufferPointer { v in
                            for k in 0..<pp.count {
                                let g = pg[k]
                                pp[k] *= decay
                                m[k] += (g - m[k]) * (1 - b1)
                                v[k] = v[k] * b2 + (1 - b2) * g * g
                                let denom = v[k].squareRoot() / bc2Sqrt + eps
                                pp[k] -= stepSize * (m[k] / denom)
                            }
                        }
                    }
                }
            }
        }
    }

    public func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(scalar: Float(stepCount))]
        for i in parameters.indices {
            out["\(i).exp_avg"] = Tensor(raw: parameters[i].shape, expAvg[i])
            out["\(i).exp_avg_sq"] = Tensor(raw: parameters[i].shape, expAvgSq[i])
        }
        return out
    }

    public func loadState(_ tensors: [String: Tensor]) throws {
        guard let step = tensors["step"] else { throw NNError.missing("AdamW step") }
        // Checked before any moment is replaced: a refused state leaves the optimizer as it was.
        guard step.item.isFinite, step.item >= 0, step.item <= Float(Self.maximumStepCount) else {
            throw NNError.format("AdamW step \(step.item) is not a step count (0 to \(Self.maximumStepCount))")
        }
        for i in parameters.indices {
            guard let m = tensors["\(i).exp_avg"], let v = tensors["\(i).exp_avg_sq"] else {
                throw NNError.missing("AdamW state for parameter \(i)")
            }
            guard m.count == parameters[i].count, v.count == parameters[i].count else {
                throw ShapeError("AdamW.loadState", parameters[i].shape, m.shape, "moment size differs")
            }
            expAvg[i] = m.data
            expAvgSq[i] = v.data
        }
        stepCount = Int(step.item)
    }
}

/// Linear warm-up from 0 to `baseLR` over `warmupSteps`, then cosine decay to
/// `minLR` at `totalSteps` (held there afterwards).
public struct CosineWarmupSchedule: Sendable, Equatable {
    public let baseLR: Float, minLR: Float
    public let warmupSteps: Int, totalSteps: Int

    public init(baseLR: Float, warmupSteps: Int, totalSteps: Int, minLR: Float = 0) {
        self.baseLR = baseLR
        self.minLR = minLR
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// Learning rate for 0-based `step`.
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return baseLR * Float(step + 1) / Float(warmupSteps) }
        let span = max(totalSteps - warmupSteps, 1)
        let progress = min(Double(step - warmupSteps) / Double(span), 1)
        return minLR + (baseLR - minLR) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}

/// Scales all gradients so that their joint L2 norm is at most `maxNorm`;
/// returns the norm before clipping (as torch.nn.utils.clip_grad_norm_).
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total = 0.0
    for p in parameters {
        guard let g = p.grad else { continue }
        for v in g.data { total += Double(v) * Double(v) }
    }
    let norm = Float(total.squareRoot())
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for p in parameters {
            guard let g = p.grad else { continue }
            for k in 0..<g.count { g.data[k] *= scale }
        }
    }
    return norm
}
