import Foundation
import Testing
@testable import EmoModel

@Suite struct SpeakerNormalizerTests {
    /// A clip of `real` frames (of 4) in 2 bands whose values are offset + scale·pattern.
    func clip(_ id: String, offset: Float, scale: Float, real: Int) -> Sample {
        var values = [Float](repeating: 0, count: 2 * 4)
        for band in 0..<2 { for t in 0..<real { values[band * 4 + t] = offset + Float(band) + scale * Float(t % 2 == 0 ? 1 : -1) } }
        return Sample(id: id, logmel: values, realFrames: real, faces: nil, faceMask: [], label: 0)
    }

    @Test func eachSpeakersBandsEndWithZeroMeanAndUnitSpreadAndPaddingIsKept() throws {
        let samples = [clip("a1", offset: -40, scale: 3, real: 4), clip("a2", offset: -40, scale: 3, real: 2),
                       clip("b1", offset: -10, scale: 9, real: 4), Sample(id: "v", logmel: nil, realFrames: 0, faces: [1],
                                                                             faceMask: [1], label: 1)]
        let out = SpeakerNormalizer.normalize(samples, speakers: [1, 1, 2, 2], nMels: 2, frames: 4)
        for (speaker, ids) in [(1, ["a1", "a2"]), (2, ["b1"])] {
            for band in 0..<2 {
                let values = out.filter { ids.contains($0.id) }.flatMap { s in (0..<s.realFrames).map { s.logmel![band * 4 + $0] } }
                let mean = values.reduce(0, +) / Float(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
                #expect(abs(mean) < 1e-5, "speaker \(speaker) band \(band)")
                #expect(abs(variance - 1) < 1e-4, "speaker \(speaker) band \(band)")
            }
        }
        let a2 = try #require(out[1].logmel)
        #expect(a2[2] == 0 && a2[3] == 0 && a2[6] == 0 && a2[7] == 0, "padded frames stay as they were")
        #expect(out[3].logmel == nil && out[3].faces == [1], "a clip without a log-mel is untouched")
        // Speaker 2's louder, wider voice maps onto the same pattern as speaker 1's.
        #expect(zip(out[0].logmel!, out[2].logmel!).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func aConstantBandIsNotBlownUp() {
        let flat = Sample(id: "f", logmel: [Float](repeating: -80, count: 8), realFrames: 4, faces: nil, faceMask: [], label: 0)
        let out = SpeakerNormalizer.normalize([flat], speakers: [3], nMels: 2, frames: 4)
        #expect(out[0].logmel!.allSatisfy { $0 == 0 })
    }
}
