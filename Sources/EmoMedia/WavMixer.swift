// Interleaved float PCM from libsndfile → mono at the target rate, chunk by chunk.
import CFFmpeg

/// Mixes (and when the rates differ, resamples) consecutive chunks of one WAV's interleaved samples.
/// The samples do not depend on how the file is cut into chunks: averaging is per frame, and the
/// resampler keeps its filter state from one chunk to the next.
final class WavMixer {
    private let channels: Int
    private let sourceRate: Int
    private let targetRate: Int
    private let path: String
    private var resampler: MonoResampler?
    private var scratch: [Float] = []
    /// More channels than libswresample mixes (64): averaged here first, and the mean resampled alone.
    private let premixes: Bool
    private var mixed: [Float] = []
    /// The first mixing failure; reported after the whole file was read, so that a read error wins.
    private var failure: MediaError?

    init(channels: Int, sourceRate: Int, targetRate: Int, path: String) {
        self.channels = channels
        self.sourceRate = sourceRate
        self.targetRate = targetRate
        self.path = path
        premixes = channels > MonoMix.maximumChannels
        guard sourceRate != targetRate else { return }
        var layout = AVChannelLayout()
        av_channel_layout_default(&layout, Int32(premixes ? 1 : channels))
        defer { av_channel_layout_uninit(&layout) }
        do {
            resampler = try MonoResampler(inLayout: layout, inFormat: AV_SAMPLE_FMT_FLT,
                                          inRate: Int32(sourceRate), outRate: Int32(targetRate))
        } catch {
            failure = .decodeFailed(path: path, reason: error.reason)
        }
    }

    func mix(_ interleaved: UnsafeBufferPointer<Float>, _ deliver: (UnsafeBufferPointer<Float>) -> Void) {
        guard failure == nil, !interleaved.isEmpty else { return }
        if channels == 1 && sourceRate == targetRate { return deliver(interleaved) }  // exact pass-through
        scratch.removeAll(keepingCapacity: true)
        if sourceRate == targetRate {
            Self.average(interleaved, channels: channels, into: &scratch)
        } else if let resampler {
            let status: Int32
            if premixes {
                mixed.removeAll(keepingCapacity: true)
                Self.average(interleaved, channels: channels, into: &mixed)
                status = mixed.withUnsafeBufferPointer { mean in
                    var plane: UnsafePointer<UInt8>? = UnsafeRawPointer(mean.baseAddress).map { $0.assumingMemoryBound(to: UInt8.self) }
                    return resampler.convert(&plane, count: Int32(mean.count), into: &scratch)
                }
            } else {
                var plane: UnsafePointer<UInt8>? = UnsafeRawPointer(interleaved.baseAddress).map { $0.assumingMemoryBound(to: UInt8.self) }
                status = resampler.convert(&plane, count: Int32(interleaved.count / channels), into: &scratch)
            }
            if status < 0 { failure = .decodeFailed(path: path, reason: LibavLog.describe(status)); return }
        }
        scratch.withUnsafeBufferPointer { if !$0.isEmpty { deliver($0) } }
    }

    /// Throws the first mixing failure, else delivers what the resampler's filter still holds.
    func finish(_ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        if let failure { throw failure }
        guard let resampler else { return }
        scratch.removeAll(keepingCapacity: true)
        let status = resampler.flush(into: &scratch)
        if status < 0 { throw .decodeFailed(path: path, reason: LibavLog.describe(status)) }
        scratch.withUnsafeBufferPointer { if !$0.isEmpty { deliver($0) } }
    }

    /// Equal-weight mean of the channels of each frame (sum first, then one division, so a stereo pair of
    /// 16-bit values averages exactly).
    static func average(_ interleaved: UnsafeBufferPointer<Float>, channels: Int, into out: inout [Float]) {
        let frames = interleaved.count / channels
        let scale = 1 / Float(channels)
        for frame in 0..<frames {
            var sum: Float = 0
            for c in 0..<channels { sum += interleaved[frame * channels + c] }
            out.append(sum * scale)
        }
    }
}
