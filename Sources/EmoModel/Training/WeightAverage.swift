import EmoNN
import Foundation

/// An exponential moving average of a model's parameters and buffers, updated after every
/// optimizer step. Its horizon is given in epochs, so that it spans the same share of training
/// whatever the number of clips; early on it follows the weights closely (the decay ramps up as
/// (1 + step) / (10 + step)) so the random initial weights do not linger in it.
final class WeightAverage {
    static let prefix = "average."

    let decay: Double
    private let names: [String]
    private var values: [[Float]]

    init(model: Module, epochs: Double, stepsPerEpoch: Int) {
        decay = 1 - 1 / max(1, epochs * Double(stepsPerEpoch))
        let tensors = Self.tensors(of: model)
        names = tensors.map(\.0)
        values = tensors.map { $0.1.data }
    }

    private static func tensors(of model: Module) -> [(String, Tensor)] {
        model.namedParameters() + model.namedBuffers()
    }

    /// The decay applied after optimizer step `step` (counted from 0 over the whole training).
    func decay(atStep step: Int) -> Double { min(decay, Double(1 + step) / Double(10 + step)) }

    func update(from model: Module, step: Int) {
        let keep = Float(decay(atStep: step)), take = 1 - keep
        for (i, (_, tensor)) in Self.tensors(of: model).enumerated() {
            tensor.data.withUnsafeBufferPointer { latest in
                values[i].withUnsafeMutableBufferPointer { mean in
                    for j in 0..<mean.count { mean[j] = keep * mean[j] + take * latest[j] }
                }
            }
        }
    }

    /// Starts the average over from the model's current weights.
    func reset(to model: Module) {
        values = Self.tensors(of: model).map { $0.1.data }
    }

    /// Puts the average into the model and returns the weights it replaced, for `restore`.
    func swapIn(_ model: Module) -> [[Float]] {
        let tensors = Self.tensors(of: model)
        let latest = tensors.map { $0.1.data }
        for (i, (_, tensor)) in tensors.enumerated() { tensor.data = values[i] }
        return latest
    }

    static func restore(_ latest: [[Float]], into model: Module) {
        for (i, (_, tensor)) in tensors(of: model).enumerated() { tensor.data = latest[i] }
    }

    /// Adds the average to a checkpoint, as `average.<name>` beside the model's own tensors.
    func store(in file: inout SafeTensorsFile) {
        for (i, name) in names.enumerated() {
            guard let shape = file.tensors[name]?.shape, let tensor = try? Tensor(shape: shape, data: values[i]) else { continue }
            file.tensors[Self.prefix + name] = tensor
        }
    }

    /// Reads the average a checkpoint holds; false when it holds none (or one of another shape).
    func load(from file: SafeTensorsFile) -> Bool {
        var loaded: [[Float]] = []
        for (i, name) in names.enumerated() {
            guard let tensor = file.tensors[Self.prefix + name], tensor.data.count == values[i].count else { return false }
            loaded.append(tensor.data)
        }
        values = loaded
        return true
    }
}
