// Mono float audio at a requested rate, from WAV (libsndfile) or any container libav reads.

public struct DecodedAudio: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    public var sourceSampleRate: Int
    public var sourceChannels: Int
    public var durationSeconds: Double

    public init(samples: [Float], sampleRate: Int, sourceSampleRate: Int, sourceChannels: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.sourceSampleRate = sourceSampleRate
        self.sourceChannels = sourceChannels
        self.durationSeconds = sampleRate > 0 ? Double(samples.count) / Double(sampleRate) : 0
    }
}

/// What decoded audio must satisfy to be usable; failing it is a MediaError, like a damaged file.
public struct AudioRequirements: Sendable, Equatable {
    public var minimumSamples: Int
    public var rejectSilence: Bool

    public init(minimumSamples: Int = 1, rejectSilence: Bool = true) {
        self.minimumSamples = minimumSamples
        self.rejectSilence = rejectSilence
    }

    public static let `default` = AudioRequirements()
}

public enum AudioDecoder {
    /// "soxr" when libswresample has libsoxr (Debian 12 does), else "swr" (its own high-quality filter).
    public static var resamplerEngine: String { MonoResampler.engine }

    /// Mono float samples at `sampleRate`, all in memory (`MonoAudioFile` reads them chunk by chunk): wav via libsndfile (any chunk layout; channels averaged),
    /// anything else via libavformat/libavcodec from its audio stream (the one marked default, else the first). Resampling is done by
    /// libswresample with soxr at very high precision, single-threaded, so output is deterministic.
    /// Integer PCM at the source rate comes back exact: 16-bit samples are n/32768.
    public static func decodeMono(path: String, sampleRate: Int,
                                  requirements: AudioRequirements = .default) throws(MediaError) -> DecodedAudio {
        guard (1...768_000).contains(sampleRate) else {
            throw .invalidArgument(path: path, reason: "sample rate \(sampleRate) Hz is out of range")
        }
        var samples: [Float] = []
        let format = try MonoAudioFile(path: path, sampleRate: sampleRate, requirements: requirements)
            .pass { samples.append(contentsOf: $0) }
        return DecodedAudio(samples: samples, sampleRate: sampleRate,
                            sourceSampleRate: format.sourceSampleRate, sourceChannels: format.sourceChannels)
    }

    /// Rejects audio that would poison features: non-finite samples, too few samples, digital silence.
    public static func check(_ audio: DecodedAudio, path: String,
                             requirements: AudioRequirements) throws(MediaError) {
        if audio.samples.contains(where: { !$0.isFinite }) { throw .containsNaN(path: path) }
        if audio.samples.count < requirements.minimumSamples {
            throw .tooShort(path: path, samples: audio.samples.count, minimum: requirements.minimumSamples)
        }
        if requirements.rejectSilence, !audio.samples.isEmpty, audio.samples.allSatisfy({ $0 == 0 }) {
            throw .silentAudio(path: path)
        }
    }
}
