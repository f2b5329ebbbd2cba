import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// Export: the trained model as `runs/<run>/model.onnx` (opset 17), whose inputs are exactly what
/// the cache holds (log-mel in dB, uint8 face crops, and their masks) and whose graph does the rest,
/// standardisation included. `metadata_props` carry the labels, the feature parameters, the
/// normalisation constants and the fingerprints. With several folds, fold 0's model is exported.
/// `quantize: int8` also writes `model.int8.onnx` (`Int8Quantization`), same inputs, outputs and metadata.
public struct ExportStage: Stage {
    public let name = StageName.export.rawValue
    // 2: the window policy and speaker normalisation in the metadata; speaker-normalised models export.
    // 3: export.quantize (model.int8.onnx).
    // 4: the graph's producer_version is emopipe's version (it was empty).
    // 5: model.json records a digest of features.json's values (features_sha256, `Predictor.featuresDigest`).
    // 6: a speaker-normalised model's per-actor statistics (speakers.json), which predict reuses for the run's own files.
    // 7: the metadata names an input the exported fold's training never had (untrained_modalities: give it none).
    // 8: the metadata's dataset_fingerprint is the one `emopipe runs` shows (data_fingerprint was ingest's output digest).
    public let codeVersion = "8"
    // The trained model; the feature parameters its metadata records are those train read.
    public let reads: Set<String> = [StageName.train.rawValue]

    public init() {}

    /// A deleted or edited model.onnx (or what `predict` reads beside it) is made again.
    public func externalChanges(_ context: StageContext, parameters: ExportParameters) throws -> String? {
        try RecordedOutputs.runFolderProblem(context, stage: .export, unrecorded: Self.predictFiles)
    }

    public func run(_ context: StageContext, parameters: ExportParameters) throws -> StageOutcome {
        let foldFolder = try TrainStage.foldFolders(context)[0]
        let classifier = try TrainedModel.load(folder: foldFolder, weights: .foldBest)
        let trained = classifier.trained
        classifier.model.eval()
        let fields = try metadata(context, trained: trained, trainFingerprint: try context.store.stageState(.train)?.fingerprint ?? "")
        let onnx = try ONNXExporter.export(classifier.model, standardizer: trained.standardizer, metadata: fields)
        let folder = context.workspace.runFolder(context.runId)
        try Folder.create(folder)
        let path = RunFile.onnx.path(in: folder)
        try DurableFile.write(onnx, to: path)
        // The run folder is self-contained for `emopipe predict`: weights, shape and feature settings.
        // Copied as every output is written (temporary name, fsync, rename): a disk that fills mid-copy
        // leaves no cut-short weights under the real name.
        let runFolder = URL(fileURLWithPath: folder)
        try DurableFile.copy(from: foldFolder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue).path,
                             to: runFolder.appendingPathComponent(TrainedModel.Weights.exported.rawValue).path, check: { _ in })
        // Only the feature stages the model reads: a speech-only model carries no face parameters.
        let upstream = trained.config.upstreamStages
        let features = ParamValue.object(Dictionary(uniqueKeysWithValues: try [StageName.audio, .faces].map { stage in
            (stage.rawValue, try upstream.contains(stage)
                ? context.store.stageState(stage).map { try ParamValue.fromJSON(Data($0.paramsJSON.utf8)) } ?? .null : .null)
        }))
        try DurableFile.write(Data(features.canonicalJSON.utf8), to: RunFile.features.path(in: folder))
        // Written anew rather than copied: a model trained before the snake_case convention gets it too, and
        // it carries the features' digest, by which predict checks a copied folder that no store recorded.
        var exported = trained
        exported.featuresSha256 = Predictor.featuresDigest(features.objectValue ?? [:])
        // The statistics before the model.json that records their digest: a kill between the two leaves no
        // model.json naming a file that is not there.
        let speakers = try recordedSpeakers(trained.config, context: context)
        exported.speakersSha256 = speakers.map { SHA256Hex.of($0) }
        if let speakers { try DurableFile.write(speakers, to: RunFile.speakers.path(in: folder)) }
        try exported.write(to: runFolder.appendingPathComponent(TrainedModel.fileName))
        let sha = SHA256Hex.of(onnx)
        let fed = try sourcesFed(foldFolder, context: context)
        try record(kind: "onnx", path: path, sha256: sha, fed: fed, context: context)
        if let digest = exported.speakersSha256 {
            try record(kind: RunFile.speakers.rawValue, path: RunFile.speakers.path(in: folder), sha256: digest, fed: [], context: context)
        }
        // What `predict` reads beside it, so that an edited copy is noticed as well as a missing one.
        for file in Self.predictFiles {
            let beside = file.path(in: folder)
            try record(kind: file.rawValue, path: beside, sha256: try SHA256Hex.file(atPath: beside).hex, fed: [], context: context)
        }
        context.logger.info("wrote \(path) (\(onnx.count) bytes, sha256 \(sha.prefix(16)))")
        var summary = "model.onnx, fold \(trained.fold.index), \(onnx.count) bytes"
        var digest = sha
        if parameters.quantize == .int8 {
            let int8 = try writeInt8(classifier.model, trained: trained, metadata: fields, folder: folder, fed: fed, context: context)
            summary += String(format: "; model.int8.onnx, %ld bytes (%.0f%%)", int8.bytes, 100 * Double(int8.bytes) / Double(max(1, onnx.count)))
            digest = SHA256Hex.of(sha + int8.sha)
        }
        return StageOutcome(outputDigest: digest, unitsDone: 1, unitsSkipped: 0, unitsFailed: 0, summary: summary)
    }

    /// For a model that normalises each speaker's log-mels: the statistics the run used per actor, and the
    /// sources they came from, so that `predict` on some of those files answers as evaluate did.
    private func recordedSpeakers(_ config: ModelConfig, context: StageContext) throws -> Data? {
        guard config.speakerNorm == true, config.uses(.audio) else { return nil }
        // Loaded as they are cached: the statistics are computed from them, the normalised copies are not needed.
        var raw = config
        raw.speakerNorm = false
        let features = try FeatureSet.load(context: context, modalities: [.audio], base: raw)
        // The cache holds what the audio stage last computed: after `--only export` past a changed audio stage,
        // that is not what the model learnt on, and its statistics would not be the run's.
        if let other = features.samples.first(where: { clip in clip.logmel.map { $0.count != config.nMels * clip.melFrames } ?? false }) {
            throw PipelineError.missingData("export: the cached log-mel of clip \(other.id) has not the \(config.nMels) mel bands the model takes "
                                            + "(the audio stage changed since train ran): run the stages before export (`emopipe run`)")
        }
        if let overrun = FeatureSet.overrun(peak: ProcessMemory.highWaterBytes(), resources: context.manifest.resources, featureBytes: features.bytes) {
            context.logger.warning("\(overrun)")
        }
        return try features.recordedSpeakers().jsonData()
    }

    /// `model.int8.onnx` beside model.onnx, with its provenance row.
    private func writeInt8(_ model: EmotionModel, trained: TrainedModel, metadata: [String: String], folder: String,
                           fed: [String], context: StageContext) throws -> (bytes: Int, sha: String) {
        var fields = metadata
        fields["quantization"] = Self.int8Description(deltas: trained.config.deltas == true)
        let onnx = try ONNXExporter.export(model, standardizer: trained.standardizer, metadata: fields, precision: .int8)
        let path = RunFile.int8Onnx.path(in: folder)
        try DurableFile.write(onnx, to: path)
        let sha = SHA256Hex.of(onnx)
        try record(kind: "onnx-int8", path: path, sha256: sha, fed: fed, context: context)
        context.logger.info("wrote \(path) (\(onnx.count) bytes, sha256 \(sha.prefix(16)))")
        return (onnx.count, sha)
    }

    /// The sources the exported fold's model learnt from, as the train stage recorded them.
    private func sourcesFed(_ foldFolder: URL, context: StageContext) throws -> [String] {
        guard let train = try context.store.stageState(.train) else { return [] }
        let weights = foldFolder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue).path
        guard let relative = context.workspace.relativePath(weights) else { return [] }
        return try context.store.sources(ofArtifactAt: relative, stage: StageName.train.rawValue, fingerprint: train.fingerprint)
    }

    /// The file's provenance row, and one per source its model learnt from, so that `emopipe show SOURCE`
    /// reaches the exports a source fed as it reaches the trained models.
    private func record(kind: String, path: String, sha256: String, fed: [String], context: StageContext) throws {
        let rows = [nil] + fed.map(Optional.some)
        try context.store.replaceArtifacts(rows.map { source in
            ArtifactRecord(stage: name, fingerprint: context.fingerprint.full, sourceSHA256: source,
                           kind: source == nil ? kind : "exported " + kind, path: path, sha256: sha256, runId: context.runId)
        }, stage: name, fingerprint: context.fingerprint.full, path: path)
    }

    /// Refuses a run folder whose model files are not the bytes its export recorded (edited weights
    /// would otherwise answer with confidence). A run the store has no record of (a folder copied from
    /// elsewhere) is not checked.
    /// `runId`: the run whose export rows judge the folder's files (its folder may be reached by another name).
    public static func checkRecordedPredictFiles(runFolder: String, runId: String, store: ProvenanceStore) throws {
        let recorded = try store.outputArtifacts(stage: StageName.export.rawValue, runId: runId)
        for file in predictFiles + [.speakers] {
            // The newest row of this file: a re-export into the same folder replaces the first.
            guard let row = recorded.last(where: { $0.kind == file.rawValue }), let expected = row.sha256 else { continue }
            let path = file.path(in: runFolder)
            // A file past what loading reads (refused by loading, unhashed: an 8 GB model.json took 27 s to hash first),
            // or one that cannot be read, is named by the model's loading, which says what it is for.
            guard let actual = try? SHA256Hex.file(atPath: path, atMost: Self.readLimit(file)).hex else { continue }
            guard actual == expected else {
                throw EmoError.io(path: path, reason: "is not the file export wrote (its SHA-256 is \(actual.prefix(16))…, "
                                  + "export recorded \(expected.prefix(16))…): it was changed since; `emopipe run` exports the model again, into a new run")
            }
        }
    }

    /// The most bytes predict's loading reads of a file (the weights have no bound of their own: the model's size is theirs).
    static func readLimit(_ file: RunFile) -> Int64? {
        switch file {
        case .modelDescription: Int64(TrainedModel.descriptionLimit)
        case .features: Int64(Predictor.featuresLimit)
        case .speakers: Int64(RecordedSpeakers.sizeLimit)
        default: nil
        }
    }

    /// The files `predict` reads from the run folder, beside model.onnx.
    static let predictFiles: [RunFile] = [.weights, .modelDescription, .features]
    /// The int8 file's `quantization` metadata entry: what a consumer needs to know of its arithmetic.
    static func int8Description(deltas: Bool) -> String {
        "int8 weights per output channel (symmetric, zero point 0) for every Conv and MatMul and the GRU's W and R, behind DequantizeLinear; activations entering each Conv and MatMul quantised dynamically to uint8 with one scale and zero point per sample (DynamicQuantizeLinear's rule, per sample), no calibration; the GRU, batch norm, attention and softmax run in float"
            + (deltas ? "; the fixed Conv computing the log-mel's deltas (train.deltas) is not quantised and runs in float" : "")
    }

    /// What the graph's log-mel input is for a model trained with `train.speaker_norm`.
    static let speakerNormalizedInput = "dB standardised per mel band with its speaker's statistics (mean and standard deviation over every frame of that speaker's clips, floor 0.001), as emopipe predict groups files by actor"

    private func metadata(_ context: StageContext, trained: TrainedModel, trainFingerprint: String) throws -> [String: String] {
        func json<T: Encodable>(_ value: T) throws -> String { try JSONOutput.text(value) }
        var fields: [String: String] = [
            "labels": try json(trained.labels), "model_config": try json(trained.config),
            "standardizer": try json(trained.standardizer), "fold": try json(trained.fold),
            "train_fingerprint": trainFingerprint, "emopipe_version": EmoPipeVersion.string,
            "inputs": "logmel float32 [B,n_mels,T] \(trained.config.speakerNorm == true ? Self.speakerNormalizedInput : "dB"); logmel_mask float32 [B,T]; faces uint8 [B,K,S,S,3] RGB; faces_mask float32 [B,K]; modality_mask float32 [B,2] (audio, faces)",
            "window_policy": try json(trained.windowPolicy), "clip_policy": trained.windowPolicy.summary,
            "speaker_norm": String(trained.config.speakerNorm == true),
        ]
        // An input whose branch never learnt: a user of the graph gives it none (modality_mask 0), as predict does.
        if let untrained = trained.untrainedModalities, !untrained.isEmpty { fields["untrained_modalities"] = try json(untrained) }
        for stage in trained.config.upstreamStages where stage != .train {
            guard let state = try context.store.stageState(stage) else { continue }
            fields["\(stage.rawValue)_fingerprint"] = state.fingerprint
            if stage == .audio || stage == .faces { fields["\(stage.rawValue)_params"] = state.paramsJSON }
        }
        // The fingerprint `emopipe runs` and `diff` show for the data (file names and contents in use), so a
        // model is matched to its runs by it.
        fields["dataset_fingerprint"] = try Dataset(store: context.store, root: context.dataRoot).fingerprint
        return fields
    }
}

/// The export stage's parameters (`export:` in a pipeline file or manifest).
public struct ExportParameters: StageParameters {
    /// A misspelt value gets the values allowed, as every choice does (ParameterChoice).
    public enum Quantize: String, Codable, CaseIterable, Equatable, Sendable, ParameterChoice {
        case none
        /// Also `model.int8.onnx`; evaluate then scores the int8 model too.
        case int8
    }

    public var quantize = Quantize.none

    public init() {}

    /// A key not given keeps its default, as in every stage's parameters.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(&quantize, forKey: .quantize)
    }

    enum CodingKeys: String, CodingKey { case quantize }

    public func validate() throws {}
}
