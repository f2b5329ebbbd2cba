// The log-mel of audio fed as it arrives (`LiveLogMel`) has the frames the whole-signal extractor
// computes, bit for bit, whatever the chunk sizes, and hands each on before the signal ends.

import EmoFeatures
import Foundation
import Testing

@Suite("log-mel of audio as it arrives")
struct LiveLogMelTests {
    /// Frames (n_mels dB values each) of `samples` fed in chunks of the given sizes, in turn; and how many
    /// frames had been handed on before `finish`.
    static func live(_ samples: [Float], _ p: LogMelParameters, chunks: [Int]) throws -> (frames: [[Float]], beforeEnd: Int) {
        let mel = try LiveLogMel(p)
        var frames: [[Float]] = []
        var position = 0, turn = 0
        try samples.withUnsafeBufferPointer { all in
            while position < all.count {
                let size = chunks[turn % chunks.count]
                let end = min(all.count, position + size)
                try mel.add(UnsafeBufferPointer(rebasing: all[position..<end])) { frames.append($0) }
                position = end
                turn += 1
            }
        }
        let beforeEnd = frames.count
        try mel.finish { frames.append($0) }
        return (frames, beforeEnd)
    }

    /// Frame t of a whole-signal log-mel (no top_db floor, so values are comparable before any floor).
    static func column(_ mel: LogMel, _ t: Int) -> [Float] { (0..<mel.nMels).map { mel[mel: $0, frame: t] } }

    @Test(arguments: [
        LogMelParameters(sampleRate: 16_000, nFFT: 512, winLength: 400, hopLength: 160, nMels: 64, topDb: nil),
        LogMelParameters(sampleRate: 16_000, nFFT: 512, winLength: 512, hopLength: 128, padMode: .reflect, nMels: 40, topDb: nil),
        LogMelParameters(sampleRate: 16_000, nFFT: 256, hopLength: 100, center: false, nMels: 32, topDb: nil),
    ])
    func framesEqualTheWholeSignals(_ p: LogMelParameters) throws {
        let samples = LogMelStreamingTests.syntheticSpeechLike(seconds: 5)
        let whole = try LogMelExtractor(p).compute(samples: samples, sampleRate: p.sampleRate)
        for chunks in [[1, 7, 160], [1_021], [48_000]] {
            let (frames, beforeEnd) = try Self.live(samples, p, chunks: chunks)
            #expect(frames.count == whole.realFrames, "chunks \(chunks)")
            #expect(frames.indices.allSatisfy { frames[$0] == Self.column(whole, $0) }, "chunks \(chunks): every frame bit for bit")
            #expect(beforeEnd >= frames.count - (p.center ? p.nFFT / p.hopLength + 2 : 0),
                    "only the frames that read past the end wait for it (\(beforeEnd) of \(frames.count))")
        }
    }

    @Test func peakIsTheLoudestBinSoFarAndBadSamplesAreRefused() throws {
        let p = LogMelParameters.speech
        let mel = try LiveLogMel(p)
        var quiet = [Float](repeating: 0, count: 16_000)
        for i in quiet.indices { quiet[i] = 0.01 * Float(sin(Double(i) * 0.3)) }
        try quiet.withUnsafeBufferPointer { try mel.add($0) { _ in } }
        let quietPeak = mel.peakDb
        let loud = quiet.map { $0 * 100 }
        try loud.withUnsafeBufferPointer { try mel.add($0) { _ in } }
        #expect(abs(mel.peakDb - quietPeak - 40) < 0.5, "100 times the amplitude is 40 dB louder: \(quietPeak) → \(mel.peakDb)")
        #expect(throws: FeatureError.notFinite) {
            try [Float.nan].withUnsafeBufferPointer { try mel.add($0) { _ in } }
        }
    }

    /// A stream that ends shorter than one window is refused as a file of those samples is, not scored.
    @Test(arguments: [LogMelParameters.speech,
                      LogMelParameters(sampleRate: 16_000, nFFT: 256, hopLength: 100, center: false, nMels: 32, topDb: nil)])
    func aStreamShorterThanAFilesLogMelTakesIsRefusedAlike(_ p: LogMelParameters) throws {
        let needed = p.center ? p.winLength : p.nFFT
        for count in [1, needed / 2, needed - 1] {
            let samples = (0..<count).map { Float(sin(Double($0) * 0.2 + 1)) * 0.1 }
            var fileError: FeatureError?
            do { _ = try LogMelExtractor(p).compute(samples: samples, sampleRate: p.sampleRate) } catch { fileError = error as? FeatureError }
            #expect(fileError == .tooShort(samples: count, needed: needed))
            #expect(throws: FeatureError.tooShort(samples: count, needed: needed)) { _ = try Self.live(samples, p, chunks: [7]) }
        }
        let (frames, _) = try Self.live((0..<needed).map { Float(sin(Double($0) * 0.2 + 1)) * 0.1 }, p, chunks: [7])
        #expect(frames.count == (p.center ? needed / p.hopLength + 1 : 1), "one window's samples are enough")
    }
}
