import EmoCore
import EmoNN
import EmoTestSupport
import Foundation
import Testing
@testable import EmoModel

/// One loader for both folders a trained model lives in, inference that is training's validation
/// pass, and model.json files that are old, damaged or inconsistent.
@Suite struct TrainedModelTests {
    static let config = ModelConfig(modalities: [.audio, .faces], classes: 7, nMels: 16, frames: 32, faceFrames: 2,
                                    faceSize: 16, audioChannels: [4], faceChannels: [4], embedding: 8)
    static let labels = LabelMap.ravdess7.labels

    /// The window policy of the trained folds: windows of the model's 32 frames every 12.
    static let policy = WindowPolicy(frames: config.frames, hopFrames: 12)

    /// Clips shorter than, as long as and longer than a window (several windows and a tail).
    static func samples(_ count: Int, seed: UInt64) -> [ClipFeatures] {
        var rng = SplitMix64(seed: seed)
        let c = config
        return (0..<count).map { i in
            let frames = [c.frames, c.frames / 2, c.frames * 2 + 5][i % 3]
            let logmel: [Float]? = i % 4 == 3 ? nil : (0..<(c.nMels * frames)).map { _ in -80 + Float(rng.next() % 8000) / 100 }
            let faces: [UInt8]? = i % 3 == 2 && logmel != nil ? nil : (0..<(c.faceFrames * c.faceSize * c.faceSize * 3)).map { _ in UInt8(rng.next() % 256) }
            return ClipFeatures(id: "\(i)", logmel: logmel, melFrames: frames,
                                faces: faces, faceMask: faces == nil ? [0, 0] : [1, Float(i % 2)], label: i % c.classes)
        }
    }

    /// Trains one short fold the way the train stage does and writes its model.json beside the weights.
    static func trainedFold() throws -> (folder: URL, trained: TrainedModel, validation: [ClipFeatures], state: TrainingState) {
        let train = samples(12, seed: 1), validation = samples(7, seed: 2)
        var training = TrainingConfig()
        training.epochs = 2
        training.batchSize = 4
        let standardizer = Standardizer.fit(train, config: config)
        let trainer = Trainer(model: EmotionModel(config, seed: 3), config: training, standardizer: standardizer,
                              classWeights: Trainer.classWeights(labels: train.map(\.label), classes: config.classes), seed: 4)
        let folder = URL(fileURLWithPath: try TestSupport.temporaryFolder("trained-model")).appendingPathComponent("fold-0")
        let state = try trainer.fit(train: train, validation: validation, policy: policy, folder: folder) { truth, predicted in
            (Double(zip(truth, predicted).filter { $0 == $1 }.count) / Double(truth.count), 0.5)
        }
        let trained = TrainedModel(config: config, standardizer: standardizer, training: training, labels: labels,
                                   fold: ActorFold(index: 0, test: [1], validation: [2], train: [3, 4]), bestEpoch: state.bestEpoch,
                                   window: policy)
        try trained.jsonData().write(to: folder.appendingPathComponent(TrainedModel.fileName))
        return (folder, trained, validation, state)
    }

    @Test func loadingAFoldGivesTheValidationLossTrainingRecorded() throws {
        let (folder, trained, validation, state) = try Self.trainedFold()
        let classifier = try TrainedModel.load(folder: folder, weights: .foldBest)
        #expect(classifier.trained == trained)
        #expect(classifier.labels == Self.labels)
        // The best epoch is the first here (the scorer gives every epoch the same wF1): its recorded
        // validation loss is what inference over the saved weights computes, to the last bit.
        #expect(state.bestEpoch == 1)
        let (loss, probabilities) = try classifier.inference.evaluateClips(validation, policy: Self.policy)
        #expect(loss == state.epochs[0].valLoss)
        #expect(probabilities.count == validation.count)
        #expect(probabilities.allSatisfy { $0.count == Self.labels.count && abs($0.reduce(0, +) - 1) < 1e-5 })
        #expect(try classifier.clipProbabilities(validation) == probabilities)
    }

    @Test func anExportedRunFolderLoadsToTheSameClassifier() throws {
        let (folder, _, validation, _) = try Self.trainedFold()
        let run = URL(fileURLWithPath: try TestSupport.temporaryFolder("run"))
        try FileManager.default.copyItem(at: folder.appendingPathComponent("best.safetensors"),
                                         to: run.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: folder.appendingPathComponent("model.json"),
                                         to: run.appendingPathComponent("model.json"))
        let fromFold = try TrainedModel.load(folder: folder, weights: .foldBest)
        let fromRun = try TrainedModel.load(folder: run, weights: .exported)
        #expect(fromRun.trained == fromFold.trained)
        #expect(try fromRun.clipProbabilities(validation) == fromFold.clipProbabilities(validation))
        // A run folder holds no best.safetensors: asking for it names the missing file.
        let error = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: run, weights: .foldBest) }
        #expect(error.path == run.appendingPathComponent("best.safetensors").path)
    }

    /// Weights that make every score NaN would read as the first class with all probabilities 0: a
    /// non-finite weight or a negative variance is refused on loading, an overflow on scoring, by name.
    @Test func weightsThatCannotGiveFiniteScoresAreRefusedByName() throws {
        let (folder, _, validation, _) = try Self.trainedFold()
        let url = folder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue)
        let sound = try SafeTensorsFile.read(from: url)
        func rewritten(_ name: String, _ change: (inout [Float]) -> Void) throws {
            var file = sound
            let tensor = try #require(file.tensors[name], "\(file.tensors.keys.sorted())")
            var values = tensor.data
            change(&values)
            file.tensors[name] = try Tensor(shape: tensor.shape, data: values)
            try file.write(to: url)
        }
        let weight = try #require(sound.tensors.keys.sorted().first { $0.hasSuffix("conv.weight") || $0.hasSuffix(".weight") })
        for bad in [Float.nan, .infinity] {
            try rewritten(weight) { $0[1] = bad }
            let error = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
            #expect(error.path == url.path && error.description.contains("tensor \(weight) holds \(bad) at index 1"), "\(error)")
        }
        let variance = try #require(sound.tensors.keys.sorted().first { $0.hasSuffix("running_var") })
        try rewritten(variance) { $0[0] = -1 }
        let negative = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        #expect(negative.description.contains("tensor \(variance) holds the negative variance -1.0"), "\(negative)")

        // Finite weights near Float's largest overflow on any input: +inf and -inf meet in one sum.
        var huge = sound
        for (name, tensor) in sound.tensors where name.hasSuffix("weight") {
            huge.tensors[name] = try Tensor(shape: tensor.shape, data: tensor.data.indices.map { $0 % 2 == 0 ? 3e38 : -3e38 })
        }
        try huge.write(to: url)
        let overflowing = try TrainedModel.load(folder: folder, weights: .foldBest)
        let error = try #require(throws: TrainedModelError.self) { try overflowing.clipProbabilities(validation) }
        #expect(error.path == url.path && error.description.contains("the model's scores for 0 are not probabilities"), "\(error)")
        // What to do: the same parameters would train the same weights, so "train again" alone would not help.
        #expect(error.description.contains("train with a lower train.learning_rate or train.weight_decay"), "\(error)")
    }

    @Test func modelJSONIsSnakeCaseAndCamelCaseFilesStillLoad() throws {
        let (folder, trained, _, _) = try Self.trainedFold()
        let written = String(decoding: try Data(contentsOf: folder.appendingPathComponent("model.json")), as: UTF8.self)
        #expect(written.contains("\"best_epoch\"") && written.contains("\"mel_mean\"") && !written.contains("bestEpoch"))
        // Runs exported before the convention wrote Swift's property names.
        let camel = JSONEncoder()
        camel.outputFormatting = [.sortedKeys]
        let old = try camel.encode(trained)
        #expect(String(decoding: old, as: UTF8.self).contains("\"bestEpoch\""))
        try old.write(to: folder.appendingPathComponent("model.json"))
        #expect(try TrainedModel.description(in: folder) == trained)
    }

    @Test func damagedOrInconsistentDescriptionsNameTheFile() throws {
        let (folder, trained, _, _) = try Self.trainedFold()
        let path = folder.appendingPathComponent("model.json").path
        func rejects(_ data: Data, saying fragment: String) throws {
            try data.write(to: URL(fileURLWithPath: path))
            let error = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
            #expect(error.path == path)
            #expect(error.description.contains(fragment), "\(error)")
        }
        try rejects(Data("{\"config\": 3".utf8), saying: "not a model description")
        var twoLabels = trained
        twoLabels.labels = ["calm", "sad"]
        try rejects(try twoLabels.jsonData(), saying: "2 labels for 7 classes")
        var sameLabelTwice = trained
        sameLabelTwice.labels[1] = sameLabelTwice.labels[0]
        try rejects(try sameLabelTwice.jsonData(), saying: "name a class twice")
        // The rows of the classifier follow the label map's order: swapped or renamed classes are refused.
        var swapped = trained
        swapped.labels.swapAt(0, 1)
        try rejects(try swapped.jsonData(), saying: "are not a label map's classes in its order (ravdess8: neutral, calm,")
        var renamed = trained
        renamed.labels[6] = "bored"
        try rejects(try renamed.jsonData(), saying: "the answers would be named wrongly")
        // Every input untrained leaves the model nothing to answer from.
        var learntNothing = trained
        learntNothing.untrainedModalities = trained.config.modalities
        try rejects(try learntNothing.jsonData(), saying: "and with it every input the model has: it learnt from none")
        var skippingHop = trained
        skippingHop.window = WindowPolicy(frames: Self.config.frames, hopFrames: Self.config.frames + 1)
        try rejects(try skippingHop.jsonData(), saying: "hop must be from 1 to the window")
        var shortStatistics = trained
        shortStatistics.standardizer.melStd.removeLast()
        try rejects(try shortStatistics.jsonData(), saying: "mel statistics for 16 bands")
        var noBatch = trained
        noBatch.training.batchSize = 0
        try rejects(try noBatch.jsonData(), saying: "batch_size 0")
        // A damaged features digest is this file's fault (it was reported as features.json's), shown whole.
        for digest in ["garbage", "", String(repeating: "a", count: 16), String(repeating: "A", count: 64), String(repeating: "a", count: 63) + "\n"] {
            var damagedDigest = trained
            damagedDigest.featuresSha256 = digest
            try rejects(try damagedDigest.jsonData(), saying: "features_sha256 \"\(digest.echoed)\" is not a SHA-256")
        }
        // Speaker statistics recorded for a model that says it does not normalise by speaker: one was edited.
        var speakersWithoutNorm = trained
        speakersWithoutNorm.speakersSha256 = String(repeating: "0123456789abcdef", count: 4)
        try rejects(try speakersWithoutNorm.jsonData(), saying: "speakers_sha256 records speaker statistics, but config.speaker_norm is off")
        // A fold the split could not have written: an actor RAVDESS lacks, no training actor, an actor twice, or one actor in two roles.
        let folds: [(String, (inout ActorFold) -> Void)] = [
            ("fold: train lists 99, which is not a RAVDESS actor (1-24)", { $0.train = [3, 99] }),
            ("fold: test lists -1, which is not a RAVDESS actor", { $0.test = [-1] }),
            ("fold: actor 1 is listed under both train and test", { $0.train = [3, 1] }),
            ("fold: actor 4 is listed under both train and validation", { $0.validation = [2, 4] }),
            ("fold: train lists no actor", { $0.train = [] }),
            ("fold: train lists actor 4 twice", { $0.train = [4, 5, 4] }),
        ]
        for (fragment, edit) in folds {
            var strayFold = trained
            edit(&strayFold.fold)
            try rejects(try strayFold.jsonData(), saying: fragment)
        }
        // An actor both validated and tested on, or one test actor listed twice, as splits before 2026-11-30 could
        // write, still loads.
        var olderSplit = trained
        olderSplit.fold.test = [1, 2, 1]
        try olderSplit.jsonData().write(to: URL(fileURLWithPath: path))
        #expect(throws: Never.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        var wellFormed = trained
        wellFormed.featuresSha256 = String(repeating: "0123456789abcdef", count: 4)
        try wellFormed.jsonData().write(to: URL(fileURLWithPath: path))
        #expect(try TrainedModel.description(in: folder).featuresSha256 == wellFormed.featuresSha256)
        try rejects(Data(), saying: "not a model description")
        // A valid document with a wrong value or a missing key says where, in the file's own spelling.
        let written = String(decoding: try trained.jsonData(), as: UTF8.self)
        let fraction = written.replacingOccurrences(of: #""best_epoch"\s*:\s*[0-9]+"#, with: #""best_epoch": 1.5"#, options: .regularExpression)
        #expect(fraction != written)
        try rejects(Data(fraction.utf8), saying: "`best_epoch` = 1.5 does not fit its field (a fraction where a whole number belongs")
        // Foundation names no place for these; the value is found and named.
        var hugeFrames = try #require(try JSONSerialization.jsonObject(with: try trained.jsonData()) as? [String: Any])
        var config = try #require(hugeFrames["config"] as? [String: Any])
        config["frames"] = 1.5e21
        hugeFrames["config"] = config
        try rejects(try JSONSerialization.data(withJSONObject: hugeFrames), saying: "`config.frames` = 1.5e+21 does not fit its field")
        let mean = written.replacingOccurrences(of: #""mel_mean"\s*:\s*\[[^,\]]+"#, with: #""mel_mean": [1e39"#, options: .regularExpression)
        #expect(mean != written)
        try rejects(Data(mean.utf8), saying: "`standardizer.mel_mean[0]` = 1e+39 does not fit its field")
        let object = try #require(try JSONSerialization.jsonObject(with: try trained.jsonData()) as? [String: Any])
        var withoutLabels = object
        withoutLabels["labels"] = nil
        try rejects(try JSONSerialization.data(withJSONObject: withoutLabels), saying: "not a model description: `labels` is missing")
        // Sizes the model is built from before any weight is read: each is refused by name, never
        // allocated (a billion channels) or trapped on (a negative one).
        let shapes: [(String, (inout ModelConfig) -> Void)] = [
            ("audio_channels [-4, 8]", { $0.audioChannels = [-4, 8] }),
            ("audio_channels [4, 1000000000]", { $0.audioChannels = [4, 1_000_000_000] }),
            ("face_channels []", { $0.faceChannels = [] }),
            ("embedding 1000000000000", { $0.embedding = 1_000_000_000_000 }),
            ("embedding 7", { $0.embedding = 7 }),
            ("frames 1000000000000000", { $0.frames = 1_000_000_000_000_000 }),
            ("face_frames 1000000000", { $0.faceFrames = 1_000_000_000 }),
            ("face_size 0", { $0.faceSize = 0 }),
            ("n_mels 100000", { $0.nMels = 100_000 }),
            ("dropout 1.5", { $0.dropout = 1.5 }),
            ("modalities []", { $0.modalities = [] }),
        ]
        for (fragment, edit) in shapes {
            var huge = trained
            edit(&huge.config)
            try rejects(try huge.jsonData(), saying: fragment)
        }
        for (key, edit) in [("mel_std[0] = 0.0", { (s: inout Standardizer) in s.melStd[0] = 0 }),
                            ("mel_std[1] = -1.0", { $0.melStd[1] = -1 }),
                            ("face_std[2] = 0.0", { $0.faceStd[2] = 0 }),
                            // Above 0 but below the floor training applies: every input would overflow.
                            ("mel_std[3] = 1e-38 is not from 0.001 (the floor training applies) to 10000", { $0.melStd[3] = 1e-38 }),
                            ("mel_mean[0] = 3e+38 is not from -10000 to 10000", { $0.melMean[0] = 3e38 })] {
            var flat = trained
            edit(&flat.standardizer)
            try rejects(try flat.jsonData(), saying: key)
        }
        // Within every limit, but far larger than the weights file: refused before the model is built
        // (the GRU and projection alone would be about 13 GB).
        var oversized = trained
        oversized.config.nMels = 512; oversized.config.audioChannels = [1024]; oversized.config.embedding = 4096
        oversized.config.recurrent = true
        oversized.standardizer.melMean = Array(repeating: 0, count: 512); oversized.standardizer.melStd = Array(repeating: 1, count: 512)
        #expect(oversized.config.shapeProblem == nil)
        try oversized.jsonData().write(to: URL(fileURLWithPath: path))
        let tooSmall = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        #expect(tooSmall.path == folder.appendingPathComponent("best.safetensors").path)
        #expect(tooSmall.reason.contains("too few for the model"), "\(tooSmall)")
        let weights = try #require(try? FileManager.default.attributesOfItem(atPath: tooSmall.path)[.size] as? Int)
        #expect(try #require(trained.config.dominantWeightCount) * 4 <= weights, "the real model fits its own file")
        // A weights file reached by a link is sized as its target.
        try trained.jsonData().write(to: URL(fileURLWithPath: path))
        let real = folder.appendingPathComponent("real.safetensors").path
        try FileManager.default.moveItem(atPath: tooSmall.path, toPath: real)
        try FileManager.default.createSymbolicLink(atPath: tooSmall.path, withDestinationPath: real)
        #expect(throws: Never.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        try FileManager.default.removeItem(atPath: path)
        let missing = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        #expect(missing.path == path && missing.reason.hasPrefix("cannot read"))
    }

    /// Weights with tensors the description's model has no place for (here: its face branch, with
    /// `faces` taken out of the modalities) would load in part and answer with a model the files do not
    /// describe: refused, naming a stray tensor. The description as trained still loads.
    @Test func weightsOfAnotherArchitectureAreRefused() throws {
        let (folder, trained, _, _) = try Self.trainedFold()
        var audioOnly = trained
        audioOnly.config.modalities = [.audio]
        let path = folder.appendingPathComponent(TrainedModel.fileName)
        try audioOnly.jsonData().write(to: path)
        let stray = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        #expect(stray.path == folder.appendingPathComponent("best.safetensors").path)
        #expect(stray.reason.contains("the model has no place for (face"), "\(stray)")
        try trained.jsonData().write(to: path)
        #expect(throws: Never.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        // A tensor renamed (here to 10 KB of name) is named as the one the model lacks, and the stray name is cut.
        let weights = folder.appendingPathComponent("best.safetensors")
        let original = try Data(contentsOf: weights)
        var file = try SafeTensorsFile.read(from: weights)
        let renamed = try #require(file.tensors.keys.sorted().first { !$0.hasPrefix(Checkpoint.trainingStatePrefix) })
        file.tensors[String(repeating: "x", count: 10_000)] = file.tensors.removeValue(forKey: renamed)
        try file.write(to: weights)
        let lacking = try #require(throws: TrainedModelError.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
        #expect(lacking.reason.contains("lacks 1 tensor(s) the model needs (\(renamed)) and holds 1 tensor(s) the model has no place for (xxxx"),
                "\(lacking.reason.prefix(400))")
        #expect(lacking.reason.utf8.count < 600 && lacking.reason.contains("… (10000 bytes)"), "\(lacking.reason.prefix(400))")
        try original.write(to: weights)
        #expect(throws: Never.self) { try TrainedModel.load(folder: folder, weights: .foldBest) }
    }
}
