import Crypto
import Foundation

/// SHA-256 helpers: streamed over files, and over bytes or strings.
///
///     let digest = try SHA256Hex.file(atPath: "/data/Actor_01/03-01-01-01-01-01-01.wav")
public enum SHA256Hex {
    /// A file refused by its size before it was hashed.
    public struct TooLarge: Error, CustomStringConvertible {
        public let path: String
        public let size: Int64
        public let limit: Int64
        public var description: String { "\(path.shownPath): is \(size) bytes, more than the \(limit) expected; not read" }
    }

    /// Hashes a regular file in 1 MiB reads, so memory stays flat whatever the file size. Anything else
    /// (a pipe, a device) is refused without reading (`RegularFile`): a pipe would block and /dev/zero never ends.
    /// A file that yields more bytes than its size on disk (one being written to, or a /proc file that
    /// says 0 bytes and reads for ever) is refused once its size is passed, so hashing always ends; one
    /// that gives fewer (cut while read) is refused at its end.
    /// `stopped` is asked between megabytes: a file of any size gives way to Ctrl-C (`EmoError.interrupted`).
    /// `atMost`: a file larger than this is no file its caller wrote, and is refused by its size (`TooLarge`), unread.
    public static func file(atPath path: String, atMost limit: Int64? = nil, stopped: () -> Bool = { false }) throws -> (hex: String, size: Int64) {
        let opened = try RegularFile.openForReading(path)
        let fd = opened.descriptor
        defer { close(fd) }
        if let limit, opened.size > limit { throw TooLarge(path: path, size: opened.size, limit: limit) }
        var hasher = SHA256()
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while true {
            if stopped() { throw EmoError.interrupted }
            let n = read(fd, buffer.baseAddress, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw EmoError.io(path: path, reason: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += Int64(n)
            if total > opened.size {
                throw EmoError.io(path: path, reason: "holds more bytes than its size on disk (\(opened.size)): "
                                  + "\(grewWhileRead), or is not a file of fixed size; not read")
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        // Fewer bytes than the file had when opened: it was cut while read, and the digest is of no version of it.
        guard total == opened.size else {
            throw EmoError.io(path: path, reason: "gave \(total) bytes but had \(opened.size) when opened: \(shrankWhileRead); not read")
        }
        return (hex(hasher.finalize()), total)
    }

    /// Words of the refusals of a file that changed size while hashed (ingest reads such a file again).
    public static let grewWhileRead = "it is being written to"
    public static let shrankWhileRead = "it shrank while being read"

    public static func of(_ data: Data) -> String { hex(SHA256.hash(data: data)) }
    public static func of(_ string: String) -> String { of(Data(string.utf8)) }

    /// Whether `text` is a digest as `of` writes it: 64 lower-case hexadecimal digits.
    public static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](); out.reserveCapacity(64)
        for byte in digest { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// SHA-256 over parts given one after another (text, arrays of numbers), each preceded by its length so that
/// no two sequences of parts give the same bytes; nothing is joined in memory first.
public struct SHA256Parts {
    private var hasher = SHA256()

    public init() {}

    public mutating func add(_ text: String) {
        let bytes = Array(text.utf8)
        add(bytes)
    }

    /// The values' bytes in memory order (little-endian on every platform EmoPipe builds for).
    public mutating func add<Value: BitwiseCopyable>(_ values: [Value]) {
        var count = UInt64(values.count).littleEndian
        withUnsafeBytes(of: &count) { hasher.update(bufferPointer: $0) }
        values.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    }

    public var hex: String { SHA256Hex.hex(hasher.finalize()) }
}
