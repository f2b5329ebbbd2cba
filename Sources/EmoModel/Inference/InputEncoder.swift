import EmoNN

/// Samples into the model's input tensors: standardised with the training fold's statistics, with
/// masks for padding, missed faces and missing modalities. Training also passes its augmentation,
/// which acts on the standardised values; inference passes none.
public struct InputEncoder {
    public let config: ModelConfig
    public let standardizer: Standardizer

    public init(config: ModelConfig, standardizer: Standardizer) {
        self.config = config; self.standardizer = standardizer
    }

    public func encode(_ batch: [Sample]) throws -> ModelInput {
        try encode(batch, augmentation: nil, rng: nil)
    }

    /// A sample whose arrays are smaller than the model's input (crops of another size, a log-mel of fewer bands)
    /// is refused by shape: read past their end, it trapped.
    static func checkFits(_ sample: Sample, config cfg: ModelConfig) throws {
        let (m, t, k, s) = (cfg.nMels, cfg.frames, cfg.faceFrames, cfg.faceSize)
        if cfg.uses(.audio), let values = sample.logmel, values.count < m * t || !(0...t).contains(sample.realFrames) {
            throw ShapeError("encode \(sample.id)", [values.count, sample.realFrames], [m, t], "a log-mel of n_mels × frames values, of which at most frames are real")
        }
        if cfg.uses(.faces), let crops = sample.faces, crops.count < k * s * s * 3 || sample.faceMask.count < k {
            throw ShapeError("encode \(sample.id)", [crops.count, sample.faceMask.count], [k, s, s, 3],
                             "face_frames crops of face_size² RGB pixels, and a mask value for each")
        }
    }

    /// Augmented when both `augmentation` and `rng` are given.
    public func encode(_ batch: [Sample], augmentation: Augmentation?, rng: RandomGenerator?) throws -> ModelInput {
        let cfg = config
        let m = cfg.nMels, t = cfg.frames, k = cfg.faceFrames, s = cfg.faceSize
        let augment = augmentation.flatMap { a in rng.map { (a, $0) } }
        var logmel = [Float](repeating: 0, count: batch.count * m * t)
        var frameMask = [Float](repeating: 0, count: batch.count * t)
        var faces = cfg.uses(.faces) ? [Float](repeating: 0, count: batch.count * k * 3 * s * s) : []
        var faceMask = [Float](repeating: 0, count: batch.count * k)
        var modality = [Float](repeating: 0, count: batch.count * 2)
        for (i, sample) in batch.enumerated() {
            try Self.checkFits(sample, config: cfg)
            if cfg.uses(.audio), let values = sample.logmel {
                var x = [Float](repeating: 0, count: m * t)
                for band in 0..<m {
                    let mean = standardizer.melMean[band], std = standardizer.melStd[band]
                    for f in 0..<sample.realFrames { x[band * t + f] = (values[band * t + f] - mean) / std }
                }
                if let (a, rng) = augment { a.audio(&x, nMels: m, frames: t, real: sample.realFrames, rng: rng, standardizer: standardizer) }
                if cfg.utteranceNorm == true { Self.subtractBandMeans(&x, nMels: m, frames: t, real: sample.realFrames) }
                logmel.replaceSubrange((i * m * t)..<((i + 1) * m * t), with: x)
                for f in 0..<sample.realFrames { frameMask[i * t + f] = 1 }
                modality[i * 2] = sample.realFrames > 0 ? 1 : 0
            }
            if cfg.uses(.faces), let crops = sample.faces, sample.faceMask.contains(where: { $0 > 0 }) {
                for j in 0..<k {
                    var x = [Float](repeating: 0, count: 3 * s * s)
                    let base = j * s * s * 3
                    for p in 0..<(s * s) {
                        for c in 0..<3 {
                            x[c * s * s + p] = (Float(crops[base + p * 3 + c]) / 255 - standardizer.faceMean[c]) / standardizer.faceStd[c]
                        }
                    }
                    if let (a, rng) = augment { a.face(&x, size: s, rng: rng) }
                    faces.replaceSubrange(((i * k + j) * 3 * s * s)..<((i * k + j + 1) * 3 * s * s), with: x)
                    faceMask[i * k + j] = sample.faceMask[j]
                }
                modality[i * 2 + 1] = 1
            }
        }
        return ModelInput(
            logmel: try Tensor(shape: [batch.count, m, t], data: logmel), logmelMask: frameMask,
            faces: cfg.uses(.faces) ? try Tensor(shape: [batch.count, k, 3, s, s], data: faces) : nil,
            facesMask: faceMask, modalityMask: modality)
    }

    /// Per-utterance mean normalisation (ModelConfig.utteranceNorm), over the real frames only.
    static func subtractBandMeans(_ x: inout [Float], nMels m: Int, frames t: Int, real: Int) {
        guard real > 0 else { return }
        for band in 0..<m {
            var sum: Float = 0
            for f in 0..<real { sum += x[band * t + f] }
            let mean = sum / Float(real)
            for f in 0..<real { x[band * t + f] -= mean }
        }
    }
}
