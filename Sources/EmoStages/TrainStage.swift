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
    // 4: a fold's model.json names the inputs none of its training clips had (untrained_modalities).
    // 5: patience counts from epoch 0 while no epoch is kept (it stopped one epoch early); model.json holds the
    // default channels of a branch that is not built.
    public let codeVersion = "5"
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
    public func forecast(_ parameters: [String: ResolvedParameters], manifest: Manifest) -> [Forecast] {
        guard let train = parameters[name]?.value as? TrainParameters else { return [] }
        let layout = Self.namedLayout(parameters: parameters, manifest: manifest)
        return [layout.flatMap { Self.inputsForecast(train, layout: $0, parameters: parameters, manifest: manifest) },
                memoryForecast(train, layout: layout, parameters: parameters, manifest: manifest)].compactMap { $0 }
    }

    /// What the file names under the data root say, and the split's folds over their actors.
    struct NamedLayout {
        var names: SplitStage.NamesUnderRoot
        /// Each actor's clips the split takes; the folds are planned over these actors.
        var clipsTaken: [Int: Int]
        var folds: [SplitPlan.Fold]
    }

    /// The layout the file names give; nil when a folder cannot be listed (its actors' files may be recorded) or the
    /// split itself will be refused (split says so).
    static func namedLayout(parameters: [String: ResolvedParameters], manifest: Manifest) -> NamedLayout? {
        // Planned, as split plans, over the actors with a clip it takes (an actor with only song while include_song is false has none).
        guard let split = parameters[StageName.split.rawValue]?.value as? SplitParameters,
              let names = SplitStage.actorsNamed(under: manifest.dataRoot), names.unlisted.isEmpty,
              let labels = try? LabelMap(named: manifest.labelMap) else { return nil }
        let clipsTaken = names.clipsTaken(includeSong: manifest.includeSong, labels: labels)
        guard let folds = try? FoldPlanner(split).plan(actors: clipsTaken.keys.sorted()) else { return nil }
        return NamedLayout(names: names, clipsTaken: clipsTaken, folds: folds)
    }

    /// A model whose every branch no training actor has files for (`modalities: [faces]` over speech recordings): train
    /// refuses it, after the feature stages. Judged by the file names under the data root, nothing opened; silent when
    /// a folder cannot be listed (its actors' files may be recorded) or the split itself will be refused (split says so).
    static func inputsForecast(_ train: TrainParameters, layout: NamedLayout, parameters: [String: ResolvedParameters],
                               manifest: Manifest) -> Forecast? {
        let (names, folds) = (layout.names, layout.folds)
        let asked = train.modalities.filter { parameters[$0.featureStage.rawValue] != nil }
        guard !asked.isEmpty else { return nil }
        func actors(_ modality: ModelConfig.Modality) -> Set<Int> { modality == .audio ? names.speechActors : names.videoActors }
        let starved = folds.filter { fold in asked.allSatisfy { actors($0).isDisjoint(with: fold.train) } }
        guard let first = starved.first else { return nil }
        let files = asked.map { $0 == .audio ? "speech (a 01 mp4 or 03 wav)" : "video (a 01 or 02 mp4)" }.joined(separator: " or ")
        let which = starved.count == folds.count ? (folds.count == 1 ? "" : " of any fold") : " of fold \(first.index)"
        let trainingActors = starved.count == folds.count ? Set(folds.flatMap(\.train)).sorted() : first.train
        let origin = parameters[StageName.train.rawValue]?.origins[TrainParameters.CodingKeys.modalities.rawValue]?.place ?? ParameterOrigin.defaultValue.place
        let why = "train.modalities = \(ParamValue.array(train.modalities.map { .string($0.rawValue) }).shown) (from \(origin)): no training actor\(which) "
            + "(\(actorList(trainingActors))) has a file of \(files) under \(manifest.dataRoot.echoed), judged by the file names"
        // The folds above are planned over every named actor, where split plans over those whose clips it takes: certain
        // only when no actor the split may take has such a file at all, so that no fold of any plan has one.
        let mayTake = Set(folds.flatMap { $0.test + $0.validation + $0.train })
        let certain = names.seenWhole && asked.allSatisfy { actors($0).isDisjoint(with: mayTake) }
        return Forecast(reason: why, consequence: "train will refuse the run when its turn comes, after the stages before it", certain: certain)
    }

    private func memoryForecast(_ train: TrainParameters, layout: NamedLayout?, parameters: [String: ResolvedParameters], manifest: Manifest) -> Forecast? {
        // Train caps a batch at the fold's training clips: a batch of 4096 over 24 clips was foretold as refused, then ran.
        let namedClips = layout.flatMap { layout in layout.folds.map { $0.train.map { layout.clipsTaken[$0] ?? 0 }.reduce(0, +) }.max() }
        let batch = min(train.batchSize, max(TrainingConfig.minBatchSize, namedClips ?? Int.max))
        // The tighter of the budget and the machine, as train checks both.
        let limits = [(manifest.resources.maxMemoryBytes, manifest.resources.maxMemoryMB.map { "resources.max_memory_mb = \($0)" }),
                      (ProcessMemory.machineLimitBytes(), nil)]
            .compactMap { bytes, name in bytes.map { ($0, name ?? String(format: "this machine's %.0f MB", ProcessMemory.megabytes($0))) } }
        guard let (limit, against) = limits.min(by: { $0.0 < $1.0 }) else { return nil }
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
            return (alone, weights, TrainingMemory.bytes(alone, batchSize: batch, threads: manifest.threads,
                                                         averagingWeights: train.averagesWeights, weights: weights))
        }
        let resident = ProcessMemory.residentBytesInUse() ?? 0   // as the check it foretells reads it
        guard let (cheapest, weights, needed) = candidates.min(by: { $0.bytes < $1.bytes }), resident + needed > limit else { return nil }
        let largest = TrainingMemory.largestBatch(cheapest, threads: manifest.threads, available: limit - resident, upTo: batch,
                                                  averagingWeights: train.averagesWeights, weights: weights)
        let capped = batch < train.batchSize ? " (batches of \(batch): the most clips a fold trains on, judged by the file names)" : ""
        // Only likely: the features' size is not known before they are computed.
        return Forecast(reason: String(format: "train.batch_size = %d%@: training is estimated at %.0f MB or more (the %@ branch alone), which on the %.0f MB "
                                       + "resident before any features are loaded is over %@",
                                       train.batchSize, capped, ProcessMemory.megabytes(needed), cheapest.modalities[0].rawValue,
                                       ProcessMemory.megabytes(resident), against),
                        consequence: "train will likely refuse it when its turn comes, after the stages before it ("
                            + (largest.map { "the largest batch size that fits is at most \($0)" } ?? "not even batch size \(TrainingConfig.minBatchSize) fits") + ")")
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
            let note = "no training clip has \(data(left)): the model is built without the \(left.rawValue) branch (modalities: \(built))"
            // Files there, but none gave features (every face detection failed, say): worth a warning, not a note.
            let wanted = Set(trainingActors)
            let withFiles = features.plan.clips.filter { wanted.contains($0.actor) && (left == .audio ? $0.speech : $0.video) != nil }.count
            if withFiles > 0 {
                let failed = "\(note), though \(withFiles) training clip\(withFiles == 1 ? " has" : "s have") \(left == .audio ? "speech" : "video"): "
                    + "the \(left.featureStage.rawValue) stage gave \(withFiles == 1 ? "it" : "them") none (failed, or not computed yet: `emopipe sources --failed` says why)"
                context.logger.warning("\(failed)")
            } else {
                context.logger.info("\(note)")
            }
        }
        // Every fold that cannot be trained or scored is named before any is trained (the first one stopped the run).
        var unusable: [String] = [], untrainable = 0
        for fold in features.plan.folds {
            let untrained = features.untrained(fed, fold: fold)
            let foldTraining = features.samples(actors: fold.train)
            // (Its classes would all be "never learnt": the cause is the inputs.)
            guard !foldTraining.isEmpty else {
                unusable.append("fold \(fold.index): no training clip has \(fed.map(data).joined(separator: " or ")) (training actors \(actorList(fold.train)))")
                untrainable += 1
                continue
            }
            if let problem = untestable(fold, features: features, learnt: fed.filter { !untrained.contains($0) }, context: context) {
                unusable.append(problem)
                continue
            }
            for modality in untrained {
                let note = "fold \(fold.index): no training clip has \(data(modality)), so its \(modality.rawValue) branch stays untrained: "
                    + "evaluate and predict give that fold's model no \(modality.rawValue) input"
                context.logger.warning("\(note)")
            }
            // A class no training clip shows (a split of few actors, an `actors` filter) is never predicted.
            let taught = Set(foldTraining.map(\.label))
            let untaught = features.plan.labels.indices.filter { !taught.contains($0) }.map { features.plan.labels[$0] }
            if !untaught.isEmpty {
                context.logger.warning("fold \(fold.index): no training clip is \(untaught.joined(separator: ", ")) (training actors \(actorList(fold.train))), so the model never learns \(untaught.count == 1 ? "it" : "them")")
            }
        }
        if !unusable.isEmpty {
            let one = unusable.count == 1
            let why = untrainable == unusable.count ? (one ? "it could not be trained" : "none of them could be trained")
                : untrainable == 0 ? "evaluate could score none of \(one ? "its" : "their") test clips"
                : "none of them could be both trained and scored"
            // The other folds were fine: a run trains every fold of its split or none, and the way out is to leave these out.
            let total = features.plan.folds.count
            let scope = unusable.count < total ? " (\(unusable.count) of the split's \(total) folds: a run trains all of them or none; "
                + "leave \(one ? "it" : "them") out with split.actors, or train one fold with split.test_fold)" : ""
            throw PipelineError.missingData("train: \(unusable.joined(separator: "; ")); \(why)\(scope), so nothing was trained")
        }
        return fed == asked ? features : features.building(fed)
    }

    /// A fold none of whose test clips has an input the model reads (every test file failed, or a faces-only
    /// model whose test actors have no video) would be trained for nothing: evaluate could score none of them.
    /// `learnt`: the inputs the fold's model learns from (a branch its training clips never feed gets no input).
    static func untestable(_ fold: ActorFold, features: FeatureSet, learnt fed: [ModelConfig.Modality], context: StageContext) -> String? {
        guard !fold.test.isEmpty, !fed.isEmpty,
              !features.samples(actors: fold.test).contains(where: { clip in fed.contains { clip.has($0) } }) else { return nil }
        let asTested = ActorFold(index: fold.index, test: fold.test, validation: [], train: [])
        let failed = (try? UnscoredTestClips.find(context, scored: [], plan: features.plan, folds: [asTested], modalities: fed)) ?? []
        let wanted = Set(fold.test)
        let planned = features.plan.clips.filter { wanted.contains($0.actor) }
        let why = UnscoredTestClips.why(failed, of: planned.count, actors: fold.test)
        let inputs = fed.map { $0 == .audio ? "speech" : "video" }.joined(separator: " or ")
        let lacking = why.isEmpty ? ": their \(planned.count) clip\(planned.count == 1 ? " has" : "s have") no \(inputs) the model reads" : why
        return "fold \(fold.index) has no test clips with features (\(fed.map(\.rawValue).joined(separator: ", ")))\(lacking)"
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
        let stoodFor = Self.outputDigest(fingerprint: state.fingerprint, folds: recorded.sorted { $0.key < $1.key }.map { fold, files in
            (fold, files.first { $0.path.hasSuffix("/" + TrainedModel.Weights.foldBest.rawValue) }?.sha256 ?? "")
        })
        guard stoodFor != state.outputDigest else { return nil }
        return folds.isEmpty ? "no fold's weights are left of those run \(state.runId) completed with (set aside by a --force that did not finish?)"
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

    static func condition(of foldFolder: URL, fold: Int, recorded: [RecordedOutputs.Expected]?) -> FoldCondition {
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
        if let problem = RecordedOutputs.problem(recorded) { return .lost(problem) }
        // The state is no recorded file: it must say what the recorded description says of the kept epoch, or a
        // resumed fold would describe weights of another epoch (as a fold taken from another fingerprint must).
        if let state, let described = (try? TrainedModel.description(in: foldFolder))?.bestEpoch, described != state.bestEpoch {
            return .lost("fold \(fold)'s state.json says epoch \(state.bestEpoch) was kept, its recorded model.json epoch \(described) (edited)")
        }
        return .asRecorded
    }

    /// Each fold's kept weights and model.json as training recorded them (the newest row per file), by fold
    /// index (folds trained before model.json was recorded have their weights alone).
    static func recordedModels(_ context: StageContext, fingerprint: String) throws -> [Int: [RecordedOutputs.Expected]] {
        let folder = Self.folder(context.workspace, fingerprint: fingerprint)
        let rows = try context.store.outputArtifacts(stage: StageName.train.rawValue, fingerprint: fingerprint)
        let expected = RecordedOutputs.expected(rows, in: context.workspace) { recorded in
            let url = URL(fileURLWithPath: recorded)
            return folder.appendingPathComponent(url.deletingLastPathComponent().lastPathComponent)
                .appendingPathComponent(url.lastPathComponent).path
        }
        let byFold = expected.compactMap { file in foldIndex(of: file.path).map { (fold: $0, file: file) } }
        return Dictionary(grouping: byFold, by: \.fold).mapValues { $0.map(\.file) }
    }

    /// Why the model's window would be mostly padding (the median clip's log-mel fills a quarter of it
    /// or less: `audio.hop_length` raised, or a window far longer than the clips), or nil.
    static func mostlyPadding(_ samples: [ClipFeatures], windowFrames: Int) -> String? {
        let frames = samples.filter { $0.logmel != nil }.map(\.melFrames).sorted()
        guard !frames.isEmpty else { return nil }
        let median = frames[frames.count / 2]
        guard median * 4 <= windowFrames else { return nil }
        return "the median clip has \(median) log-mel frame\(median == 1 ? "" : "s"), a quarter or less of train.window_frames "
            + "(\(windowFrames)): most of every window is padding (a longer audio.hop_length than meant, audio.trim_db or audio.frames cutting the clips short, "
            + "or a shorter window fits these clips)"
    }

    /// The fold a file inside a fold folder belongs to (`…/fold-2/best.safetensors` → 2).
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
        var reused = 0
        // A fold found finished is an earlier training's only when a train of this fingerprint completed; one a
        // killed run finished was trained, and never scored, so it counts as trained now.
        let completedBefore = try context.store.hasCompleted(stage: name, fingerprint: context.fingerprint.full)
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
            let classWeights = parameters.classWeights.weights(labels: train.map(\.label), classes: features.config.classes)
            let trainer = Trainer(model: model, config: training, standardizer: standardizer, classWeights: classWeights,
                                  seed: seed &+ UInt64(fold.index) &* 101)
            trainer.log = { context.logger.info("fold \(fold.index): \($0)") }
            trainer.stopRequested = { context.cancellation.isCancelled }
            let foldFolder = folder.appendingPathComponent(Workspace.foldFolderName(fold.index))
            // Resuming would return at once and keep what is there now; the fold starts over instead.
            if case .lost(let problem) = Self.condition(of: foldFolder, fold: fold.index, recorded: recorded[fold.index]) {
                try Self.discard(foldFolder, fold: fold.index, because: problem, context: context)
            }
            // Validation is scored as evaluate will score the fold: a branch no training clip fed gets no input.
            let untrained = features.untrained(features.config.modalities, fold: fold)
            // (A clip left with nothing, a video-only clip in a fold whose face branch never learnt, would only add noise.)
            let masked = validation.map { $0.without(untrained) }
            let withInput = masked.filter(\.hasInput)
            let validated = withInput.isEmpty ? masked : withInput
            let inputs = FoldTrainingInputs(parameters: context.fingerprint.parameters, fold: fold, train: train, validation: validated,
                                            config: features.config, training: training, policy: parameters.windowPolicy,
                                            classWeights: classWeights, labels: features.plan.labels, untrained: untrained)
            let fresh = TrainingState.read(inFolder: foldFolder) == nil
            var tookEarlier = false
            if !context.forced, fresh, let earlier = try inputs.earlierFold(fold.index, context: context) {
                try FoldTrainingInputs.copy(earlier, into: foldFolder)
                let taken = "fold \(fold.index): its training and validation clips and settings are those of the fold trained under "
                    + "\(earlier.fingerprint.prefix(16)) (other clips changed since): its weights are taken, not trained again"
                context.logger.info("\(taken)")
                tookEarlier = true
            } else if fresh {
                try inputs.write(into: foldFolder)
            } else {
                // Resumed: the digest stands only for what the fold started on (a resumption on other clips, after
                // `cache verify` left some out, is no training of these inputs another fingerprint may take).
                inputs.forget(unlessIn: foldFolder)
            }
            let state: TrainingState
            do {
                state = try trainer.fit(train: train, validation: validated, policy: parameters.windowPolicy,
                                        folder: foldFolder) { truth, predicted in
                    let m = try? ClassificationMetrics.compute(labels: features.plan.labels, truth: truth, predicted: predicted)
                    return (m?.accuracy ?? 0, m?.weightedF1 ?? 0)
                }
            } catch is TrainingStopped {
                throw EmoError.interrupted
            } catch NNError.invalidArgument(let reason) {
                // Said of the fold and its actors: the engine's words name no setting a user can change.
                let advice = train.count < 2 ? "; give the fold more training clips (fewer actors in split.test_actors and split.val_actors, or a larger data root)" : ""
                throw PipelineError.missingData("train: fold \(fold.index) (\(train.count) training clip\(train.count == 1 ? "" : "s") of actors \(fold.train)): "
                    + "\(reason)\(advice)")
            }
            // Nothing trained now: weights taken from another fingerprint's fold, or found finished under this one by
            // a completed training (settings set back to those of an earlier run).
            if state.finished, trainer.epochsTrained == 0, tookEarlier || completedBefore { reused += 1 }
            var foldModel = TrainedModel(config: features.config, standardizer: standardizer, training: training,
                                         labels: features.plan.labels, fold: fold, bestEpoch: state.bestEpoch, window: parameters.windowPolicy)
            foldModel.untrainedModalities = untrained.isEmpty ? nil : untrained
            let descriptionURL = foldFolder.appendingPathComponent(TrainedModel.fileName)
            let descriptionSha = try foldModel.write(to: descriptionURL)
            let weightsURL = foldFolder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue)
            let sha = try SHA256Hex.file(atPath: weightsURL.path).hex
            try recordModel(context, path: weightsURL.path, sha256: sha,
                            trainedOn: Self.sourcesLearntFrom(features.samples(actors: fold.train), plan: features.plan, config: features.config),
                            description: (descriptionURL.path, descriptionSha))
            keptWeights.append((fold.index, sha))
            // The window training used: a run shorter than selection_window selects over all its epochs.
            let selection = training.selection ?? .weightedF1
            let described = selection.describe(window: training.selectionWindow ?? 1)
            // A loss is kept negated (higher is better); the last epoch's score is its number.
            let score = selection == .last ? "" : state.bestScore.map { String(format: " %.3f", selection == .validationLoss ? -$0 : $0) } ?? ""
            // No score: every epoch that completed a window diverged, and an earlier one was kept unscored.
            summaries.append(selection != .last && state.bestScore == nil
                ? "fold \(fold.index) epoch \(state.bestEpoch) kept: the epochs after it diverged before \(described) could be scored"
                : String(format: "fold %d %@%@ (epoch %d)", fold.index, described, score, state.bestEpoch))
        }
        if let overrun = TrainParameters.overrun(peak: ProcessMemory.highWaterBytes(), resources: context.manifest.resources,
                                                estimated: estimated, batchSize: parameters.batchSize, featureBytes: features.bytes) {
            context.logger.warning("\(overrun)")
        }
        let taken = reused == 0 ? "" : reused == features.plan.folds.count ? StageSummary.weightsTaken + ": "
            : "\(reused) of \(features.plan.folds.count) \(StageSummary.someWeightsTaken); "
        return StageOutcome(outputDigest: Self.outputDigest(fingerprint: context.fingerprint.full, folds: keptWeights),
                            unitsDone: features.plan.folds.count - reused, unitsSkipped: reused, unitsFailed: 0,
                            summary: taken + summaries.joined(separator: "; "))
    }

    /// The sources whose features a fold's model learnt from: of its training clips, the speech of those with a
    /// log-mel and the video of those with face crops, for the modalities the model takes. A clip's file whose
    /// stage failed (silent speech, no face) fed nothing, nor does a modality the model leaves out.
    static func sourcesLearntFrom(_ samples: [ClipFeatures], plan: SplitPlan, config: ModelConfig) -> [String] {
        let clips = Dictionary(plan.clips.map { ($0.clip, $0) }, uniquingKeysWith: { first, _ in first })
        return samples.flatMap { sample in
            config.modalities.filter(sample.has).compactMap { clips[sample.id]?.source(for: $0)?.sha256 }
        }
    }

    /// The model is a provenance row, and so is each source it learnt from, so that
    /// `emopipe show SOURCE` reaches the models a source fed. A fold found finished (by a killed run, or
    /// under parameters set again) is recorded again by the run that takes it over; its rows replace the
    /// earlier ones but keep the run that trained it.
    /// The fold's model.json is a row of its own: evaluate and export read its standardiser, window and labels
    /// beside the weights, so an edit to it makes the fold stale as an edit to the weights does.
    private func recordModel(_ context: StageContext, path: String, sha256: String, trainedOn sources: [String],
                             description: (path: String, sha256: String)) throws {
        let fingerprint = context.fingerprint.full
        let model = ArtifactRecord(stage: name, fingerprint: fingerprint, sourceSHA256: nil,
                                   kind: "model", path: path, sha256: sha256, runId: context.runId)
        let fed = Set(sources).sorted().map { source in
            ArtifactRecord(stage: name, fingerprint: fingerprint, sourceSHA256: source,
                           kind: "trained model", path: path, sha256: sha256, runId: context.runId)
        }
        try context.store.replaceArtifacts([model] + fed, stage: name, fingerprint: fingerprint, path: path)
        let described = ArtifactRecord(stage: name, fingerprint: fingerprint, sourceSHA256: nil, kind: "model description",
                                       path: description.path, sha256: description.sha256, runId: context.runId)
        try context.store.replaceArtifacts([described], stage: name, fingerprint: fingerprint, path: description.path)
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
