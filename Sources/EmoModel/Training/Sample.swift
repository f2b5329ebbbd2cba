/// One clip as training sees it: the cached features of each modality it has, and its label.
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

/// Per-feature standardisation, fitted on the training fold only: a mean and deviation per mel
/// band (over real frames) and per colour channel.
public struct Standardizer: Codable, Equatable, Sendable {
    public var melMean: [Float]
    public var melStd: [Float]
    public var faceMean: [Float]
    public var faceStd: [Float]

    public static func fit(_ samples: [Sample], config: ModelConfig) -> Standardizer {
        let m = config.nMels, t = config.frames
        var sum = [Double](repeating: 0, count: m), square = [Double](repeating: 0, count: m)
        var frames = 0.0
        for sample in samples {
            guard let logmel = sample.logmel else { continue }
            for band in 0..<m {
                for f in 0..<sample.realFrames {
                    let v = Double(logmel[band * t + f])
                    sum[band] += v; square[band] += v * v
                }
            }
            frames += Double(sample.realFrames)
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
            let std = zip(q, mean).map { max(($0 / n - $1 * $1).squareRoot(), 1e-3) }
            return (mean.map(Float.init), std.map(Float.init))
        }
        let (melMean, melStd) = moments(sum, square, frames, fallback: (-50, 20))
        let (faceMean, faceStd) = moments(faceSum, faceSquare, pixels, fallback: (0.5, 0.25))
        return Standardizer(melMean: melMean, melStd: melStd, faceMean: faceMean, faceStd: faceStd)
    }
}
