import EmoNN

/// One batch as the model takes it: the cache's tensors, already standardised, with masks.
public struct ModelInput {
    /// [B, n_mels, frames] standardised log-mel.
    public var logmel: Tensor
    /// [B, frames]: 1 for a real frame, 0 for padding.
    public var logmelMask: [Float]
    /// [B, K, 3, S, S] standardised face crops (channel-first).
    public var faces: Tensor?
    /// [B, K]: 1 for a usable crop.
    public var facesMask: [Float]
    /// [B, 2]: which modalities each sample has (audio, faces).
    public var modalityMask: [Float]

    public init(logmel: Tensor, logmelMask: [Float], faces: Tensor?, facesMask: [Float], modalityMask: [Float]) {
        self.logmel = logmel; self.logmelMask = logmelMask; self.faces = faces
        self.facesMask = facesMask; self.modalityMask = modalityMask
    }

    public var batchSize: Int { logmel.shape[0] }
}

/// Log-mel branch: conv blocks over [n_mels, frames], mean over frequency, an optional
/// bidirectional GRU over time, attention pooling over the real (unpadded) steps.
final class AudioBranch: Module {
    let blocks: [ConvBlock]
    let gru: GRU?
    let project: Linear
    let pool: AttentionPool
    let stride: Int
    let deltas: Bool
    var projectPrecision = ActivationPrecision.float

    init(_ config: ModelConfig, rng: RandomGenerator) {
        var inChannels = config.audioInputChannels
        blocks = config.audioChannels.map { out in defer { inChannels = out }; return ConvBlock(inChannels, out, rng: rng) }
        // Each time step keeps its frequency profile: channels × remaining mel bands.
        let width = (config.audioChannels.last ?? 1) * config.audioBands
        gru = config.recurrent ? GRU(width, config.embedding / 2, bidirectional: true, rng: rng) : nil
        project = Linear(config.recurrent ? config.embedding / 2 * 2 : width, config.embedding, rng: rng)
        pool = AttentionPool(config.embedding, rng: rng)
        stride = config.audioStride
        deltas = config.deltas == true
        super.init()
    }

    /// [B, n_mels, T] → [B, E].
    func callAsFunction(_ logmel: Tensor, frameMask: [Float]) throws -> Tensor {
        let (b, t) = (logmel.shape[0], logmel.shape[2])
        // The input is data, not a weight: its deltas need no gradient.
        var h = deltas ? try DeltaFeatures.stacked(logmel, frameMask: frameMask) : try logmel.unsqueezed(1)
        for block in blocks { h = try block(h) }                  // [B, C, M', T']
        let (c, bands, steps) = (h.shape[1], h.shape[2], h.shape[3])
        h = try h.permuted([0, 3, 1, 2]).reshaped([b, steps, c * bands])   // [B, T', C·M']
        if let gru { h = try gru(h) }
        h = try project(projectPrecision.apply(h)).relu()         // [B, T', E]
        let mask = Self.downsample(frameMask, batch: b, frames: t, steps: steps, stride: stride)
        return try pool(h, mask: Tensor(shape: [b, steps], data: mask)).pooled
    }

    /// A pooled step is real when any frame it covers is real.
    static func downsample(_ mask: [Float], batch: Int, frames: Int, steps: Int, stride: Int) -> [Float] {
        var out = [Float](repeating: 0, count: batch * steps)
        for i in 0..<batch {
            for s in 0..<steps {
                let window = (s * stride)..<min(frames, (s + 1) * stride)
                out[i * steps + s] = window.contains { mask[i * frames + $0] > 0 } ? 1 : 0
            }
        }
        return out
    }
}

/// Face branch: one small CNN shared over the K crops, global average pool, attention pooling
/// over the usable crops.
final class FaceBranch: Module {
    let blocks: [ConvBlock]
    let project: Linear
    let pool: AttentionPool
    var projectPrecision = ActivationPrecision.float

    init(_ config: ModelConfig, rng: RandomGenerator) {
        var inChannels = 3
        blocks = config.faceChannels.map { out in defer { inChannels = out }; return ConvBlock(inChannels, out, rng: rng) }
        project = Linear(config.faceChannels.last ?? 3, config.embedding, rng: rng)
        pool = AttentionPool(config.embedding, rng: rng)
        super.init()
    }

    /// [B, K, 3, S, S] → [B, E].
    func callAsFunction(_ faces: Tensor, mask: [Float]) throws -> Tensor {
        let (b, k) = (faces.shape[0], faces.shape[1])
        var h = try faces.reshaped([b * k] + Array(faces.shape[2...]))
        for block in blocks { h = try block(h) }
        h = try project(projectPrecision.apply(h.globalAvgPool2d().reshaped([b * k, h.shape[1]]))).relu()
        return try pool(h.reshaped([b, k, h.shape[1]]), mask: Tensor(shape: [b, k], data: mask)).pooled
    }
}

/// The multimodal emotion model: a log-mel branch and a face branch, fused by attention weights
/// over the modalities each sample has (a masked softmax: a missing modality gets weight 0, never
/// zeros posing as data), then a classifier.
public final class EmotionModel: Module {
    public let config: ModelConfig
    let audio: AudioBranch?
    let faces: FaceBranch?
    let fusionScore: Linear
    let dropout: Dropout
    let classifier: Linear
    private let _dropoutRNG: RandomGenerator
    /// The fusion score's and classifier's inputs (`int8Simulation()`).
    var activationPrecision = ActivationPrecision.float

    public init(_ config: ModelConfig, seed: UInt64) {
        let rng = RandomGenerator(seed: seed)
        self.config = config
        audio = config.uses(.audio) ? AudioBranch(config, rng: rng) : nil
        faces = config.uses(.faces) ? FaceBranch(config, rng: rng) : nil
        fusionScore = Linear(config.embedding, 1, rng: rng)
        _dropoutRNG = RandomGenerator(seed: seed &+ 1)
        dropout = Dropout(config.dropout, rng: _dropoutRNG)
        classifier = Linear(config.embedding, config.classes, rng: rng)
        super.init()
    }

    /// Restarts the dropout masks' generator (the trainer does this every epoch).
    public func reseedDropout(_ seed: UInt64) {
        _dropoutRNG.state = RandomGenerator(seed: seed).state
    }

    /// Logits [B, classes].
    public func callAsFunction(_ input: ModelInput) throws -> Tensor {
        try forward(input).logits
    }

    /// Logits and the fusion weights [B, 2] (audio, faces), for reports and ablations.
    public func forward(_ input: ModelInput) throws -> (logits: Tensor, fusionWeights: Tensor) {
        let b = input.batchSize
        var embeddings: [Tensor] = []
        var mask: [Float] = []
        if let audio {
            embeddings.append(try audio(input.logmel, frameMask: input.logmelMask))
            mask += (0..<b).map { input.modalityMask[$0 * 2] }
        }
        if let faces, let crops = input.faces {
            embeddings.append(try rowsWithModality(b, present: (0..<b).map { input.modalityMask[$0 * 2 + 1] > 0 }) { rows in
                let subset = try Tensor.stack(rows.map { try crops.sliced(axis: 0, $0..<($0 + 1)).squeezed(0) }, axis: 0)
                let subMask = rows.flatMap { r in (0..<crops.shape[1]).map { input.facesMask[r * crops.shape[1] + $0] } }
                return try faces(subset, mask: subMask)
            })
            mask += (0..<b).map { input.modalityMask[$0 * 2 + 1] }
        }
        let m = embeddings.count
        // mask is modality-major; the softmax wants [B, M].
        let fusionMask = (0..<b).flatMap { i in (0..<m).map { mask[$0 * b + i] } }
        let stacked = try Tensor.stack(embeddings, axis: 1)                        // [B, M, E]
        let scores = try fusionScore(activationPrecision.apply(stacked.tanh())).reshaped([b, m])
        let weights = try scores.maskedSoftmax(mask: Tensor(shape: [b, m], data: fusionMask), axis: 1)
        let fused = try (stacked * weights.unsqueezed(2)).sum(axis: 1)              // [B, E]
        let logits = try classifier(activationPrecision.apply(dropout(fused)))
        return (logits, weights)
    }

    /// Runs `branch` only on the rows that have the modality and puts zeros in the others, so a
    /// clip without video costs no face computation. The zeros are never used: fusion gives
    /// them weight 0.
    private func rowsWithModality(_ batch: Int, present: [Bool], _ branch: ([Int]) throws -> Tensor) throws -> Tensor {
        let rows = (0..<batch).filter { present[$0] }
        let width = config.embedding
        guard !rows.isEmpty else { return Tensor.zeros([batch, width]) }
        let computed = try branch(rows)                                            // [R, E]
        if rows.count == batch { return computed }
        var pieces: [Tensor] = []
        var next = 0
        for i in 0..<batch {
            if present[i] { pieces.append(try computed.sliced(axis: 0, next..<(next + 1))); next += 1 }
            else { pieces.append(Tensor.zeros([1, width])) }
        }
        return try Tensor.concat(pieces, axis: 0)
    }
}
