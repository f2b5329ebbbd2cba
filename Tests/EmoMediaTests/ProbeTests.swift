import Foundation
import EmoTestSupport
import Testing
@testable import EmoMedia

@Suite("MediaProbe", .enabled(if: TestData.available, TestData.missingMessage))
struct ProbeTests {
    @Test("original AV clip: H.264 1280x720 at 29.97 fps, AAC 48 kHz stereo, 3.35 s")
    func avClip() throws {
        let facts = try MediaProbe.probe(path: TestData.avClip)
        #expect(facts.container.split(separator: ",").contains("mp4"))
        #expect(abs(try #require(facts.durationSeconds) - 3.35) < 0.01)
        #expect((facts.bitRate ?? 0) > 0)
        #expect(facts.videoStreamCount == 1 && facts.audioStreamCount == 1)

        let video = try #require(facts.firstVideoStream)
        #expect(video.codec == "h264")
        #expect(video.width == 1280 && video.height == 720)
        #expect(abs(try #require(video.frameRate) - 30000.0 / 1001.0) < 0.001)
        #expect(video.rotationDegrees == nil)

        let audio = try #require(facts.firstAudioStream)
        #expect(audio.codec == "aac")
        #expect(audio.sampleRate == 48_000 && audio.channels == 2)
        #expect(audio.sampleFormat == "fltp")
        #expect(abs(try #require(audio.durationSeconds) - 3.30) < 0.01)
    }

    @Test("WAV whose data chunk sits after FLLR/LIST chunks")
    func wavWithForeignChunks() throws {
        let path = TestData.wav("03-01-01-01-01-01-01")
        // The quirk under test must really be there: no "data" id where a plain 44-byte header has it.
        let head = FileChecks.head(path, count: 40)
        #expect(String(decoding: head[36..<40], as: UTF8.self) != "data")

        let facts = try MediaProbe.probe(path: path)
        #expect(facts.container == "wav")
        let stream = try #require(facts.streams.first)
        #expect(facts.streams.count == 1)
        #expect(stream.kind == .audio && stream.codec == "pcm_s16le" && stream.sampleFormat == "s16")
        #expect(stream.sampleRate == 48_000 && stream.channels == 1)
        #expect(facts.bitRate == 48_000 * 16)
        // Duration agrees with the sample count ffmpeg decodes.
        let frames = try TestData.ffmpegDecode(path, ["-f", "s16le"]).count / 2
        #expect(try #require(facts.durationSeconds) == Double(frames) / 48_000)
    }

    @Test("stereo WAV reports two channels")
    func stereoWav() throws {
        let facts = try MediaProbe.probe(path: TestData.wav("03-01-02-01-01-02-01"))
        #expect(facts.streams.first?.channels == 2)
    }

    @Test("re-encoded clips: exactly one of the odd/ files has no audio track")
    func oddClips() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: TestData.oddFolder.path)
            .filter { $0.hasSuffix(".mp4") }.sorted()
        #expect(files.count == 4)
        var silent: [String] = []
        for name in files {
            let facts = try MediaProbe.probe(path: TestData.oddFolder.appendingPathComponent(name).path)
            let video = try #require(facts.firstVideoStream)
            #expect(video.codec == "h264" && video.width == 640 && video.height == 480)
            if let audio = facts.firstAudioStream {
                #expect(["aac", "mp3"].contains(audio.codec))
                #expect(audio.sampleRate == 44_100)
            } else {
                silent.append(name)
            }
        }
        #expect(silent.count == 1)
    }

    @Test("rotation comes from the display matrix, as the clockwise turn ffmpeg's autorotate applies")
    func rotation() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rotated = try Self.halfSecondCopy(in: dir, named: "rotated.mp4", ["-metadata:s:v", "rotate=90"])
        // ffprobe prints av_display_rotation_get (counter-clockwise degrees); ours is its negation mod 360.
        let ccw = try #require(Int(try Self.ffprobeRotation(rotated)))
        let facts = try MediaProbe.probe(path: rotated)
        #expect(facts.firstVideoStream?.rotationDegrees == ((-ccw % 360) + 360) % 360)
        #expect(facts.firstVideoStream?.rotationDegrees == 270)  // ffmpeg 5.1 writes "rotate=90" as a 90° ccw matrix
    }

    /// A display matrix that mirrors left-right (a front camera's: [-1 0; 0 1]) is no half turn, though
    /// av_display_rotation_get reads it as 180°: turned, the face stood on its head and was not found.
    @Test("a mirroring display matrix is not read as a half turn")
    func mirror() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let mirrored = try Self.halfSecondCopy(in: dir, named: "mirrored.mp4", ["-movflags", "faststart"])
        var bytes = try Data(contentsOf: URL(fileURLWithPath: mirrored))
        // The first track is the video; its version-0 tkhd holds the matrix's first value 44 bytes after the box type.
        let tkhd = try #require(bytes.firstRange(of: Data("tkhd".utf8)))
        #expect(bytes[tkhd.lowerBound + 4] == 0)
        bytes.replaceSubrange((tkhd.lowerBound + 44)..<(tkhd.lowerBound + 48), with: [0xFF, 0xFF, 0x00, 0x00])  // -1.0 in 16.16
        try bytes.write(to: URL(fileURLWithPath: mirrored))
        #expect(try Self.ffprobeRotation(mirrored) == "-180", "the premise")
        #expect(try MediaProbe.probe(path: mirrored).firstVideoStream?.rotationDegrees == 0)
        // Upside down and mirrored ([1 0; 0 -1]; libav reads 0°): a half turn puts the face upright.
        bytes.replaceSubrange((tkhd.lowerBound + 44)..<(tkhd.lowerBound + 48), with: [0x00, 0x01, 0x00, 0x00])
        bytes.replaceSubrange((tkhd.lowerBound + 60)..<(tkhd.lowerBound + 64), with: [0xFF, 0xFF, 0x00, 0x00])
        try bytes.write(to: URL(fileURLWithPath: mirrored))
        #expect(try MediaProbe.probe(path: mirrored).firstVideoStream?.rotationDegrees == 180)
    }

    /// Cover art is a video stream of one picture to libav: no video to the pipeline, and said so.
    @Test("a still picture attached to a file (cover art) is no video stream")
    func coverArt() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let picture = dir.appendingPathComponent("cover.png").path, clip = dir.appendingPathComponent("01-01-06-01-01-02-04.mp4").path
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "color=c=red:s=64x64",
                                                    "-frames:v", "1", picture])
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-i", TestData.avClip, "-i", picture, "-t", "0.5",
                                                    "-map", "0:a", "-map", "1", "-c:a", "copy", "-c:v", "png", "-disposition:v", "attached_pic", clip])
        let facts = try MediaProbe.probe(path: clip)
        #expect(facts.videoStreamCount == 0 && facts.pictureCount == 1 && facts.audioStreamCount == 1, "\(facts.streams)")
        #expect(facts.noVideoReason.contains("only a still picture attached to it (cover art)"))
        #expect(throws: MediaError.onlyStillPictures(path: clip)) {
            _ = try VideoFrameSampler.sample(path: clip, count: 4, threads: 1, strategy: .everyFrame)
        }
        // Beside a moving picture, the still is passed over for it.
        let both = dir.appendingPathComponent("both.mp4").path
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-i", picture, "-i", TestData.avClip, "-t", "0.5",
                                                    "-map", "0", "-map", "1:v", "-c:v:0", "png", "-c:v:1", "copy", "-disposition:v:0", "attached_pic", both])
        let bothFacts = try MediaProbe.probe(path: both)
        #expect(bothFacts.videoStreamCount == 1 && bothFacts.pictureCount == 1, "\(bothFacts.streams)")
        let sampled = try VideoFrameSampler.sample(path: both, count: 4, threads: 1, strategy: .everyFrame)
        #expect(sampled.frames.count == 4 && sampled.frames.allSatisfy { $0.width == 1280 }, "the moving picture is sampled")
    }

    /// The first half second of the AV clip, streams copied, with ffmpeg's `options`.
    static func halfSecondCopy(in dir: URL, named name: String, _ options: [String]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-i", TestData.avClip, "-t", "0.5", "-c", "copy"]
                                   + options + [path])
        return path
    }

    /// What ffprobe prints as the video's rotation (av_display_rotation_get: counter-clockwise degrees).
    static func ffprobeRotation(_ path: String) throws -> String {
        let printed = try TestSupport.output("/usr/bin/env", ["ffprobe", "-v", "error", "-select_streams", "v",
                                                              "-show_entries", "stream_side_data=rotation", "-of", "csv=p=0", path])
        return String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An image under a clip's name has no size until a picture is decoded: probing decoded it whatever its size
    /// (a 2 MB PNG of 16000 × 16000 at 16 bits took 2 GB). A picture past 8K is refused by its size instead.
    @Test("a picture only decoding can size is refused past 8K, named, and a small one probes")
    func oversizedPictureRefusedByTheProbe() throws {
        let folder = try TestSupport.temporaryFolder("probe-png")
        func png(side: Int, named name: String) throws -> String {
            let path = folder + "/" + name
            _ = try TestSupport.shell("""
                python3 -c "
                import struct, zlib
                def chunk(kind, data): return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
                w = h = \(side); row = b'\\0' + b'\\x80' * w; z = zlib.compressobj(6)
                body = b''.join(z.compress(row) for _ in range(h)) + z.flush()
                open('\(path)', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', body) + chunk(b'IEND', b''))
                "
                """)
            return path
        }
        let small = try MediaProbe.probe(path: try png(side: 64, named: "02-01-01-01-01-01-01.mp4"))
        #expect(small.firstVideoStream?.width == 64 && small.firstVideoStream?.height == 64, "\(small)")
        let large = try png(side: 9000, named: "02-01-01-01-01-02-01.mp4")
        let refused = try #require(throws: MediaError.self) { try MediaProbe.probe(path: large) }
        #expect("\(refused)".contains(large) && "\(refused)".contains("its pictures are larger than the 8192 × 4320 pixels")
                && "\(refused)".contains("9000x9000"), "\(refused)")
    }

    @Test("probing is fast: header facts only, no decoding")
    func speed() throws {
        let paths = [TestData.avClip] + (try FileManager.default.contentsOfDirectory(atPath: TestData.oddFolder.path))
            .map { TestData.oddFolder.appendingPathComponent($0).path } + [TestData.wav("03-01-01-01-01-01-01")]
        _ = try MediaProbe.probe(path: TestData.avClip)  // warm caches
        let clock = ContinuousClock()
        let elapsed = try clock.measure { for path in paths { _ = try MediaProbe.probe(path: path) } }
        // 1500 files must take seconds, not minutes; 100 ms per file is a generous debug-build bound.
        #expect(elapsed < .milliseconds(100 * paths.count), "probing \(paths.count) files took \(elapsed)")
    }
}
