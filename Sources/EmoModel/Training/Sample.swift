/// One window of a clip as the model sees it: [n_mels × frames] of the model's window, and the
/// clip's face crops and label. `ClipFeatures.window(start:frames:nMels:)` cuts it from a whole clip.
public struct Sample: Sendable {
    public var id: String
    /// [n_mels × frames] log-mel in dB, mel-major; nil when the clip has no speech.
    public var logmel: [Float]?
    public var realFrames: Int
    /// [K × S × S × 3] RGB crops; nil when the clip has no usable face.
    public var faces: [UInt8]?
    /// [K]: 1 for a crop whose face was found or borrowed from a neighbour.
    public var faceMask: [Float]
    public var label: Int

    public init(id: String, logmel: [Float]?, realFrames: Int, faces: [UInt8]?, faceMask: [Float], label: Int) {
        self.id = id; self.logmel = logmel; self.realFrames = realFrames; self.faces = faces
        self.faceMask = faceMask; self.label = label
    }
}

/// One whole clip: every frame of its log-mel (as the audio stage cached it), its face crops and its
/// label. The model sees it through windows (`WindowPolicy`).
public struct ClipFeatures: Sendable {
    public var id: String
    /// [n_mels × melFrames] log-mel in dB, mel-major, every frame real; nil when the clip has no speech.
    public var logmel: [Float]?
    public var melFrames: Int
    /// [K × S × S × 3] RGB crops over the whole clip, shared by all of its windows; nil without a face.
    public var faces: [UInt8]?
    public var faceMask: [Float]
    public var label: Int

    public init(id: String, logmel: [Float]?, melFrames: Int, faces: [UInt8]?, faceMask: [Float], label: Int) {
        self.id = id; self.logmel = logmel; self.melFrames = logmel == nil ? 0 : melFrames; self.faces = faces
        self.faceMask = faceMask; self.label = label
    }

    /// Whether the clip has data for `modality`: a log-mel, or face crops.
    public func has(_ modality: ModelConfig.Modality) -> Bool {
        modality == .audio ? logmel != nil : faces != nil
    }

    /// The clip with `modality`'s input taken away, as a clip that never had it is given to the model.
    public func without(_ modality: ModelConfig.Modality) -> ClipFeatures {
        var clip = self
        if modality == .faces { clip.faces = nil; clip.faceMask = clip.faceMask.map { _ in 0 } } else { clip.logmel = nil; clip.melFrames = 0 }
        return clip
    }

    /// The clip with each of `modalities` taken away.
    public func without(_ modalities: [ModelConfig.Modality]) -> ClipFeatures { modalities.reduce(self) { $0.without($1) } }

    /// Whether the clip has any input a model could read.
    public var hasInput: Bool { logmel != nil || faces != nil }

    /// The first `real` frames of a log-mel stored with `stride` frames per band (a cached tensor
    /// padded to a fixed length keeps only its real frames).
    public init(id: String, logmel: [Float], stride: Int, real: Int, nMels: Int, faces: [UInt8]?, faceMask: [Float], label: Int) {
        let real = max(0, min(real, stride))
        var values = [Float](repeating: 0, count: nMels * real)
        if real > 0 {
            for band in 0..<nMels where (band + 1) * stride <= logmel.count {
                for t in 0..<real { values[band * real + t] = logmel[band * stride + t] }
            }
        }
        self.init(id: id, logmel: real > 0 ? values : nil, melFrames: real, faces: faces, faceMask: faceMask, label: label)
    }

    /// The window starting at frame `start`, zero-padded past the clip's end.
    public func window(start: Int, frames: Int, nMels: Int) -> Sample {
        var window: [Float]?
        var real = 0
        // A log-mel of another band count than the model's is not indexed (it has no window here).
        if let logmel, melFrames > 0, logmel.count == nMels * melFrames {
            let first = max(0, min(start, melFrames - 1))
            real = min(frames, melFrames - first)
            var values = [Float](repeating: 0, count: nMels * frames)
            for band in 0..<nMels {
                for t in 0..<real { values[band * frames + t] = logmel[band * melFrames + first + t] }
            }
            window = values
        }
        return Sample(id: id, logmel: window, realFrames: real, faces: faces, faceMask: faceMask, label: label)
    }

    /// A window of `frames` frames read from `source` frames of the clip from `start` on, resampled
    /// in time by linear interpolation: a feature-level speed perturbation (`source` > `frames`
    /// speeds the voice up). Frames past the clip's end are padding, as in `window(start:frames:nMels:)`.
    public func stretchedWindow(start: Int, source: Int, frames: Int, nMels: Int) -> Sample {
        guard source != frames, source > 0, let logmel, melFrames > 0, logmel.count == nMels * melFrames else {
            return window(start: start, frames: frames, nMels: nMels)
        }
        let first = max(0, min(start, melFrames - 1))
        let ratio = Double(source) / Double(frames)
        // Output frame t reads clip position first + t·ratio; only positions inside the clip are real.
        let available = melFrames - first
        let real = min(frames, Int((Double(available - 1) / ratio).rounded(.down)) + 1)
        var values = [Float](repeating: 0, count: nMels * frames)
        for t in 0..<real {
            let position = Double(t) * ratio
            let lower = min(Int(position), available - 1), upper = min(lower + 1, available - 1)
            let weight = Float(position - Double(lower))
            for band in 0..<nMels {
                let row = band * melFrames + first
                values[band * frames + t] = logmel[row + lower] * (1 - weight) + logmel[row + upper] * weight
            }
        }
        return Sample(id: id, logmel: values, realFrames: real, faces: faces, faceMask: faceMask, label: label)
    }

    /// Every window the policy scores.
    public func windows(_ policy: WindowPolicy, nMels: Int) -> [Sample] {
        policy.starts(realFrames: melFrames).map { window(start: $0, frames: policy.frames, nMels: nMels) }
    }
}

/// Per-feature standardisation, fitted on the training fold only: a mean and deviation per mel
/// band (over real frames) and per colour channel.
public struct Standardizer: Codable, Equatable, Sendable {
    public var melMean: [Float]
    public var melStd: [Float]
    public var faceMean: [Float]
    public var faceStd: [Float]

    /// Over every frame of the given clips.
    public static func fit(_ samples: [ClipFeatures], config: ModelConfig) -> Standardizer {
        let m = config.nMels
        var sum = [Double](repeating: 0, count: m), square = [Double](repeating: 0, count: m)
        var frames = 0.0
        for sample in samples {
            guard let logmel = sample.logmel, logmel.count == m * sample.melFrames else { continue }
            let t = sample.melFrames
            for band in 0..<m {
                for f in 0..<t {
                    let v = Double(logmel[band * t + f])
                    sum[band] += v; square[band] += v * v
                }
            }
            frames += Double(t)
        }
        var faceSum = [Double](repeating: 0, count: 3), faceSquare = [Double](repeating: 0, count: 3)
        var pixels = 0.0
        for sample in samples {
            guard let faces = sample.faces else { continue }
            for i in stride(from: 0, to: faces.count, by: 3) {
                for c in 0..<3 { let v = Double(faces[i + c]) / 255; faceSum[c] += v; faceSquare[c] += v * v }
            }
            pixels += Double(faces.count / 3)
        }
        func moments(_ s: [Double], _ q: [Double], _ n: Double, fallback: (Float, Float)) -> ([Float], [Float]) {
            guard n > 1 else { return (s.map { _ in fallback.0 }, s.map { _ in fallback.1 }) }
            let mean = s.map { $0 / n }
            // A constant band's variance can round below 0; its square root would be NaN.
            let std = zip(q, mean).map { max(max(0, $0 / n - $1 * $1).squareRoot(), 1e-3) }
            return (mean.map(Float.init), std.map(Float.init))
        }
        let (melMean, melStd) = moments(sum, square, frames, fallback: (-50, 20))
        let (faceMean, faceStd) = moments(faceSum, faceSquare, pixels, fallback: (0.5, 0.25))
        return Standardizer(melMean: melMean, melStd: melStd, faceMean: faceMean, faceStd: faceStd)
    }
}
