// LogMelExtractor: librosa 0.11's
//
//     S  = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=, hop_length=, win_length=, window=,
//                                         center=, pad_mode=, power=, n_mels=, fmin=, fmax=, htk=, norm=)
//     dB = librosa.power_to_db(S, ref=db_ref, amin=db_amin, top_db=top_db)
//
// with the FFT done by libavutil's av_tx, then cropped/padded to `frames`. The real FFT of n_fft
// samples is av_tx's complex FFT (AV_TX_FLOAT_FFT, SIMD assembly) of length n_fft/2 over the
// (even, odd) sample pairs, followed by the usual split into n_fft/2 + 1 bins, vectorised here.
// FFmpeg 5.1's AV_TX_FLOAT_RDFT does that split in scalar C, which made it ~2x slower per frame
// (0.59 vs 0.29 µs at n_fft 512; 2.5 vs 1.3 µs at 2048, on this machine); both agree with a
// float64 DFT to float32 precision (see the unit tests).
//
// Per frame: window (only the win_length nonzero samples are read) → FFT → |X|^power on the bins
// some filter uses → mel projection over each filter's nonzero band (precomputed, SIMD4 blocks).
//
// Order of operations for one clip (documented contract, mirrored by scripts/librosa_logmel.py):
//  1. check: sample rate, empty, NaN/inf, all zero, shorter than one window → FeatureError;
//  2. if trim_db: y = y[start:end] of librosa.effects.trim(y, top_db=trim_db, ref=np.max,
//     frame_length=n_fft, hop_length=hop_length);
//  3. the full log-mel of y, with top_db applied over the whole (trimmed) clip;
//  4. crop to `frames` columns: from frame 0 (`start`), or (`center`) from
//     clamp(c - frames/2, 0, total - frames) where c is the frame of the midpoint `mid` of the
//     interval librosa.effects.trim(y, top_db=trim_db ?? 60, ...) keeps: c = mid / hop (centred
//     frames) or max(0, mid - n_fft/2) / hop (uncentred), integer division;
//  5. a shorter clip is padded on the right with `padValue` = max(10·log10(amin) − 10·log10(max(amin,
//     ref)), peak − top_db): the value that digital silence (what constant padding of the signal
//     adds) gets under the same transform and clipping. It is deterministic, sits at the clip's own
//     floor (so a padded column looks like silence, not like a loud or a −100 dB outlier, and
//     per-clip normalisation or a model that ignores the mask sees nothing unusual), and the frame
//     mask (`realFrames`) still tells it apart.
//
// Precision: the window, mel weights and dB conversion follow librosa's float64/float32 steps; the
// FFT and the mel projection run in float32 (librosa: float64 FFT rounded to complex64, float32
// sgemm). Measured against librosa 0.11 on all 960 RAVDESS speech files at 16 kHz: max |diff|
// 0.0012 dB (speech preset) and 0.0007 dB (reference) over every bin within top_db of the peak.
//
// Threads: an extractor is immutable apart from a pool of workspaces (av_tx context + scratch
// buffers); `compute` takes one from the pool (or makes one) and gives it back, so any number of
// threads can call it at once, each using its own scratch.

import EmoMedia
import Foundation

public final class LogMelExtractor: @unchecked Sendable {
    public let parameters: LogMelParameters
    public let filterbank: MelFilterbank

    let nFFT: Int, hop: Int, nMels: Int, nBins: Int
    /// Frame t's window starts at sample t·hop − frameOffset (n_fft/2 when centred).
    let frameOffset: Int
    let reflectPad: Bool
    /// Window padded to n_fft, and the range of it that can be nonzero.
    let window: UnsafeMutablePointer<Float>
    let winStart: Int, winEnd: Int
    /// Packed nonzero bands, each zero-padded to a multiple of 4 weights and 16-byte aligned: filter m
    /// uses weights[bandOffset[m] ..< +4·bandBlocks[m]] on bins bandStart[m]...
    let packedWeights: UnsafeMutablePointer<Float>
    let bandStart: UnsafeMutablePointer<Int>, bandBlocks: UnsafeMutablePointer<Int>, bandOffset: UnsafeMutablePointer<Int>
    /// Bins any filter touches.
    let binLo: Int, binHi: Int
    let aminF: Float, refDb: Float, silenceDb: Float
    let powerExponent: Float
    /// cos(2πk/n_fft) and −sin(2πk/n_fft) for k in 0...n_fft/2 (+ SIMD slack).
    let twCos: UnsafeMutablePointer<Float>, twSin: UnsafeMutablePointer<Float>

    private let lock = NSLock()
    private var pool: [Workspace] = []
    /// The most values (frames × n_mels) one computation may hold (`maxValues`; smaller in tests).
    let valueLimit: Int

    public init(_ p: LogMelParameters, valueLimit: Int = LogMelExtractor.maxValues) throws {
        try p.validate()
        parameters = p
        self.valueLimit = valueLimit
        nFFT = p.nFFT; hop = p.hopLength; nMels = p.nMels; nBins = p.nFFT / 2 + 1
        frameOffset = p.center ? p.nFFT / 2 : 0
        reflectPad = p.center && p.padMode == .reflect
        filterbank = MelFilterbank(p)

        let w = AnalysisWindow.padded(p)
        window = .allocate(capacity: nFFT)
        window.initialize(from: w, count: nFFT)
        let lpad = (p.nFFT - p.winLength) / 2
        winStart = lpad; winEnd = lpad + p.winLength

        let total = filterbank.bandCount.reduce(0) { $0 + ($1 + 3) / 4 * 4 }
        packedWeights = UnsafeMutableRawPointer.allocate(byteCount: 4 * max(total, 4), alignment: 64)
            .bindMemory(to: Float.self, capacity: max(total, 4))
        packedWeights.initialize(repeating: 0, count: max(total, 4))
        bandStart = .allocate(capacity: nMels); bandBlocks = .allocate(capacity: nMels); bandOffset = .allocate(capacity: nMels)
        var off = 0, lo = nBins, hi = 0
        for m in 0..<nMels {
            let s = filterbank.bandStart[m], c = filterbank.bandCount[m]
            bandStart[m] = s; bandBlocks[m] = (c + 3) / 4; bandOffset[m] = off
            for j in 0..<c { packedWeights[off + j] = filterbank.weights[m * nBins + s + j] }
            off += (c + 3) / 4 * 4
            if c > 0 { lo = min(lo, s); hi = max(hi, s + c) }
        }
        if hi <= lo { lo = 0; hi = 1 }
        binLo = lo; binHi = hi

        aminF = Float(p.dbAmin)
        refDb = Float(10.0 * log10(max(p.dbAmin, abs(p.dbRef))))
        silenceDb = Self.db10(0, amin: Float(p.dbAmin), refDb: refDb)
        powerExponent = Float(p.power)
        twCos = .allocate(capacity: nBins + 8); twSin = .allocate(capacity: nBins + 8)
        for k in 0..<(nBins + 8) {
            let a = 2 * Double.pi * Double(k) / Double(nFFT)
            twCos[k] = Float(cos(a)); twSin[k] = Float(-sin(a))
        }

        // Make one workspace now: it checks that av_tx supports this size.
        pool.append(try Workspace(nFFT: nFFT, nBins: nBins))
    }

    deinit {
        window.deallocate(); packedWeights.deallocate()
        bandStart.deallocate(); bandBlocks.deallocate(); bandOffset.deallocate()
        twCos.deallocate(); twSin.deallocate()
    }

    // MARK: workspaces

    final class Workspace {
        let fft: ComplexFFT                         // av_tx through EmoMedia
        let frame: UnsafeMutablePointer<Float>      // n_fft real input
        let spectrum: UnsafeMutablePointer<Float>   // n_fft/2 (+1 wrapped) complex FFT output, interleaved
        let power: UnsafeMutablePointer<Float>      // n_fft/2 + 1
        var mel: [Float] = []                       // [frames, n_mels] mel power
        var prefix: [Double] = []                   // running sums of squares (trim)
        var frameDb: [Float] = []

        init(nFFT: Int, nBins: Int) throws {
            // A real FFT of n_fft = a complex FFT of n_fft/2 on (even, odd) sample pairs plus a split
            // step (done here, vectorised). av_tx's own AV_TX_FLOAT_RDFT does the same split in
            // scalar C in FFmpeg 5.1, which costs as much as the complex FFT itself.
            do {
                fft = try ComplexFFT(size: nFFT / 2)
            } catch {
                throw FeatureError.invalidParameter("av_tx cannot make a complex FFT of size \(error.size) (error \(error.code))")
            }
            func aligned(_ n: Int) -> UnsafeMutablePointer<Float> {
                let raw = UnsafeMutableRawPointer.allocate(byteCount: max(n, 16) * 4 + 64, alignment: 64)
                raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(n, 16) * 4 + 64)
                return raw.bindMemory(to: Float.self, capacity: max(n, 16) + 16)
            }
            frame = aligned(nFFT)
            spectrum = aligned(2 * nBins + 2)
            power = aligned(nBins)
        }

        deinit {
            frame.deallocate(); spectrum.deallocate(); power.deallocate()
        }
    }

    func takeWorkspace() throws -> Workspace {
        lock.lock()
        let w = pool.popLast()
        lock.unlock()
        if let w { return w }
        return try Workspace(nFFT: nFFT, nBins: nBins)
    }

    func giveBack(_ w: Workspace) {
        lock.lock()
        pool.append(w)
        lock.unlock()
    }

    // MARK: compute

    /// The log-mel of `samples` (mono, already at `parameters.sampleRate`).
    /// `stop` is polled every `framesBetweenStopChecks` frames; when it asks, `FeatureError.stopped` is thrown.
    public func compute(samples: [Float], sampleRate: Int, stop: StopCheck = .never) throws -> LogMel {
        try samples.withUnsafeBufferPointer { try compute(samples: $0, sampleRate: sampleRate, stop: stop) }
    }

    public func compute(samples x: UnsafeBufferPointer<Float>, sampleRate: Int, stop: StopCheck = .never) throws -> LogMel {
        let p = parameters
        guard sampleRate == p.sampleRate else {
            throw FeatureError.sampleRateMismatch(expected: p.sampleRate, actual: sampleRate)
        }
        let n = x.count
        guard n > 0, let base = x.baseAddress else { throw FeatureError.emptyAudio }
        try Self.checkSamples(base, n)
        let needed = p.center ? p.winLength : p.nFFT
        guard n >= needed else { throw FeatureError.tooShort(samples: n, needed: needed) }

        let ws = try takeWorkspace()
        defer { giveBack(ws) }

        // 2. silence trim
        var range = 0..<n
        if let t = p.trimDb {
            range = nonSilentRange(base, n, topDb: t, ws)
            if range.isEmpty { throw FeatureError.trimmedTooShort(kept: 0, of: n, needed: needed, topDb: t) }
        }
        let m = range.count
        if !p.center && m < nFFT { throw FeatureError.trimmedTooShort(kept: m, of: n, needed: nFFT, topDb: p.trimDb ?? 0) }
        return try analyse(UnsafeBufferPointer(start: base + range.lowerBound, count: m), signalLength: n, range: range, ws,
                           stop: stop)
    }

    /// How often a frame loop asks `StopCheck`: at most a few milliseconds apart even at n_fft 4096
    /// and hop 1, where one clip can take minutes.
    static let framesBetweenStopChecks = 256

    /// The most values (frames × n_mels) one computation holds: 256 MB of float32, 2.9 hours at the
    /// speech preset's 64 mels and 10 ms hop. A longer signal is refused before its frames are
    /// computed, so a small file that decodes to days of audio cannot take the memory it would need.
    public static let maxValues = 1 << 26

    /// The most frames one computation may hold.
    var maximumFrames: Int { valueLimit / nMels }

    /// Throws `tooLong` when `frames` frames of n_mels values would be more than `valueLimit`.
    func checkLength(frames: Int) throws {
        guard frames <= maximumFrames else { throw tooLong(frames: frames) }
    }

    /// The refusal of a signal of `frames` frames (nil: more than the bound, reading stopped there).
    func tooLong(frames: Int?) -> FeatureError {
        .tooLong(frames: frames, maximum: maximumFrames, secondsPerFrame: Double(hop) / Double(parameters.sampleRate))
    }

    /// Frames of the spectrogram of `m` samples.
    func frameCount(_ m: Int) -> Int {
        parameters.center ? 1 + (m + 2 * (nFFT / 2) - nFFT) / hop : 1 + (m - nFFT) / hop
    }

    /// Steps 3-5 on the analysed samples `y` (the whole signal of `n` samples, or the `range` of it the
    /// trim kept), all in memory.
    func analyse(_ y: UnsafeBufferPointer<Float>, signalLength n: Int, range: Range<Int>, _ ws: Workspace,
                 stop: StopCheck) throws -> LogMel {
        let p = parameters
        let m = y.count
        guard let base = y.baseAddress, m > 0 else { throw FeatureError.emptyAudio }

        // 3. full mel power spectrogram
        let total = frameCount(m)
        try checkLength(frames: total)
        if ws.mel.count < total * nMels { ws.mel = [Float](repeating: 0, count: total * nMels) }
        let maxPower = try ws.mel.withUnsafeMutableBufferPointer {
            try melSpectrogram(base, m, frames: total, ws, out: $0.baseAddress!, stop: stop)
        }
        // finite samples whose spectrum overflows float32 (|x| ≳ 1e17) would give inf/NaN dB
        guard maxPower.isFinite else { throw FeatureError.spectrumOverflow }
        try checkAudible(maxPower)

        // 4. crop
        let outFrames = p.frames ?? total
        var first = 0
        if total > outFrames && p.crop == .center {
            first = centredFirstFrame(voiced: nonSilentRange(base, m, topDb: p.trimDb ?? 60, ws), total: total, outFrames: outFrames)
        }
        let real = min(total - first, outFrames)
        var power = [Float](repeating: 0, count: nMels * outFrames)
        ws.mel.withUnsafeBufferPointer { melBuf in
            power.withUnsafeMutableBufferPointer { out in
                let mp = melBuf.baseAddress!, op = out.baseAddress!
                for t in 0..<real {
                    let src = mp + (first + t) * nMels
                    for mm in 0..<nMels { op[mm * outFrames + t] = src[mm] }
                }
            }
        }
        return finish(power: &power, maxPower: maxPower, total: total, first: first, real: real, outFrames: outFrames,
                      signalLength: n, range: range)
    }

    /// The first kept frame of a centre crop: `frames` frames around the midpoint of the voiced interval.
    func centredFirstFrame(voiced v: Range<Int>, total: Int, outFrames: Int) -> Int {
        let mid = (v.lowerBound + v.upperBound) / 2
        let c = parameters.center ? mid / hop : max(0, mid - nFFT / 2) / hop
        return min(max(c - outFrames / 2, 0), total - outFrames)
    }

    /// 5. dB, top_db floor, pad: `values` holds the kept frames' mel power, mel-major
    /// (`values[m * outFrames + t]`, t < real), and becomes the log-mel.
    func finish(power values: inout [Float], maxPower: Float, total: Int, first: Int, real: Int, outFrames: Int,
                signalLength n: Int, range: Range<Int>) -> LogMel {
        let peakDb = dB(maxPower)
        let floorDb: Float = parameters.topDb.map { peakDb - Float($0) } ?? -Float.infinity
        let padValue = max(silenceDb, floorDb)
        let amin = aminF, ref = refDb
        values.withUnsafeMutableBufferPointer { out in
            guard let op = out.baseAddress else { return }
            for mm in 0..<nMels {
                let row = op + mm * outFrames
                for t in 0..<real { row[t] = max(Self.db10(row[t], amin: amin, refDb: ref), floorDb) }
                for t in real..<outFrames { row[t] = padValue }
            }
        }
        return LogMel(values: values, nMels: nMels, frames: outFrames, realFrames: real,
                      durationSeconds: Double(n) / Double(parameters.sampleRate), sampleRange: range,
                      totalFrames: total, firstFrame: first, padValue: padValue)
    }

    /// 10·log10(max(amin, x)) − ref_dB, with 10·log10(x) computed as log2(x)·10·log10(2).
    @inline(__always) static func db10(_ x: Float, amin: Float, refDb: Float) -> Float {
        log2f(max(amin, x)) * 3.0102999566398120 - refDb
    }

    @inline(__always) func dB(_ power: Float) -> Float { Self.db10(power, amin: aminF, refDb: refDb) }

    /// Throws `.inaudible` when no mel power reaches the floor: every value would be the floor's.
    func checkAudible(_ maxPower: Float) throws {
        guard maxPower > aminF else { throw FeatureError.inaudible(peakPower: maxPower, floor: aminF) }
    }

    /// Throws `.notFinite` or `.silentAudio`.
    static func checkSamples(_ x: UnsafePointer<Float>, _ n: Int) throws {
        // x - x is 0 for finite x and NaN otherwise; OR-ing magnitudes' bits finds any nonzero.
        var bad = SIMD8<Float>(repeating: 0)
        var any = SIMD8<UInt32>(repeating: 0)
        var i = 0
        let raw = UnsafeRawPointer(x)
        while i + 8 <= n {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            bad += v - v
            any |= unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7fff_ffff
            i += 8
        }
        var tailBad: Float = 0
        var tailAny: UInt32 = 0
        while i < n { tailBad += x[i] - x[i]; tailAny |= x[i].bitPattern & 0x7fff_ffff; i += 1 }
        if bad.sum().isNaN || tailBad.isNaN { throw FeatureError.notFinite }
        if any.max() == 0 && tailAny == 0 { throw FeatureError.silentAudio }
    }

    /// Mel power spectrogram [frames, n_mels] into `out`; returns its maximum.
    func melSpectrogram(_ y: UnsafePointer<Float>, _ m: Int, frames: Int, _ ws: Workspace,
                        out: UnsafeMutablePointer<Float>, stop: StopCheck) throws -> Float {
        var peak: Float = 0
        for t in 0..<frames {
            if t % Self.framesBetweenStopChecks == 0, stop.isRequested { throw FeatureError.stopped }
            fillFrame(ws, origin: frameOrigin(t), y, from: 0, length: m)
            melProject(ws, into: out + t * nMels, peak: &peak)
        }
        return peak
    }

    /// Sample index of frame t's position 0.
    @inline(__always) func frameOrigin(_ t: Int) -> Int { t * hop - frameOffset }

    /// Windows the frame whose position 0 is signal sample `origin` into ws.frame. `y` holds signal samples
    /// from index `lo` on, of a signal of `m` samples; it must hold every sample the frame reads (with
    /// reflect padding, also those mirrored in from beyond either end).
    @inline(__always) func fillFrame(_ ws: Workspace, origin: Int, _ y: UnsafePointer<Float>, from lo: Int, length m: Int) {
        let frame = ws.frame
        let win = window
        let a = origin + winStart, b = origin + winEnd
        if a >= 0 && b <= m {
            let src = y + (origin - lo)
            for k in winStart..<winEnd { frame[k] = win[k] * src[k] }
        } else {
            for k in winStart..<winEnd {
                let j = origin + k
                let v: Float
                if j >= 0 && j < m { v = y[j - lo] }
                else if reflectPad { v = y[Self.reflectIndex(j, m) - lo] }
                else { v = 0 }
                frame[k] = win[k] * v
            }
        }
        // av_tx may use its input as scratch: re-zero the window's padding each frame.
        for k in 0..<winStart { frame[k] = 0 }
        for k in winEnd..<nFFT { frame[k] = 0 }
    }

    /// The mel power of the frame in ws.frame into `o` (n_mels values); raises `peak` to their maximum.
    @inline(__always) func melProject(_ ws: Workspace, into o: UnsafeMutablePointer<Float>, peak: inout Float) {
        let pw = ws.power
        powerSpectrum(ws.frame, ws)
        // mel projection over each filter's nonzero band
        // (bands are zero-padded to whole SIMD4 blocks; the power buffer has zeroed slack)
        let wr = UnsafeRawPointer(packedWeights)
        for mm in 0..<nMels {
            let blocks = bandBlocks[mm]
            let wp = wr + 4 * bandOffset[mm], qp = UnsafeRawPointer(pw + bandStart[mm])
            var acc = SIMD4<Float>(repeating: 0)
            var j = 0
            while j < blocks {
                acc += wp.load(fromByteOffset: 16 &* j, as: SIMD4<Float>.self)
                    * qp.loadUnaligned(fromByteOffset: 16 &* j, as: SIMD4<Float>.self)
                j &+= 1
            }
            let s = (acc[0] + acc[1]) + (acc[2] + acc[3])
            o[mm] = s
            // NaN sticks (an overflowed spectrum gives inf − inf), where max() would drop it and floor the bin.
            peak = s > peak || s.isNaN ? s : peak
        }
    }

    /// |X[k]|^power for k in binLo..<binHi into ws.power, X = real DFT of the n_fft samples in `frame`.
    @inline(__always) func powerSpectrum(_ frame: UnsafeMutablePointer<Float>, _ ws: Workspace) {
        let M = nFFT / 2
        let z = ws.spectrum, pw = ws.power
        ws.fft(z, frame)                                             // Z = FFT_M(x[2n] + i·x[2n+1])
        z[2 * M] = z[0]; z[2 * M + 1] = z[1]                         // Z[M] = Z[0]
        // X[k] = ½[(Z[k] + conj Z[M−k]) − i·W^k (Z[k] − conj Z[M−k])],  W = e^{−2πi/n_fft}
        let zr = UnsafeRawPointer(z)
        var k = binLo
        while k + 4 <= binHi && k + 3 <= M {
            let a = zr.loadUnaligned(fromByteOffset: 8 * k, as: SIMD8<Float>.self)
            let b = zr.loadUnaligned(fromByteOffset: 8 * (M - k - 3), as: SIMD8<Float>.self)
            let ar = a.evenHalf, ai = a.oddHalf
            let br = SIMD4<Float>(b[6], b[4], b[2], b[0])
            let bi = -SIMD4<Float>(b[7], b[5], b[3], b[1])
            let c = UnsafeRawPointer(twCos + k).loadUnaligned(as: SIMD4<Float>.self)
            let s = UnsafeRawPointer(twSin + k).loadUnaligned(as: SIMD4<Float>.self)
            let sr = ar + br, si = ai + bi, dr = ar - br, di = ai - bi
            // −i·(dr + i·di) = di − i·dr; times (c + i·s)
            let xr = sr + c * di + s * dr
            let xi = si - c * dr + s * di
            UnsafeMutableRawPointer(pw + k).storeBytes(of: (xr * xr + xi * xi) * 0.25, as: SIMD4<Float>.self)
            k += 4
        }
        while k < binHi {
            let ar = z[2 * k], ai = z[2 * k + 1], br = z[2 * (M - k)], bi = -z[2 * (M - k) + 1]
            let c = twCos[k], s = twSin[k]
            let sr = ar + br, si = ai + bi, dr = ar - br, di = ai - bi
            let xr = sr + c * di + s * dr
            let xi = si - c * dr + s * di
            pw[k] = (xr * xr + xi * xi) * 0.25
            k += 1
        }
        if powerExponent == 2 { return }
        if powerExponent == 1 {
            for k in binLo..<binHi { pw[k] = pw[k].squareRoot() }
        } else {
            let e = powerExponent
            for k in binLo..<binHi { pw[k] = powf(pw[k].squareRoot(), e) }
        }
    }

    /// numpy.pad(mode="reflect") source index for an out-of-range index j of a length-n signal.
    @inline(__always) static func reflectIndex(_ j: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var r = j % period
        if r < 0 { r += period }
        return r < n ? r : period - r
    }

    /// The sample interval `librosa.effects.trim(y, top_db=topDb, ref=np.max, frame_length=n_fft,
    /// hop_length=hop)` keeps (RMS frames centred, zero-padded, as librosa.feature.rms).
    func nonSilentRange(_ y: UnsafePointer<Float>, _ n: Int, topDb: Double, _ ws: Workspace) -> Range<Int> {
        let fl = nFFT, half = fl / 2
        let nFrames = 1 + (n + 2 * half - fl) / hop
        if ws.prefix.count < n + 1 { ws.prefix = [Double](repeating: 0, count: n + 1) }
        if ws.frameDb.count < nFrames { ws.frameDb = [Float](repeating: 0, count: nFrames) }
        return ws.prefix.withUnsafeMutableBufferPointer { pb -> Range<Int> in
            ws.frameDb.withUnsafeMutableBufferPointer { db -> Range<Int> in
                let pre = pb.baseAddress!
                var acc = 0.0
                pre[0] = 0
                for i in 0..<n { let v = Double(y[i]); acc += v * v; pre[i + 1] = acc }
                // rms = sqrt(mean(|x|^2)) in float32 (RunningEnergy gives the same figures chunk by chunk)
                for i in 0..<nFrames {
                    let a = min(max(i * hop - half, 0), n), b = min(max(i * hop - half + fl, 0), n)
                    db[i] = Float((pre[b] - pre[a]) / Double(fl)).squareRoot()
                }
                return voicedRange(rms: UnsafeBufferPointer(rebasing: db[0..<nFrames]), signalLength: n, topDb: topDb)
            }
        }
    }

    func voicedRange(rms: [Float], signalLength n: Int, topDb: Double) -> Range<Int> {
        rms.withUnsafeBufferPointer { voicedRange(rms: $0, signalLength: n, topDb: topDb) }
    }

    /// The trim's interval from the RMS of each frame: from the first to the last frame louder than
    /// `topDb` below the loudest; amplitude_to_db(rms, ref=max) squares the RMS again.
    func voicedRange(rms: UnsafeBufferPointer<Float>, signalLength n: Int, topDb: Double) -> Range<Int> {
        var maxRms: Float = 0
        for r in rms { maxRms = max(maxRms, r) }
        // Samples too large to square in float32 leave nothing to measure: keep all, and the spectrum
        // refuses them for what they are (spectrumOverflow) rather than as "0 samples" of voice.
        guard (maxRms * maxRms).isFinite else { return 0..<n }
        let refDb = Float(10) * log10f(max(Float(1e-10), maxRms * maxRms))
        let thr = -Float(topDb)
        var firstF = -1, lastF = -1
        for i in rms.indices {
            let d = Float(10) * log10f(max(Float(1e-10), rms[i] * rms[i])) - refDb
            if d > thr { if firstF < 0 { firstF = i }; lastF = i }
        }
        if firstF < 0 { return 0..<0 }
        let start = firstF * hop
        let end = min(n, (lastF + 1) * hop)
        return start < end ? start..<end : start..<start
    }
}
