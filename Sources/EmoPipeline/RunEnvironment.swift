import EmoCore
import EmoStore
import Foundation

/// Everything besides the manifest and the data that decides a run's results, recorded with the
/// run so `emopipe reproduce` and `emopipe diff` can say what changed.
public struct RunEnvironment: Codable, Equatable, Sendable {
    public var emopipeVersion: String
    /// The git commit of the checkout holding the pipeline file, and whether tracked files differ from it.
    public var gitCommit: String?
    public var gitDirty: Bool?
    /// SHA-256 of the running executable: the code that ran, whatever git says.
    public var executableSha256: String?
    public var toolchain: String
    public var operatingSystem: String
    public var host: String
    /// Library name → version (FFmpeg, libsndfile, OpenBLAS, oneDNN, dlib, SQLite).
    public var libraries: [String: String]
    public var seed: Int
    public var threads: Int

    /// The fields `diff` and `reproduce` compare, as (name, value) in a fixed order; null where unknown.
    public var fields: [(String, ParamValue)] {
        [("emopipe", .string(emopipeVersion)), ("git commit", gitCommit.map(ParamValue.string) ?? .null),
         ("git dirty", gitDirty.map(ParamValue.bool) ?? .null),
         ("executable sha256", executableSha256.map(ParamValue.string) ?? .null), ("toolchain", .string(toolchain)),
         ("os", .string(operatingSystem)), ("host", .string(host)), ("seed", .int(seed)), ("threads", .int(threads))]
            + libraries.keys.sorted().map { ("library \($0)", .string(libraries[$0]!)) }
    }

    /// `workspace` keeps the executable's hash between runs (see `ExecutableIdentity`).
    public static func capture(manifest: Manifest, libraries: [String: String], workspace: Workspace) -> RunEnvironment {
        let checkout = GitCheckout.describe(PathText.folder(of: manifest.pipelinePath))
        return RunEnvironment(
            emopipeVersion: EmoPipeVersion.string, gitCommit: checkout?.commit, gitDirty: checkout?.dirty,
            executableSha256: ExecutableIdentity.sha256(rememberedIn: workspace.executableHashPath),
            toolchain: Toolchain.description,
            operatingSystem: ProcessInfo.processInfo.operatingSystemVersionString,
            host: ProcessInfo.processInfo.hostName, libraries: libraries,
            seed: manifest.seed, threads: manifest.threads)
    }

    public var json: String { (try? JSONOutput.text(self)) ?? "" }

    /// Every field, an unknown one as null (the synthesized encoding leaves it out: a reader would
    /// find `git_commit` missing outside a git checkout instead of null).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(emopipeVersion, forKey: .emopipeVersion)
        try c.encode(gitCommit, forKey: .gitCommit)
        try c.encode(gitDirty, forKey: .gitDirty)
        try c.encode(executableSha256, forKey: .executableSha256)
        try c.encode(toolchain, forKey: .toolchain)
        try c.encode(operatingSystem, forKey: .operatingSystem)
        try c.encode(host, forKey: .host)
        try c.encode(libraries, forKey: .libraries)
        try c.encode(seed, forKey: .seed)
        try c.encode(threads, forKey: .threads)
    }

    public static func decode(_ json: String?) -> RunEnvironment? {
        guard let json else { return nil }
        // Runs recorded before the snake_case convention hold camelCase keys: the decoder reads both.
        return try? JSONOutput.decoder().decode(RunEnvironment.self, from: Data(json.utf8))
    }
}

/// The commit and dirty flag of the git checkout holding a folder, from one `git status` call
/// (it runs at the start of every run: one process, waited for a bounded time).
enum GitCheckout {
    /// How long a run waits for git before it records no commit: a checkout is a user's folder, and
    /// what it holds (a FIFO for `.git/HEAD`, a configured fsmonitor that never answers) must not hold a run.
    static let patience: TimeInterval = 10
    /// Standard output read at most: the header and one change line are all that is parsed.
    static let outputLimit = 1 << 20

    static func describe(_ folder: String, patience: TimeInterval = patience) -> (commit: String, dirty: Bool)? {
        // No optional locks: status refreshes the index and takes index.lock for it, which a user's own git command
        // in that checkout would then find taken. Said in the environment, which a git older than 2.15 ignores
        // (`--no-optional-locks` would fail there). No fsmonitor: it runs a command the checkout's own config names.
        let command = ["env", "GIT_OPTIONAL_LOCKS=0", "git", "-c", "core.fsmonitor=false", "-C", folder,
                       "status", "--porcelain=v2", "--branch", "--untracked-files=no"]
        let status: String
        switch run(command, patience: patience, outputLimit: outputLimit) {
        case .finished(let output): status = output
        case .cutShort(let output): status = output
        case .timedOut:
            if !StopRequest.isSet {
                StandardStream.error.write(Data("emopipe: note: `git status` in \(folder.escaped) did not answer within \(Int(patience)) s: the run records no commit\n".utf8))
            }
            return nil
        case .failed: return nil
        }
        let lines = status.split(separator: "\n")
        guard let head = lines.first(where: { $0.hasPrefix("# branch.oid ") }) else { return nil }
        let commit = String(head.dropFirst("# branch.oid ".count))
        guard commit.count == 40 else { return nil }     // "(initial)": no commit yet
        return (commit, lines.contains { !$0.hasPrefix("#") })
    }

    enum Outcome: Equatable {
        /// Exited with status 0: its whole standard output.
        case finished(String)
        /// Stopped once its output passed the limit: what was read.
        case cutShort(String)
        case timedOut
        /// Could not start, or exited otherwise.
        case failed
    }

    /// Runs a program found on PATH in a process group of its own, reading its standard output for at
    /// most `patience` seconds and `outputLimit` bytes; past either, the group (the program and what it
    /// started) is killed, so nothing it left behind outlives the wait.
    static func run(_ arguments: [String], patience: TimeInterval, outputLimit: Int) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { return .failed }
        posix_spawn_file_actions_adddup2(&actions, pipe[1], STDOUT_FILENO)
        posix_spawn_file_actions_addclose(&actions, pipe[0])
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, environ)
        close(pipe[1])
        defer { close(pipe[0]) }
        guard started == 0 else { return .failed }
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(patience)
        var stopped: Outcome?
        while true {
            let remaining = deadline.timeIntervalSinceNow
            // Ctrl-C is the user's: the run stops now rather than after the wait (the group of its own hears no terminal signal).
            guard remaining > 0, !StopRequest.isSet else { stopped = .timedOut; break }
            var ready = pollfd(fd: pipe[0], events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, Int32(min(remaining, 0.1) * 1000) + 1)
            if polled < 0 && errno == EINTR { continue }
            if polled < 0 { break }
            if polled == 0 { continue }
            let n = read(pipe[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
            if output.count >= outputLimit { stopped = .cutShort(String(decoding: output, as: UTF8.self)); break }
        }
        var status: Int32 = 0
        // Its output ended: it exits now, unless it closed its output and went on (waited for only as long).
        while stopped == nil {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid || (waited < 0 && errno != EINTR) { return Self.outcome(status: status, output: output) }
            if deadline.timeIntervalSinceNow <= 0 || StopRequest.isSet { stopped = .timedOut } else { usleep(5_000) }
        }
        kill(-pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return stopped ?? .failed
    }

    private static func outcome(status: Int32, output: Data) -> Outcome {
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else { return .failed }   // exited, with status 0
        return .finished(String(decoding: output, as: UTF8.self))
    }
}

/// The running executable's SHA-256. Hashing a 50 MB binary costs most of a no-op run, so the
/// answer is remembered in a file, keyed by the executable's inode, size and mtime: a rebuilt
/// binary is a new file and is hashed again.
enum ExecutableIdentity {
    static func sha256(rememberedIn memo: String) -> String? {
        var info = stat()
        guard stat("/proc/self/exe", &info) == 0 else { return nil }
        let key = "\(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        if let line = try? RegularFile.text(memo, atMost: RegularFile.markerLimit),
           let separator = line.lastIndex(of: " "), line[..<separator] == key {
            return line[line.index(after: separator)...].trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let data = FileManager.default.contents(atPath: "/proc/self/exe") else { return nil }
        let digest = SHA256Hex.of(data)
        try? DurableFile.write(Data("\(key) \(digest)\n".utf8), to: memo)
        return digest
    }
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
