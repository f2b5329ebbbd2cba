import CGuardedRead
import Foundation

/// A shard mapped read-only into memory. Records are copied out of the mapping through reads that
/// survive the file being cut short by another process meanwhile (which would otherwise kill this
/// one with SIGBUS): such a read is a `badShard` error naming the file.
///
///     let shard = try ShardFile(path: path)
///     for entry in shard.entries { let bytes = try shard.data(entry) ... }
public final class ShardFile: @unchecked Sendable {
    public let path: String
    public let entries: [ShardEntry]
    private let base: UnsafeMutableRawPointer
    private let length: Int

    public init(path: String) throws {
        self.path = path
        // Non-blocking: opening a FIFO put in a shard's place would otherwise wait for a writer forever.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno, reason = "cannot open: \(String(cString: strerror(code)))"
            // A shard the index names but that is gone is damage to the cache, repaired by `cache verify`.
            if code == ENOENT || code == ENOTDIR { throw CacheError.badShard(path: path, reason: "the file is gone (deleted, or the work directory was moved or copied without it)") }
            throw code == EACCES || code == EPERM ? CacheError.denied(path: path, reason: reason) : CacheError.io(path: path, reason: reason)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CacheError.io(path: path, reason: "cannot stat") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw CacheError.badShard(path: path, reason: "not a regular file") }
        length = Int(info.st_size)
        guard length >= ShardFormat.headerSize else { throw CacheError.badShard(path: path, reason: "shorter than its header") }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw CacheError.io(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
        do {
            let mapping = UnsafeRawBufferPointer(start: mapped, count: length)
            entries = try Self.readIndex(fileLength: length, path: path) { range in try Self.copy(mapping, range, as: UInt8.self, path: path) }
        } catch {
            munmap(mapped, length)
            throw error
        }
    }

    deinit { munmap(base, length) }

    private var mapping: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

    /// The tensor's bytes, copied out of the mapping.
    public func data(_ entry: ShardEntry) throws -> Data {
        Data(try Self.copy(mapping, entry.dataOffset..<(entry.dataOffset + entry.dataLength), as: UInt8.self, path: path))
    }

    /// A float32 tensor's elements, copied out of the mapping.
    public func floats(_ entry: ShardEntry) throws -> [Float] {
        guard entry.dtype == .float32 else {
            throw CacheError.badShard(path: path, reason: "record for source \(entry.key.escaped) is \(entry.dtype.name), not float32")
        }
        return try Self.copy(mapping, entry.dataOffset..<(entry.dataOffset + entry.dataLength), as: Float.self, path: path)
    }

    public func metadata(_ entry: ShardEntry) throws -> String {
        String(decoding: try Self.copy(mapping, entry.metaOffset..<(entry.metaOffset + entry.metaLength), as: UInt8.self, path: path), as: UTF8.self)
    }

    /// Whether the record's metadata and data still match the CRC-32C written with them.
    public func verify(_ entry: ShardEntry) throws -> Bool {
        var crc: UInt32 = 0
        for range in [entry.metaOffset..<(entry.metaOffset + entry.metaLength), entry.dataOffset..<(entry.dataOffset + entry.dataLength)]
        where !range.isEmpty {
            guard emo_guarded_crc32c(crc, base + range.lowerBound, range.count, &crc) == 0 else { throw Self.cutShort(path) }
        }
        return crc == entry.crc32c
    }

    /// The elements in a range of the mapping (whole elements), copied; a page the file no longer reaches
    /// is a `badShard` error.
    private static func copy<Element: AdditiveArithmetic>(_ mapping: UnsafeRawBufferPointer, _ range: Range<Int>, as: Element.Type,
                                                          path: String) throws -> [Element] {
        let count = range.count / MemoryLayout<Element>.stride
        var failed = false
        let values = [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            failed = count > 0 && emo_guarded_copy(buffer.baseAddress, mapping.baseAddress! + range.lowerBound,
                                                   count * MemoryLayout<Element>.stride) != 0
            // Zeros where the copy stopped: the array is thrown away with the error, but must be initialised.
            if failed { buffer.initialize(repeating: .zero) }
            initialized = count
        }
        if failed { throw cutShort(path) }
        return values
    }

    private static func cutShort(_ path: String) -> CacheError {
        .badShard(path: path, reason: "its bytes could not be read: the file was cut short while open "
                  + "(by another process), or the disk failed to read it")
    }

    /// Reads and checks the header and every index entry. Every number in the file is untrusted:
    /// offsets and lengths are u64 fields that may not fit an Int, their sums may overflow, and a
    /// shape's element count may overflow when multiplied out (all found by `make fuzz`), so each is
    /// checked without trapping and a damaged or hostile file is a `badShard` error.
    private static func readIndex(fileLength: Int, path: String, read: (Range<Int>) throws -> [UInt8]) throws -> [ShardEntry] {
        func bad(_ why: String) -> CacheError { .badShard(path: path, reason: why) }
        let header = try read(0..<ShardFormat.headerSize)
        guard Array(header[0..<8]) == ShardFormat.magic else { throw bad("wrong magic") }
        let (count, indexOffset, indexLength, indexCRC) = try header.withUnsafeBytes { file in
            let version = file.loadLE(UInt32.self, at: 8)
            guard version == ShardFormat.version else { throw bad("version \(version), this emopipe reads \(ShardFormat.version)") }
            // Fixed by the format: typed views of a tensor need its offset aligned (checked per entry below).
            let (headerSize, alignment) = (file.loadLE(UInt32.self, at: 12), file.loadLE(UInt32.self, at: 20))
            guard headerSize == ShardFormat.headerSize, alignment == ShardFormat.alignment else {
                throw bad("header size \(headerSize) and alignment \(alignment); version \(version) has \(ShardFormat.headerSize) and \(ShardFormat.alignment)")
            }
            let count = Int(file.loadLE(UInt32.self, at: 16))
            guard count <= ShardFormat.maxRecords else {
                throw bad("its header claims \(count) records; a shard holds at most \(ShardFormat.maxRecords)")
            }
            guard let indexOffset = Int(exactly: file.loadLE(UInt64.self, at: 24)),
                  let indexLength = Int(exactly: file.loadLE(UInt64.self, at: 32)),
                  indexLength == count * ShardFormat.entrySize,
                  fits(indexOffset, indexLength, from: ShardFormat.headerSize, to: fileLength) else {
                throw bad("index of \(count) entries does not fit in \(fileLength) bytes")
            }
            return (count, indexOffset, indexLength, file.loadLE(UInt32.self, at: 40))
        }
        // The writer ends the file with the index: bytes after it (a file grown or padded since) are no shard's.
        guard indexOffset + indexLength == fileLength else {
            throw bad("\(fileLength - indexOffset - indexLength) bytes follow its index, which ends a shard")
        }
        let indexBytes = try read(indexOffset..<(indexOffset + indexLength))
        return try indexBytes.withUnsafeBytes { index in
            guard ShardFormat.crc(index) == indexCRC else { throw bad("index fails its CRC-32C check") }
            return try (0..<count).map { i in try entry(i, of: index, recordsEnd: indexOffset, bad: bad) }
        }
    }

    /// Index entry `i`, its numbers checked against the records' extent.
    private static func entry(_ i: Int, of index: UnsafeRawBufferPointer, recordsEnd: Int, bad: (String) -> CacheError) throws -> ShardEntry {
        let at = i * ShardFormat.entrySize
        let key = index[at..<(at + 32)].map { String(format: "%02x", $0) }.joined()
        guard let dtype = DType(rawValue: index[at + 32]) else { throw bad("entry \(i): unknown dtype \(index[at + 32])") }
        let rank = Int(index[at + 33])
        guard rank <= ShardFormat.maxRank else { throw bad("entry \(i): rank \(rank)") }
        let shape = (0..<rank).map { Int(index.loadLE(UInt32.self, at: at + 36 + 4 * $0)) }
        // Records lie between the header and the index.
        guard let metaOffset = Int(exactly: index.loadLE(UInt64.self, at: at + 64)),
              let metaLength = Int(exactly: index.loadLE(UInt64.self, at: at + 72)),
              let dataOffset = Int(exactly: index.loadLE(UInt64.self, at: at + 80)),
              let dataLength = Int(exactly: index.loadLE(UInt64.self, at: at + 88)),
              fits(metaOffset, metaLength, from: ShardFormat.headerSize, to: recordsEnd),
              fits(dataOffset, dataLength, from: ShardFormat.headerSize, to: recordsEnd) else {
            throw bad("entry \(i) points outside the records")
        }
        guard dataOffset % ShardFormat.alignment == 0 else {
            throw bad("entry \(i): tensor offset \(dataOffset) is not a multiple of \(ShardFormat.alignment)")
        }
        guard let expected = byteCount(shape, dtype), dataLength == expected else {
            throw bad("entry \(i): \(dataLength) bytes disagree with shape \(shape) of \(dtype.name)")
        }
        return ShardEntry(key: key, dtype: dtype, shape: shape, crc32c: index.loadLE(UInt32.self, at: at + 60),
                          metaOffset: metaOffset, metaLength: metaLength, dataOffset: dataOffset, dataLength: dataLength)
    }

    /// Whether `offset ..< offset + length` lies within `lower ..< upper`, computed without overflow.
    private static func fits(_ offset: Int, _ length: Int, from lower: Int, to upper: Int) -> Bool {
        offset >= lower && offset <= upper && length <= upper - offset
    }

    /// The bytes a tensor of this shape and type takes, or nil when the product overflows.
    private static func byteCount(_ shape: [Int], _ dtype: DType) -> Int? {
        var bytes = dtype.byteSize
        for axis in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: axis)
            if overflow { return nil }
            bytes = product
        }
        return bytes
    }
}
