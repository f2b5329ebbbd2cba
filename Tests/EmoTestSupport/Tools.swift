import Foundation

/// External programs the suites use as oracles (ffmpeg, sha256sum, the test venv's python) and
/// folders for what a test process writes.
extension TestSupport {
    /// `.venv/bin/python` at the repository root (`make venv`), if present.
    public static let python: String? = {
        let path = repositoryRoot + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    /// The first executable of that name on $PATH.
    public static func executable(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static func hasTool(_ name: String) -> Bool { executable(named: name) != nil }

    /// A program's stdout as bytes (decoded audio, say); throws naming the command and its stderr
    /// when it cannot start or exits non-zero.
    public static func output(_ executable: String, _ arguments: [String]) throws -> Data {
        let outFile = try temporaryFile(), errFile = try temporaryFile()
        defer { try? FileManager.default.removeItem(atPath: outFile); try? FileManager.default.removeItem(atPath: errFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outFile)
        process.standardError = FileHandle(forWritingAtPath: errFile)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let stderr = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
            throw TestFailure("\((executable as NSString).lastPathComponent) \(arguments.prefix(6).joined(separator: " ")) … exited \(process.terminationStatus): \(stderr.suffix(2000))")
        }
        return try Data(contentsOf: URL(fileURLWithPath: outFile))
    }

    /// `sha256sum`'s answer for bytes in memory.
    public static func sha256sum(of data: Data) throws -> String {
        let file = try temporaryFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        try data.write(to: URL(fileURLWithPath: file))
        return try sha256sum(file)
    }

    /// One folder per test process, removed when the process exits.
    static let sessionFolder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emopipe-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestSupport.sessionFolder) }
        return url
    }()

    /// A fresh folder for scratch files, removed with the test process's session folder at exit.
    public static func scratchFolder(_ label: String) throws -> URL {
        let url = sessionFolder.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Little-endian float32 files, as the oracle scripts read and write them.
public enum RawFloats {
    public static func read(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
    }

    public static func write(_ values: [Float], to url: URL) throws {
        try values.withUnsafeBytes { try Data($0).write(to: url) }
    }
}
