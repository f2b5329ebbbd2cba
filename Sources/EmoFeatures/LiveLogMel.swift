// The log-mel of audio that is still arriving (a pipe, a network stream, a capture device): each
// frame is computed as soon as the samples it reads are in, and handed on in dB.
//
// Every frame's mel power is the one `compute(samples:)` gives for the whole signal (same framing,
// same window, same FFT): a frame that reads past the end (centred padding) waits for `finish`.
// What a whole-signal extractor knows and a live one cannot is the clip's peak, which sets the
// top_db floor, and the voiced interval the trim and the centre crop use. So the frames are handed
// on before the floor (`peakDb` is the running peak, for the caller to floor with), and trim_db,
// frames and crop do not apply: a stream is analysed frame by frame from its first sample.
// Memory: one n_fft of samples behind the next frame, plus one chunk.

public final class LiveLogMel {
    public let extractor: LogMelExtractor
    private let ws: LogMelExtractor.Workspace
    /// Samples from signal index `bufferStart` on.
    private var buffer: [Float] = []
    private var bufferStart = 0
    private var received = 0
    /// The next frame to compute.
    private var next = 0
    private var row: [Float]
    private var peakPower: Float = 0
    private var finished = false

    public init(_ parameters: LogMelParameters) throws {
        extractor = try LogMelExtractor(parameters)
        ws = try extractor.takeWorkspace()
        row = [Float](repeating: 0, count: parameters.nMels)
    }

    deinit { extractor.giveBack(ws) }

    public var nMels: Int { extractor.nMels }
    /// Samples received so far.
    public var sampleCount: Int { received }
    /// Frames handed on so far.
    public var frameCount: Int { next }
    public var secondsPerFrame: Double { Double(extractor.hop) / Double(extractor.parameters.sampleRate) }
    /// The loudest mel bin so far, in dB (the top_db floor of a whole clip is measured from its peak).
    public var peakDb: Float { extractor.dB(peakPower) }
    /// Whether any sound has arrived: a mel bin's power above `db_amin`, as a file's log-mel needs. Until then
    /// every frame is the floor's one value (digital silence, or a lone least-significant bit), with nothing to
    /// classify: a file of it is refused as all zero or inaudible, and its windows are not scored.
    public var heardSound: Bool { peakPower > extractor.aminF }
    /// `top_db` of the parameters: how far below the peak values are floored.
    public var topDb: Float? { extractor.parameters.topDb.map(Float.init) }

    /// Takes the next samples; `frame` gets each frame they complete (n_mels dB values, unfloored).
    /// Throws on a NaN or infinite sample, which would poison every later frame.
    public func add(_ chunk: UnsafeBufferPointer<Float>, frame: ([Float]) -> Void) throws {
        guard !finished, !chunk.isEmpty else { return }
        if chunk.contains(where: { !$0.isFinite }) { throw FeatureError.notFinite }
        buffer.append(contentsOf: chunk)
        received += chunk.count
        try computeFrames(through: nil, frame)
        dropSamplesBehind()
    }

    /// The stream ended: the frames that read past its end (zero or reflect padding, as for a file).
    public func finish(frame: ([Float]) -> Void) throws {
        guard !finished else { return }
        finished = true
        guard received > 0 else { return }
        // As short a signal as a file's log-mel refuses is refused whole here too.
        let needed = extractor.parameters.center ? extractor.parameters.winLength : extractor.nFFT
        guard received >= needed else { throw FeatureError.tooShort(samples: received, needed: needed) }
        try computeFrames(through: extractor.frameCount(received), frame)
    }

    /// Frames from `next` on: up to `total` (the stream's end), else while their samples are in.
    private func computeFrames(through total: Int?, _ frame: ([Float]) -> Void) throws {
        let ex = extractor
        while total.map({ next < $0 }) ?? ready(next) {
            let origin = ex.frameOrigin(next)
            buffer.withUnsafeBufferPointer { samples in
                guard let base = samples.baseAddress else { return }
                ex.fillFrame(ws, origin: origin, base, from: bufferStart, length: received)
            }
            row.withUnsafeMutableBufferPointer { out in
                guard let base = out.baseAddress else { return }
                ex.melProject(ws, into: base, peak: &peakPower)
            }
            // finite samples whose spectrum overflows float32 (|x| ≳ 1e17) would give inf/NaN dB
            guard peakPower.isFinite else { throw FeatureError.spectrumOverflow }
            frame(row.map { ex.dB($0) })
            next += 1
        }
    }

    /// Whether frame t's samples are all in: its window, and with reflect padding at the start, the
    /// samples mirrored in from after sample 0 (at most n_fft/2 of them).
    private func ready(_ t: Int) -> Bool {
        let ex = extractor
        let origin = ex.frameOrigin(t)
        if !ex.parameters.center && origin + ex.nFFT > received { return false }
        if ex.reflectPad && received <= ex.nFFT { return false }
        return origin + ex.winEnd <= received
    }

    /// Frees samples no later frame reads (one n_fft of margin before the next frame's origin covers
    /// reflected reads at the end), only when most of the buffer can go, so each sample moves a bounded
    /// number of times.
    private func dropSamplesBehind() {
        let keepFrom = max(0, extractor.frameOrigin(next) - extractor.nFFT)
        let drop = min(keepFrom - bufferStart, buffer.count)
        guard drop > 0, drop * 2 >= buffer.count else { return }
        buffer.removeFirst(drop)
        bufferStart += drop
    }
}
