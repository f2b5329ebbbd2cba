import EmoNN

/// The int8 arithmetic of `model.int8.onnx`, in one place for both its writer (`ONNXExporter`,
/// `precision: .int8`) and the Swift scorer (`EmotionModel.int8Simulation()`), so that evaluate
/// measures exactly the graph export writes without reading the file.
///
/// Weights (every convolution, every linear layer, the GRU's input and recurrent matrices):
/// symmetric int8 per output channel (per row), zero point 0, scale max|w| / 127, values in
/// -127...127. Activations entering a convolution or linear layer: dynamic uint8 per sample (the
/// first axis), as ONNX's DynamicQuantizeLinear defines it (range widened to include 0, scale
/// range / 255, zero point and values rounded half to even and saturated), but with one scale per
/// sample instead of per tensor, so that a window's logits do not depend on its batch-mates.
/// The GRU's arithmetic stays float over its dequantised weights (ONNX has no integer GRU).
public enum Int8Quantization {
    /// One weight matrix as int8 rows: `values[r * columns + c]` and one scale per row.
    public struct Weights: Equatable, Sendable {
        public var values: [Int8]
        public var scales: [Float]
        public var rows: Int
        public var columns: Int

        /// What DequantizeLinear gives back: value × its row's scale.
        public var dequantized: [Float] {
            (0..<(rows * columns)).map { Float(values[$0]) * scales[$0 / columns] }
        }
    }

    /// A weight that cannot be quantised, naming it.
    public struct QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
        public var tensor: String
        public var reason: String
        public var description: String { "int8 quantisation of \(tensor): \(reason)" }
    }

    /// Per-row symmetric quantisation of `data` seen as `rows` rows. Throws for a shape that does not
    /// divide or for a non-finite weight (a diverged model has nothing to quantise).
    public static func quantize(_ data: [Float], rows: Int, name: String) throws -> Weights {
        guard rows > 0, data.count % rows == 0 else {
            throw QuantizationError(tensor: name, reason: "\(data.count) values do not split into \(rows) rows")
        }
        guard data.allSatisfy(\.isFinite) else { throw QuantizationError(tensor: name, reason: "holds a non-finite value") }
        let columns = data.count / rows
        var values = [Int8](repeating: 0, count: data.count)
        var scales = [Float](repeating: 1, count: rows)
        for r in 0..<rows {
            let row = data[(r * columns)..<((r + 1) * columns)]
            let largest = row.reduce(Float(0)) { max($0, abs($1)) }
            // An all-zero row keeps scale 1: DequantizeLinear needs no division, but a 0 scale reads as a bug.
            // So does a row whose largest weight is below 127 × the least subnormal: its scale underflows
            // to 0, and 0 / 0 would store its zeros as -127.
            let scale = largest / 127 > 0 ? largest / 127 : 1
            scales[r] = scale
            for (i, w) in row.enumerated() {
                values[r * columns + i] = Int8(min(127, max(-127, (w / scale).rounded(.toNearestOrEven))))
            }
        }
        return Weights(values: values, scales: scales, rows: rows, columns: columns)
    }

    /// The per-sample dynamic uint8 round trip (quantise, dequantise) of every row of `data`, the
    /// arithmetic of the graph's ReduceMin/ReduceMax → QuantizeLinear → DequantizeLinear chain.
    /// Float throughout, so no input (NaN included) can trap.
    public static func roundTripActivations(_ data: [Float], rows: Int) -> [Float] {
        guard rows > 0, data.count % rows == 0, !data.isEmpty else { return data }
        let columns = data.count / rows
        var out = data
        for r in 0..<rows {
            let range = (r * columns)..<((r + 1) * columns)
            let (scale, zeroPoint) = activationParameters(data[range])
            for i in range {
                let q = min(255, max(0, (data[i] / scale).rounded(.toNearestOrEven) + zeroPoint))
                out[i] = (q - zeroPoint) * scale
            }
        }
        return out
    }

    /// Scale and zero point of one sample, as DynamicQuantizeLinear computes them; a sample of zeros
    /// gets scale 1 (the graph's Where) so nothing divides by zero.
    static func activationParameters(_ values: ArraySlice<Float>) -> (scale: Float, zeroPoint: Float) {
        let low = min(0, values.reduce(Float.infinity) { min($0, $1) })
        let high = max(0, values.reduce(-Float.infinity) { max($0, $1) })
        let spread = (high - low) / 255
        let scale = spread == 0 ? 1 : spread
        let zeroPoint = min(255, max(0, (-(low / scale)).rounded(.toNearestOrEven)))
        return (scale, zeroPoint)
    }
}

/// Where a layer's input goes before the layer: as is, or through the int8 graph's per-sample
/// dynamic quantisation.
enum ActivationPrecision: Sendable {
    case float, int8

    func apply(_ x: Tensor) throws -> Tensor {
        guard self == .int8, let rows = x.shape.first else { return x }
        return try Tensor(shape: x.shape, data: Int8Quantization.roundTripActivations(x.data, rows: rows))
    }
}

extension EmotionModel {
    /// A copy computing what `model.int8.onnx` computes: its quantised weights dequantised, and its
    /// activations quantised where the graph quantises them. For scoring only (eval mode).
    public func int8Simulation() throws -> EmotionModel {
        let copy = EmotionModel(config, seed: 0)
        try copy.load(stateDict())
        for (name, weight) in copy.quantizedWeights() {
            weight.data = try Int8Quantization.quantize(weight.data, rows: weight.shape[0], name: name).dequantized
        }
        copy.setActivationPrecision(.int8)
        copy.eval()
        return copy
    }

    /// Every tensor the int8 export stores as int8, by name; each is quantised per row (shape[0]).
    func quantizedWeights() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        func linear(_ name: String, _ l: Linear) { out.append((name, l.weight)) }
        func blocks(_ name: String, _ bs: [ConvBlock]) {
            for (i, b) in bs.enumerated() { out.append(("\(name).blocks.\(i).conv.weight", b.conv.weight)) }
        }
        if let audio {
            blocks("audio", audio.blocks)
            if let gru = audio.gru {
                out += [("audio.gru.weight_ih_l0", gru.weightIhL0), ("audio.gru.weight_hh_l0", gru.weightHhL0)]
                if let wi = gru.weightIhL0Reverse, let wh = gru.weightHhL0Reverse {
                    out += [("audio.gru.weight_ih_l0_reverse", wi), ("audio.gru.weight_hh_l0_reverse", wh)]
                }
            }
            linear("audio.project", audio.project)
            linear("audio.pool.score", audio.pool.score)
        }
        if let faces {
            blocks("faces", faces.blocks)
            linear("faces.project", faces.project)
            linear("faces.pool.score", faces.pool.score)
        }
        linear("fusion_score", fusionScore)
        linear("classifier", classifier)
        return out
    }

    private func setActivationPrecision(_ precision: ActivationPrecision) {
        activationPrecision = precision
        for branchBlocks in [audio?.blocks ?? [], faces?.blocks ?? []] {
            for block in branchBlocks { block.inputPrecision = precision }
        }
        audio?.projectPrecision = precision
        audio?.pool.scorePrecision = precision
        faces?.projectPrecision = precision
        faces?.pool.scorePrecision = precision
    }
}
