// A pass over a long file stops between chunks when its StopCheck asks, through either decoder.

import Foundation
import EmoTestSupport
import Testing
@testable import EmoMedia

extension StopAfter {
    var check: StopCheck { StopCheck(poll) }
}

@Suite("Decoding stops on request")
struct StopTests {
    /// 60 s of a 440 Hz tone at 16 kHz: many chunks through either decoder.
    static func longTone(named name: String) throws -> String {
        let folder = try TestSupport.temporaryFolder("stop-decoding")
        let samples = (0..<960_000).map { Float(0.3 * sin(2 * Double.pi * 440 * Double($0) / 16_000)) }
        let wav = folder + "/tone.wav"
        try WavFile.write(wav, samples: samples, sampleRate: 16_000, float: false)
        if name == "tone.wav" { return wav }
        // Not named .wav: libavformat reads it (it probes the content).
        let other = folder + "/" + name
        try FileManager.default.copyItem(atPath: wav, toPath: other)
        return other
    }

    @Test("libsndfile and libavformat passes end with MediaError.stopped, having delivered only part",
          arguments: ["tone.wav", "tone.audio"])
    func stopsBetweenChunks(name: String) throws {
        let path = try Self.longTone(named: name)
        let whole = try MonoAudioFile(path: path, sampleRate: 16_000).pass { _ in }.samples
        #expect(whole == 960_000)

        let stop = StopAfter(after: 3)
        var delivered = 0
        #expect(throws: MediaError.stopped(path: path)) {
            try MonoAudioFile(path: path, sampleRate: 16_000, stop: stop.check).pass { delivered += $0.count }
        }
        #expect(delivered > 0 && delivered < whole, "delivered \(delivered) of \(whole) samples")
        #expect(stop.pollCount == 4, "polled once per chunk until the stop")
        #expect(MediaError.stopped(path: path).code == "stopped")
    }

    /// Sampling a video's frames polls between packets while reading them and while decoding them.
    @Test("sampling video frames ends with MediaError.stopped while reading and while decoding",
          .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func videoSamplingStops() throws {
        let path = try TestSupport.temporaryFolder("stop-video") + "/clip.mp4"
        // 2 s at 25 fps, one keyframe: 50 packets, all decoded to reach the last sample.
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc=size=160x120:rate=25:duration=2 -g 1000 -pix_fmt yuv420p '\(path)'")
        let whole = StopAfter(after: 10_000)
        let video = try VideoFrameSampler.sample(path: path, count: 4, threads: 1, strategy: .everyFrame, stop: whole.check)
        #expect(video.frames.count == 4)
        let polls = whole.pollCount
        #expect(polls > 50, "polled per packet read and decoded: \(polls)")
        for after in [5, 60] {   // in the reading loop, then in the decoding loop
            let stop = StopAfter(after: after)
            #expect(throws: MediaError.stopped(path: path)) {
                try VideoFrameSampler.sample(path: path, count: 4, threads: 1, strategy: .everyFrame, stop: stop.check)
            }
            #expect(stop.pollCount == after + 1)
        }
    }

    /// A video stream larger than the bound is refused while its packets are read, not after: a film
    /// named like a clip must not hold gigabytes per decoding thread.
    @Test("a video stream of more packet bytes than the bound is refused while it is read",
          .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func videoPacketsAreBounded() throws {
        let path = try TestSupport.temporaryFolder("big-video") + "/clip.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc=size=160x120:rate=25:duration=2 -g 10 -pix_fmt yuv420p '\(path)'")
        let fileBytes = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        // Under a bound the whole stream fits in, sampling works as always.
        let whole = try VideoFrameSampler.sample(path: path, count: 4, threads: 1, strategy: .everyFrame,
                                                 maximumPacketBytes: fileBytes + 50 * VideoPackets.bytesPerPacket)
        #expect(whole.frames.count == 4)
        let polls = StopAfter(after: 10_000)
        #expect(throws: MediaError.videoTooLarge(path: path, maximumBytes: fileBytes / 4)) {
            try VideoFrameSampler.sample(path: path, count: 4, threads: 1, strategy: .everyFrame, stop: polls.check,
                                         maximumPacketBytes: fileBytes / 4)
        }
        #expect(polls.pollCount < 40, "reading stopped at the bound, before the 50 packets: \(polls.pollCount) polls")
        #expect(MediaError.videoTooLarge(path: path, maximumBytes: 512 << 20).description.contains("packets take more than 512 MB in memory"))
    }

    /// Pictures larger than 8K are refused before any is decoded, naming their size: a few of them are held
    /// at once, and a clip claiming 16000 × 16000 took 3 GB. 8K itself still decodes, either way up (portrait
    /// 8K failed: its decoder pads 4320 columns to 4352), and a strip taller than 8K is refused.
    @Test("pictures larger than 8K are refused before decoding, 8K itself decodes",
          .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func picturesAreBounded() throws {
        let folder = try TestSupport.temporaryFolder("big-pictures")
        for (size, refused) in [("8320x4400", true), ("64x9000", true), ("8192x4320", false), ("4320x8192", false)] {
            let path = folder + "/\(size).mp4"
            try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i color=c=gray:size=\(size):rate=2:duration=1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p '\(path)'")
            let sampled = Result { try VideoFrameSampler.sample(path: path, count: 2, threads: 1, strategy: .everyFrame) }
            if refused {
                let shown = size.replacingOccurrences(of: "x", with: " × ")
                let expected = MediaError.videoDecodeFailed(path: path, reason: "pictures of \(shown) pixels are larger than the 8192 × 4320 pixels (8K, either way up) decoded here")
                #expect(throws: expected) { try sampled.get() }
            } else {
                #expect(try sampled.get().frames.count == 2)
            }
        }
        // Bytes bound pictures too: 8K at 10 bits and 4:4:4 (202 MB a picture, 16 of them held as references took
        // 3.6 GB) is refused naming its format; 4K at 10 bits and 4:4:4 (47 MB) decodes.
        for (size, refused) in [("8192x4320", true), ("3840x2160", false)] {
            let path = folder + "/\(size)-444p10.mp4"
            try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i color=c=gray:size=\(size):rate=2:duration=1 -c:v libx264 -preset ultrafast -pix_fmt yuv444p10le '\(path)'")
            let sampled = Result { try VideoFrameSampler.sample(path: path, count: 2, threads: 1, strategy: .everyFrame) }
            if refused {
                #expect(throws: MediaError.videoDecodeFailed(path: path, reason: "pictures of 8192 × 4320 pixels in yuv444p10le take 202 MB each, "
                                                             + "more than the 50 MB (8K at 8 bits and 4:2:0) decoded here")) { try sampled.get() }
            } else {
                #expect(try sampled.get().frames.map(\.width) == [3840, 3840])
            }
        }
        // A container that says 64 × 64 over a bitstream of 64 × 9000 pictures: refused by the pictures' own size.
        let lying = folder + "/lying.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i color=c=gray:size=64x9000:rate=2:duration=1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p '\(lying)' && "
                              + "python3 -c \"p='\(lying)'; d=bytearray(open(p,'rb').read()); i=d.find(b'avc1', d.find(b'stsd'))+28; d[i:i+4]=bytes.fromhex('00400040'); open(p,'wb').write(d)\"")
        #expect(throws: MediaError.videoDecodeFailed(path: lying, reason: "pictures of 64 × 9000 pixels are larger than the 8192 × 4320 pixels (8K, either way up) decoded here")) {
            try VideoFrameSampler.sample(path: lying, count: 2, threads: 1, strategy: .everyFrame)
        }
    }

    /// The sampled pictures of one clip hold at most 512 MB together: sampling more of an 8K clip keeps each as a
    /// smaller RGB copy of the same shape and content (its share), where they had been held whole, 53 MB each.
    @Test("many sampled pictures of a large clip are kept as smaller copies of the same shape and content",
          .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func sampledPicturesShareABound() throws {
        let path = try TestSupport.temporaryFolder("many-8k") + "/8k.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc2=size=7680x4320:rate=16:duration=1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p '\(path)'")
        let few = try VideoFrameSampler.sample(path: path, count: 2, threads: 1, strategy: .everyFrame)
        #expect(few.frames.map(\.width) == [7680, 7680], "two 50 MB pictures fit their shares whole")
        let many = try VideoFrameSampler.sample(path: path, count: 16, threads: 1, strategy: .everyFrame)
        let sizes = Set(many.frames.map { [$0.width, $0.height] })
        let size = try #require(sizes.first)
        #expect(sizes.count == 1 && size[0] < 7680 && 3 * size[0] * size[1] <= (512 << 20) / 16, "\(sizes)")
        #expect(abs(Double(size[0]) / Double(size[1]) - 16.0 / 9) < 0.01, "the shape is kept: \(size)")
        // The same picture either way: the whole one and the copy, seen at one small size, agree to a few levels.
        let middle = few.times[1]
        let slot = try #require(many.times.indices.min { abs(many.times[$0] - middle) < abs(many.times[$1] - middle) })
        let whole = try few.frames[1].scaled(width: 96, height: 54, gray: false).pixels
        let copy = try many.frames[slot].scaled(width: 96, height: 54, gray: false).pixels
        let differences = zip(whole, copy).map { abs(Int($0) - Int($1)) }
        #expect(Double(differences.reduce(0, +)) / Double(differences.count) < 3, "mean difference \(Double(differences.reduce(0, +)) / Double(differences.count))")
    }

    /// A raw H.264 or HEVC stream carries no timestamps: its pictures are sampled by their order, as the same
    /// stream in an MP4 is by its times (every sampled picture was lost, "none of the sampled frames could be decoded").
    @Test("a raw H.264 or HEVC stream without timestamps is sampled as the same stream in an MP4",
          .enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func rawStreamsAreSampled() throws {
        let folder = try TestSupport.temporaryFolder("raw-streams")
        for (codec, format) in [("libx264", "h264"), ("libx265", "hevc")] {
            let raw = folder + "/clip.\(format)", boxed = folder + "/\(format).mp4"
            try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc2=size=320x180:rate=25:duration=2 -c:v \(codec) -preset ultrafast "
                                  + "-bf 0 -pix_fmt yuv420p -f \(format) '\(raw)' && ffmpeg -loglevel error -framerate 25 -i '\(raw)' -c copy '\(boxed)'")
            let fromRaw = try VideoFrameSampler.sample(path: raw, count: 4, threads: 1, strategy: .minimal)
            let fromBox = try VideoFrameSampler.sample(path: boxed, count: 4, threads: 1, strategy: .minimal)
            #expect(fromRaw.substituted == [false, false, false, false], "\(format): \(fromRaw.substituted)")
            let pictures = { (video: SampledVideo) in try video.frames.map { try $0.scaled(width: 32, height: 18, gray: true).pixels } }
            #expect(try pictures(fromRaw) == pictures(fromBox), "\(format): the same four pictures \(fromRaw.times) \(fromBox.times) \(fromRaw.stats) \(fromBox.stats)")
        }
    }
}

/// A crop box from face tracking is arithmetic on detections: whatever its numbers, cropping gives a picture
/// (black where the box misses the frame) and never traps turning them into pixel positions.
@Suite("cropping a frame")
struct FrameCropTests {
    @Test(.enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func anyBoxGivesAPictureOfTheSizeAsked() throws {
        let path = try TestSupport.temporaryFolder("crop") + "/clip.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc=size=160x120:rate=25:duration=0.2 -pix_fmt yuv420p '\(path)'")
        let frame = try #require(try VideoFrameSampler.sample(path: path, count: 1, threads: 1, strategy: .everyFrame,
                                                              stop: StopAfter(after: 10_000).check).frames.first)
        let inside = try frame.crop(x0: 40, y0: 30, x1: 120, y1: 90, outWidth: 16, outHeight: 16)
        #expect(inside.width == 16 && inside.pixels.contains { $0 != 0 }, "a box inside the frame shows it")
        let boxes: [(Double, Double, Double, Double)] = [
            (.nan, 0, 10, 10), (0, 0, .infinity, 10), (-.infinity, -.infinity, 50, 50), (-1e30, -1e30, 1e30, 1e30),
            (1e-300, 0, 2e-300, 10), (1e300, 0, 2e300, 10), (-5e18, 0, 9.3e18, 10), (0, 0, -5, 10),
        ]
        for (x0, y0, x1, y1) in boxes {
            let picture = try frame.crop(x0: x0, y0: y0, x1: x1, y1: y1, outWidth: 16, outHeight: 16)
            #expect(picture.width == 16 && picture.height == 16 && picture.pixels.count == 16 * 16 * 3, "\((x0, y0, x1, y1))")
        }
    }
}
