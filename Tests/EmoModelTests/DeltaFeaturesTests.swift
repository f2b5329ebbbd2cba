import EmoNN
import Testing
@testable import EmoModel

/// The delta channels are the ±2-frame regression and its repeat, with 0 beyond the window, and the
/// model built with them reads three channels.
@Suite struct DeltaFeaturesTests {
    /// One clip, one band per polynomial, `frames` frames.
    static func channels(of rows: [[Float]]) throws -> [[[Float]]] {
        let t = rows[0].count
        let out = try DeltaFeatures.stacked(Tensor(shape: [1, rows.count, t], data: rows.flatMap { $0 }),
                                            frameMask: [Float](repeating: 1, count: t))
        #expect(out.shape == [1, DeltaFeatures.channels, rows.count, t])
        return (0..<DeltaFeatures.channels).map { c in
            (0..<rows.count).map { band in Array(out.data[((c * rows.count + band) * t)..<((c * rows.count + band + 1) * t)]) }
        }
    }

    @Test func inTheInteriorARampHasItsSlopeAndAParabolaItsCurvature() throws {
        let t = 20
        let ramp = (0..<t).map { 3 * Float($0) - 7 }
        let parabola = (0..<t).map { Float($0 * $0) / 4 }
        let out = try Self.channels(of: [ramp, parabola])
        #expect(out[0] == [ramp, parabola], "channel 0 is the input")
        for f in DeltaFeatures.reach..<(t - DeltaFeatures.reach) {
            #expect(abs(out[1][0][f] - 3) < 1e-4 && abs(out[2][0][f]) < 1e-4)
            // x = f²/4: delta f/2, delta-delta 1/2.
            #expect(abs(out[1][1][f] - Float(f) / 2) < 1e-3 && abs(out[2][1][f] - 0.5) < 1e-3)
        }
    }

    @Test func framesBeyondTheWindowCountAsZero() throws {
        // A constant: its delta is 0 inside, and at the edges only the missing frames' zeros show.
        let out = try Self.channels(of: [[Float](repeating: 1, count: 10)])
        // Frame 0 lacks frames -1 and -2: (1·1 + 2·1 − 0) / 10.
        #expect(abs(out[1][0][0] - 0.3) < 1e-6 && abs(out[1][0][9] + 0.3) < 1e-6)
        #expect(abs(out[1][0][5]) < 1e-6)
        // A single impulse spreads over exactly ±reach frames of the delta-delta.
        var impulse = [Float](repeating: 0, count: 15)
        impulse[7] = 1
        let spread = try Self.channels(of: [impulse])[2][0]
        #expect(spread.indices.filter { spread[$0] != 0 } == Array((7 - DeltaFeatures.reach)...(7 + DeltaFeatures.reach)))
        #expect(abs(spread.reduce(0, +)) < 1e-6, "a second difference sums to 0")
    }

    @Test func paddingFramesStayZeroInEveryChannel() throws {
        let (m, t, real) = (3, 12, 7)
        var x = [Float](repeating: 0, count: m * t)
        for band in 0..<m { for f in 0..<real { x[band * t + f] = Float(band + 1) * Float(f % 4) } }
        let mask = (0..<t).map { Float($0 < real ? 1 : 0) }
        let out = try DeltaFeatures.stacked(Tensor(shape: [1, m, t], data: x), frameMask: mask)
        for c in 0..<DeltaFeatures.channels {
            for band in 0..<m {
                let row = Array(out.data[((c * m + band) * t)..<((c * m + band + 1) * t)])
                #expect(row[real...].allSatisfy { $0 == 0 }, "channel \(c) band \(band): \(row)")
                #expect(row[..<real].contains { $0 != 0 })
            }
        }
    }

    @Test func theModelReadsThreeChannelsOnlyWhenAsked() throws {
        var config = ModelConfig(modalities: [.audio], classes: 8, nMels: 16, frames: 32, audioChannels: [4, 8], embedding: 8)
        #expect(EmotionModel(config, seed: 1).audio?.blocks[0].conv.weight.shape[1] == 1)
        config.deltas = true
        let model = EmotionModel(config, seed: 1)
        #expect(model.audio?.blocks[0].conv.weight.shape[1] == 3)
        model.eval()
        let input = ModelInput(logmel: try Tensor(shape: [2, 16, 32], data: (0..<(2 * 16 * 32)).map { Float($0 % 13) / 6 - 1 }),
                               logmelMask: [Float](repeating: 1, count: 64), faces: nil, facesMask: [], modalityMask: [1, 0, 1, 0])
        #expect(try model(input).shape == [2, 8])
    }
}
