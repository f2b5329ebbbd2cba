import EmoNN

/// Delta and delta-delta of a log-mel over time, as two more input channels: how each band rises and
/// falls, which varies less from speaker to speaker than the spectrum itself. The delta is the
/// regression over ±2 frames (HTK's, librosa's `delta(width=5)` in the interior); the delta-delta is
/// that regression applied twice, as one 9-frame kernel. Frames beyond the window count as 0, as the
/// padding frames already are, so the exported graph computes it with one Conv (and the frame mask).
public enum DeltaFeatures {
    public static let channels = 3
    public static let reach = 4
    /// Frames each kernel spans.
    public static let width = 2 * reach + 1

    /// Correlation kernels over frames -reach...reach: the input itself, its delta, its delta-delta.
    public static let kernels: [[Float]] = {
        // Σ n·(x[t+n] − x[t−n]) / (2 Σ n²) over n = 1, 2: tap o weighs o / 10 for |o| ≤ 2.
        let delta: [Float] = (-reach...reach).map { abs($0) <= 2 ? Float($0) / 10 : 0 }
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

    /// [B, M, T] with its frame mask [B, T] → [B, 3, M, T]. Padding frames stay 0 in every channel, as
    /// they are in the input (the deltas would otherwise spill into them from the last real frames).
    public static func stacked(_ logmel: Tensor, frameMask: [Float]) throws -> Tensor {
        let (b, m, t) = (logmel.shape[0], logmel.shape[1], logmel.shape[2])
        let x = logmel.data
        var out = [Float](repeating: 0, count: b * channels * m * t)
        for i in 0..<b {
            for band in 0..<m {
                let row = (i * m + band) * t
                for (c, kernel) in kernels.enumerated() {
                    let target = ((i * channels + c) * m + band) * t
                    for f in 0..<t where frameMask[i * t + f] > 0 {
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
