import CFFmpeg
import Foundation
import EmoTestSupport
import Testing
@testable import EmoMedia

/// Inputs `make fuzz` found to misbehave in the probe/decode path, reduced to the smallest file.
/// None needs the shared data: each writes its own few bytes.
@Suite("inputs found by make fuzz")
struct FuzzFindingsTests {
    /// A canonical 44-byte-header PCM WAV whose header says `rate` Hz, with `frames` 16-bit mono samples.
    static func wav(rate: UInt32, frames: Int) -> Data {
        var b = Data("RIFF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        u32(UInt32(36 + 2 * frames)); b.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16)
        u16(1); u16(1); u32(rate); u32(rate &* 2); u16(2); u16(16)
        b.append(contentsOf: Array("data".utf8)); u32(UInt32(2 * frames))
        for i in 0..<frames { u16(UInt16(bitPattern: Int16((i % 50) * 300 - 7500))) }
        return b
    }

    /// The same WAV with `chunks` small `junk` chunks between `fmt ` and `data`, and the fmt chunk's
    /// channel count and rate as given.
    static func wav(junkChunks chunks: Int, channels: UInt16 = 1, rate: UInt32 = 16_000, frames: Int = 8_000) -> Data {
        let plain = wav(rate: rate, frames: frames)
        var b = Data(plain.prefix(36))
        b.replaceSubrange(22..<24, with: withUnsafeBytes(of: channels.littleEndian) { Data($0) })
        for _ in 0..<chunks { b.append(contentsOf: Array("junk".utf8) + [2, 0, 0, 0, 0, 0]) }
        b.append(plain.dropFirst(36))
        b.replaceSubrange(4..<8, with: withUnsafeBytes(of: UInt32(b.count - 8).littleEndian) { Data($0) })
        return b
    }

    /// What opening a WAV gives: libsndfile's reader, the file handed to libav, or a refusal.
    static func opening(_ path: String) -> String {
        do {
            switch try SndFileInput.open(path) {
            case .sndfile: return "sndfile"
            case .libav: return "libav"
            }
        } catch { return "refused" }
    }

    /// libsndfile gives up on a valid WAV with thousands of chunks before `data`; libavformat reads it, to
    /// the same samples. A fmt chunk libsndfile refuses is named by the field at fault.
    @Test func aWavLibsndfileGivesUpOnIsReadByLibavAndABadFmtFieldIsNamed() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (few, many) = (dir.appendingPathComponent("few.wav").path, dir.appendingPathComponent("many.wav").path)
        try Self.wav(junkChunks: 10, frames: 8_000).write(to: URL(fileURLWithPath: few))
        try Self.wav(junkChunks: 20_000, frames: 8_000).write(to: URL(fileURLWithPath: many))
        #expect(Self.opening(many) == "libav" && Self.opening(few) == "sndfile", "the premise: libsndfile reads one, not the other")
        let (read, fallback) = (try AudioDecoder.decodeMono(path: few, sampleRate: 16_000), try AudioDecoder.decodeMono(path: many, sampleRate: 16_000))
        #expect(fallback.samples == read.samples && read.samples.count == 8_000)
        let facts = try MediaProbe.probe(path: many)
        #expect(facts.streams.first?.sampleRate == 16_000 && facts.streams.first?.channels == 1, "\(facts)")
        // What libsndfile refuses for damage is not handed to libav, which would read it leniently as garbage:
        // a short fmt chunk, data before fmt, or a data chunk past the file's end behind many chunks.
        func u32(_ v: Int) -> Data { withUnsafeBytes(of: UInt32(v).littleEndian) { Data($0) } }
        func riff(_ body: Data) -> Data { Data("RIFF".utf8) + u32(body.count) + body }
        let plain = Self.wav(rate: 16_000, frames: 8_000)
        let (fmt16, data) = (plain[20..<36], plain[36...])   // the 16 bytes of fmt fields; the data chunk
        let damaged: [(name: String, bytes: Data, says: String)] = [
            ("short-fmt.wav", riff(Data("WAVEfmt ".utf8) + u32(14) + fmt16.prefix(14) + data), "the WAV's fmt chunk is 14 bytes, fewer than the 16 its fields take"),
            // Cut inside a sound fmt chunk: the file ends there; the chunk's size is not at fault.
            ("cut-in-fmt.wav", plain.prefix(30), "the file ends inside the WAV's fmt chunk, whose 16 bytes of fields start at byte 20"),
            ("data-first.wav", riff(Data("WAVE".utf8) + data + Data("fmt ".utf8) + u32(16) + fmt16),
             "the WAV's data chunk (at byte 12) comes before any fmt chunk, which must come first to say how its samples are laid out"),
            ("cut-short.wav", { var b = Self.wav(junkChunks: 20_000, frames: 8_000); b.removeLast(12_000); return b }(), "but the file has"),
            // Past the walk's limit the data chunk is not reached: that is said, not libsndfile's "no data chunk".
            ("too-many-chunks.wav", Self.wav(junkChunks: RiffLayout.maximumChunks + 1, frames: 800),
             "no data chunk within its first \(RiffLayout.maximumChunks) chunks")]
        for file in damaged {
            let path = dir.appendingPathComponent(file.name).path
            try file.bytes.write(to: URL(fileURLWithPath: path))
            #expect(Self.opening(path) == "refused", "\(file.name): the premise, libsndfile refuses it")
            for attempt in ["decode", "probe"] {
                do {
                    if attempt == "decode" { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) } else { _ = try MediaProbe.probe(path: path) }
                    Issue.record("\(file.name): \(attempt) accepted a damaged WAV")
                } catch {
                    #expect(error.code == "truncated" && "\(error)".contains(file.says), "\(file.name): \(attempt): \(error)")
                }
            }
        }
        // A fifo named .wav is refused as not a file, without being opened to look for a header to hand on.
        let fifo = dir.appendingPathComponent("fifo.wav").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let answered = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var refusals: [String] = []
        Thread {
            for attempt in 0..<2 {
                do { if attempt == 0 { _ = try AudioDecoder.decodeMono(path: fifo, sampleRate: 16_000) } else { _ = try MediaProbe.probe(path: fifo) } }
                catch { refusals.append("\(error)") }
            }
            answered.signal()
        }.start()
        if answered.wait(timeout: .now() + 20) == .timedOut {
            Issue.record("a fifo named .wav held the reader")
            let writer = open(fifo, O_RDWR | O_NONBLOCK)   // lets a blocked open go on
            answered.wait()
            close(writer)
        }
        #expect(refusals.count == 2 && refusals.allSatisfy { $0.contains("not a regular file") }, "\(refusals)")
        for (channels, rate, says) in [(UInt16(0), UInt32(16_000), "the WAV's fmt chunk declares 0 channels"),
                                       (1, 0, "the WAV's fmt chunk declares a sample rate of 0 Hz"),
                                       (1, UInt32.max, "the WAV's fmt chunk declares a sample rate of 4294967295 Hz, past any real one")] {
            let bad = dir.appendingPathComponent("bad.wav").path
            try Self.wav(junkChunks: 0, channels: channels, rate: rate).write(to: URL(fileURLWithPath: bad))
            #expect(throws: MediaError.truncated(path: bad, reason: says)) { _ = try AudioDecoder.decodeMono(path: bad, sampleRate: 16_000) }
            #expect(throws: MediaError.truncated(path: bad, reason: says)) { _ = try MediaProbe.probe(path: bad) }
        }
        // 1025 channels of 16 bits, laid out soundly (block align 2050): libsndfile refuses them, and libav, which
        // was handed the file, probed it (ingest said ok) but could not mix it (the audio stage failed it as damaged).
        var wideWav = Self.wav(junkChunks: 0, channels: 1025, rate: 16_000, frames: 1025 * 8)
        wideWav.replaceSubrange(28..<32, with: withUnsafeBytes(of: UInt32(16_000 * 2050).littleEndian) { Data($0) })
        wideWav.replaceSubrange(32..<34, with: withUnsafeBytes(of: UInt16(2050).littleEndian) { Data($0) })
        let wide = dir.appendingPathComponent("wide.wav").path
        try wideWav.write(to: URL(fileURLWithPath: wide))
        let tooMany = "the WAV's fmt chunk declares 1025 channels, more than the 1024 a WAV is read with (libsndfile's limit)"
        #expect(throws: MediaError.truncated(path: wide, reason: tooMany)) { _ = try MediaProbe.probe(path: wide) }
        #expect(throws: MediaError.truncated(path: wide, reason: tooMany)) { _ = try AudioDecoder.decodeMono(path: wide, sampleRate: 16_000) }
        // More channels than libswresample mixes (64) at another rate than the target's failed in the audio stage
        // ("libswresample rejected 65 channel(s)"): they are averaged first, as at the target's rate, and the mean
        // resampled, as a mono file of those means is. A stream libav decodes is refused naming the limit.
        for channels in [UInt16(64), 65] {
            for rate in [UInt32(16_000), 48_000] {
                var many = Self.wav(junkChunks: 0, channels: channels, rate: rate, frames: Int(channels) * Int(rate) / 10)
                many.replaceSubrange(28..<32, with: withUnsafeBytes(of: UInt32(rate * 2 * UInt32(channels)).littleEndian) { Data($0) })
                many.replaceSubrange(32..<34, with: withUnsafeBytes(of: UInt16(2 * channels).littleEndian) { Data($0) })
                let path = dir.appendingPathComponent("many-\(channels)-\(rate).wav").path
                try many.write(to: URL(fileURLWithPath: path))
                let decoded = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
                #expect(decoded.sourceChannels == Int(channels) && decoded.samples.count == 1_600, "\(channels) at \(rate): \(decoded.samples.count)")
                guard channels == 65, rate == 48_000 else { continue }
                // The oracle: each frame's mean of the builder's 16-bit samples, as a mono 32-bit float WAV.
                let samples: [Float] = (0..<(65 * 4_800)).map { (index: Int) -> Float in
                    let value = Int16((index % 50) * 300 - 7500)
                    return Float(value) / 32_768
                }
                var means: [Float] = []
                for frame in 0..<4_800 {
                    var sum: Float = 0
                    for channel in 0..<65 { sum += samples[frame * 65 + channel] }
                    means.append(sum * (1 / Float(65)))
                }
                var mono = Data("RIFF".utf8)
                func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { mono.append(contentsOf: $0) } }
                func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { mono.append(contentsOf: $0) } }
                u32(UInt32(36 + 4 * means.count)); mono.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16)
                u16(3); u16(1); u32(48_000); u32(48_000 * 4); u16(4); u16(32)
                mono.append(contentsOf: Array("data".utf8)); u32(UInt32(4 * means.count))
                for mean in means { u32(mean.bitPattern) }
                let monoPath = dir.appendingPathComponent("means.wav").path
                try mono.write(to: URL(fileURLWithPath: monoPath))
                #expect(try AudioDecoder.decodeMono(path: monoPath, sampleRate: 16_000).samples == decoded.samples)
            }
        }
        var layout = AVChannelLayout()
        av_channel_layout_default(&layout, 65)
        defer { av_channel_layout_uninit(&layout) }
        #expect { _ = try MonoResampler(inLayout: layout, inFormat: AV_SAMPLE_FMT_S16, inRate: 48_000, outRate: 16_000) } throws: { error in
            (error as? ResamplerError)?.reason == "65 channels, more than the 64 mixed to mono here (libswresample's limit)"
        }
        // A data chunk whose size is 0 with 8,000 samples after it. With the RIFF size left unfilled too, as a writer that
        // streams leaves it: read to the end of the file as ffmpeg reads it (it was refused as of zero duration), the same
        // samples as the sized file. With the RIFF size filled in, other chunks may follow the samples (actors 01-04's
        // LIST and bext do): refused, by name, not read with those chunks as noise.
        let sized = Self.wav(rate: 16_000, frames: 8_000)
        var streamed = sized
        streamed.replaceSubrange(40..<44, with: Data(count: 4))
        let halfFilled = streamed
        let halfFilledPath = dir.appendingPathComponent("half-filled.wav").path
        try halfFilled.write(to: URL(fileURLWithPath: halfFilledPath))
        let unknownEnd = "its data chunk declares 0 bytes although 16000 bytes follow it, and its RIFF header's size is filled in: "
            + "where the samples end is not known (other chunks may follow them)"
        #expect(throws: MediaError.truncated(path: halfFilledPath, reason: unknownEnd)) { _ = try MediaProbe.probe(path: halfFilledPath) }
        streamed.replaceSubrange(4..<8, with: Data([0xFF, 0xFF, 0xFF, 0xFF]))
        let sizedPath = dir.appendingPathComponent("sized.wav").path, streamedPath = dir.appendingPathComponent("streamed.wav").path
        try sized.write(to: URL(fileURLWithPath: sizedPath))
        try streamed.write(to: URL(fileURLWithPath: streamedPath))
        let probed = try MediaProbe.probe(path: streamedPath)
        #expect((probed.durationSeconds ?? 0) > 0.49, "\(probed)")
        #expect(try AudioDecoder.decodeMono(path: streamedPath, sampleRate: 16_000).samples
                == AudioDecoder.decodeMono(path: sizedPath, sampleRate: 16_000).samples)
        // Float samples of 16 bits, said plainly (tag 3) or through WAVE_FORMAT_EXTENSIBLE's sub-format:
        // libsndfile says "Unspecified internal error"; the extensible one used to pass the probe through
        // libav and fail later, in the audio stage.
        let samples = Self.wav(rate: 16_000, frames: 8_000).dropFirst(44)
        func fmt(tag: UInt16, extensibleSubformat: UInt16?) -> Data {
            var fields = Data()
            func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { fields.append(contentsOf: $0) } }
            append(tag); append(UInt16(1)); append(UInt32(16_000)); append(UInt32(32_000)); append(UInt16(2)); append(UInt16(16))
            if let extensibleSubformat {
                append(UInt16(22)); append(UInt16(16)); append(UInt32(4)); append(extensibleSubformat)
                fields.append(contentsOf: [0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71])
            }
            return fields
        }
        for (name, fields) in [("float16.wav", fmt(tag: 3, extensibleSubformat: nil)), ("float16-extensible.wav", fmt(tag: 0xFFFE, extensibleSubformat: 3))] {
            var body = Data("WAVEfmt ".utf8)
            withUnsafeBytes(of: UInt32(fields.count).littleEndian) { body.append(contentsOf: $0) }
            body.append(fields)
            body.append(contentsOf: Array("data".utf8))
            withUnsafeBytes(of: UInt32(samples.count).littleEndian) { body.append(contentsOf: $0) }
            body.append(samples)
            var file = Data("RIFF".utf8)
            withUnsafeBytes(of: UInt32(body.count).littleEndian) { file.append(contentsOf: $0) }
            file.append(body)
            let path = dir.appendingPathComponent(name).path
            try file.write(to: URL(fileURLWithPath: path))
            let says = "the WAV's fmt chunk declares IEEE float samples of 16 bits; float samples are 32 or 64 bits"
            #expect(throws: MediaError.truncated(path: path, reason: says)) { _ = try MediaProbe.probe(path: path) }
            #expect(throws: MediaError.truncated(path: path, reason: says)) { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
    }

    /// An IMA ADPCM WAV whose block align is 0, or whose blocks of 1 byte do not fit its samples per block: libsndfile
    /// says only "Unspecified internal error"; the field at fault is named. The sound file decodes.
    @Test("an ADPCM WAV libsndfile refuses is named by its block layout", .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func anADPCMBlockLayoutIsNamed() throws {
        let dir = try TestSupport.scratchFolder("emomedia-adpcm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sound = dir.appendingPathComponent("ima.wav").path
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i sine=duration=1 -ar 16000 -c:a adpcm_ima_wav '\(sound)'")
        #expect(try AudioDecoder.decodeMono(path: sound, sampleRate: 16_000).samples.count > 15_000)
        let original = try Data(contentsOf: URL(fileURLWithPath: sound))
        for (blockAlign, says) in [(UInt16(0), "the WAV's fmt chunk declares a block align of 0 bytes (the size of one block of samples)"),
                                   (1, "the WAV's fmt chunk declares IMA ADPCM in blocks of 1 bytes for 1 channel(s), whose block layout "
                                        + "(block size and samples per block) libsndfile refuses")] {
            var bytes = original
            bytes.replaceSubrange(32..<34, with: withUnsafeBytes(of: blockAlign.littleEndian) { Data($0) })
            let path = dir.appendingPathComponent("block-\(blockAlign).wav").path
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(throws: MediaError.truncated(path: path, reason: says)) { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
    }

    /// A WAV coded in a way libsndfile does not decode (G.726, G.722: it says "Malformed 'fmt ' chunk") is no damage:
    /// libav decodes it, as ffmpeg does, to the same samples ffmpeg gives. A format tag no decoder knows is named by its number.
    @Test("a WAV of a coding only libav decodes", .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func aCodingOnlyLibavDecodesIsRead() throws {
        let dir = try TestSupport.scratchFolder("emomedia-codings")
        defer { try? FileManager.default.removeItem(at: dir) }
        for codec in ["g726", "adpcm_g722"] {
            let sound = dir.appendingPathComponent("\(codec).wav").path
            try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i sine=frequency=300:duration=1 -ar 8000 -c:a \(codec) '\(sound)'")
            let decoded = try AudioDecoder.decodeMono(path: sound, sampleRate: 8_000)
            #expect(decoded.samples.count > 7_000 && decoded.sourceSampleRate == 8_000, "\(codec): \(decoded.samples.count)")
            // The oracle: ffmpeg's own decoding of the file, as float samples.
            let oracle = try TestSupport.shell("ffmpeg -loglevel error -i '\(sound)' -f f32le -ac 1 - | od -An -v -f | wc -w")
            #expect(abs(Int(oracle.trimmingCharacters(in: .whitespacesAndNewlines))! - decoded.samples.count) <= 16, "\(codec): \(oracle)")
            #expect(try MediaProbe.probe(path: sound).audioStreamCount == 1)
        }
        // RIFF, a 16-byte fmt chunk of tag 0x9999, one channel at 8 kHz, and 12 bytes of data.
        var unknown = Data("RIFF".utf8) + Data([0x30, 0, 0, 0]) + Data("WAVEfmt ".utf8) + Data([0x10, 0, 0, 0, 0x99, 0x99, 1, 0, 0x40, 0x1f, 0, 0,
                                                                                              0x80, 0x3e, 0, 0, 2, 0, 16, 0])
        unknown += Data("data".utf8) + Data([12, 0, 0, 0]) + Data("abcdefghijkl".utf8)
        let path = dir.appendingPathComponent("unknown.wav").path
        try unknown.write(to: URL(fileURLWithPath: path))
        #expect(throws: MediaError.unsupportedCodec(path: path, codec: "WAV format tag 0x9999")) { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 8_000) }
        // Ingest's probe says the same, not "audio stream has no codec (the file is damaged …)".
        #expect(throws: MediaError.unsupportedCodec(path: path, codec: "WAV format tag 0x9999")) { _ = try MediaProbe.probe(path: path) }
    }

    /// libsndfile closes the descriptor of a WAV it refuses, even when asked not to: closing it again
    /// closed whatever file another thread had opened under the same number in between, so sound
    /// files read beside refused ones failed at random ("Bad file descriptor", "No 'RIFF' chunk
    /// marker"). Each descriptor is closed once, by its one owner, and none is left open.
    @Test func aRefusedWavClosesNoOtherThreadsFile() throws {
        let dir = try TestSupport.scratchFolder("emomedia-descriptors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (good, refused) = (dir.appendingPathComponent("good.wav").path, dir.appendingPathComponent("refused.wav").path)
        try Self.wav(rate: 16_000, frames: 4_000).write(to: URL(fileURLWithPath: good))
        var bad = Self.wav(rate: 16_000, frames: 4_000)
        bad.replaceSubrange(34..<36, with: [0, 0])   // 0 bits per sample: libsndfile refuses it
        try bad.write(to: URL(fileURLWithPath: refused))
        #expect(Self.opening(refused) == "refused" && Self.opening(good) == "sndfile", "the premise")
        // One thread refuses the bad file over and over; the other, started first, opens, reads and closes
        // the good one as fast as it can, so that its descriptor often takes the number just let go.
        let rounds = 6_000   // the old double close showed about once in 1,500 refusals
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var refusing = true, reads = 0, readsCut = 0
            func locked<T>(_ body: (Tally) -> T) -> T { lock.lock(); defer { lock.unlock() }; return body(self) }
        }
        let tally = Tally()
        let (started, finished) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        Thread {
            var head = [UInt8](repeating: 0, count: 12)
            started.signal()
            while tally.locked({ $0.refusing }) {
                let descriptor = open(good, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { continue }
                let cut = pread(descriptor, &head, 12, 0) != 12
                close(descriptor)
                tally.locked { $0.reads += 1; if cut { $0.readsCut += 1 } }
            }
            finished.signal()
        }.start()
        started.wait()
        for _ in 0..<rounds { _ = try? AudioDecoder.decodeMono(path: refused, sampleRate: 16_000) }
        tally.locked { $0.refusing = false }
        finished.wait()
        let (reads, readsCut) = tally.locked { ($0.reads, $0.readsCut) }
        #expect(reads > 0 && readsCut == 0, "\(readsCut) of \(reads) reads of a good file lost their descriptor to another thread")
        #expect(try AudioDecoder.decodeMono(path: good, sampleRate: 16_000).samples.count == 4_000)
        let leftOpen = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)).map { $0.hasPrefix(dir.path) } == true
        }
        #expect(leftOpen.isEmpty, "descriptors left open on the test's files: \(leftOpen)")
    }

    @Test("a WAV header claiming 1 Hz is refused, not upsampled 16,000-fold")
    func absurdlyLowSampleRate() throws {
        // Before the fix: 4,800 samples at "1 Hz" became 76.8 million samples at 16 kHz (49 s, 300 MB);
        // a full-length RAVDESS wav with the same header would have needed gigabytes.
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("one-hertz.wav").path
        try Self.wav(rate: 1, frames: 4_800).write(to: URL(fileURLWithPath: path))
        let started = Date()
        #expect(throws: MediaError.decodeFailed(path: path, reason: "source sample rate 1 Hz is below 1000 Hz")) {
            _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
        }
        #expect(Date().timeIntervalSince(started) < 5)
        // Probing reports the header as it is; the stage decides what to do with it.
        #expect(try MediaProbe.probe(path: path).streams.first?.sampleRate == 1)
        // At the floor, the same samples decode (16x more of them).
        try Self.wav(rate: 1_000, frames: 4_800).write(to: URL(fileURLWithPath: path))
        let audio = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
        #expect(abs(audio.samples.count - 4_800 * 16) < 64)
    }
}
