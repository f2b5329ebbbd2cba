// Stream facts without decoding: cheap enough to run over every file of the dataset.

public enum MediaProbe {
    /// wav → libsndfile (header and SF_INFO only); anything else → libavformat
    /// (avformat_open_input + a size-limited avformat_find_stream_info).
    public static func probe(path: String) throws(MediaError) -> MediaFacts {
        if FileChecks.isWavPath(path) {
            return try SndFileInput.open(path).facts()
        }
        return try LibavLog.capturing { (log) throws(MediaError) -> MediaFacts in
            let input = try LibavInput.open(path, log: log)
            try input.findStreamInfo(log: log)
            return input.facts()
        }
    }
}
