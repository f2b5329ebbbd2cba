import EmoNN
import Foundation

/// 95% intervals of the headline metrics by a bootstrap over test actors: each resample draws as
/// many actors as were tested, with replacement, and pools all their clips. Actors, not clips, are
/// the unit because clips of one speaker are not independent (a speaker-independent figure varies
/// mostly from speaker to speaker). Seeded: the same predictions give the same interval.
public struct ActorBootstrap: Codable, Equatable, Sendable {
    public var method: String
    public var resamples: Int
    public var level: Double
    public var actors: Int
    public var accuracy: [Double]
    public var weightedF1: [Double]
    public var macroF1: [Double]

    enum CodingKeys: String, CodingKey {
        case method, resamples, level, actors, accuracy
        case weightedF1 = "weighted_f1"
        case macroF1 = "macro_f1"
    }

    public static let defaultResamples = 2000

    /// Nil with fewer than two test actors: there is nothing to resample.
    public static func compute(labels: [String], actors: [Int], truth: [Int], predicted: [Int],
                               resamples: Int = defaultResamples, seed: UInt64 = 1) throws -> ActorBootstrap? {
        guard truth.count == predicted.count else {
            throw EvaluationError.lengthMismatch(truth: truth.count, predicted: predicted.count)
        }
        guard actors.count == truth.count else {
            throw EvaluationError.lengthMismatch(truth: truth.count, predicted: actors.count)
        }
        let byActor = Dictionary(grouping: actors.indices, by: { actors[$0] })
        let distinct = byActor.keys.sorted()
        guard distinct.count >= 2, resamples > 0 else { return nil }
        let classes = labels.count
        // One confusion matrix per actor; a resample sums the drawn actors' matrices.
        let matrices: [[[Int]]] = try distinct.map { actor in
            var cm = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
            for i in byActor[actor] ?? [] {
                guard (0..<classes).contains(truth[i]), (0..<classes).contains(predicted[i]) else {
                    throw EvaluationError.labelOutOfRange(which: "truth or predicted", position: i,
                                                          value: max(truth[i], predicted[i]), classes: classes)
                }
                cm[truth[i]][predicted[i]] += 1
            }
            return cm
        }
        let random = RandomGenerator(seed: seed)
        var accuracy: [Double] = [], weighted: [Double] = [], macro: [Double] = []
        for _ in 0..<resamples {
            var cm = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
            for _ in distinct.indices {
                let drawn = matrices[Int(random.next() % UInt64(distinct.count))]
                for r in 0..<classes { for c in 0..<classes { cm[r][c] += drawn[r][c] } }
            }
            let m = try ClassificationMetrics.compute(labels: labels, confusionMatrix: cm)
            accuracy.append(m.accuracy); weighted.append(m.weightedF1); macro.append(m.macroF1)
        }
        return ActorBootstrap(method: "bootstrap over test actors (percentile)", resamples: resamples, level: 0.95,
                              actors: distinct.count, accuracy: interval(accuracy), weightedF1: interval(weighted),
                              macroF1: interval(macro))
    }

    /// The 2.5th and 97.5th percentiles: 2.5% of the resamples trimmed from each end.
    static func interval(_ values: [Double]) -> [Double] {
        let sorted = values.sorted()
        let low = sorted[max(0, Int((0.025 * Double(sorted.count)).rounded(.down)))]
        let high = sorted[min(sorted.count - 1, Int((0.975 * Double(sorted.count)).rounded(.up)) - 1)]
        return [low, high]
    }
}
