/// The int8 model (`model.int8.onnx`, scored in Swift by `EmotionModel.int8Simulation()`) next to
/// the float model on the same test clips: `int8` in metrics.json when `export.quantize` is int8.
public struct Int8Comparison: Codable, Equatable, Sendable {
    public var accuracy: Double
    public var weightedF1: Double
    public var macroF1: Double
    /// Float minus int8, in points of the fraction (0.01 = 1 point): positive when int8 is worse.
    public var accuracyDrop: Double
    public var weightedF1Drop: Double
    /// The fraction of test clips on which both models pick the same class.
    public var agreement: Double
    public var clips: Int

    enum CodingKeys: String, CodingKey {
        case accuracy, weightedF1 = "weighted_f1", macroF1 = "macro_f1", accuracyDrop = "accuracy_drop",
             weightedF1Drop = "weighted_f1_drop", agreement, clips
    }

    /// Scores the int8 model's answers and sets them against the float model's (same clips, same order).
    public static func compare(labels: [String], truth: [Int], float: [Int], int8: [Int]) throws -> Int8Comparison {
        let floatMetrics = try ClassificationMetrics.compute(labels: labels, truth: truth, predicted: float)
        let m = try ClassificationMetrics.compute(labels: labels, truth: truth, predicted: int8)
        let same = zip(float, int8).filter { $0 == $1 }.count
        return Int8Comparison(accuracy: m.accuracy, weightedF1: m.weightedF1, macroF1: m.macroF1,
                              accuracyDrop: floatMetrics.accuracy - m.accuracy,
                              weightedF1Drop: floatMetrics.weightedF1 - m.weightedF1,
                              agreement: truth.isEmpty ? 0 : Double(same) / Double(truth.count), clips: truth.count)
    }
}
