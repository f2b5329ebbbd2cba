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
