import EmoTestSupport
import Foundation
import Testing
@testable import EmoMedia

/// A file with several audio tracks (a second language, a commentary) is read from the one marked default,
/// else the first, as a file and as a stream: it was always the first, whatever the file said.
struct AudioTrackChoiceTests {
    @Test func theTrackMarkedDefaultIsReadAsAFileAndAsAStream() throws {
        let folder = try TestSupport.temporaryFolder("audio-tracks")
        let (low, high) = (folder + "/low.m4a", folder + "/high.m4a")
        for (path, frequency) in [(low, 300), (high, 1200)] {
            try TestSupport.shell("ffmpeg -nostdin -loglevel error -f lavfi -i sine=f=\(frequency):d=1:r=16000 -c:a aac '\(path)'")
        }
        let copy = "-nostdin -loglevel error -i '\(low)' -i '\(high)' -map 0:a -map 1:a -c copy"
        let secondIsDefault = folder + "/second-default.mp4", noneMarked = folder + "/none-marked.mp4"
        try TestSupport.shell("ffmpeg \(copy) -disposition:a:0 0 -disposition:a:1 default '\(secondIsDefault)'")
        try TestSupport.shell("ffmpeg \(copy) -disposition:a:0 0 -disposition:a:1 0 '\(noneMarked)'")

        let alone = try AudioDecoder.decodeMono(path: high, sampleRate: 16000).samples
        let first = try AudioDecoder.decodeMono(path: low, sampleRate: 16000).samples
        #expect(!alone.isEmpty && alone != first)
        #expect(try AudioDecoder.decodeMono(path: secondIsDefault, sampleRate: 16000).samples == alone, "the default track")
        #expect(try AudioDecoder.decodeMono(path: noneMarked, sampleRate: 16000).samples == first, "none marked: the first")

        var streamed: [Float] = []
        _ = try LiveAudio.read(LiveSource(name: secondIsDefault), sampleRate: 16000, stop: { false }) { streamed.append(contentsOf: $0) }
        #expect(streamed == alone, "a stream reads the same track")
    }
}
