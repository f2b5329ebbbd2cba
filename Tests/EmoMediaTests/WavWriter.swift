// Writes small test WAVs through libsndfile.
import CSndFile
import Foundation

enum WavWriter {
    struct Failed: Error { let reason: String }

    static func write(_ path: String, samples: [Float], sampleRate: Int32 = 48_000, float: Bool) throws {
        var info = SF_INFO()
        info.samplerate = sampleRate
        info.channels = 1
        info.format = Int32(SF_FORMAT_WAV) | Int32(float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16)
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw Failed(reason: String(cString: sf_strerror(nil)))
        }
        defer { sf_close(file) }
        var copy = samples
        guard sf_writef_float(file, &copy, sf_count_t(copy.count)) == copy.count else {
            throw Failed(reason: String(cString: sf_strerror(file)))
        }
    }
}
