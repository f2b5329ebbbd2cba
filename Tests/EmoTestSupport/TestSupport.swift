import EmoCore
import Foundation

/// Helpers the test targets share: where the shared RAVDESS data is, temporary folders, and
/// running commands (the emopipe binary, materialize, ffmpeg).
public enum TestSupport {
    /// The repository root, found from this file's location.
    public static let repositoryRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().standardizedFileURL.path
    }()

    /// `../shared/data/ravdess` beside the checkout (CI lays a read-only copy there), or $EMOPIPE_RAVDESS.
    public static let sharedData: String = {
        if let explicit = ProcessInfo.processInfo.environment["EMOPIPE_RAVDESS"] { return explicit }
        return URL(fileURLWithPath: repositoryRoot + "/../shared/data/ravdess").standardizedFileURL.path
    }()

    public static var hasSharedData: Bool {
        FileManager.default.isExecutableFile(atPath: sharedData + "/materialize")
    }

    /// The emopipe binary the tests drive: $EMOPIPE_BIN (set by `make test`) or the debug build.
    public static let emopipe: String = {
        ProcessInfo.processInfo.environment["EMOPIPE_BIN"] ?? repositoryRoot + "/.build/debug/emopipe"
    }()

    public static var hasEmopipe: Bool { FileManager.default.isExecutableFile(atPath: emopipe) }

    /// The fuzz driver: $EMOPIPE_FUZZ_BIN, or the one beside the emopipe binary (one build makes both).
    public static let emopipeFuzz: String = {
        ProcessInfo.processInfo.environment["EMOPIPE_FUZZ_BIN"]
            ?? URL(fileURLWithPath: emopipe).deletingLastPathComponent().appendingPathComponent("emopipe-fuzz").path
    }()

    /// This test process's folder under the system's temporary folder, `emopipe-tests/<pid>`. Making it
    /// removes the folders of earlier test processes that are gone: a run leaves only its own files (to
    /// look at after a failure), and runs do not pile gigabytes of data copies up in /tmp.
    static let processFolder: String = {
        let parent = URL(fileURLWithPath: NSTemporaryDirectory() + "/emopipe-tests").standardizedFileURL.path
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let mine = getpid()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
            // A folder of this pid is an earlier process's whose pid came round again.
            guard let pid = Int32(name), pid == mine || (kill(pid, 0) != 0 && errno == ESRCH) else { continue }
            removeTree(parent + "/" + name)
        }
        let folder = parent + "/\(mine)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()

    /// `chmod -R u+w` then `rm -rf` (a test makes read-only folders), without `run`, which writes its
    /// output into `processFolder`.
    private static func removeTree(_ path: String) {
        for (tool, arguments) in [("/bin/chmod", ["-R", "u+w", path]), ("/bin/rm", ["-rf", path])] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return }
            process.waitUntilExit()
        }
    }

    /// A fresh, empty folder in this process's folder.
    public static func temporaryFolder(_ label: String = "emopipe-test") throws -> String {
        let path = processFolder + "/\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    public struct ProcessResult: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// The process was ended by a signal (then `status` is the signal's number).
        public var signaled = false
    }

    /// Runs a program to completion and captures its output.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           currentDirectory: String? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let outFile = try temporaryFile(), errFile = try temporaryFile()
        defer { try? FileManager.default.removeItem(atPath: outFile); try? FileManager.default.removeItem(atPath: errFile) }
        process.standardOutput = FileHandle(forWritingAtPath: outFile)
        process.standardError = FileHandle(forWritingAtPath: errFile)
        try process.run()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus,
                             stdout: (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "",
                             signaled: process.terminationReason == .uncaughtSignal)
    }

    /// A program started in the background, its stderr going to a file the test can watch, so that
    /// it can be killed at a chosen moment (crash-safety tests).
    ///
    ///     let run = try TestSupport.Background(TestSupport.emopipe, ["run", ...])
    ///     _ = run.waitForStderr(containing: "audio: running")
    ///     Thread.sleep(forTimeInterval: 0.7)
    ///     let landed = run.kill()          // SIGKILL; true when it was still running
    /// Whether process `pid` catches or ignores `signal`, as /proc/PID/status's SigCgt and SigIgn masks say
    /// (`ignored: false` reads SigCgt alone); false when the process is gone.
    public static func handles(_ signal: Int32, pid: Int32, ignored: Bool = true) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        let fields = ignored ? ["SigIgn:", "SigCgt:"] : ["SigCgt:"]
        let masks = status.split(separator: "\n").filter { line in fields.contains { line.hasPrefix($0) } }.compactMap { line in
            UInt64(line.drop { $0 != ":" }.dropFirst().trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return masks.count == fields.count && masks.reduce(0, |) & (1 << (UInt64(signal) - 1)) != 0
    }

    public final class Background {
        public let process = Process()
        public let stderrPath: String
        /// Where stdout goes when `keepStdout` (else nowhere).
        public let stdoutPath: String?
        public var pid: Int32 { process.processIdentifier }
        public var isRunning: Bool { process.isRunning }

        public init(_ executable: String, _ arguments: [String], keepStdout: Bool = false) throws {
            stderrPath = try TestSupport.temporaryFile()
            stdoutPath = keepStdout ? try TestSupport.temporaryFile() : nil
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardOutput = stdoutPath.flatMap { FileHandle(forWritingAtPath: $0) } ?? FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: stderrPath)
            try process.run()
        }

        deinit {
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(atPath: stderrPath)
            if let stdoutPath { try? FileManager.default.removeItem(atPath: stdoutPath) }
        }

        /// Everything the program wrote on stderr so far.
        public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
        /// Everything it wrote on stdout so far, when kept.
        public var stdout: String { stdoutPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "" }

        /// Waits until stderr contains `text` (true), or the program ended or `timeout` passed without it.
        public func waitForStderr(containing text: String, timeout: TimeInterval = 300) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if stderr.contains(text) { return true }
                if !process.isRunning { return stderr.contains(text) }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return false
        }

        /// Sends SIGKILL if the program is still running and waits for it; true when the kill landed.
        @discardableResult
        public func kill() -> Bool {
            let landed = process.isRunning && Foundation.kill(process.processIdentifier, SIGKILL) == 0
            process.waitUntilExit()
            return landed && process.terminationReason == .uncaughtSignal
        }

        /// Waits for the program to end by itself; its exit status.
        public func wait() -> Int32 {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// Runs a shell command line; throws with its stderr when it fails.
    @discardableResult
    public static func shell(_ command: String) throws -> String {
        let result = try run("/bin/bash", ["-c", command])
        guard result.status == 0 else {
            throw TestFailure("`\(command)` exited \(result.status): \(result.stderr)")
        }
        return result.stdout
    }

    public static func temporaryFile() throws -> String {
        let path = processFolder + "/emopipe-out-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return path
    }

    /// Writes a manifest for the repository's pipeline over `data` at `path` and returns the path;
    /// `fields` are its other lines (seed, threads, params…), as YAML.
    @discardableResult
    public static func writeManifest(at path: String, data: String, _ fields: String = "") throws -> String {
        try "pipeline: \(repositoryRoot)/pipelines/ravdess.yaml\ndata: \(data)\n\(fields)\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Lays out shared speech (and the shipped AV clips) for the given actors into a new folder.
    public static func materialize(actors: ClosedRange<Int>, extra: [String] = []) throws -> String {
        let folder = try temporaryFolder("ravdess")
        let args = (["--actors", "\(actors.lowerBound)-\(actors.upperBound)"] + extra + [folder])
            .map { "'\($0)'" }.joined(separator: " ")
        try shell("'\(sharedData)/materialize' \(args)")
        return folder
    }

    /// Speech of actors 01-03 and the one original audio-video clip (actor 01's), filed as `videoActor`'s
    /// clip: the smallest root where a modality reaches some actors only.
    public static func speechWithOneVideo(filedAs videoActor: Int) throws -> String {
        let data = try materialize(actors: 1...3, extra: ["--no-av"])
        let actor = String(format: "%02d", videoActor)
        try FileManager.default.copyItem(atPath: sharedData + "/av-original/Actor_01/01-01-01-01-01-01-01.mp4",
                                         toPath: data + "/Actor_\(actor)/01-01-01-01-01-01-\(actor).mp4")
        return data
    }

    /// A data root of pink-noise speech files made with sox (16 kHz, 16-bit), for tests that need no
    /// real speech: each entry is a RAVDESS file name (its actor folder follows from it) and a length.
    public static func synthesizedSpeech(_ clips: [(name: String, seconds: Double)]) throws -> String {
        let root = try temporaryFolder("synthesized-speech")
        for clip in clips {
            let actor = root + "/Actor_" + clip.name.dropLast(4).suffix(2)
            try FileManager.default.createDirectory(atPath: actor, withIntermediateDirectories: true)
            try shell("sox -n -r 16000 -b 16 -c 1 '\(actor)/\(clip.name)' synth \(clip.seconds) pinknoise vol 0.3")
        }
        return root
    }

    /// `sha256sum`'s answer for a file: an oracle independent of our own hashing.
    public static func sha256sum(_ path: String) throws -> String {
        String(try shell("sha256sum '\(path)'").prefix(64))
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Test data's generator: the same seed, the same bytes.
public typealias SplitMix64 = EmoCore.SplitMix64

/// Answers "stop?" with yes from its `after`-th poll on, counting the polls: wrapped as a StopCheck
/// (`StopCheck(stop.poll)`) it stops a piece of work part way, at a known point.
public final class StopAfter: @unchecked Sendable {
    private let lock = NSLock()
    private var polls = 0
    public let after: Int

    public init(after: Int) { self.after = after }

    public var pollCount: Int { lock.lock(); defer { lock.unlock() }; return polls }

    @Sendable public func poll() -> Bool {
        lock.lock(); defer { lock.unlock() }
        polls += 1
        return polls > after
    }
}
