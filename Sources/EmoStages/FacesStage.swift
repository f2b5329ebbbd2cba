import EmoCore
import EmoFeatures
import EmoMedia
import EmoPipeline
import EmoStore
import Foundation

/// Faces: K face crops per video source (01 audio-video or 02 video-only mp4), cached as
/// `[K, size, size, 3]` uint8 RGB with each crop's time, box (upright pixels as shown), detection score
/// and found/borrowed flags.
///
/// Frames are sampled evenly over the clip and only those are converted (libavformat/libavcodec,
/// libswscale); dlib's HOG detector finds the face on a downscaled grey copy, one smoothed track
/// per clip, and a frame where detection misses borrows its neighbours' box (flagged). A clip where
/// no frame has a face is a failure row "no face found", never a silent centre crop.
public struct FacesStage: Stage {
    public let name = StageName.faces.rawValue
    public let perSource = true
    public let reads: Set<String> = [StageName.ingest.rawValue]
    /// 2: a mirroring display matrix is no longer read as a half turn. 3: pictures converted with the colour
    /// matrix and range their stream declares (RAVDESS's BT.709 was read as BT.601), seen at their pixel aspect
    /// ratio and at the first picture's size, and frames an edit list cuts not sampled. 4: a picture whose shape
    /// changed mid-stream is letterboxed in the first picture's view, not stretched to it. 5: a sampled picture over
    /// its share of 512 MB is analysed as a smaller copy, and a raw stream without times is sampled by packet order.
    /// 6: a stream whose every packet has one time (a zeroed time-to-sample table) is sampled by packet order too
    /// (it gave K copies of one crop); every other clip gives the same bytes.
    public let codeVersion = "6"

    public init() {}

    /// A landmark model that is not there fails before the run starts, naming the key and where it was set.
    public func checkBeforeRunning(_ parameters: ResolvedParameters, loading: Bool) throws {
        guard let face = parameters.value as? FaceParameters, let problem = face.landmarkModelProblem(loading: loading) else { return }
        throw PipelineError.invalidParameter(file: parameters.origins[problem.key]?.place ?? ParameterOrigin.defaultValue.place,
                                             key: "\(name).\(problem.key)", value: problem.value, allowed: problem.allowed)
    }

    public func run(_ context: StageContext, parameters: FaceParameters) throws -> StageOutcome {
        let extractor = try FaceExtractor(parameters)
        let work = PerSourceWork(context: context, noun: "face tracks")
        let stop = work.stopCheck
        return try work.run(try videoUnits(context)) { unit in
            try Self.compute(unit, extractor: extractor, stop: stop)
        }
    }

    public func plannedUnits(_ context: StageContext, parameters: FaceParameters) throws -> Int? {
        try PerSourceWork(context: context, noun: "face tracks").plannedCount(try videoUnits(context))
    }

    public func externalChanges(_ context: StageContext, parameters: FaceParameters) throws -> String? {
        try PerSourceWork(context: context, noun: "face tracks").missingReason(try videoUnits(context))
    }

    /// Each clip's video source, one unit per distinct content.
    private func videoUnits(_ context: StageContext) throws -> [SourceUnit] {
        let catalog = ClipCatalog(sources: try context.store.sources(status: .ok, under: context.dataRoot))
        return ClipCatalog.units(catalog.clips.compactMap(\.video)).map(SourceUnit.init)
    }

    static func compute(_ unit: SourceUnit, extractor: FaceExtractor, stop: StopCheck = .never) throws -> TensorRecord {
        let clip = try extractor.extract(path: unit.path, stop: stop)
        let frames = clip.frames.map { frame -> ParamValue in
            .object(["time": .double(frame.time), "box": .array(frame.box.map(ParamValue.double)),
                     "score": .double(frame.score), "found": .bool(frame.found), "borrowed": .bool(frame.borrowed)])
        }
        let metadata = ParamValue.object([
            "frames": .array(frames), "width": .int(clip.width), "height": .int(clip.height),
            "duration_seconds": .double(clip.durationSeconds), "rotation": .int(clip.rotation),
            "truncated": .bool(clip.truncated),
        ]).canonicalJSON
        return TensorRecord(key: unit.sha256, dtype: .uint8, shape: [clip.frames.count, clip.size, clip.size, 3],
                            data: Data(clip.crops), metadata: metadata)
    }
}

/// The faces stage's parameters: what is sampled, how faces are found, how crops are made.
extension FaceParameters: StageParameters {
    /// Every decode strategy and thread count yields the same frames bit for bit (`make test` checks it).
    public static var executionOnlyKeys: Set<String> { ["decode_threads", "decode_strategy"] }
    public static var pathKeys: Set<String> { ["landmark_model"] }
    /// The landmarks that align the crops come from the model file's bytes, not its name.
    public static var contentKeys: Set<String> { ["landmark_model"] }
    public var unreadKeys: Set<String> { align ? [] : ["landmark_model"] }
}

extension FaceDecodeStrategy: ParameterChoice {}
