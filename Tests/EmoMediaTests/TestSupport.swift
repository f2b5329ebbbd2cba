// The media suite's fixtures: the shared clips it decodes, a materialised Actor_01, ffmpeg's decode
// as the oracle, signal arithmetic. Generic helpers are in EmoTestSupport.
import EmoTestSupport
import Foundation
import Testing
@testable import EmoMedia

enum TestData {
    static var root: URL { URL(fileURLWithPath: TestSupport.sharedData) }

    static let available = FileManager.default.fileExists(atPath: root.appendingPathComponent("README.md").path)
        && TestSupport.hasTool("ffmpeg") && TestSupport.hasTool("flac")
    static let missingMessage: Comment = "RAVDESS test data (../shared/data/ravdess), ffmpeg or flac not available"

    static var avClip: String { root.appendingPathComponent("av-original/Actor_01/01-01-01-01-01-01-01.mp4").path }
    static var oddFolder: URL { root.appendingPathComponent("odd") }

    /// Actor_01's WAVs laid out once per machine by the data's own `materialize` script (it keeps existing
    /// files, so reruns are cheap). The folder is outside the repo and outside the read-only data.
    static let actor01: URL = {
        let dest = FileManager.default.temporaryDirectory.appendingPathComponent("emomedia-tests-ravdess")
        let script = root.appendingPathComponent("materialize").path
        let result = try? TestSupport.run(script, ["--no-av", "--actors", "1-1", dest.path])
        precondition(result?.status == 0, "materialize failed: \(result?.stderr ?? "could not start \(script)")")
        return dest.appendingPathComponent("Actor_01")
    }()

    static func wav(_ name: String) -> String { actor01.appendingPathComponent("\(name).wav").path }

    /// The reference hash of a WAV's decoded samples, from speech-pcm-sha256.txt.
    static func pcmHash(actorFile: String) throws -> String {
        let text = try String(contentsOf: root.appendingPathComponent("speech-pcm-sha256.txt"), encoding: .utf8)
        let line = text.split(separator: "\n").first { $0.hasSuffix(" \(actorFile)") }
        return try #require(line.map { String($0.split(separator: " ")[0]) }, "no hash line for \(actorFile)")
    }

    /// ffmpeg's own decode of a file's audio, as raw little-endian samples: the oracle for our decoder.
    static func ffmpegDecode(_ input: String, _ outputOptions: [String]) throws -> Data {
        try TestSupport.output("/usr/bin/env", ["ffmpeg", "-v", "error", "-nostdin", "-i", input, "-map", "0:a"] + outputOptions + ["-"])
    }
}

enum Signal {
    static func int16(_ data: Data) -> [Int16] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }.map { Int16(littleEndian: $0) }
    }

    static func float32(_ data: Data) -> [Float] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Float samples back to 16-bit integers, as a WAV writer would.
    static func quantised(_ samples: [Float]) -> [Int16] {
        samples.map { Int16(clamping: Int(($0 * 32768).rounded())) }
    }

    static func littleEndianBytes(_ values: [Int16]) -> Data {
        var copy = values.map { $0.littleEndian }
        return Data(bytes: &copy, count: copy.count * 2)
    }

    /// Normalised correlation of a[i + lag] with b[i] over their overlap.
    static func correlation(_ a: [Float], _ b: [Float], lag: Int = 0) -> Double {
        let start = max(0, -lag), end = min(b.count, a.count - lag)
        guard end > start else { return 0 }
        return a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                var xy = 0.0, xx = 0.0, yy = 0.0
                for i in start..<end {
                    let p = Double(x[i + lag]), q = Double(y[i])
                    xy += p * q; xx += p * p; yy += q * q
                }
                return xx > 0 && yy > 0 ? xy / (xx * yy).squareRoot() : 0
            }
        }
    }
}

/// Runs `body` and checks it fails with the MediaError whose `code` is given.
func expectMediaError(_ code: String, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected MediaError \(code), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MediaError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected MediaError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
