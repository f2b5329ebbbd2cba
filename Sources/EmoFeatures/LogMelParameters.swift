// LogMelParameters: every knob of the log-mel computation, with librosa 0.11's meaning.
//
// JSON form (Codable): snake_case keys named as in librosa (`sample_rate`, `n_fft`, `win_length`,
// `hop_length`, `window`, `center`, `pad_mode`, `n_mels`, `fmin`, `fmax`, `mel_norm`, `htk`,
// `power`, `db_ref`, `db_amin`, `top_db`, `frames`, `crop`, `trim_db`). Decoding starts from the
// preset named by the optional `preset` key (default `speech`) and overrides the keys present, so
// `{"preset": "reference", "top_db": null}` is the reference preset without top_db clipping.
// Encoding writes every field (nil as null), so a decode of an encode is the identity.

/// Window function applied to each frame. Periodic ("DFT-even"), as
/// `scipy.signal.get_window(name, win_length, fftbins=True)`, which librosa uses.
import EmoCore

public enum WindowKind: String, Codable, Hashable, Sendable, CaseIterable {
    case hann
    case hamming
    /// scipy's `boxcar` (all ones).
    case rectangular
}

/// Padding of the signal's edges when `center` is true (numpy.pad modes).
public enum PadMode: String, Codable, Hashable, Sendable, CaseIterable {
    case constant
    case reflect
}

/// Normalisation of the mel filters (`librosa.filters.mel(norm=)`): `slaney` divides each
/// triangle by its width in Hz (area normalisation), `none` leaves peaks at 1.
public enum MelNorm: String, Codable, Hashable, Sendable, CaseIterable {
    case slaney
    case none
}

/// Which `frames`-long window of a longer clip is kept.
public enum CropMode: String, Codable, Hashable, Sendable, CaseIterable {
    /// The first `frames` frames.
    case start
    /// The `frames` frames centred on the voiced part: the midpoint of the sample interval that
    /// `librosa.effects.trim(y, top_db: trim_db ?? 60, ref: max, frame_length: n_fft,
    /// hop_length: hop_length)` keeps, converted to a frame index (see `LogMelExtractor`).
    case center
}

public struct LogMelParameters: Codable, Equatable, Hashable, Sendable {
    /// Sample rate the audio must already have (Hz).
    public var sampleRate: Int
    /// FFT size (even; bins = n_fft / 2 + 1).
    public var nFFT: Int
    /// Window length (≤ n_fft); the window is zero-padded to n_fft, centred.
    public var winLength: Int
    /// Hop between frames, in samples.
    public var hopLength: Int
    public var window: WindowKind
    /// Frame t centred at sample t·hop (signal padded by n_fft/2 on each side).
    public var center: Bool
    public var padMode: PadMode
    public var nMels: Int
    /// Lowest / highest mel band edge in Hz; fmax nil = sample_rate / 2.
    public var fmin: Double
    public var fmax: Double?
    public var melNorm: MelNorm
    /// HTK mel scale instead of Slaney's (Auditory Toolbox) scale.
    public var htk: Bool
    /// Exponent of the magnitude spectrogram (2 = power).
    public var power: Double
    /// `librosa.power_to_db(ref=, amin=, top_db=)`.
    public var dbRef: Double
    public var dbAmin: Double
    public var topDb: Double?
    /// Output frame count (crop or pad to it); nil keeps every frame.
    public var frames: Int?
    public var crop: CropMode
    /// If set, leading and trailing silence is trimmed first, as `librosa.effects.trim` with this
    /// top_db, ref = max, frame_length = n_fft, hop_length = hop_length.
    public var trimDb: Double?

    public init(sampleRate: Int = 16_000, nFFT: Int = 512, winLength: Int? = nil, hopLength: Int = 160,
                window: WindowKind = .hann, center: Bool = true, padMode: PadMode = .constant,
                nMels: Int = 64, fmin: Double = 0, fmax: Double? = nil, melNorm: MelNorm = .slaney,
                htk: Bool = false, power: Double = 2, dbRef: Double = 1, dbAmin: Double = 1e-10,
                topDb: Double? = 80, frames: Int? = nil, crop: CropMode = .start, trimDb: Double? = nil) {
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.winLength = winLength ?? nFFT
        self.hopLength = hopLength
        self.window = window
        self.center = center
        self.padMode = padMode
        self.nMels = nMels
        self.fmin = fmin
        self.fmax = fmax
        self.melNorm = melNorm
        self.htk = htk
        self.power = power
        self.dbRef = dbRef
        self.dbAmin = dbAmin
        self.topDb = topDb
        self.frames = frames
        self.crop = crop
        self.trimDb = trimDb
    }

    /// The default: 16 kHz, 25 ms Hann window (400) in a 512 FFT, 10 ms hop, 64 mels, every frame
    /// (the model scores a clip whole, window by window: `WindowPolicy`).
    public static let speech = LogMelParameters(sampleRate: 16_000, nFFT: 512, winLength: 400, hopLength: 160,
                                                nMels: 64, frames: nil)
    /// librosa's defaults at 16 kHz: n_fft 2048, hop 512, 64 mels, 300 frames.
    public static let reference = LogMelParameters(sampleRate: 16_000, nFFT: 2048, winLength: 2048, hopLength: 512,
                                                   nMels: 64, frames: 300)

    public static let presetNames = ["speech", "reference"]

    public static func preset(_ name: String) throws -> LogMelParameters {
        switch name {
        case "speech": return .speech
        case "reference": return .reference
        default:
            throw InvalidParameter(key: "preset", value: "\"\(name)\"", allowed: "expected one of \(presetNames.map { "'\($0)'" }.joined(separator: ", "))")
        }
    }

    /// fmax with nil resolved to the Nyquist frequency.
    public var effectiveFmax: Double { fmax ?? Double(sampleRate) / 2 }

    /// The largest values accepted: beyond them a record would cost memory without bound.
    public static let maxSampleRate = 384_000
    public static let maxFFT = 1 << 16
    public static let maxMels = 512
    public static let maxFrames = 100_000

    /// Throws `InvalidParameter` (naming the key) for a value or combination the extractor cannot honour.
    public func validate() throws {
        func bad(_ key: String, _ value: Any?, _ allowed: String, bounds: [String] = []) -> InvalidParameter {
            InvalidParameter(key: key, value: value.map(InvalidParameter.shown) ?? "null", allowed: allowed, bounds: bounds)
        }
        guard (1000...Self.maxSampleRate).contains(sampleRate) else {
            throw bad("sample_rate", sampleRate, "an integer from 1000 to \(Self.maxSampleRate) Hz")
        }
        guard nFFT >= 8, nFFT <= Self.maxFFT, nFFT % 2 == 0 else {
            throw bad("n_fft", nFFT, "an even integer from 8 to \(Self.maxFFT)")
        }
        guard winLength >= 1, winLength <= nFFT else {
            throw bad("win_length", winLength, "an integer from 1 to n_fft (\(nFFT))", bounds: ["n_fft"])
        }
        guard hopLength >= 1, hopLength <= sampleRate else {
            throw bad("hop_length", hopLength, "an integer from 1 to sample_rate (\(sampleRate))", bounds: ["sample_rate"])
        }
        guard (1...Self.maxMels).contains(nMels) else { throw bad("n_mels", nMels, "an integer from 1 to \(Self.maxMels)") }
        guard fmin.isFinite, fmin >= 0 else { throw bad("fmin", fmin, "a number ≥ 0 Hz") }
        let nyquist = Double(sampleRate) / 2
        if let fmax { guard fmax.isFinite, fmax > fmin, fmax <= nyquist else {
            throw bad("fmax", fmax, "null or a number in (fmin, sample_rate/2] = (\(fmin), \(nyquist)]", bounds: ["fmin", "sample_rate"])
        } } else if !(nyquist > fmin) { throw bad("fmin", fmin, "a number below sample_rate/2 (\(nyquist))", bounds: ["sample_rate"]) }
        if let empty = MelFilterbank.firstEmptyFilter(self) {
            throw bad("n_mels", nMels, "at most as many mel bands as n_fft \(nFFT) can fill between \(fmin) and \(effectiveFmax) Hz at \(sampleRate) Hz: band \(empty) has no FFT bin (use fewer n_mels\(fmin > 0 || effectiveFmax < nyquist ? ", a larger n_fft or a wider fmin-fmax span" : " or a larger n_fft"))", bounds: ["n_fft", "sample_rate", "fmin", "fmax"])
        }
        // Spectrogram magnitudes are raised to it as 32-bit floats: near 0 every bin is 1, whatever the sound.
        guard power.isFinite, power >= 0.1, power <= 8 else {
            throw bad("power", power, "a number from 0.1 to 8 (1 magnitude, 2 power; near 0 every bin is 1 whatever the sound)")
        }
        guard dbRef.isFinite, dbRef > 0 else { throw bad("db_ref", dbRef, "a number > 0") }
        // Used as a 32-bit float: a smaller value would round to 0 and make silent bins -inf dB. It is the
        // floor for silent bins: from 1 up it clips speech's own power, and far above it every value is one.
        guard dbAmin.isFinite, dbAmin >= Double(Float.leastNormalMagnitude), dbAmin < 1 else {
            throw bad("db_amin", dbAmin, "a number from 1.2e-38 (it is used as a 32-bit float) to below 1 (a floor for silent bins; from 1 up it clips speech itself)")
        }
        // 0 would clip every value to the loudest: one constant log-mel.
        // Used as a 32-bit float too: 1e-320 would round to 0, 1e39 to infinity.
        if let t = topDb { guard t.isFinite, t >= 1e-3, t <= 1e4 else {
            throw bad("top_db", t, "null or a number from 0.001 to 10000 dB (0 leaves every value at the loudest)")
        } }
        if let f = frames { guard (1...Self.maxFrames).contains(f) else {
            throw bad("frames", f, "null (every frame) or an integer from 1 to \(Self.maxFrames)")
        } }
        // Compared as a 32-bit float as well: 1e-46 rounds to 0, which keeps no frame (not even the loudest).
        if let t = trimDb { guard t.isFinite, t >= 1e-3, t <= 1e4 else {
            throw bad("trim_db", t, "null or a number from 0.001 to 10000 dB (0 trims away every frame)")
        } }
    }

    public enum CodingKeys: String, CodingKey {
        case preset
        case sampleRate = "sample_rate", nFFT = "n_fft", winLength = "win_length", hopLength = "hop_length"
        case window, center, padMode = "pad_mode", nMels = "n_mels", fmin, fmax, melNorm = "mel_norm", htk
        case power, dbRef = "db_ref", dbAmin = "db_amin", topDb = "top_db", frames, crop, trimDb = "trim_db"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // null names no preset: refused, like an unknown name, rather than read as the default.
        if c.contains(.preset), try c.decodeNil(forKey: .preset) {
            throw InvalidParameter(key: "preset", value: "null", allowed: "expected one of \(Self.presetNames.map { "'\($0)'" }.joined(separator: ", "))")
        }
        var p = try LogMelParameters.preset(try c.decodeIfPresent(String.self, forKey: .preset) ?? "speech")
        func take<T: Decodable>(_ key: CodingKeys, _ into: inout T) throws {
            if c.contains(key) { into = try c.decode(T.self, forKey: key) }
        }
        func takeOptional<T: Decodable>(_ key: CodingKeys, _ into: inout T?) throws {
            if c.contains(key) { into = try c.decodeNil(forKey: key) ? nil : try c.decode(T.self, forKey: key) }
        }
        try take(.sampleRate, &p.sampleRate)
        try take(.nFFT, &p.nFFT)
        try take(.winLength, &p.winLength)
        try take(.hopLength, &p.hopLength)
        try take(.window, &p.window)
        try take(.center, &p.center)
        try take(.padMode, &p.padMode)
        try take(.nMels, &p.nMels)
        try take(.fmin, &p.fmin)
        try takeOptional(.fmax, &p.fmax)
        try take(.melNorm, &p.melNorm)
        try take(.htk, &p.htk)
        try take(.power, &p.power)
        try take(.dbRef, &p.dbRef)
        try take(.dbAmin, &p.dbAmin)
        try takeOptional(.topDb, &p.topDb)
        try takeOptional(.frames, &p.frames)
        try take(.crop, &p.crop)
        try takeOptional(.trimDb, &p.trimDb)
        self = p
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(nFFT, forKey: .nFFT)
        try c.encode(winLength, forKey: .winLength)
        try c.encode(hopLength, forKey: .hopLength)
        try c.encode(window, forKey: .window)
        try c.encode(center, forKey: .center)
        try c.encode(padMode, forKey: .padMode)
        try c.encode(nMels, forKey: .nMels)
        try c.encode(fmin, forKey: .fmin)
        // The Nyquist frequency written out is null's meaning: one canonical form, so both share the cache key.
        try c.encode(fmax == Double(sampleRate) / 2 ? nil : fmax, forKey: .fmax)  // Optional.encode writes null for nil
        try c.encode(melNorm, forKey: .melNorm)
        try c.encode(htk, forKey: .htk)
        try c.encode(power, forKey: .power)
        try c.encode(dbRef, forKey: .dbRef)
        try c.encode(dbAmin, forKey: .dbAmin)
        try c.encode(topDb, forKey: .topDb)
        try c.encode(frames, forKey: .frames)
        try c.encode(crop, forKey: .crop)
        try c.encode(trimDb, forKey: .trimDb)
    }
}
