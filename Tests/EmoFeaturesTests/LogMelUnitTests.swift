// Unit tests that need neither librosa nor the shared data.

import EmoCore
@testable import EmoFeatures
import Foundation
import Testing

func sine(_ hz: Double, seconds: Double, sr: Int = 16000, amplitude: Float = 0.5, phase: Double = 0) -> [Float] {
    (0..<Int(seconds * Double(sr))).map { amplitude * Float(sin(2 * .pi * hz * Double($0) / Double(sr) + phase)) }
}

/// Deterministic pseudo-noise in [-a, a].
func noise(_ n: Int, amplitude: Float = 0.1, seed: UInt64 = 1) -> [Float] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<n).map { _ in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return amplitude * (Float(s >> 40) / Float(1 << 24) * 2 - 1)
    }
}

@Suite("LogMel unit tests")
struct LogMelUnitTests {
    @Test("presets and overrides")
    func presets() throws {
        let s = try LogMelParameters.preset("speech")
        #expect(s == .speech && LogMelParameters(winLength: 400) == .speech)
        #expect(s.sampleRate == 16000 && s.nFFT == 512 && s.winLength == 400 && s.hopLength == 160)
        #expect(s.nMels == 64 && s.frames == nil && s.topDb == 80 && s.fmax == nil && s.trimDb == nil)
        #expect(s.window == .hann && s.center && s.padMode == .constant && s.melNorm == .slaney && !s.htk)
        #expect(s.power == 2 && s.dbRef == 1 && s.dbAmin == 1e-10 && s.crop == .start)
        let r = try LogMelParameters.preset("reference")
        #expect(r.nFFT == 2048 && r.winLength == 2048 && r.hopLength == 512 && r.nMels == 64 && r.frames == 300)
        #expect(throws: InvalidParameter.self) { try LogMelParameters.preset("nope") }
    }

    @Test("Codable: round trip, preset base, explicit null vs absent")
    func codable() throws {
        var p = LogMelParameters.reference
        p.topDb = nil; p.trimDb = 25; p.crop = .center; p.fmax = 7000
        let data = try JSONEncoder().encode(p)
        #expect(try JSONDecoder().decode(LogMelParameters.self, from: data) == p)
        let json = String(decoding: data, as: UTF8.self)
        #expect(json.contains("\"top_db\":null") && json.contains("\"n_fft\":2048"))
        let a = try JSONDecoder().decode(LogMelParameters.self, from: Data(#"{"preset":"reference","top_db":null}"#.utf8))
        var b = LogMelParameters.reference; b.topDb = nil
        #expect(a == b)
        let c = try JSONDecoder().decode(LogMelParameters.self, from: Data(#"{"n_mels":80}"#.utf8))
        var d = LogMelParameters.speech; d.nMels = 80
        #expect(c == d)
        #expect(throws: InvalidParameter.self) {
            try JSONDecoder().decode(LogMelParameters.self, from: Data(#"{"preset":"x"}"#.utf8))
        }
        #expect(Set([LogMelParameters.speech, .reference, .speech]).count == 2)
    }

    @Test("a span too narrow for the mel bands names n_mels and every way out, the span among them")
    func narrowSpanNamesTheWaysOut() throws {
        func refusal(_ change: (inout LogMelParameters) -> Void) throws -> InvalidParameter {
            var p = LogMelParameters.speech
            change(&p)
            return try #require(throws: InvalidParameter.self) { try p.validate() }
        }
        let narrow = try refusal { $0.fmax = 100 }
        #expect(narrow.key == "n_mels" && Set(narrow.bounds) == ["n_fft", "sample_rate", "fmin", "fmax"]
                && narrow.allowed.contains("between 0.0 and 100.0 Hz")
                && narrow.allowed.contains("fewer n_mels, a larger n_fft or a wider fmin-fmax span"), "\(narrow)")
        // The whole span already (0 Hz to Nyquist): no wider one to suggest.
        let whole = try refusal { $0.nMels = 200 }
        #expect(whole.key == "n_mels" && whole.allowed.hasSuffix("(use fewer n_mels or a larger n_fft)"), "\(whole)")
    }

    @Test("invalid parameters are typed errors")
    func invalidParameters() {
        func bad(_ f: (inout LogMelParameters) -> Void) -> Bool {
            var p = LogMelParameters.speech; f(&p)
            do { _ = try LogMelExtractor(p); return false } catch is InvalidParameter { return true } catch { return false }
        }
        #expect(bad { $0.nFFT = 511 })
        #expect(bad { $0.nFFT = 0 })
        #expect(bad { $0.nFFT = 6; $0.winLength = 6 })
        #expect(bad { $0.winLength = 513 })
        #expect(bad { $0.winLength = 0 })
        #expect(bad { $0.hopLength = 0 })
        #expect(bad { $0.nMels = 0 })
        #expect(bad { $0.fmax = 9000 })
        #expect(bad { $0.fmin = 8000 })
        #expect(bad { $0.fmin = -1 })
        #expect(bad { $0.power = 0 })
        #expect(bad { $0.dbAmin = 0 })
        #expect(bad { $0.dbRef = -1 })
        #expect(bad { $0.topDb = -1 })
        #expect(bad { $0.frames = 0 })
        #expect(bad { $0.trimDb = 0 })
        #expect(bad { $0.sampleRate = 0 })
    }

    @Test("bad audio: empty, all zero, NaN, inf, too short, wrong rate")
    func badAudio() throws {
        let ex = try LogMelExtractor(.speech)
        #expect(throws: FeatureError.emptyAudio) { try ex.compute(samples: [], sampleRate: 16000) }
        #expect(throws: FeatureError.silentAudio) { try ex.compute(samples: [Float](repeating: 0, count: 16000), sampleRate: 16000) }
        #expect(throws: FeatureError.silentAudio) { try ex.compute(samples: [Float](repeating: -0.0, count: 16003), sampleRate: 16000) }
        // Not zero, but below the floor everywhere: the log-mel would be as constant as digital silence's.
        for (label, quiet) in [("a tone scaled by 1e-40", sine(440, seconds: 1).map { $0 * 1e-40 }),
                               ("a lone 16-bit 1", (0..<16000).map { $0 == 8000 ? Float(1) / 32768 : 0 })] {
            let error = #expect(throws: FeatureError.self, "\(label)") { try ex.compute(samples: quiet, sampleRate: 16000) }
            guard case .inaudible(_, let floor)? = error else { Issue.record("\(label): \(String(describing: error))"); continue }
            #expect(floor == Float(1e-10))
        }
        #expect(try ex.compute(samples: sine(440, seconds: 1).map { $0 * 1e-3 }, sampleRate: 16000).frames > 0, "quiet but audible")
        var x = sine(440, seconds: 1)
        x[12345] = .nan
        #expect(throws: FeatureError.notFinite) { try ex.compute(samples: x, sampleRate: 16000) }
        x[12345] = .infinity
        #expect(throws: FeatureError.notFinite) { try ex.compute(samples: x, sampleRate: 16000) }
        x[12345] = 0; x[x.count - 1] = -.infinity       // in the scalar tail
        #expect(throws: FeatureError.notFinite) { try ex.compute(samples: x, sampleRate: 16000) }
        // Finite samples whose spectrum overflows: refused for what they are, whether the overflow shows as
        // inf (a sine) or as NaN (noise, where inf − inf appears in the FFT; max() used to drop it and floor every bin).
        #expect(throws: FeatureError.spectrumOverflow) { try ex.compute(samples: sine(440, seconds: 1, amplitude: 1e30), sampleRate: 16000) }
        let loudNoise = (0..<32_000).map { i in Float((i &* 7919) % 2001 - 1000) * 1e35 }   // finite, within ±1e38
        #expect(loudNoise.allSatisfy { $0.isFinite })
        #expect(throws: FeatureError.spectrumOverflow) { try ex.compute(samples: loudNoise, sampleRate: 16000) }
        #expect(throws: FeatureError.spectrumOverflow) { try ex.compute(signal: ChunkedSignal(loudNoise), inMemoryLimit: 0) }
        var trimmed = LogMelParameters.speech
        trimmed.trimDb = 40
        trimmed.crop = .center
        trimmed.frames = 50
        #expect(throws: FeatureError.spectrumOverflow) { try LogMelExtractor(trimmed).compute(samples: loudNoise, sampleRate: 16000) }
        #expect(throws: FeatureError.spectrumOverflow) { try LogMelExtractor(trimmed).compute(signal: ChunkedSignal(loudNoise), inMemoryLimit: 0) }
        let live = try LiveLogMel(.speech)
        #expect(throws: FeatureError.spectrumOverflow) { try loudNoise.withUnsafeBufferPointer { try live.add($0) { _ in } } }
        var z = [Float](repeating: 0, count: 1000); z[999] = .nan
        #expect(throws: FeatureError.notFinite) { try ex.compute(samples: z, sampleRate: 16000) }
        #expect(throws: FeatureError.tooShort(samples: 399, needed: 400)) { try ex.compute(samples: sine(440, seconds: 399.0 / 16000), sampleRate: 16000) }
        #expect(throws: FeatureError.sampleRateMismatch(expected: 16000, actual: 48000)) { try ex.compute(samples: sine(440, seconds: 1), sampleRate: 48000) }
        var unc = LogMelParameters.speech; unc.center = false
        #expect(throws: FeatureError.tooShort(samples: 500, needed: 512)) { try LogMelExtractor(unc).compute(samples: noise(500), sampleRate: 16000) }
        // exactly one window is fine
        let one = try ex.compute(samples: noise(400), sampleRate: 16000)
        #expect(one.realFrames == 1 + 400 / 160 && one.values.allSatisfy(\.isFinite))
        #expect(FeatureError.tooShort(samples: 1, needed: 2).description.contains("too short"))
        // A recording long enough that a trim leaves too short is the trim's doing, and the message names trim_db.
        var narrow = LogMelParameters.speech
        (narrow.center, narrow.nFFT, narrow.winLength, narrow.trimDb) = (false, 4096, 4096, 0.001)
        var burst = noise(32_000).map { $0 * 1e-3 }
        for i in 16_000..<16_300 { burst[i] = sin(Float(i)) }
        for compute in [{ try LogMelExtractor(narrow).compute(samples: burst, sampleRate: 16000) },
                        { try LogMelExtractor(narrow).compute(signal: ChunkedSignal(burst), inMemoryLimit: 0) }] {
            do { _ = try compute(); Issue.record("a trim that leaves less than a window was taken") } catch let error as FeatureError {
                guard case let .trimmedTooShort(kept, of, needed, topDb) = error else { Issue.record("\(error)"); continue }
                #expect(kept < needed && of == burst.count && needed == 4096 && topDb == 0.001, "\(error)")
                #expect(error.description.contains("audio too short once trimmed: audio.trim_db = 0.001 kept \(kept) of its 32000 samples"), "\(error)")
            }
        }
    }

    @Test("real FFT (av_tx complex FFT + split) equals a float64 DFT", arguments: [512, 2048, 400, 64, 8, 30])
    func rdft(n: Int) throws {
        var p = LogMelParameters.speech
        p.nFFT = n; p.winLength = n; p.nMels = n >= 64 ? 4 : 1; p.fmax = 7999  // every mel band must hold an FFT bin
        let ex = try LogMelExtractor(p)
        let ws = try LogMelExtractor.Workspace(nFFT: n, nBins: n / 2 + 1)
        let x = noise(n, amplitude: 1, seed: UInt64(n))
        for i in 0..<n { ws.frame[i] = x[i] }
        ex.powerSpectrum(ws.frame, ws)
        var worst = 0.0, peak = 0.0
        for k in ex.binLo..<ex.binHi {
            var re = 0.0, im = 0.0
            for j in 0..<n {
                let a = -2 * Double.pi * Double(k * j % n) / Double(n)
                re += Double(x[j]) * cos(a); im += Double(x[j]) * sin(a)
            }
            worst = max(worst, abs(Double(ws.power[k]) - (re * re + im * im)))
            peak = max(peak, re * re + im * im)
        }
        #expect(ex.binHi - ex.binLo >= n / 2 - 1)
        #expect(worst <= 1e-5 * peak, "n \(n): max error \(worst), peak \(peak)")
    }

    @Test("frames: pad short clips with the silence/floor value, crop long ones")
    func padAndCrop() throws {
        var fixed = LogMelParameters.speech
        fixed.frames = 300
        let ex = try LogMelExtractor(fixed)
        let short = try ex.compute(samples: sine(1000, seconds: 0.5), sampleRate: 16000)
        #expect(short.frames == 300 && short.nMels == 64 && short.values.count == 64 * 300)
        #expect(short.realFrames == 1 + 8000 / 160 && short.totalFrames == short.realFrames && short.firstFrame == 0)
        #expect(abs(short.durationSeconds - 0.5) < 1e-12)
        let peak = short.values.max()!
        #expect(short.padValue == peak - 80)
        #expect(short.values.min()! >= peak - 80)
        for m in 0..<64 { for t in short.realFrames..<300 { #expect(short[mel: m, frame: t] == short.padValue) } }
        #expect(short.frameMask.reduce(0, +) == Float(short.realFrames))

        let long = try ex.compute(samples: noise(16000 * 5), sampleRate: 16000)
        #expect(long.totalFrames == 501 && long.realFrames == 300 && long.firstFrame == 0)

        // top_db nil: padding is the dB of digital silence, 10·log10(amin) = -100 dB
        var p = LogMelParameters.speech; p.topDb = nil
        let s2 = try LogMelExtractor(p).compute(samples: sine(1000, seconds: 0.5), sampleRate: 16000)
        #expect(abs(s2.padValue - -100) < 1e-4)

        // crop center: a burst in the middle of 6 s of near-silence is kept in the window
        var q = LogMelParameters.speech; q.crop = .center; q.frames = 100
        var x = noise(16000 * 6, amplitude: 1e-5)
        let burst = sine(800, seconds: 0.4)
        for i in burst.indices { x[48000 + i] += burst[i] }
        let c = try LogMelExtractor(q).compute(samples: x, sampleRate: 16000)
        let mid = (48000 + 48000 + burst.count) / 2 / 160
        #expect(abs((c.firstFrame + 50) - mid) <= 3, "first \(c.firstFrame), burst centre frame \(mid)")

        // trim: the silent lead-in and tail are dropped
        var r = LogMelParameters.speech; r.trimDb = 40; r.frames = nil
        let tr = try LogMelExtractor(r).compute(samples: x, sampleRate: 16000)
        #expect(tr.sampleRange.lowerBound > 40000 && tr.sampleRange.upperBound < 60000)
        #expect(abs(tr.durationSeconds - 6) < 1e-12)
    }

    @Test("one extractor from many threads gives the same results")
    func concurrency() async throws {
        let ex = try LogMelExtractor(.reference)
        let clips = (0..<16).map { noise(16000 * 3 + $0 * 777, amplitude: 0.2, seed: UInt64($0 + 1)) }
        let serial = try clips.map { try ex.compute(samples: $0, sampleRate: 16000) }
        let parallel = try await withThrowingTaskGroup(of: (Int, LogMel).self) { g in
            for (i, c) in clips.enumerated() { g.addTask { (i, try ex.compute(samples: c, sampleRate: 16000)) } }
            var out = [LogMel?](repeating: nil, count: clips.count)
            for try await (i, m) in g { out[i] = m }
            return out.map { $0! }
        }
        #expect(parallel == serial)
    }

    @Test("reflect index follows numpy.pad(mode='reflect')")
    func reflect() {
        // n = 4: [a b c d] → ... c b | a b c d | c b a b c d c ...
        let n = 4
        let expect: [Int: Int] = [-1: 1, -2: 2, -3: 3, -4: 2, -5: 1, -6: 0, 4: 2, 5: 1, 6: 0, 7: 1, 8: 2, 9: 3]
        for (j, e) in expect { #expect(LogMelExtractor.reflectIndex(j, n) == e, "j \(j)") }
        #expect(LogMelExtractor.reflectIndex(-5, 1) == 0)
    }
}
