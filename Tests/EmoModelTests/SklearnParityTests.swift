import Foundation
import Testing
@testable import EmoModel

/// scikit-learn's numbers, written by scripts/sklearn_metrics.py into Fixtures/sklearn-metrics.json.
struct SklearnFixture: Decodable {
    struct Case: Decodable {
        var name: String
        var labels: [String]
        var truth: [Int]
        var predicted: [Int]
        var accuracy: Double
        var weighted_f1: Double
        var macro_f1: Double
        var uar: Double
        var macro_precision: Double
        var precision: [Double]
        var recall: [Double]
        var f1: [Double]
        var support: [Int]
        var confusion_matrix: [[Int]]
        var confusion_matrix_normalized: [[Double]]
    }
    struct Fold: Decodable {
        var fold: Int
        var truth: [Int]
        var predicted: [Int]
        var accuracy: Double
        var weighted_f1: Double
        var macro_f1: Double
        var uar: Double
    }
    struct Four: Decodable { var accuracy: Double; var weighted_f1: Double; var macro_f1: Double; var uar: Double }
    struct CV: Decodable {
        var labels: [String]
        var folds: [Fold]
        var mean: Four
        var std: Four
        var summed_confusion_matrix: [[Int]]
        var pooled: Four
    }
    var sklearn_version: String
    var cases: [Case]
    var cross_validation: CV

    static func load() throws -> SklearnFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/sklearn-metrics.json")
        return try JSONDecoder().decode(SklearnFixture.self, from: Data(contentsOf: url))
    }
}

let tolerance = 1e-12

func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= tolerance }
func close(_ a: [Double], _ b: [Double]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { close($0, $1) } }

@Suite struct SklearnParityTests {
    @Test func fixtureHasTheEdgeCases() throws {
        let fx = try SklearnFixture.load()
        #expect(fx.cases.count >= 5)
        // A class with no support and a class never predicted, in the same case.
        let edge = try #require(fx.cases.first { $0.name == "no-support-and-never-predicted" })
        #expect(edge.support.contains(0))
        let predictedCounts = (0..<edge.labels.count).map { c in edge.predicted.filter { $0 == c }.count }
        #expect(predictedCounts.contains(0))
    }

    @Test(arguments: try SklearnFixture.load().cases.map(\.name))
    func matchesScikitLearn(_ name: String) throws {
        let fx = try SklearnFixture.load()
        let c = try #require(fx.cases.first { $0.name == name })
        let m = try ClassificationMetrics.compute(labels: c.labels, truth: c.truth, predicted: c.predicted)
        #expect(m.labels == c.labels)
        #expect(close(m.accuracy, c.accuracy), "accuracy \(m.accuracy) vs \(c.accuracy)")
        #expect(close(m.weightedF1, c.weighted_f1), "weighted F1 \(m.weightedF1) vs \(c.weighted_f1)")
        #expect(close(m.macroF1, c.macro_f1), "macro F1 \(m.macroF1) vs \(c.macro_f1)")
        #expect(close(m.uar, c.uar), "UAR \(m.uar) vs \(c.uar)")
        #expect(close(m.macroPrecision, c.macro_precision))
        #expect(close(m.perClass.map(\.precision), c.precision), "precision \(m.perClass.map(\.precision)) vs \(c.precision)")
        #expect(close(m.perClass.map(\.recall), c.recall))
        #expect(close(m.perClass.map(\.f1), c.f1), "f1 \(m.perClass.map(\.f1)) vs \(c.f1)")
        #expect(close(m.perClass.map(\.accuracy), c.recall), "per-class accuracy is the class's recall")
        #expect(m.perClass.map(\.support) == c.support)
        #expect(m.support == c.support)
        #expect(m.perClass.map(\.label) == c.labels)
        #expect(m.confusionMatrix == c.confusion_matrix)
        #expect(m.confusionMatrixNormalized.count == c.confusion_matrix_normalized.count)
        for (row, want) in zip(m.confusionMatrixNormalized, c.confusion_matrix_normalized) {
            #expect(close(row, want), "normalised row \(row) vs \(want)")
        }
        #expect(m.count == c.truth.count)
    }

    @Test func crossValidationMatchesNumPy() throws {
        let cv = try SklearnFixture.load().cross_validation
        let folds = try cv.folds.map {
            FoldResult(fold: $0.fold, metrics: try ClassificationMetrics.compute(labels: cv.labels, truth: $0.truth,
                                                                                predicted: $0.predicted))
        }
        for (f, want) in zip(folds, cv.folds) {
            #expect(close(f.metrics.accuracy, want.accuracy))
            #expect(close(f.metrics.weightedF1, want.weighted_f1))
            #expect(close(f.metrics.macroF1, want.macro_f1))
            #expect(close(f.metrics.uar, want.uar))
        }
        let s = try CrossValidationSummary.summarize(folds)
        #expect(close(s.accuracy.mean, cv.mean.accuracy))
        #expect(close(s.weightedF1.mean, cv.mean.weighted_f1))
        #expect(close(s.macroF1.mean, cv.mean.macro_f1))
        #expect(close(s.uar.mean, cv.mean.uar))
        #expect(close(try #require(s.accuracy.std), cv.std.accuracy))
        #expect(close(try #require(s.weightedF1.std), cv.std.weighted_f1))
        #expect(close(try #require(s.macroF1.std), cv.std.macro_f1))
        #expect(close(try #require(s.uar.std), cv.std.uar))
        #expect(s.summedConfusionMatrix == cv.summed_confusion_matrix)
        #expect(close(s.pooled.accuracy, cv.pooled.accuracy))
        #expect(close(s.pooled.weightedF1, cv.pooled.weighted_f1))
        #expect(close(s.pooled.macroF1, cv.pooled.macro_f1))
        #expect(close(s.pooled.uar, cv.pooled.uar))
    }
}
