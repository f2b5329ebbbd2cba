// A media file's audio decoded chunk by chunk, so a long recording never has to be in memory whole.

/// What one pass over a file's audio found.
public struct MonoAudioFormat: Sendable, Equatable {
    public var sourceSampleRate: Int
    public var sourceChannels: Int
    /// Mono samples delivered, at the target rate.
    public var samples: Int
}

/// A file's audio as mono Float at `sampleRate` (the same samples `AudioDecoder.decodeMono` returns),
/// decoded again on each `pass` and handed over in chunks. A caller that needs to look twice (the loudest
/// frame first, then the frames it keeps) decodes twice and holds only what it keeps.
public final class MonoAudioFile {
    public let path: String
    public let sampleRate: Int
    public let requirements: AudioRequirements
    /// Polled between chunks: a pass asked to stop throws `MediaError.stopped`.
    public let stopCheck: StopCheck
    /// What the last complete pass found; nil before one.
    public private(set) var format: MonoAudioFormat?

    public init(path: String, sampleRate: Int, requirements: AudioRequirements = .default, stop: StopCheck = .never) {
        self.path = path
        self.sampleRate = sampleRate
        self.requirements = requirements
        stopCheck = stop
    }

    /// Decodes the whole file, handing `body` consecutive chunks of mono samples (each at most a few tens
    /// of thousands of samples), then checks `requirements` over all of them, with the errors of
    /// `AudioDecoder.check`. Chunks end where the decoder's buffers end; the samples do not depend on it.
    /// `until` is asked between chunks as well as `stopCheck`; a pass either of them stops throws `MediaError.stopped`.
    @discardableResult
    public func pass(until extra: StopCheck = .never, _ body: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) -> MonoAudioFormat {
        guard (1...768_000).contains(sampleRate) else {
            throw .invalidArgument(path: path, reason: "sample rate \(sampleRate) Hz is out of range")
        }
        var checks = SampleChecks()
        func deliver(_ chunk: UnsafeBufferPointer<Float>) {
            checks.add(chunk)
            body(chunk)
        }
        let own = stopCheck
        let stop = StopCheck { own.isRequested || extra.isRequested }
        var format: MonoAudioFormat
        if FileChecks.isWavPath(path) {
            format = try WavStream.decode(path: path, sampleRate: sampleRate, stop: stop, deliver)
        } else {
            format = try LibavAudio.decode(path: path, sampleRate: sampleRate, stop: stop, deliver)
        }
        do { try checks.verify(path: path, requirements: requirements) } catch .silentAudio {
            throw .silentAudio(path: path, channels: format.sourceChannels)
        }
        format.samples = checks.count
        self.format = format
        return format
    }
}

/// The figures `AudioDecoder.check` looks at, gathered chunk by chunk.
struct SampleChecks {
    private(set) var count = 0
    private var nonFinite = false
    private var nonzero = false

    mutating func add(_ chunk: UnsafeBufferPointer<Float>) {
        count += chunk.count
        for v in chunk {
            if !v.isFinite { nonFinite = true }
            if v != 0 { nonzero = true }
        }
    }

    func verify(path: String, requirements: AudioRequirements) throws(MediaError) {
        if nonFinite { throw .containsNaN(path: path) }
        if count < requirements.minimumSamples {
            throw .tooShort(path: path, samples: count, minimum: requirements.minimumSamples)
        }
        if requirements.rejectSilence, count > 0, !nonzero { throw .silentAudio(path: path) }
    }
}

/// WAV through libsndfile, mixed and resampled chunk by chunk.
enum WavStream {
    static func decode(path: String, sampleRate: Int, chunkFrames: Int = 16_384, stop: StopCheck = .never,
                       _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) -> MonoAudioFormat {
        let input: SndFileInput
        switch try SndFileInput.open(path) {
        case .sndfile(let opened): input = opened
        case .libav(let refusal):
            // Libav's own error once it has delivered samples; libsndfile's refusal when it cannot start.
            var delivered = false
            do {
                return try LibavAudio.decode(path: path, sampleRate: sampleRate, stop: stop) { chunk in
                    delivered = true
                    deliver(chunk)
                }
            } catch {
                if delivered || error == .stopped(path: path) { throw error }
                // A coding libsndfile does not know (G.726): libav's own error, unless libav has no decoder for it either.
                if case .unsupportedCodec = refusal, !error.isNoDecoder { throw error }
                throw refusal
            }
        }
        let channels = Int(input.info.channels), sourceRate = Int(input.info.samplerate)
        guard channels > 0 else { throw .notMedia(path: path, reason: "WAV declares 0 channels") }
        let mixer = WavMixer(channels: channels, sourceRate: sourceRate, targetRate: sampleRate, path: path)
        // A read error is reported before a mixing error, as when the whole file was read first.
        try input.readChunks(chunkFrames: chunkFrames, stop: stop) { mixer.mix($0, deliver) }
        try mixer.finish(deliver)
        return MonoAudioFormat(sourceSampleRate: sourceRate, sourceChannels: channels, samples: 0)
    }
}
