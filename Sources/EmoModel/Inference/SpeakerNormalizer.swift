import Foundation

/// Per-speaker standardisation of log-mels: each mel band of each clip minus the mean, over the
/// speaker's own clips (real frames only), divided by their standard deviation. It uses no labels,
/// so unseen speakers' statistics may come from their own clips; what it removes is each voice's
/// and each microphone's fixed colouring, which a model trained on a few speakers would learn.
public enum SpeakerNormalizer {
    /// Floor of a band's standard deviation (dB): a silent or constant band is not blown up.
    static let minimumStd: Double = 1e-3

    /// `speakers[i]` groups `samples[i]`; padded frames and samples without a log-mel are left alone.
    public static func normalize(_ samples: [Sample], speakers: [Int], nMels: Int, frames: Int) -> [Sample] {
        var out = samples
        for indices in Dictionary(grouping: samples.indices, by: { speakers[$0] }).values {
            let (mean, std) = statistics(indices.map { samples[$0] }, nMels: nMels, frames: frames)
            for i in indices {
                guard var values = out[i].logmel, values.count == nMels * frames else { continue }
                let real = max(0, min(out[i].realFrames, frames))
                for band in 0..<nMels {
                    for t in 0..<real { values[band * frames + t] = (values[band * frames + t] - mean[band]) / std[band] }
                }
                out[i].logmel = values
            }
        }
        return out
    }

    /// Per-band mean and standard deviation over the real frames of the given clips (Double sums:
    /// thousands of frames of dB values).
    static func statistics(_ samples: [Sample], nMels: Int, frames: Int) -> (mean: [Float], std: [Float]) {
        var sum = [Double](repeating: 0, count: nMels), squares = [Double](repeating: 0, count: nMels)
        var count = 0
        for sample in samples {
            guard let values = sample.logmel, values.count == nMels * frames else { continue }
            let real = max(0, min(sample.realFrames, frames))
            count += real
            for band in 0..<nMels {
                for t in 0..<real {
                    let v = Double(values[band * frames + t])
                    sum[band] += v; squares[band] += v * v
                }
            }
        }
        guard count > 0 else { return ([Float](repeating: 0, count: nMels), [Float](repeating: 1, count: nMels)) }
        let mean = sum.map { $0 / Double(count) }
        let std = zip(squares, mean).map { sq, m in max(minimumStd, (max(0, sq / Double(count) - m * m)).squareRoot()) }
        return (mean.map(Float.init), std.map(Float.init))
    }
}
