import Foundation

/// Training checkpoints in one safetensors file:
///   `<name>`                      parameters and buffers, as in the model's state dict
///   `optimizer.<name>.<state>`    per-parameter optimizer state (exp_avg, momentum_buffer…)
///   `optimizer.step` (I64)        optimizer step counter
///   `rng.state` (I64 ×4)          the training RNG's words
///   `train.step` (I64)            the caller's step counter
/// Model tensors keep PyTorch's names (batch norm includes num_batches_tracked), so
/// `load_state_dict(strict=True)` reads them once the optimizer/rng/train entries are left out.
public enum Checkpoint {
    /// The names of the optimizer's tensors in a checkpoint begin with it.
    public static let trainingStatePrefix = "optimizer."

    public static func save(to url: URL, model: Module, optimizer: Optimizer? = nil,
                            rng: RandomGenerator? = nil, step: Int, metadata: [String: String] = [:]) throws {
        try snapshot(model: model, optimizer: optimizer, rng: rng, step: step, metadata: metadata).write(to: url)
    }

    /// What `save` writes, held in memory (the arrays are copied on the model's next write), so a
    /// trainer can keep its last epoch boundary and write it only if it is stopped mid-epoch.
    public static func snapshot(model: Module, optimizer: Optimizer? = nil, rng: RandomGenerator? = nil,
                                step: Int, metadata: [String: String] = [:]) -> SafeTensorsFile {
        var file = SafeTensorsFile(metadata: metadata)
        for (name, t) in model.namedParameters() + model.namedBuffers() { file.tensors[name] = t.detached() }
        if let optimizer {
            let names = parameterNames(model, optimizer)
            for (key, t) in optimizer.stateTensors() {
                if key == "step" {
                    file.integers["optimizer.step"] = [Int64(t.item)]
                } else if let dot = key.firstIndex(of: "."), let i = Int(key[..<dot]) {
                    file.tensors["\(trainingStatePrefix)\(names[i]).\(key[key.index(after: dot)...])"] = t
                }
            }
            file.metadata["optimizer.learning_rate"] = String(optimizer.learningRate.bitPattern)
        }
        if let rng { file.integers["rng.state"] = rng.state.map { Int64(bitPattern: $0) } }
        file.integers["train.step"] = [Int64(step)]
        return file
    }

    /// The most bytes a checkpoint of `model` can hold: its tensors, with `trainingState` four times
    /// over (optimizer moments and a weight average beside them), plus room for the header and counters.
    public static func maximumBytes(model: Module, trainingState: Bool) -> Int {
        let modelBytes = (model.namedParameters() + model.namedBuffers()).reduce(0) { $0 + 4 * $1.1.count }
        return modelBytes * (trainingState ? 5 : 1) + 64 << 20
    }

    /// Restores everything `save` wrote into existing objects; returns the step. With `exactly`, a tensor
    /// the model has no place for is refused: weights of another architecture whose shared tensors fit
    /// would otherwise load in part and answer with the rest of the model untrained.
    @discardableResult
    public static func load(from url: URL, model: Module, optimizer: Optimizer? = nil,
                            rng: RandomGenerator? = nil, exactly: Bool = false) throws -> Int {
        let file = try SafeTensorsFile.read(from: url, atMost: maximumBytes(model: model, trainingState: optimizer != nil))
        if exactly {
            let expected = Set(model.stateDict().keys)
            let stray = file.tensors.keys.filter { !expected.contains($0) && !$0.hasPrefix(trainingStatePrefix) }.sorted()
            if let first = stray.first {
                // A tensor renamed is both: the one the model looks for is named first, as load would name it.
                let missing = expected.filter { file.tensors[$0] == nil }.sorted()
                let lacking = missing.first.map { "lacks \(missing.count) tensor(s) the model needs (\(shown($0))\(missing.count > 1 ? ", …" : "")) and " } ?? ""
                throw NNError.format("\(lacking)holds \(stray.count) tensor(s) the model has no place for (\(shown(first))"
                                     + (stray.count > 1 ? ", …" : "") + ")")
            }
        }
        try model.load(file.tensors)
        if let optimizer {
            let names = parameterNames(model, optimizer)
            var state: [String: Tensor] = [:]
            for (i, name) in names.enumerated() {
                let prefix = "\(trainingStatePrefix)\(name)."
                for (key, t) in file.tensors where key.hasPrefix(prefix) {
                    state["\(i).\(key.dropFirst(prefix.count))"] = t
                }
            }
            if let step = file.integers["optimizer.step"]?.first { state["step"] = Tensor(scalar: Float(step)) }
            try optimizer.loadState(state)
            if let bits = file.metadata["optimizer.learning_rate"].flatMap(UInt32.init) {
                optimizer.learningRate = Float(bitPattern: bits)
            }
        }
        if let rng {
            guard let words = file.integers["rng.state"] else { throw NNError.missing("rng.state in checkpoint") }
            rng.state = try RandomGenerator(state: words.map { UInt64(bitPattern: $0) }).state
        }
        return Int(file.integers["train.step"]?.first ?? 0)
    }

    /// A tensor's name as a message shows it: a damaged header can name a tensor with kilobytes of text.
    static func shown(_ name: String) -> String {
        let scalars = name.unicodeScalars
        guard scalars.count > 120 else { return name }
        return String(String.UnicodeScalarView(scalars.prefix(100))) + "… (\(name.utf8.count) bytes)"
    }

    /// The model's name for each optimizer parameter (by identity), or its index.
    private static func parameterNames(_ model: Module, _ optimizer: Optimizer) -> [String] {
        var byID: [ObjectIdentifier: String] = [:]
        for (name, t) in model.namedParameters() { byID[ObjectIdentifier(t)] = name }
        return optimizer.parameters.enumerated().map { byID[ObjectIdentifier($0.element)] ?? "\($0.offset)" }
    }
}
