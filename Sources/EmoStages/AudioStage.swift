import EmoCore
import EmoFeatures
import EmoMedia
import EmoPipeline
import EmoStore
import Foundation

/// Audio: one log-mel tensor per speech source, cached as `[n_mels, frames]` float32 with the number
/// of real (unpadded) frames and the duration.
///
/// A clip's speech comes from its wav when there is one (libsndfile), else from its AV mp4's audio
/// track (libavformat/libavcodec); either is resampled to `sample_rate` with libswresample (soxr).
/// Units are keyed by (source SHA-256, parameters fingerprint): new sources cost one unit each, a
/// changed parameter recomputes the stage. Bad audio becomes a failure row, never a tensor.
public struct AudioStage: Stage {
    public let name = StageName.audio.rawValue
    public let perSource = true
    public let reads: Set<String> = [StageName.ingest.rawValue]
    /// 2: resampling at soxr's 20-bit precision, librosa's soxr_hq. 3: audio whose every mel bin is below
    /// db_amin is refused as inaudible (it gave a constant tensor); every other file gives the same bytes.
    /// 4: a file with several audio tracks is read from the one marked default, not the first; a file with one
    /// track gives the same bytes.
    public let codeVersion = "4"

    public init() {}

    public func run(_ context: StageContext, parameters: LogMelParameters) throws -> StageOutcome {
        let extractor = try LogMelExtractor(parameters)
        let work = PerSourceWork(context: context, noun: "log-mel tensors")
        let stop = work.stopCheck
        return try work.run(try speechUnits(context)) { unit in
            try Self.compute(unit, parameters: parameters, extractor: extractor, stop: stop)
        }
    }

    public func plannedUnits(_ context: StageContext, parameters: LogMelParameters) throws -> Int? {
        try PerSourceWork(context: context, noun: "log-mel tensors").plannedCount(try speechUnits(context))
    }

    public func externalChanges(_ context: StageContext, parameters: LogMelParameters) throws -> String? {
        try PerSourceWork(context: context, noun: "log-mel tensors").missingReason(try speechUnits(context))
    }

    /// Each clip's speech source, one unit per distinct content.
    private func speechUnits(_ context: StageContext) throws -> [SourceUnit] {
        let catalog = ClipCatalog(sources: try context.store.sources(status: .ok, under: context.dataRoot))
        return ClipCatalog.units(catalog.clips.compactMap(\.speech)).map(SourceUnit.init)
    }

    static func compute(_ unit: SourceUnit, parameters: LogMelParameters, extractor: LogMelExtractor,
                        stop: StopCheck = .never) throws -> TensorRecord {
        // Decoded chunk by chunk (again for each pass a long file needs): never the whole file in memory.
        let audio = MonoAudioFile(path: unit.path, sampleRate: parameters.sampleRate, stop: stop)
        let mel = try extractor.compute(signal: audio, stop: stop)
        let metadata = ParamValue.object([
            "real_frames": .int(mel.realFrames), "duration_seconds": .double(mel.durationSeconds),
            "source_kind": .string(unit.kind), "source_sample_rate": .int(audio.format?.sourceSampleRate ?? 0),
            "source_channels": .int(audio.format?.sourceChannels ?? 0), "pad_value": .double(Double(mel.padValue)),
        ]).canonicalJSON
        return TensorRecord(key: unit.sha256, float32: mel.values, shape: [mel.nMels, mel.frames], metadata: metadata)
    }
}

/// The audio stage's parameters: librosa's log-mel knobs. `preset` picks a set of values; a key
/// given as `preset` (the pipeline file's way of saying "the preset decides") is left to it.
extension LogMelParameters: StageParameters {
    /// The `speech` preset.
    public init() { self = .speech }

    public static var acceptedKeys: Set<String> { Set(DefaultParameters.encoded(LogMelParameters.self).keys).union(["preset"]) }

    public static func isPlaceholder(_ value: ParamValue) -> Bool { value == .string("preset") }

    public static var presetKey: String? { "preset" }

    public static var defaultPresetName: String? { "speech" }

    /// Without `frames` every frame is kept, so there is nothing to crop; without `center` no frame reaches
    /// past the signal, so nothing is padded: those keys then change nothing (no recomputing for them, and a
    /// sweep axis over one is refused as unread).
    public var unreadKeys: Set<String> {
        var unread: [CodingKeys] = []
        if frames == nil { unread.append(.crop) }
        if !center { unread.append(.padMode) }
        return Set(unread.map(\.rawValue))
    }
}

extension WindowKind: ParameterChoice {}
extension PadMode: ParameterChoice {}
extension MelNorm: ParameterChoice {}
extension CropMode: ParameterChoice {}
