import EmoCore
import EmoNN
import EmoTestSupport
import Foundation
import Testing
@testable import EmoModel

/// What a resumed or diverged training must not do: resume from a checkpoint damaged since it was
/// written, or pass off weights holding NaN as a trained fold.
struct TrainerCheckpointTests {
    /// A fold trained whole, and the same fold stopped in its second epoch (its checkpoint after epoch 1 on disk).
    static func wholeAndStoppedInSecondEpoch(_ name: String) throws -> (whole: URL, stopped: URL) {
        let whole = URL(fileURLWithPath: try TestSupport.temporaryFolder(name + "-whole")).appendingPathComponent("fold-0")
        try WeightAverageTests.fit(WeightAverageTests.trainer(averaging: nil), folder: whole)
        let stopped = URL(fileURLWithPath: try TestSupport.temporaryFolder(name + "-stopped")).appendingPathComponent("fold-0")
        let first = WeightAverageTests.trainer(averaging: nil)
        WeightAverageTests.stopInSecondEpoch(first)
        #expect(throws: TrainingStopped.self) { try WeightAverageTests.fit(first, folder: stopped) }
        return (whole, stopped)
    }

    @Test func aCheckpointDamagedSinceWrittenIsNotResumedFrom() throws {
        let (whole, damaged) = try Self.wholeAndStoppedInSecondEpoch("checkpoint")
        let state = try TrainingState.decode(Data(contentsOf: damaged.appendingPathComponent(TrainingState.fileName)))
        let checkpoint = damaged.appendingPathComponent("checkpoint-1.safetensors")
        #expect(state.checkpointSHA256 == (try SHA256Hex.file(atPath: checkpoint.path).hex), "state.json names its checkpoint's bytes")
        // One bit of one weight: the file still parses and its step still matches.
        var bytes = try Data(contentsOf: checkpoint)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: checkpoint)

        let resumed = WeightAverageTests.trainer(averaging: nil)
        var said: [String] = []
        resumed.log = { said.append($0) }
        let after = try WeightAverageTests.fit(resumed, folder: damaged)
        #expect(said.contains { $0.contains("checkpoint-1.safetensors is not the checkpoint state.json recorded") && $0.hasSuffix("training starts over from epoch 1") },
                "\(said)")
        #expect(!said.contains { $0.hasPrefix("resuming after epoch") })
        #expect(after.epochs.count == 4)
        #expect(try WeightAverageTests.keptWeights(damaged) == WeightAverageTests.keptWeights(whole), "started over, it trains what a whole run trains")
    }

    /// A state file that cannot be read is said, and the fold starts over (as a whole run trains it).
    @Test func anUnreadableStateFileIsSaidAndTheFoldStartsOver() throws {
        let (whole, folder) = try Self.wholeAndStoppedInSecondEpoch("state")
        try Data("garbage{".utf8).write(to: folder.appendingPathComponent(TrainingState.fileName))
        let resumed = WeightAverageTests.trainer(averaging: nil)
        var said: [String] = []
        resumed.log = { said.append($0) }
        try WeightAverageTests.fit(resumed, folder: folder)
        #expect(said.contains { $0.hasSuffix("state.json cannot be read as a training state: training starts over from epoch 1") }, "\(said)")
        #expect(try WeightAverageTests.keptWeights(folder) == WeightAverageTests.keptWeights(whole))
    }

    @Test func aTrainingWhoseWeightsAreNeverFiniteFailsRatherThanKeepingThem() throws {
        let folder = URL(fileURLWithPath: try TestSupport.temporaryFolder("diverged")).appendingPathComponent("fold-0")
        let train = TrainedModelTests.samples(12, seed: 1)
        var training = TrainingConfig()
        training.epochs = 2
        training.batchSize = 4
        training.learningRate = 1e38
        let trainer = Trainer(model: EmotionModel(WeightAverageTests.config, seed: 3), config: training,
                              standardizer: Standardizer.fit(train, config: WeightAverageTests.config),
                              classWeights: Trainer.classWeights(labels: train.map(\.label), classes: WeightAverageTests.config.classes), seed: 4)
        do {
            try WeightAverageTests.fit(trainer, folder: folder)
            Issue.record("a training whose weights overflowed passed for trained")
        } catch {
            #expect("\(error)".contains("training diverged: no epoch of the 2 left weights without NaN or infinity"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue).path),
                "no weights kept")
    }
}
