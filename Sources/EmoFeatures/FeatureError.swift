import EmoMedia

/// Why a clip (or a parameter set) cannot give a feature tensor. Never a garbage tensor instead.
public enum FeatureError: Error, Equatable, CustomStringConvertible {
    /// No samples at all.
    case emptyAudio
    /// Every sample is exactly zero (digital silence): the log-mel would be a constant floor.
    case silentAudio
    /// Samples there, but no mel bin's power reaches the floor (`db_amin`): the log-mel would be that
    /// floor everywhere, as for digital silence (a recording scaled by 1e-40, a lone 1 in 16-bit zeros).
    case inaudible(peakPower: Float, floor: Float)
    /// Fewer samples than one window (win_length when centred, n_fft otherwise).
    case tooShort(samples: Int, needed: Int)
    /// Trimming silence (`trim_db`) kept fewer samples than one window: the recording is long enough, the trim is not.
    case trimmedTooShort(kept: Int, of: Int, needed: Int, topDb: Double)
    /// A sample is NaN or ±infinity.
    case notFinite
    /// The samples are finite but so large that their power spectrum overflows float32: float audio
    /// holds samples within about ±1, so such a file is not audio as its format means it.
    case spectrumOverflow
    /// The parameters (or an argument) cannot be honoured; the text says which and why.
    case invalidParameter(String)
    /// The samples are not at the extractor's sample rate (resample first).
    case sampleRateMismatch(expected: Int, actual: Int)
    /// A signal read in several passes gave a different number of samples on a later pass (the file
    /// changed while it was read).
    case signalChanged(expected: Int, got: Int)
    /// More log-mel frames than one tensor may hold (`LogMelExtractor.maxValues`): a small file that
    /// decodes to days of audio must not take the memory it would need. `frames` is nil when reading
    /// stopped as soon as the bound was passed, so the total is not known.
    case tooLong(frames: Int?, maximum: Int, secondsPerFrame: Double)
    /// The computation was stopped on request (`StopCheck`): not a fault of the audio.
    case stopped

    public var description: String {
        switch self {
        case .emptyAudio: return "empty audio: no samples"
        case .silentAudio: return "silent audio: every sample is zero"
        case let .inaudible(peak, floor):
            return "inaudible audio: its loudest mel bin has power \(peak), below the floor audio.db_amin = \(floor), so the log-mel would be one constant value"
        case let .tooShort(samples, needed):
            return "audio too short: \(samples) samples at the analysis rate (after resampling), at least \(needed) needed (one analysis window)"
        case let .trimmedTooShort(kept, of, needed, topDb):
            return "audio too short once trimmed: audio.trim_db = \(topDb) kept \(kept) of its \(of) samples at the analysis rate, fewer than the "
                + "\(needed) one analysis window needs (a larger trim_db keeps more; center: true needs win_length samples, not n_fft)"
        case .notFinite: return "audio contains NaN or infinite samples"
        case .spectrumOverflow:
            return "samples too large for a 32-bit float spectrum (|x| of about 1e17 or more; float audio holds samples within about ±1)"
        case let .invalidParameter(s): return "invalid parameter: \(s)"
        case let .sampleRateMismatch(expected, actual):
            return "sample rate mismatch: audio at \(actual) Hz, extractor expects \(expected) Hz"
        case let .signalChanged(expected, got):
            return "the audio changed while it was read: \(got) samples where an earlier pass had \(expected)"
        case let .tooLong(frames, maximum, secondsPerFrame):
            let bound = "\(maximum) (\(Self.seconds(Double(maximum) * secondsPerFrame)))"
            // The defaults hold 2.9 hours: a bound of minutes is the settings', not the recording's.
            let settings = Double(maximum) * secondsPerFrame < 600
                ? "; so short a bound comes from the settings: audio.hop_length, sample_rate and n_mels (a larger hop, a lower rate or fewer mels hold more)" : ""
            guard let frames else {
                return "audio too long: more than the \(bound) log-mel frames one tensor may hold; reading stopped there" + settings
            }
            return "audio too long: \(frames) log-mel frames (\(Self.seconds(Double(frames) * secondsPerFrame))), at most \(bound) in one tensor" + settings
        case .stopped: return "log-mel stopped on request"
        }
    }

    /// A duration with the figures it needs: whole seconds from 10 s on, else 3 significant digits
    /// (a hop of 1 sample at 384 kHz makes the bound 0.34 s, which whole seconds showed as "0 s").
    static func seconds(_ value: Double) -> String {
        guard value.isFinite else { return "\(value) s" }
        return value >= 10 ? "\(Int(value.rounded(.down))) s" : String(format: "%.3g s", value)
    }
}

extension StopCheck {
    /// Whether `error` says work ended because a `StopCheck` asked (decoding, a log-mel, a face
    /// track), rather than failed.
    public static func endedWork(_ error: Error) -> Bool {
        if case .stopped? = error as? MediaError { return true }
        if case .stopped? = error as? FeatureError { return true }
        if case .media(.stopped)? = error as? FaceError { return true }
        return false
    }
}
