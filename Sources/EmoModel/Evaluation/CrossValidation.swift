import Foundation

/// The test-fold metrics of one cross-validation fold.
public struct FoldResult: Codable, Equatable, Sendable {
    /// 1-based fold number.
    public var fold: Int
    /// What the fold held out, for people (for example "actors 1–6"); may be empty.
    public var note: String
    /// The fold's test, validation and training actors, for programs (nil in results written before).
    public var actors: ActorFold?
    public var metrics: ClassificationMetrics

    public init(fold: Int, note: String = "", actors: ActorFold? = nil, metrics: ClassificationMetrics) {
        self.fold = fold; self.note = note; self.actors = actors; self.metrics = metrics
    }
}

/// Mean and sample standard deviation (n − 1 in the denominator) of one metric over folds.
/// `std` is nil with fewer than two folds (the sample std is undefined there); it encodes as `null`.
public struct MeanStd: Codable, Equatable, Sendable {
    public var mean: Double
    public var std: Double?

    public init(mean: Double, std: Double?) { self.mean = mean; self.std = std }

    /// Mean and sample std of `values` (std nil for fewer than two values; mean 0 for none).
    public init(_ values: [Double]) {
        let n = Double(values.count)
        let mean = values.isEmpty ? 0 : values.reduce(0, +) / n
        self.mean = mean
        if values.count < 2 {
            std = nil
        } else {
            let ss = values.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) }
            std = (ss / (n - 1)).squareRoot()
        }
    }

    enum CodingKeys: String, CodingKey { case mean, std }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mean = try c.decode(Double.self, forKey: .mean)
        std = try c.decodeIfPresent(Double.self, forKey: .std)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mean, forKey: .mean)
        if let std { try c.encode(std, forKey: .std) } else { try c.encodeNil(forKey: .std) }
    }
}

/// The `cv.json` document: per-fold metrics, mean ± sample std of accuracy, weighted F1, macro F1
/// and UAR over the folds, and the confusion matrix summed over the folds with the metrics it gives
/// (`pooled`: every test sample of every fold counted once).
public struct CrossValidationSummary: Codable, Equatable, Sendable {
    public var labels: [String]
    public var folds: [FoldResult]
    public var accuracy: MeanStd
    public var weightedF1: MeanStd
    public var macroF1: MeanStd
    public var uar: MeanStd
    /// Sum of the folds' confusion matrices, `[true][predicted]`.
    public var summedConfusionMatrix: [[Int]]
    /// Metrics of the summed confusion matrix.
    public var pooled: ClassificationMetrics

    public init(labels: [String], folds: [FoldResult], accuracy: MeanStd, weightedF1: MeanStd, macroF1: MeanStd,
                uar: MeanStd, summedConfusionMatrix: [[Int]], pooled: ClassificationMetrics) {
        self.labels = labels; self.folds = folds; self.accuracy = accuracy; self.weightedF1 = weightedF1
        self.macroF1 = macroF1; self.uar = uar; self.summedConfusionMatrix = summedConfusionMatrix
        self.pooled = pooled
    }

    /// Summarises the folds (kept in the order given).
    /// - Throws: `EvaluationError.inconsistentFolds` for no folds or folds whose labels differ.
    public static func summarize(_ folds: [FoldResult]) throws -> CrossValidationSummary {
        guard let first = folds.first else { throw EvaluationError.inconsistentFolds("no folds") }
        let labels = first.metrics.labels
        for f in folds where f.metrics.labels != labels {
            throw EvaluationError.inconsistentFolds("fold \(f.fold) has labels \(f.metrics.labels), fold \(first.fold) has \(labels)")
        }
        let k = labels.count
        var summed = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for f in folds {
            for t in 0..<k { for p in 0..<k { summed[t][p] += f.metrics.confusionMatrix[t][p] } }
        }
        let pooled = try ClassificationMetrics.compute(labels: labels, confusionMatrix: summed)
        return CrossValidationSummary(
            labels: labels, folds: folds,
            accuracy: MeanStd(folds.map(\.metrics.accuracy)),
            weightedF1: MeanStd(folds.map(\.metrics.weightedF1)),
            macroF1: MeanStd(folds.map(\.metrics.macroF1)),
            uar: MeanStd(folds.map(\.metrics.uar)),
            summedConfusionMatrix: summed, pooled: pooled)
    }

    enum CodingKeys: String, CodingKey {
        case labels, folds, accuracy, uar, pooled
        case weightedF1 = "weighted_f1"
        case macroF1 = "macro_f1"
        case summedConfusionMatrix = "summed_confusion_matrix"
        case foldCount = "fold_count"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        labels = try c.decode([String].self, forKey: .labels)
        folds = try c.decode([FoldResult].self, forKey: .folds)
        accuracy = try c.decode(MeanStd.self, forKey: .accuracy)
        weightedF1 = try c.decode(MeanStd.self, forKey: .weightedF1)
        macroF1 = try c.decode(MeanStd.self, forKey: .macroF1)
        uar = try c.decode(MeanStd.self, forKey: .uar)
        summedConfusionMatrix = try c.decode([[Int]].self, forKey: .summedConfusionMatrix)
        pooled = try c.decode(ClassificationMetrics.self, forKey: .pooled)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(labels, forKey: .labels)
        try c.encode(folds.count, forKey: .foldCount)
        try c.encode(folds, forKey: .folds)
        try c.encode(accuracy, forKey: .accuracy)
        try c.encode(weightedF1, forKey: .weightedF1)
        try c.encode(macroF1, forKey: .macroF1)
        try c.encode(uar, forKey: .uar)
        try c.encode(summedConfusionMatrix, forKey: .summedConfusionMatrix)
        try c.encode(pooled, forKey: .pooled)
    }

    /// Pretty-printed JSON with sorted keys: equal summaries give equal bytes.
    public func jsonData() throws -> Data { try EvaluationJSON.encode(self) }
}
