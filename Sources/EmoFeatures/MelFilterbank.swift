// Mel filters and analysis windows, computed the way librosa 0.11 / scipy compute them
// (float64 arithmetic, same operation order, rounded to float32 where librosa stores float32).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum MelScale {
    // Slaney (Auditory Toolbox) constants, as librosa.core.convert.
    static let fSp = 200.0 / 3
    static let minLogHz = 1000.0
    static let minLogMel = minLogHz / fSp        // (min_log_hz - f_min) / f_sp with f_min = 0
    static let logstep = log(6.4) / 27.0

    /// `librosa.hz_to_mel`.
    public static func hzToMel(_ f: Double, htk: Bool) -> Double {
        if htk { return 2595.0 * log10(1.0 + f / 700.0) }
        var mel = (f - 0.0) / fSp
        if f >= minLogHz { mel = minLogMel + log(f / minLogHz) / logstep }
        return mel
    }

    /// `librosa.mel_to_hz`.
    public static func melToHz(_ m: Double, htk: Bool) -> Double {
        if htk { return 700.0 * (pow(10.0, m / 2595.0) - 1.0) }
        var f = 0.0 + fSp * m
        if m >= minLogMel { f = minLogHz * exp(logstep * (m - minLogMel)) }
        return f
    }

    /// `np.linspace(start, stop, n)` exactly: i·step + start, last element = stop.
    static func linspace(_ start: Double, _ stop: Double, _ n: Int) -> [Double] {
        guard n > 1 else { return n == 1 ? [start] : [] }
        let step = (stop - start) / Double(n - 1)
        var y = (0..<n).map { Double($0) * step + start }
        y[n - 1] = stop
        return y
    }

    /// `librosa.mel_frequencies(n_mels, fmin=, fmax=, htk=)`.
    public static func melFrequencies(count: Int, fmin: Double, fmax: Double, htk: Bool) -> [Double] {
        linspace(hzToMel(fmin, htk: htk), hzToMel(fmax, htk: htk), count).map { melToHz($0, htk: htk) }
    }

    /// `librosa.fft_frequencies(sr=, n_fft=)` (= `np.fft.rfftfreq(n_fft, 1/sr)`).
    public static func fftFrequencies(sampleRate: Int, nFFT: Int) -> [Double] {
        let val = 1.0 / (Double(nFFT) * (1.0 / Double(sampleRate)))
        return (0...(nFFT / 2)).map { Double($0) * val }
    }
}

/// `librosa.filters.mel(sr=, n_fft=, n_mels=, fmin=, fmax=, htk=, norm=, dtype=float32)`, plus the
/// nonzero band of each filter (the projection only visits those bins).
public struct MelFilterbank: Sendable, Equatable {
    public let nMels: Int
    /// n_fft / 2 + 1.
    public let nBins: Int
    /// Dense weights, row-major [nMels, nBins], float32 exactly as librosa returns them.
    public let weights: [Float]
    /// First nonzero bin of each filter and the number of bins up to its last nonzero one
    /// (count 0: an empty filter, which librosa warns about; its output is 0 power).
    public let bandStart: [Int]
    public let bandCount: [Int]

    public init(sampleRate: Int, nFFT: Int, nMels: Int, fmin: Double, fmax: Double?, htk: Bool, norm: MelNorm) {
        let nBins = nFFT / 2 + 1
        let fftFreqs = MelScale.fftFrequencies(sampleRate: sampleRate, nFFT: nFFT)
        let melF = MelScale.melFrequencies(count: nMels + 2, fmin: fmin, fmax: fmax ?? Double(sampleRate) / 2, htk: htk)
        var w = [Float](repeating: 0, count: nMels * nBins)
        var starts = [Int](repeating: 0, count: nMels)
        var counts = [Int](repeating: 0, count: nMels)
        for i in 0..<nMels {
            let fdiffLo = melF[i + 1] - melF[i]
            let fdiffHi = melF[i + 2] - melF[i + 1]
            let enorm = 2.0 / (melF[i + 2] - melF[i])
            var first = -1, last = -1
            for k in 0..<nBins {
                // ramps = mel_f[:, None] - fftfreqs; lower = -ramps[i] / fdiff[i]; upper = ramps[i+2] / fdiff[i+1]
                let lower = -(melF[i] - fftFreqs[k]) / fdiffLo
                let upper = (melF[i + 2] - fftFreqs[k]) / fdiffHi
                var v = Float(max(0, min(lower, upper)))     // stored into a float32 array
                if norm == .slaney { v = Float(Double(v) * enorm) }  // float32 *= float64 → float32
                w[i * nBins + k] = v
                if v != 0 { if first < 0 { first = k }; last = k }
            }
            if first >= 0 { starts[i] = first; counts[i] = last - first + 1 }
        }
        self.nMels = nMels
        self.nBins = nBins
        self.weights = w
        self.bandStart = starts
        self.bandCount = counts
    }

    public init(_ p: LogMelParameters) {
        self.init(sampleRate: p.sampleRate, nFFT: p.nFFT, nMels: p.nMels, fmin: p.fmin, fmax: p.fmax,
                  htk: p.htk, norm: p.melNorm)
    }

    /// The first filter of `p` with no nonzero weight (librosa warns of it; its band would be silent),
    /// found without building the weights, so a validation of absurd sizes stays cheap.
    public static func firstEmptyFilter(_ p: LogMelParameters) -> Int? {
        let fftFreqs = MelScale.fftFrequencies(sampleRate: p.sampleRate, nFFT: p.nFFT)
        let melF = MelScale.melFrequencies(count: p.nMels + 2, fmin: p.fmin, fmax: p.effectiveFmax, htk: p.htk)
        for i in 0..<p.nMels {
            let fdiffLo = melF[i + 1] - melF[i], fdiffHi = melF[i + 2] - melF[i + 1]
            let filled = fftFreqs.contains { f in
                Float(max(0, min(-(melF[i] - f) / fdiffLo, (melF[i + 2] - f) / fdiffHi))) != 0
            }
            if !filled { return i }
        }
        return nil
    }

    /// Number of filters with no nonzero weight.
    public var emptyFilterCount: Int { bandCount.filter { $0 == 0 }.count }
}

public enum AnalysisWindow {
    /// `scipy.signal.get_window(kind, length, fftbins=True)` (periodic), as float32.
    public static func make(_ kind: WindowKind, length: Int) -> [Float] {
        precondition(length >= 0)
        if length <= 1 || kind == .rectangular { return [Float](repeating: 1, count: length) }
        let a0: Double = kind == .hann ? 0.5 : 0.54
        let a1 = 1.0 - a0
        // general_cosine(M + 1, [a0, a1]) truncated: fac = linspace(-pi, pi, M + 1)
        let fac = MelScale.linspace(-Double.pi, Double.pi, length + 1)
        return (0..<length).map { i in Float((0.0 + a0 * cos(0.0 * fac[i])) + a1 * cos(fac[i])) }
    }

    /// The window of `p`, zero-padded (centred) to n_fft, as `librosa.util.pad_center`.
    public static func padded(_ p: LogMelParameters) -> [Float] {
        let w = make(p.window, length: p.winLength)
        var out = [Float](repeating: 0, count: p.nFFT)
        let lpad = (p.nFFT - p.winLength) / 2
        for i in 0..<p.winLength { out[lpad + i] = w[i] }
        return out
    }
}
