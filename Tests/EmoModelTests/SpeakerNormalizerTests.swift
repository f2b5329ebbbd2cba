import Foundation
import Testing
@testable import EmoModel

@Suite struct SpeakerNormalizerTests {
    /// A clip of `frames` frames in 2 bands whose values are offset + band + scale·(±1).
    func clip(_ id: String, offset: Float, scale: Float, frames: Int) -> ClipFeatures {
        var values = [Float](repeating: 0, count: 2 * frames)
        for band in 0..<2 { for t in 0..<frames { values[band * frames + t] = offset + Float(band) + scale * Float(t % 2 == 0 ? 1 : -1) } }
        return ClipFeatures(id: id, logmel: values, melFrames: frames, faces: nil, faceMask: [], label: 0)
    }

    func bandValues(_ clips: [ClipFeatures], band: Int) -> [Float] {
        clips.flatMap { c in (0..<c.melFrames).map { c.logmel![band * c.melFrames + $0] } }
    }

    @Test func eachSpeakersBandsEndWithZeroMeanAndUnitSpread() throws {
        let clips = [clip("a1", offset: -40, scale: 3, frames: 4), clip("a2", offset: -40, scale: 3, frames: 2),
                     clip("b1", offset: -10, scale: 9, frames: 4),
                     ClipFeatures(id: "v", logmel: nil, melFrames: 0, faces: [1], faceMask: [1], label: 1)]
        let out = SpeakerNormalizer.normalize(clips, speakers: [1, 1, 2, 2], nMels: 2)
        for (speaker, ids) in [(1, ["a1", "a2"]), (2, ["b1"])] {
            for band in 0..<2 {
                let values = bandValues(out.filter { ids.contains($0.id) }, band: band)
                let mean = values.reduce(0, +) / Float(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
                #expect(abs(mean) < 1e-5, "speaker \(speaker) band \(band)")
                #expect(abs(variance - 1) < 1e-4, "speaker \(speaker) band \(band)")
            }
        }
        #expect(out[3].logmel == nil && out[3].faces == [1], "a clip without a log-mel is untouched")
        // Speaker 2's louder, wider voice maps onto the same pattern as speaker 1's.
        #expect(zip(out[0].logmel!, out[2].logmel!).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func aConstantBandIsNotBlownUp() {
        let flat = ClipFeatures(id: "f", logmel: [Float](repeating: -80, count: 8), melFrames: 4, faces: nil, faceMask: [], label: 0)
        let out = SpeakerNormalizer.normalize([flat], speakers: [3], nMels: 2)
        #expect(out[0].logmel!.allSatisfy { $0 == 0 })
    }
}
