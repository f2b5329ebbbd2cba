// Interleaved float PCM from libsndfile → mono at the target rate.
import CFFmpeg

enum WavMixer {
    static func mono(_ interleaved: [Float], channels: Int, sourceRate: Int, targetRate: Int,
                     path: String) throws(MediaError) -> [Float] {
        if channels == 1 && sourceRate == targetRate { return interleaved }  // exact pass-through
        if sourceRate == targetRate { return average(interleaved, channels: channels) }
        return try resample(interleaved, channels: channels, sourceRate: sourceRate,
                            targetRate: targetRate, path: path)
    }

    /// Equal-weight mean of the channels of each frame (sum first, then one division, so a stereo pair of
    /// 16-bit values averages exactly).
    static func average(_ interleaved: [Float], channels: Int) -> [Float] {
        let frames = interleaved.count / channels
        let scale = 1 / Float(channels)
        return interleaved.withUnsafeBufferPointer { source in
            (0..<frames).map { frame in
                var sum: Float = 0
                for c in 0..<channels { sum += source[frame * channels + c] }
                return sum * scale
            }
        }
    }

    private static func resample(_ interleaved: [Float], channels: Int, sourceRate: Int, targetRate: Int,
                                 path: String) throws(MediaError) -> [Float] {
        var layout = AVChannelLayout()
        av_channel_layout_default(&layout, Int32(channels))
        defer { av_channel_layout_uninit(&layout) }
        let resampler: MonoResampler
        do {
            resampler = try MonoResampler(inLayout: layout, inFormat: AV_SAMPLE_FMT_FLT,
                                          inRate: Int32(sourceRate), outRate: Int32(targetRate))
        } catch {
            throw .decodeFailed(path: path, reason: error.reason)
        }
        var out: [Float] = []
        out.reserveCapacity(interleaved.count / channels * targetRate / sourceRate + 64)
        let status = interleaved.withUnsafeBytes { raw -> Int32 in
            var plane: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            let converted = resampler.convert(&plane, count: Int32(interleaved.count / channels), into: &out)
            return converted < 0 ? converted : resampler.flush(into: &out)
        }
        if status < 0 { throw .decodeFailed(path: path, reason: LibavLog.describe(status)) }
        return out
    }
}
