// The log-mel of a long signal read in passes (`compute(signal:)`) is bit for bit the in-memory one,
// for every parameter combination that changes what the passes must remember.

@testable import EmoFeatures
import EmoMedia
import EmoTestSupport
import Foundation
import Testing

/// Samples in memory served in chunks of a fixed odd size, counting the passes made over them.
final class ChunkedSignal: RereadableSignal {
    let samples: [Float]
    let sampleRate: Int
    let chunk: Int
    private(set) var passes = 0

    init(_ samples: [Float], sampleRate: Int = 16_000, chunk: Int = 1_021) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.chunk = chunk
    }

    func readAll(until stop: StopCheck, _ body: (UnsafeBufferPointer<Float>) -> Void) throws {
        passes += 1
        try samples.withUnsafeBufferPointer { all in
            for start in stride(from: 0, to: all.count, by: chunk) {
                if stop.isRequested { throw FeatureError.stopped }
                body(UnsafeBufferPointer(rebasing: all[start..<min(start + chunk, all.count)]))
            }
        }
    }
}

@Suite("log-mel of long signals in passes")
struct LogMelStreamingTests {
    /// Silence, then bursts of noise and tones of varying loudness with quiet gaps, then silence: the trim
    /// and the centre crop both have something to find, away from the signal's middle.
    static func syntheticSpeechLike(seconds: Double = 20) -> [Float] {
        let sr = 16_000
        var y = [Float](repeating: 0, count: sr)  // 1 s of digital silence
        var part = 0
        while Double(y.count) < (seconds - 3) * Double(sr) {
            let burst = noise(sr / 2 + 977 * (part % 5), amplitude: 0.02 + 0.05 * Float(part % 7), seed: UInt64(part + 1))
            let tone = sine(180 + 40 * Double(part % 9), seconds: 0.3, amplitude: 0.1 * Float(1 + part % 3))
            y += zip(burst, tone + [Float](repeating: 0, count: max(0, burst.count - tone.count))).map { $0 + $1 }
            y += noise(sr / 5, amplitude: 0.0005, seed: UInt64(100 + part))   // a quiet gap
            part += 1
        }
        return y + [Float](repeating: 0, count: 2 * sr)  // 2 s of trailing silence
    }

    static let parameterSets: [(String, LogMelParameters)] = {
        var sets: [(String, LogMelParameters)] = [("speech", .speech), ("reference", .reference)]
        func variant(_ name: String, _ change: (inout LogMelParameters) -> Void) {
            var p = LogMelParameters.speech
            change(&p)
            sets.append((name, p))
        }
        variant("crop center") { $0.crop = .center }
        variant("trim_db 30") { $0.trimDb = 30 }
        variant("trim_db 30, crop center") { $0.trimDb = 30; $0.crop = .center }
        variant("trim_db 20, crop center, 120 frames") { $0.trimDb = 20; $0.crop = .center; $0.frames = 120 }
        variant("frames null") { $0.frames = nil }
        variant("frames null, trim_db 40") { $0.frames = nil; $0.trimDb = 40 }
        variant("uncentred, crop center") { $0.center = false; $0.crop = .center }
        variant("reflect padding, trim, centre") { $0.padMode = .reflect; $0.trimDb = 25; $0.crop = .center; $0.frames = 200 }
        variant("top_db null, power 1, hamming") { $0.topDb = nil; $0.power = 1; $0.window = .hamming }
        variant("more frames than the signal") { $0.frames = 5_000 }
        return sets
    }()

    static func expectIdentical(_ a: LogMel, _ b: LogMel, _ label: String) {
        #expect(a.values.count == b.values.count, "\(label): size")
        #expect(a.values.map(\.bitPattern) == b.values.map(\.bitPattern), "\(label): values")
        #expect(a.padValue.bitPattern == b.padValue.bitPattern, "\(label): pad value")
        #expect((a.frames, a.realFrames, a.totalFrames, a.firstFrame) == (b.frames, b.realFrames, b.totalFrames, b.firstFrame),
                "\(label): frame bookkeeping")
        #expect(a.sampleRange == b.sampleRange && a.durationSeconds == b.durationSeconds, "\(label): range and duration")
    }

    /// Each parameter set through the three ways of reading a long signal: frames streamed (the smallest
    /// limit), the trimmed part gathered (a limit just above it), and one pass in memory.
    static func checkAllWays(_ y: [Float], label: String) throws {
        for (name, p) in parameterSets {
            let extractor = try LogMelExtractor(p)
            let inMemory = try extractor.compute(samples: y, sampleRate: p.sampleRate)
            var limits = [0, y.count]
            if inMemory.sampleRange.count < y.count { limits.append(inMemory.sampleRange.count) }
            for limit in limits {
                let signal = ChunkedSignal(y, chunk: limit == 0 ? 1_021 : 4_093)
                let streamed = try extractor.compute(signal: signal, inMemoryLimit: limit)
                expectIdentical(streamed, inMemory, "\(label), \(name), limit \(limit)")
                #expect(limit < y.count ? signal.passes >= 2 : signal.passes == 1,
                        "\(label), \(name), limit \(limit): \(signal.passes) passes")
            }
        }
    }

    @Test func aLongSyntheticSignalGivesTheInMemoryLogMelBitForBit() throws {
        try Self.checkAllWays(Self.syntheticSpeechLike(), label: "synthetic")
    }

    @Test(.enabled(if: TestEnv.haveData, "needs ../shared/data/ravdess"))
    func realSpeechJoinedIntoALongRecordingGivesTheInMemoryLogMelBitForBit() throws {
        // Actor 01's first clips, stereo ones among them, decoded from the 48 kHz originals and joined.
        let folder = TestEnv.speechFlac.appendingPathComponent("Actor_01")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".flac") }.sorted()
        let chosen = Array(names.prefix(4)) + names.filter { $0.hasPrefix("03-01-02-01-01-02-01") || $0.hasPrefix("03-01-08-01-02-02-01") }
        var y: [Float] = []
        for name in chosen {
            y += try AudioDecoder.decodeMono(path: folder.appendingPathComponent(name).path, sampleRate: 16_000).samples
        }
        try Self.checkAllWays(y, label: "RAVDESS")
    }

    @Test func errorsAreTheInMemoryOnes() throws {
        let extractor = try LogMelExtractor(.speech)
        var y = Self.syntheticSpeechLike(seconds: 6)
        y[y.count / 2] = .nan
        #expect(throws: FeatureError.notFinite) { try extractor.compute(signal: ChunkedSignal(y), inMemoryLimit: 0) }
        #expect(throws: FeatureError.silentAudio) {
            try extractor.compute(signal: ChunkedSignal([Float](repeating: 0, count: 50_000)), inMemoryLimit: 0)
        }
        let inaudible = #expect(throws: FeatureError.self) {
            try extractor.compute(signal: ChunkedSignal(Self.syntheticSpeechLike(seconds: 6).map { $0 * 1e-40 }), inMemoryLimit: 0)
        }
        if case .inaudible? = inaudible {} else { Issue.record("streamed: \(String(describing: inaudible))") }
        #expect(throws: FeatureError.sampleRateMismatch(expected: 16_000, actual: 8_000)) {
            try extractor.compute(signal: ChunkedSignal(y, sampleRate: 8_000))
        }
    }
}

/// A tone of any length, made chunk by chunk (1 s each) as it is read: a long signal that is never held.
final class ToneSignal: RereadableSignal {
    let sampleRate = 16_000
    let count: Int
    private let period: [Float]
    /// Samples the last pass delivered (fewer than `count` when it was asked to stop).
    private(set) var delivered = 0

    init(seconds: Double) {
        count = Int(seconds * 16_000)
        period = (0..<16_000).map { Float(0.1 * sin(2 * Double.pi * 220 * Double($0) / 16_000)) }
    }

    func readAll(until stop: StopCheck, _ body: (UnsafeBufferPointer<Float>) -> Void) throws {
        delivered = 0
        try period.withUnsafeBufferPointer { chunk in
            while delivered < count {
                if stop.isRequested { throw FeatureError.stopped }
                let n = min(count - delivered, chunk.count)
                body(UnsafeBufferPointer(rebasing: chunk[0..<n]))
                delivered += n
            }
        }
    }
}

@Suite("log-mel length bound")
struct LogMelLengthBoundTests {
    static func refusal(_ body: () throws -> LogMel) -> FeatureError? {
        do { _ = try body() } catch let error as FeatureError { return error } catch { Issue.record("\(error)") }
        return nil
    }

    /// A signal whose frames would exceed `maxValues` is refused before they are computed, whether it
    /// is read in passes or held in memory, and the refusal says how long it is and how long may be.
    /// When every frame would be kept, reading stops as soon as the bound is passed; with a trim,
    /// which might shorten it, the whole signal is read first.
    @Test func framesBeyondTheBoundAreRefusedBeforeTheyAreComputed() throws {
        var wide = LogMelParameters.speech
        wide.nMels = 512
        wide.nFFT = 8192
        let maximum = LogMelExtractor.maxValues / wide.nMels
        let seconds = Double(maximum) * 0.01 + 3_600
        let tone = ToneSignal(seconds: seconds)
        let early = Self.refusal { try LogMelExtractor(wide).compute(signal: tone) }
        // Read a second (100 frames) at a time: stopped in the first second past the bound.
        let framesRead = 1 + tone.delivered / wide.hopLength
        #expect(framesRead > maximum && framesRead <= maximum + 100 && tone.delivered < tone.count,
                "read \(tone.delivered) of \(tone.count) samples")
        #expect(early == .tooLong(frames: nil, maximum: maximum, secondsPerFrame: 0.01), "\(String(describing: early))")
        #expect(early?.description == "audio too long: more than the \(maximum) (\(Int(Double(maximum) * 0.01)) s) log-mel frames one tensor may hold; reading stopped there")

        wide.trimDb = 60
        let trimmed = Self.refusal { try LogMelExtractor(wide).compute(signal: tone) }
        let frames = 1 + tone.count / wide.hopLength
        #expect(tone.delivered == tone.count)
        #expect(trimmed == .tooLong(frames: frames, maximum: maximum, secondsPerFrame: 0.01), "\(String(describing: trimmed))")
        #expect(trimmed?.description == "audio too long: \(frames) log-mel frames (\(Int(Double(frames) * 0.01)) s), at most \(maximum) (\(Int(Double(maximum) * 0.01)) s) in one tensor")

        // In memory: a hop of one sample makes a frame of every sample (trimmed, so read whole and counted).
        var dense = LogMelParameters.speech
        dense.nMels = 128
        dense.hopLength = 1
        dense.trimDb = 60
        let denseMaximum = LogMelExtractor.maxValues / dense.nMels
        let samples = ToneSignal(seconds: Double(denseMaximum + 16_000) / 16_000)
        #expect(samples.count <= LogMelExtractor.defaultInMemoryLimit, "the in-memory path is the one under test")
        let inMemory = Self.refusal { try LogMelExtractor(dense).compute(signal: samples) }
        #expect(inMemory == .tooLong(frames: samples.count + 1, maximum: denseMaximum, secondsPerFrame: 1.0 / 16_000),
                "\(String(describing: inMemory))")
        // A bound under 10 s is said with its figures (a hop of 1 at 384 kHz: it read "131072 (0 s)"), and one of minutes,
        // where the defaults hold hours, names the settings that make it (it blamed the recording alone).
        let settings = "; so short a bound comes from the settings: audio.hop_length, sample_rate and n_mels (a larger hop, a lower rate or fewer mels hold more)"
        #expect(FeatureError.tooLong(frames: nil, maximum: 131_072, secondsPerFrame: 1.0 / 384_000).description
                == "audio too long: more than the 131072 (0.341 s) log-mel frames one tensor may hold; reading stopped there" + settings)
        let defaults = LogMelParameters.speech
        let atDefaults = FeatureError.tooLong(frames: nil, maximum: LogMelExtractor.maxValues / defaults.nMels,
                                              secondsPerFrame: Double(defaults.hopLength) / Double(defaults.sampleRate))
        #expect(atDefaults.description.hasSuffix("reading stopped there") && !atDefaults.description.contains("settings"), "\(atDefaults)")
    }

    /// A signal of exactly the most frames is computed, in passes or in memory, as without a bound; a
    /// longer one is refused at the first poll past the bound, and one that ends in the chunk that
    /// passes it is read whole and counted exactly.
    @Test func aSignalAtTheBoundIsComputedAndOneSampleMoreIsNot() throws {
        let p = LogMelParameters.speech   // centred, hop 160: frames = 1 + samples / 160
        let samples = LogMelStreamingTests.syntheticSpeechLike(seconds: 12).prefix(159_840)
        let atBound = ChunkedSignal(Array(samples), chunk: 4_093)
        let reference = try LogMelExtractor(p).compute(samples: Array(samples), sampleRate: 16_000)
        #expect(reference.totalFrames == 1_000)
        for inMemoryLimit in [1 << 20, 16_000] {
            let bounded = try LogMelExtractor(p, valueLimit: 64 * 1_000)
            LogMelStreamingTests.expectIdentical(try bounded.compute(signal: atBound, inMemoryLimit: inMemoryLimit), reference,
                                                 "at the bound, limit \(inMemoryLimit)")
            // Chunks go on past the bound: the poll after the one that passes it stops the reading.
            let past = ChunkedSignal(Array(samples) + Array(repeating: 0.1, count: 20_000), chunk: 4_093)
            #expect(Self.refusal { try bounded.compute(signal: past, inMemoryLimit: inMemoryLimit) }
                    == .tooLong(frames: nil, maximum: 1_000, secondsPerFrame: 0.01))
            let inOneChunk = ChunkedSignal(Array(samples) + Array(repeating: 0.1, count: 160), chunk: 1 << 22)
            #expect(Self.refusal { try bounded.compute(signal: inOneChunk, inMemoryLimit: inMemoryLimit) }
                    == .tooLong(frames: 1_001, maximum: 1_000, secondsPerFrame: 0.01))
        }
    }

    /// The bound is on the frames kept: cropped to a few, a signal of many more frames is computed,
    /// in passes or in memory, and equals what no bound gives.
    @Test func aCropToFewFramesKeepsALongSignalWithinTheBound() throws {
        var p = LogMelParameters.speech
        let limit = 64 * 1_000   // 1,000 frames of 64 mels: 10 s
        let signal = ToneSignal(seconds: 30)
        for inMemoryLimit in [1 << 20, 16_000] {
            let bounded = try LogMelExtractor(p, valueLimit: limit)
            #expect(Self.refusal { try bounded.compute(signal: signal, inMemoryLimit: inMemoryLimit) }
                    == .tooLong(frames: nil, maximum: 1_000, secondsPerFrame: 0.01))
        }
        p.frames = 300
        let reference = try LogMelExtractor(p).compute(signal: signal)
        let cropped = try LogMelExtractor(p, valueLimit: limit).compute(signal: signal, inMemoryLimit: 16_000)
        #expect(cropped.frames == 300 && cropped.values == reference.values)
    }
}

extension StopAfter {
    var check: StopCheck { StopCheck(poll) }
}

@Suite("log-mel stops on request")
struct LogMelStopTests {
    /// In memory and streamed in passes, a computation asked to stop throws `.stopped` within
    /// `framesBetweenStopChecks` frames; one never asked gives the usual result.
    @Test("in memory and in passes", arguments: [LogMelExtractor.defaultInMemoryLimit, 8_192])
    func stopsWithinAFewFrames(inMemoryLimit: Int) throws {
        var p = LogMelParameters.speech
        p.frames = nil
        let extractor = try LogMelExtractor(p)
        let signal = ChunkedSignal(LogMelStreamingTests.syntheticSpeechLike(seconds: 12))
        let full = try extractor.compute(signal: signal, inMemoryLimit: inMemoryLimit)
        #expect(full.totalFrames > 4 * LogMelExtractor.framesBetweenStopChecks)

        let stop = StopAfter(after: 2)
        #expect(throws: FeatureError.stopped) {
            try extractor.compute(signal: signal, inMemoryLimit: inMemoryLimit, stop: stop.check)
        }
        // Polled every framesBetweenStopChecks frames: the third poll (frame 512) stopped it.
        #expect(stop.pollCount == 3)
        let again = try extractor.compute(signal: signal, inMemoryLimit: inMemoryLimit, stop: StopAfter(after: 1_000).check)
        LogMelStreamingTests.expectIdentical(again, full, "a stop check that never asks")
    }
}
