import EmoCore
import EmoModel
import EmoNN
import EmoPipeline
import EmoStore
import Foundation

/// Train: one model per fold of the split, on the training actors, with early stopping on the
/// validation actors' weighted F1. Features are standardised with statistics of the training fold
/// only; augmentation, shuffling and dropout are seeded from the manifest's seed, so the same
/// manifest, data, code and thread count give the same weights. Checkpoints go to
/// `cache/train/<fingerprint>/fold-<k>/`; a killed training resumes from the last one.
public struct TrainStage: Stage {
    public let name = "train"
    public let codeVersion = "1"
    public let manifestFields = ["seed", "threads"]

    public init() {}

    public func validate(params: [String: ParamValue]) throws {
        let modalities = params["modalities"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard !modalities.isEmpty, modalities.allSatisfy({ ModelConfig.Modality(rawValue: $0) != nil }) else {
            throw PipelineError.invalidFile("train: modalities must list audio and/or faces")
        }
    }

    public func run(_ context: StageContext) throws -> StageOutcome {
        let p = context.params
        Engine.configure(threads: context.threads)
        let modalities = (p["modalities"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(ModelConfig.Modality.init) }
        let features = try FeatureSet.load(context: context, modalities: modalities, base: Self.modelConfig(p))
        let training = Self.trainingConfig(p)
        let seed = UInt64(p["seed"]?.intValue ?? 0)
        let folder = Self.folder(context.workspace, fingerprint: context.fingerprint.full)
        var digest: [String] = []
        var summaries: [String] = []
        for fold in features.plan.folds {
            try context.cancellation.check()
            let train = features.samples(actors: fold.train), validation = features.samples(actors: fold.validation)
            guard !train.isEmpty, !validation.isEmpty else {
                throw PipelineError.missingData("train: fold \(fold.index) has \(train.count) training and \(validation.count) validation clips with features")
            }
            context.logger.info("fold \(fold.index): \(train.count) training clips (actors \(fold.train)), \(validation.count) validation clips (actors \(fold.validation))")
            let standardizer = Standardizer.fit(train, config: features.config)
            let model = EmotionModel(features.config, seed: seed &+ UInt64(fold.index))
            let trainer = Trainer(model: model, config: training, standardizer: standardizer,
                                  classWeights: Trainer.classWeights(labels: train.map(\.label), classes: features.config.classes),
                                  seed: seed &+ UInt64(fold.index) &* 101)
            trainer.log = { context.logger.info("fold \(fold.index): \($0)") }
            let foldFolder = folder.appendingPathComponent(Workspace.foldFolderName(fold.index))
            let state = try trainer.fit(train: train, validation: validation, folder: foldFolder) { truth, predicted in
                let m = try? ClassificationMetrics.compute(labels: features.plan.labels, truth: truth, predicted: predicted)
                return (m?.accuracy ?? 0, m?.weightedF1 ?? 0)
            }
            try TrainedModel(config: features.config, standardizer: standardizer, training: training,
                             labels: features.plan.labels, fold: fold, bestEpoch: state.bestEpoch)
                .write(to: foldFolder.appendingPathComponent("model.json"))
            let weights = try Data(contentsOf: foldFolder.appendingPathComponent("best.safetensors"))
            let sha = SHA256Hex.of(weights)
            let trainingSources = features.plan.clips.filter { Set(fold.train).contains($0.actor) }
                .flatMap { [$0.speech?.sha256, $0.video?.sha256].compactMap { $0 } }
            try recordModel(context, path: foldFolder.appendingPathComponent("best.safetensors").path, sha256: sha,
                            trainedOn: trainingSources)
            digest.append("fold \(fold.index) \(sha)")
            summaries.append(String(format: "fold %d best val wF1 %.3f (epoch %d)", fold.index, state.bestWeightedF1, state.bestEpoch))
        }
        return StageOutcome(outputDigest: SHA256Hex.of(digest.joined(separator: "\n")), unitsDone: features.plan.folds.count,
                            unitsSkipped: 0, unitsFailed: 0, summary: summaries.joined(separator: "; "))
    }

    /// The model is a provenance row, and so is each source it learnt from, so that
    /// `emopipe show SOURCE` reaches the models a source fed. A fold that a killed run finished is
    /// recorded again by the run that resumes the stage; its rows replace the earlier ones.
    private func recordModel(_ context: StageContext, path: String, sha256: String, trainedOn sources: [String]) throws {
        let fingerprint = context.fingerprint.full
        let model = ArtifactRecord(stage: name, fingerprint: fingerprint, sourceSHA256: nil,
                                   kind: "model", path: path, sha256: sha256, runId: context.runId)
        let fed = Set(sources).sorted().map { source in
            ArtifactRecord(stage: name, fingerprint: fingerprint, sourceSHA256: source,
                           kind: "trained model", path: path, sha256: sha256, runId: context.runId)
        }
        try context.store.replaceArtifacts([model] + fed, stage: name, fingerprint: fingerprint, path: path)
    }

    /// Where a training run keeps its folds: `cache/train/<fingerprint>/fold-<k>/`.
    static func folder(_ workspace: Workspace, fingerprint: String) -> URL {
        URL(fileURLWithPath: workspace.trainFolder(fingerprint: fingerprint))
    }

    /// The fold folders of the last completed training, in fold order.
    static func foldFolders(_ context: StageContext) throws -> [URL] {
        guard let train = try context.store.stageState("train") else {
            throw PipelineError.upstreamNotReady(stage: context.fingerprint.stage, upstream: "train")
        }
        let folder = Self.folder(context.workspace, fingerprint: train.fingerprint)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let folds = names.compactMap(Workspace.fold(folderName:)).sorted()
        guard !folds.isEmpty else { throw PipelineError.missingData("\(context.fingerprint.stage): no trained folds in \(folder.path)") }
        return folds.map { folder.appendingPathComponent(Workspace.foldFolderName($0)) }
    }

    static func modelConfig(_ p: [String: ParamValue]) -> ModelConfig {
        var config = ModelConfig()
        if let channels = p["audio_channels"]?.arrayValue?.compactMap(\.intValue) { config.audioChannels = channels }
        if let channels = p["face_channels"]?.arrayValue?.compactMap(\.intValue) { config.faceChannels = channels }
        config.embedding = p["embedding"]?.intValue ?? config.embedding
        config.recurrent = p["recurrent"]?.boolValue ?? config.recurrent
        config.dropout = Float(p["dropout"]?.doubleValue ?? Double(config.dropout))
        if p["utterance_norm"]?.boolValue == true { config.utteranceNorm = true }
        return config
    }

    static func trainingConfig(_ p: [String: ParamValue]) -> TrainingConfig {
        var t = TrainingConfig()
        t.epochs = p["epochs"]?.intValue ?? t.epochs
        t.batchSize = p["batch_size"]?.intValue ?? t.batchSize
        t.learningRate = p["learning_rate"]?.doubleValue ?? t.learningRate
        t.weightDecay = p["weight_decay"]?.doubleValue ?? t.weightDecay
        t.warmupEpochs = p["warmup_epochs"]?.intValue ?? t.warmupEpochs
        t.clipNorm = p["clip_norm"]?.doubleValue ?? t.clipNorm
        t.labelSmoothing = p["label_smoothing"]?.doubleValue ?? t.labelSmoothing
        t.patience = p["patience"]?.intValue ?? t.patience
        t.checkpointEvery = p["checkpoint_every"]?.intValue ?? t.checkpointEvery
        if p["augment"]?.boolValue == false {
            t.augmentation.noiseProbability = 0; t.augmentation.maxShiftFrames = 0
            t.augmentation.frequencyMasks = 0; t.augmentation.timeMasks = 0
            t.augmentation.faceFlip = false; t.augmentation.brightness = 0; t.augmentation.contrast = 0
            t.augmentation.cropPixels = 0
        }
        return t
    }
}

/// What evaluation, export and predict need besides the weights: `fold-<k>/model.json`.
public struct TrainedModel: Codable, Equatable, Sendable {
    public var config: ModelConfig
    public var standardizer: Standardizer
    public var training: TrainingConfig
    public var labels: [String]
    public var fold: SplitPlan.Fold
    public var bestEpoch: Int

    func write(to url: URL) throws {
        try DurableFile.write(try JSONOutput.encoder(pretty: true).encode(self), to: url.path)
    }

    /// Reads model.json in either key spelling: runs exported before the snake_case convention hold camelCase.
    public static func load(from url: URL) throws -> TrainedModel {
        try JSONOutput.decoder().decode(TrainedModel.self, from: Data(contentsOf: url))
    }
}
