import EmoCore
import Foundation

/// Writes a file so that it appears under its name only complete and durable: a temporary name,
/// fsync, rename, then fsync of the folder so the rename itself survives a power cut.
public enum DurableFile {
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        try data.withUnsafeBytes { try write(bytes: $0, to: path, mode: mode) }
    }

    /// The same for bytes in place (a memory-mapped file's, copied without a second copy in memory).
    public static func write(bytes raw: UnsafeRawBufferPointer, to path: String, mode: mode_t = 0o644) throws {
        let temporary = temporaryName(for: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CacheError.io(path: temporary, reason: "cannot create: \(String(cString: strerror(errno)))") }
        var failure: String?
        var done = 0
        while done < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 { if errno == EINTR { continue }; failure = String(cString: strerror(errno)); break }
            done += n
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        close(fd)
        if let failure {
            unlink(temporary)
            throw CacheError.io(path: path, reason: "cannot write: \(failure)")
        }
        guard rename(temporary, path) == 0 else {
            let failure = errno
            unlink(temporary)
            throw publishError(path, failure)
        }
        Folder.syncEntries(holding: path)
    }

    /// Copies the regular file `source` to `path` the same way, read in chunks (never whole in memory,
    /// never mapped: a source cut short meanwhile is a short copy, not a crash). `check` sees the copy
    /// under its temporary name before it is published: checking the copy, not the source, means bytes
    /// changed after a check cannot slip in.
    /// With `bytes`, a source of another size is refused before anything is written, and one that
    /// grows while it is read is cut off there (its check then fails).
    /// `mode`: the copy's permissions (0o444 for a shard, which is never written again).
    public static func copy(from source: String, to path: String, bytes expected: Int? = nil, mode: mode_t = 0o644,
                            check: (String) throws -> Void) throws {
        let opened = try RegularFile.openForReading(source)
        let input = opened.descriptor
        defer { close(input) }
        if let expected, opened.size != Int64(expected) {
            throw CacheError.io(path: source, reason: "is \(opened.size) bytes where its database row says \(expected); not copied")
        }
        var remaining = expected ?? Int.max
        let temporary = temporaryName(for: path)
        // Written owner-only and given `mode` once whole: a read-only mode at creation would make a temporary
        // a killed copy left (same pid, another user) impossible to open again.
        unlink(temporary)
        let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard output >= 0 else { throw CacheError.io(path: temporary, reason: "cannot create: \(String(cString: strerror(errno)))") }
        var failure: String?
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        copying: while failure == nil {
            let got = buffer.withUnsafeMutableBytes { Foundation.read(input, $0.baseAddress, min($0.count, remaining)) }
            if got < 0 { if errno == EINTR { continue }; failure = "cannot read \(source): \(String(cString: strerror(errno)))"; break }
            if got == 0 { break }
            remaining -= got
            var done = 0
            while done < got {
                let n = buffer.withUnsafeBytes { Foundation.write(output, $0.baseAddress! + done, got - done) }
                if n < 0 { if errno == EINTR { continue }; failure = String(cString: strerror(errno)); break copying }
                done += n
            }
        }
        if failure == nil && fchmod(output, mode) != 0 { failure = "cannot set its permissions: \(String(cString: strerror(errno)))" }
        if failure == nil && fsync(output) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        close(output)
        do {
            if let failure { throw CacheError.io(path: path, reason: "cannot write: \(failure)") }
            try check(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let failure = errno
            unlink(temporary)
            throw publishError(path, failure)
        }
        Folder.syncEntries(holding: path)
    }

    /// Why the rename onto `path` failed, said so that the user knows what to move.
    private static func publishError(_ path: String, _ failure: Int32) -> CacheError {
        guard failure != EISDIR else {
            return .io(path: path, reason: "is a folder where a file should be: move or remove it")
        }
        return .io(path: path, reason: "cannot publish: \(String(cString: strerror(failure)))")
    }

    /// The temporary name `write` and `copy` use for `path` in this process.
    static func temporaryName(for path: String) -> String { path + partMarker + "\(getpid())" }
    private static let partMarker = ".part-"

    /// A file a write that never finished left behind: `<name>.part-<pid>` of a process that is gone,
    /// or Foundation's atomic-write temporary (`.dat.nosync…`, which names no process: only for callers
    /// that hold the work-directory lock, under which no run writes).
    public static func isLeftover(name: String) -> Bool {
        if name.hasPrefix(".dat.nosync") { return true }
        guard let marker = name.range(of: partMarker, options: .backwards), let pid = Int32(name[marker.upperBound...]) else { return false }
        return processIsGone(pid)
    }

    /// No process with this id is alive (in this PID namespace), and it is not this one.
    static func processIsGone(_ pid: Int32) -> Bool {
        pid > 0 && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
    }
}
