import EmoNN
import Foundation

/// Seeded augmentation of training samples. Audio works on the log-mel directly: noise is mixed
/// in the power domain at a random SNR, the clip is shifted in time, and SpecAugment masks bands
/// and frames. Faces are flipped, jittered in brightness and contrast, and cropped by a few pixels.
public struct Augmentation: Codable, Equatable, Sendable {
    // Mild on purpose: on RAVDESS speech, stronger settings (noise 20-45 dB below the peak in 30%
    // of clips, two 8-band and two 30-frame masks) kept training accuracy near 0.3 after 15 epochs.
    public var noiseProbability: Double = 0.25
    /// Noise level below the clip's loudest bin, in dB.
    public var snrDb: [Double] = [30, 50]
    public var maxShiftFrames: Int = 30
    public var frequencyMasks: Int = 1
    public var frequencyMaskWidth: Int = 6
    public var timeMasks: Int = 1
    public var timeMaskWidth: Int = 20
    /// Speed perturbation of each training window: it is read from a stretch of the clip between
    /// (1 − s) and (1 + s) times its length, resampled to the window. Optional so that models
    /// recorded before it load (nil: none).
    public var timeStretch: Double?
    /// Mixup's α: pairs within a batch blended with a weight drawn from Beta(α, α) (nil: none).
    /// Optional like `timeStretch`.
    public var mixup: Double?
    /// Vocal-tract-length perturbation: each training window's mel axis is warped by a factor drawn
    /// from 1 ± this (`FrequencyWarp`), so that one actor's formants stand for a range of speakers'.
    /// Optional like `timeStretch` (nil: none).
    public var frequencyWarp: Double?
    public var faceFlip: Bool = true
    public var brightness: Double = 0.15
    public var contrast: Double = 0.15
    public var cropPixels: Int = 6

    public init() {}

    /// A standardised log-mel [M × T] with `real` real frames, augmented in place.
    func audio(_ x: inout [Float], nMels m: Int, frames t: Int, real: Int, rng: RandomGenerator,
               standardizer: Standardizer) {
        guard real > 0 else { return }
        // Drawn only when asked for, so runs without it keep their draws.
        if let s = frequencyWarp, s > 0 {
            FrequencyWarp(factor: 1 + (2 * Double(rng.uniform()) - 1) * s, bands: m).apply(&x, frames: t, real: real)
        }
        if Double(rng.uniform()) < noiseProbability {
            // In dB before standardising: S' = 10·log10(10^(S/10) + 10^(N/10)), N = peak − SNR.
            var peak = -Float.infinity
            for band in 0..<m { for f in 0..<real { peak = max(peak, x[band * t + f] * standardizer.melStd[band] + standardizer.melMean[band]) } }
            let snr = Float(snrDb[0] + Double(rng.uniform()) * (snrDb[1] - snrDb[0]))
            for band in 0..<m {
                let noise = peak - snr + 3 * rng.normal()
                for f in 0..<real {
                    let db = x[band * t + f] * standardizer.melStd[band] + standardizer.melMean[band]
                    let mixed = 10 * log10(pow(10, db / 10) + pow(10, noise / 10))
                    x[band * t + f] = (mixed - standardizer.melMean[band]) / standardizer.melStd[band]
                }
            }
        }
        if maxShiftFrames > 0 && real > 1 {
            // Roll the real frames: the clip starts at another moment of the same performance.
            let shift = Int(rng.next() % UInt64(min(maxShiftFrames, real - 1) + 1))
            if shift > 0 {
                for band in 0..<m {
                    let row = Array(x[(band * t)..<(band * t + real)])
                    for f in 0..<real { x[band * t + f] = row[(f + shift) % real] }
                }
            }
        }
        for _ in 0..<frequencyMasks {
            let width = Int(rng.next() % UInt64(frequencyMaskWidth + 1))
            let start = Int(rng.next() % UInt64(max(1, m - width)))
            for band in start..<min(m, start + width) { for f in 0..<real { x[band * t + f] = 0 } }
        }
        for _ in 0..<timeMasks {
            let width = Int(rng.next() % UInt64(min(timeMaskWidth, real / 4) + 1))
            let start = Int(rng.next() % UInt64(max(1, real - width)))
            for band in 0..<m { for f in start..<min(real, start + width) { x[band * t + f] = 0 } }
        }
    }

    /// One standardised crop [3, S, S] (channel-first), augmented in place.
    func face(_ x: inout [Float], size s: Int, rng: RandomGenerator) {
        let plane = s * s
        if faceFlip && rng.uniform() < 0.5 {
            for c in 0..<3 { for row in 0..<s { x[(c * plane + row * s)..<(c * plane + row * s + s)].reverse() } }
        }
        let gain = Float(1 + (Double(rng.uniform()) * 2 - 1) * contrast)
        let offset = Float((Double(rng.uniform()) * 2 - 1) * brightness) * 4   // in standardised units (~0.25 std)
        for i in 0..<x.count { x[i] = x[i] * gain + offset }
        if cropPixels > 0 {
            // A small random crop, resized back by nearest neighbour.
            let dx = Int(rng.next() % UInt64(cropPixels + 1)), dy = Int(rng.next() % UInt64(cropPixels + 1))
            let inner = s - cropPixels
            let copy = x
            for c in 0..<3 {
                for row in 0..<s {
                    let sy = dy + row * inner / s
                    for col in 0..<s { x[c * plane + row * s + col] = copy[c * plane + sy * s + dx + col * inner / s] }
                }
            }
        }
    }
}


/// A piecewise-linear warp of the mel axis (Jaitly & Hinton's VTLP): output band `b` reads the input
/// at `factor · b` up to a knee, then along a line that keeps the top band in place, so no band reads
/// past the spectrum. Values between bands are interpolated linearly.
struct FrequencyWarp {
    /// For each output band, the input bands it reads and the weight of the upper one.
    let sources: [(lower: Int, upper: Int, weight: Float)]

    init(factor: Double, bands m: Int) {
        let top = Double(m - 1)
        // The knee sits where factor · knee stays inside the spectrum with room for the line above it.
        let knee = 0.8 * top * min(1, 1 / factor)
        sources = (0..<m).map { band in
            let b = Double(band)
            let position = b <= knee ? factor * b
                : factor * knee + (top - factor * knee) * (b - knee) / max(top - knee, .ulpOfOne)
            let clamped = min(max(position, 0), top)
            let lower = Int(clamped.rounded(.down))
            return (lower, min(lower + 1, m - 1), Float(clamped - Double(lower)))
        }
    }

    /// Warps the first `real` frames of a band-major [bands × frames] log-mel in place.
    func apply(_ x: inout [Float], frames t: Int, real: Int) {
        let original = x
        for (band, source) in sources.enumerated() {
            for f in 0..<real {
                x[band * t + f] = original[source.lower * t + f] * (1 - source.weight) + original[source.upper * t + f] * source.weight
            }
        }
    }
}
