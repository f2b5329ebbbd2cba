import EmoCore
import EmoModel
import EmoNN
import EmoPipeline
import EmoStore
import Foundation

/// Evaluate: each fold's best model on its held-out test actors, each clip scored whole under the
/// model's window policy (as `emopipe predict` scores a file) — accuracy, weighted and macro F1,
/// unweighted average recall, per-class figures, the confusion matrix, and per-modality ablations
/// when the model has both. Writes `runs/<run>/metrics.json` (over all folds' test clips),
/// `cv.json` (per fold, mean ± std) when there are several folds, `predictions.csv` and
/// `predictions.jsonl` (one row per test clip) and `report.html`.
public struct EvaluateStage: Stage {
    public let name = StageName.evaluate.rawValue
    // 2: predictions.csv/.jsonl, intervals over test actors, actors and misclassified clips in the report.
    // 4: whole clips under the model's window policy.
    // 5: the int8 model beside the float one when export.quantize is int8.
    // 6: modality ablations on the test clips that have both inputs, with the full model's row.
    // 8: test clips whose files failed are listed (unscored_test_clips).
    // 9: test_actors, and test clips with a training file's bytes (test_clips_seen_in_training).
    // 10: a fold's untrained branch gets no input (its test clips scored without it), and no ablation.
    // 11: a file whose features failed makes no test clip seen in training.
    // 12: predictions.csv rounds a tie as .jsonl and predict do (half away from zero, not printf's half to even).
    public let codeVersion = "12"
    // seed: the intervals' bootstrap draws from it.
    public let manifestFields = ["threads", "seed"]
    // The trained folds; the test clips' split rows and features are those train read, so train's needs cover them.
    public let reads: Set<String> = [StageName.train.rawValue]
    // Whether the export is quantised decides whether the int8 model is scored too.
    public let borrowedParameters = [StageName.export.rawValue: ["quantize"]]

    public init() {}

    public var resultScalars: [RunFile: [String]] { Self.scalarNames }

    /// The seven-class figures are written for ravdess8 only, the int8 ones when the export is quantised.
    public func scalarNotWritten(_ scalar: String, parameters: [String: ResolvedParameters], manifest: Manifest) -> String? {
        if scalar.hasPrefix("seven_class."), manifest.labelMap != LabelMap.ravdess8.name {
            return "seven_class.* is written only under label_map ravdess8 (calm then merged into neutral); this one is \(manifest.labelMap)"
        }
        let quantize = (parameters[StageName.export.rawValue]?.value as? ExportParameters)?.quantize
        if scalar.hasPrefix("int8."), quantize != .int8 {
            return "int8.* is written only when export.quantize is int8; here it is \(quantize?.rawValue ?? "unset")"
        }
        // A bootstrap over test actors needs two of them; folds cut from the data may have one too, but
        // only the data tells, so only a single named test actor is known here.
        if scalar.hasPrefix("confidence_interval."), let split = parameters[StageName.split.rawValue]?.value as? SplitParameters,
           split.testActors.count == 1 {
            return "confidence_interval.* (a bootstrap over test actors) is written only with two or more test actors; "
                + "split.test_actors is [\(split.testActors[0])]"
        }
        if scalar.hasPrefix("cv."), let split = parameters[StageName.split.rawValue]?.value as? SplitParameters,
           !split.testActors.isEmpty || split.testFold != .all {
            return "cv.* (over the folds) is written only when several folds are scored (split.test_fold: all); here "
                + (split.testActors.isEmpty ? "split.test_fold is \(split.testFold.index ?? 0)" : "split.test_actors makes one split")
        }
        return nil
    }

    /// Read off small documents with every optional part present (intervals, seven classes, int8,
    /// several folds), so the names follow the documents' types.
    static let scalarNames: [RunFile: [String]] = {
        let labels = ["a", "b"], truth = [0, 1, 0, 1], predicted = [0, 1, 1, 1]
        guard let metrics = try? ClassificationMetrics.compute(labels: labels, truth: truth, predicted: predicted),
              let summary = try? CrossValidationSummary.summarize([FoldResult(fold: 1, metrics: metrics), FoldResult(fold: 2, metrics: metrics)])
        else { return [:] }
        var document = MetricsDocument(metrics: metrics, sevenClass: metrics)
        document.interval = try? ActorBootstrap.compute(labels: labels, actors: [1, 1, 2, 2], truth: truth, predicted: predicted, resamples: 2)
        document.int8 = try? Int8Comparison.compare(labels: labels, truth: truth, float: predicted, int8: predicted)
        var names: [RunFile: [String]] = [:]
        for (file, data) in [(RunFile.metrics, try? document.jsonData()), (.crossValidation, try? summary.jsonData())] {
            if let data { names[file] = RunSummary.scalars(inResult: file, data).map(\.0) }
        }
        return names
    }()

    /// A deleted or edited metrics.json, report or predictions file is made again, and so are they
    /// when a test clip's file has failed (or failed otherwise) since.
    public func externalChanges(_ context: StageContext, parameters: NoParameters) throws -> String? {
        try RecordedOutputs.runFolderProblem(context, stage: .evaluate) ?? UnscoredTestClips.changedSince(context)
    }

    public func run(_ context: StageContext, parameters: NoParameters) throws -> StageOutcome {
        try Engine.configureWithinLimits(threads: context.threads)
        var folds: [FoldResult] = []
        var truth: [Int] = [], predicted: [Int] = [], actors: [Int] = []
        var rows: [ClipPrediction] = []
        var evaluatedFolds: [ActorFold] = []
        /// By fold, the inputs its model learnt from (a clip with none of them is not scored).
        var learnt: [Int: [ModelConfig.Modality]] = [:]
        var ablationPredictions: [String: [Int]] = [:]
        var ablationTruth: [Int] = []
        var epochs: [EpochLog] = []
        var keptEpoch: (epoch: Int, window: Int, selection: EpochSelection)?
        var labels: [String] = []
        let scoresInt8 = context.fingerprint.params["\(StageName.export.rawValue).quantize"]?.stringValue
            == ExportParameters.Quantize.int8.rawValue
        var int8Predicted: [Int] = []
        let foldFolders = try TrainStage.foldFolders(context)
        // Every fold was trained on the same features: read them from the cache once.
        let first = try TrainedModel.description(in: foldFolders[0])
        let features = try FeatureSet.load(context: context, modalities: first.config.modalities, base: first.config)
        let clips = Dictionary(features.plan.clips.map { ($0.clip, $0) }, uniquingKeysWith: { a, _ in a })
        // Each scoring of the test clips goes through their windows; the ablations score the clips with both
        // inputs: audio-only through their windows, faces-only one step per clip.
        let counts = try Self.windowCount(foldFolders, features)
        // Withholding an input says something only of test clips that have both.
        let ablates = first.config.modalities.count == 2 && counts.clipsWithBoth > 0
        let progress = context.progress(total: counts.windows * (1 + (scoresInt8 ? 1 : 0))
                                            + (ablates ? counts.windowsWithBoth + counts.clipsWithBoth : 0),
                                        unit: "windows")
        defer { progress.finish() }
        // A stop signal ends the scoring within one batch: nothing is written, the stage runs again next time.
        func watch(_ classifier: EmotionClassifier) {
            classifier.inference.stopRequested = { context.cancellation.isCancelled }
            classifier.inference.batchScored = { progress.advance(by: $0) }
        }
        do {
            for foldFolder in foldFolders {
                try context.cancellation.check()
                let classifier = try TrainedModel.load(folder: foldFolder, weights: .foldBest)
                // A branch no training clip fed (the fold's model.json says which) is given no input, as in training.
                let untrained = classifier.trained.untrainedModalities ?? []
                if !untrained.isEmpty {
                    let inputs = untrained.map(\.rawValue).joined(separator: " or ")
                    context.logger.warning("fold \(classifier.trained.fold.index): no training clip had \(inputs) input, so that branch never learnt: its test clips are scored without it")
                }
                watch(classifier)
                let trained = classifier.trained
                labels = trained.labels
                var test = features.samples(actors: trained.fold.test)
                // A clip whose only input is an untrained branch's would get the model's bias, the same answer for
                // every such clip: it is not scored (train refuses a fold where that leaves none).
                let inputless = test.filter { !classifier.fedAsTrained($0).hasInput }
                if !inputless.isEmpty {
                    test.removeAll { !classifier.fedAsTrained($0).hasInput }
                    let note = "fold \(trained.fold.index): \(inputless.count) test clip\(inputless.count == 1 ? "" : "s") (first \(inputless[0].id)) "
                        + "\(inputless.count == 1 ? "has" : "have") only an input whose branch never learnt: not scored"
                    context.logger.warning("\(note)")
                }
                guard !test.isEmpty else {
                    // Explained where failures say why; a failure to look them up leaves the plain message.
                    let unscored = (try? UnscoredTestClips.find(context, scored: [], plan: features.plan, folds: [trained.fold],
                                                                modalities: first.config.modalities)) ?? []
                    let planned = Set(trained.fold.test)
                    throw PipelineError.missingData("evaluate: fold \(trained.fold.index) has no test clips with features"
                        + UnscoredTestClips.why(unscored, of: features.plan.clips.filter { planned.contains($0.actor) }.count,
                                                actors: trained.fold.test))
                }
                let foldRows = try classifier.clipProbabilities(test).enumerated().map { i, p in
                    guard p.allSatisfy(\.isFinite) else {
                        throw PipelineError.missingData("evaluate: fold \(trained.fold.index)'s model gives clip \(test[i].id) non-finite probabilities (the training diverged); nothing was written")
                    }
                    return Self.row(test[i], clip: clips[test[i].id], fold: trained.fold.index, probabilities: p)
                }
                let foldPredicted = foldRows.map(\.predicted)
                rows += foldRows
                actors += foldRows.map(\.actor)
                evaluatedFolds.append(trained.fold)
                learnt[trained.fold.index] = trained.learntModalities
                folds.append(FoldResult(fold: trained.fold.index, note: "test actors \(trained.fold.test)", actors: trained.fold,
                                        metrics: try ClassificationMetrics.compute(labels: labels, truth: test.map(\.label),
                                                                                   predicted: foldPredicted)))
                truth += test.map(\.label)
                predicted += foldPredicted
                if scoresInt8 {
                    // What model.int8.onnx computes (the same quantiser as export), scored like the float model.
                    let int8 = EmotionClassifier(trained: trained, model: try classifier.model.int8Simulation(), weightsPath: classifier.weightsPath)
                    watch(int8)
                    int8Predicted += try int8.clipProbabilities(test).map(Inference.argmax)
                }
                // A clip without faces would be scored on nothing in "faces only", and unchanged in "audio only";
                // a fold whose model never learnt one input has nothing to withhold.
                let both = ablates && untrained.isEmpty ? test.indices.filter { Self.hasBothModalities(test[$0]) } : []
                if !both.isEmpty {
                    ablationTruth += both.map { test[$0].label }
                    ablationPredictions[Self.fullModelAblation, default: []] += both.map { foldPredicted[$0] }
                    for (ablation, keep) in [("audio only", ModelConfig.Modality.audio), ("faces only", .faces)] {
                        let masked = both.map { Self.keeping(keep, of: test[$0]) }
                        ablationPredictions[ablation, default: []] += try classifier.clipProbabilities(masked).map(Inference.argmax)
                    }
                }
                if epochs.isEmpty, let state = TrainingState.read(inFolder: foldFolder) {
                    epochs = state.epochs
                    keptEpoch = (state.bestEpoch, trained.training.selectionWindow ?? 1, trained.training.selection ?? .weightedF1)
                }
                let line = String(format: "fold %d: test accuracy %.3f, weighted F1 %.3f (%d clips)",
                                  trained.fold.index, folds.last!.metrics.accuracy, folds.last!.metrics.weightedF1, test.count)
                context.logger.info("\(line)")
            }
        } catch is InferenceStopped {
            throw EmoError.interrupted
        }
        // Scoring is done: its last progress line comes before the summary and the report's.
        progress.finish()
        var document = try MetricsDocument.evaluate(
            labels: labels, truth: truth, predicted: predicted, ablationTruth: ablationTruth,
            ablations: ablationPredictions.keys.sorted().map { ($0, ablationPredictions[$0]!) })
        document.interval = try ActorBootstrap.compute(labels: labels, actors: actors, truth: truth, predicted: predicted,
                                                       seed: UInt64(context.manifest.seed))
        document.sevenClass = try Self.sevenClass(labels: labels, truth: truth, predicted: predicted)
        document.testActors = Array(Set(evaluatedFolds.flatMap(\.test))).sorted()
        let modelInputs = first.config.modalities
        document.seenInTraining = Self.seenInTraining(scored: rows, plan: features.plan, folds: evaluatedFolds, fed: Dictionary(
            features.samples.map { sample in (sample.id, modelInputs.filter(sample.has)) }, uniquingKeysWith: { a, _ in a }))
        document.unscored = try UnscoredTestClips.find(context, scored: Set(rows.map(\.clip)), plan: features.plan, folds: evaluatedFolds,
                                                       modalities: first.config.modalities, learnt: learnt)
        if scoresInt8 {
            document.int8 = try Int8Comparison.compare(labels: labels, truth: truth, float: predicted, int8: int8Predicted)
        }
        let table = try PredictionTable(labels: labels, rows: rows)
        let crossValidation = folds.count > 1 ? try CrossValidationSummary.summarize(folds) : nil
        let runFolder = context.workspace.runFolder(context.runId)
        try Folder.create(runFolder)
        let metricsJSON = try EvaluationJSON.encode(document)
        try DurableFile.write(metricsJSON, to: RunFile.metrics.path(in: runFolder))
        if let crossValidation { try DurableFile.write(try crossValidation.jsonData(), to: RunFile.crossValidation.path(in: runFolder)) }
        try DurableFile.write(Data(table.csv().utf8), to: RunFile.predictionsCSV.path(in: runFolder))
        try DurableFile.write(Data(try table.jsonLines().utf8), to: RunFile.predictionsJSONL.path(in: runFolder))
        var reportInput = ReportInput(
            title: "EmoPipe — \(context.manifest.name)", runId: context.runId, document: document, epochs: epochs,
            provenance: try provenance(context, reading: first.config.upstreamStages), manifestText: context.manifest.recordedText, crossValidation: crossValidation)
        reportInput.folds = evaluatedFolds
        reportInput.keptEpoch = keptEpoch
        reportInput.predictions = table
        reportInput.resources = try Self.resources(context, reading: first.config.upstreamStages)
        reportInput.memoryBudgetMB = context.manifest.resources.maxMemoryMB
        try DurableFile.write(Data(HTMLReport.render(reportInput).utf8), to: RunFile.report.path(in: runFolder))
        try record(context, files: [.metrics, .report, .predictionsCSV, .predictionsJSONL]
                   + (crossValidation == nil ? [] : [.crossValidation]), in: runFolder)

        var summary = String(format: "accuracy %.3f, weighted F1 %.3f, macro F1 %.3f over %d test clips",
                             document.metrics.accuracy, document.metrics.weightedF1, document.metrics.macroF1, truth.count)
        if let ci = document.interval, ci.weightedF1.count == 2 {
            summary += String(format: " (weighted F1's 95%% interval over %d test actors: %.3f-%.3f)", ci.actors, ci.weightedF1[0], ci.weightedF1[1])
        }
        if let q = document.int8 {
            summary += String(format: "; int8: accuracy %.3f, weighted F1 %.3f, same class on %.1f%%",
                              q.accuracy, q.weightedF1, 100 * q.agreement)
        }
        if !document.unscored.isEmpty {
            summary += "; \(document.unscored.count) test clip(s) not scored (metrics.json's unscored_test_clips says why)"
            for clip in document.unscored.prefix(3) {
                let what = clip.stage == StageName.evaluate.rawValue ? "" : " failed \(clip.stage)"
                context.logger.warning("test clip \(clip.clip) not scored: \(clip.path)\(what): \(clip.reason)")
            }
            if document.unscored.count > 3 { context.logger.warning("\(document.unscored.count - 3) more test clips not scored: metrics.json lists them") }
        }
        if let cv = crossValidation {
            summary += String(format: "; %d folds: weighted F1 %.3f ± %.3f", folds.count, cv.weightedF1.mean, cv.weightedF1.std ?? 0)
        }
        if let absent = HTMLReport.absentClassesNote(document.metrics) { context.logger.warning("\(absent)") }
        if let first = document.seenInTraining.first {
            let count = document.seenInTraining.count
            let warning = "\(count) test clip\(count == 1 ? " has" : "s have") the bytes of a file trained on (first: \(first.path), "
                + "the same as \(first.trainingPath)): for them the score is not speaker-independent (metrics.json's test_clips_seen_in_training)"
            context.logger.warning("\(warning)")
        }
        context.logger.info("report: \(RunFile.report.path(in: runFolder))")
        if let overrun = FeatureSet.overrun(peak: ProcessMemory.highWaterBytes(), resources: context.manifest.resources, featureBytes: features.bytes) {
            context.logger.warning("\(overrun)")
        }
        return StageOutcome(outputDigest: SHA256Hex.of(metricsJSON), unitsDone: folds.count, unitsSkipped: 0,
                            unitsFailed: 0, summary: summary)
    }

    static func hasBothModalities(_ clip: ClipFeatures) -> Bool { clip.has(.audio) && clip.has(.faces) }

    /// Scored test clips whose file the model reads has the same bytes as one it read of a clip their
    /// fold trained on (a copy filed under another actor): holding out whole actors did not keep them unseen.
    /// `fed` gives each clip's modalities the model was given features of: a file whose features failed
    /// (two copies of a silent wav) taught nothing and scored nothing, so it makes no clip seen.
    static func seenInTraining(scored: [ClipPrediction], plan: SplitPlan, folds: [ActorFold],
                               fed: [String: [ModelConfig.Modality]]) -> [SeenInTraining] {
        let clips = Dictionary(plan.clips.map { ($0.clip, $0) }, uniquingKeysWith: { a, _ in a })
        func files(_ clip: SplitPlan.Clip) -> [SplitPlan.Source] { (fed[clip.clip] ?? []).compactMap(clip.source(for:)) }
        var found: [SeenInTraining] = []
        for fold in folds {
            let training = Set(fold.train)
            var trained: [String: (clip: String, path: String)] = [:]
            for clip in plan.clips where training.contains(clip.actor) {
                for file in files(clip) where (trained[file.sha256].map { file.path < $0.path } ?? true) {
                    trained[file.sha256] = (clip.clip, file.path)
                }
            }
            for row in scored where row.fold == fold.index {
                guard let clip = clips[row.clip],
                      let (file, twin) = files(clip).lazy.compactMap({ file in trained[file.sha256].map { (file, $0) } }).first else { continue }
                found.append(SeenInTraining(clip: clip.clip, actor: clip.actor, fold: fold.index, path: file.path,
                                            trainingClip: twin.clip, trainingPath: twin.path))
            }
        }
        return found.sorted { ($0.fold, $0.clip) < ($1.fold, $1.clip) }
    }

    /// The ablation row of the full model, scored on the same clips as the others.
    static let fullModelAblation = "audio + faces"

    /// The windows one scoring of every fold's test clips goes through (the unit of evaluate's
    /// progress), and those of the test clips with both inputs (what the ablations score).
    static func windowCount(_ foldFolders: [URL], _ features: FeatureSet) throws
        -> (windows: Int, windowsWithBoth: Int, clipsWithBoth: Int) {
        try foldFolders.reduce((windows: 0, windowsWithBoth: 0, clipsWithBoth: 0)) { total, folder in
            let model = try TrainedModel.description(in: folder)
            let test = features.samples(actors: model.fold.test)
            let both = test.filter(hasBothModalities)
            func windows(_ clips: [ClipFeatures]) -> Int { clips.reduce(0) { $0 + model.windowPolicy.starts(realFrames: $1.melFrames).count } }
            return (total.windows + windows(test), total.windowsWithBoth + windows(both), total.clipsWithBoth + both.count)
        }
    }

    /// Eight-class answers on seven classes (calm counted as neutral, as `ravdess7` merges them);
    /// nil for a model with other labels.
    static func sevenClass(labels: [String], truth: [Int], predicted: [Int]) throws -> ClassificationMetrics? {
        guard labels == LabelMap.ravdess8.labels else { return nil }
        let seven = LabelMap.ravdess7
        let merged = Emotion.allCases.map { seven.classIndex(emotion: $0.rawValue) ?? 0 }
        return try ClassificationMetrics.compute(labels: seven.labels, truth: truth.map { merged[$0] },
                                                 predicted: predicted.map { merged[$0] })
    }

    /// A test clip's row of predictions.csv: its speech source, else its video, names it.
    static func row(_ sample: ClipFeatures, clip: SplitPlan.Clip?, fold: Int, probabilities: [Float]) -> ClipPrediction {
        ClipPrediction(path: clip?.speech?.path ?? clip?.video?.path ?? "", clip: sample.id, actor: clip?.actor ?? 0,
                       fold: fold, truth: sample.label, probabilities: probabilities)
    }

    /// The sample with only one modality left, for the ablations.
    static func keeping(_ modality: ModelConfig.Modality, of sample: ClipFeatures) -> ClipFeatures {
        sample.without(modality == .audio ? .faces : .audio)
    }

    private func provenance(_ context: StageContext, reading upstream: [StageName]) throws -> [(String, String)] {
        var rows: [(String, String)] = [("run", context.runId), ("manifest", context.manifest.path),
                                        ("manifest sha256", SHA256Hex.of(context.manifest.recordedText)),
                                        ("data root", context.dataRoot), ("threads", String(context.threads)),
                                        ("emopipe", EmoPipeVersion.string)]
        if let ingest = try context.store.stageState(.ingest) { rows.append(("ingest output digest", ingest.outputDigest)) }
        for stage in upstream.map(\.rawValue) {
            if let state = try context.store.stageState(stage) {
                rows.append(("\(stage) stage fingerprint", "\(state.fingerprint) (code \(state.codeVersion))"))
            }
        }
        return rows
    }

    /// The cost of each upstream stage's execution that produced what this evaluation reads (its
    /// own is not known until it finishes; `emopipe runs` shows it).
    static func resources(_ context: StageContext, reading upstream: [StageName]) throws -> [StageResources] {
        try upstream.compactMap { stage -> StageResources? in
            guard let state = try context.store.stageState(stage),
                  let execution = try context.store.completedExecution(stage: stage.rawValue, runId: state.runId) else { return nil }
            return StageResources(stage: stage.rawValue, runId: state.runId, seconds: execution.seconds,
                                  cpuSeconds: execution.cpuSeconds, peakRSSMB: execution.peakRSSMB)
        }
    }

    private func record(_ context: StageContext, files: [RunFile], in folder: String) throws {
        try context.store.write { db in
            for file in files {
                let path = file.path(in: folder)
                let sha = (try? SHA256Hex.file(atPath: path).hex) ?? nil
                var artifact = ArtifactRecord(stage: name, fingerprint: context.fingerprint.full, sourceSHA256: nil,
                                              kind: file.rawValue, path: path, sha256: sha, runId: context.runId)
                try artifact.insert(db)
            }
        }
    }
}
