import Foundation
import Testing
@testable import EmoModel

@Suite struct MetricsTests {
    let labels = ["a", "b", "c"]

    @Test func emptyInputIsAnError() {
        #expect(throws: EvaluationError.emptyInput) {
            try ClassificationMetrics.compute(labels: labels, truth: [], predicted: [])
        }
        #expect(throws: EvaluationError.emptyInput) {
            try ClassificationMetrics.compute(labels: labels, confusionMatrix: [[0, 0, 0], [0, 0, 0], [0, 0, 0]])
        }
    }

    @Test func predictionsOutsideTheLabelsAreAnError() {
        #expect(throws: EvaluationError.labelOutOfRange(which: "predicted", position: 1, value: 3, classes: 3)) {
            try ClassificationMetrics.compute(labels: labels, truth: [0, 1], predicted: [0, 3])
        }
        #expect(throws: EvaluationError.labelOutOfRange(which: "truth", position: 0, value: -1, classes: 3)) {
            try ClassificationMetrics.compute(labels: labels, truth: [-1, 1], predicted: [0, 1])
        }
    }

    @Test func otherBadInputs() {
        #expect(throws: EvaluationError.lengthMismatch(truth: 2, predicted: 1)) {
            try ClassificationMetrics.compute(labels: labels, truth: [0, 1], predicted: [0])
        }
        #expect(throws: EvaluationError.noLabels) {
            try ClassificationMetrics.compute(labels: [], truth: [0], predicted: [0])
        }
        #expect(throws: EvaluationError.duplicateLabel("a")) {
            try ClassificationMetrics.compute(labels: ["a", "b", "a"], truth: [0], predicted: [0])
        }
        #expect(throws: EvaluationError.self) {
            try ClassificationMetrics.compute(labels: labels, confusionMatrix: [[1, 0], [0, 1]])
        }
        #expect(throws: EvaluationError.self) {
            try ClassificationMetrics.compute(labels: labels, confusionMatrix: [[1, 0, 0], [0, -1, 0], [0, 0, 1]])
        }
        #expect("\(EvaluationError.emptyInput)".contains("no samples"))
    }

    @Test func zeroDivisionConventions() throws {
        // "c" has no true sample but is predicted once; "b" is never predicted.
        let m = try ClassificationMetrics.compute(labels: labels, truth: [0, 0, 1, 1], predicted: [0, 2, 0, 0])
        let b = m.perClass[1], c = m.perClass[2]
        #expect(b.precision == 0 && b.recall == 0 && b.f1 == 0 && b.support == 2)
        #expect(c.precision == 0 && c.recall == 0 && c.f1 == 0 && c.support == 0)
        #expect(m.confusionMatrixNormalized[2] == [0, 0, 0])
        // Weighted F1 weighs by support: only "a" (support 2, F1 = 2·1/(2·1+2+1) = 0.4) counts.
        #expect(abs(m.weightedF1 - 0.4 * 2 / 4) < 1e-15)
        // Macro F1 over the classes true or predicted (all three); UAR over those with true samples ("a", "b").
        #expect(abs(m.macroF1 - 0.4 / 3) < 1e-15)
        #expect(abs(m.uar - 0.5 / 2) < 1e-15)
        // A class neither true nor predicted does not pull the averages of a perfect answer below 1.
        let perfect = try ClassificationMetrics.compute(labels: labels, truth: [0, 1], predicted: [0, 1])
        #expect(perfect.uar == 1 && perfect.macroF1 == 1 && perfect.macroPrecision == 1 && perfect.perClass[2].support == 0)
        #expect(m.accuracy == 0.25)
    }

    @Test func perfectPredictions() throws {
        let m = try ClassificationMetrics.compute(labels: labels, truth: [0, 1, 2, 2], predicted: [0, 1, 2, 2])
        #expect(m.accuracy == 1 && m.weightedF1 == 1 && m.macroF1 == 1 && m.uar == 1)
        #expect(m.confusionMatrix == [[1, 0, 0], [0, 1, 0], [0, 0, 2]])
        #expect(m.confusionMatrixNormalized == [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    }

    @Test func confusionMatrixEntryPointAgrees() throws {
        let truth = [0, 1, 2, 2, 1, 0, 0], pred = [0, 2, 2, 1, 1, 0, 2]
        let a = try ClassificationMetrics.compute(labels: labels, truth: truth, predicted: pred)
        let b = try ClassificationMetrics.compute(labels: labels, confusionMatrix: a.confusionMatrix)
        #expect(a == b)
    }

    @Test func jsonUsesSnakeCaseKeysAndRoundTrips() throws {
        let m = try ClassificationMetrics.compute(labels: labels, truth: [0, 1, 2, 2], predicted: [0, 2, 2, 1])
        let doc = MetricsDocument(metrics: m, ablations: [AblationResult(name: "audio only", metrics: m)])
        let data = try doc.jsonData()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["accuracy", "weighted_f1", "macro_f1", "uar", "labels", "confusion_matrix",
                    "confusion_matrix_normalized", "per_class", "support", "count", "ablations"] {
            #expect(object[key] != nil, "metrics.json lacks \(key)")
        }
        let perClass = try #require((object["per_class"] as? [[String: Any]])?.first)
        #expect(Set(perClass.keys) == ["label", "precision", "recall", "f1", "accuracy", "support"])
        let ablation = try #require((object["ablations"] as? [[String: Any]])?.first)
        #expect(ablation["name"] as? String == "audio only")
        #expect((ablation["metrics"] as? [String: Any])?["weighted_f1"] != nil)
        #expect(try EvaluationJSON.decode(MetricsDocument.self, from: data) == doc)
        #expect(try doc.jsonData() == data)
        let text = try #require(String(data: data, encoding: .utf8))
        #expect(!text.contains("weightedF1"))
    }

    @Test func numberArraysStayOnOneLine() throws {
        let m = try ClassificationMetrics.compute(labels: ["[1,\n 2]", "b\\\"[", "c"], truth: [0, 1, 2, 2], predicted: [0, 2, 2, 1])
        let data = try MetricsDocument(metrics: m).jsonData()
        let text = try #require(String(data: data, encoding: .utf8))
        #expect(text.contains("\"confusion_matrix\" : [\n    [1, 0, 0],\n    [0, 0, 1],\n    [0, 1, 1]\n  ]"))
        #expect(text.contains("\"support\" : [1, 1, 2]"))
        #expect(text.contains("[1,\\n 2]"), "a label that looks like an array is left alone")
        #expect(try EvaluationJSON.decode(MetricsDocument.self, from: data).metrics == m)
        let plain = try JSONDecoder().decode(MetricsDocument.self, from: JSONEncoder().encode(MetricsDocument(metrics: m)))
        #expect(plain.metrics == m)
    }

    @Test func evaluateBuildsAblations() throws {
        let doc = try MetricsDocument.evaluate(labels: labels, truth: [0, 1, 2], predicted: [0, 1, 2],
                                               ablations: [("audio only", [0, 0, 2]), ("faces only", [1, 1, 2])])
        #expect(doc.ablations.map(\.name) == ["audio only", "faces only"])
        #expect(doc.metrics.accuracy == 1)
        #expect(abs(doc.ablations[0].metrics.accuracy - 2.0 / 3) < 1e-15)
        #expect(throws: EvaluationError.self) {
            try MetricsDocument.evaluate(labels: labels, truth: [0, 1, 2], predicted: [0, 1, 2], ablations: [("bad", [0, 1])])
        }
    }

    @Test func epochLogJSONLinesRoundTrip() throws {
        let epochs = SampleReport.epochs(count: 4)
        let data = try EpochLog.jsonLines(epochs)
        let text = try #require(String(data: data, encoding: .utf8))
        #expect(text.split(separator: "\n").count == 4)
        #expect(text.contains("\"val_weighted_f1\"") && text.contains("\"learning_rate\"") && text.contains("\"train_loss\""))
        #expect(try EpochLog.parseJSONLines(data + Data("\n\n".utf8)) == epochs)
        #expect(EpochLog.best(epochs)?.epoch == epochs.max { $0.valWeightedF1 < $1.valWeightedF1 }?.epoch)
        #expect(EpochLog.best([]) == nil)
        var nanFirst = epochs
        nanFirst[0].valWeightedF1 = .nan
        #expect(EpochLog.best(nanFirst)?.epoch == EpochLog.best(Array(epochs.dropFirst()))?.epoch)
        #expect(EpochLog.best([nanFirst[0]]) == nil)
        var diverged = epochs
        diverged[2].trainLoss = .nan
        diverged[3].valLoss = .infinity
        let back = try EpochLog.parseJSONLines(try EpochLog.jsonLines(diverged))
        #expect(back[2].trainLoss.isNaN && back[3].valLoss == .infinity && back[1] == epochs[1])
        #expect(try EvaluationJSON.decode([EpochLog].self, from: EvaluationJSON.encode(diverged))[3].valLoss == .infinity)
    }
}

@Suite struct CrossValidationTests {
    let labels = ["x", "y"]

    @Test func meanAndSampleStd() {
        let s = MeanStd([0.7, 0.8, 0.75, 0.65])
        #expect(abs(s.mean - 0.725) < 1e-15)
        #expect(abs(s.std! - (0.0125 / 3).squareRoot()) < 1e-15)
        #expect(MeanStd([0.5]).std == nil)
        #expect(MeanStd([0.5]).mean == 0.5)
    }

    @Test func summarizeSumsConfusionMatrices() throws {
        let f1 = try ClassificationMetrics.compute(labels: labels, truth: [0, 1, 1], predicted: [0, 1, 0])
        let f2 = try ClassificationMetrics.compute(labels: labels, truth: [0, 0, 1], predicted: [1, 0, 1])
        let s = try CrossValidationSummary.summarize([FoldResult(fold: 1, note: "actors 1–12", actors: ActorFold(index: 0, test: [1], validation: [2], train: [3, 4]),
                                                                 metrics: f1),
                                                      FoldResult(fold: 2, metrics: f2)])
        #expect(s.summedConfusionMatrix == [[2, 1], [1, 2]])
        #expect(s.pooled.count == 6)
        #expect(abs(s.accuracy.mean - 2.0 / 3) < 1e-15)
        #expect(s.accuracy.std == 0)
        let data = try s.jsonData()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["folds", "accuracy", "weighted_f1", "macro_f1", "uar", "summed_confusion_matrix", "pooled", "fold_count"] {
            #expect(object[key] != nil, "cv.json lacks \(key)")
        }
        #expect(try EvaluationJSON.decode(CrossValidationSummary.self, from: data) == s)
        // Each fold's actors are fields for programs, not only the note's text.
        let firstFold = try #require((object["folds"] as? [[String: Any]])?.first?["actors"] as? [String: Any])
        #expect(firstFold["test"] as? [Int] == [1] && firstFold["validation"] as? [Int] == [2] && firstFold["train"] as? [Int] == [3, 4], "\(firstFold)")
    }

    @Test func oneFoldHasNoStd() throws {
        let f = try ClassificationMetrics.compute(labels: labels, truth: [0, 1], predicted: [0, 1])
        let s = try CrossValidationSummary.summarize([FoldResult(fold: 1, metrics: f)])
        #expect(s.uar.std == nil)
        let text = try #require(String(data: try s.jsonData(), encoding: .utf8))
        #expect(text.contains("\"std\" : null"))
        #expect(try EvaluationJSON.decode(CrossValidationSummary.self, from: try s.jsonData()) == s)
    }

    @Test func inconsistentFoldsAreErrors() throws {
        #expect(throws: EvaluationError.self) { try CrossValidationSummary.summarize([]) }
        let a = try ClassificationMetrics.compute(labels: labels, truth: [0], predicted: [0])
        let b = try ClassificationMetrics.compute(labels: ["x", "z"], truth: [0], predicted: [0])
        #expect(throws: EvaluationError.self) {
            try CrossValidationSummary.summarize([FoldResult(fold: 1, metrics: a), FoldResult(fold: 2, metrics: b)])
        }
    }
}
