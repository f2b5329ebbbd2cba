import EmoModel
import EmoNN
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// The exported graph against the Swift forward pass, through onnx.checker and onnxruntime (the
/// test venv): padded audio, missed face frames and missing modalities, at batch 1 and 7.
@Suite("ONNX export", .enabled(if: TestSupport.python != nil,
                               "needs the test venv (make venv) with onnx and onnxruntime"))
struct ONNXExportTests {
    static let config = ModelConfig(modalities: [.audio, .faces], classes: 8, nMels: 32, frames: 64, faceFrames: 4,
                                    faceSize: 32, audioChannels: [4, 8], faceChannels: [4, 8], embedding: 16)

    /// Samples covering every case the masks express.
    /// The `.npy` files `scripts/onnx_check.py` feeds onnxruntime: the graph's five inputs as the cache
    /// holds them (dB log-mels, uint8 crops) and the logits Swift computed for them.
    static func writeInputs(_ samples: [Sample], encoded input: ModelInput, expected logits: [Float],
                            config c: ModelConfig, to folder: String) throws {
        let batch = samples.count
        func save(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: Data) throws {
            try NumpyFile.encode(dtype: dtype, shape: shape, data: bytes).write(to: URL(fileURLWithPath: folder + "/\(name).npy"))
        }
        func floats(_ v: [Float]) -> Data { v.withUnsafeBufferPointer { Data(buffer: $0) } }
        try save("logmel", .float32, [batch, c.nMels, c.frames],
                 floats(samples.flatMap { $0.logmel ?? [Float](repeating: 0, count: c.nMels * c.frames) }))
        try save("logmel_mask", .float32, [batch, c.frames], floats(input.logmelMask))
        try save("faces", .uint8, [batch, c.faceFrames, c.faceSize, c.faceSize, 3],
                 Data(samples.flatMap { $0.faces ?? [UInt8](repeating: 0, count: c.faceFrames * c.faceSize * c.faceSize * 3) }))
        try save("faces_mask", .float32, [batch, c.faceFrames], floats(input.facesMask))
        try save("modality_mask", .float32, [batch, 2], floats(input.modalityMask))
        try save("expected_logits", .float32, [batch, c.classes], floats(logits))
    }

    static func samples(_ count: Int, rng: inout SplitMix64) -> [Sample] {
        let c = config
        return (0..<count).map { i in
            let hasAudio = i % 3 != 2, hasFaces = i % 3 != 1
            let real = hasAudio ? [c.frames, c.frames / 2, 5][i % 3] : 0
            let logmel: [Float]? = hasAudio ? (0..<(c.nMels * c.frames)).map { _ in -80 + Float(rng.next() % 7000) / 100 } : nil
            let faces: [UInt8]? = hasFaces ? (0..<(c.faceFrames * c.faceSize * c.faceSize * 3)).map { _ in UInt8(rng.next() % 256) } : nil
            let mask: [Float] = (0..<c.faceFrames).map { j in hasFaces && (i + j) % 4 != 0 ? 1 : 0 }
            return Sample(id: "\(i)", logmel: logmel, realFrames: real, faces: faces, faceMask: mask, label: i % 8)
        }
    }

    /// Plain, with per-utterance normalisation, with the bidirectional GRU, and with delta channels (after
    /// per-utterance normalisation, so that the order of the two is checked too).
    enum Variant: String, CaseIterable, Sendable { case plain, utteranceNorm, recurrent, deltas }

    @Test(arguments: [1, 7], Variant.allCases)
    func onnxruntimeAgreesWithTheSwiftForwardPass(batch: Int, variant: Variant) throws {
        var rng = SplitMix64(seed: UInt64(batch))
        var config = Self.config
        config.utteranceNorm = variant == .utteranceNorm || variant == .deltas
        config.recurrent = variant == .recurrent
        if variant == .deltas { config.deltas = true }
        let model = EmotionModel(config, seed: 5)
        let training = Self.samples(12, rng: &rng)
        let standardizer = Standardizer.fit(training.map { s in
            ClipFeatures(id: s.id, logmel: s.logmel ?? [], stride: Self.config.frames, real: s.realFrames, nMels: Self.config.nMels,
                         faces: s.faces, faceMask: s.faceMask, label: s.label)
        }, config: Self.config)
        let inference = Inference(model: model, standardizer: standardizer, batchSize: 16)
        // A training-mode pass gives the batch norms running statistics other than 0 and 1.
        model.train()
        _ = try model(inference.encoder.encode(training))
        let samples = Self.samples(batch, rng: &rng)
        let input = try inference.encoder.encode(samples)
        // What evaluation and predict compute: eval mode, no gradients.
        let logits = try inference.logits(samples).flatMap { $0 }

        let folder = try TestSupport.temporaryFolder("onnx")
        let onnx = try ONNXExporter.export(model, standardizer: standardizer, metadata: ["labels": "test"])
        try onnx.write(to: URL(fileURLWithPath: folder + "/model.onnx"))
        let c = Self.config
        try ONNXExportTests.writeInputs(samples, encoded: input, expected: logits, config: c, to: folder)

        let out = String(decoding: try TestSupport.output(try #require(TestSupport.python),
                                                          [TestSupport.repositoryRoot + "/scripts/onnx_check.py", folder + "/model.onnx", folder]),
                         as: UTF8.self)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let diff = try #require(report["max_abs_diff"] as? Double)
        #expect(diff <= 1e-4, "max |onnxruntime − Swift| = \(diff)")
        #expect(report["shape"] as? [Int] == [batch, 8])
        #expect(report["opset"] as? Int == 17)
        #expect((report["metadata"] as? [String: String])?["labels"] == "test")
        // Deterministic bytes: the same model exports identically.
        #expect(try ONNXExporter.export(model, standardizer: standardizer, metadata: ["labels": "test"]) == onnx)
    }
}
