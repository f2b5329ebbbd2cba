import EmoNN
import EmoTestSupport
import Foundation
import Testing
@testable import EmoModel

/// The moving average of the weights: its arithmetic, that it is what a fold keeps, and that a
/// training stopped mid-epoch and resumed keeps exactly the average an uninterrupted one keeps.
@Suite struct WeightAverageTests {
    static let config = TrainedModelTests.config

    static func trainer(averaging epochs: Double?, epochsToTrain: Int = 4) -> Trainer {
        let train = TrainedModelTests.samples(12, seed: 1)
        var training = TrainingConfig()
        training.epochs = epochsToTrain
        training.batchSize = 4
        training.checkpointEvery = 100
        training.weightAverageEpochs = epochs
        return Trainer(model: EmotionModel(config, seed: 3), config: training, standardizer: Standardizer.fit(train, config: config),
                       classWeights: Trainer.classWeights(labels: train.map(\.label), classes: config.classes), seed: 4)
    }

    /// Fits in `folder` with a validation score that rises every epoch, so the last epoch is kept;
    /// `resumingAfter` epochs already done (the score goes on rising from there).
    @discardableResult
    static func fit(_ trainer: Trainer, folder: URL, resumingAfter done: Int = 0) throws -> TrainingState {
        var epoch = Double(done)
        return try trainer.fit(train: TrainedModelTests.samples(12, seed: 1), validation: TrainedModelTests.samples(7, seed: 2),
                               policy: TrainedModelTests.policy, folder: folder) { _, _ in
            epoch += 1
            return (0, epoch / 100)
        }
    }

    static func keptWeights(_ folder: URL) throws -> [String: [Float]] {
        try SafeTensorsFile.read(from: folder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue)).tensors
            .mapValues(\.data)
    }

    @Test func theAverageFollowsItsDecayStepByStep() throws {
        let model = EmotionModel(Self.config, seed: 1)
        let average = WeightAverage(model: model, epochs: 2, stepsPerEpoch: 5)
        #expect(abs(average.decay - 0.9) < 1e-12)
        // The ramp: early steps take most of the latest weights.
        #expect(average.decay(atStep: 0) == 0.1)
        #expect(average.decay(atStep: 1000) == 0.9)
        let (name, tensor) = try #require(model.namedParameters().first)
        // Accumulated in Double, handed to the model in Float.
        var sums = tensor.data.map(Double.init)
        for step in 0..<4 {
            for i in tensor.data.indices { tensor.data[i] += Float(step + 1) * 0.01 * Float(i % 7) }
            average.update(step: step)
            let keep = average.decay(atStep: step)
            for i in sums.indices { sums[i] = keep * sums[i] + (1 - keep) * Double(tensor.data[i]) }
        }
        let expected = sums.map(Float.init)
        let latest = average.swapIn()
        let averaged = try #require(model.namedParameters().first { $0.0 == name }).1.data
        #expect(averaged == expected)
        #expect(averaged != latest[0])
        average.restore(latest)
        #expect(try #require(model.namedParameters().first).1.data == latest[0])
    }

    @Test func theFoldKeepsTheAverageNotTheLatestWeights() throws {
        let plainFolder = URL(fileURLWithPath: try TestSupport.temporaryFolder("average-off")).appendingPathComponent("fold-0")
        let averagedFolder = URL(fileURLWithPath: try TestSupport.temporaryFolder("average-on")).appendingPathComponent("fold-0")
        let plain = try Self.fit(Self.trainer(averaging: nil), folder: plainFolder)
        let averaged = try Self.fit(Self.trainer(averaging: 1.5), folder: averagedFolder)
        // Same draws, same epochs: only what is validated and kept differs.
        #expect(plain.bestEpoch == 4 && averaged.bestEpoch == 4)
        #expect(zip(plain.epochs, averaged.epochs).allSatisfy { $0.trainLoss == $1.trainLoss })
        #expect(zip(plain.epochs, averaged.epochs).contains { $0.valLoss != $1.valLoss })
        let plainWeights = try Self.keptWeights(plainFolder), averagedWeights = try Self.keptWeights(averagedFolder)
        #expect(Set(plainWeights.keys) == Set(averagedWeights.keys))
        #expect(plainWeights.contains { averagedWeights[$0.key] != $0.value })
        // The last checkpoint carries the average (as Double bit patterns) beside the latest weights,
        // which are the plain run's.
        let checkpoint = try SafeTensorsFile.read(from: averagedFolder.appendingPathComponent(Trainer.checkpointName(afterEpochs: 4)))
        let plainCheckpoint = try SafeTensorsFile.read(from: plainFolder.appendingPathComponent(Trainer.checkpointName(afterEpochs: 4)))
        for (name, tensor) in plainCheckpoint.tensors where !name.hasPrefix("optimizer.") {
            #expect(checkpoint.tensors[name]?.data == tensor.data, "\(name)")
        }
        let averageNames = checkpoint.integers.keys.filter { $0.hasPrefix(WeightAverage.prefix) }
        #expect(averageNames.count == EmotionModel(Self.config, seed: 1).stateDict().count)
        for name in averageNames {
            let kept = try #require(averagedWeights[String(name.dropFirst(WeightAverage.prefix.count))], "\(name)")
            let stored = checkpoint.integers[name]!.map { Float(Double(bitPattern: UInt64(bitPattern: $0))) }
            #expect(stored == kept, "\(name)")
        }
        // Batch norm's step counter counts steps; it is not averaged.
        let counters = averagedWeights.filter { $0.key.hasSuffix("num_batches_tracked") }
        #expect(!counters.isEmpty)
        for (name, value) in counters { #expect(value == plainCheckpoint.tensors[name]?.data, "\(name)") }
    }

    /// Stops at the second training batch of epoch 2 (three batches an epoch), with no checkpoint on
    /// disk but the stop's own. Validation asks too, so the stop counts only the asks after epoch 1's line.
    static func stopInSecondEpoch(_ trainer: Trainer) {
        var firstEpochDone = false, asked = 0
        trainer.log = { if $0.hasPrefix("epoch 1/") { firstEpochDone = true } }
        trainer.stopRequested = {
            if firstEpochDone { asked += 1 }
            return asked == 2
        }
    }

    @Test func aCheckpointWithoutAnAverageStartsOneFromItsWeights() throws {
        let folder = URL(fileURLWithPath: try TestSupport.temporaryFolder("average-late")).appendingPathComponent("fold-0")
        let plain = Self.trainer(averaging: nil)
        Self.stopInSecondEpoch(plain)
        #expect(throws: TrainingStopped.self) { try Self.fit(plain, folder: folder) }
        let resumed = Self.trainer(averaging: 1.5)
        let state = try Self.fit(resumed, folder: folder, resumingAfter: 1)
        #expect(state.epochs.count == 4)
        let average = try #require(resumed.average)
        // Three epochs of updates from the resumed weights: the kept weights are that average.
        #expect(try Self.keptWeights(folder) == average.floats)
    }

    @Test func aStoppedTrainingResumesToTheSameAverage() throws {
        let whole = URL(fileURLWithPath: try TestSupport.temporaryFolder("average-whole")).appendingPathComponent("fold-0")
        let wholeState = try Self.fit(Self.trainer(averaging: 1.5), folder: whole)

        let stopped = URL(fileURLWithPath: try TestSupport.temporaryFolder("average-stopped")).appendingPathComponent("fold-0")
        let first = Self.trainer(averaging: 1.5)
        Self.stopInSecondEpoch(first)
        #expect(throws: TrainingStopped.self) { try Self.fit(first, folder: stopped) }
        let resumedTrainer = Self.trainer(averaging: 1.5)
        var said: [String] = []
        resumedTrainer.log = { said.append($0) }
        let resumedState = try Self.fit(resumedTrainer, folder: stopped, resumingAfter: 1)
        #expect(said.contains("resuming after epoch 1"), "\(said)")
        #expect(resumedState.epochs.map(\.valLoss) == wholeState.epochs.map(\.valLoss))
        #expect(try Self.keptWeights(stopped) == Self.keptWeights(whole))
    }
}
