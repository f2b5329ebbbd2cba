// Parity with librosa 0.11 (scripts/librosa_logmel.py run by the repository's .venv python) on real
// RAVDESS speech converted to 16 kHz by the ffmpeg CLI. Skipped, with the reason, when the venv,
// ffmpeg or the shared data are missing.

import EmoFeatures
import EmoMedia
import Foundation
import EmoTestSupport
import Testing

struct ParityStats: CustomStringConvertible {
    var maxWithin: Float = 0      // max |diff| over real bins within top_db of librosa's peak
    var maxAll: Float = 0         // max |diff| over every real bin
    var bins = 0
    var diffs: [Float] = []       // per-bin |diff| within top_db (kept for quantiles)
    var worstMel = -1             // mel band of maxWithin

    mutating func add(ours: LogMel, ref: OracleResult, topDb: Double?, frames: Int? = nil, keep: Bool = false) {
        let floor = ref.peakDb - Float(topDb ?? 80)
        let nF = frames ?? ours.realFrames
        for m in 0..<ours.nMels {
            for t in 0..<nF {
                let a = ours.values[m * ours.frames + t], b = ref.values[m * ref.frames + t]
                let d = abs(a - b)
                maxAll = max(maxAll, d)
                if b > floor {
                    if d > maxWithin { maxWithin = d; worstMel = m }
                    bins += 1
                    if keep { diffs.append(d) }
                }
            }
        }
    }

    var description: String {
        String(format: "max|diff| within top_db %.5f dB over %d bins, over all real bins %.5f dB", maxWithin, bins, maxAll)
    }
}

/// Ours vs librosa for `p` on `files`: frame bookkeeping must match exactly, values to 0.05 dB.
func checkParity(_ p: LogMelParameters, files: [URL], refs: [OracleResult], label: String) throws -> ParityStats {
    let ex = try LogMelExtractor(p)
    var stats = ParityStats()
    for (url, ref) in zip(files, refs) {
        let audio = try WavFile.read(url)
        #expect(audio.sampleRate == p.sampleRate && audio.channels == 1)
        let ours = try ex.compute(samples: audio.samples, sampleRate: audio.sampleRate)
        let name = url.lastPathComponent
        #expect(ours.frames == ref.frames, "\(label) \(name): frames")
        #expect(ours.realFrames == ref.realFrames, "\(label) \(name): realFrames")
        #expect(ours.totalFrames == ref.totalFrames, "\(label) \(name): totalFrames")
        #expect(ours.firstFrame == ref.firstFrame, "\(label) \(name): firstFrame (crop)")
        #expect(ours.sampleRange == ref.sampleRange, "\(label) \(name): trim range")
        #expect(abs(ours.padValue - ref.padValue) <= 0.05, "\(label) \(name): pad value \(ours.padValue) vs \(ref.padValue)")
        #expect(abs(ours.durationSeconds - Double(audio.samples.count) / Double(p.sampleRate)) < 1e-12)
        guard ours.frames == ref.frames, ours.realFrames == ref.realFrames, ours.values.count == ref.values.count else { continue }
        // padding columns: exactly our pad value
        var padOK = true
        for m in 0..<ours.nMels { for t in ours.realFrames..<ours.frames where ours.values[m * ours.frames + t] != ours.padValue { padOK = false } }
        #expect(padOK, "\(label) \(name): padding columns")
        var one = ParityStats()
        one.add(ours: ours, ref: ref, topDb: p.topDb)
        #expect(one.maxWithin <= 0.05, "\(label) \(name): \(one)")
        stats.add(ours: ours, ref: ref, topDb: p.topDb)
    }
    print("PARITY \(label) (\(files.count) files): \(stats)")
    return stats
}

enum ParityRuns {
    static let presets: [LogMelParameters] = LogMelParameters.presetNames.map { try! LogMelParameters.preset($0) }

    static let variants: [(String, LogMelParameters)] = {
        var v: [(String, LogMelParameters)] = []
        func add(_ name: String, _ base: LogMelParameters, _ f: (inout LogMelParameters) -> Void) {
            var p = base; f(&p); v.append((name, p))
        }
        add("speech all frames", .speech) { $0.frames = nil }
        add("reference all frames", .reference) { $0.frames = nil }
        add("speech crop center 150", .speech) { $0.frames = 150; $0.crop = .center }
        add("reference crop center 60", .reference) { $0.frames = 60; $0.crop = .center }
        add("speech trim 30 + crop center 200", .speech) { $0.trimDb = 30; $0.frames = 200; $0.crop = .center }
        add("reference trim 40", .reference) { $0.trimDb = 40; $0.frames = 100 }
        add("speech trim 20, pad to 500", .speech) { $0.trimDb = 20; $0.frames = 500 }
        add("speech reflect padding", .speech) { $0.padMode = .reflect; $0.frames = nil }
        add("reference reflect padding", .reference) { $0.padMode = .reflect; $0.frames = nil }
        add("speech htk, no norm, 40 mels 60-7600 Hz", .speech) { $0.htk = true; $0.melNorm = .none; $0.nMels = 40; $0.fmin = 60; $0.fmax = 7600 }
        add("speech power 1, no top_db", .speech) { $0.power = 1; $0.topDb = nil; $0.frames = nil }
        add("speech uncentred", .speech) { $0.center = false; $0.frames = nil }
        add("speech hamming win 512, hop 128, 128 mels", .speech) { $0.window = .hamming; $0.winLength = 512; $0.hopLength = 128; $0.nMels = 128 }
        add("reference ref 0.5, amin 1e-8, top_db 60", .reference) { $0.dbRef = 0.5; $0.dbAmin = 1e-8; $0.topDb = 60 }
        add("speech rectangular win 256 in 512", .speech) { $0.window = .rectangular; $0.winLength = 256 }
        return v
    }()

    static func variantFiles() throws -> [URL] {
        let all = try ParityFiles.converted.get().wav16k
        return [all[0], all[3], all[6], all[11]]
    }

    /// One oracle process for both presets on the 12 files, one for every variant on 4 files.
    static let presetRefs: Result<[[OracleResult]], Error> = Result {
        try Oracle.logmel(presets, files: try ParityFiles.converted.get().wav16k)
    }
    static let variantRefs: Result<[[OracleResult]], Error> = Result {
        try Oracle.logmel(variants.map(\.1), files: try variantFiles())
    }
}

@Suite("librosa 0.11 parity", .enabled(if: TestEnv.canRunParity, TestEnv.parityskipReason))
struct LibrosaParityTests {
    @Test("presets: 12 shared files at 16 kHz, max |diff| ≤ 0.05 dB within top_db", arguments: LogMelParameters.presetNames.indices)
    func presets(index: Int) throws {
        let files = try ParityFiles.converted.get().wav16k
        let p = ParityRuns.presets[index]
        let stats = try checkParity(p, files: files, refs: try ParityRuns.presetRefs.get()[index],
                                    label: LogMelParameters.presetNames[index])
        #expect(stats.bins > 50_000)
        #expect(stats.maxWithin <= 0.05)
    }

    @Test("parameter variants (4 files each): crop, trim, pad, reflect, htk, power, centring", arguments: ParityRuns.variants.indices)
    func variant(index: Int) throws {
        let (name, p) = ParityRuns.variants[index]
        let stats = try checkParity(p, files: try ParityRuns.variantFiles(), refs: try ParityRuns.variantRefs.get()[index], label: name)
        #expect(stats.bins > 5_000)
        #expect(stats.maxWithin <= 0.05)
    }

    @Test("mel filterbanks equal librosa.filters.mel")
    func melFilters() throws {
        let sets: [LogMelParameters] = [
            .speech, .reference,
            LogMelParameters(sampleRate: 22050, nFFT: 1024, nMels: 128, fmin: 50, fmax: 8000, melNorm: .none, htk: true),
            LogMelParameters(sampleRate: 16000, nFFT: 400, nMels: 80, fmin: 20),
            LogMelParameters(sampleRate: 16000, nFFT: 256, nMels: 128),   // with empty filters
            LogMelParameters(sampleRate: 44100, nFFT: 4096, nMels: 96, fmin: 30, fmax: 16000, htk: true),
        ]
        let refs = try Oracle.mel(sets)
        for (p, ref) in zip(sets, refs) {
            let fb = MelFilterbank(p)
            #expect(ref.count == fb.weights.count)
            let scale = ref.max() ?? 1
            var worst: Float = 0
            for (a, b) in zip(fb.weights, ref) { worst = max(worst, abs(a - b)) }
            print("MEL sr \(p.sampleRate) n_fft \(p.nFFT) n_mels \(p.nMels) htk \(p.htk) norm \(p.melNorm): max |diff| \(worst) (max weight \(scale)), empty filters \(fb.emptyFilterCount)")
            #expect(worst <= 1e-6 * scale)
            // the sparse bands cover every nonzero weight
            var covered = true
            for m in 0..<fb.nMels {
                for k in 0..<fb.nBins where ref[m * fb.nBins + k] != 0 {
                    if !(k >= fb.bandStart[m] && k < fb.bandStart[m] + fb.bandCount[m]) { covered = false }
                }
            }
            #expect(covered)
        }
    }

    @Test("windows equal scipy.signal.get_window(fftbins=True)")
    func windows() throws {
        let specs: [(WindowKind, Int)] = [(.hann, 400), (.hann, 512), (.hann, 2048), (.hann, 7), (.hamming, 400), (.rectangular, 5), (.hann, 1)]
        let refs = try Oracle.windows(specs)
        for ((kind, n), ref) in zip(specs, refs) {
            let ours = AnalysisWindow.make(kind, length: n)
            #expect(ref.count == n)
            var worst: Float = 0
            for (a, b) in zip(ours, ref) { worst = max(worst, abs(a - b)) }
            #expect(worst <= 1e-7, "\(kind) \(n): \(worst)")
        }
    }

    /// For information (not asserted): librosa.load(sr=16000) (soxr_hq) from the 48 kHz originals
    /// then librosa features, vs. ffmpeg-resampled audio then ours, for three ffmpeg conversions.
    @Test("48 kHz originals: librosa (soxr_hq) path vs ffmpeg + ours, reported")
    func resamplingPaths() throws {
        let conv = try ParityFiles.converted.get()
        let sets = ParityRuns.presets.map { p -> LogMelParameters in var q = p; q.frames = nil; return q }
        let refs = try Oracle.logmel(sets, files: conv.flac, loadSR: 16000)
        func meanDownmix(_ src: URL) throws -> String {
            try WavFile.read(src).channels == 2 ? "pan=mono|c0=0.5*c0+0.5*c1" : "pan=mono|c0=c0"
        }
        let paths: [(String, [URL])] = [
            ("ffmpeg -ar 16000 -ac 1 (swr, -ac 1 downmix)", conv.wav16k),
            ("ffmpeg swr + mean downmix", try ParityFiles.convert(conv.flac, tag: "swr-mean") { ["-af", try meanDownmix($0) + ",aresample=16000"] }),
            ("ffmpeg soxr precision 20 + mean downmix", try ParityFiles.convert(conv.flac, tag: "soxr-mean") { ["-af", try meanDownmix($0) + ",aresample=16000:resampler=soxr:precision=20"] }),
            ("ffmpeg soxr precision 28 + mean downmix", try ParityFiles.convert(conv.flac, tag: "soxr28-mean") { ["-af", try meanDownmix($0) + ",aresample=16000:resampler=soxr:precision=28"] }),
        ]
        for (j, p) in sets.enumerated() {
            let ex = try LogMelExtractor(p)
            for (label, wavs) in paths {
                var stats = ParityStats()
                var lengthNote: [String] = []
                for (url, ref) in zip(wavs, refs[j]) {
                    let audio = try WavFile.read(url)
                    let ours = try ex.compute(samples: audio.samples, sampleRate: audio.sampleRate)
                    if ours.totalFrames != ref.totalFrames { lengthNote.append("\(ours.totalFrames)/\(ref.totalFrames)") }
                    stats.add(ours: ours, ref: ref, topDb: p.topDb, frames: min(ours.realFrames, ref.realFrames), keep: true)
                }
                let p99 = quantile(stats.diffs, 0.99), p50 = quantile(stats.diffs, 0.5)
                print(String(format: "RESAMPLE-PATH %@ | %@: %d bins within top_db: median %.5f dB, p99 %.4f dB, max %.4f dB (mel band %d of %d)%@",
                             LogMelParameters.presetNames[j], label, stats.bins, p50, p99, stats.maxWithin, stats.worstMel, p.nMels,
                             lengthNote.isEmpty ? "" : " (frame counts ours/librosa: \(lengthNote.joined(separator: ", ")))"))
                #expect(stats.bins > 0)
            }
        }
    }
}

extension LibrosaParityTests {
    /// The audio stage's own path from the 48 kHz originals — EmoMedia's decoder (channel mean, then
    /// libswresample with soxr at 20 bits) and our log-mel — against librosa.load(sr=16000) and librosa.
    @Test("48 kHz originals: EmoMedia decode + ours vs librosa.load(sr=16000) + librosa, max |diff| ≤ 0.05 dB")
    func decoderPath() throws {
        let conv = try ParityFiles.converted.get()
        for (j, preset) in ParityRuns.presets.enumerated() {
            var p = preset
            p.frames = nil
            let refs = try Oracle.logmel([p], files: conv.flac, loadSR: 16000)[0]
            let ex = try LogMelExtractor(p)
            var stats = ParityStats()
            for (url, ref) in zip(conv.flac, refs) {
                let audio = try AudioDecoder.decodeMono(path: url.path, sampleRate: p.sampleRate)
                let ours = try ex.compute(samples: audio.samples, sampleRate: audio.sampleRate)
                #expect(abs(ours.totalFrames - ref.totalFrames) <= 1, "\(url.lastPathComponent): frame count")
                stats.add(ours: ours, ref: ref, topDb: p.topDb, frames: min(ours.realFrames, ref.realFrames), keep: true)
            }
            print(String(format: "DECODER-PATH %@: %d bins, p99 %.5f dB, max %.5f dB",
                         LogMelParameters.presetNames[j], stats.bins, quantile(stats.diffs, 0.99), stats.maxWithin))
            #expect(stats.bins > 0)
            #expect(stats.maxWithin <= 0.05, "\(LogMelParameters.presetNames[j]): \(stats)")
        }
    }
}

/// Every shared speech recording (960), both presets. Opt-in (EMOPIPE_FULL_PARITY=1): several minutes
/// in a debug build (max |diff| measured: 0.0012 dB speech, 0.0007 dB reference).
@Suite("librosa 0.11 parity, all 960 recordings",
       .enabled(if: TestEnv.canRunParity && ProcessInfo.processInfo.environment["EMOPIPE_FULL_PARITY"] == "1",
                "set EMOPIPE_FULL_PARITY=1 (and have the venv, ffmpeg and the shared data)"))
struct FullParityTests {
    @Test("all recordings, both presets, max |diff| ≤ 0.05 dB within top_db")
    func all() throws {
        let fm = FileManager.default
        var flacs: [URL] = []
        for actor in try fm.contentsOfDirectory(atPath: TestEnv.speechFlac.path).sorted() where actor.hasPrefix("Actor_") {
            let dir = TestEnv.speechFlac.appendingPathComponent(actor)
            flacs += try fm.contentsOfDirectory(atPath: dir.path).sorted().filter { $0.hasSuffix(".flac") }.map { dir.appendingPathComponent($0) }
        }
        let dir = try TestSupport.scratchFolder("wav16k-all")
        defer { try? fm.removeItem(at: dir) }
        let wavs = flacs.enumerated().map { dir.appendingPathComponent(String(format: "%04d.wav", $0.offset)) }
        final class Errors: @unchecked Sendable { var list: [String] = []; let lock = NSLock() }
        let errors = Errors()
        DispatchQueue.concurrentPerform(iterations: flacs.count) { i in
            do {
                _ = try TestSupport.output(try TestEnv.ffmpegPath(), ["-nostdin", "-v", "error", "-y", "-i", flacs[i].path, "-ar", "16000", "-ac", "1",
                                          "-c:a", "pcm_f32le", wavs[i].path])
            } catch { errors.lock.lock(); errors.list.append("\(error)"); errors.lock.unlock() }
        }
        #expect(errors.list.isEmpty, "\(errors.list.prefix(3))")
        let refs = try Oracle.logmel(ParityRuns.presets, files: wavs)
        for (j, p) in ParityRuns.presets.enumerated() {
            let ex = try LogMelExtractor(p)
            var stats = ParityStats()
            var mismatched = 0
            for (url, ref) in zip(wavs, refs[j]) {
                let audio = try WavFile.read(url)
                let ours = try ex.compute(samples: audio.samples, sampleRate: audio.sampleRate)
                guard ours.realFrames == ref.realFrames, ours.frames == ref.frames else { mismatched += 1; continue }
                stats.add(ours: ours, ref: ref, topDb: p.topDb)
            }
            print("FULL-PARITY \(LogMelParameters.presetNames[j]) (\(wavs.count) files): \(stats)")
            #expect(mismatched == 0)
            #expect(stats.maxWithin <= 0.05)
        }
    }
}
