import Foundation

/// The statistics of the speakers a model was trained on, standing in for a new speaker's where few of
/// their frames are known. A speaker's own mean and deviation over one clip are mostly that clip's
/// emotion (an angry clip is loud): normalised by them alone, one file loses what it is to be scored on.
/// So the statistics of files given together are blended with these, as if `frames` frames of the
/// training speakers were among them: a single clip leans on the training speakers, a speaker's many
/// clips on their own. (Cross-validation over actors 01-12, docs/experiments.md: one file alone scored
/// weighted F1 0.30 by itself and 0.56 blended; ten files of a speaker together 0.58 and 0.60.) The
/// speakers are the ones the model learnt from, not its validation actors, which only chose its epoch.
/// Each speaker weighs the same, whatever their number of frames (`speakers.json` keeps no counts).
///
///     let prior = SpeakerPrior(speakers: recorded.speakers.filter { train.contains($0.actor) }, frames: 1000)
///     let (mean, std) = prior?.blended(accumulator.moments) ?? accumulator.statistics
public struct SpeakerPrior: Equatable, Sendable {
    /// Seconds of the training speakers' speech the prior counts as.
    public static let seconds = 10.0

    /// Each band's mean over the speakers (each speaker counts once).
    public let mean: [Double]
    /// Each band's variance over all their frames: the mean of the speakers' variances plus the variance of
    /// their means (each speaker weighing the same).
    public let variance: [Double]
    /// The weight of the prior, in frames.
    public let frames: Double

    /// Nil without speakers, or with a weight that is not positive.
    public init?(speakers: [RecordedSpeakers.Speaker], frames: Double) {
        // Each actor once (an edited model.json may list one twice), in actor order.
        let ordered = Dictionary(speakers.map { ($0.actor, $0) }, uniquingKeysWith: { first, _ in first }).values.sorted { $0.actor < $1.actor }
        guard let bands = ordered.first?.mean.count, frames.isFinite, frames > 0,
              ordered.allSatisfy({ $0.mean.count == bands && $0.std.count == bands }) else { return nil }
        let n = Double(ordered.count)
        var mean = [Double](repeating: 0, count: bands), variance = mean
        for band in 0..<bands {
            let m = ordered.reduce(0.0) { $0 + Double($1.mean[band]) } / n
            let within = ordered.reduce(0.0) { $0 + Double($1.std[band]) * Double($1.std[band]) } / n
            let between = ordered.reduce(0.0) { $0 + (Double($1.mean[band]) - m) * (Double($1.mean[band]) - m) } / n
            mean[band] = m
            variance[band] = within + between
        }
        self.mean = mean; self.variance = variance; self.frames = frames
    }

    /// The statistics of `given`'s frames pooled with the prior's: the mean and deviation of all the frames
    /// together, were the prior `frames` frames of its mean and variance. No frames given: the prior's own.
    public func blended(_ given: SpeakerNormalizer.Moments) -> (mean: [Float], std: [Float]) {
        let total = given.frames + frames
        var mean = [Float](), std = [Float]()
        for band in self.mean.indices {
            let m = given.mean.indices.contains(band) ? given.mean[band] : 0
            let v = given.variance.indices.contains(band) ? given.variance[band] : 0
            let pooled = (given.frames * m + frames * self.mean[band]) / total
            let spread = (given.frames * (v + (m - pooled) * (m - pooled))
                          + frames * (variance[band] + (self.mean[band] - pooled) * (self.mean[band] - pooled))) / total
            mean.append(Float(pooled))
            std.append(Float(max(SpeakerNormalizer.minimumStd, max(0, spread).squareRoot())))
        }
        return (mean, std)
    }
}
