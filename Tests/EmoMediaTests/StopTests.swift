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
        // A container that says 64 × 64 over a bitstream of 64 × 9000 pictures: refused by the pictures' own size.
        let lying = folder + "/lying.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i color=c=gray:size=64x9000:rate=2:duration=1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p '\(lying)' && "
                              + "python3 -c \"p='\(lying)'; d=bytearray(open(p,'rb').read()); i=d.find(b'avc1', d.find(b'stsd'))+28; d[i:i+4]=bytes.fromhex('00400040'); open(p,'wb').write(d)\"")
        #expect(throws: MediaError.videoDecodeFailed(path: lying, reason: "pictures of 64 × 9000 pixels are larger than the 8192 × 4320 pixels (8K, either way up) decoded here")) {
            try VideoFrameSampler.sample(path: lying, count: 2, threads: 1, strategy: .everyFrame)
        }
    }
}
