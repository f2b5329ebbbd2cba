import EmoCore
import EmoMedia
@testable import EmoStages
import Testing

/// What ingest checks in a file's streams against what its name promises.
@Suite("content rules")
struct ContentRulesTests {
    static func codes(modality: Int) throws -> RavdessCodes {
        guard case .source(let codes) = RavdessName.parse(fileName: String(format: "%02d-01-03-01-01-01-01.%@", modality, modality == 3 ? "wav" : "mp4")) else {
            throw ParseFailed()
        }
        return codes
    }
    struct ParseFailed: Error {}

    static let video = StreamFacts(index: 0, kind: .video, codec: "h264", width: 1280, height: 720)
    static let aac = StreamFacts(index: 1, kind: .audio, codec: "aac", sampleRate: 48_000, channels: 2)

    /// A clip whose moov box (at its end) was cut lists its audio stream with no codec, channels or
    /// rate: refused at ingest as damaged, not recorded ok and then failed by the audio stage as
    /// 'no decoder for codec "none"'.
    @Test func aStreamListedWithoutItsDescriptionIsDamage() throws {
        let av = try Self.codes(modality: 1)
        func problem(_ streams: [StreamFacts]) -> String? {
            ContentRules.problem(with: MediaFacts(container: "mov,mp4", durationSeconds: 3.5, bitRate: nil, streams: streams), codes: av)
        }
        #expect(problem([Self.video, Self.aac]) == nil)
        #expect(problem([Self.video, StreamFacts(index: 1, kind: .audio, codec: "none", sampleRate: 0, channels: 0)])
                == "audio stream has no codec (the file is damaged, or was cut short)")
        #expect(problem([Self.video, StreamFacts(index: 1, kind: .audio, codec: "aac", sampleRate: 0, channels: 2)]) == "audio stream has no sample rate")
        #expect(problem([StreamFacts(index: 0, kind: .video, codec: "none", width: 1280, height: 720), Self.aac])
                == "video stream has no codec (the file is damaged, or was cut short)")
        let speech = try Self.codes(modality: 3)
        #expect(ContentRules.problem(with: MediaFacts(container: "wav", durationSeconds: 3, bitRate: nil,
                                                      streams: [StreamFacts(index: 0, kind: .audio, codec: "pcm_s16le", sampleRate: 48_000, channels: 0)]),
                                     codes: speech) == "audio stream has no channels")
    }

    /// A codec the container names but this FFmpeg does not know (newer than Debian's) is said to be that, by
    /// its name, not called damage.
    @Test func aCodecThisFFmpegDoesNotKnowIsNamedNotCalledDamage() throws {
        let av = try Self.codes(modality: 1)
        var unknownVideo = StreamFacts(index: 0, kind: .video, codec: "none", width: 1280, height: 720)
        unknownVideo.codecTag = "vvc1"
        var unknownAudio = StreamFacts(index: 1, kind: .audio, codec: "none", sampleRate: 48_000, channels: 2)
        unknownAudio.codecTag = "mha1"
        func problem(_ streams: [StreamFacts]) -> String? {
            ContentRules.problem(with: MediaFacts(container: "mov,mp4", durationSeconds: 3.5, bitRate: nil, streams: streams), codes: av)
        }
        #expect(problem([unknownVideo, Self.aac]) == "video stream's codec 'vvc1' (the container's name for it) is not one this FFmpeg knows")
        #expect(problem([Self.video, unknownAudio]) == "audio stream's codec 'mha1' (the container's name for it) is not one this FFmpeg knows")
    }

    /// With several tracks of a kind, the stages read the default or best one, which the probe does not
    /// mark: a file is refused only when none of them is sound, with the first one's problem.
    @Test func aFileWithSeveralTracksIsJudgedByItsSoundOnes() throws {
        let av = try Self.codes(modality: 1)
        func problem(_ streams: [StreamFacts]) -> String? {
            ContentRules.problem(with: MediaFacts(container: "mov,mp4", durationSeconds: 3.5, bitRate: nil, streams: streams), codes: av)
        }
        let cutAudio = StreamFacts(index: 2, kind: .audio, codec: "none", sampleRate: 0, channels: 0)
        let noSize = StreamFacts(index: 3, kind: .video, codec: "h264", width: 0, height: 0)
        #expect(problem([Self.video, cutAudio, Self.aac]) == nil)
        #expect(problem([Self.video, Self.aac, cutAudio]) == nil)
        #expect(problem([noSize, Self.video, Self.aac]) == nil)
        #expect(problem([Self.video, cutAudio, StreamFacts(index: 4, kind: .audio, codec: "aac", sampleRate: 0, channels: 2)])
                == "audio stream has no codec (the file is damaged, or was cut short)")
        #expect(problem([noSize, StreamFacts(index: 5, kind: .video, codec: "none", width: 640, height: 480), Self.aac])
                == "video stream has no picture size")
        let speech = try Self.codes(modality: 3)
        let silentFirst = StreamFacts(index: 0, kind: .audio, codec: "pcm_s16le", sampleRate: 48_000, channels: 0)
        #expect(ContentRules.problem(with: MediaFacts(container: "matroska", durationSeconds: 3, bitRate: nil,
                                                      streams: [silentFirst, Self.aac]), codes: speech) == nil)
    }
}
