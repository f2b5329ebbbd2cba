import Foundation

/// One test clip's answer from the evaluate stage: what it is, where it came from, and the class
/// probabilities its fold's model gave it.
public struct ClipPrediction: Equatable, Sendable {
    /// The clip's speech source, else its video (the file `emopipe predict` would be given).
    public var path: String
    /// The clip's id (its RAVDESS name without modality and extension).
    public var clip: String
    public var actor: Int
    public var fold: Int
    public var truth: Int
    public var probabilities: [Float]

    public init(path: String, clip: String, actor: Int, fold: Int, truth: Int, probabilities: [Float]) {
        self.path = path; self.clip = clip; self.actor = actor; self.fold = fold; self.truth = truth
        self.probabilities = probabilities
    }

    /// The most probable class (the first, on a tie), as every other prediction is counted.
    public var predicted: Int { Inference.argmax(probabilities) }

    /// Class indices, most probable first; ties keep class order.
    public static func ranked(_ p: [Float]) -> [Int] {
        p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
    }
}

/// `predictions.csv` and `predictions.jsonl`: one row per test clip, columns `path, clip, actor,
/// fold, truth, predicted, p_<label>…` (label names, probabilities with 6 decimals). Rows keep the
/// order they are given in (fold, then clip), so equal inputs give equal bytes.
public struct PredictionTable: Sendable {
    public let labels: [String]
    public let rows: [ClipPrediction]

    /// Labels must be distinct and every row must hold one probability per label.
    public init(labels: [String], rows: [ClipPrediction]) throws {
        try ClassificationMetrics.checkLabels(labels)
        if let bad = rows.firstIndex(where: { $0.probabilities.count != labels.count }) {
            throw EvaluationError.lengthMismatch(truth: labels.count, predicted: rows[bad].probabilities.count)
        }
        self.labels = labels; self.rows = rows
    }

    public var header: [String] {
        ["path", "clip", "actor", "fold", "truth", "predicted"] + labels.map { "p_" + $0 }
    }

    public func csv() -> String {
        var out = header.map(Self.csvField).joined(separator: ",") + "\n"
        for row in rows {
            let fields = [row.path, row.clip, String(row.actor), String(row.fold), name(row.truth), name(row.predicted)]
                + row.probabilities.map(Self.probability)
            out += fields.map(Self.csvField).joined(separator: ",") + "\n"
        }
        return out
    }

    /// JSON Lines with snake_case keys; `probabilities` maps each label to its probability.
    public func jsonLines() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try rows.map { row in
            let line = Line(path: row.path, clip: row.clip, actor: row.actor, fold: row.fold, truth: name(row.truth),
                            predicted: name(row.predicted),
                            probabilities: Dictionary(uniqueKeysWithValues: zip(labels, row.probabilities.map(Self.rounded))))
            return String(decoding: try encoder.encode(line), as: UTF8.self) + "\n"
        }.joined()
    }

    /// The clips whose predicted class is not their true one, with their two most probable classes.
    public var misclassified: [(row: ClipPrediction, top: [(label: String, probability: Float)])] {
        rows.filter { $0.predicted != $0.truth }.map { row in
            (row, ClipPrediction.ranked(row.probabilities).prefix(2).map { (name($0), row.probabilities[$0]) })
        }
    }

    private struct Line: Encodable {
        var path: String, clip: String, actor: Int, fold: Int, truth: String, predicted: String
        var probabilities: [String: Double]
    }

    private func name(_ index: Int) -> String { labels.indices.contains(index) ? labels[index] : String(index) }

    /// Six decimals, as every output prints a probability: predictions.csv, .jsonl and predict's answers round
    /// the same way (half away from zero), so an exact tie (an odd multiple of 1/128) reads alike in all three.
    public static func rounded(_ p: Float) -> Double { (Double(p) * 1e6).rounded() / 1e6 }
    private static func probability(_ p: Float) -> String { String(format: "%.6f", rounded(p)) }

    /// RFC 4180: a field holding a comma, quote or line break is quoted, quotes doubled.
    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
