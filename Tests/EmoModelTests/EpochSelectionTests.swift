import EmoNN
import EmoTestSupport
import Foundation
import Testing
@testable import EmoModel

@Suite struct EpochSelectionTests {
    static func log(_ scores: [Double], losses: [Double]? = nil) -> [EpochLog] {
        scores.enumerated().map { EpochLog(epoch: $0.offset + 1, trainLoss: 1, trainAccuracy: 0.5, valLoss: losses?[$0.offset] ?? 1,
                                           valAccuracy: 0.5, valWeightedF1: $0.element, learningRate: 1e-3, seconds: 1) }
    }

    /// The epoch a sequence of selection scores keeps, as `fit` keeps it.
    static func kept(_ epochs: [EpochLog], window: Int, by selection: EpochSelection) -> Int {
        var best: Double?, kept = 0
        for count in 1...epochs.count {
            let score = Trainer.selectionScore(Array(epochs.prefix(count)), window: window, by: selection)
            if Trainer.keeps(score, over: best, diverged: !epochs[count - 1].valLoss.isFinite, keptAny: kept > 0) {
                best = score; kept = count
            }
        }
        return kept
    }

    /// An epoch without validation writes its validation figures as null (numbers or null in number
    /// fields); a diverged one keeps "NaN", which tells the two apart; both read back as they were.
    @Test func unvalidatedFiguresAreNullAndDivergedOnesNaN() throws {
        let unvalidated = EpochLog(epoch: 1, trainLoss: 0.9, trainAccuracy: 0.5, valLoss: .nan, valAccuracy: .nan,
                                   valWeightedF1: .nan, learningRate: 1e-3, seconds: 1)
        let diverged = EpochLog(epoch: 2, trainLoss: .nan, trainAccuracy: 0.1, valLoss: .infinity, valAccuracy: 0.125,
                                valWeightedF1: 0.03, learningRate: 1e-3, seconds: 1)
        let lines = String(decoding: try EpochLog.jsonLines([unvalidated, diverged]), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        for key in ["val_loss", "val_accuracy", "val_weighted_f1"] { #expect(first[key] is NSNull, "\(key): \(first)") }
        #expect(lines[1].contains("\"train_loss\":\"NaN\"") && lines[1].contains("\"val_loss\":\"Infinity\""), "\(lines[1])")
        let back = try EpochLog.parseJSONLines(try EpochLog.jsonLines([unvalidated, diverged]))
        #expect(back.count == 2 && !back[0].validated && back[0].valLoss.isNaN && back[0].trainLoss == 0.9)
        #expect(back[1].validated && back[1].trainLoss.isNaN && back[1].valLoss == .infinity && back[1].valWeightedF1 == 0.03)
    }

    @Test func theBestEpochFollowsTheTrailingMeanOfValidationScores() {
        let scores = [0.3, 0.6, 0.2, 0.5, 0.5, 0.5]
        #expect(Trainer.selectionScore(Self.log(scores), window: 1) == 0.5)
        #expect(Trainer.selectionScore(Self.log(Array(scores.prefix(2))), window: 3) == nil, "fewer epochs than the window")
        let smoothed = (1...scores.count).map { Trainer.selectionScore(Self.log(Array(scores.prefix($0))), window: 3) ?? -1 }
        #expect(smoothed.indices.max { smoothed[$0] < smoothed[$1] } == 5, "a lone spike (epoch 2) loses to a steady run")
        #expect(Self.kept(Self.log(scores), window: 3, by: .weightedF1) == 6)
        #expect(Self.kept(Self.log(scores), window: 1, by: .weightedF1) == 2)
        #expect(Trainer.selectionScore([], window: 1) == nil)
    }

    @Test func validationLossSelectsTheLowestTrailingMeanAndNeverADivergedEpoch() {
        let losses = [2.0, 1.0, 1.6, 1.2, 1.2, 1.1, .nan]
        let epochs = Self.log(Array(repeating: 0.5, count: losses.count), losses: losses)
        #expect(Trainer.selectionScore(Array(epochs.prefix(2)), window: 1, by: .validationLoss) == -1.0)
        #expect(Self.kept(epochs, window: 1, by: .validationLoss) == 2, "the single lowest loss")
        #expect(Self.kept(epochs, window: 3, by: .validationLoss) == 6, "1.0 beside 1.6 loses to 1.2, 1.2, 1.1")
        #expect(Trainer.selectionScore(epochs, window: 1, by: .validationLoss) == -.infinity)
        // Before a whole window the latest epoch is kept; a window holding a diverged epoch gives way to a finite one.
        #expect(Trainer.keeps(nil, over: nil) && !Trainer.keeps(nil, over: -3))
        #expect(Trainer.keeps(-.infinity, over: nil) && Trainer.keeps(-50, over: -.infinity))
        #expect(Self.kept(Self.log([0.5, 0.5, 0.5], losses: [.infinity, 3, 4]), window: 1, by: .validationLoss) == 2)
        #expect(Self.kept(Self.log([0.5, 0.5, 0.5, 0.5], losses: [.nan, 3, 4, 2]), window: 3, by: .validationLoss) == 4)
        // Diverged weights replace nothing, under any selection, before or after the window fills;
        // they are kept only when there is nothing else.
        let divergedLate = Self.log([0.2, 0.3, 0.9, 0.9], losses: [2, 1.5, .nan, .nan])
        for selection in EpochSelection.allCases {
            #expect(Self.kept(divergedLate, window: 5, by: selection) == 2, "\(selection)")
            #expect(Self.kept(divergedLate, window: 1, by: selection) == 2, "\(selection)")
        }
        #expect(Self.kept(Self.log([0.5], losses: [.nan]), window: 1, by: .weightedF1) == 1, "nothing else to keep")
    }

    @Test func lastKeepsTheFinalEpochWhateverTheScores() {
        let epochs = Self.log([0.9, 0.1, 0.1, 0.1], losses: [0.1, 5, 5, 5])
        #expect(Self.kept(epochs, window: 3, by: .last) == 4)
        #expect(Trainer.selectionScore(Array(epochs.prefix(1)), window: 3, by: .last) != nil, "no window to wait for")
    }

    /// Trains a small model for 6 epochs with patience 2 while the validation F1 falls every epoch
    /// (`validating: false`: no validation clips, the scores never asked for).
    static func fit(_ selection: EpochSelection?, _ name: String, validating: Bool = true) throws -> TrainingState {
        let train = TrainedModelTests.samples(12, seed: 1)
        var training = TrainingConfig()
        training.epochs = 6
        training.batchSize = 4
        training.patience = 2
        training.selection = selection
        let config = TrainedModelTests.config
        let trainer = Trainer(model: EmotionModel(config, seed: 3), config: training, standardizer: Standardizer.fit(train, config: config),
                              classWeights: Trainer.classWeights(labels: train.map(\.label), classes: config.classes), seed: 4)
        var epoch = 0.0
        return try trainer.fit(train: train, validation: validating ? TrainedModelTests.samples(7, seed: 2) : [],
                               policy: TrainedModelTests.policy, folder: URL(fileURLWithPath: try TestSupport.temporaryFolder(name))) { labels, _ in
            #expect(!labels.isEmpty, "scored only with validation clips")
            epoch += 1
            return (0, 1 / epoch)
        }
    }

    /// A training whose later epochs diverge keeps the last finite epoch, and says of each diverged one that it was
    /// passed over (the stage's summary had a kept epoch with no score, and no word on why).
    @Test func epochsThatDivergeAreSaidToBeNotKept() throws {
        let train = TrainedModelTests.samples(12, seed: 1)
        var training = TrainingConfig()
        (training.epochs, training.batchSize, training.warmupEpochs, training.selectionWindow) = (4, 4, 0, 2)
        (training.learningRate, training.weightDecay, training.clipNorm) = (10, 10, 1e6)
        let config = TrainedModelTests.config
        let trainer = Trainer(model: EmotionModel(config, seed: 3), config: training, standardizer: Standardizer.fit(train, config: config),
                              classWeights: Trainer.classWeights(labels: train.map(\.label), classes: config.classes), seed: 4)
        var lines: [String] = []
        trainer.log = { lines.append($0) }
        let state = try trainer.fit(train: train, validation: TrainedModelTests.samples(7, seed: 2), policy: TrainedModelTests.policy,
                                    folder: URL(fileURLWithPath: try TestSupport.temporaryFolder("diverging"))) { _, _ in (0.5, 0.5) }
        // The loss is NaN from the epoch the weights are (validation still scores them: a NaN logit's loss is finite).
        let diverged = state.epochs.filter { !$0.trainLoss.isFinite }.map(\.epoch)
        #expect(!diverged.isEmpty && !diverged.contains(state.bestEpoch), "\(state.epochs.map(\.trainLoss)) kept \(state.bestEpoch)")
        for epoch in diverged {
            #expect(lines.contains { $0.hasPrefix("epoch \(epoch): its weights are not finite (training diverged): not kept") }, "\(lines)")
        }
        #expect(lines.filter { $0.contains("not kept") }.count == diverged.count, "\(lines)")
    }

    /// A batch of one is skipped (batch norm needs two): one training clip, or batches of one, would
    /// pass for a trained epoch that learnt nothing. Refused instead.
    @Test func aTrainingThatMakesNoBatchOfTwoIsRefused() throws {
        let train = TrainedModelTests.samples(1, seed: 1)
        var training = TrainingConfig()
        training.epochs = 2
        let config = TrainedModelTests.config
        let trainer = Trainer(model: EmotionModel(config, seed: 3), config: training, standardizer: Standardizer.fit(train, config: config),
                              classWeights: Trainer.classWeights(labels: train.map(\.label), classes: config.classes), seed: 4)
        let error = try #require(throws: NNError.self) {
            try trainer.fit(train: train, validation: [], policy: TrainedModelTests.policy,
                            folder: URL(fileURLWithPath: try TestSupport.temporaryFolder("one-clip"))) { _, _ in (0, 0) }
        }
        #expect("\(error)".contains("1 training sample(s) make no batch of two"), "\(error)")
    }

    /// state.json has snake_case keys, as every JSON document EmoPipe writes; one written before (camelCase
    /// `bestEpoch`, `bestScore`) still resumes.
    @Test func theTrainingStateIsSnakeCaseAndEarlierSpellingsStillRead() throws {
        var state = TrainingState()
        state.epochs = (1...3).map { EpochLog(epoch: $0, trainLoss: 1, trainAccuracy: 0.5, valLoss: 1, valAccuracy: 0.5, valWeightedF1: 0.5,
                                              learningRate: 1e-3, seconds: 2) }
        (state.bestEpoch, state.bestScore, state.finished) = (3, 0.5, true)
        let written = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        #expect(written.contains("\"best_epoch\":3") && written.contains("\"best_score\":0.5") && !written.contains("bestEpoch"), "\(written)")
        #expect(try TrainingState.decode(Data(written.utf8)) == state)
        let earlierSpelling = written.replacingOccurrences(of: "\"best_epoch\"", with: "\"bestEpoch\"").replacingOccurrences(of: "\"best_score\"", with: "\"bestScore\"")
        #expect(earlierSpelling.contains("\"bestEpoch\":3"))
        #expect(try TrainingState.decode(Data(earlierSpelling.utf8)) == state)
    }

    @Test func theSelectionDecidesTheKeptEpochAndTheEarlyStopInATraining() throws {
        let byF1 = try Self.fit(nil, "select-f1")
        #expect(byF1.bestEpoch == 1 && byF1.epochs.count == 3, "falling F1: epoch 1 kept, stopped after patience")
        let last = try Self.fit(.last, "select-last")
        #expect(last.bestEpoch == 6 && last.epochs.count == 6, "no early stop")
        let byLoss = try Self.fit(.validationLoss, "select-loss")
        let losses = byLoss.epochs.map(\.valLoss)
        let lowest = try #require(losses.indices.min { losses[$0] < losses[$1] })
        #expect(byLoss.bestEpoch == lowest + 1 && byLoss.bestScore == -losses[lowest])
        #expect(byLoss.epochs.count == min(6, byLoss.bestEpoch + 2), "patience counts from the kept epoch")
        // Without validation clips the last epoch is kept and the validation figures are NaN (the report shows "—").
        let unvalidated = try Self.fit(.last, "select-unvalidated", validating: false)
        #expect(unvalidated.bestEpoch == 6 && unvalidated.epochs.count == 6)
        #expect(unvalidated.epochs.allSatisfy { $0.valLoss.isNaN && $0.valWeightedF1.isNaN && $0.trainLoss.isFinite })
    }
}

@Suite struct EpochProgressTests {
    /// Each epoch line ends with the fold's remaining epochs at the mean rate so far, and nothing after the last.
    @Test func theEpochLineGivesAnUpperBoundOnTheTimeLeft() {
        var epochs = EpochSelectionTests.log([0.1, 0.2, 0.3])
        for (i, seconds) in [4.0, 6.0, 5.0].enumerated() { epochs[i].seconds = seconds }
        // mean 5 s, 42 of 45 epochs left: 210 s
        #expect(Trainer.remaining(epochs, of: 45) == "  ETA ≤ 3m30s")
        #expect(Trainer.remaining(Array(epochs.prefix(1)), of: 2) == "  ETA ≤ 4.0s")
        #expect(Trainer.remaining(epochs, of: 3) == "")
        #expect(Trainer.remaining([], of: 45) == "")
    }
}
