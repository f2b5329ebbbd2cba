import EmoCore
import Foundation

/// Everything besides the manifest and the data that decides a run's results, recorded with the
/// run so `emopipe reproduce` and `emopipe diff` can say what changed.
public struct RunEnvironment: Codable, Equatable, Sendable {
    public var emopipeVersion: String
    /// The git commit of the checkout holding the pipeline file, and whether tracked files differ from it.
    public var gitCommit: String?
    public var gitDirty: Bool?
    /// SHA-256 of the running executable: the code that ran, whatever git says.
    public var executableSHA256: String?
    public var toolchain: String
    public var operatingSystem: String
    public var host: String
    /// Library name → version (FFmpeg, libsndfile, OpenBLAS, oneDNN, dlib, SQLite).
    public var libraries: [String: String]
    public var seed: Int
    public var threads: Int

    /// The fields `diff` and `reproduce` compare, as (name, value) in a fixed order.
    public var fields: [(String, String)] {
        [("emopipe", emopipeVersion), ("git commit", gitCommit ?? "unknown"),
         ("git dirty", gitDirty.map { $0 ? "yes" : "no" } ?? "unknown"),
         ("executable sha256", executableSHA256 ?? "unknown"), ("toolchain", toolchain),
         ("os", operatingSystem), ("host", host), ("seed", String(seed)), ("threads", String(threads))]
            + libraries.keys.sorted().map { ("library \($0)", libraries[$0]!) }
    }

    public static func capture(manifest: Manifest, libraries: [String: String]) -> RunEnvironment {
        let checkout = (manifest.pipelinePath as NSString).deletingLastPathComponent
        let commit = git(["rev-parse", "HEAD"], in: checkout)
        let dirty = commit == nil ? nil : git(["status", "--porcelain", "--untracked-files=no"], in: checkout).map { !$0.isEmpty }
        return RunEnvironment(
            emopipeVersion: EmoPipeVersion.string, gitCommit: commit, gitDirty: dirty,
            executableSHA256: ExecutableIdentity.sha256, toolchain: Toolchain.description,
            operatingSystem: ProcessInfo.processInfo.operatingSystemVersionString,
            host: ProcessInfo.processInfo.hostName, libraries: libraries,
            seed: manifest.seed, threads: manifest.threads)
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    public static func decode(_ json: String?) -> RunEnvironment? {
        guard let json else { return nil }
        return try? JSONDecoder().decode(RunEnvironment.self, from: Data(json.utf8))
    }

    /// Runs git quietly; nil when git is missing or the folder is not a checkout.
    static func git(_ arguments: [String], in folder: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", folder] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The running executable's SHA-256, computed once per process.
enum ExecutableIdentity {
    static let sha256: String? = {
        guard let data = FileManager.default.contents(atPath: "/proc/self/exe") else { return nil }
        return SHA256Hex.of(data)
    }()
}

/// The Swift compiler this binary was built with (known at compile time only).
enum Toolchain {
    static var description: String {
        #if compiler(>=6.4)
        return "Swift 6.4 or later"
        #elseif compiler(>=6.3.1)
        return "Swift 6.3.1"
        #elseif compiler(>=6.3)
        return "Swift 6.3"
        #elseif compiler(>=6.2)
        return "Swift 6.2"
        #else
        return "Swift before 6.2"
        #endif
    }
}
