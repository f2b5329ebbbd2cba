import Foundation
import Testing
@testable import EmoModel

@Suite struct EpochSelectionTests {
    @Test func theBestEpochFollowsTheTrailingMeanOfValidationScores() {
        func log(_ scores: [Double]) -> [EpochLog] {
            scores.enumerated().map { EpochLog(epoch: $0.offset + 1, trainLoss: 1, trainAccuracy: 0.5, valLoss: 1,
                                               valAccuracy: 0.5, valWeightedF1: $0.element, learningRate: 1e-3, seconds: 1) }
        }
        let scores = [0.3, 0.6, 0.2, 0.5, 0.5, 0.5]
        #expect(Trainer.selectionScore(log(scores), window: 1) == 0.5)
        #expect(Trainer.selectionScore(log(Array(scores.prefix(2))), window: 3) == nil, "fewer epochs than the window")
        let smoothed = (1...scores.count).map { Trainer.selectionScore(log(Array(scores.prefix($0))), window: 3) ?? -1 }
        #expect(smoothed.indices.max { smoothed[$0] < smoothed[$1] } == 5, "a lone spike (epoch 2) loses to a steady run")
        #expect(Trainer.selectionScore([], window: 1) == nil)
    }
}
