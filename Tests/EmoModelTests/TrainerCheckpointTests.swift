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

    /// Trains the fold in `folder` on (resuming what is there), returning what the trainer said.
    static func resumeSaying(_ folder: URL) throws -> [String] {
        let resumed = WeightAverageTests.trainer(averaging: nil)
        var said: [String] = []
        resumed.log = { said.append($0) }
        try WeightAverageTests.fit(resumed, folder: folder)
        return said
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

    /// A training finishes before its last epoch only by an early stop: a state.json edited to say finished after
    /// 1 of 4 epochs, with patience left, goes on training (it was accepted, and the fold kept 1 epoch's weights).
    @Test func aStateFinishedEarlyWithoutAnEarlyStopGoesOnTraining() throws {
        let (whole, edited) = try Self.wholeAndStoppedInSecondEpoch("finished-early")
        let stateFile = edited.appendingPathComponent(TrainingState.fileName)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: stateFile)) as? [String: Any])
        #expect(object["finished"] as? Bool == false && (object["epochs"] as? [Any])?.count == 1)
        object["finished"] = true
        try JSONSerialization.data(withJSONObject: object).write(to: stateFile)
        let said = try Self.resumeSaying(edited)
        #expect(said.contains { $0.hasPrefix("state.json says finished after 1 of 4 epochs, with no early stop") && $0.hasSuffix("training goes on") }, "\(said)")
        #expect(try TrainingState.decode(Data(contentsOf: stateFile)).epochs.count == 4)
        #expect(try WeightAverageTests.keptWeights(edited) == WeightAverageTests.keptWeights(whole), "it trains on as a whole run trains")
    }

    /// A state file that cannot be read is said, and the fold starts over (as a whole run trains it).
    @Test func anUnreadableStateFileIsSaidAndTheFoldStartsOver() throws {
        let (whole, folder) = try Self.wholeAndStoppedInSecondEpoch("state")
        try Data("garbage{".utf8).write(to: folder.appendingPathComponent(TrainingState.fileName))
        let said = try Self.resumeSaying(folder)
        #expect(said.contains { $0.hasSuffix("state.json cannot be read as a training state: training starts over from epoch 1") }, "\(said)")
        #expect(try WeightAverageTests.keptWeights(folder) == WeightAverageTests.keptWeights(whole))
    }

    /// A state.json edited by hand into one no training writes (its kept epoch not among its epochs), and a
    /// checkpoint whose optimizer step count is absurd (its SHA-256 recorded anew), start the fold over: resuming
    /// from them did arithmetic that trapped.
    @Test func anImpossibleStateOrStepCountStartsTheFoldOver() throws {
        let (whole, edited) = try Self.wholeAndStoppedInSecondEpoch("impossible")
        let stateFile = edited.appendingPathComponent(TrainingState.fileName)
        let original = try String(contentsOf: stateFile, encoding: .utf8)
        let recorded = try TrainingState.decode(Data(original.utf8))
        for (bestEpoch, epochs) in [(Int.min, 1), (2, 1), (0, 1)] {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(original.utf8)) as? [String: Any])
            object["best_epoch"] = bestEpoch
            var logs = try #require(object["epochs"] as? [[String: Any]])
            #expect(logs.count == epochs)
            #expect(throws: DecodingError.self, "best_epoch \(bestEpoch)") { try TrainingState.decode(try JSONSerialization.data(withJSONObject: object)) }
            // None kept, yet a kept score: no training writes that (it resumed, then failed as "diverged" for good).
            object["best_epoch"] = -1
            object["best_score"] = 0.5
            #expect(throws: DecodingError.self, "best_epoch -1 with a score") { try TrainingState.decode(try JSONSerialization.data(withJSONObject: object)) }
            object["best_score"] = nil
            logs[0]["epoch"] = 7
            object["epochs"] = logs; object["best_epoch"] = recorded.bestEpoch
            #expect(throws: DecodingError.self, "an epoch numbered 7") { try TrainingState.decode(try JSONSerialization.data(withJSONObject: object)) }
        }
        var object = try #require(try JSONSerialization.jsonObject(with: Data(original.utf8)) as? [String: Any])
        object["best_epoch"] = Int.min
        try JSONSerialization.data(withJSONObject: object).write(to: stateFile)
        let said = try Self.resumeSaying(edited)
        #expect(said.contains { $0.hasSuffix("state.json cannot be read as a training state: training starts over from epoch 1") }, "\(said)")
        #expect(try WeightAverageTests.keptWeights(edited) == WeightAverageTests.keptWeights(whole))

        let (_, stepped) = try Self.wholeAndStoppedInSecondEpoch("step-count")
        let checkpoint = stepped.appendingPathComponent("checkpoint-1.safetensors")
        var file = try SafeTensorsFile.read(from: checkpoint)
        #expect(file.integers["optimizer.step"]?.first.map { $0 > 0 } == true)
        file.integers["optimizer.step"] = [Int64.max]
        let before = try SHA256Hex.file(atPath: checkpoint.path).hex
        try file.write(to: checkpoint)
        let steppedState = stepped.appendingPathComponent(TrainingState.fileName)
        try String(contentsOf: steppedState, encoding: .utf8).replacingOccurrences(of: before, with: try SHA256Hex.file(atPath: checkpoint.path).hex)
            .write(to: steppedState, atomically: true, encoding: .utf8)
        let told = try Self.resumeSaying(stepped)
        #expect(told.contains { $0.contains("has no optimizer step count from 0 to 2^24") && $0.hasSuffix("training starts over from epoch 1") }, "\(told)")
        #expect(try WeightAverageTests.keptWeights(stepped) == WeightAverageTests.keptWeights(whole))
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

        // With no epoch kept, patience counts from epoch 0: patience 3 stops after epoch 3 (it stopped after 2).
        training.epochs = 20
        training.patience = 3
        let patient = Trainer(model: EmotionModel(WeightAverageTests.config, seed: 3), config: training,
                              standardizer: Standardizer.fit(train, config: WeightAverageTests.config),
                              classWeights: Trainer.classWeights(labels: train.map(\.label), classes: WeightAverageTests.config.classes), seed: 4)
        var said: [String] = []
        patient.log = { said.append($0) }
        let stopped = folder.deletingLastPathComponent().appendingPathComponent("fold-1")
        #expect(throws: (any Error).self) { try WeightAverageTests.fit(patient, folder: stopped) }
        #expect(said.contains { $0.hasPrefix("early stop: no better") } && said.filter { $0.hasPrefix("epoch ") && $0.contains("/20 ") }.count == 3, "\(said)")
        #expect(said.filter { $0.contains("its weights are not finite (training diverged): not kept") }.count == 3, "each epoch says it was passed over: \(said)")
    }
}
