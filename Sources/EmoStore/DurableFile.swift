import Foundation

/// Writes a file so that it appears under its name only complete and durable: a temporary name,
/// fsync, rename, then fsync of the folder so the rename itself survives a power cut.
public enum DurableFile {
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        try data.withUnsafeBytes { try write(bytes: $0, to: path, mode: mode) }
    }

    /// The same for bytes in place (a memory-mapped file's, copied without a second copy in memory).
    public static func write(bytes raw: UnsafeRawBufferPointer, to path: String, mode: mode_t = 0o644) throws {
        let temporary = path + ".part-\(getpid())"
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
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CacheError.io(path: path, reason: "cannot publish: \(reason)")
        }
        syncFolder(of: path)
    }

    static func syncFolder(of path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
