import Foundation
import EmoTestSupport
import Testing
@testable import EmoMedia

@Suite("Bad inputs give typed MediaErrors", .enabled(if: TestData.available, TestData.missingMessage))
struct BadInputTests {
    /// Writes `bytes` to a scratch file and passes its path to `body`.
    private func withFile(_ name: String, _ bytes: Data, _ body: (String) throws -> Void) throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try bytes.write(to: URL(fileURLWithPath: path))
        try body(path)
    }

    private func headOf(_ path: String, _ count: Int) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path)).prefix(count)
    }

    /// A codec this FFmpeg does not know (a newer one than Debian's: an mp4 sample entry 'vvc1') is named as the
    /// container names it, not called damage: the probe keeps the name, the sampler's error says it.
    @Test("an unknown video codec is named")
    func unknownVideoCodec() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: TestData.avClip))
        let entry = try #require(bytes.range(of: Data("avc1".utf8)))
        bytes.replaceSubrange(entry, with: Data("vvc1".utf8))
        try withFile("01-01-01-01-01-01-01.mp4", bytes) { path in
            let video = try #require(try MediaProbe.probe(path: path).streams.first { $0.kind == .video })
            #expect(video.codec == "none" && video.codecTag == "vvc1", "\(video)")
            do {
                _ = try VideoFrameSampler.sample(path: path, count: 8, threads: 1, strategy: .minimal)
                Issue.record("an unknown codec was decoded")
            } catch {
                #expect("\(error)".contains("no decoder for the video codec 'vvc1'"), "\(error)")
            }
            // A codec libavcodec knows keeps no tag: a probe's record is what it was.
            #expect(try MediaProbe.probe(path: TestData.avClip).streams.allSatisfy { $0.codecTag == nil })
        }
    }

    @Test("zero-byte .wav")
    func emptyWav() throws {
        try withFile("empty.wav", Data()) { path in
            #expect(throws: MediaError.emptyFile(path: path)) { try MediaProbe.probe(path: path) }
            #expect(throws: MediaError.emptyFile(path: path)) {
                try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
            }
            #expect(MediaError.emptyFile(path: path).description == "\(path): empty file (0 bytes)")
        }
    }

    /// /proc files report 0 bytes and /sys files 4096, and are made as they are read: said to be the kernel's, not
    /// "empty" or "not a media file".
    @Test("a /proc or /sys file, whatever size it reports")
    func kernelFile() throws {
        for path in ["/proc/self/environ", "/sys/devices/system/cpu/online"] {
            var info = stat()
            // /proc is there wherever this runs; a container may have no /sys.
            guard stat(path, &info) == 0 else {
                #expect(path.hasPrefix("/sys"), "\(path) is missing")
                continue
            }
            let says = MediaError.unreadable(path: path, reason: "a file of the kernel's /proc or /sys filesystem, which holds no recordings")
            #expect(throws: says) { try MediaProbe.probe(path: path) }
            #expect(throws: says) { try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
    }

    @Test("zero-byte .mp4 (libav path)")
    func emptyMp4() throws {
        try withFile("empty.mp4", Data()) { path in
            #expect(throws: MediaError.emptyFile(path: path)) { try MediaProbe.probe(path: path) }
        }
    }

    /// Playlists and concat lists name other files: through them a 60-byte "clip" read files no hash
    /// covers (outside the data root too), a live playlist waited for ever, and a list naming itself
    /// opened files until the process ran out of descriptors. Each is refused by what it is, at once.
    @Test("a playlist or concat list named as a clip is not media")
    func listsOfOtherFiles() throws {
        let dir = try TestSupport.scratchFolder("emomedia-lists")
        defer { try? FileManager.default.removeItem(at: dir) }
        let segment = dir.appendingPathComponent("seg.ts").path
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-i", TestData.avClip, "-c", "copy", "-f", "mpegts", segment])
        let live = dir.appendingPathComponent("01-01-03-01-01-01-01.mp4").path
        try Data("#EXTM3U\n#EXT-X-TARGETDURATION:100000\n#EXTINF:5,\nseg.ts\n".utf8).write(to: URL(fileURLWithPath: live))
        let looped = dir.appendingPathComponent("01-01-03-01-01-02-01.mp4").path
        try Data("ffconcat version 1.0\nfile 01-01-03-01-01-02-01.mp4\n".utf8).write(to: URL(fileURLWithPath: looped))
        // Picked by its extension rather than its bytes: named all the same, not "Format not on whitelist" and 3 KB of names.
        let picture = dir.appendingPathComponent("noise.tiff").path
        try Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }).write(to: URL(fileURLWithPath: picture))
        for (path, kind) in [(live, "hls"), (looped, "concat"), (picture, "image2")] {
            let says = MediaError.notMedia(path: path, reason: "libavformat reads it as \(kind), which reads other files or addresses "
                                           + "(a playlist, concat list, image sequence or session description), not a self-contained recording: "
                                           + "give emopipe the media file itself")
            #expect(throws: says) { try MediaProbe.probe(path: path) }
            #expect(throws: says) { try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }

        // An mp3 named .jpg: the whole probe takes it for an image sequence by its extension, which ours cannot
        // name; the reason says to give it its own extension.
        let misnamed = dir.appendingPathComponent("speech.jpg").path
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-i", TestData.avClip, "-vn", "-f", "mp3", misnamed])
        let took = try #require(throws: MediaError.self) { try MediaProbe.probe(path: misnamed) }
        #expect(took.code == "not-media" && "\(took)".contains("by its content or its extension (.jpg)")
                && "\(took)".contains("if it is a recording, give it its format's extension"), "\(took)")
        // The segment the playlist names is itself a recording, and opens.
        #expect(try MediaProbe.probe(path: segment).container == "mpegts")
        #expect(!LibavInput.permittedDemuxers.split(separator: ",").contains("hls") && LibavInput.permittedDemuxers.contains("mov,mp4,m4a,3gp,3g2,mj2"))
    }

    @Test("text file renamed .wav")
    func textAsWav() throws {
        try withFile("notes.wav", Data("these are meeting notes, not audio\n".utf8)) { path in
            expectMediaError("not-media") { _ = try MediaProbe.probe(path: path) }
            expectMediaError("not-media") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
            var refusal: MediaError?
            do { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) } catch let error as MediaError { refusal = error } catch {}
            #expect(refusal == .notMedia(path: path, reason: "not a WAV (it has no RIFF header), nor content that libsndfile or libavformat recognises"))
        }
    }

    @Test("an MP4 named .wav is said to be one")
    func mp4AsWav() throws {
        var bytes = Data([0, 0, 0, 0x18]) + Data("ftypmp42".utf8) + Data(repeating: 0, count: 12)
        bytes += Data(repeating: 7, count: 100)
        try withFile("clip.wav", bytes) { path in
            #expect(throws: MediaError.notMedia(path: path, reason: "an MP4/MOV file (it starts with an ftyp box), not a WAV as its name says")) {
                _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
            }
        }
    }

    /// Matroska/WebM and AVI, which libsndfile does not know (an AVI is a RIFF file too): named .wav, each is named.
    @Test("Matroska, WebM and AVI named .wav are said to be what they are", .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func otherContainersAsWav() throws {
        let folder = try TestSupport.temporaryFolder("containers")
        for (format, says) in [("webm", "a Matroska/WebM file (it starts with an EBML header)"), ("matroska", "a Matroska/WebM file (it starts with an EBML header)"),
                               ("avi", "an AVI file")] {
            let path = folder + "/\(format).wav"
            let codec = format == "webm" ? "-c:a libopus" : ""
            try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i sine=frequency=440:duration=0.5 \(codec) -f \(format) '\(path)'")
            for attempt in ["decode", "probe"] {
                #expect(throws: MediaError.notMedia(path: path, reason: "\(says), not a WAV as its name says"), "\(format) \(attempt)") {
                    if attempt == "decode" { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) } else { _ = try MediaProbe.probe(path: path) }
                }
            }
        }
    }

    /// libsndfile reads FLAC, MP3, Ogg and AIFF too: named .wav, each is refused by what it holds, in probe
    /// and decode alike, as an MP4 named .wav is; so is AAC in ADTS, which only libavformat knows.
    @Test("FLAC, MP3, Ogg, AIFF and ADTS AAC named .wav are said to be what they are")
    func otherSoundFilesAsWav() throws {
        let dir = try TestSupport.scratchFolder("emomedia-named-wav")
        defer { try? FileManager.default.removeItem(at: dir) }
        // AAC in ADTS libsndfile does not know at all: libavformat names it.
        for (format, says) in [("flac", "FLAC"), ("mp3", "MPEG"), ("ogg", "OGG"), ("aiff", "AIFF"), ("adts", "raw ADTS AAC")] {
            let path = dir.appendingPathComponent("\(format).wav").path
            _ = try TestSupport.shell("ffmpeg -hide_banner -loglevel error -y -f lavfi -i sine=f=440:d=0.5 -ar 16000 -f \(format) "
                                      + (format == "ogg" ? "-c:a libvorbis " : format == "adts" ? "-c:a aac " : "") + "'\(path)'")
            let probe = Result { try MediaProbe.probe(path: path) }.map { _ in () }
            let decode = Result { try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }.map { _ in () }
            for result in [probe, decode] {
                guard case .failure(let error) = result, case .notMedia(path, let reason)? = error as? MediaError else {
                    Issue.record("\(format) named .wav: \(result)")
                    continue
                }
                #expect(reason.hasPrefix("its content is \(says)") && reason.hasSuffix("not a WAV as its name says"), "\(format): \(reason)")
            }
        }
    }

    @Test("random bytes .mp4")
    func randomMp4() throws {
        var generator = SplitMix64(seed: 42)
        let bytes = Data((0..<65_536).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
        try withFile("noise.mp4", bytes) { path in
            expectMediaError("not-media") { _ = try MediaProbe.probe(path: path) }
            expectMediaError("not-media") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
    }

    @Test("truncated mp4: the first 20 KB of the AV clip (header intact, media data cut)")
    func truncatedMp4() throws {
        try withFile("cut.mp4", try headOf(TestData.avClip, 20 * 1024)) { path in
            expectMediaError("truncated") { _ = try MediaProbe.probe(path: path) }
            expectMediaError("truncated") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
    }

    @Test("mp4 cut inside its header: recognised as mp4, reported as damaged with libav's logged reason")
    func headerCutMp4() throws {
        try withFile("cut.mp4", try headOf(TestData.avClip, 3000)) { path in
            do {
                _ = try MediaProbe.probe(path: path)
                Issue.record("probe of a header-cut mp4 succeeded")
            } catch let error as MediaError {
                #expect(error.code == "truncated")
                // The reason carries the demuxer's own message, captured by our log callback, not printed.
                #expect(error.description.contains("error reading header"), "\(error)")
            }
        }
    }

    /// An mp4 whose chunk table claims 2^31 entries makes libavformat's allocation fail: the file's fault, said so,
    /// not as "Cannot allocate memory" alone, which read as this machine running out.
    @Test("an mp4 header whose counts ask for gigabytes is damaged, not the machine out of memory")
    func absurdCountMp4() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: TestData.avClip))
        let stco = try #require(bytes.range(of: Data("stco".utf8)))
        // After the box type: version and flags (4 bytes), then the entry count.
        bytes.replaceSubrange((stco.upperBound + 4)..<(stco.upperBound + 8), with: [0x7f, 0xff, 0xff, 0xff])
        try withFile("counts.mp4", bytes) { path in
            do {
                _ = try MediaProbe.probe(path: path)
                Issue.record("probe of an mp4 claiming 2^31 chunks succeeded")
            } catch let error as MediaError {
                #expect(error.code == "truncated" && error.description.contains("libavformat could not allocate what its header declares: a count or size in it is damaged"), "\(error)")
            }
        }
    }

    @Test("truncated WAV: data chunk claims more bytes than the file has")
    func truncatedWav() throws {
        let original = TestData.wav("03-01-01-01-01-01-01")
        let size = try Data(contentsOf: URL(fileURLWithPath: original)).count
        try withFile("cut.wav", try headOf(original, size / 2)) { path in
            expectMediaError("truncated") { _ = try MediaProbe.probe(path: path) }
            expectMediaError("truncated") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
    }

    /// A 16-bit mono 16 kHz WAV of `samples` in the RIFF, RIFX (big-endian) or RF64 (sizes in a ds64
    /// chunk) layout, whose data chunk (RF64: ds64) claims `claimedBytes` (default: the bytes present).
    private func wav(_ layout: String, samples: [Int16], claimedBytes: UInt64? = nil) -> Data {
        let big = layout == "RIFX"
        func u32(_ v: UInt32) -> [UInt8] { let b = [UInt8(v & 255), UInt8(v >> 8 & 255), UInt8(v >> 16 & 255), UInt8(v >> 24)]; return big ? b.reversed() : b }
        func u16(_ v: UInt16) -> [UInt8] { let b = [UInt8(v & 255), UInt8(v >> 8)]; return big ? b.reversed() : b }
        func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(v >> (8 * UInt64($0)) & 255) } }
        let data = samples.flatMap { u16(UInt16(bitPattern: $0)) }
        let claimed = claimedBytes ?? UInt64(data.count)
        let fmt = Array("fmt ".utf8) + u32(16) + u16(1) + u16(1) + u32(16_000) + u32(32_000) + u16(2) + u16(16)
        if layout == "RF64" {
            let ds64 = Array("ds64".utf8) + u32(28) + u64(UInt64(4 + 36 + fmt.count + 8 + data.count)) + u64(claimed) + u64(claimed / 2) + u32(0)
            return Data(Array("RF64".utf8) + u32(0xFFFF_FFFF) + Array("WAVE".utf8) + ds64 + fmt + Array("data".utf8) + u32(0xFFFF_FFFF) + data)
        }
        let body = Array("WAVE".utf8) + fmt + Array("data".utf8) + u32(UInt32(claimed)) + data
        return Data(Array(layout.utf8) + u32(UInt32(body.count)) + body)
    }

    @Test("RIFX and RF64 WAVs: whole ones decode, ones whose data chunk claims more than the file holds are truncated")
    func bigEndianAndRF64Wavs() throws {
        let samples = (0..<16_000).map { Int16(8_000 * sin(Double($0) * 0.05)) }
        for layout in ["RIFF", "RIFX", "RF64"] {
            try withFile("whole-\(layout).wav", wav(layout, samples: samples)) { path in
                let audio = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
                #expect(audio.samples.count == samples.count, "\(layout)")
                #expect(abs(audio.samples[100] * 32_768 - Float(samples[100])) < 1, "\(layout)")
            }
            for claim in [UInt64(samples.count * 20), 1 << 62] where layout == "RF64" || claim < 1 << 32 {
                try withFile("cut-\(layout).wav", wav(layout, samples: samples, claimedBytes: claim)) { path in
                    expectMediaError("truncated") { _ = try MediaProbe.probe(path: path) }
                    expectMediaError("truncated") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
                }
            }
        }
    }

    @Test("a WAV at a path longer than libsndfile's 1024-byte limit decodes")
    func wavAtALongPath() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let deep = dir.path + String(repeating: "/" + String(repeating: "p", count: 100), count: 11)
        let path = deep + "/03-01-01-01-01-01-01.wav"
        #expect(path.utf8.count > 1100)
        try TestSupport.shell("mkdir -p '\(deep)' && cp '\(TestData.wav("03-01-01-01-01-01-01"))' '\(path)'")
        let audio = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
        let reference = try AudioDecoder.decodeMono(path: TestData.wav("03-01-01-01-01-01-01"), sampleRate: 16_000)
        #expect(audio.samples == reference.samples)
    }

    @Test("the odd/ clip without an audio track: probes fine, decoding audio fails")
    func noAudioTrack() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: TestData.oddFolder.path).sorted()
        let silent = try names.map { TestData.oddFolder.appendingPathComponent($0).path }
            .filter { try MediaProbe.probe(path: $0).audioStreamCount == 0 }
        let path = try #require(silent.first)
        #expect(silent.count == 1)
        #expect(throws: MediaError.noAudioStream(path: path)) {
            try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
        }
    }

    @Test("missing file, directory, bad sample rate")
    func otherMisuse() throws {
        let missing = "/nonexistent/emomedia/clip.mp4"
        #expect(throws: MediaError.fileNotFound(path: missing)) { try MediaProbe.probe(path: missing) }
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        expectMediaError("unreadable") { _ = try MediaProbe.probe(path: dir.path) }
        expectMediaError("invalid-argument") { _ = try AudioDecoder.decodeMono(path: TestData.avClip, sampleRate: 0) }
    }

    @Test("every error message names the file and says what is wrong")
    func descriptions() {
        let p = "/data/x.wav"
        let cases: [(MediaError, String)] = [
            (.fileNotFound(path: p), "no such file"),
            (.unreadable(path: p, reason: "Permission denied"), "cannot be read: Permission denied"),
            (.emptyFile(path: p), "empty file (0 bytes)"),
            (.notMedia(path: p, reason: "Format not recognised."), "not a media file: Format not recognised."),
            (.truncated(path: p, reason: "r"), "truncated or damaged: r"),
            (.noAudioStream(path: p), "no audio stream"),
            (.unsupportedCodec(path: p, codec: "xyz"), "no decoder for codec \"xyz\""),
            (.decodeFailed(path: p, reason: "r"), "audio decoding failed: r"),
            (.silentAudio(path: p), "audio is all zero"),
            (.containsNaN(path: p), "contains NaN"),
            (.tooShort(path: p, samples: 10, minimum: 4800), "shorter than 4800 samples (has 10, counted after resampling"),
            (.invalidArgument(path: p, reason: "r"), "invalid request: r"),
            (.videoTooLarge(path: p, maximumBytes: 512 << 20), "video too large"),
        ]
        for (error, phrase) in cases {
            #expect(error.description.hasPrefix("\(p): "))
            #expect(error.description.contains(phrase), "\(error)")
            #expect(error.path == p)
        }
        #expect(Set(cases.map(\.0.code)).count == cases.count)
        #expect(MediaError.tooShort(path: p, samples: 0, minimum: 1).description == "\(p): the audio stream holds no samples (after resampling to the analysis rate)")
    }
}
