import Foundation
import Testing
@testable import EmoModel

@Suite struct ClipPredictionsTests {
    let labels = ["calm", "happy", "sad"]

    /// Four actors of 10 clips each, right on 2, 4, 6 and 8 of them (class 0 always true).
    func fourActors() -> (actors: [Int], truth: [Int], predicted: [Int]) {
        var actors: [Int] = [], truth: [Int] = [], predicted: [Int] = []
        for (actor, right) in [(1, 2), (2, 4), (3, 6), (4, 8)] {
            for i in 0..<10 { actors.append(actor); truth.append(0); predicted.append(i < right ? 0 : 1 + i % 2) }
        }
        return (actors, truth, predicted)
    }

    @Test func intervalOverActorsBracketsThePooledFigureWithinTheActorsRange() throws {
        let (actors, truth, predicted) = fourActors()
        let ci = try #require(try ActorBootstrap.compute(labels: labels, actors: actors, truth: truth, predicted: predicted))
        let pooled = try ClassificationMetrics.compute(labels: labels, truth: truth, predicted: predicted)
        #expect(ci.actors == 4 && ci.resamples == ActorBootstrap.defaultResamples && ci.level == 0.95)
        // A resample's accuracy is a mean of four actors' accuracies (0.2 … 0.8): never outside them.
        #expect(ci.accuracy[0] >= 0.2 && ci.accuracy[1] <= 0.8)
        #expect(ci.accuracy[0] < pooled.accuracy && pooled.accuracy < ci.accuracy[1])
        #expect(ci.weightedF1[0] < pooled.weightedF1 && pooled.weightedF1 < ci.weightedF1[1])
        #expect(try ActorBootstrap.compute(labels: labels, actors: actors, truth: truth, predicted: predicted) == ci,
                "seeded: the same predictions give the same interval")
    }

    @Test func identicalActorsGiveAnIntervalOfZeroWidth() throws {
        let truth = [0, 1, 2, 0, 1, 2], predicted = [0, 1, 1, 0, 1, 1]
        let ci = try #require(try ActorBootstrap.compute(labels: labels, actors: [5, 5, 5, 9, 9, 9], truth: truth,
                                                         predicted: predicted))
        let pooled = try ClassificationMetrics.compute(labels: labels, truth: truth, predicted: predicted)
        #expect(ci.accuracy == [pooled.accuracy, pooled.accuracy])
        #expect(ci.weightedF1 == [pooled.weightedF1, pooled.weightedF1])
    }

    @Test func oneActorHasNoIntervalAndBadInputIsRefused() throws {
        #expect(try ActorBootstrap.compute(labels: labels, actors: [1, 1], truth: [0, 1], predicted: [0, 0]) == nil)
        #expect(throws: EvaluationError.self) {
            try ActorBootstrap.compute(labels: labels, actors: [1, 2], truth: [0, 1], predicted: [0])
        }
        #expect(throws: EvaluationError.self) {
            try ActorBootstrap.compute(labels: labels, actors: [1, 2], truth: [0, 7], predicted: [0, 0])
        }
    }

    @Test func theIntervalRoundTripsThroughMetricsJSON() throws {
        let (actors, truth, predicted) = fourActors()
        var document = try MetricsDocument.evaluate(labels: labels, truth: truth, predicted: predicted)
        document.interval = try ActorBootstrap.compute(labels: labels, actors: actors, truth: truth, predicted: predicted)
        let json = try document.jsonData()
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let ci = try #require(object["confidence_interval"] as? [String: Any])
        let written = try #require(ci["weighted_f1"] as? [Double]), kept = try #require(document.interval?.weightedF1)
        #expect(written.count == 2 && zip(written, kept).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(try JSONDecoder().decode(MetricsDocument.self, from: json) == document)
    }

    @Test func csvRowsNameTheLabelsAndQuoteAwkwardPaths() throws {
        let table = try PredictionTable(labels: labels, rows: [
            ClipPrediction(path: "/data/a,b \"x\"/03-01-02.wav", clip: "01-02", actor: 3, fold: 1, truth: 0,
                           probabilities: [0.2, 0.5, 0.3]),
            ClipPrediction(path: "/data/c.wav", clip: "01-03", actor: 4, fold: 1, truth: 2, probabilities: [0.1, 0.1, 0.8]),
        ])
        let lines = table.csv().split(separator: "\n").map(String.init)
        #expect(lines == [
            "path,clip,actor,fold,truth,predicted,p_calm,p_happy,p_sad",
            "\"/data/a,b \"\"x\"\"/03-01-02.wav\",01-02,3,1,calm,happy,0.200000,0.500000,0.300000",
            "/data/c.wav,01-03,4,1,sad,sad,0.100000,0.100000,0.800000",
        ])
        let first = try #require(try JSONSerialization.jsonObject(
            with: Data(try table.jsonLines().split(separator: "\n")[0].utf8)) as? [String: Any])
        #expect(first["path"] as? String == "/data/a,b \"x\"/03-01-02.wav")
        #expect(first["predicted"] as? String == "happy" && first["truth"] as? String == "calm")
        #expect((first["probabilities"] as? [String: Double])?["sad"] == 0.3)
        let wrong = table.misclassified
        #expect(wrong.count == 1 && wrong[0].row.clip == "01-02")
        #expect(wrong[0].top.map(\.label) == ["happy", "sad"])
    }

    @Test func aTableRefusesDuplicateLabelsAndShortRows() {
        #expect(throws: EvaluationError.self) { try PredictionTable(labels: ["a", "a"], rows: []) }
        #expect(throws: EvaluationError.self) {
            try PredictionTable(labels: labels, rows: [ClipPrediction(path: "p", clip: "c", actor: 1, fold: 0, truth: 0,
                                                                      probabilities: [1, 0])])
        }
    }

    @Test func tiesRankInClassOrder() {
        #expect(ClipPrediction.ranked([0.4, 0.4, 0.2]) == [0, 1, 2])
        #expect(ClipPrediction.ranked([0.1, 0.3, 0.3, 0.3]) == [1, 2, 3, 0])
    }
}
