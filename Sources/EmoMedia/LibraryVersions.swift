import CFFmpeg
import CSndFile

/// The versions of the media libraries this binary runs with, recorded with every run.
public enum MediaLibraries {
    public static var versions: [String: String] {
        func dotted(_ packed: UInt32) -> String { "\(packed >> 16).\((packed >> 8) & 0xFF).\(packed & 0xFF)" }
        return [
            "ffmpeg": String(cString: av_version_info()),
            "libavformat": dotted(avformat_version()),
            "libavcodec": dotted(avcodec_version()),
            "libswscale": dotted(swscale_version()),
            "libswresample": dotted(swresample_version()),
            "libsndfile": String(cString: sf_version_string()),
        ]
    }
}
