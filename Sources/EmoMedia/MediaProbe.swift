// Stream facts without decoding: cheap enough to run over every file of the dataset.

public enum MediaProbe {
    /// wav → libsndfile (header and SF_INFO only); anything else → libavformat
    /// (avformat_open_input + a size-limited avformat_find_stream_info).
    public static func probe(path: String) throws(MediaError) -> MediaFacts {
        if FileChecks.isWavPath(path) {
            switch try SndFileInput.open(path) {
            case .sndfile(let input): return input.facts()
            case .libav(let refusal):
                // As decoding does. Only a stream libav could decode stands in: libavformat lists one of 0
                // channels that its decoder then refuses.
                // A coding libsndfile does not know stands in only when libav knows it too: else the tag is named, not "no codec".
                guard let facts = try? probeWithLibav(path),
                      facts.streams.contains(where: { $0.kind == .audio && ($0.channels ?? 0) > 0 && ($0.sampleRate ?? 0) > 0
                                                      && !(refusal.isNoDecoder && $0.codec == "none") }) else {
                    throw refusal
                }
                return facts
            }
        }
        return try probeWithLibav(path)
    }

    private static func probeWithLibav(_ path: String) throws(MediaError) -> MediaFacts {
        try LibavLog.capturing { (log) throws(MediaError) -> MediaFacts in
            let input = try LibavInput.open(path, log: log)
            try input.findStreamInfo(log: log)
            let facts = input.facts()
            // A picture size only decoding tells (an image under a clip's name) that the decoder refused: said as
            // such, not as a stream without a size.
            let sizeless = facts.streams.filter { $0.kind == .video && (($0.width ?? 0) <= 0 || ($0.height ?? 0) <= 0) }
            if !sizeless.isEmpty, sizeless.count == facts.videoStreamCount, let logged = log.lastError, logged.contains("max pixel count") {
                throw .videoDecodeFailed(path: path, reason: "its pictures are larger than the \(VideoCodec.maximumPixelsSaid) decoded here "
                                         + "(libav: \(logged.echoed))")
            }
            return facts
        }
    }
}
