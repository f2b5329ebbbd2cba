// The log-mel suite's fixtures: the shared speech files it compares, ffmpeg conversions of them,
// and librosa as the oracle (scripts/librosa_logmel.py in the test venv). Generic helpers
// (locations, temp folders, processes, WAV reading) are in EmoTestSupport.

import EmoFeatures
import EmoTestSupport
import Testing
import Foundation

enum TestEnv {
    static var speechFlac: URL { URL(fileURLWithPath: TestSupport.sharedData).appendingPathComponent("speech-flac") }

    static let oracleScript = URL(fileURLWithPath: TestSupport.repositoryRoot).appendingPathComponent("scripts/librosa_logmel.py")

    static let ffmpeg: String? = TestSupport.executable(named: "ffmpeg")

    static var haveData: Bool { FileManager.default.fileExists(atPath: speechFlac.path) }
    static var haveOracle: Bool { TestSupport.python != nil && FileManager.default.fileExists(atPath: oracleScript.path) }
    static var canRunParity: Bool { haveData && haveOracle && ffmpeg != nil }
    static var parityskipReason: Comment {
        var why: [String] = []
        if !haveData { why.append("no RAVDESS data at \(speechFlac.path)") }
        if TestSupport.python == nil { why.append("no \(TestSupport.repositoryRoot)/.venv/bin/python (make venv creates it from scripts/requirements-test.txt)") }
        if ffmpeg == nil { why.append("no ffmpeg on PATH") }
        return Comment(rawValue: "librosa parity skipped: " + why.joined(separator: "; "))
    }

    /// The oracle's interpreter; callers are enabled only when `haveOracle`.
    static func python() throws -> String {
        guard let python = TestSupport.python else { throw TestFailure("no test venv python (make venv)") }
        return python
    }

    static func ffmpegPath() throws -> String {
        guard let ffmpeg else { throw TestFailure("no ffmpeg on PATH") }
        return ffmpeg
    }
}

/// The shared speech files the parity tests use: 3 stereo ones and one from each of 9 more actors.
enum ParityFiles {
    static let names: [String] = [
        "Actor_01/03-01-02-01-01-02-01",   // stereo
        "Actor_01/03-01-08-01-02-02-01",   // stereo
        "Actor_05/03-01-02-01-02-02-05",   // stereo
        "Actor_02/03-01-03-02-01-01-02",
        "Actor_03/03-01-05-01-02-01-03",
        "Actor_04/03-01-01-01-01-01-04",
        "Actor_07/03-01-06-02-01-02-07",
        "Actor_09/03-01-04-01-02-02-09",
        "Actor_11/03-01-07-02-02-01-11",
        "Actor_12/03-01-03-02-01-01-12",
        "Actor_14/03-01-08-02-01-02-14",
        "Actor_16/03-01-02-02-02-01-16",
    ]

    struct Converted: Sendable {
        var dir: URL
        var flac: [URL]
        var wav16k: [URL]
    }

    /// `ffmpeg -i SRC <args> DST` for each file into a new temp folder.
    static func convert(_ sources: [URL], tag: String, args: (URL) throws -> [String]) throws -> [URL] {
        let ffmpeg = try TestEnv.ffmpegPath()
        let dir = try TestSupport.scratchFolder(tag)
        return try sources.enumerated().map { i, src in
            let dst = dir.appendingPathComponent(String(format: "%02d-", i) + src.deletingPathExtension().lastPathComponent + ".wav")
            _ = try TestSupport.output(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", src.path] + (try args(src)) + ["-c:a", "pcm_f32le", dst.path])
            return dst
        }
    }

    /// Converts the files once per test process: `ffmpeg -i X.flac -ar 16000 -ac 1 -c:a pcm_f32le`
    /// into a temp folder (never beside the shared data).
    static let converted: Result<Converted, Error> = Result {
        let ffmpeg = try TestEnv.ffmpegPath()
        let dir = try TestSupport.scratchFolder("wav16k")
        var flacs: [URL] = [], wavs: [URL] = []
        for (i, name) in names.enumerated() {
            let src = TestEnv.speechFlac.appendingPathComponent(name + ".flac")
            let dst = dir.appendingPathComponent(String(format: "%02d-", i) + name.replacingOccurrences(of: "/", with: "_") + ".wav")
            _ = try TestSupport.output(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", src.path, "-ar", "16000", "-ac", "1",
                             "-c:a", "pcm_f32le", dst.path])
            flacs.append(src); wavs.append(dst)
        }
        return Converted(dir: dir, flac: flacs, wav16k: wavs)
    }
}

struct OracleResult {
    var values: [Float]
    var meta: [String: Any]
    var frames: Int { meta["frames"] as! Int }
    var realFrames: Int { meta["real_frames"] as! Int }
    var totalFrames: Int { meta["total_frames"] as! Int }
    var firstFrame: Int { meta["first_frame"] as! Int }
    var sampleRange: Range<Int> { let r = meta["sample_range"] as! [Int]; return r[0]..<r[1] }
    var padValue: Float { Float(meta["pad_value"] as! Double) }
    var peakDb: Float { Float(meta["peak_db"] as! Double) }
}

enum Oracle {
    static func paramsFile(_ p: LogMelParameters, in dir: URL) throws -> URL {
        let u = dir.appendingPathComponent("params-\(UUID().uuidString).json")
        try JSONEncoder().encode(p).write(to: u)
        return u
    }

    /// librosa's log-mel of each file for each parameter set, in one python process
    /// (scripts/librosa_logmel.py logmel); result[j][i] is parameter set j, file i.
    static func logmel(_ sets: [LogMelParameters], files: [URL], loadSR: Int? = nil) throws -> [[OracleResult]] {
        let dir = try TestSupport.scratchFolder("oracle")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        var args = [TestEnv.oracleScript.path, "logmel", "--out", out.path]
        for p in sets { args += ["--params", try paramsFile(p, in: dir).path] }
        if let s = loadSR { args += ["--load-sr", String(s)] }
        _ = try TestSupport.output(try TestEnv.python(), args + files.map(\.path))
        return try sets.indices.map { j in
            let d = sets.count == 1 ? out : out.appendingPathComponent(String(j))
            return try files.indices.map { i in
                let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("\(i).json"))) as! [String: Any]
                return OracleResult(values: try RawFloats.read(d.appendingPathComponent("\(i).f32")), meta: meta)
            }
        }
    }

    /// librosa.filters.mel for each parameter set.
    static func mel(_ sets: [LogMelParameters]) throws -> [[Float]] {
        let dir = try TestSupport.scratchFolder("oracle-mel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("mel")
        var args = [TestEnv.oracleScript.path, "mel", "--out", out.path]
        for p in sets { args += ["--params", try paramsFile(p, in: dir).path] }
        _ = try TestSupport.output(try TestEnv.python(), args)
        return try sets.indices.map { try RawFloats.read(out.appendingPathComponent("\($0).f32")) }
    }

    /// scipy.signal.get_window(kind, n, fftbins=True) for each spec.
    static func windows(_ specs: [(WindowKind, Int)]) throws -> [[Float]] {
        let dir = try TestSupport.scratchFolder("oracle-win")
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = [TestEnv.oracleScript.path, "window", "--out", dir.path]
        for (k, n) in specs { args += ["--spec", "\(k.rawValue):\(n)"] }
        _ = try TestSupport.output(try TestEnv.python(), args)
        return try specs.indices.map { try RawFloats.read(dir.appendingPathComponent("\($0).f32")) }
    }
}

/// Sorted-quantile helper.
func quantile(_ v: [Float], _ q: Double) -> Float {
    guard !v.isEmpty else { return 0 }
    let s = v.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
}
