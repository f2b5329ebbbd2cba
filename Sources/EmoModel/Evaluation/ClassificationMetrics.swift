import Foundation

/// Why metrics could not be computed.
public enum EvaluationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No samples were given (nothing to evaluate).
    case emptyInput
    /// No class labels were given.
    case noLabels
    /// The same label name appears twice.
    case duplicateLabel(String)
    /// `truth` and `predicted` have different lengths.
    case lengthMismatch(truth: Int, predicted: Int)
    /// A class index outside `0..<classes`, in `truth` or in `predicted`, at `position`.
    case labelOutOfRange(which: String, position: Int, value: Int, classes: Int)
    /// A confusion matrix that is not `classes × classes` or has a negative count.
    case malformedConfusionMatrix(String)
    /// Cross-validation folds that disagree (different labels) or no folds at all.
    case inconsistentFolds(String)

    public var description: String {
        switch self {
        case .emptyInput: return "evaluation: no samples to evaluate"
        case .noLabels: return "evaluation: no class labels"
        case .duplicateLabel(let l): return "evaluation: label \"\(l)\" appears more than once"
        case .lengthMismatch(let t, let p):
            return "evaluation: \(t) true labels but \(p) predictions"
        case .labelOutOfRange(let which, let pos, let v, let k):
            return "evaluation: \(which)[\(pos)] = \(v) is outside the \(k) classes 0..<\(k)"
        case .malformedConfusionMatrix(let why): return "evaluation: malformed confusion matrix: \(why)"
        case .inconsistentFolds(let why): return "cross-validation: \(why)"
        }
    }
}

/// Precision, recall, F1 and accuracy of one class (one-vs-rest).
public struct PerClassMetrics: Codable, Equatable, Sendable {
    public var label: String
    /// tp / (tp + fp); 0 when the class is never predicted (scikit-learn's `zero_division=0`).
    public var precision: Double
    /// tp / (tp + fn); 0 when the class has no true samples (`zero_division=0`).
    public var recall: Double
    /// 2·tp / (2·tp + fp + fn); 0 when that denominator is 0.
    public var f1: Double
    /// Per-class accuracy **as RAVDESS papers report it: the recall of the class** (the share of
    /// the class's samples that were classified correctly, i.e. the diagonal of the row-normalised
    /// confusion matrix), not the one-vs-rest accuracy (tp + tn) / n.
    public var accuracy: Double
    /// Number of true samples of the class.
    public var support: Int

    public init(label: String, precision: Double, recall: Double, f1: Double, accuracy: Double, support: Int) {
        self.label = label; self.precision = precision; self.recall = recall; self.f1 = f1
        self.accuracy = accuracy; self.support = support
    }
}

/// Classification metrics of one set of predictions, following scikit-learn's definitions with
/// `zero_division=0`. Per-class figures cover every label; the unweighted averages cover the classes
/// the test set has (a class with no test clip has no recall: counted as 0, it kept a perfect model's
/// UAR below 1 on a fold without calm clips):
///
/// - `accuracy`: share of samples predicted correctly.
/// - `weightedF1`: per-class F1 averaged with weights = support (classes with no support weigh 0).
/// - `macroF1`: unweighted mean of per-class F1 over the classes that are true or predicted
///   (`f1_score(average="macro")`, scikit-learn's default labels).
/// - `uar`: unweighted average recall over the classes with test clips (`balanced_accuracy_score`); on
///   a test fold with every class present, `recall_score(average="macro")`.
/// - `confusionMatrix[t][p]`: number of samples of true class `t` predicted as `p`.
/// - `confusionMatrixNormalized`: each row divided by its sum (`normalize="true"`); an empty row stays 0.
public struct ClassificationMetrics: Codable, Equatable, Sendable {
    public var labels: [String]
    public var accuracy: Double
    public var weightedF1: Double
    public var macroF1: Double
    public var uar: Double
    /// Counts, indexed `[true][predicted]`.
    public var confusionMatrix: [[Int]]
    /// Row-normalised confusion matrix (rows sum to 1, or are all 0 for a class with no support).
    public var confusionMatrixNormalized: [[Double]]
    public var perClass: [PerClassMetrics]

    /// Number of evaluated samples.
    public var count: Int { confusionMatrix.reduce(0) { $0 + $1.reduce(0, +) } }
    /// True samples per class, in label order.
    public var support: [Int] { confusionMatrix.map { $0.reduce(0, +) } }
    /// Predictions per class, in label order.
    public var predictedCounts: [Int] {
        (0..<labels.count).map { p in confusionMatrix.reduce(0) { $0 + $1[p] } }
    }
    /// Mean per-class precision over the classes that are true or predicted
    /// (`precision_score(average="macro", zero_division=0)`).
    public var macroPrecision: Double {
        let predicted = predictedCounts
        let present = perClass.indices.filter { perClass[$0].support > 0 || predicted[$0] > 0 }
        return present.isEmpty ? 0 : present.reduce(0) { $0 + perClass[$1].precision } / Double(present.count)
    }

    public init(labels: [String], accuracy: Double, weightedF1: Double, macroF1: Double, uar: Double,
                confusionMatrix: [[Int]], confusionMatrixNormalized: [[Double]], perClass: [PerClassMetrics]) {
        self.labels = labels; self.accuracy = accuracy; self.weightedF1 = weightedF1; self.macroF1 = macroF1
        self.uar = uar; self.confusionMatrix = confusionMatrix
        self.confusionMatrixNormalized = confusionMatrixNormalized; self.perClass = perClass
    }

    /// Metrics of `predicted` against `truth`, both class indices into `labels`.
    /// - Throws: `EvaluationError` for no labels, duplicate labels, empty input, different lengths, or an
    ///   index outside `0..<labels.count`.
    public static func compute(labels: [String], truth: [Int], predicted: [Int]) throws -> ClassificationMetrics {
        try checkLabels(labels)
        guard truth.count == predicted.count else {
            throw EvaluationError.lengthMismatch(truth: truth.count, predicted: predicted.count)
        }
        guard !truth.isEmpty else { throw EvaluationError.emptyInput }
        let k = labels.count
        var cm = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for i in truth.indices {
            let t = truth[i], p = predicted[i]
            guard (0..<k).contains(t) else {
                throw EvaluationError.labelOutOfRange(which: "truth", position: i, value: t, classes: k)
            }
            guard (0..<k).contains(p) else {
                throw EvaluationError.labelOutOfRange(which: "predicted", position: i, value: p, classes: k)
            }
            cm[t][p] += 1
        }
        return try compute(labels: labels, confusionMatrix: cm)
    }

    /// Metrics from a confusion matrix of counts indexed `[true][predicted]` (for example one summed
    /// over cross-validation folds).
    public static func compute(labels: [String], confusionMatrix cm: [[Int]]) throws -> ClassificationMetrics {
        try checkLabels(labels)
        let k = labels.count
        guard cm.count == k, cm.allSatisfy({ $0.count == k }) else {
            throw EvaluationError.malformedConfusionMatrix("expected \(k)×\(k) for \(k) labels")
        }
        guard cm.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else {
            throw EvaluationError.malformedConfusionMatrix("negative count")
        }
        let n = cm.reduce(0) { $0 + $1.reduce(0, +) }
        guard n > 0 else { throw EvaluationError.emptyInput }

        let support = cm.map { $0.reduce(0, +) }
        let predictedCounts = (0..<k).map { p in cm.reduce(0) { $0 + $1[p] } }
        var perClass: [PerClassMetrics] = []
        perClass.reserveCapacity(k)
        var correct = 0
        for c in 0..<k {
            let tp = cm[c][c]
            correct += tp
            let fp = predictedCounts[c] - tp, fn = support[c] - tp
            let precision = predictedCounts[c] == 0 ? 0 : Double(tp) / Double(predictedCounts[c])
            let recall = support[c] == 0 ? 0 : Double(tp) / Double(support[c])
            let f1Denominator = 2 * tp + fp + fn
            let f1 = f1Denominator == 0 ? 0 : Double(2 * tp) / Double(f1Denominator)
            perClass.append(PerClassMetrics(label: labels[c], precision: precision, recall: recall, f1: f1,
                                            accuracy: recall, support: support[c]))
        }
        let weightedF1 = zip(perClass, support).reduce(0.0) { $0 + $1.0.f1 * Double($1.1) } / Double(n)
        let present = (0..<k).filter { support[$0] > 0 || predictedCounts[$0] > 0 }, tested = (0..<k).filter { support[$0] > 0 }
        let macroF1 = present.reduce(0.0) { $0 + perClass[$1].f1 } / Double(present.count)
        let uar = tested.reduce(0.0) { $0 + perClass[$1].recall } / Double(tested.count)
        let normalized = cm.enumerated().map { t, row in
            row.map { support[t] == 0 ? 0 : Double($0) / Double(support[t]) }
        }
        return ClassificationMetrics(labels: labels, accuracy: Double(correct) / Double(n), weightedF1: weightedF1,
                                     macroF1: macroF1, uar: uar, confusionMatrix: cm,
                                     confusionMatrixNormalized: normalized, perClass: perClass)
    }

    static func checkLabels(_ labels: [String]) throws {
        guard !labels.isEmpty else { throw EvaluationError.noLabels }
        var seen = Set<String>()
        for l in labels where !seen.insert(l).inserted { throw EvaluationError.duplicateLabel(l) }
    }

    enum CodingKeys: String, CodingKey {
        case labels, accuracy, uar, count, support
        case weightedF1 = "weighted_f1"
        case macroF1 = "macro_f1"
        case macroPrecision = "macro_precision"
        case confusionMatrix = "confusion_matrix"
        case confusionMatrixNormalized = "confusion_matrix_normalized"
        case perClass = "per_class"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        labels = try c.decode([String].self, forKey: .labels)
        accuracy = try c.decode(Double.self, forKey: .accuracy)
        weightedF1 = try c.decode(Double.self, forKey: .weightedF1)
        macroF1 = try c.decode(Double.self, forKey: .macroF1)
        uar = try c.decode(Double.self, forKey: .uar)
        confusionMatrix = try c.decode([[Int]].self, forKey: .confusionMatrix)
        confusionMatrixNormalized = try c.decode([[Double]].self, forKey: .confusionMatrixNormalized)
        perClass = try c.decode([PerClassMetrics].self, forKey: .perClass)
    }

    /// Writes the stored fields plus the derived `count`, `support` and `macro_precision` (ignored when
    /// decoding: they follow from the confusion matrix).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(labels, forKey: .labels)
        try c.encode(accuracy, forKey: .accuracy)
        try c.encode(weightedF1, forKey: .weightedF1)
        try c.encode(macroF1, forKey: .macroF1)
        try c.encode(uar, forKey: .uar)
        try c.encode(macroPrecision, forKey: .macroPrecision)
        try c.encode(count, forKey: .count)
        try c.encode(support, forKey: .support)
        try c.encode(confusionMatrix, forKey: .confusionMatrix)
        try c.encode(confusionMatrixNormalized, forKey: .confusionMatrixNormalized)
        try c.encode(perClass, forKey: .perClass)
    }
}

/// The metrics of the model evaluated with only some modalities (for example "audio only").
public struct AblationResult: Codable, Equatable, Sendable {
    public var name: String
    public var metrics: ClassificationMetrics
    public init(name: String, metrics: ClassificationMetrics) { self.name = name; self.metrics = metrics }
}

/// The `metrics.json` document: the test-fold metrics at the top level (`accuracy`, `weighted_f1`,
/// `macro_f1`, `uar`, `labels`, `confusion_matrix`, `confusion_matrix_normalized`, `per_class`,
/// `support`, `count`, ...) plus `ablations`: `[{"name": ..., "metrics": {...}}]`, empty for a
/// single-modality model (evaluate scores them on the test clips with both inputs, the full model's row
/// "audio + faces" among them).
public struct MetricsDocument: Codable, Equatable, Sendable {
    public var metrics: ClassificationMetrics
    public var ablations: [AblationResult]
    /// 95% intervals over test actors (`confidence_interval`); absent with one test actor.
    public var interval: ActorBootstrap?
    /// An eight-class model's answers scored on seven classes, calm counted as neutral
    /// (`seven_class`): comparable with figures reported for `ravdess7`.
    public var sevenClass: ClassificationMetrics?
    /// The int8 model's figures beside these (`int8`), when the run quantises its export.
    public var int8: Int8Comparison?
    /// Test clips the figures leave out because their files failed ingest or feature extraction
    /// (`unscored_test_clips`, always written): the count a reader compares against the data.
    public var unscored: [UnscoredClip] = []
    /// The actors the figures were scored on (`test_actors`), every fold's together.
    public var testActors: [Int] = []
    /// Scored test clips whose file has the same bytes as a file of a clip the model was trained on
    /// (`test_clips_seen_in_training`, always written): for them the score is not speaker-independent.
    public var seenInTraining: [SeenInTraining] = []

    public init(metrics: ClassificationMetrics, ablations: [AblationResult] = [], interval: ActorBootstrap? = nil,
                sevenClass: ClassificationMetrics? = nil) {
        self.metrics = metrics; self.ablations = ablations; self.interval = interval; self.sevenClass = sevenClass
    }

    /// Computes the main metrics and those of each ablation (`(name, predictions)`, same truth).
    /// `ablationTruth`: the labels of the clips the ablations scored (nil: every test clip).
    public static func evaluate(labels: [String], truth: [Int], predicted: [Int], ablationTruth: [Int]? = nil,
                                ablations: [(name: String, predicted: [Int])] = []) throws -> MetricsDocument {
        let main = try ClassificationMetrics.compute(labels: labels, truth: truth, predicted: predicted)
        let abl = try ablations.map {
            AblationResult(name: $0.name,
                           metrics: try ClassificationMetrics.compute(labels: labels, truth: ablationTruth ?? truth, predicted: $0.predicted))
        }
        return MetricsDocument(metrics: main, ablations: abl)
    }

    enum CodingKeys: String, CodingKey {
        case ablations, interval = "confidence_interval", sevenClass = "seven_class", int8, unscored = "unscored_test_clips"
        case testActors = "test_actors", seenInTraining = "test_clips_seen_in_training"
    }

    public init(from decoder: Decoder) throws {
        metrics = try ClassificationMetrics(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ablations = try c.decodeIfPresent([AblationResult].self, forKey: .ablations) ?? []
        interval = try c.decodeIfPresent(ActorBootstrap.self, forKey: .interval)
        sevenClass = try c.decodeIfPresent(ClassificationMetrics.self, forKey: .sevenClass)
        int8 = try c.decodeIfPresent(Int8Comparison.self, forKey: .int8)
        unscored = try c.decodeIfPresent([UnscoredClip].self, forKey: .unscored) ?? []
        testActors = try c.decodeIfPresent([Int].self, forKey: .testActors) ?? []
        seenInTraining = try c.decodeIfPresent([SeenInTraining].self, forKey: .seenInTraining) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        try metrics.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ablations, forKey: .ablations)
        try c.encodeIfPresent(interval, forKey: .interval)
        try c.encodeIfPresent(sevenClass, forKey: .sevenClass)
        try c.encodeIfPresent(int8, forKey: .int8)
        try c.encode(unscored, forKey: .unscored)
        try c.encode(testActors, forKey: .testActors)
        try c.encode(seenInTraining, forKey: .seenInTraining)
    }

    /// Pretty-printed JSON with sorted keys: equal documents give equal bytes.
    public func jsonData() throws -> Data { try EvaluationJSON.encode(self) }
}

/// A scored test clip whose file (`path`) has the bytes of a training clip's file (`training_path`).
public struct SeenInTraining: Codable, Equatable, Sendable {
    public var clip: String
    public var actor: Int
    public var fold: Int
    public var path: String
    public var trainingClip: String
    public var trainingPath: String

    public init(clip: String, actor: Int, fold: Int, path: String, trainingClip: String, trainingPath: String) {
        self.clip = clip; self.actor = actor; self.fold = fold; self.path = path
        self.trainingClip = trainingClip; self.trainingPath = trainingPath
    }

    enum CodingKeys: String, CodingKey {
        case clip, actor, fold, path, trainingClip = "training_clip", trainingPath = "training_path"
    }
}

/// A test clip no figure counts: the file that would have fed the model, the stage it failed at and why.
public struct UnscoredClip: Codable, Equatable, Sendable {
    public var clip: String
    public var actor: Int
    public var fold: Int
    public var path: String
    public var stage: String
    public var reason: String

    public init(clip: String, actor: Int, fold: Int, path: String, stage: String, reason: String) {
        self.clip = clip; self.actor = actor; self.fold = fold; self.path = path; self.stage = stage; self.reason = reason
    }
}

/// The JSON conventions of the evaluation files (`metrics.json`, `cv.json`, epoch logs).
public enum EvaluationJSON {
    /// Pretty-printed, sorted keys, slashes unescaped, arrays of numbers kept on one line (a confusion
    /// matrix reads as one row per line), trailing newline.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = nonFinite
        var data = compactNumberArrays(try encoder.encode(value))
        data.append(0x0A)
        return data
    }

    /// Rewrites every array that holds only numbers (`[\n  1,\n  2\n]`) as `[1, 2]`; strings are
    /// left alone (a bracket inside a string is not an array).
    static func compactNumberArrays(_ json: Data) -> Data {
        let bytes = [UInt8](json)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0, inString = false
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                out.append(b)
                if b == UInt8(ascii: "\\") && i + 1 < bytes.count { out.append(bytes[i + 1]); i += 2; continue }
                if b == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            if b == UInt8(ascii: "\"") { inString = true; out.append(b); i += 1; continue }
            if b == UInt8(ascii: "[") {
                var j = i + 1
                var numeric = true
                while j < bytes.count && bytes[j] != UInt8(ascii: "]") {
                    let c = bytes[j]
                    let ok = (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ",")
                        || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
                        || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == 0x20 || c == 0x0A || c == 0x0D
                        || c == 0x09
                    if !ok { numeric = false; break }
                    j += 1
                }
                if numeric && j < bytes.count {
                    let items = bytes[(i + 1)..<j].split(separator: UInt8(ascii: ","))
                        .map { $0.filter { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 } }
                        .filter { !$0.isEmpty }
                    out.append(UInt8(ascii: "["))
                    for (k, item) in items.enumerated() {
                        if k > 0 { out.append(contentsOf: [UInt8(ascii: ","), 0x20]) }
                        out.append(contentsOf: item)
                    }
                    out.append(UInt8(ascii: "]"))
                    i = j + 1
                    continue
                }
            }
            out.append(b)
            i += 1
        }
        return Data(out)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = nonFiniteDecoding
        return try decoder.decode(type, from: data)
    }

    /// A diverged training run has NaN or infinite losses: they are written as the strings "NaN",
    /// "Infinity" and "-Infinity" rather than failing the write. (Metrics are always finite.)
    public static let nonFinite = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    public static let nonFiniteDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
}
