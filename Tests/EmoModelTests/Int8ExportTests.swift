@testable import EmoModel
import EmoNN
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// The int8 quantiser's arithmetic, and `model.int8.onnx` in onnxruntime against the Swift int8
/// scorer (`EmotionModel.int8Simulation()`) that evaluate uses.
@Suite("int8 export")
struct Int8ExportTests {
    @Test func weightsRoundHalfToEvenPerRowWithinPlusMinus127() throws {
        // Row 0: max |w| 127 → scale 1, so w / scale is w: 63.5 → 64, -63.5 → -64, 0.5 → 0, 1.5 → 2.
        // Row 1: all zeros keeps scale 1. Row 2: scale 2 / 127.
        let q = try Int8Quantization.quantize([127, 63.5, -63.5, 0.5, 1.5,  0, 0, 0, 0, 0,  -2, 1, 0, 0, 0], rows: 3, name: "w")
        #expect(q.scales == [1, 1, 2 / 127])
        #expect(q.values == [127, 64, -64, 0, 2,  0, 0, 0, 0, 0,  -127, 64, 0, 0, 0])
        let back = q.dequantized
        #expect(back[10] == -2 && back[11] == 64 * (2 / Float(127)))
    }

    @Test func weightsThatCannotBeQuantisedAreRefusedByName() {
        #expect(throws: Int8Quantization.QuantizationError.self) { try Int8Quantization.quantize([1, .nan], rows: 1, name: "audio.project") }
        #expect(throws: Int8Quantization.QuantizationError.self) { try Int8Quantization.quantize([1, 2, 3], rows: 2, name: "x") }
        let error = #expect(throws: Int8Quantization.QuantizationError.self) { try Int8Quantization.quantize([.infinity], rows: 1, name: "classifier") }
        #expect(error?.description.contains("classifier") == true)
    }

    @Test func aRowOfWeightsTooSmallForAScaleQuantisesToZerosWithScaleOne() throws {
        // 1e-44 / 127 underflows to 0 in Float: the row would get scale 0 and its zeros 0 / 0.
        let tiny = Float.leastNonzeroMagnitude * 7  // about 1e-44, a subnormal
        #expect(tiny > 0 && tiny / 127 == 0, "the premise: the scale underflows")
        let q = try Int8Quantization.quantize([tiny, 0, -tiny, 0,  1, 0, 0, 0], rows: 2, name: "w")
        #expect(q.scales == [1, 1 / 127], "never a 0 scale")
        #expect(q.values == [0, 0, 0, 0,  127, 0, 0, 0])
        #expect(q.dequantized.prefix(4).allSatisfy { $0 == 0 })
    }

    @Test func activationsRoundTripPerSampleAsDynamicQuantizeLinear() {
        // Each sample spans 255, so its scale is exactly 1 and the rounding shows.
        // Sample 0: zero point round(51) = 51; 0.5 → 0 (half to even) → 0, 1.5 → 2.
        // Sample 1: zero point round(1.5) = 2; -1.5 → -2; 253.5 → 254 + 2 = 256, saturated to 255 → 253.
        // Sample 2: only positives, the range widens to include 0: zero point 0, 2.5 → 2, 3.5 → 4.
        // Sample 3: zeros stay zeros (scale 1, nothing divides by 0).
        let out = Int8Quantization.roundTripActivations([-51, 0.5, 1.5, 204,  -1.5, 253.5, 0, 0,  2.5, 255, 3.5, 1,  0, 0, 0, 0],
                                                        rows: 4)
        #expect(out == [-51, 0, 2, 204,  -2, 253, 0, 0,  2, 255, 4, 1,  0, 0, 0, 0])
        // Each sample's scale is its own: a sample gives the same values whatever it is batched with.
        #expect(Int8Quantization.roundTripActivations([2.5, 255, 3.5, 1], rows: 1) == Array(out[8..<12]))
        // Small values quantise onto a grid of range / 255.
        let fine = Int8Quantization.roundTripActivations([0, 0.01, 1], rows: 1)
        #expect(fine[2] == 1 && abs(fine[1] - 0.01) <= 0.5 / 255 && fine[1] != 0.01)
        // Nothing traps on non-finite input.
        _ = Int8Quantization.roundTripActivations([.nan, 1, .infinity, -.infinity], rows: 2)
    }

    /// The default model (the pipeline file's train parameters): int8 is at most 35% of float.
    @Test func theDefaultModelsInt8FileIsAtMost35PercentOfTheFloatOne() throws {
        var config = ModelConfig(modalities: [.audio, .faces])
        config.recurrent = true
        let model = EmotionModel(config, seed: 1)
        model.eval()
        let standardizer = Standardizer(melMean: [Float](repeating: -40, count: 64), melStd: [Float](repeating: 20, count: 64),
                                        faceMean: [0.5, 0.5, 0.5], faceStd: [0.25, 0.25, 0.25])
        let float = try ONNXExporter.export(model, standardizer: standardizer, metadata: [:])
        let int8 = try ONNXExporter.export(model, standardizer: standardizer, metadata: [:], precision: .int8)
        let ratio = Double(int8.count) / Double(float.count)
        #expect(ratio <= 0.35, "model.int8.onnx is \(int8.count) bytes, \(ratio) of model.onnx's \(float.count)")
        #expect(try ONNXExporter.export(model, standardizer: standardizer, metadata: [:], precision: .int8) == int8,
                "deterministic bytes")
    }

    /// onnxruntime runs the int8 graph and gives the Swift int8 scorer's logits: padded audio, missed
    /// face frames and missing modalities, batch 1 and 7, with and without the GRU.
    @Test(.enabled(if: TestSupport.python != nil, "needs the test venv (make venv) with onnx and onnxruntime"),
          arguments: [1, 7], ONNXExportTests.Variant.allCases)
    func onnxruntimeAgreesWithTheSwiftInt8Scorer(batch: Int, variant: ONNXExportTests.Variant) throws {
        let python = try #require(TestSupport.python)
        var rng = SplitMix64(seed: UInt64(batch) + 100)
        var config = ONNXExportTests.config
        config.utteranceNorm = variant == .utteranceNorm || variant == .deltas
        config.recurrent = variant == .recurrent
        if variant == .deltas { config.deltas = true }
        let model = EmotionModel(config, seed: 9)
        let training = ONNXExportTests.samples(12, rng: &rng)
        let standardizer = Standardizer.fit(training.map { s in
            ClipFeatures(id: s.id, logmel: s.logmel ?? [], stride: config.frames, real: s.realFrames, nMels: config.nMels,
                         faces: s.faces, faceMask: s.faceMask, label: s.label)
        }, config: config)
        let float = Inference(model: model, standardizer: standardizer, batchSize: 16)
        model.train()
        _ = try model(float.encoder.encode(training))
        model.eval()
        let samples = ONNXExportTests.samples(batch, rng: &rng)
        let input = try float.encoder.encode(samples)
        let int8 = Inference(model: try model.int8Simulation(), standardizer: standardizer, batchSize: 16)
        let swiftInt8 = try int8.logits(samples).flatMap { $0 }
        let swiftFloat = try float.logits(samples).flatMap { $0 }

        let folder = try TestSupport.temporaryFolder("onnx-int8")
        let metadata = ["labels": "test", "quantization": "int8"]
        try ONNXExporter.export(model, standardizer: standardizer, metadata: metadata, precision: .int8)
            .write(to: URL(fileURLWithPath: folder + "/model.int8.onnx"))
        let c = config
        try ONNXExportTests.writeInputs(samples, encoded: input, expected: swiftInt8, config: c, to: folder)

        let out = String(decoding: try TestSupport.output(python, [TestSupport.repositoryRoot + "/scripts/onnx_check.py",
                                                                   folder + "/model.int8.onnx", folder]), as: UTF8.self)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let diff = try #require(report["max_abs_diff"] as? Double)
        #expect(diff <= 1e-3, "max |onnxruntime int8 − Swift int8| = \(diff)")
        #expect(report["shape"] as? [Int] == [batch, 8])
        #expect(report["metadata"] as? [String: String] == metadata)
        // Every Conv/MatMul/GRU weight is stored as int8: the convolutions, 6 linear layers, the GRU's W and R.
        #expect(report["int8_initializers"] as? Int == c.audioChannels.count + c.faceChannels.count + 6 + (variant == .recurrent ? 2 : 0))
        // The quantisation is real: int8 logits are not the float ones, but close to them.
        let gap = zip(swiftInt8, swiftFloat).map { abs($0 - $1) }.max() ?? 0
        #expect(gap > 0 && gap < 0.5, "int8 vs float logits differ by \(gap)")
    }
}
