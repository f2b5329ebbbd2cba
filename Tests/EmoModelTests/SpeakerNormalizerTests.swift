import EmoCore
import Foundation
import Testing
@testable import EmoModel
import EmoTestSupport

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

    /// The training speakers' prior is their frames pooled (each speaker weighing the same), and blending it in is
    /// pooling `frames` frames of it with the frames given: checked against the statistics of actual frames.
    @Test func aPriorBlendsLikePooledFrames() throws {
        // Three training speakers with as many frames each: their pooled frames have the prior's statistics.
        let speakers = [clip("s1", offset: -40, scale: 3, frames: 6), clip("s2", offset: -25, scale: 5, frames: 6),
                        clip("s3", offset: -31, scale: 1, frames: 6)]
        let recorded = speakers.enumerated().map { i, c in
            let stats = SpeakerNormalizer.statistics([c], nMels: 2)
            return RecordedSpeakers.Speaker(actor: 3 - i, speechSha256: [], mean: stats.mean, std: stats.std)
        }
        let prior = try #require(SpeakerPrior(speakers: recorded, frames: 8))
        let pooled = SpeakerNormalizer.statistics(speakers, nMels: 2)
        for band in 0..<2 {
            #expect(abs(prior.mean[band] - Double(pooled.mean[band])) < 1e-4)
            #expect(abs(prior.variance[band].squareRoot() - Double(pooled.std[band])) < 1e-4)
        }
        // 8 frames of exactly the prior's mean and variance (mean ± deviation, alternating) beside a given clip.
        var priorFrames = [Float](repeating: 0, count: 16)
        for band in 0..<2 { for t in 0..<8 { priorFrames[band * 8 + t] = Float(prior.mean[band] + (t % 2 == 0 ? 1 : -1) * prior.variance[band].squareRoot()) } }
        let stand = ClipFeatures(id: "prior", logmel: priorFrames, melFrames: 8, faces: nil, faceMask: [], label: 0)
        let given = clip("new", offset: -12, scale: 7, frames: 3)
        var accumulator = SpeakerNormalizer.Accumulator(nMels: 2)
        accumulator.add(given)
        let blended = prior.blended(accumulator.moments)
        let expected = SpeakerNormalizer.statistics([given, stand], nMels: 2)
        for band in 0..<2 {
            #expect(abs(blended.mean[band] - expected.mean[band]) < 1e-3 && abs(blended.std[band] - expected.std[band]) < 1e-3,
                    "band \(band): \(blended) against \(expected)")
        }
        // Nothing given: the prior itself; a given clip moves the mean from the prior's towards its own.
        let empty = prior.blended(SpeakerNormalizer.Accumulator(nMels: 2).moments)
        #expect(zip(empty.mean, prior.mean).allSatisfy { abs(Double($0) - $1) < 1e-4 })
        let own = SpeakerNormalizer.statistics([given], nMels: 2)
        #expect((0..<2).allSatisfy { band in
            (min(Double(own.mean[band]), prior.mean[band])...max(Double(own.mean[band]), prior.mean[band])).contains(Double(blended.mean[band]))
        })
        // Unblended, the accumulator's statistics are evaluate's, to the bit: its formula, written out here.
        let values = given.logmel!
        for band in 0..<2 {
            let frames = (0..<3).map { Double(values[band * 3 + $0]) }
            let mean = frames.reduce(0, +) / 3, squares = frames.map { $0 * $0 }.reduce(0, +)
            #expect(accumulator.statistics.mean[band] == Float(mean)
                    && accumulator.statistics.std[band] == Float(max(SpeakerNormalizer.minimumStd, max(0, squares / 3 - mean * mean).squareRoot())))
        }
        // Speakers weigh the same, however many frames each has: the prior's mean is the mean of their means.
        let unequal = [clip("long", offset: -40, scale: 3, frames: 40), clip("short", offset: -10, scale: 3, frames: 2)].enumerated().map { i, c in
            let stats = SpeakerNormalizer.statistics([c], nMels: 2)
            return RecordedSpeakers.Speaker(actor: i + 1, speechSha256: [], mean: stats.mean, std: stats.std)
        }
        let even = try #require(SpeakerPrior(speakers: unequal, frames: 8))
        #expect(abs(even.mean[0] - (-25)) < 1e-6 && abs(even.variance[0] - (9 + 225)) < 1e-4, "\(even)")
        #expect(SpeakerPrior(speakers: [], frames: 8) == nil && SpeakerPrior(speakers: recorded, frames: 0) == nil)
        #expect(SpeakerPrior(speakers: recorded + [recorded[0]], frames: 8) == prior, "an actor listed twice counts once")
    }

    @Test func aConstantBandIsNotBlownUp() {
        let flat = ClipFeatures(id: "f", logmel: [Float](repeating: -80, count: 8), melFrames: 4, faces: nil, faceMask: [], label: 0)
        let out = SpeakerNormalizer.normalize([flat], speakers: [3], nMels: 2)
        #expect(out[0].logmel!.allSatisfy { $0 == 0 })
    }
}

/// `speakers.json` as export writes it reads back; a damaged or foreign one is refused naming the file and
/// what is wrong, never used to normalise.
@Suite struct RecordedSpeakersTests {
    let digest = String(repeating: "ab", count: 32)

    func write(_ text: String) throws -> String {
        let path = try TestSupport.temporaryFolder("speakers") + "/speakers.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func whatExportWritesReadsBack() throws {
        let recorded = RecordedSpeakers(speakers: [.init(actor: 13, speechSha256: [digest], mean: [-40, -41], std: [3, 0.5])])
        let path = try TestSupport.temporaryFolder("speakers") + "/speakers.json"
        try recorded.jsonData().write(to: URL(fileURLWithPath: path))
        #expect(try RecordedSpeakers.read(path, nMels: 2) == recorded)
        // Two clips of identical bytes (actor 07's pair in RAVDESS) list one digest twice, within an actor or across.
        let repeated = RecordedSpeakers(speakers: [.init(actor: 7, speechSha256: [digest, digest], mean: [0, 0], std: [1, 1]),
                                                   .init(actor: 9, speechSha256: [digest], mean: [0, 0], std: [1, 1])])
        try repeated.jsonData().write(to: URL(fileURLWithPath: path))
        #expect(try RecordedSpeakers.read(path, nMels: 2) == repeated)
        try recorded.jsonData().write(to: URL(fileURLWithPath: path))
        #expect(try RecordedSpeakers.read(path, nMels: 2, expectedSha256: SHA256Hex.of(try recorded.jsonData())) == recorded)
        let other = try #require(throws: TrainedModelError.self) { try RecordedSpeakers.read(path, nMels: 2, expectedSha256: digest) }
        #expect(other.reason.contains("not the speaker statistics this model was exported with"), "\(other)")
        #expect(String(decoding: try recorded.jsonData(), as: UTF8.self).contains("\"speech_sha256\""), "snake_case")
    }

    @Test func aDamagedFileIsRefusedSayingWhatIsWrong() throws {
        let cases: [(String, String)] = [
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [], \"mean\": [0], \"std\": [1]}]}", "the model takes 2 mel bands"),
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [], \"mean\": [0, 0], \"std\": [1, 0]}]}", "a deviation outside 0.001"),
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [\"x\"], \"mean\": [0, 0], \"std\": [1, 1]}]}", "\"x\" is not a SHA-256"),
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [], \"mean\": [0, 0], \"std\": [1, 1]},"
             + " {\"actor\": 1, \"speech_sha256\": [], \"mean\": [0, 0], \"std\": [1, 1]}]}", "speaker 1 is given twice"),
            ("{\"speakers\": [{\"actor\": 1, \"mean\": [0, 0], \"std\": [1, 1]}]}", "not the speaker statistics export writes"),
            ("[1, 2]", "not the speaker statistics export writes"),
            // A deviation under the floor the statistics keep, or a mean past any log-mel, would blow the features up.
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [], \"mean\": [0, 0], \"std\": [1e-45, 1]}]}", "a deviation outside 0.001"),
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [], \"mean\": [3e38, 0], \"std\": [1, 1]}]}", "a mean outside ±10000 dB"),
            ("{\"speakers\": [{\"actor\": 0, \"speech_sha256\": [], \"mean\": [0, 0], \"std\": [1, 1]}]}", "not a RAVDESS actor number"),
            // Numbers that fit no field are named with their place, not as "a value".
            ("{\"speakers\": [{\"actor\": 1.5, \"speech_sha256\": [], \"mean\": [0, 0], \"std\": [1, 1]}]}", "`speakers[0].actor` = 1.5 does not fit"),
            ("{\"speakers\": [{\"actor\": 1, \"speech_sha256\": [], \"mean\": [0, 1e39], \"std\": [1, 1]}]}", "`speakers[0].mean[1]` = 1e+39 does not fit"),
        ]
        for (text, said) in cases {
            let path = try write(text)
            let error = try #require(throws: TrainedModelError.self) { try RecordedSpeakers.read(path, nMels: 2) }
            #expect(error.path == path && error.reason.contains(said), "\(text): \(error)")
        }
    }
}
