// What a probe learns about a media file, without decoding it.

public enum MediaKind: String, Codable, Sendable {
    case audio, video, subtitle, data, other
    /// A still picture attached to the file (cover art): libav's video stream of one frame, no video.
    case picture
}

/// One elementary stream of a container. Video fields are nil for audio streams and vice versa.
public struct StreamFacts: Codable, Equatable, Sendable {
    public var index: Int
    public var kind: MediaKind
    /// libavcodec's codec name, e.g. "h264", "aac", "pcm_s16le".
    public var codec: String
    /// For a codec libavcodec cannot tell ("none"), the container's four-character name for it, when printable.
    public var codecTag: String?
    public var width: Int?
    public var height: Int?
    public var frameRate: Double?
    /// Clockwise degrees to rotate the decoded picture for display, in 0..<360; nil without a display matrix.
    public var rotationDegrees: Int?
    public var sampleRate: Int?
    public var channels: Int?
    /// libavutil's sample format name, e.g. "s16", "fltp".
    public var sampleFormat: String?
    public var durationSeconds: Double?

    public init(index: Int, kind: MediaKind, codec: String,
                width: Int? = nil, height: Int? = nil, frameRate: Double? = nil, rotationDegrees: Int? = nil,
                sampleRate: Int? = nil, channels: Int? = nil, sampleFormat: String? = nil,
                durationSeconds: Double? = nil) {
        self.index = index; self.kind = kind; self.codec = codec
        self.width = width; self.height = height; self.frameRate = frameRate; self.rotationDegrees = rotationDegrees
        self.sampleRate = sampleRate; self.channels = channels; self.sampleFormat = sampleFormat
        self.durationSeconds = durationSeconds
    }
}

public struct MediaFacts: Codable, Equatable, Sendable {
    /// libavformat's format name (e.g. "mov,mp4,m4a,3gp,3g2,mj2"), or "wav" when libsndfile read the file.
    public var container: String
    public var durationSeconds: Double?
    /// Bits per second over the whole file, when known.
    public var bitRate: Int?
    public var streams: [StreamFacts]

    public init(container: String, durationSeconds: Double?, bitRate: Int?, streams: [StreamFacts]) {
        self.container = container; self.durationSeconds = durationSeconds
        self.bitRate = bitRate; self.streams = streams
    }

    public var audioStreamCount: Int { streams.filter { $0.kind == .audio }.count }
    public var videoStreamCount: Int { streams.filter { $0.kind == .video }.count }
    public var firstAudioStream: StreamFacts? { streams.first { $0.kind == .audio } }
    public var firstVideoStream: StreamFacts? { streams.first { $0.kind == .video } }
    /// The stills attached to it (cover art), which are no video.
    public var pictureCount: Int { streams.filter { $0.kind == .picture }.count }
    /// What a file has in place of video when its only pictures are stills attached to it.
    public static let onlyStillPicture = "only a still picture attached to it (cover art)"
    /// Why a file meant to hold video has none, in its own words: none at all, or only a still picture.
    public var noVideoReason: String {
        pictureCount > 0 ? "has no video stream, \(Self.onlyStillPicture)" : "has no video stream"
    }
}
