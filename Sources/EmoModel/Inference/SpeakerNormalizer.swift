import Foundation

/// Per-speaker standardisation of log-mels: each mel band of each clip minus the mean, over the
/// speaker's own clips (every frame), divided by their standard deviation. It uses no labels,
/// so unseen speakers' statistics may come from their own clips; what it removes is each voice's
/// and each microphone's fixed colouring, which a model trained on a few speakers would learn.
/// The evaluate stage groups clips by actor; `emopipe predict` groups the files it is given.
public enum SpeakerNormalizer {
    /// Floor of a band's standard deviation (dB): a silent or constant band is not blown up.
    public static let minimumStd: Double = 1e-3

    /// `speakers[i]` groups `clips[i]`; clips without a log-mel are left alone.
    public static func normalize<Speaker: Hashable>(_ clips: [ClipFeatures], speakers: [Speaker], nMels: Int) -> [ClipFeatures] {
        normalize(clips, speakers: speakers, statistics: statisticsBySpeaker(clips, speakers: speakers, nMels: nMels), nMels: nMels)
    }

    /// Each speaker's statistics over its clips, added in the clips' order.
    public static func statisticsBySpeaker<Speaker: Hashable>(_ clips: [ClipFeatures], speakers: [Speaker],
                                                              nMels: Int) -> [Speaker: (mean: [Float], std: [Float])] {
        Dictionary(grouping: clips.indices, by: { speakers[$0] }).mapValues { indices in
            statistics(indices.sorted().map { clips[$0] }, nMels: nMels)
        }
    }

    /// `clips` normalised with the statistics of their speakers (`statistics` must hold every speaker).
    public static func normalize<Speaker: Hashable>(_ clips: [ClipFeatures], speakers: [Speaker],
                                                    statistics: [Speaker: (mean: [Float], std: [Float])], nMels: Int) -> [ClipFeatures] {
        clips.indices.map { i in
            statistics[speakers[i]].map { normalize(clips[i], mean: $0.mean, std: $0.std, nMels: nMels) } ?? clips[i]
        }
    }

    public static func normalize(_ clip: ClipFeatures, mean: [Float], std: [Float], nMels: Int) -> ClipFeatures {
        var out = clip
        normalize(&out, mean: mean, std: std, nMels: nMels)
        return out
    }

    /// `clip`'s log-mel normalised where it is: a log-mel held nowhere else is not copied.
    public static func normalize(_ clip: inout ClipFeatures, mean: [Float], std: [Float], nMels: Int) {
        let frames = clip.melFrames
        guard clip.logmel?.count == nMels * frames else { return }
        clip.logmel?.withUnsafeMutableBufferPointer { values in
            for band in 0..<nMels {
                for t in 0..<frames { values[band * frames + t] = (values[band * frames + t] - mean[band]) / std[band] }
            }
        }
    }

    /// Every clip normalised in place with its speaker's statistics (`normalize`, without a second copy of them all).
    public static func normalizeInPlace<Speaker: Hashable>(_ clips: inout [ClipFeatures], speakers: [Speaker], nMels: Int) {
        let statistics = statisticsBySpeaker(clips, speakers: speakers, nMels: nMels)
        for i in clips.indices {
            guard let speaker = statistics[speakers[i]] else { continue }
            normalize(&clips[i], mean: speaker.mean, std: speaker.std, nMels: nMels)
        }
    }

    /// Per-band mean and standard deviation over every frame of the given clips (Double sums:
    /// thousands of frames of dB values).
    public static func statistics(_ clips: [ClipFeatures], nMels: Int) -> (mean: [Float], std: [Float]) {
        var accumulator = Accumulator(nMels: nMels)
        for clip in clips { accumulator.add(clip) }
        return accumulator.statistics
    }

    /// The sums behind `statistics`, added clip by clip: a caller that cannot hold every clip at once
    /// (`predict` on long recordings) gets the same bits by adding them in the same order.
    public struct Accumulator: Sendable {
        public let nMels: Int
        private var sum: [Double], squares: [Double]
        private var count = 0

        public init(nMels: Int) {
            self.nMels = nMels
            sum = [Double](repeating: 0, count: nMels)
            squares = sum
        }

        /// A clip without a log-mel adds nothing.
        public mutating func add(_ clip: ClipFeatures) {
            guard let values = clip.logmel, values.count == nMels * clip.melFrames else { return }
            let frames = clip.melFrames
            count += frames
            for band in 0..<nMels {
                for t in 0..<frames {
                    let v = Double(values[band * frames + t])
                    sum[band] += v; squares[band] += v * v
                }
            }
        }

        /// One frame of a stream (`nMels` dB values), each raised to `floor`, added `times` over (a run of
        /// identical frames, digital silence, in one step).
        public mutating func add(frame: [Float], floor: Float = -.infinity, times: Int = 1) {
            guard frame.count == nMels, times > 0 else { return }
            count += times
            let n = Double(times)
            for band in 0..<nMels {
                let v = Double(max(frame[band], floor))
                sum[band] += v * n; squares[band] += v * v * n
            }
        }

        /// Whether any frame was added.
        public var isEmpty: Bool { count == 0 }

        public var statistics: (mean: [Float], std: [Float]) {
            guard count > 0 else { return ([Float](repeating: 0, count: nMels), [Float](repeating: 1, count: nMels)) }
            return moments.floored
        }

        /// `statistics`, blended with `prior` when there is one (`SpeakerPrior.blended`).
        public func statistics(blendedWith prior: SpeakerPrior?) -> (mean: [Float], std: [Float]) {
            prior?.blended(moments) ?? statistics
        }

        /// The frames' mean and variance per band, unfloored (for `SpeakerPrior.blended`).
        public var moments: Moments { Moments(sum: sum, squares: squares, frames: count) }
    }

    /// Per-band mean and (population) variance of `frames` frames, from their sums.
    public struct Moments: Equatable, Sendable {
        public var mean: [Double], variance: [Double]
        public var frames: Double

        init(sum: [Double], squares: [Double], frames: Int) {
            let n = Double(frames)
            mean = sum.map { frames > 0 ? $0 / n : 0 }
            variance = zip(squares, mean).map { sq, m in frames > 0 ? max(0, sq / n - m * m) : 0 }
            self.frames = n
        }

        /// The mean and the deviation, floored at `minimumStd`: the frames' own statistics.
        var floored: (mean: [Float], std: [Float]) {
            (mean.map(Float.init), variance.map { Float(max(minimumStd, $0.squareRoot())) })
        }
    }
}
