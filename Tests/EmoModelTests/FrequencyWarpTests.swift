import EmoNN
import Testing
@testable import EmoModel

/// The mel-axis warp moves spectral peaks by its factor, keeps the edges of the spectrum, never reads
/// outside it, and is drawn only when asked for.
@Suite struct FrequencyWarpTests {
    /// A [bands × frames] log-mel whose every frame is `profile`.
    static func spectrogram(_ profile: [Float], frames: Int) -> [Float] {
        profile.flatMap { [Float](repeating: $0, count: frames) }
    }

    @Test func factorOneChangesNothing() {
        let bands = 64, frames = 5
        let x = Self.spectrogram((0..<bands).map { Float($0 * $0 % 17) - 8 }, frames: frames)
        var warped = x
        FrequencyWarp(factor: 1, bands: bands).apply(&warped, frames: frames, real: frames)
        #expect(warped == x)
    }

    @Test(arguments: [0.9, 0.95, 1.05, 1.1])
    func aPeakBelowTheKneeMovesByTheFactor(factor: Double) {
        // Output band b reads input band factor·b: a peak at input band 20 appears at 20 / factor.
        let bands = 64, frames = 3, peak = 20
        let x = Self.spectrogram((0..<bands).map { $0 == peak ? 10 : 0 }, frames: frames)
        var warped = x
        FrequencyWarp(factor: factor, bands: bands).apply(&warped, frames: frames, real: frames)
        let column = (0..<bands).map { warped[$0 * frames] }
        let centre = zip(0..., column).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / Double(column.reduce(0, +))
        #expect(abs(centre - Double(peak) / factor) < 0.5, "peak at \(centre), expected \(Double(peak) / factor)")
    }

    @Test(arguments: [0.7, 0.9, 1.1, 1.3])
    func edgesStayAndNothingIsReadOutsideTheSpectrum(factor: Double) {
        let bands = 40
        let warp = FrequencyWarp(factor: factor, bands: bands)
        #expect(warp.sources.first?.lower == 0 && warp.sources.first?.weight == 0)
        #expect(warp.sources.last?.lower == bands - 1)
        #expect(warp.sources.allSatisfy { (0..<bands).contains($0.lower) && (0..<bands).contains($0.upper) && (0...1).contains($0.weight) })
        // Monotone: the warp keeps the order of frequencies.
        let positions = warp.sources.map { Float($0.lower) + $0.weight }
        #expect(zip(positions, positions.dropFirst()).allSatisfy { $0 <= $1 })
        // Each value is a blend of two input values, so the range cannot grow.
        let frames = 4
        let x = (0..<(bands * frames)).map { Float(($0 * 7919) % 101) / 10 - 5 }
        var warped = x
        warp.apply(&warped, frames: frames, real: frames)
        #expect(warped.min()! >= x.min()! && warped.max()! <= x.max()!)
    }

    @Test func paddingFramesAreLeftAlone() {
        let bands = 16, frames = 6, real = 4
        var x = (0..<(bands * frames)).map { Float($0) }
        let before = x
        FrequencyWarp(factor: 1.2, bands: bands).apply(&x, frames: frames, real: real)
        for band in 0..<bands { for f in real..<frames { #expect(x[band * frames + f] == before[band * frames + f]) } }
        #expect(x != before)
    }

    @Test func offDrawsNothingAndOnWarpsByItsOwnDraw() {
        let bands = 32, frames = 50
        let standardizer = Standardizer(melMean: [Float](repeating: -40, count: bands), melStd: [Float](repeating: 10, count: bands),
                                        faceMean: [0, 0, 0], faceStd: [1, 1, 1])
        let x = (0..<(bands * frames)).map { Float(($0 * 31) % 23) / 10 - 1 }
        // Only the noise decision draws (once) when every other augmentation is off.
        var quiet = Augmentation()
        quiet.noiseProbability = 0; quiet.maxShiftFrames = 0; quiet.frequencyMasks = 0; quiet.timeMasks = 0
        for off in [nil, 0.0] {
            var a = quiet
            a.frequencyWarp = off
            let rng = RandomGenerator(seed: 5), reference = RandomGenerator(seed: 5)
            var y = x
            a.audio(&y, nMels: bands, frames: frames, real: frames, rng: rng, standardizer: standardizer)
            _ = reference.uniform()
            #expect(y == x && rng.next() == reference.next(), "off (\(String(describing: off))) takes no draw of its own")
        }
        var warping = quiet
        warping.frequencyWarp = 0.2
        var y = x
        warping.audio(&y, nMels: bands, frames: frames, real: frames, rng: RandomGenerator(seed: 5), standardizer: standardizer)
        // The first draw sets the factor.
        let u = Double(RandomGenerator(seed: 5).uniform())
        var expected = x
        FrequencyWarp(factor: 1 + (2 * u - 1) * 0.2, bands: bands).apply(&expected, frames: frames, real: frames)
        #expect(y == expected && y != x)
    }
}
