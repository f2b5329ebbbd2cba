// The face feature's results and errors.
import EmoMedia

/// One sampled frame of a clip.
public struct FaceFrame: Codable, Equatable, Sendable {
    /// Presentation time in seconds from the start of the video stream.
    public var time: Double
    /// The (smoothed) face box the crop was made from: x0, y0, x1, y1 in upright source-frame pixels.
    public var box: [Double]
    /// The detector's score for this frame's own detection; 0 when the box was borrowed.
    public var score: Double
    /// The detector found the tracked face in this frame.
    public var found: Bool
    /// No detection here: the box is interpolated from the nearest frames that had one.
    public var borrowed: Bool
    /// The detector's own box before smoothing (empty when not found).
    public var rawBox: [Double] = []
    /// Degrees the crop was rotated to level the eyes (0 without alignment).
    public var angle: Double = 0
    /// The decoder reported damage in this frame (or it could not be decoded and repeats a neighbour).
    public var damaged: Bool = false

    public init(time: Double, box: [Double], score: Double, found: Bool, borrowed: Bool,
                rawBox: [Double] = [], angle: Double = 0, damaged: Bool = false) {
        self.time = time; self.box = box; self.score = score; self.found = found; self.borrowed = borrowed
        self.rawBox = rawBox; self.angle = angle; self.damaged = damaged
    }

    enum CodingKeys: String, CodingKey {
        case time, box, score, found, borrowed, angle, damaged
        case rawBox = "raw_box"
    }
}

/// How much decoding a clip took (for benchmarks and logs): EmoMedia's count.
public typealias FaceDecodeStats = VideoDecodeStats

/// A picture of one sampled frame with the boxes the detector found, for the contact sheet.
public struct FaceThumbnail: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// width*height*3 RGB.
    public var rgb: [UInt8]
    /// Thumbnail pixels per source pixel.
    public var scale: Double
    /// Which sampled frame it shows.
    public var frameIndex: Int
    /// Every detection in that frame (source pixels), including faces not tracked.
    public var detections: [[Double]]

    public init(width: Int, height: Int, rgb: [UInt8], scale: Double, frameIndex: Int, detections: [[Double]]) {
        self.width = width; self.height = height; self.rgb = rgb; self.scale = scale
        self.frameIndex = frameIndex; self.detections = detections
    }
}

/// The face crops of one clip.
public struct FaceClip: Sendable {
    /// K*size*size*3 RGB bytes, frame-major, rows top to bottom.
    public var crops: [UInt8]
    public var frames: [FaceFrame]
    public var size: Int
    /// Upright source frame size (after applying the rotation metadata).
    public var width: Int
    public var height: Int
    public var durationSeconds: Double
    /// Clockwise rotation applied from the stream's display matrix (0, 90, 180, 270).
    public var rotation: Int = 0
    /// The file ends before its index says it should: frames were sampled from the part that exists.
    public var truncated: Bool = false
    public var decode: FaceDecodeStats = FaceDecodeStats()
    /// Set by `extract(path:thumbnailWidth:)`.
    public var thumbnail: FaceThumbnail?

    public init(crops: [UInt8], frames: [FaceFrame], size: Int, width: Int, height: Int, durationSeconds: Double) {
        self.crops = crops; self.frames = frames; self.size = size
        self.width = width; self.height = height; self.durationSeconds = durationSeconds
    }

    /// Fraction of sampled frames where the detector found the face.
    public var foundFraction: Double {
        frames.isEmpty ? 0 : Double(frames.filter(\.found).count) / Double(frames.count)
    }

    /// The RGB bytes of crop `i`.
    public func crop(_ i: Int) -> ArraySlice<UInt8> {
        let n = size * size * 3
        return crops[(i * n)..<((i + 1) * n)]
    }
}

public enum FaceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No sampled frame had a face: the clip gets no crops (never a silent centre crop).
    case noFaceFound
    case noVideoStream
    case decodeFailed(String)
    /// The file could not be opened or used as media (missing, not media, damaged header, too large): EmoMedia's classification.
    case media(MediaError)
    case invalidParameters(String)
    case landmarkModelUnavailable(String)
    case detectorFailed(String)

    public var code: String {
        switch self {
        case .noFaceFound: "no-face-found"
        case .noVideoStream: "no-video-stream"
        case .decodeFailed: "decode-failed"
        case .media(let m): m.code
        case .invalidParameters: "invalid-parameters"
        case .landmarkModelUnavailable: "landmark-model-unavailable"
        case .detectorFailed: "detector-failed"
        }
    }

    /// A media failure as the face feature names it: no video stream and video decoding failures keep
    /// their own cases, anything else (missing, not media, damaged header) is `.media`.
    public init(_ error: MediaError) {
        switch error {
        case .noVideoStream: self = .noVideoStream
        case .videoDecodeFailed(_, let reason): self = .decodeFailed(reason)
        default: self = .media(error)
        }
    }

    /// Runs a media call, turning its failure into a face error.
    static func mapping<T>(_ body: () throws(MediaError) -> T) throws(FaceError) -> T {
        do { return try body() } catch { throw FaceError(error) }
    }

    public var description: String {
        switch self {
        case .noFaceFound: "No face was found in any sampled frame of the clip."
        case .noVideoStream: "The file has no video stream."
        case .decodeFailed(let why): "The video could not be decoded: \(why)."
        // Whoever shows the error names the file (as for the other cases): not a second time here.
        case .media(let m): "The file could not be used: \(m.reason)."
        case .invalidParameters(let why): "Invalid face parameters: \(why)."
        case .landmarkModelUnavailable(let why): "The face landmark model could not be loaded: \(why)."
        case .detectorFailed(let why): "The face detector failed: \(why)."
        }
    }
}
