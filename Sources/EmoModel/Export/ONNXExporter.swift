import EmoNN
import Foundation
import ONNXSchema
import SwiftProtobuf

/// Writes an `EmotionModel` as ONNX (opset 17) whose inputs are exactly what the cache holds; the
/// graph does the rest, standardisation included:
///
///     logmel        float32 [B, n_mels, T]   dB
///     logmel_mask   float32 [B, T]           1 = real frame
///     faces         uint8   [B, K, S, S, 3]  RGB crops
///     faces_mask    float32 [B, K]           1 = usable crop
///     modality_mask float32 [B, 2]           (audio, faces) present
///     → logits      float32 [B, classes]
///
/// Inference only: batch norm uses its running statistics and dropout is the identity.
public enum ONNXExporter {
    public enum ExportError: Error, CustomStringConvertible {
        case unsupported(String)
        public var description: String {
            switch self { case .unsupported(let what): return "ONNX export does not support \(what) yet" }
        }
    }

    /// `.int8`: `model.int8.onnx`, the same graph with int8 weights and dynamically quantised
    /// activations (`Int8Quantization`); `EmotionModel.int8Simulation()` computes what it computes.
    public enum Precision: String, Sendable { case float, int8 }

    public static func export(_ model: EmotionModel, standardizer: Standardizer, metadata: [String: String],
                              precision: Precision = .float) throws -> Data {
        let c = model.config
        var g = ONNXGraphBuilder()
        g.precision = precision
        g.input("logmel", elementType: .float, shape: [nil, c.nMels, c.frames])
        g.input("logmel_mask", elementType: .float, shape: [nil, c.frames])
        g.input("faces", elementType: .uint8, shape: [nil, c.faceFrames, c.faceSize, c.faceSize, 3])
        g.input("faces_mask", elementType: .float, shape: [nil, c.faceFrames])
        g.input("modality_mask", elementType: .float, shape: [nil, 2])

        var embeddings: [String] = []
        var present: [String] = []
        if let audio = model.audio {
            embeddings.append(try audioBranch(audio, config: c, standardizer: standardizer, graph: &g))
            present.append(g.node("Slice", ["modality_mask", g.ints("start", [0]), g.ints("end", [1]), g.ints("axes", [1])]))
        }
        if let faces = model.faces {
            embeddings.append(try faceBranch(faces, config: c, standardizer: standardizer, graph: &g))
            present.append(g.node("Slice", ["modality_mask", g.ints("start", [1]), g.ints("end", [2]), g.ints("axes", [1])]))
        }
        if precision == .int8, model.faces != nil, let faces = embeddings.indices.last, let shown = present.last {
            // Absent faces' embedding as the Swift model has it (zeros), not computed from blank crops:
            // the fusion score's input is quantised per sample, so it must hold the same values.
            embeddings[faces] = g.node("Mul", [embeddings[faces], shown])
        }
        let axis1 = g.ints("axis", [1])
        let stacked = g.node("Concat", embeddings.map { g.node("Unsqueeze", [$0, axis1]) }, [ONNXGraphBuilder.int("axis", 1)])
        let mask = present.count == 1 ? present[0] : g.node("Concat", present, [ONNXGraphBuilder.int("axis", 1)])
        let fused = try attentionPool(stacked, mask: mask, score: model.fusionScore, steps: embeddings.count,
                                  width: c.embedding, graph: &g)
        _ = try linear(fused, model.classifier, graph: &g, output: "logits")
        g.output("logits", shape: [nil, c.classes])

        var proto = Onnx_ModelProto()
        proto.irVersion = 8
        proto.producerName = "emopipe"
        proto.producerVersion = metadata["emopipe_version"] ?? ""
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = 17
        proto.opsetImport = [opset]
        var graph = g.graph
        graph.name = "emotion_model"
        proto.graph = graph
        proto.metadataProps = metadata.keys.sorted().map { key in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = metadata[key]!
            return entry
        }
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return try proto.serializedData(options: options)
    }

    /// Standardise, conv blocks, each step's channels × bands, projection, attention over real steps.
    private static func audioBranch(_ branch: AudioBranch, config c: ModelConfig, standardizer: Standardizer,
                                    graph g: inout ONNXGraphBuilder) throws -> String {
        let mean = g.constant("mel_mean", standardizer.melMean, shape: [c.nMels, 1])
        let std = g.constant("mel_std", standardizer.melStd, shape: [c.nMels, 1])
        let axis1 = g.ints("axis", [1])
        let frameMask = g.node("Unsqueeze", ["logmel_mask", axis1])                     // [B, 1, T]
        // Padding frames are 0 after standardising, as in training.
        var h = g.node("Mul", [g.node("Div", [g.node("Sub", ["logmel", mean]), std]), frameMask])
        if c.utteranceNorm == true {
            // Each clip's own mean per band over its real frames, subtracted from those frames.
            let sums = g.node("ReduceSum", [h, g.ints("axes", [2])], [ONNXGraphBuilder.int("keepdims", 1)])        // [B, M, 1]
            let real = g.node("ReduceSum", ["logmel_mask", g.ints("axes", [1])], [ONNXGraphBuilder.int("keepdims", 1)]) // [B, 1]
            let count = g.node("Unsqueeze", [g.node("Max", [real, g.constant("one", [1], shape: [1])]), axis1]) // [B, 1, 1]
            h = g.node("Mul", [g.node("Sub", [h, g.node("Div", [sums, count])]), frameMask])
        }
        h = g.node("Unsqueeze", [h, axis1])                                               // [B, 1, M, T]
        if c.deltas == true {
            // DeltaFeatures: the input, its delta and delta-delta, one 9-frame kernel each.
            let kernels = g.constant("delta_kernels", DeltaFeatures.kernels.flatMap { $0 },
                                     shape: [DeltaFeatures.channels, 1, 1, DeltaFeatures.width])
            h = g.node("Conv", [h, kernels], [ONNXGraphBuilder.ints("kernel_shape", [1, DeltaFeatures.width]),
                                              ONNXGraphBuilder.ints("pads", [0, DeltaFeatures.reach, 0, DeltaFeatures.reach])]) // [B, 3, M, T]
            h = g.node("Mul", [h, g.node("Unsqueeze", [frameMask, axis1])])             // padding stays 0
        }
        for block in branch.blocks { h = try convBlock(h, block, graph: &g) }
        let channels = c.audioChannels.last ?? 1
        let bands = c.audioBands
        let steps = c.audioSteps
        h = g.node("Transpose", [h], [ONNXGraphBuilder.ints("perm", [0, 3, 1, 2])])      // [B, T', C, M']
        h = g.node("Reshape", [h, g.ints("shape", [0, steps, channels * bands])])
        if let gru = branch.gru { h = try recurrent(h, gru, steps: steps, graph: &g) }    // [B, T', 2H]
        h = g.node("Relu", [try linear(h, branch.project, graph: &g)])                    // [B, T', E]
        // A pooled step is real when any frame it covers is real.
        let covered = g.node("Slice", ["logmel_mask", g.ints("start", [0]), g.ints("end", [steps * c.audioStride]),
                                       g.ints("axes", [1])])
        let windows = g.node("Reshape", [covered, g.ints("shape", [0, steps, c.audioStride])])
        let stepMask = g.node("ReduceMax", [windows], [ONNXGraphBuilder.ints("axes", [2]), ONNXGraphBuilder.int("keepdims", 0)])
        return try attentionPool(h, mask: stepMask, score: branch.pool.score, steps: steps, width: c.embedding, graph: &g)
    }

    /// uint8 NHWC crops → standardised NCHW, the shared CNN, projection, attention over usable crops.
    private static func faceBranch(_ branch: FaceBranch, config c: ModelConfig, standardizer: Standardizer,
                                   graph g: inout ONNXGraphBuilder) throws -> String {
        let pixels = g.node("Div", [g.node("Cast", ["faces"], [ONNXGraphBuilder.int("to", 1)]),
                                    g.constant("scale", [255], shape: [])])
        let standardised = g.node("Div", [g.node("Sub", [pixels, g.constant("face_mean", standardizer.faceMean, shape: [3])]),
                                          g.constant("face_std", standardizer.faceStd, shape: [3])])
        var h = g.node("Transpose", [standardised], [ONNXGraphBuilder.ints("perm", [0, 1, 4, 2, 3])])  // [B, K, 3, S, S]
        h = g.node("Reshape", [h, g.ints("shape", [-1, 3, c.faceSize, c.faceSize])])
        for block in branch.blocks { h = try convBlock(h, block, graph: &g) }
        h = g.node("Flatten", [g.node("GlobalAveragePool", [h])], [ONNXGraphBuilder.int("axis", 1)])
        h = g.node("Relu", [try linear(h, branch.project, graph: &g)])
        h = g.node("Reshape", [h, g.ints("shape", [-1, c.faceFrames, c.embedding])])
        return try attentionPool(h, mask: "faces_mask", score: branch.pool.score, steps: c.faceFrames, width: c.embedding, graph: &g)
    }

    private static func convBlock(_ x: String, _ block: ConvBlock, graph g: inout ONNXGraphBuilder) throws -> String {
        let conv = g.node("Conv", [g.dynamicallyQuantized(x), try g.weight("conv_w", block.conv.weight.data, shape: block.conv.weight.shape)],
                          [ONNXGraphBuilder.ints("kernel_shape", [3, 3]), ONNXGraphBuilder.ints("pads", [1, 1, 1, 1])])
        let bn = g.node("BatchNormalization", [conv, g.constant("bn_scale", block.bn.weight), g.constant("bn_bias", block.bn.bias),
                                               g.constant("bn_mean", block.bn.runningMean), g.constant("bn_var", block.bn.runningVar)],
                        [ONNXGraphBuilder.float("epsilon", block.bn.eps)])
        return g.node("MaxPool", [g.node("Relu", [bn])],
                      [ONNXGraphBuilder.ints("kernel_shape", [2, 2]), ONNXGraphBuilder.ints("strides", [2, 2])])
    }

    /// x·Wᵀ + b over the last axis, for inputs of any rank.
    /// The bidirectional GRU as ONNX's GRU op. PyTorch's gate rows (reset, update, new) become ONNX's
    /// (update, reset, hidden); `linear_before_reset` = 1 is PyTorch's formulation. All steps run, padded
    /// ones included, as in the Swift model. ONNX's sequence-major layout needs a transpose each way.
    private static func recurrent(_ x: String, _ gru: GRU, steps: Int, graph g: inout ONNXGraphBuilder) throws -> String {
        let hidden = gru.hiddenSize
        func onnxOrder(_ t: Tensor, columns: Int) -> [Float] {
            let rows = { (gate: Int) in Array(t.data[(gate * hidden * columns)..<((gate + 1) * hidden * columns)]) }
            return rows(1) + rows(0) + rows(2)
        }
        var directions = [(gru.weightIhL0, gru.weightHhL0, gru.biasIhL0, gru.biasHhL0)]
        if let wi = gru.weightIhL0Reverse, let wh = gru.weightHhL0Reverse, let bi = gru.biasIhL0Reverse, let bh = gru.biasHhL0Reverse {
            directions.append((wi, wh, bi, bh))
        }
        let w = directions.flatMap { onnxOrder($0.0, columns: gru.inputSize) }
        let r = directions.flatMap { onnxOrder($0.1, columns: hidden) }
        let b = directions.flatMap { onnxOrder($0.2, columns: 1) + onnxOrder($0.3, columns: 1) }
        let count = directions.count
        let sequenceMajor = g.node("Transpose", [x], [ONNXGraphBuilder.ints("perm", [1, 0, 2])])   // [T', B, F]
        // int8: each direction's gate rows quantised as rows of one [D·3H, columns] matrix, then shaped back.
        func matrix(_ hint: String, _ values: [Float], columns: Int) throws -> String {
            let shape = [count, 3 * hidden, columns]
            guard g.precision == .int8 else { return g.constant(hint, values, shape: shape) }
            return g.node("Reshape", [try g.weight(hint, values, shape: [count * 3 * hidden, columns]), g.ints("shape", shape)])
        }
        let y = g.node("GRU", [sequenceMajor, try matrix("gru_w", w, columns: gru.inputSize),
                               try matrix("gru_r", r, columns: hidden),
                               g.constant("gru_b", b, shape: [count, 6 * hidden])],
                       [ONNXGraphBuilder.int("hidden_size", hidden), ONNXGraphBuilder.int("linear_before_reset", 1),
                        ONNXGraphBuilder.string("direction", count == 2 ? "bidirectional" : "forward")])   // [T', D, B, H]
        let batchMajor = g.node("Transpose", [y], [ONNXGraphBuilder.ints("perm", [2, 0, 1, 3])])  // [B, T', D, H]
        return g.node("Reshape", [batchMajor, g.ints("shape", [0, steps, count * hidden])])
    }

    private static func linear(_ x: String, _ layer: Linear, graph g: inout ONNXGraphBuilder, output: String? = nil) throws -> String {
        let product = g.node("MatMul", [g.dynamicallyQuantized(x), try g.transposedWeight("linear_w", layer.weight)])
        guard let bias = layer.bias else {
            return output.map { g.node("Identity", [product], output: $0) } ?? product
        }
        return g.node("Add", [product, g.constant("linear_b", bias)], output: output)
    }

    /// The masked softmax attention pooling of `AttentionPool`: masked steps get weight 0, and a
    /// slice with nothing present gets all zeros. [B, T, E], mask [B, T] → [B, E].
    private static func attentionPool(_ x: String, mask: String, score: Linear, steps: Int, width: Int,
                                      graph g: inout ONNXGraphBuilder) throws -> String {
        let scores = g.node("Reshape", [try linear(g.node("Tanh", [x]), score, graph: &g), g.ints("shape", [0, steps])])
        let isPresent = g.node("Greater", [mask, g.constant("zero", [0], shape: [])])
        let masked = g.node("Where", [isPresent, scores, g.constant("very_negative", [-1e30], shape: [])])
        let weights = g.node("Mul", [g.node("Softmax", [masked], [ONNXGraphBuilder.int("axis", 1)]), mask])
        let weighted = g.node("Mul", [x, g.node("Unsqueeze", [weights, g.ints("axis", [2])])])
        return g.node("ReduceSum", [weighted, g.ints("axes", [1])], [ONNXGraphBuilder.int("keepdims", 0)])
    }
}
