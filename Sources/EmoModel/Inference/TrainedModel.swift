import EmoCore
import EmoNN
import Foundation

/// The actors of one fold of the split: training, validation (early stopping) and test.
/// The split plan lists them; a trained model records the fold it was trained on.
public struct ActorFold: Codable, Equatable, Sendable {
    public var index: Int
    public var test: [Int]
    public var validation: [Int]
    public var train: [Int]

    public init(index: Int, test: [Int], validation: [Int], train: [Int]) {
        self.index = index; self.test = test; self.validation = validation; self.train = train
    }
}

/// What evaluation, export and predict need besides the weights, kept beside them as `model.json`
/// in a fold folder (`cache/train/<fp>/fold-<k>/`) and in an exported run (`runs/<id>/`).
public struct TrainedModel: Codable, Equatable, Sendable {
    public var config: ModelConfig
    public var standardizer: Standardizer
    public var training: TrainingConfig
    public var labels: [String]
    public var fold: ActorFold
    public var bestEpoch: Int
    /// How clips longer than the window are scored. Optional so that models written before it
    /// load; they get `windowPolicy`'s fallback.
    public var window: WindowPolicy?
    /// The SHA-256 of the run's `features.json` in canonical form, which export writes beside it: a
    /// features file edited apart from its model is refused rather than answered from. Nil in a fold
    /// folder and in runs exported before it.
    public var featuresSha256: String?
    /// The SHA-256 of the run's `speakers.json` (a speaker-normalised model's per-actor statistics), so that
    /// statistics edited apart from the model are refused, and a missing file is called that. Nil in a fold
    /// folder, for other models, and in runs exported before it.
    public var speakersSha256: String?
    /// The model's inputs no training clip of its fold had (a cross-validation fold whose training actors
    /// have no video): their branch never learnt, so the model is given none of that input, as in training.
    /// Nil when every input was trained, and in models written before it was recorded.
    public var untrainedModalities: [ModelConfig.Modality]?

    /// The inputs the model learnt from: its modalities but the untrained ones.
    public var learntModalities: [ModelConfig.Modality] { config.modalities.filter { !(untrainedModalities ?? []).contains($0) } }

    /// The description's file name, in either kind of folder.
    public static let fileName = "model.json"
    /// The most read of a run's small JSON descriptions (model.json, features.json: a few KB when export
    /// writes them): a larger file is refused by its size before it is read.
    public static let descriptionLimit = 16 << 20

    /// Which weights a folder holds: training keeps the best epoch of a fold as `best.safetensors`;
    /// export copies it into the run folder as `model.safetensors`.
    public enum Weights: String, Sendable {
        case foldBest = "best.safetensors"
        case exported = "model.safetensors"
    }

    public init(config: ModelConfig, standardizer: Standardizer, training: TrainingConfig, labels: [String],
                fold: ActorFold, bestEpoch: Int, window: WindowPolicy? = nil) {
        self.config = config; self.standardizer = standardizer; self.training = training; self.labels = labels
        self.fold = fold; self.bestEpoch = bestEpoch; self.window = window
    }

    /// The recorded policy, else windows of the model's input length every second (100 frames),
    /// which is how `predict` cut long files before policies were recorded.
    public var windowPolicy: WindowPolicy { window ?? WindowPolicy(frames: config.frames, hopFrames: 100) }

    /// `model.json`'s bytes in the shared convention (snake_case keys, sorted, pretty).
    public func jsonData() throws -> Data {
        try JSONOutput.encoder(pretty: true).encode(self)
    }

    /// The model a folder holds, ready to classify: its `model.json` and its weights.
    public static func load(folder: URL, weights: Weights) throws -> EmotionClassifier {
        let trained = try description(in: folder)
        let weightsURL = folder.appendingPathComponent(weights.rawValue)
        try checkWeightsCanHold(trained.config, weightsURL)
        let model = EmotionModel(trained.config, seed: 0)
        // Foundation's reading errors say neither what the path is nor why ("permission" for a pipe).
        do { close(try RegularFile.openForReading(weightsURL.path).descriptor) } catch {
            throw TrainedModelError(path: weightsURL.path, reason: EmoError.reason(of: error))
        }
        do {
            try Checkpoint.load(from: weightsURL, model: model, exactly: true)
        } catch {
            throw TrainedModelError(path: weightsURL.path, reason: "cannot load the weights: \(error)")
        }
        try checkValues(model, weightsURL)
        return EmotionClassifier(trained: trained, model: model, weightsPath: weightsURL.path)
    }

    /// A NaN or infinite weight, or a negative running variance, makes every score NaN, which would come
    /// out as the first class with all probabilities 0: refused by name instead.
    static func checkValues(_ model: EmotionModel, _ url: URL) throws {
        for (name, tensor) in model.namedParameters() + model.namedBuffers() {
            if let index = tensor.data.firstIndex(where: { !$0.isFinite }) {
                throw TrainedModelError(path: url.path, reason: "tensor \(name) holds \(tensor.data[index]) at index \(index): "
                                        + "the weights are damaged (or training diverged); train again")
            }
            if name.hasSuffix("running_var"), let index = tensor.data.firstIndex(where: { $0 < 0 }) {
                throw TrainedModelError(path: url.path, reason: "tensor \(name) holds the negative variance \(tensor.data[index]) at index \(index): "
                                        + "the weights are damaged; train again")
            }
        }
    }

    /// The model is built before its weights are read: a description whose largest matrices need more
    /// float32 values than the weights file has bytes for is refused before anything is allocated.
    static func checkWeightsCanHold(_ config: ModelConfig, _ url: URL) throws {
        // stat follows links (a linked weights file is sized as its target); anything but a regular
        // file is reported by the load that follows.
        var info = stat()
        guard stat(url.path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return }
        let size = Int(info.st_size)
        let count = config.dominantWeightCount
        guard let count, count <= size / 4 else {
            throw TrainedModelError(path: url.path, reason: "holds \(size) bytes, too few for the model its model.json describes "
                + "(\(count.map { "at least \($0) float32 weights" } ?? "a weight count past Int") for audio_channels "
                + "\(config.audioChannels), n_mels \(config.nMels), embedding \(config.embedding)): it is cut short, or the two files do not belong together")
        }
    }

    /// Only `model.json`, read in either key spelling (runs exported before the snake_case
    /// convention hold camelCase) and checked against what inference indexes by.
    public static func description(in folder: URL) throws -> TrainedModel {
        let url = folder.appendingPathComponent(fileName)
        let data: Data
        do { data = try RegularFile.read(url.path, atMost: descriptionLimit) } catch {
            throw TrainedModelError(path: url.path, reason: EmoError.reason(of: error))
        }
        let trained: TrainedModel
        do { trained = try JSONOutput.decoder().decode(TrainedModel.self, from: data) } catch {
            throw TrainedModelError(path: url.path, reason: "not a model description: \(JSONOutput.problem(error, in: data, decoding: TrainedModel.self))")
        }
        if let problem = trained.inconsistency { throw TrainedModelError(path: url.path, reason: problem) }
        return trained
    }

    /// What would make inference index out of range or never advance, if anything.
    var inconsistency: String? {
        let c = config
        if let problem = c.shapeProblem { return "config: \(problem)" }
        if labels.count != c.classes { return "\(labels.count) labels for \(c.classes) classes" }
        if Set(labels).count != labels.count { return "labels \(labels) name a class twice" }
        // The class order is the weights' row order: labels in another order (or other names) would
        // name every answer wrongly, and train writes only a label map's own list.
        if !LabelMap.all.contains(where: { $0.labels == labels }) {
            return "labels \(labels) are not a label map's classes in its order ("
                + LabelMap.all.map { "\($0.name): \($0.labels.joined(separator: ", "))" }.joined(separator: "; ")
                + "): the classifier's rows follow that order, so the answers would be named wrongly"
        }
        if let untrained = untrainedModalities, let stray = untrained.first(where: { !c.modalities.contains($0) }) ?? (learntModalities.isEmpty ? untrained.first : nil) {
            return "untrained_modalities names \(stray.rawValue), "
                + (c.modalities.contains(stray) ? "and with it every input the model has: it learnt from none" : "which the model does not have")
        }
        if standardizer.melMean.count != c.nMels || standardizer.melStd.count != c.nMels {
            return "standardizer has \(standardizer.melMean.count)/\(standardizer.melStd.count) mel statistics for \(c.nMels) bands"
        }
        if standardizer.faceMean.count != 3 || standardizer.faceStd.count != 3 {
            return "standardizer has \(standardizer.faceMean.count)/\(standardizer.faceStd.count) colour statistics, not 3"
        }
        // Standardising divides by these: a zero, tiny, negative or non-finite one would turn every
        // input into infinities or NaN and every answer into the first class. Training floors a spread at
        // 1e-3, and dB levels and pixel values lie far inside ±1e4.
        let (floor, bound): (Float, Float) = (1e-3, 1e4)
        for (key, values, isScale) in [("mel_mean", standardizer.melMean, false), ("mel_std", standardizer.melStd, true),
                                       ("face_mean", standardizer.faceMean, false), ("face_std", standardizer.faceStd, true)] {
            if let bad = values.firstIndex(where: { !(abs($0) <= bound) || (isScale && !($0 >= floor)) }) {
                return "standardizer \(key)[\(bad)] = \(values[bad]) is not "
                    + (isScale ? "from \(floor) (the floor training applies) to \(Int(bound))" : "from -\(Int(bound)) to \(Int(bound))")
            }
        }
        if !(1...TrainingConfig.maxBatchSize).contains(training.batchSize) {
            return "training batch_size \(training.batchSize) is not from 1 to \(TrainingConfig.maxBatchSize)"
        }
        if let window, window.frames != c.frames || !(1...window.frames).contains(window.hopFrames) {
            return "window policy of \(window.frames) frames every \(window.hopFrames) does not fit the model's \(c.frames)-frame input (the hop must be from 1 to the window, as train.window_hop_frames)"
        }
        if speakersSha256 != nil, c.speakerNorm != true {
            return "speakers_sha256 records speaker statistics, but config.speaker_norm is off: export writes them only for a "
                + "speaker-normalised model, so one of the two was edited (answers would skip the normalisation the model learnt with)"
        }
        if let problem = fold.inconsistency { return "fold: \(problem)" }
        // Compared with features.json's digest: a damaged one is this file's fault, not that file's.
        for (key, digest) in [("features_sha256", featuresSha256), ("speakers_sha256", speakersSha256)] {
            if let digest, !SHA256Hex.isDigest(digest) {
                return "\(key) \"\(digest.echoed)\" is not a SHA-256 (64 lower-case hexadecimal digits, as export writes it)"
            }
        }
        return nil
    }
}

extension ActorFold {
    /// An actor RAVDESS does not have, no training actor, a training actor listed twice, or a training
    /// actor also listed as tested or validated on: the split never wrote any of these, and predict blends
    /// a new speaker with the training actors' statistics, so a stray actor there would be used as if
    /// trained on. (A split before 2026-11-30 could list an
    /// actor under both validation and test, which no answer depends on: such folds still load.)
    public var inconsistency: String? {
        let roles = [("train", train), ("validation", validation), ("test", test)]
        for (role, actors) in roles {
            if let stray = actors.first(where: { !RavdessName.actorRange.contains($0) }) {
                return "\(role) lists \(stray), which is not a RAVDESS actor (\(RavdessName.actorRange.lowerBound)-\(RavdessName.actorRange.upperBound))"
            }
        }
        guard !train.isEmpty else { return "train lists no actor: a model is trained on at least one" }
        // Only training actors: a split before 2026-11-30 wrote split.test_actors and val_actors as given, [1, 1] too,
        // and no answer depends on those lists; the training actors are the rest, each once.
        if let twice = train.enumerated().first(where: { train[..<$0.offset].contains($0.element) })?.element {
            return "train lists actor \(twice) twice"
        }
        for (other, others) in roles.dropFirst() {
            if let shared = train.first(where: others.contains) { return "actor \(shared) is listed under both train and \(other)" }
        }
        return nil
    }
}

/// A model folder that cannot be used, naming the file and what is wrong with it.
public struct TrainedModelError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) { self.path = path; self.reason = reason }

    public var description: String { "\(path): \(reason)" }
}
