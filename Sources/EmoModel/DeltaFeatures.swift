import EmoNN

/// Delta and delta-delta of a log-mel over time, as two more input channels: how each band rises and
/// falls, which varies less from speaker to speaker than the spectrum itself. The delta is the
/// regression over ±2 frames (HTK's, librosa's `delta(width=5)` in the interior); the delta-delta is
/// that regression applied twice, as one 9-frame kernel. Frames beyond the window count as 0, as the
/// padding frames already are, so the exported graph computes it with one Conv.
public enum DeltaFeatures {
    public static let channels = 3
    public static let reach = 4

    /// Correlation kernels over frames -reach...reach: the input itself, its delta, its delta-delta.
    public static let kernels: [[Float]] = {
        let delta: [Float] = [0, 0, -2, -1, 0, 1, 2, 0, 0].map { $0 / 10 }
        let identity: [Float] = (-reach...reach).map { $0 == 0 ? 1 : 0 }
        // delta ⋆ delta: the kernel of applying the regression twice.
        let twice: [Float] = (-reach...reach).map { q in
            (-reach...reach).reduce(Float(0)) { sum, o in
                let p = q - o
                return abs(p) <= reach ? sum + delta[o + reach] * delta[p + reach] : sum
            }
        }
        return [identity, delta, twice]
    }()

    /// [B, M, T] → [B, 3, M, T].
    public static func stacked(_ logmel: Tensor) throws -> Tensor {
        let (b, m, t) = (logmel.shape[0], logmel.shape[1], logmel.shape[2])
        let x = logmel.data
        var out = [Float](repeating: 0, count: b * channels * m * t)
        for i in 0..<b {
            for band in 0..<m {
                let row = (i * m + band) * t
                for (c, kernel) in kernels.enumerated() {
                    let target = ((i * channels + c) * m + band) * t
                    for f in 0..<t {
                        var sum: Float = 0
                        for (j, w) in kernel.enumerated() where w != 0 {
                            let source = f + j - reach
                            if source >= 0 && source < t { sum += w * x[row + source] }
                        }
                        out[target + f] = sum
                    }
                }
            }
        }
        return try Tensor(shape: [b, channels, m, t], data: out)
    }
}
