import EmoCore
import EmoFeatures
import EmoModel
import EmoNN
import EmoPipeline
import EmoStore
import Foundation

/// Train: one model per fold of the split, on the training actors, with early stopping on the
/// validation actors' weighted F1 (or loss, `selection`). Features are standardised with statistics of the training fold
/// only; augmentation, shuffling and dropout are seeded from the manifest's seed, so the same
/// manifest, data, code and thread count give the same weights. Checkpoints go to
/// `cache/train/<fingerprint>/fold-<k>/`; a killed training resumes from the last one.
public struct TrainStage: Stage {
    public let name = StageName.train.rawValue
    // 2: whole clips, one random window per clip per epoch; validation over every window.
    // 3: a branch that no training clip has data for is not built.
    public let codeVersion = "3"
    public let manifestFields = ["seed", "threads"]
    public let reads: Set<String> = [StageName.audio.rawValue, StageName.faces.rawValue, StageName.split.rawValue]

    public init() {}

    /// A modality left out of `modalities` leaves its feature stage unread: a speech-only model
    /// neither waits for face crops nor retrains when their parameters change.
    public func unreadNeeds(_ parameters: TrainParameters) -> Set<String> {
        Set(ModelConfig.Modality.allCases.filter { !parameters.modalities.contains($0) }.map(\.featureStage.rawValue))
    }

    /// Folds without validation actors have no score to select an epoch on: the manifest must ask
    /// for the last epoch, which is known before any stage runs (`run --dry-run`, a sweep's trials).
    public func checkAcross(_ parameters: [String: ResolvedParameters]) throws {
        try checkBlocksFit(parameters)
        // A modality whose feature stage the pipeline leaves out is trained without (a pipeline without
        // faces trains on speech); with none of them there, nothing would be learnt from.
        if let train = parameters[name], let modalities = (train.value as? TrainParameters)?.modalities,
           !modalities.contains(where: { parameters[$0.featureStage.rawValue] != nil }) {
            throw PipelineError.invalidParameter(
                file: train.origins[TrainParameters.CodingKeys.modalities.rawValue]?.place ?? ParameterOrigin.defaultValue.place,
                key: "train.modalities", value: "[\(modalities.map(\.rawValue).joined(separator: ", "))]",
                allowed: "modalities whose feature stage the pipeline declares (it has no "
                    + modalities.map { "'\($0.featureStage.rawValue)'" }.joined(separator: " or ") + " stage)")
        }
        guard let train = parameters[name], let split = parameters[StageName.split.rawValue],
              let selection = (train.value as? TrainParameters)?.selection, selection != .last,
              let cause = (split.value as? SplitParameters)?.withoutValidation(
                  valActorsGiven: split.origins[SplitParameters.CodingKeys.valActors.rawValue].map(\.givenByTheUser) ?? false)
        else { return }
        let selectionOrigin = train.origins[TrainParameters.CodingKeys.selection.rawValue]?.place ?? ParameterOrigin.defaultValue.place
        throw PipelineError.invalidParameter(
            file: split.origins[cause.key]?.place ?? ParameterOrigin.defaultValue.place, key: "split.\(cause.key)", value: cause.value,
            allowed: "\(cause.effect) no validation actors to select an epoch on, so train.selection must be last "
                + "(it is \"\(selection.rawValue)\", from \(selectionOrigin))")
    }

    /// A batch size the memory budget (or without one, the machine) will not hold, said before the feature
    /// stages run: the check that refuses it comes only once the features are loaded. The data is not known
    /// yet, so the model is counted in its cheapest form, with only the branch (audio or faces) that costs
    /// least, as when the data feeds no other: a warning, never a false one for lack of video. A fold of
    /// fewer clips than a batch would still fit (not known yet either).
    public func forecast(_ parameters: [String: ResolvedParameters], manifest: Manifest) -> [String] {
        guard let train = parameters[name]?.value as? TrainParameters else { return [] }
        // The tighter of the budget and the machine, as train checks both.
        let limits = [(manifest.resources.maxMemoryBytes, manifest.resources.maxMemoryMB.map { "resources.max_memory_mb = \($0)" }),
                      (ProcessMemory.machineLimitBytes(), nil)]
            .compactMap { bytes, name in bytes.map { ($0, name ?? String(format: "this machine's %.0f MB", ProcessMemory.megabytes($0))) } }
        guard let (limit, against) = limits.min(by: { $0.0 < $1.0 }) else { return [] }
        var config = train.modelConfig
        if let audio = parameters[StageName.audio.rawValue]?.value as? LogMelParameters { config.nMels = audio.nMels }
        if let faces = parameters[StageName.faces.rawValue]?.value as? FaceParameters {
            config.faceFrames = faces.frames; config.faceSize = faces.size
        }
        if let labels = try? LabelMap(named: manifest.labelMap) { config.classes = labels.count }
        // Each one-branch model with its estimate (the weights counted once each).
        let candidates = train.modalities.filter { parameters[$0.featureStage.rawValue] != nil }.map { modality -> (ModelConfig, weights: Int, bytes: Int) in
            var alone = config
            alone.modalities = [modality]
            let weights = TrainingMemory.parameterCount(alone)
            return (alone, weights, TrainingMemory.bytes(alone, batchSize: train.batchSize, threads: manifest.threads,
                                                         averagingWeights: train.averagesWeights, weights: weights))
        }
        let resident = ProcessMemory.residentBytesInUse() ?? 0   // as the check it foretells reads it
        guard let (cheapest, weights, needed) = candidates.min(by: { $0.bytes < $1.bytes }), resident + needed > limit else { return [] }
        let largest = TrainingMemory.largestBatch(cheapest, threads: manifest.threads, available: limit - resident, upTo: train.batchSize,
                                                  averagingWeights: train.averagesWeights, weights: weights)
        return [String(format: "train.batch_size = %d: training is estimated at %.0f MB or more (the %@ branch alone), which on the %.0f MB "
                       + "resident before any features are loaded is over %@; train will likely refuse it when its turn comes, after the "
                       + "stages before it (%@)",
                       train.batchSize, ProcessMemory.megabytes(needed), cheapest.modalities[0].rawValue, ProcessMemory.megabytes(resident), against,
                       largest.map { "the largest batch size that fits is at most \($0)" } ?? "not even batch size \(TrainingConfig.minBatchSize) fits")]
    }

    /// Each conv block halves its input: the mel bands (`audio.n_mels`), the window (`train.window_frames`)
    /// and the crops (`faces.size`) must outlast the blocks. Known before any stage runs, so a mismatch is
    /// refused then, not after the features were computed (`checkFits` repeats it on the features read).
    private func checkBlocksFit(_ parameters: [String: ResolvedParameters]) throws {
        guard let resolved = parameters[name], let train = resolved.value as? TrainParameters else { return }
        func origin(_ stage: ResolvedParameters?, _ key: String) -> String {
            (stage?.origins[key] ?? .defaultValue).place
        }
        let audio = parameters[StageName.audio.rawValue]
        if train.modalities.contains(.audio), let mels = (audio?.value as? LogMelParameters)?.nMels {
            let shortest = min(mels, train.windowFrames)
            if shortest < 1 << train.audioChannels.count {
                throw PipelineError.invalidParameter(
                    file: origin(resolved, TrainParameters.CodingKeys.audioChannels.rawValue), key: "train.audio_channels",
                    value: "\(train.audioChannels)",
                    allowed: "\(TrainParameters.blocksText(fitting: shortest)) for audio.n_mels = \(mels) (from \(origin(audio, "n_mels"))) and "
                        + "train.window_frames = \(train.windowFrames) (from \(origin(resolved, TrainParameters.CodingKeys.windowFrames.rawValue))): "
                        + "each block halves both")
            }
        }
        let faces = parameters[StageName.faces.rawValue]
        if train.modalities.contains(.faces), let size = (faces?.value as? FaceParameters)?.size, size < 1 << train.faceChannels.count {
            throw PipelineError.invalidParameter(
                file: origin(resolved, TrainParameters.CodingKeys.faceChannels.rawValue), key: "train.face_channels",
                value: "\(train.faceChannels)",
                allowed: "\(TrainParameters.blocksText(fitting: size)) for faces.size = \(size) (from \(origin(faces, "size"))): each block halves it")
        }
    }

    /// The modalities whose feature stage the pipeline file declares: another's records in the store (an
    /// earlier pipeline file's) are not read. Said as a warning when the manifest asked for the modality,
    /// as information when only the default did (a speech-only pipeline under the default modalities).
    static func declaredModalities(_ asked: [ModelConfig.Modality], context: StageContext) -> [ModelConfig.Modality] {
        let declared = asked.filter { context.declares($0.featureStage) }
        let origin = context.parameterOrigins[TrainParameters.CodingKeys.modalities.rawValue] ?? .defaultValue
        for left in asked where !declared.contains(left) {
            let note = "train.modalities = \(ParamValue.array(asked.map { .string($0.rawValue) }).shown) (from \(origin.place)): the pipeline "
                + "\(context.manifest.pipelinePath.echoed) has no \(left.featureStage.rawValue) stage, so the model is built without the \(left.rawValue) branch"
            if origin.givenByTheUser { context.logger.warning("\(note)") } else { context.logger.info("\(note)") }
        }
        return declared
    }

    /// The model gets a branch only for a modality that some training clip has data for. Otherwise
    /// the branch would stay untrained: it would cost time in every batch and shift the initial
    /// weights, and evaluate and predict would run it on the test clips' media.
    static func fedByTraining(_ features: FeatureSet, context: StageContext) throws -> FeatureSet {
        let asked = features.config.modalities
        let trainingActors = Set(features.plan.folds.flatMap(\.train)).sorted()
        let training = features.samples(actors: trainingActors)
        let fed = FeatureSet.fed(asked, samples: training)
        func data(_ modality: ModelConfig.Modality) -> String { modality == .audio ? "a log-mel" : "face crops" }
        guard training.contains(where: { clip in asked.contains { clip.has($0) } }) else {
            let origin = context.parameterOrigins[TrainParameters.CodingKeys.modalities.rawValue]?.place ?? ParameterOrigin.defaultValue.place
            throw PipelineError.missingData("train.modalities = \(ParamValue.array(asked.map { .string($0.rawValue) }).shown) (from \(origin)): "
                + "no training clip has \(asked.map(data).joined(separator: " or ")) (training actors \(actorList(trainingActors)))")
        }
        for left in asked where !fed.contains(left) {
            let built = fed.map(\.rawValue).joined(separator: ", ")
            context.logger.info("no training clip has \(data(left)): the model is built without the \(left.rawValue) branch (modalities: \(built))")
        }
        for fold in features.plan.folds {
            let foldTraining = features.samples(actors: fold.train)
            for modality in fed where fed.count > 1 && !foldTraining.contains(where: { $0.has(modality) }) {
                context.logger.warning("fold \(fold.index): no training clip has \(data(modality)), so its \(modality.rawValue) branch stays untrained")
            }
            // A class no training clip shows (a split of few actors, an `actors` filter) is never predicted.
            let taught = Set(foldTraining.map(\.label))
            let untaught = features.plan.labels.indices.filter { !taught.contains($0) }.map { features.plan.labels[$0] }
            if !untaught.isEmpty {
                context.logger.warning("fold \(fold.index): no training clip is \(untaught.joined(separator: ", ")) (training actors \(actorList(fold.train))), so the model never learns \(untaught.count == 1 ? "it" : "them")")
            }
        }
        return fed == asked ? features : features.building(fed)
    }

    /// A fold's kept weights deleted or edited since training (the stage trains that fold again), or
    /// a fold left partway by a killed run (the stage resumes it).
    public func externalChanges(_ context: StageContext, parameters: TrainParameters) throws -> String? {
        guard let state = try context.store.stageState(.train) else { return nil }
        let folder = Self.folder(context.workspace, fingerprint: state.fingerprint)
        let recorded = try Self.recordedModels(context, fingerprint: state.fingerprint)
        let onDisk = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).compactMap(Workspace.fold(folderName:))
        let folds = Set(onDisk + recorded.keys).sorted()
        for fold in folds {
            let foldFolder = folder.appendingPathComponent(Workspace.foldFolderName(fold))
            switch Self.condition(of: foldFolder, fold: fold, recorded: recorded[fold]) {
            case .asRecorded: continue
            case .partway(let why), .lost(let why): return why
            }
        }
        // Every fold the completion stood for, and no other: a fold set aside and not yet trained again
        // (a killed `--force train`) has neither a folder nor a row.
        let stoodFor = Self.outputDigest(fingerprint: state.fingerprint, folds: recorded.sorted { $0.key < $1.key }.map { ($0.key, $0.value.sha256 ?? "") })
        return stoodFor == state.outputDigest ? nil
            : "the recorded folds' weights (folds \(folds.map(String.init).joined(separator: ", "))) are not those run \(state.runId) completed with"
    }

    /// The stage's output digest: its fingerprint and each fold's kept weights, in fold order. Downstream
    /// files embed the fingerprint (model.json's training settings, model.onnx's metadata), so a change
    /// that leaves the weights alone must still reach them.
    static func outputDigest(fingerprint: String, folds: [(index: Int, sha256: String)]) -> String {
        SHA256Hex.of((["train \(fingerprint)"] + folds.map { "fold \($0.index) \($0.sha256)" }).joined(separator: "\n"))
    }

    /// What a fold's folder holds against what training recorded for it.
    enum FoldCondition: Equatable {
        case asRecorded
        /// Stopped partway, or finished but not yet recorded: a run resumes it.
        case partway(String)
        /// Its kept weights are gone or edited: a run sets the fold aside and trains it again.
        case lost(String)
    }

    /// Folds of this fingerprint stopped partway: a run resumes them from their checkpoints.
    public func progress(_ context: StageContext, parameters: TrainParameters) throws -> String? {
        let folder = Self.folder(context.workspace, fingerprint: context.fingerprint.full)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).compactMap(Workspace.fold(folderName:)).sorted()
        let partway = names.compactMap { fold -> String? in
            guard let state = TrainingState.read(inFolder: folder.appendingPathComponent(Workspace.foldFolderName(fold))),
                  !state.finished, !state.epochs.isEmpty else { return nil }
            // Only a checkpoint the run would take: there, and the bytes its state recorded.
            let checkpoint = folder.appendingPathComponent(Workspace.foldFolderName(fold))
                .appendingPathComponent(Trainer.checkpointName(afterEpochs: state.epochs.count)).path
            guard let bytes = try? SHA256Hex.file(atPath: checkpoint).hex, state.checkpointSHA256.map({ $0 == bytes }) ?? true else { return nil }
            return "fold \(fold) after epoch \(state.epochs.count)"
        }
        guard !partway.isEmpty else { return nil }
        return "checkpoints of these parameters: \(partway.joined(separator: ", ")); a run resumes from them"
    }

    static func condition(of foldFolder: URL, fold: Int, recorded: RecordedOutputs.Expected?) -> FoldCondition {
        let state = TrainingState.read(inFolder: foldFolder)
        if let state, state.finished, state.bestEpoch < 0 {
            return .partway("fold \(fold) diverged: none of its \(state.epochs.count) epochs left finite weights; a run fails the same way "
                            + "until the settings change (a lower train.learning_rate)")
        }
        if let state, !state.finished {
            return .partway("fold \(fold) is partway through training (\(state.epochs.count) epoch\(state.epochs.count == 1 ? "" : "s") done): a run resumes it")
        }
        guard let recorded else {
            return state == nil ? .asRecorded : .partway("fold \(fold) finished training but its kept weights are not recorded: a run records them")
        }
        return RecordedOutputs.problem(recorded).map(FoldCondition.lost) ?? .asRecorded
    }

    /// Each fold's kept weights as training recorded them (the newest row per fold), by fold index.
    static func recordedModels(_ context: StageContext, fingerprint: String) throws -> [Int: RecordedOutputs.Expected] {
        let folder = Self.folder(context.workspace, fingerprint: fingerprint)
        let rows = try context.store.outputArtifacts(stage: StageName.train.rawValue, fingerprint: fingerprint)
        let expected = RecordedOutputs.expected(rows, in: context.workspace) { recorded in
            let url = URL(fileURLWithPath: recorded)
            return folder.appendingPathComponent(url.deletingLastPathComponent().lastPathComponent)
                .appendingPathComponent(url.lastPathComponent).path
        }
        return Dictionary(expected.compactMap { file in foldIndex(of: file.path).map { ($0, file) } }) { _, last in last }
    }

    /// The fold a file inside a fold folder belongs to (`…/fold-2/best.safetensors` → 2).
    /// Why the model's window would be mostly padding (the median clip's log-mel fills a quarter of it
    /// or less: `audio.hop_length` raised, or a window far longer than the clips), or nil.
    static func mostlyPadding(_ samples: [ClipFeatures], windowFrames: Int) -> String? {
        let frames = samples.filter { $0.logmel != nil }.map(\.melFrames).sorted()
        guard !frames.isEmpty else { return nil }
        let median = frames[frames.count / 2]
        guard median * 4 <= windowFrames else { return nil }
        return "the median clip has \(median) log-mel frame\(median == 1 ? "" : "s"), a quarter or less of train.window_frames "
            + "(\(windowFrames)): most of every window is padding (a longer audio.hop_length than meant, or a shorter window fits these clips)"
    }

    static func foldIndex(of path: String) -> Int? {
        Workspace.fold(folderName: URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent)
    }

    /// Sets a fold folder (or the whole fingerprint's, `fold` nil) aside and drops the rows of the
    /// weights it held: they no longer stand for the stage's result, and a killed retraining must
    /// resume, not be taken for edited weights.
    private static func discard(_ folder: URL, fold: Int?, because reason: String, context: StageContext) throws {
        let fingerprint = context.fingerprint.full
        let rows = try context.store.outputArtifacts(stage: StageName.train.rawValue, fingerprint: fingerprint)
        let dropped = rows.filter { fold == nil || foldIndex(of: $0.path) == fold }
        try setAside(folder, because: reason, context: context)
        try context.store.deleteArtifacts(stage: StageName.train.rawValue, fingerprint: fingerprint, paths: Set(dropped.map(\.path)))
    }

    public func run(_ context: StageContext, parameters: TrainParameters) throws -> StageOutcome {
        try Engine.configureWithinLimits(threads: context.threads)
        let features = try Self.fedByTraining(
            try FeatureSet.load(context: context, modalities: Self.declaredModalities(parameters.modalities, context: context),
                                base: parameters.modelConfig), context: context)
        try parameters.checkFits(features.config, manifest: context.manifest.path)
        let largestFold = features.plan.folds.map { features.samples(actors: $0.train).count }.max() ?? parameters.batchSize
        let estimated = try parameters.checkMemory(features.config, context: context, trainingClips: largestFold)
        if let padding = Self.mostlyPadding(features.samples, windowFrames: parameters.windowFrames) { context.logger.warning("\(padding)") }
        let training = parameters.trainingConfig
        let seed = UInt64(context.manifest.seed)
        let folder = Self.folder(context.workspace, fingerprint: context.fingerprint.full)
        if context.forced { try Self.discard(folder, fold: nil, because: "forced", context: context) }
        let recorded = try Self.recordedModels(context, fingerprint: context.fingerprint.full)
        var keptWeights: [(index: Int, sha256: String)] = []
        var summaries: [String] = []
        for fold in features.plan.folds {
            try context.cancellation.check()
            let train = features.samples(actors: fold.train), validation = features.samples(actors: fold.validation)
            guard !train.isEmpty, fold.validation.isEmpty || !validation.isEmpty else {
                // Which of the fold's clips failed, and where, as evaluate says of test clips it cannot score.
                let empty = train.isEmpty ? (actors: fold.train, role: "training") : (actors: fold.validation, role: "validation")
                let asTested = ActorFold(index: fold.index, test: empty.actors, validation: [], train: [])
                let failed = (try? UnscoredTestClips.find(context, scored: [], plan: features.plan, folds: [asTested],
                                                          modalities: features.config.modalities)) ?? []
                let wanted = Set(empty.actors)
                throw PipelineError.missingData("train: fold \(fold.index) has \(train.count) training and \(validation.count) validation clips with features (\(features.config.modalities.map(\.rawValue).joined(separator: ", ")))"
                    + UnscoredTestClips.why(failed, of: features.plan.clips.filter { wanted.contains($0.actor) }.count, actors: empty.actors, role: empty.role))
            }
            let validating = fold.validation.isEmpty ? "no validation actors: trains to the last epoch"
                : "\(validation.count) validation clips (actors \(fold.validation))"
            context.logger.info("fold \(fold.index): \(train.count) training clips (actors \(fold.train)), \(validating)")
            let standardizer = Standardizer.fit(train, config: features.config)
            let model = EmotionModel(features.config, seed: seed &+ UInt64(fold.index))
            let trainer = Trainer(model: model, config: training, standardizer: standardizer,
                                  classWeights: parameters.classWeights.weights(labels: train.map(\.label), classes: features.config.classes),
                                  seed: seed &+ UInt64(fold.index) &* 101)
            trainer.log = { context.logger.info("fold \(fold.index): \($0)") }
            trainer.stopRequested = { context.cancellation.isCancelled }
            let foldFolder = folder.appendingPathComponent(Workspace.foldFolderName(fold.index))
            // Resuming would return at once and keep what is there now; the fold starts over instead.
            if case .lost(let problem) = Self.condition(of: foldFolder, fold: fold.index, recorded: recorded[fold.index]) {
                try Self.discard(foldFolder, fold: fold.index, because: problem, context: context)
            }
            let state: TrainingState
            do {
                state = try trainer.fit(train: train, validation: validation, policy: parameters.windowPolicy,
                                        folder: foldFolder) { truth, predicted in
                    let m = try? ClassificationMetrics.compute(labels: features.plan.labels, truth: truth, predicted: predicted)
                    return (m?.accuracy ?? 0, m?.weightedF1 ?? 0)
                }
            } catch is TrainingStopped {
                throw EmoError.interrupted
            }
            try TrainedModel(config: features.config, standardizer: standardizer, training: training,
                             labels: features.plan.labels, fold: fold, bestEpoch: state.bestEpoch, window: parameters.windowPolicy)
                .write(to: foldFolder.appendingPathComponent(TrainedModel.fileName))
            let weightsURL = foldFolder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue)
            let sha = try SHA256Hex.file(atPath: weightsURL.path).hex
            let trainingSources = features.plan.clips.filter { Set(fold.train).contains($0.actor) }
                .flatMap { [$0.speech?.sha256, $0.video?.sha256].compactMap { $0 } }
            try recordModel(context, path: weightsURL.path, sha256: sha,
                            trainedOn: trainingSources)
            keptWeights.append((fold.index, sha))
            // The window training used: a run shorter than selection_window selects over all its epochs.
            let selection = training.selection ?? .weightedF1
            let described = selection.describe(window: training.selectionWindow ?? 1)
            // A loss is kept negated (higher is better); the last epoch's score is its number.
            let score = selection == .last ? "" : state.bestScore.map { String(format: " %.3f", selection == .validationLoss ? -$0 : $0) } ?? ""
            summaries.append(String(format: "fold %d %@%@ (epoch %d)", fold.index, described, score, state.bestEpoch))
        }
        if let overrun = TrainParameters.overrun(peak: ProcessMemory.highWaterBytes(), resources: context.manifest.resources,
                                                estimated: estimated, batchSize: parameters.batchSize) { context.logger.warning("\(overrun)") }
        return StageOutcome(outputDigest: Self.outputDigest(fingerprint: context.fingerprint.full, folds: keptWeights), unitsDone: features.plan.folds.count,
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

    /// `--force train` starts from epoch 1: the checkpoints of this fingerprint are moved aside to
    /// `<folder>.superseded-<run id>` (kept, not deleted: they may be all that is left of a long
    /// training; `cache gc` removes them).
    static func setAside(_ folder: URL, because reason: String, context: StageContext) throws {
        guard FileManager.default.fileExists(atPath: folder.path) else { return }
        let aside = folder.path + GarbagePlan.supersededMarker + context.runId
        guard rename(folder.path, aside) == 0 else {
            throw EmoError.io(path: folder.path, reason: "cannot move the checkpoints aside to \(aside): \(String(cString: strerror(errno)))")
        }
        context.logger.info("\(reason): earlier checkpoints moved to \(aside)")
    }

    /// The fold folders of the last completed training, in fold order.
    static func foldFolders(_ context: StageContext) throws -> [URL] {
        guard let train = try context.store.stageState(.train) else {
            throw PipelineError.upstreamNotReady(stage: context.fingerprint.stage, upstream: StageName.train.rawValue)
        }
        let folder = Self.folder(context.workspace, fingerprint: train.fingerprint)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let folds = names.compactMap(Workspace.fold(folderName:)).sorted()
        guard !folds.isEmpty else { throw PipelineError.missingData("\(context.fingerprint.stage): no trained folds in \(folder.path)") }
        return folds.map { folder.appendingPathComponent(Workspace.foldFolderName($0)) }
    }
}

/// The train stage's parameters: the model's shape and how it is trained. These defaults are the
/// ones `pipelines/ravdess.yaml` documents (a test keeps the two equal).
public struct TrainParameters: StageParameters {
    public var modalities: [ModelConfig.Modality] = [.audio, .faces]
    /// Output channels of each conv block (3x3 conv, batch norm, ReLU, 2x2 max pool).
    public var audioChannels = [16, 32, 64, 128]
    public var faceChannels = [16, 32, 64, 64]
    public var embedding = 128
    /// A bidirectional GRU over the audio steps (cv4: 0.553 against 0.538 without).
    public var recurrent = true
    /// Subtract each clip's mean per mel band after standardising.
    public var utteranceNorm = false
    /// Standardise each clip per mel band with its speaker's own statistics first.
    public var speakerNorm = true
    /// The log-mel's delta and delta-delta over time as two more input channels.
    public var deltas = false
    /// Pick the best epoch by the trailing mean of the validation score (`selection`) over this many
    /// epochs (at most `epochs`): one epoch's score on two validation actors is noisy (select-01-12: 0.629 against 0.602).
    public var selectionWindow = 5
    /// What the kept epoch is chosen by (`EpochSelection`).
    public var selection = EpochSelection.weightedF1
    /// Validate and keep an exponential moving average of the weights spanning about this many epochs
    /// (0: the latest weights).
    public var weightAverageEpochs = 0.0
    /// Whether training keeps a moving average of the weights (its memory counts two more parameter copies).
    var averagesWeights: Bool { weightAverageEpochs > 0 }
    /// The model's input: windows of this many log-mel frames (300: 3 s at the speech preset's hop).
    public var windowFrames = 300
    /// Frames between the windows a clip is scored over (`WindowPolicy`).
    public var windowHopFrames = 100
    public var dropout = 0.2
    /// 45, not 60: the holdout-17-24 run must train in at most twice the time of the run issue #12
    /// reports (the defaults of then, stopped early at epoch 32); 60 epochs cost 2.1x (README, sixth round).
    public var epochs = 45
    public var batchSize = 16
    public var learningRate = 0.001
    public var weightDecay = 0.01
    public var warmupEpochs = 2
    public var clipNorm = 1.0
    public var labelSmoothing = 0.05
    public var patience = 15
    public var checkpointEvery = 5
    public var augment = true
    /// Speed perturbation: each training window is read from (1 ± time_stretch) × its length of the clip.
    public var timeStretch = 0.0
    /// Mixup within each batch, λ ~ Beta(mixup, mixup) (0: off).
    public var mixup = 0.0
    /// Vocal-tract-length perturbation: each training window's mel axis warped by a factor from 1 ± this.
    public var frequencyWarp = 0.0
    /// How the loss weighs the classes.
    public var classWeights = ClassWeighting.balanced

    public static let maxBlocks = ModelConfig.Limits.blocks
    public static let maxChannels = ModelConfig.Limits.channels
    public static let maxWindowFrames = ModelConfig.Limits.frames

    public init() {}

    enum CodingKeys: String, CodingKey {
        case modalities, audioChannels = "audio_channels", faceChannels = "face_channels", embedding, recurrent
        case utteranceNorm = "utterance_norm", dropout, epochs, batchSize = "batch_size", learningRate = "learning_rate"
        case weightDecay = "weight_decay", warmupEpochs = "warmup_epochs", clipNorm = "clip_norm"
        case labelSmoothing = "label_smoothing", patience, checkpointEvery = "checkpoint_every", augment
        case speakerNorm = "speaker_norm", selectionWindow = "selection_window", selection, weightAverageEpochs = "weight_average_epochs"
        case windowFrames = "window_frames", windowHopFrames = "window_hop_frames", timeStretch = "time_stretch", mixup
        case frequencyWarp = "frequency_warp", deltas, classWeights = "class_weights"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(&modalities, forKey: .modalities)
        // A set in effect: [faces, audio] is the same model and the same cache key as [audio, faces].
        modalities.sort { $0.rank < $1.rank }
        try c.overwrite(&audioChannels, forKey: .audioChannels)
        try c.overwrite(&faceChannels, forKey: .faceChannels)
        try c.overwrite(&embedding, forKey: .embedding)
        try c.overwrite(&recurrent, forKey: .recurrent)
        try c.overwrite(&utteranceNorm, forKey: .utteranceNorm)
        try c.overwrite(&dropout, forKey: .dropout)
        try c.overwrite(&epochs, forKey: .epochs)
        try c.overwrite(&batchSize, forKey: .batchSize)
        try c.overwrite(&learningRate, forKey: .learningRate)
        try c.overwrite(&weightDecay, forKey: .weightDecay)
        try c.overwrite(&warmupEpochs, forKey: .warmupEpochs)
        try c.overwrite(&clipNorm, forKey: .clipNorm)
        try c.overwrite(&labelSmoothing, forKey: .labelSmoothing)
        try c.overwrite(&patience, forKey: .patience)
        try c.overwrite(&checkpointEvery, forKey: .checkpointEvery)
        try c.overwrite(&augment, forKey: .augment)
        try c.overwrite(&speakerNorm, forKey: .speakerNorm)
        try c.overwrite(&selectionWindow, forKey: .selectionWindow)
        try c.overwrite(&selection, forKey: .selection)
        try c.overwrite(&weightAverageEpochs, forKey: .weightAverageEpochs)
        try c.overwrite(&windowFrames, forKey: .windowFrames)
        try c.overwrite(&windowHopFrames, forKey: .windowHopFrames)
        try c.overwrite(&timeStretch, forKey: .timeStretch)
        try c.overwrite(&mixup, forKey: .mixup)
        try c.overwrite(&frequencyWarp, forKey: .frequencyWarp)
        try c.overwrite(&deltas, forKey: .deltas)
        try c.overwrite(&classWeights, forKey: .classWeights)
    }

    public func validate() throws {
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ allowed: String, bounds: [CodingKeys] = []) throws {
            try InvalidParameter.require(ok, key.rawValue, value, allowed, bounds: bounds.map(\.rawValue))
        }
        try check(!modalities.isEmpty && Set(modalities).count == modalities.count, .modalities,
                  modalities.map(\.rawValue), "a list of audio and/or faces, each once")
        for (key, channels) in [(CodingKeys.audioChannels, audioChannels), (.faceChannels, faceChannels)] {
            try check((1...Self.maxBlocks).contains(channels.count) && channels.allSatisfy { (1...Self.maxChannels).contains($0) },
                      key, channels, "1 to \(Self.maxBlocks) conv blocks, each of 1 to \(Self.maxChannels) channels")
        }
        try check((2...ModelConfig.Limits.embedding).contains(embedding) && embedding % 2 == 0, .embedding, embedding,
                  "an even integer from 2 to \(ModelConfig.Limits.embedding) (the GRU's two directions share it)")
        // The model keeps it as a Float: 0.99999999 would round to 1.
        try check(dropout.isFinite && dropout >= 0 && Float(dropout) < 1, .dropout, dropout, "a number with 0 <= dropout < 1")
        try check((1...10_000).contains(epochs), .epochs, epochs, "an integer from 1 to 10000")
        // A batch of one is skipped (batch norm needs two samples): batch_size 1 would train nothing.
        try check((TrainingConfig.minBatchSize...TrainingConfig.maxBatchSize).contains(batchSize), .batchSize, batchSize,
                  "an integer from \(TrainingConfig.minBatchSize) to \(TrainingConfig.maxBatchSize) (batch norm needs two samples a batch)")
        // Training keeps these as 32-bit floats: 1e-50 would round to 0 and nothing would be learnt.
        try check(learningRate >= 1e-10 && learningRate <= 10, .learningRate, learningRate, "a number from 1e-10 to 10")
        try check(weightDecay.isFinite && weightDecay >= 0 && weightDecay <= 10, .weightDecay, weightDecay, "a number from 0 to 10")
        try check((0...epochs).contains(warmupEpochs), .warmupEpochs, warmupEpochs, "an integer from 0 to epochs (\(epochs))",
                  bounds: [.epochs])
        try check(clipNorm >= 1e-6 && clipNorm <= 1e6, .clipNorm, clipNorm, "a number from 1e-6 to 1e6")
        try check(labelSmoothing >= 0 && Float(labelSmoothing) < 1, .labelSmoothing, labelSmoothing, "a number with 0 <= label_smoothing < 1 as a 32-bit float (at most 0.99999994)")
        try check((1...10_000).contains(patience), .patience, patience, "an integer from 1 to 10000")
        try check((1...10_000).contains(checkpointEvery), .checkpointEvery, checkpointEvery, "an integer from 1 to 10000")
        try check((1...10_000).contains(selectionWindow), .selectionWindow, selectionWindow, "an integer from 1 to 10000")
        try check(weightAverageEpochs.isFinite && weightAverageEpochs >= 0 && weightAverageEpochs <= 10_000, .weightAverageEpochs,
                  weightAverageEpochs, "a number of epochs from 0 (off) to 10000")
        try check((1...Self.maxWindowFrames).contains(windowFrames), .windowFrames, windowFrames, "an integer from 1 to \(Self.maxWindowFrames)")
        try check((1...windowFrames).contains(windowHopFrames), .windowHopFrames, windowHopFrames,
                  "an integer from 1 to window_frames (\(windowFrames)): a longer hop would skip frames", bounds: [.windowFrames])
        try check(timeStretch.isFinite && timeStretch >= 0 && timeStretch <= 0.5, .timeStretch, timeStretch, "a number from 0 to 0.5")
        // Below 0.01 the Gamma draws underflow and Beta(α, α) would not be drawn faithfully.
        try check(mixup.isFinite && (mixup == 0 || (0.01...10).contains(mixup)), .mixup, mixup,
                  "0 (off) or a number from 0.01 to 10 (Beta(α, α)'s α)")
        try check(frequencyWarp.isFinite && frequencyWarp >= 0 && frequencyWarp <= 0.3, .frequencyWarp, frequencyWarp,
                  "a number from 0 (off) to 0.3")
    }

    /// The model's shape before the features fix the input sizes.
    var modelConfig: ModelConfig {
        var config = ModelConfig()
        config.audioChannels = audioChannels
        config.faceChannels = faceChannels
        config.embedding = embedding
        config.recurrent = recurrent
        config.dropout = Float(dropout)
        config.frames = windowFrames
        if utteranceNorm { config.utteranceNorm = true }
        if speakerNorm { config.speakerNorm = true }
        if deltas { config.deltas = true }
        return config
    }

    var windowPolicy: WindowPolicy { WindowPolicy(frames: windowFrames, hopFrames: windowHopFrames) }

    var trainingConfig: TrainingConfig {
        var t = TrainingConfig()
        t.epochs = epochs
        t.batchSize = batchSize
        t.learningRate = learningRate
        t.weightDecay = weightDecay
        t.warmupEpochs = warmupEpochs
        t.clipNorm = clipNorm
        t.labelSmoothing = labelSmoothing
        t.patience = patience
        t.checkpointEvery = checkpointEvery
        // A run shorter than the window selects over all of its epochs.
        if min(selectionWindow, epochs) > 1 { t.selectionWindow = min(selectionWindow, epochs) }
        if selection != .weightedF1 { t.selection = selection }
        if weightAverageEpochs > 0 { t.weightAverageEpochs = weightAverageEpochs }
        if augment && timeStretch > 0 { t.augmentation.timeStretch = timeStretch }
        if augment && mixup > 0 { t.augmentation.mixup = mixup }
        if augment && frequencyWarp > 0 { t.augmentation.frequencyWarp = frequencyWarp }
        if !augment {
            t.augmentation.noiseProbability = 0; t.augmentation.maxShiftFrames = 0
            t.augmentation.frequencyMasks = 0; t.augmentation.timeMasks = 0
            t.augmentation.faceFlip = false; t.augmentation.brightness = 0; t.augmentation.contrast = 0
            t.augmentation.cropPixels = 0
        }
        return t
    }

    /// Rules across stages, known once the features are read: each 2x2 pool halves the input, so
    /// the conv blocks must leave at least one mel band, one time step and one face pixel.
    func checkFits(_ config: ModelConfig, manifest: String) throws {
        let audioShrink = 1 << audioChannels.count, faceShrink = 1 << faceChannels.count
        if config.uses(.audio), config.nMels < audioShrink || config.frames < audioShrink {
            throw PipelineError.invalidParameter(
                file: manifest, key: "train.audio_channels", value: "\(audioChannels)",
                allowed: "\(Self.blocksText(fitting: min(config.nMels, config.frames))) for \(config.nMels) mel bands × \(config.frames) frames")
        }
        if config.uses(.faces), config.faceSize < faceShrink {
            throw PipelineError.invalidParameter(
                file: manifest, key: "train.face_channels", value: "\(faceChannels)",
                allowed: "\(Self.blocksText(fitting: config.faceSize)) for \(config.faceSize)-pixel crops")
        }
    }

    /// Under a memory budget (`resources.max_memory_mb`), refuses a batch size whose estimated
    /// training memory, on top of what is resident once the features are loaded, exceeds it, and
    /// names the largest batch size that fits.
    /// `config` is the model as built: without a branch that no training clip can feed.
    /// Without a budget, the machine's memory is the budget: a model whose estimate exceeds it would
    /// make the process die allocating, so it is refused as a parameter error instead.
    /// `trainingClips`: the most clips a fold trains on; no batch is larger.
    /// Returns the estimate and the resident memory it was added to.
    @discardableResult
    func checkMemory(_ config: ModelConfig, context: StageContext, trainingClips: Int) throws -> (needed: Int, resident: Int) {
        let resident = ProcessMemory.residentBytesInUse() ?? 0
        let weights = TrainingMemory.parameterCount(config)   // counting builds the model: once for every estimate here
        let needed = TrainingMemory.bytes(config, batchSize: min(batchSize, max(1, trainingClips)), threads: context.threads,
                                          averagingWeights: averagesWeights, weights: weights)
        guard let budget = context.memoryBudget, let budgetMB = context.manifest.resources.maxMemoryMB else {
            try checkMachineMemory(config, context: context, resident: resident, needed: needed, weights: weights)
            return (needed, resident)
        }
        guard resident + needed > budget else {
            let capped = trainingClips < batchSize ? String(format: " (at most %d clips, the largest fold's)", trainingClips) : ""
            let line = String(format: "batch size %d%@: about %.0f MB estimated for training on %.0f MB resident (budget %d MB)",
                              batchSize, capped, ProcessMemory.megabytes(needed), ProcessMemory.megabytes(resident), budgetMB)
            context.logger.info("\(line)")
            // A budget above what the machine has does not make the machine larger.
            try checkMachineMemory(config, context: context, resident: resident, needed: needed, weights: weights)
            return (needed, resident)
        }
        // A budget above what the machine has does not make the machine larger: the size named must fit both.
        let limit = min(budget, ProcessMemory.machineLimitBytes() ?? budget)
        let largest = TrainingMemory.largestBatch(config, threads: context.threads, available: limit - resident, upTo: batchSize,
                                                  averagingWeights: averagesWeights, weights: weights)
        let why = String(format: "about %.0f MB estimated for training plus %.0f MB already resident (features, code) exceeds resources.max_memory_mb = %d (%@); ",
                         ProcessMemory.megabytes(needed), ProcessMemory.megabytes(resident), budgetMB, context.manifest.path)
        let origin = context.parameterOrigins[CodingKeys.batchSize.rawValue] ?? .defaultValue
        throw PipelineError.invalidParameter(
            file: origin.place, key: "train.batch_size", value: "\(batchSize)",
            allowed: why + (largest.map { "the largest batch size that fits is \($0)" }
                            ?? "not even batch size \(TrainingConfig.minBatchSize) fits: raise the budget, or use fewer threads, smaller conv blocks or a smaller train.embedding"))
    }

    /// Said when training's peak went over the budget all the same (the estimate is a model of the
    /// engine, not a measurement), as the per-source stages say theirs; nil when it kept to it.
    static func overrun(peak: Int?, resources: ResourceSettings, estimated: (needed: Int, resident: Int), batchSize: Int) -> String? {
        guard let budget = resources.maxMemoryBytes, let budgetMB = resources.maxMemoryMB, let peak, peak > budget else { return nil }
        return String(format: "resident memory reached %.0f MB, over resources.max_memory_mb = %d, though batch size %d was estimated at "
                      + "%.0f MB on %.0f MB resident: lower train.batch_size or raise the budget",
                      ProcessMemory.megabytes(peak), budgetMB, batchSize, ProcessMemory.megabytes(estimated.needed),
                      ProcessMemory.megabytes(estimated.resident))
    }

    private func checkMachineMemory(_ config: ModelConfig, context: StageContext, resident: Int, needed: Int, weights: Int) throws {
        guard let machine = ProcessMemory.machineLimitBytes(), resident + needed > machine else { return }
        let why = String(format: "about %.0f MB estimated for training plus %.0f MB already resident exceeds this machine's %.0f MB; ",
                         ProcessMemory.megabytes(needed), ProcessMemory.megabytes(resident), ProcessMemory.megabytes(machine))
        if let largest = TrainingMemory.largestBatch(config, threads: context.threads, available: machine - resident, upTo: batchSize,
                                                       averagingWeights: averagesWeights, weights: weights) {
            let origin = context.parameterOrigins[CodingKeys.batchSize.rawValue] ?? .defaultValue
            throw PipelineError.invalidParameter(file: origin.place, key: "train.batch_size", value: "\(batchSize)",
                                                 allowed: why + "the largest batch size that fits is \(largest)")
        }
        // The parameters alone (no sample, one thread) do not fit: the model is too wide, whatever its input.
        if resident + TrainingMemory.bytes(config, batchSize: 0, threads: 1, averagingWeights: averagesWeights, weights: weights) > machine {
            let origin = context.parameterOrigins[CodingKeys.embedding.rawValue] ?? .defaultValue
            throw PipelineError.invalidParameter(file: origin.place, key: "train.embedding", value: "\(embedding)",
                                                 allowed: why + "the model's parameters alone do not fit: use a smaller embedding, or a narrower "
                                                     + "last conv block (train.audio_channels, train.face_channels: the GRU and the projections read its width)")
        }
        let key = config.uses(.audio) ? CodingKeys.audioChannels : CodingKeys.faceChannels
        let value = config.uses(.audio) ? "\(audioChannels)" : "\(faceChannels)"
        let origin = context.parameterOrigins[key.rawValue] ?? .defaultValue
        throw PipelineError.invalidParameter(file: origin.place, key: "train.\(key.rawValue)", value: value,
                                             allowed: why + "not even batch size \(TrainingConfig.minBatchSize) fits: use fewer or narrower conv blocks, "
                                                 + "or a shorter train.window_frames (now \(windowFrames))")
    }

    private static func blocks(fitting size: Int) -> Int { max(0, Int.bitWidth - 1 - size.leadingZeroBitCount) }

    static func blocksText(fitting size: Int) -> String {
        let count = blocks(fitting: size)
        // The model needs at least one block, which needs at least 2: "at most 0 blocks" would suggest emptying the list.
        return count == 0 ? "no block at all (one needs at least 2)" : "at most \(count) block\(count == 1 ? "" : "s")"
    }
}

extension ModelConfig.Modality: ParameterChoice {}
extension EpochSelection: ParameterChoice {}

/// How the training loss weighs the classes (`train.class_weights`).
public enum ClassWeighting: String, Codable, CaseIterable, Equatable, Sendable, ParameterChoice {
    /// Inverse class frequency in the fold's training clips: RAVDESS has half as many neutral clips,
    /// so each counts twice.
    case balanced
    /// Every clip counts the same.
    case none

    func weights(labels: [Int], classes: Int) -> [Float] {
        switch self {
        case .balanced: return Trainer.classWeights(labels: labels, classes: classes)
        case .none: return [Float](repeating: 1, count: classes)
        }
    }
}

extension TrainedModel {
    /// `model.json` in a fold folder or a run folder, durably.
    func write(to url: URL) throws {
        try DurableFile.write(try jsonData(), to: url.path)
    }
}
