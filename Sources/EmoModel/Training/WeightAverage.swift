import EmoNN
import Foundation

/// An exponential moving average of a model's parameters and buffers, updated after every
/// optimizer step. Its horizon is given in epochs, so that it spans the same share of training
/// whatever the number of clips; early on it follows the weights closely (the decay ramps up as
/// (1 + step) / (10 + step)) so the random initial weights do not linger in it. It is accumulated
/// in Double: over a long horizon a Float average would stop moving once (1 − decay) · step falls
/// below its rounding. Batch norm's step counter is copied, not averaged (it counts).
final class WeightAverage {
    static let prefix = "average."

    let decay: Double
    private let names: [String]
    /// The model's parameters and buffers, held once: loading weights writes into these same tensors,
    /// so the per-step update need not walk the module tree again.
    private let tensors: [Tensor]
    private var values: [[Double]]
    /// Tensors copied from the latest weights rather than averaged.
    private let copied: Set<Int>

    init(model: Module, epochs: Double, stepsPerEpoch: Int) {
        decay = 1 - 1 / max(1, epochs * Double(stepsPerEpoch))
        let named = model.namedParameters() + model.namedBuffers()
        let names = named.map(\.0)
        self.names = names
        tensors = named.map(\.1)
        values = tensors.map { $0.data.map(Double.init) }
        copied = Set(names.indices.filter { names[$0].hasSuffix("num_batches_tracked") })
    }

    /// The decay applied after optimizer step `step` (counted from 0 over the whole training).
    func decay(atStep step: Int) -> Double { min(decay, Double(1 + step) / Double(10 + step)) }

    func update(step: Int) {
        let keep = decay(atStep: step), take = 1 - keep
        for (i, tensor) in tensors.enumerated() {
            if copied.contains(i) { values[i] = tensor.data.map(Double.init); continue }
            tensor.data.withUnsafeBufferPointer { latest in
                values[i].withUnsafeMutableBufferPointer { mean in
                    for j in 0..<mean.count { mean[j] = keep * mean[j] + take * Double(latest[j]) }
                }
            }
        }
    }

    /// Starts the average over from the model's current weights.
    func reset() {
        values = tensors.map { $0.data.map(Double.init) }
    }

    /// Puts the average into the model and returns the weights it replaced, for `restore`.
    func swapIn() -> [[Float]] {
        let latest = tensors.map(\.data)
        for (i, tensor) in tensors.enumerated() { tensor.data = values[i].map(Float.init) }
        return latest
    }

    func restore(_ latest: [[Float]]) {
        for (i, tensor) in tensors.enumerated() { tensor.data = latest[i] }
    }

    /// Adds the average to a checkpoint, as `average.<name>` beside the model's own tensors: the
    /// Double values' bit patterns (I64), so that a resumed training continues from the very same sums.
    func store(in file: inout SafeTensorsFile) {
        for (i, name) in names.enumerated() {
            file.integers[Self.prefix + name] = values[i].map { Int64(bitPattern: $0.bitPattern) }
        }
    }

    /// Reads the average a checkpoint holds; false when it holds none (or one of another shape).
    func load(from file: SafeTensorsFile) -> Bool {
        var loaded: [[Double]] = []
        for (i, name) in names.enumerated() {
            guard let bits = file.integers[Self.prefix + name], bits.count == values[i].count else { return false }
            loaded.append(bits.map { Double(bitPattern: UInt64(bitPattern: $0)) })
        }
        values = loaded
        return true
    }

    /// The average as the model's Float tensors hold it, by name.
    var floats: [String: [Float]] {
        Dictionary(uniqueKeysWithValues: zip(names, values.map { $0.map(Float.init) }))
    }
}
