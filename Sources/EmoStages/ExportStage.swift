import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// Export: the trained model as `runs/<run>/model.onnx` (opset 17), whose inputs are exactly what
/// the cache holds (log-mel in dB, uint8 face crops, and their masks) and whose graph does the rest,
/// standardisation included. `metadata_props` carry the labels, the feature parameters, the
/// normalisation constants and the fingerprints. With several folds, fold 0's model is exported.
public struct ExportStage: Stage {
    public let name = StageName.export.rawValue
    // 2: the window policy and speaker normalisation in the metadata; speaker-normalised models export.
    public let codeVersion = "2"

    public init() {}

    public func run(_ context: StageContext, parameters: NoParameters) throws -> StageOutcome {
        let foldFolder = try TrainStage.foldFolders(context)[0]
        let classifier = try TrainedModel.load(folder: foldFolder, weights: .foldBest)
        let trained = classifier.trained
        classifier.model.eval()
        let onnx = try ONNXExporter.export(classifier.model, standardizer: trained.standardizer,
                                           metadata: try metadata(context, trained: trained,
                                                                           trainFingerprint: try context.store.stageState(.train)?.fingerprint ?? ""))
        let folder = context.workspace.runFolder(context.runId)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/model.onnx"
        try DurableFile.write(onnx, to: path)
        // The run folder is self-contained for `emopipe predict`: weights, shape and feature settings.
        let runFolder = URL(fileURLWithPath: folder)
        try FileManager.default.copyItem(at: foldFolder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue),
                                         to: runFolder.appendingPathComponent(TrainedModel.Weights.exported.rawValue))
        // Written anew rather than copied: a model trained before the snake_case convention gets it too.
        try trained.write(to: runFolder.appendingPathComponent(TrainedModel.fileName))
        let features = ParamValue.object([
            StageName.audio.rawValue: try context.store.stageState(.audio).map { try ParamValue.fromJSON(Data($0.paramsJSON.utf8)) } ?? .null,
            StageName.faces.rawValue: try context.store.stageState(.faces).map { try ParamValue.fromJSON(Data($0.paramsJSON.utf8)) } ?? .null,
        ])
        try DurableFile.write(Data(features.canonicalJSON.utf8), to: folder + "/features.json")
        let sha = SHA256Hex.of(onnx)
        try context.store.write { db in
            var artifact = ArtifactRecord(stage: name, fingerprint: context.fingerprint.full, sourceSHA256: nil,
                                          kind: "onnx", path: path, sha256: sha, runId: context.runId)
            try artifact.insert(db)
        }
        context.logger.info("wrote \(path) (\(onnx.count) bytes, sha256 \(sha.prefix(16)))")
        return StageOutcome(outputDigest: sha, unitsDone: 1, unitsSkipped: 0, unitsFailed: 0,
                            summary: "model.onnx, fold \(trained.fold.index), \(onnx.count) bytes")
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
        for stage in [StageName.ingest, .audio, .faces, .split] {
            guard let state = try context.store.stageState(stage) else { continue }
            fields["\(stage.rawValue)_fingerprint"] = state.fingerprint
            if stage == .audio || stage == .faces { fields["\(stage.rawValue)_params"] = state.paramsJSON }
            if stage == .ingest { fields["data_fingerprint"] = state.outputDigest }
        }
        return fields
    }
}
