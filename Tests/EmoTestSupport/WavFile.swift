import CSndFile
import Foundation

/// WAV files through libsndfile, independent of EmoMedia's decoder: written when a test needs a
/// known signal, read as an oracle.
public enum WavFile {
    public struct Audio: Sendable {
        /// Mono: channels averaged.
        public var samples: [Float]
        public var sampleRate: Int
        public var channels: Int
    }

    /// A WAV, 16-bit PCM or 32-bit float; with several channels, `samples` are interleaved frames.
    public static func write(_ path: String, samples: [Float], sampleRate: Int32 = 48_000, channels: Int32 = 1, float: Bool) throws {
        var info = SF_INFO()
        info.samplerate = sampleRate
        info.channels = channels
        info.format = Int32(SF_FORMAT_WAV) | Int32(float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16)
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw TestFailure("cannot create \(path): \(String(cString: sf_strerror(nil)))")
        }
        defer { sf_close(file) }
        var copy = samples
        let frames = copy.count / Int(channels)
        guard sf_writef_float(file, &copy, sf_count_t(frames)) == frames else {
            throw TestFailure("cannot write \(path): \(String(cString: sf_strerror(file)))")
        }
    }

    /// Any file libsndfile reads, as floats (libsndfile's normalisation, like python's soundfile).
    public static func read(_ url: URL) throws -> Audio {
        var info = SF_INFO()
        guard let file = sf_open(url.path, Int32(SFM_READ), &info) else {
            throw TestFailure("sf_open \(url.path): \(String(cString: sf_strerror(nil)))")
        }
        defer { sf_close(file) }
        let frames = Int(info.frames), channels = Int(info.channels)
        var interleaved = [Float](repeating: 0, count: frames * channels)
        let got = Int(interleaved.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(frames)) })
        var mono = [Float](repeating: 0, count: got)
        if channels == 1 {
            mono = Array(interleaved.prefix(got))
        } else {
            for i in 0..<got {
                var sum: Float = 0
                for c in 0..<channels { sum += interleaved[i * channels + c] }
                mono[i] = sum / Float(channels)
            }
        }
        return Audio(samples: mono, sampleRate: Int(info.samplerate), channels: channels)
    }
}
