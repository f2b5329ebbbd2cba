// A clip whose every frame its edit list cuts is decoded whole, from references to its packets: the packets
// read stay as they were read.
import EmoTestSupport
import Foundation
import Testing
@testable import EmoMedia
import CFFmpeg

@Suite("Packets an edit list cuts", .enabled(if: TestData.available, TestData.missingMessage))
struct CutPacketTests {
    @Test func aClipCutWholeIsDecodedWithoutChangingItsPackets() throws {
        let folder = try TestSupport.temporaryFolder("cut-packets")
        let path = folder + "/01-01-01-01-01-01-01.mp4"
        _ = try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", "1", "-i", TestData.avClip,
                                                    "-frames:v", "1", "-an", "-c", "copy", path])
        let (flags, decoded, flagsAfter) = try LibavLog.capturing { (log) throws(MediaError) in
            let input = try LibavInput.open(path, log: log, mode: .salvage)
            let (stream, codec) = try VideoFrameSampler.bestVideoStream(input)
            let packets = try VideoPackets.read(input, stream: stream, stop: .never, maximumBytes: 1 << 26)
            let plan = SamplePlan(packets: packets, count: 4, strategy: .minimal, timeBase: stream.pointee.time_base)
            let before = packets.list.map { $0.pointee.flags }
            let (frames, _) = try VideoCodec.open(codec, stream: stream, threads: 1, path: path).decode(packets, plan: plan)
            return (before, frames.count, packets.list.map { $0.pointee.flags })
        }
        try #require(!flags.isEmpty && flags.allSatisfy { $0 & AV_PKT_FLAG_DISCARD != 0 }, "every packet is cut: \(flags)")
        #expect(decoded > 0, "the cut frames are shown")
        #expect(flagsAfter == flags)
    }

    /// A clip whose every packet has one time (its time-to-sample delta patched to 0) put all K slots on one
    /// picture (eight copies of one crop, recorded as a sound clip): its packets are placed by their order.
    /// With B-frames (x264's high profile), the composition offsets part a few pictures' times: every decode time is one.
    @Test(arguments: ["baseline", "high"])
    func aClipWhosePacketsShareOneTimeIsSampledByTheirOrder(profile: String) throws {
        let folder = try TestSupport.temporaryFolder("one-time")
        let path = folder + "/02-01-01-01-01-01-01.mp4"
        try TestSupport.shell("ffmpeg -loglevel error -f lavfi -i testsrc=size=160x120:rate=25:duration=2 -c:v libx264 -profile:v \(profile) "
                              + "-g 10 -pix_fmt yuv420p -movflags +faststart '\(path)'")
        // 'stts', version and flags, entry count, then the first entry's sample count and delta.
        try TestSupport.shell("python3 -c \"p='\(path)'; d=bytearray(open(p,'rb').read()); i=d.find(b'stts'); d[i+16:i+20]=bytes(4); open(p,'wb').write(d)\"")
        let times = try TestSupport.shell("ffprobe -v error -select_streams v -show_entries packet=dts -of csv=p=0 '\(path)'")
        try #require(Set(times.split(separator: "\n")).count == 1, "one decode time for every packet: \(Set(times.split(separator: "\n")))")
        let sampled = try VideoFrameSampler.sample(path: path, count: 4, threads: 1, strategy: .minimal)
        #expect(sampled.stats.distinctFrames == 4 && sampled.times == sampled.times.sorted() && Set(sampled.times).count == 4,
                "\(sampled.times) \(sampled.stats)")
        #expect(abs(sampled.durationSeconds - 2) < 0.1, "placed at the stream's 25 frames per second: \(sampled.durationSeconds)")
        let pictures = try sampled.frames.map { try $0.scaled(width: 32, height: 24, gray: true) }
        #expect(Set(pictures.map(\.pixels)).count == 4, "four different pictures")
        // Every strategy decodes the same pictures for the slots.
        for strategy in VideoDecodeStrategy.allCases {
            let again = try VideoFrameSampler.sample(path: path, count: 4, threads: 1, strategy: strategy)
            #expect(try again.frames.map { try $0.scaled(width: 32, height: 24, gray: true) } == pictures, "\(strategy)")
        }
    }

    @Test func aMediaErrorNamesItsFileOnceAndItsReasonAlone() {
        let errors: [MediaError] = [.fileNotFound(path: "a/b.mp4"), .notMedia(path: "a/b.mp4", reason: "text"),
                                    .silentAudio(path: "a/b.mp4", channels: 2), .tooShort(path: "a/b.mp4", samples: 3, minimum: 400),
                                    .videoTooLarge(path: "a/b.mp4", maximumBytes: 1 << 29)]
        for error in errors {
            #expect(error.description == "a/b.mp4: " + error.reason)
            #expect(!error.reason.contains("b.mp4") && !error.reason.isEmpty, "\(error.reason)")
        }
    }
}
