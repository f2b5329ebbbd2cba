import EmoCore
import Foundation

// Parameters of the face-crop feature: what is sampled, how faces are found, how crops are made.

/// How much of a clip the decoder is fed. Every strategy yields the same frames (bit-exact); they differ
/// only in the work done. `.minimal` (the default) = `.keyframeSeek` + `.skipNonReference`.
public enum FaceDecodeStrategy: String, Codable, Equatable, Hashable, Sendable, CaseIterable {
    /// Every packet of the clip, start to end (the decode floor's work).
    case everyFrame = "every_frame"
    /// From the first packet up to the last sampled frame, but non-reference packets (e.g. H.264 B-frames
    /// that nothing predicts from) are dropped unless sampled: what `skip_frame = AVDISCARD_NONREF`
    /// would save, without losing the sampled B-frames themselves.
    case skipNonReference = "skip_non_reference"
    /// Only the group of pictures that holds a sampled frame, from its keyframe up to the sample.
    case keyframeSeek = "keyframe_seek"
    /// Both of the above.
    case minimal
}

public struct FaceParameters: Codable, Equatable, Hashable, Sendable {
    public static let maxFrames = 256
    public static let sizes = 8...1024
    /// A clip's crops are one cached record, held about three times over while they are made (frames,
    /// crops, the record) by every thread: 64 MiB each (the defaults' is 0.3 MiB) keeps that bounded.
    public static let maxCropBytes = 64 << 20
    /// K: frames sampled per clip, spread evenly in time. A clip with fewer frames repeats its nearest ones.
    public var frames: Int = 8
    /// Side of the square RGB crops, in pixels.
    public var size: Int = 112
    /// Context around the face: the crop is the box's larger side times (1 + 2·margin), centred on the box.
    public var margin: Double = 0.25
    /// Level the eyes with dlib's 68-point landmark model (libdlib-data).
    public var align: Bool = false
    /// Width of the grayscale copy of the (upright) frame that the detector sees (never upscaled). dlib's
    /// window is 80x80, so a face must stay at least ~80 px wide in this copy: RAVDESS faces (dlib box ~26%
    /// of the frame width) are ~104 px at 400; 320 still finds them all but with no margin.
    public var detectWidth: Int = 400
    /// dlib pyramid upsampling steps (0 or 1): 1 finds faces down to ~40 px in the copy, at ~4x the cost.
    public var upsample: Int = 0
    /// Detector threshold added to dlib's own (0 = dlib's default; negative finds more, weaker faces).
    public var minScore: Double = 0
    /// Box smoothing across sampled frames: weight of the neighbour in a forward-backward EMA, 0 = none.
    public var smoothing: Double = 0.5
    /// Decoder threads per clip (FFmpeg frame+slice threads). Results do not depend on it.
    public var decodeThreads: Int = 1
    /// What the decoder is fed (results do not depend on it either).
    public var decodeStrategy: FaceDecodeStrategy = .minimal
    /// The landmark model used when `align` is on.
    public var landmarkModel: String = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"

    public init(frames: Int = 8, size: Int = 112, margin: Double = 0.25, align: Bool = false,
                detectWidth: Int = 400, upsample: Int = 0, minScore: Double = 0, smoothing: Double = 0.5,
                decodeThreads: Int = 1, decodeStrategy: FaceDecodeStrategy = .minimal,
                landmarkModel: String = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat") {
        self.frames = frames; self.size = size; self.margin = margin; self.align = align
        self.detectWidth = detectWidth; self.upsample = upsample; self.minScore = minScore
        self.smoothing = smoothing; self.decodeThreads = decodeThreads; self.decodeStrategy = decodeStrategy
        self.landmarkModel = landmarkModel
    }

    enum CodingKeys: String, CodingKey {
        case frames, size, margin, align
        case detectWidth = "detect_width"
        case upsample
        case minScore = "min_score"
        case smoothing
        case decodeThreads = "decode_threads"
        case decodeStrategy = "decode_strategy"
        case landmarkModel = "landmark_model"
    }

    /// The defaults.
    public init() {}

    /// Missing keys take their defaults, so a manifest names only what it changes; a key that is
    /// present must hold a value of its type (null is not "the default").
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(&frames, forKey: .frames)
        try c.overwrite(&size, forKey: .size)
        try c.overwrite(&margin, forKey: .margin)
        try c.overwrite(&align, forKey: .align)
        try c.overwrite(&detectWidth, forKey: .detectWidth)
        try c.overwrite(&upsample, forKey: .upsample)
        try c.overwrite(&minScore, forKey: .minScore)
        try c.overwrite(&smoothing, forKey: .smoothing)
        try c.overwrite(&decodeThreads, forKey: .decodeThreads)
        try c.overwrite(&decodeStrategy, forKey: .decodeStrategy)
        try c.overwrite(&landmarkModel, forKey: .landmarkModel)
    }

    /// Throws `InvalidParameter` naming the first bad value.
    public func validate() throws {
        try InvalidParameter.require((1...Self.maxFrames).contains(frames), "frames", frames, "an integer from 1 to \(Self.maxFrames)")
        try InvalidParameter.require(Self.sizes.contains(size), "size", size, "an integer from \(Self.sizes.lowerBound) to \(Self.sizes.upperBound) pixels")
        let cropBytes = frames * size * size * 3
        let largestSide = Int((Double(Self.maxCropBytes) / Double(3 * frames)).squareRoot())
        try InvalidParameter.require(cropBytes <= Self.maxCropBytes, "size", size,
                                     "at most \(largestSide) pixels with frames = \(frames): a clip's crops (frames × size² × 3 "
                                     + "bytes, here \(String(format: "%.1f", Double(cropBytes) / 1_048_576)) MiB) are one record, of at most \(Self.maxCropBytes >> 20) MiB",
                                     bounds: ["frames"])
        try InvalidParameter.require(margin.isFinite && (0...2).contains(margin), "margin", margin, "a number from 0 to 2")
        try InvalidParameter.require((80...4096).contains(detectWidth), "detect_width", detectWidth, "an integer from 80 to 4096 pixels")
        try InvalidParameter.require((0...1).contains(upsample), "upsample", upsample, "0 or 1")
        try InvalidParameter.require(minScore.isFinite && (-5...5).contains(minScore), "min_score", minScore, "a number from -5 to 5")
        try InvalidParameter.require(smoothing.isFinite && (0..<1).contains(smoothing), "smoothing", smoothing, "a number with 0 <= smoothing < 1")
        try InvalidParameter.require((1...16).contains(decodeThreads), "decode_threads", decodeThreads, "an integer from 1 to 16")
        try InvalidParameter.require(!(align && landmarkModel.isEmpty), "landmark_model", "\"\"", "a model file path when align is true")
    }

    /// Why the landmark model the faces stage would load cannot be loaded, or nil: asked before a run
    /// that computes faces starts (not by commands that only read, nor runs that leave faces out). A
    /// readable file is loaded here (over a second; kept for the stage), so one that is no dlib model is named now.
    /// `loading: false` checks only that the file can be read (dlib's parse of the 100 MB model takes a second).
    public func landmarkModelProblem(loading: Bool = true) -> InvalidParameter? {
        guard align else { return nil }
        var problem = Self.unreadableFile(landmarkModel)
        if problem == nil, loading {
            do { _ = try LandmarkModel.shared(path: landmarkModel) } catch { problem = "dlib cannot load it: \(error)" }
        }
        guard let problem else { return nil }
        return InvalidParameter(key: "landmark_model", value: landmarkModel.echoed,
                                allowed: "a readable model file when align is true (dlib's shape_predictor_68_face_landmarks.dat, Debian's libdlib-data); \(problem)")
    }

    /// Why `path` is not a regular file this process may read, or nil (RegularFile's own checks).
    static func unreadableFile(_ path: String) -> String? {
        guard !path.utf8.contains(0) else { return "the path holds a NUL byte" }
        do { close(try RegularFile.openForReading(path).descriptor) } catch { return EmoError.reason(of: error) }
        return nil
    }
}
