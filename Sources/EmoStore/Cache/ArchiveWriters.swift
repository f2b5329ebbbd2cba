import EmoCore
import Foundation

/// The archive kinds `emopipe cache export` writes.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// NumPy's `.npz`: a zip of `.npy` entries (stored, not compressed), which `numpy.load` reads.
    case npz
    /// WebDataset-style shards: a POSIX ustar tar holding `<key>.npy` and `<key>.json` per record.
    case tar
}

/// One archive being written entry by entry to a file, never held whole in memory.
protocol ArchiveWriter {
    init(path: String) throws
    mutating func add(name: String, contents: Data) throws
    /// Writes what closes the archive (tar's end blocks, zip's central directory) and closes the file.
    mutating func finish() throws
    /// Bytes written so far.
    var size: Int { get }
}

/// Appends to a file, naming it in any error.
struct OutputFile {
    let path: String
    private let handle: FileHandle
    private(set) var size = 0

    init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CacheError.io(path: path, reason: "cannot create the file: \(String(cString: strerror(errno)))")
        }
        do { handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path)) } catch {
            throw CacheError.io(path: path, reason: "cannot open for writing: \(FileError.reason(of: error))")
        }
    }

    mutating func write(_ data: Data) throws {
        do { try handle.write(contentsOf: data) } catch {
            throw CacheError.io(path: path, reason: "cannot write: \(FileError.reason(of: error))")
        }
        size += data.count
    }

    func close() throws {
        do { try handle.synchronize(); try handle.close() } catch {
            throw CacheError.io(path: path, reason: "cannot finish writing: \(FileError.reason(of: error))")
        }
    }
}

/// POSIX ustar, the tar dialect Python's `tarfile` and WebDataset read. Every header field that
/// could vary between machines (owner, time) is fixed, so the same records give the same bytes.
struct TarWriter: ArchiveWriter {
    static let block = 512
    /// ustar's size field holds 11 octal digits.
    static let maxEntrySize = (1 << 33) - 1
    private var file: OutputFile

    init(path: String) throws { file = try OutputFile(path: path) }

    var size: Int { file.size }

    mutating func add(name: String, contents: Data) throws {
        guard name.utf8.count < 100, contents.count <= Self.maxEntrySize else {
            throw CacheError.io(path: file.path, reason: "entry \(name) (\(contents.count) bytes) does not fit a ustar header")
        }
        try file.write(Self.header(name: name, size: contents.count))
        try file.write(contents)
        try file.write(Data(count: Self.padding(contents.count)))
    }

    mutating func finish() throws {
        try file.write(Data(count: 2 * Self.block))  // the end-of-archive marker
        try file.close()
    }

    static func padding(_ count: Int) -> Int { (block - count % block) % block }

    static func header(name: String, size: Int) -> Data {
        var h = [UInt8](repeating: 0, count: block)
        func put(_ text: String, at offset: Int) { for (i, byte) in text.utf8.enumerated() { h[offset + i] = byte } }
        func octal(_ value: Int, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(name, at: 0)
        put(octal(0o644, width: 8), at: 100)   // mode
        put(octal(0, width: 8), at: 108)       // uid
        put(octal(0, width: 8), at: 116)       // gid
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)      // mtime: fixed, for byte-identical exports
        h[156] = UInt8(ascii: "0")             // a regular file
        put("ustar", at: 257)
        put("00", at: 263)
        // The checksum is summed with its own field read as spaces.
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(sum, width: 7), at: 148)
        h[155] = UInt8(ascii: " ")
        return Data(h)
    }
}

/// A zip whose entries are stored uncompressed (method 0): `.npy` tensors hardly compress and
/// NumPy reads stored entries without inflating. No zip64: the caller keeps each file under
/// `maxSize` and `maxEntries`.
struct StoredZipWriter: ArchiveWriter {
    static let maxSize = Int(UInt32.max) - (1 << 20)
    static let maxEntries = Int(UInt16.max)
    /// 1980-01-01 00:00 in MS-DOS form: a fixed time, for byte-identical exports.
    static let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1
    private var file: OutputFile
    private var central = Data()
    private var entries = 0

    init(path: String) throws { file = try OutputFile(path: path) }

    var size: Int { file.size }

    mutating func add(name: String, contents: Data) throws {
        let name = Data(name.utf8)
        guard entries < Self.maxEntries, file.size + 30 + name.count + contents.count <= Self.maxSize else {
            throw CacheError.io(path: file.path, reason: "more than a zip without zip64 holds")
        }
        let crc = CRC32.of(contents)
        let offset = UInt32(file.size)
        var local = Data()
        local.appendLE(UInt32(0x0403_4b50))
        appendCommonFields(&local, crc: crc, size: contents.count, nameLength: name.count)
        local.append(name)
        try file.write(local)
        try file.write(contents)

        central.appendLE(UInt32(0x0201_4b50))
        central.appendLE(UInt16(20))           // made by: version 2.0, MS-DOS attributes
        appendCommonFields(&central, crc: crc, size: contents.count, nameLength: name.count)
        central.appendLE(UInt16(0))            // comment length
        central.appendLE(UInt16(0))            // disk number
        central.appendLE(UInt16(0))            // internal attributes
        central.appendLE(UInt32(0))            // external attributes
        central.appendLE(offset)
        central.append(name)
        entries += 1
    }

    /// The fields the local header and the central directory entry share, from "version needed" on.
    private func appendCommonFields(_ data: inout Data, crc: UInt32, size: Int, nameLength: Int) {
        data.appendLE(UInt16(20))              // version needed
        data.appendLE(UInt16(0))               // flags
        data.appendLE(UInt16(0))               // method: stored
        data.appendLE(UInt16(0))               // time
        data.appendLE(Self.dosDate)
        data.appendLE(crc)
        data.appendLE(UInt32(size))            // compressed size
        data.appendLE(UInt32(size))            // uncompressed size
        data.appendLE(UInt16(nameLength))
        data.appendLE(UInt16(0))               // extra field length
    }

    mutating func finish() throws {
        let centralOffset = file.size
        guard centralOffset + central.count + 22 <= Int(UInt32.max) else {
            throw CacheError.io(path: file.path, reason: "more than a zip without zip64 holds")
        }
        var end = Data()
        end.appendLE(UInt32(0x0605_4b50))
        end.appendLE(UInt16(0))                // this disk
        end.appendLE(UInt16(0))                // the central directory's disk
        end.appendLE(UInt16(entries))
        end.appendLE(UInt16(entries))
        end.appendLE(UInt32(central.count))
        end.appendLE(UInt32(centralOffset))
        end.appendLE(UInt16(0))                // comment length
        try file.write(central)
        try file.write(end)
        try file.close()
    }
}

/// CRC-32 as zip defines it (reflected polynomial 0xEDB88320); shards use CRC-32C, a different code.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        return c
    }

    static func of(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        data.withUnsafeBytes { bytes in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return ~crc
    }
}
