// The log-mel of a signal too long to hold in memory, byte for byte what `compute(samples:)` gives.
//
// `compute(signal:)` reads the signal once; when it ends within `inMemoryLimit` samples (every RAVDESS
// clip) the samples read are handed to `compute(samples:)`. A longer signal is read again, as often as
// the parameters need, each time keeping only running figures:
//  pass 1 (the whole signal): sample checks, and when trim_db or crop: center needs them, the running
//    sums of squares at the RMS frame edges, which fix the trimmed interval (and, without trim_db, the
//    voiced midpoint the centre crop uses);
//  pass 2 (the analysed samples): every mel frame for the maximum that top_db is measured from, keeping
//    the frames the crop keeps when they are known already; with trim_db and crop: center, the running
//    sums of the trimmed signal too (their frame grid restarts at the trim);
//  pass 3 (only when the centre crop of a trimmed signal moves the window): the kept frames.
// Each figure is computed with the operations, in the order, that the in-memory path uses, which is
// what keeps every value identical. Memory: the kept frames, a window of samples, and a few floats per
// hop for the RMS frames.

import EmoMedia

/// Audio that can be read from its start more than once, chunk by chunk (e.g. a file decoded again for
/// each pass). Every pass must give the same samples.
public protocol RereadableSignal {
    var sampleRate: Int { get }
    /// Hands `body` the whole signal in consecutive chunks. `stop` is polled between chunks: when it
    /// asks, the pass throws (`MediaError.stopped` or `FeatureError.stopped`); a pass that returns has
    /// delivered every sample.
    func readAll(until stop: StopCheck, _ body: (UnsafeBufferPointer<Float>) -> Void) throws
}

extension RereadableSignal {
    func readAll(_ body: (UnsafeBufferPointer<Float>) -> Void) throws { try readAll(until: .never, body) }
}

/// A media file's audio, decoded again on each pass.
extension MonoAudioFile: RereadableSignal {
    public func readAll(until stop: StopCheck, _ body: (UnsafeBufferPointer<Float>) -> Void) throws {
        try pass(until: stop, body)
    }
}

extension LogMelExtractor {
    /// Signals up to this many samples (65 s at 16 kHz) are read once and analysed in memory.
    public static let defaultInMemoryLimit = 1 << 20

    /// The log-mel of `signal`, identical to `compute(samples:)` on all its samples; memory stays bounded
    /// by `inMemoryLimit` samples (raised to 8 n_fft) plus the frames kept. `stop` is polled between
    /// frames (a signal that decodes a file polls its own between chunks).
    public func compute(signal: some RereadableSignal, inMemoryLimit: Int = LogMelExtractor.defaultInMemoryLimit,
                        stop: StopCheck = .never) throws -> LogMel {
        let p = parameters
        guard signal.sampleRate == p.sampleRate else {
            throw FeatureError.sampleRateMismatch(expected: p.sampleRate, actual: signal.sampleRate)
        }
        let limit = max(inMemoryLimit, 8 * nFFT)
        let head = HeadOrFigures(limit: limit, energy: p.trimDb != nil || p.crop == .center ? RunningEnergy(frameLength: nFFT, hop: hop) : nil)
        try readFirstPass(signal, into: head)
        guard let whole = head.figures else {
            return try head.samples.withUnsafeBufferPointer { try compute(samples: $0, sampleRate: p.sampleRate, stop: stop) }
        }
        return try computeLong(signal, whole: whole, limit: limit, stop: stop)
    }

    /// Pass 1. When every frame of the whole signal is kept (no `frames` crop, no trim), a signal is
    /// refused as too long as soon as what was read passes the bound: a small file that decodes to days
    /// of audio is not decoded for minutes first. (A trim or a crop may bring a long signal within it.)
    /// What comes after that point is not looked at, so such a signal is refused as too long even if it
    /// holds a NaN later. A signal read to its end is checked as in memory, in the same order.
    private func readFirstPass(_ signal: some RereadableSignal, into head: HeadOrFigures) throws {
        guard parameters.frames == nil, parameters.trimDb == nil else { return try signal.readAll { head.add($0) } }
        let maximum = maximumFrames
        let pastTheBound = StopCheck { [self] in frameCount(head.count) > maximum }
        do {
            try signal.readAll(until: pastTheBound) { head.add($0) }
        } catch let error where pastTheBound.isRequested && StopCheck.endedWork(error) {
            throw tooLong(frames: nil)
        }
    }

    private func computeLong(_ signal: some RereadableSignal, whole: SignalFigures, limit: Int, stop: StopCheck) throws -> LogMel {
        let p = parameters
        let n = whole.count   // > limit ≥ 8 n_fft: neither empty nor shorter than a window
        if whole.nonFinite { throw FeatureError.notFinite }
        if !whole.nonzero { throw FeatureError.silentAudio }
        var range = 0..<n
        if let t = p.trimDb, let energy = whole.energy {
            range = voicedRange(rms: energy.frameRms(signalLength: n), signalLength: n, topDb: t)
            if range.isEmpty { throw FeatureError.trimmedTooShort(kept: 0, of: n, needed: p.center ? p.winLength : p.nFFT, topDb: t) }
        }
        let m = range.count
        if !p.center && m < nFFT { throw FeatureError.trimmedTooShort(kept: m, of: n, needed: nFFT, topDb: p.trimDb ?? 0) }

        let ws = try takeWorkspace()
        defer { giveBack(ws) }
        if m <= limit {
            // What is left after the trim fits: read it and finish as in memory.
            var y: [Float] = []
            y.reserveCapacity(m)
            try readRange(signal, range) { y.append(contentsOf: $0) }
            guard y.count == m else { throw FeatureError.signalChanged(expected: m, got: y.count) }
            return try y.withUnsafeBufferPointer { try analyse($0, signalLength: n, range: range, ws, stop: stop) }
        }

        let total = frameCount(m)
        let outFrames = p.frames ?? total
        try checkLength(frames: outFrames)
        let needsCentre = total > outFrames && p.crop == .center
        // The centre of the whole signal is known from pass 1; that of a trimmed one only after pass 2.
        var first: Int? = 0
        if needsCentre {
            if p.trimDb == nil, let energy = whole.energy {
                first = centredFirstFrame(voiced: voicedRange(rms: energy.frameRms(signalLength: n), signalLength: n, topDb: 60),
                                          total: total, outFrames: outFrames)
            } else {
                first = nil
            }
        }
        let guess = first ?? 0
        let spectrogram = StreamingSpectrogram(self, ws, length: m, frames: total, keep: guess..<(guess + min(total - guess, outFrames)),
                                               outFrames: outFrames, everyFrame: true, stop: stop)
        let trimmedEnergy = first == nil ? RunningEnergy(frameLength: nFFT, hop: hop) : nil
        try readRange(signal, range) { chunk in
            spectrogram.add(chunk)
            trimmedEnergy?.add(chunk)
        }
        try spectrogram.finish()
        // finite samples whose spectrum overflows float32 (|x| ≳ 1e17) would give inf/NaN dB
        guard spectrogram.peak.isFinite else { throw FeatureError.spectrumOverflow }
        try checkAudible(spectrogram.peak)
        var kept = spectrogram
        let chosen: Int
        if let first { chosen = first } else {
            chosen = centredFirstFrame(voiced: voicedRange(rms: trimmedEnergy?.frameRms(signalLength: m) ?? [], signalLength: m,
                                                           topDb: p.trimDb ?? 60),
                                       total: total, outFrames: outFrames)
        }
        if chosen != guess {
            kept = StreamingSpectrogram(self, ws, length: m, frames: total, keep: chosen..<(chosen + min(total - chosen, outFrames)),
                                        outFrames: outFrames, everyFrame: false, stop: stop)
            try readRange(signal, range) { kept.add($0) }
            try kept.finish()
        }
        return finish(power: &kept.values, maxPower: spectrogram.peak, total: total, first: chosen,
                      real: min(total - chosen, outFrames), outFrames: outFrames, signalLength: n, range: range)
    }

    /// One pass over the samples of `signal` inside `range`.
    private func readRange(_ signal: some RereadableSignal, _ range: Range<Int>,
                           _ body: (UnsafeBufferPointer<Float>) -> Void) throws {
        var position = 0
        try signal.readAll { chunk in Self.forEachPart(of: chunk, inside: range, at: &position, body) }
    }

    /// Calls `body` with the part of `chunk` (which starts at signal index `position`) inside `range`,
    /// and moves `position` past the chunk.
    static func forEachPart(of chunk: UnsafeBufferPointer<Float>, inside range: Range<Int>, at position: inout Int,
                            _ body: (UnsafeBufferPointer<Float>) -> Void) {
        let start = position
        position += chunk.count
        let lo = max(range.lowerBound, start), hi = min(range.upperBound, position)
        guard lo < hi, let base = chunk.baseAddress else { return }
        body(UnsafeBufferPointer(start: base + (lo - start), count: hi - lo))
    }
}

/// Pass 1's state: the samples while they fit in `limit`, then running figures instead. Unchecked
/// Sendable: the stop check that reads `count` is polled by the pass, on the thread that adds.
final class HeadOrFigures: @unchecked Sendable {
    let limit: Int
    private(set) var samples: [Float] = []
    private(set) var figures: SignalFigures?
    private let energy: RunningEnergy?

    /// Samples read so far.
    var count: Int { figures?.count ?? samples.count }

    init(limit: Int, energy: RunningEnergy?) {
        self.limit = limit
        self.energy = energy
    }

    func add(_ chunk: UnsafeBufferPointer<Float>) {
        if let figures { figures.add(chunk); return }
        if samples.count + chunk.count <= limit {
            samples.append(contentsOf: chunk)
            return
        }
        // Too long to hold: from now on only the running figures, starting with what was held.
        let figures = SignalFigures(energy: energy)
        samples.withUnsafeBufferPointer { figures.add($0) }
        figures.add(chunk)
        samples = []
        self.figures = figures
    }
}

/// What the checks and the trim need from the whole signal.
final class SignalFigures {
    private(set) var count = 0
    private(set) var nonFinite = false
    private(set) var nonzero = false
    let energy: RunningEnergy?

    init(energy: RunningEnergy?) { self.energy = energy }

    func add(_ chunk: UnsafeBufferPointer<Float>) {
        count += chunk.count
        for v in chunk {
            if !v.isFinite { nonFinite = true }
            if v != 0 { nonzero = true }
        }
        energy?.add(chunk)
    }
}

/// The running sum of squares (float64, summed in sample order as `nonSilentRange` does) recorded at
/// every edge of the centred RMS frames of `librosa.feature.rms(frame_length:, hop_length:)`: frame i
/// spans samples [i·hop − fl/2, i·hop + fl/2), clamped to the signal.
final class RunningEnergy {
    let frameLength: Int, hop: Int, half: Int
    private var sum = 0.0
    private var count = 0
    /// The sum before sample i·hop − half (lower edges) and before i·hop + half (upper edges).
    private var lower: [Double] = []
    private var upper: [Double] = []

    init(frameLength: Int, hop: Int) {
        self.frameLength = frameLength
        self.hop = hop
        half = frameLength / 2
        recordEdges()
    }

    func add(_ chunk: UnsafeBufferPointer<Float>) {
        var i = 0
        while i < chunk.count {
            // Every edge at or before `count` is recorded, so the next one lies ahead.
            let nextEdge = min(lower.count * hop - half, upper.count * hop + half)
            let stop = min(chunk.count, i + (nextEdge - count))
            let start = i
            while i < stop { let v = Double(chunk[i]); sum += v * v; i += 1 }
            count += stop - start
            recordEdges()
        }
    }

    private func recordEdges() {
        while lower.count * hop - half <= count { lower.append(sum) }
        while upper.count * hop + half <= count { upper.append(sum) }
    }

    /// The RMS of every frame of a signal of `signalLength` samples (all of which were added).
    func frameRms(signalLength n: Int) -> [Float] {
        let frames = 1 + (n + 2 * half - frameLength) / hop
        return (0..<frames).map { i in
            let a = i < lower.count ? lower[i] : sum, b = i < upper.count ? upper[i] : sum
            return Float((b - a) / Double(frameLength)).squareRoot()
        }
    }
}

/// The mel frames of a signal of known length, fed chunk by chunk: every frame when `everyFrame` (for
/// the maximum, `peak`), else only the kept ones; the power of the frames in `keep` is stored as
/// `finish(power:)` takes it. Holds the samples from one n_fft before the next frame onwards. Asked to
/// stop, it computes no more frames and `finish` throws `FeatureError.stopped`.
final class StreamingSpectrogram {
    private let extractor: LogMelExtractor
    private let ws: LogMelExtractor.Workspace
    private let stop: StopCheck
    private var stopped = false
    private let length: Int, frames: Int, keep: Range<Int>, outFrames: Int
    private let end: Int
    /// Kept frames' power, mel-major: `values[m * outFrames + (t − keep.lowerBound)]`.
    var values: [Float]
    private(set) var peak: Float = 0
    private var buffer: [Float] = []
    /// Signal index of `buffer[0]`.
    private var bufferStart = 0
    private var received = 0
    private var next: Int
    private var row: [Float]

    init(_ extractor: LogMelExtractor, _ ws: LogMelExtractor.Workspace, length: Int, frames: Int, keep: Range<Int>,
         outFrames: Int, everyFrame: Bool, stop: StopCheck) {
        self.extractor = extractor
        self.ws = ws
        self.stop = stop
        self.length = length
        self.frames = frames
        self.keep = keep
        self.outFrames = outFrames
        end = everyFrame ? frames : keep.upperBound
        next = everyFrame ? 0 : keep.lowerBound
        values = [Float](repeating: 0, count: extractor.nMels * outFrames)
        row = [Float](repeating: 0, count: extractor.nMels)
    }

    func add(_ chunk: UnsafeBufferPointer<Float>) {
        received += chunk.count
        guard next < end, !stopped else { return }
        buffer.append(contentsOf: chunk)
        computeReadyFrames()
        dropSamplesBehind()
    }

    /// Computes the frames that need the end of the signal; throws when the signal was not `length` long.
    func finish() throws {
        if stopped { throw FeatureError.stopped }
        guard received == length else { throw FeatureError.signalChanged(expected: length, got: received) }
        computeReadyFrames()
        if stopped { throw FeatureError.stopped }
    }

    private func computeReadyFrames() {
        let ex = extractor, nMels = ex.nMels
        while next < end {
            if next % LogMelExtractor.framesBetweenStopChecks == 0, stop.isRequested { stopped = true; return }
            let origin = ex.frameOrigin(next)
            // A frame past the end reads reflected samples from before it: it waits for the whole signal.
            guard received >= min(length, origin + ex.winEnd) else { return }
            buffer.withUnsafeBufferPointer { samples in
                guard let base = samples.baseAddress else { return }
                ex.fillFrame(ws, origin: origin, base, from: bufferStart, length: length)
            }
            row.withUnsafeMutableBufferPointer { ex.melProject(ws, into: $0.baseAddress!, peak: &peak) }
            if keep.contains(next) {
                let t = next - keep.lowerBound
                for m in 0..<nMels { values[m * outFrames + t] = row[m] }
            }
            next += 1
        }
    }

    /// Frees samples no later frame reads: a frame reads from its origin on, and near the end, reflected
    /// samples down to one before its origin; one n_fft of margin covers both.
    private func dropSamplesBehind() {
        let keepFrom = max(0, extractor.frameOrigin(next) - extractor.nFFT)
        let drop = min(keepFrom - bufferStart, buffer.count)
        // Only when most of the buffer can go, so each sample is moved a bounded number of times.
        guard drop > 0, drop * 2 >= buffer.count else { return }
        buffer.removeFirst(drop)
        bufferStart += drop
    }
}
