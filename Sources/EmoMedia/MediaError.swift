// Typed failures of probing and decoding. Every case names the file, so a message can be logged as is.

public enum MediaError: Error, Equatable, Sendable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case notMedia(path: String, reason: String)
    case truncated(path: String, reason: String)
    case noAudioStream(path: String)
    case unsupportedCodec(path: String, codec: String)
    case decodeFailed(path: String, reason: String)
    /// Every sample zero; `channels` > 1: once mixed to mono, as the pipeline hears it (channels that cancel out).
    case silentAudio(path: String, channels: Int = 1)
    case containsNaN(path: String)
    case tooShort(path: String, samples: Int, minimum: Int)
    case invalidArgument(path: String, reason: String)
    case noVideoStream(path: String)
    /// Its only video streams are stills attached to it (cover art).
    case onlyStillPictures(path: String)
    /// Video decoding or frame conversion failed (`decodeFailed` is audio's).
    case videoDecodeFailed(path: String, reason: String)
    /// An image could not be encoded; `path` names what the image is for (e.g. a contact sheet's file).
    case encodeFailed(path: String, reason: String)
    /// Decoding was stopped on request (`StopCheck`) before the end: not a fault of the file.
    case stopped(path: String)
    /// The video stream holds more packet bytes than one clip's frames may be sampled from in memory.
    case videoTooLarge(path: String, maximumBytes: Int)

    /// A stable short code per case, for logs, databases and tests.
    public var code: String {
        switch self {
        case .fileNotFound: "file-not-found"
        case .unreadable: "unreadable"
        case .emptyFile: "empty-file"
        case .notMedia: "not-media"
        case .truncated: "truncated"
        case .noAudioStream: "no-audio-stream"
        case .unsupportedCodec: "unsupported-codec"
        case .decodeFailed: "decode-failed"
        case .silentAudio: "silent-audio"
        case .containsNaN: "contains-nan"
        case .tooShort: "too-short"
        case .invalidArgument: "invalid-argument"
        case .noVideoStream: "no-video-stream"
        case .onlyStillPictures: "only-still-pictures"
        case .videoDecodeFailed: "video-decode-failed"
        case .encodeFailed: "encode-failed"
        case .stopped: "stopped"
        case .videoTooLarge: "video-too-large"
        }
    }

    public var path: String {
        switch self {
        case .fileNotFound(let p), .emptyFile(let p), .noAudioStream(let p),
             .containsNaN(let p), .noVideoStream(let p), .onlyStillPictures(let p), .stopped(let p):
            p
        case .silentAudio(let p, _):
            p
        case .unreadable(let p, _), .notMedia(let p, _), .truncated(let p, _),
             .decodeFailed(let p, _), .invalidArgument(let p, _), .videoDecodeFailed(let p, _),
             .encodeFailed(let p, _):
            p
        case .unsupportedCodec(let p, _), .tooShort(let p, _, _), .videoTooLarge(let p, _):
            p
        }
    }

    public var description: String { "\(path): \(reason)" }

    /// What is wrong, without the file's name: for a line that names the file already.
    public var reason: String {
        switch self {
        // A name that is not UTF-8 reaches Swift with U+FFFD in place of its bad bytes, and then names no file.
        case .fileNotFound(let p) where p.contains("\u{FFFD}"):
            "no such file (the name given is not valid UTF-8, shown here with \u{FFFD}; emopipe opens UTF-8 names only)"
        case .fileNotFound: "no such file"
        case .unreadable(_, let r): "cannot be read: \(r)"
        case .emptyFile: "empty file (0 bytes)"
        case .notMedia(_, let r): "not a media file: \(r)"
        case .truncated(_, let r): "truncated or damaged: \(r)"
        case .noAudioStream: "no audio stream"
        case .unsupportedCodec(_, let c): "no decoder for codec \"\(c)\""
        case .decodeFailed(_, let r): "audio decoding failed: \(r)"
        case .silentAudio(_, let channels): channels > 1
            ? "audio is all zero once its \(channels) channels are mixed to mono, as the pipeline hears it (silent, or channels that cancel out)"
            : "audio is all zero"
        case .containsNaN: "decoded audio contains NaN or infinite samples (or samples so near the 32-bit float limit, ±3.4e38, that mixing or resampling them overflows)"
        // Counted after resampling to the analysis rate: a file of a few samples at 48 kHz may hold none at 16 kHz.
        case .tooShort(_, let n, let m): n == 0 ? "the audio stream holds no samples (after resampling to the analysis rate)"
            : "audio is shorter than \(m) samples (has \(n), counted after resampling to the analysis rate)"
        case .invalidArgument(_, let r): "invalid request: \(r)"
        case .noVideoStream: "no video stream"
        case .onlyStillPictures: "no video stream, \(MediaFacts.onlyStillPicture)"
        case .videoDecodeFailed(_, let r): "video decoding failed: \(r)"
        case .encodeFailed(_, let r): "image encoding failed: \(r)"
        case .stopped: "decoding stopped on request"
        case .videoTooLarge(_, let m):
            "video too large: its video stream's packets take more than \(m >> 20) MB in memory (their data and about \(VideoPackets.bytesPerPacket) bytes of bookkeeping each), the most one clip's frames are sampled from (reading stopped there)"
        }
    }
}

extension MediaError {
    /// No decoder for the stream's codec: a coding neither libsndfile nor libav knows, not damage.
    var isNoDecoder: Bool {
        if case .unsupportedCodec = self { return true }
        return false
    }
}
