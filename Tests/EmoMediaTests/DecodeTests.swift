import Foundation
import EmoTestSupport
import Testing
@testable import EmoMedia

@Suite("AudioDecoder", .enabled(if: TestData.available, TestData.missingMessage))
struct DecodeTests {
    @Test("mono WAVs decode bit-exactly: int16 re-quantisation hashes to speech-pcm-sha256.txt",
          arguments: ["03-01-01-01-01-01-01", "03-01-05-02-02-01-01", "03-01-08-02-02-02-01"])
    func monoWavHash(name: String) throws {
        let audio = try AudioDecoder.decodeMono(path: TestData.wav(name), sampleRate: 48_000)
        #expect(audio.sourceChannels == 1 && audio.sourceSampleRate == 48_000 && audio.sampleRate == 48_000)
        let bytes = Signal.littleEndianBytes(Signal.quantised(audio.samples))
        #expect(try TestSupport.sha256sum(of: bytes) == TestData.pcmHash(actorFile: "Actor_01/\(name).wav"))
        #expect(audio.durationSeconds == Double(audio.samples.count) / 48_000)
    }

    @Test("stereo WAV is the exact mean of its two channels")
    func stereoWavAveraged() throws {
        let path = TestData.wav("03-01-02-01-01-02-01")
        let reference = try TestData.ffmpegDecode(path, ["-f", "s16le"])
        // The reference decode is itself the one the dataset's checksum describes.
        #expect(try TestSupport.sha256sum(of: reference) == TestData.pcmHash(actorFile: "Actor_01/03-01-02-01-01-02-01.wav"))
        let stereo = Signal.int16(reference)
        let audio = try AudioDecoder.decodeMono(path: path, sampleRate: 48_000)
        #expect(audio.sourceChannels == 2)
        try #require(audio.samples.count * 2 == stereo.count)
        let mismatches = audio.samples.indices.filter { i in
            audio.samples[i] != (Float(stereo[2 * i]) + Float(stereo[2 * i + 1])) / 2 / 32768
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) samples differ from (L+R)/2")
    }

    @Test("decoding in chunks gives the same samples whatever the chunk size (mixing and resampling carry over)",
          arguments: [(48_000, "03-01-02-01-01-02-01"), (16_000, "03-01-02-01-01-02-01"), (16_000, "03-01-01-01-01-01-01"),
                      (22_050, "03-01-08-01-02-02-01")])
    func chunkSizeDoesNotMatter(rate: Int, name: String) throws {
        let path = TestData.wav(name)
        let whole = try AudioDecoder.decodeMono(path: path, sampleRate: rate).samples
        for chunkFrames in [5, 997, 1 << 20] {
            var pieces: [Float] = []
            var calls = 0
            _ = try WavStream.decode(path: path, sampleRate: rate, chunkFrames: chunkFrames) { pieces += $0; calls += 1 }
            #expect(pieces.map(\.bitPattern) == whole.map(\.bitPattern), "\(name) at \(rate) Hz, chunks of \(chunkFrames) frames")
            if chunkFrames == 997 { #expect(calls > 10, "delivered in pieces: \(calls)") }
        }
    }

    @Test("the AV clip's AAC track is the speech WAV delayed by 1600 samples")
    func avClipAlignsWithWav() throws {
        let clip = try AudioDecoder.decodeMono(path: TestData.avClip, sampleRate: 48_000)
        let wav = try AudioDecoder.decodeMono(path: TestData.wav("03-01-01-01-01-01-01"), sampleRate: 48_000)
        #expect(clip.sourceChannels == 2 && clip.sourceSampleRate == 48_000)
        // Same length as ffmpeg's decode (encoder priming trimmed the same way).
        #expect(try TestData.ffmpegDecode(TestData.avClip, ["-ac", "1", "-f", "f32le"]).count / 4 == clip.samples.count)

        let atDelay = Signal.correlation(clip.samples, wav.samples, lag: 1600)
        #expect(atDelay > 0.95, "correlation at 1600 samples: \(atDelay)")
        // 1600 is the best lag around it, and no alignment at all is far worse.
        let scores = (1500...1700).map { (lag: $0, r: Signal.correlation(clip.samples, wav.samples, lag: $0)) }
        #expect(scores.max { $0.r < $1.r }?.lag == 1600)
        #expect(Signal.correlation(clip.samples, wav.samples, lag: 0) < 0.5)
    }

    @Test("48 kHz → 16 kHz: a third of the samples, matching ffmpeg's resampler")
    func resampleTo16k() throws {
        let path = TestData.wav("03-01-01-01-01-01-01")
        let full = try AudioDecoder.decodeMono(path: path, sampleRate: 48_000)
        let low = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
        #expect(low.sampleRate == 16_000 && low.sourceSampleRate == 48_000)
        let expected = Int((Double(full.samples.count) / 3).rounded())
        #expect(abs(low.samples.count - expected) <= 4, "\(low.samples.count) vs \(expected)")

        let reference = Signal.float32(try TestData.ffmpegDecode(path, ["-ac", "1", "-ar", "16000", "-f", "f32le"]))
        let r = Signal.correlation(low.samples, reference)
        #expect(r > 0.99, "correlation with ffmpeg -ar 16000: \(r)")
        // Both resamplers compensate their filter delay: lag 0 beats a one-sample shift either way.
        #expect(r > Signal.correlation(low.samples, reference, lag: 1))
        #expect(r > Signal.correlation(low.samples, reference, lag: -1))
        #expect(AudioDecoder.resamplerEngine == "soxr")  // Debian 12's libswresample links libsoxr
    }

    @Test("mp4 audio resampled to 16 kHz is deterministic and follows ffmpeg")
    func avClipTo16k() throws {
        let first = try AudioDecoder.decodeMono(path: TestData.avClip, sampleRate: 16_000)
        let second = try AudioDecoder.decodeMono(path: TestData.avClip, sampleRate: 16_000)
        #expect(first.samples == second.samples)
        let reference = Signal.float32(try TestData.ffmpegDecode(TestData.avClip, ["-ac", "1", "-ar", "16000", "-f", "f32le"]))
        #expect(abs(first.samples.count - reference.count) <= 4)
        #expect(Signal.correlation(first.samples, reference) > 0.99)
    }

    @Test("re-encoded clips with AAC 44.1 kHz mono and MP3 stereo audio decode at 16 kHz")
    func oddClips() throws {
        for name in ["01-01-07-02-02-01-01_1.mp4", "combined_tests__temp.mp4"] {
            let path = TestData.oddFolder.appendingPathComponent(name).path
            let facts = try MediaProbe.probe(path: path)
            let stream = try #require(facts.firstAudioStream)
            let audio = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
            #expect(audio.sourceSampleRate == 44_100 && audio.sourceChannels == stream.channels)
            let expectedSeconds = try #require(stream.durationSeconds)
            #expect(abs(audio.durationSeconds - expectedSeconds) < 0.1, "\(name): \(audio.durationSeconds) s")
            let reference = Signal.float32(try TestData.ffmpegDecode(path, ["-ac", "1", "-ar", "16000", "-f", "f32le"]))
            let r = Signal.correlation(audio.samples, reference)
            #expect(r > 0.99, "\(name): correlation with ffmpeg \(r)")
        }
    }

    @Test("decoded audio is checked: NaN, too short, all zero")
    func requirements() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let silent = dir.appendingPathComponent("silent.wav").path
        try WavFile.write(silent, samples: [Float](repeating: 0, count: 4800), float: false)
        expectMediaError("silent-audio") { _ = try AudioDecoder.decodeMono(path: silent, sampleRate: 48_000) }
        // Two channels that cancel out are silent as the pipeline hears them (mixed to mono), and said so.
        let cancelling = dir.appendingPathComponent("cancelling.wav").path
        var frames: [Float] = []
        for i in 0..<4800 {
            let tone: Float = sinf(Float(i) * 0.05) / 2
            frames += [tone, -tone]
        }
        try WavFile.write(cancelling, samples: frames, channels: 2, float: true)
        #expect(throws: MediaError.silentAudio(path: cancelling, channels: 2)) { _ = try AudioDecoder.decodeMono(path: cancelling, sampleRate: 48_000) }
        #expect(MediaError.silentAudio(path: cancelling, channels: 2).description.contains("all zero once its 2 channels are mixed to mono"))
        // Silence can be allowed explicitly.
        let allowed = try AudioDecoder.decodeMono(path: silent, sampleRate: 48_000,
                                                  requirements: .init(rejectSilence: false))
        #expect(allowed.samples.count == 4800)

        let nan = dir.appendingPathComponent("nan.wav").path
        try WavFile.write(nan, samples: [0.1, .nan, 0.2, -0.1], float: true)
        expectMediaError("contains-nan") { _ = try AudioDecoder.decodeMono(path: nan, sampleRate: 48_000) }

        let short = dir.appendingPathComponent("short.wav").path
        try WavFile.write(short, samples: (0..<100).map { sin(Float($0) / 5) / 2 }, float: false)
        expectMediaError("too-short") {
            _ = try AudioDecoder.decodeMono(path: short, sampleRate: 48_000,
                                            requirements: .init(minimumSamples: 4800))
        }
        #expect(try AudioDecoder.decodeMono(path: short, sampleRate: 48_000).samples.count == 100)
    }
}
