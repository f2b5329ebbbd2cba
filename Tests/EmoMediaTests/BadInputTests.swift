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

    @Test("zero-byte .mp4 (libav path)")
    func emptyMp4() throws {
        try withFile("empty.mp4", Data()) { path in
            #expect(throws: MediaError.emptyFile(path: path)) { try MediaProbe.probe(path: path) }
        }
    }

    @Test("text file renamed .wav")
    func textAsWav() throws {
        try withFile("notes.wav", Data("these are meeting notes, not audio\n".utf8)) { path in
            expectMediaError("not-media") { _ = try MediaProbe.probe(path: path) }
            expectMediaError("not-media") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
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

    @Test("truncated WAV: data chunk claims more bytes than the file has")
    func truncatedWav() throws {
        let original = TestData.wav("03-01-01-01-01-01-01")
        let size = try Data(contentsOf: URL(fileURLWithPath: original)).count
        try withFile("cut.wav", try headOf(original, size / 2)) { path in
            expectMediaError("truncated") { _ = try MediaProbe.probe(path: path) }
            expectMediaError("truncated") { _ = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000) }
        }
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
            (.tooShort(path: p, samples: 10, minimum: 4800), "shorter than 4800 samples (has 10)"),
            (.invalidArgument(path: p, reason: "r"), "invalid request: r"),
            (.videoTooLarge(path: p, maximumBytes: 512 << 20), "video too large"),
        ]
        for (error, phrase) in cases {
            #expect(error.description.hasPrefix("\(p): "))
            #expect(error.description.contains(phrase), "\(error)")
            #expect(error.path == p)
        }
        #expect(Set(cases.map(\.0.code)).count == cases.count)
        #expect(MediaError.tooShort(path: p, samples: 0, minimum: 1).description == "\(p): the audio stream holds no samples")
    }
}
