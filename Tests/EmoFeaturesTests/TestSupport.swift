// Helpers for the EmoFeatures tests: locating the repository, the shared RAVDESS data, the test
// venv's python and ffmpeg; temp folders; reading WAVs with libsndfile; running processes.

import CSndFile
import EmoFeatures
import Testing
import Foundation

enum TestEnv {
    /// The package root (…/Tests/EmoFeaturesTests/TestSupport.swift → …).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/data/ravdess` beside the checkout (EMOPIPE_RAVDESS overrides).
    static let ravdess: URL = {
        if let p = ProcessInfo.processInfo.environment["EMOPIPE_RAVDESS"], !p.isEmpty {
            return URL(fileURLWithPath: p)
        }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/ravdess")
    }()

    static var speechFlac: URL { ravdess.appendingPathComponent("speech-flac") }

    /// `.venv/bin/python` at the repository root (made by `make`), if present.
    static let python: URL? = {
        let u = repoRoot.appendingPathComponent(".venv/bin/python")
        return FileManager.default.isExecutableFile(atPath: u.path) ? u : nil
    }()

    static let oracleScript = repoRoot.appendingPathComponent("scripts/librosa_logmel.py")

    static let ffmpeg: URL? = findExecutable("ffmpeg")

    static func findExecutable(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let u = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return nil
    }

    static var haveData: Bool { FileManager.default.fileExists(atPath: speechFlac.path) }
    static var haveOracle: Bool { python != nil && FileManager.default.fileExists(atPath: oracleScript.path) }
    static var canRunParity: Bool { haveData && haveOracle && ffmpeg != nil }
    static var parityskipReason: Comment {
        var why: [String] = []
        if !haveData { why.append("no RAVDESS data at \(speechFlac.path)") }
        if python == nil { why.append("no \(repoRoot.path)/.venv/bin/python (make creates it from scripts/requirements-test.txt)") }
        if ffmpeg == nil { why.append("no ffmpeg on PATH") }
        return Comment(rawValue: "librosa parity skipped: " + why.joined(separator: "; "))
    }

    /// One folder per test process under the system temp folder, removed when the process exits.
    static let sessionDir: URL = {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("emofeatures-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestEnv.sessionDir) }
        return u
    }()

    static func makeTempDir(_ tag: String) throws -> URL {
        let u = sessionDir.appendingPathComponent("\(tag)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var description: String
}

@discardableResult
func run(_ exe: URL, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    // Read both pipes concurrently so neither fills up.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    let so = String(decoding: outData, as: UTF8.self)
    guard p.terminationStatus == 0 else {
        throw ProcessFailure(description: "\(exe.lastPathComponent) \(args.prefix(4).joined(separator: " ")) … exited \(p.terminationStatus): \(String(decoding: errBox.data, as: UTF8.self).suffix(2000))")
    }
    return so
}

struct WavAudio {
    var samples: [Float]   // mono (channels averaged)
    var sampleRate: Int
    var channels: Int
}

/// Reads any libsndfile-readable file as float (libsndfile's normalisation, like soundfile's).
func readAudio(_ url: URL) throws -> WavAudio {
    var info = SF_INFO()
    guard let f = sf_open(url.path, Int32(SFM_READ), &info) else {
        throw ProcessFailure(description: "sf_open \(url.path): \(String(cString: sf_strerror(nil)))")
    }
    defer { sf_close(f) }
    let frames = Int(info.frames), ch = Int(info.channels)
    var buf = [Float](repeating: 0, count: frames * ch)
    let got = Int(buf.withUnsafeMutableBufferPointer { sf_readf_float(f, $0.baseAddress, sf_count_t(frames)) })
    var mono = [Float](repeating: 0, count: got)
    if ch == 1 {
        mono = Array(buf.prefix(got))
    } else {
        for i in 0..<got {
            var s: Float = 0
            for c in 0..<ch { s += buf[i * ch + c] }
            mono[i] = s / Float(ch)
        }
    }
    return WavAudio(samples: mono, sampleRate: Int(info.samplerate), channels: ch)
}

func readF32(_ url: URL) throws -> [Float] {
    let d = try Data(contentsOf: url)
    return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
}

func writeF32(_ v: [Float], _ url: URL) throws {
    try v.withUnsafeBytes { try Data($0).write(to: url) }
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
        guard let ffmpeg = TestEnv.ffmpeg else { throw ProcessFailure(description: "no ffmpeg") }
        let dir = try TestEnv.makeTempDir(tag)
        return try sources.enumerated().map { i, src in
            let dst = dir.appendingPathComponent(String(format: "%02d-", i) + src.deletingPathExtension().lastPathComponent + ".wav")
            try run(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", src.path] + (try args(src)) + ["-c:a", "pcm_f32le", dst.path])
            return dst
        }
    }

    /// Converts the files once per test process: `ffmpeg -i X.flac -ar 16000 -ac 1 -c:a pcm_f32le`
    /// into a temp folder (never beside the shared data).
    static let converted: Result<Converted, Error> = Result {
        guard let ffmpeg = TestEnv.ffmpeg else { throw ProcessFailure(description: "no ffmpeg") }
        let dir = try TestEnv.makeTempDir("wav16k")
        var flacs: [URL] = [], wavs: [URL] = []
        for (i, name) in names.enumerated() {
            let src = TestEnv.speechFlac.appendingPathComponent(name + ".flac")
            let dst = dir.appendingPathComponent(String(format: "%02d-", i) + name.replacingOccurrences(of: "/", with: "_") + ".wav")
            try run(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", src.path, "-ar", "16000", "-ac", "1",
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
        let dir = try TestEnv.makeTempDir("oracle")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        var args = [TestEnv.oracleScript.path, "logmel", "--out", out.path]
        for p in sets { args += ["--params", try paramsFile(p, in: dir).path] }
        if let s = loadSR { args += ["--load-sr", String(s)] }
        try run(TestEnv.python!, args + files.map(\.path))
        return try sets.indices.map { j in
            let d = sets.count == 1 ? out : out.appendingPathComponent(String(j))
            return try files.indices.map { i in
                let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("\(i).json"))) as! [String: Any]
                return OracleResult(values: try readF32(d.appendingPathComponent("\(i).f32")), meta: meta)
            }
        }
    }

    /// librosa.filters.mel for each parameter set.
    static func mel(_ sets: [LogMelParameters]) throws -> [[Float]] {
        let dir = try TestEnv.makeTempDir("oracle-mel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("mel")
        var args = [TestEnv.oracleScript.path, "mel", "--out", out.path]
        for p in sets { args += ["--params", try paramsFile(p, in: dir).path] }
        try run(TestEnv.python!, args)
        return try sets.indices.map { try readF32(out.appendingPathComponent("\($0).f32")) }
    }

    /// scipy.signal.get_window(kind, n, fftbins=True) for each spec.
    static func windows(_ specs: [(WindowKind, Int)]) throws -> [[Float]] {
        let dir = try TestEnv.makeTempDir("oracle-win")
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = [TestEnv.oracleScript.path, "window", "--out", dir.path]
        for (k, n) in specs { args += ["--spec", "\(k.rawValue):\(n)"] }
        try run(TestEnv.python!, args)
        return try specs.indices.map { try readF32(dir.appendingPathComponent("\($0).f32")) }
    }
}

/// Sorted-quantile helper.
func quantile(_ v: [Float], _ q: Double) -> Float {
    guard !v.isEmpty else { return 0 }
    let s = v.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * q).rounded()))]
}
