import Foundation

/// Opening a file that must be a regular one, for reading: anything else (a pipe, a device, a folder)
/// is refused once opened, without reading, and so is a file of /proc or /sys. Opening does not block (O_NONBLOCK), so a path that
/// became a pipe cannot hang the caller.
public enum RegularFile {
    /// The reason given for a path that is a folder, a pipe or a device.
    public static let notRegular = "not a regular file: not read"
    /// The reason given for a file of /proc or /sys.
    public static let kernelFile = "a file of the kernel's /proc or /sys filesystem, made as it is read: not read"

    /// The open descriptor (the caller closes it) and the file's size.
    public static func openForReading(_ path: String, failing verb: String = "open") throws -> (descriptor: Int32, size: Int64) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw EmoError.io(path: path, reason: "cannot \(verb): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw EmoError.io(path: path, reason: notRegular)
        }
        // Such a file says 0 bytes and is made as it is read: never a file EmoPipe wrote or a list a user made.
        guard !KernelFilesystem.holds(path: path, info) else {
            close(fd)
            throw EmoError.io(path: path, reason: kernelFile)
        }
        return (fd, Int64(info.st_size))
    }

    /// Whether the file is a regular one whose first bytes are `prefix` (a format's magic number); false
    /// for anything that cannot be opened or read so.
    public static func starts(_ path: String, with prefix: [UInt8]) -> Bool {
        guard let (descriptor, _) = try? openForReading(path) else { return false }
        defer { close(descriptor) }
        var head = [UInt8](repeating: 0, count: prefix.count)
        return Glibc.read(descriptor, &head, head.count) == prefix.count && head == prefix
    }

    /// The most `read` takes by default: more than any document EmoPipe writes (manifests, run
    /// descriptions, sweep states, reports) will ever hold, and far less than a damaged or planted file
    /// (a sparse one can claim terabytes) would make it allocate.
    public static let documentLimit = 256 << 20
    /// The most read of a one-line marker file (`worker.txt`, `executable.sha256`, ...).
    public static let markerLimit = 64 << 10

    /// The whole file, which must be a regular one of at most `limit` bytes (refused by its size, before
    /// anything is allocated). Errors name the path and the cause in words (Foundation's say "The
    /// operation could not be completed", or "permission" for a pipe).
    public static func read(_ path: String, atMost limit: Int = documentLimit) throws -> Data {
        let (fd, size) = try openForReading(path, failing: "read")
        defer { close(fd) }
        guard size <= Int64(limit) else {
            throw EmoError.io(path: path, reason: "it is \(size) bytes, more than the \(limit) read of such a file: not one EmoPipe wrote")
        }
        var data = Data(count: Int(size))
        var done = 0
        while done < data.count {
            let n = data.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw EmoError.io(path: path, reason: "cannot read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }   // cut short meanwhile: what is there
            done += n
        }
        return data.prefix(done)
    }

    /// The whole file as UTF-8 text (see `read`); nil when it is not UTF-8.
    public static func text(_ path: String, atMost limit: Int = documentLimit) throws -> String? {
        String(data: try read(path, atMost: limit), encoding: .utf8)
    }
}

extension stat {
    /// The modification time in nanoseconds since the epoch, as ingest records it.
    public var mtimeNanos: Int64 { Int64(st_mtim.tv_sec) * 1_000_000_000 + Int64(st_mtim.tv_nsec) }
}
