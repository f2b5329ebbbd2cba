import Foundation

/// A shard mapped read-only into memory. Views into it are valid while the `ShardFile` lives;
/// nothing is copied until a caller copies.
///
///     let shard = try ShardFile(path: path)
///     for entry in shard.entries { let bytes = shard.data(entry) ... }
public final class ShardFile: @unchecked Sendable {
    public let path: String
    public let entries: [ShardEntry]
    private let base: UnsafeMutableRawPointer
    private let length: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CacheError.io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CacheError.io(path: path, reason: "cannot stat") }
        length = Int(info.st_size)
        guard length >= ShardFormat.headerSize else { throw CacheError.badShard(path: path, reason: "shorter than its header") }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw CacheError.io(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
        do { entries = try Self.readIndex(UnsafeRawBufferPointer(start: mapped, count: length), path: path) } catch {
            munmap(mapped, length)
            throw error
        }
    }

    deinit { munmap(base, length) }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

    /// The tensor's bytes, in place.
    public func data(_ entry: ShardEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[entry.dataOffset..<(entry.dataOffset + entry.dataLength)])
    }

    public func metadata(_ entry: ShardEntry) -> String {
        String(decoding: bytes[entry.metaOffset..<(entry.metaOffset + entry.metaLength)], as: UTF8.self)
    }

    /// Whether the record's metadata and data still match the CRC-32C written with them.
    public func verify(_ entry: ShardEntry) -> Bool {
        let meta = UnsafeRawBufferPointer(rebasing: bytes[entry.metaOffset..<(entry.metaOffset + entry.metaLength)])
        return ShardFormat.crc(meta, data(entry)) == entry.crc32c
    }

    private static func readIndex(_ file: UnsafeRawBufferPointer, path: String) throws -> [ShardEntry] {
        func bad(_ why: String) -> CacheError { .badShard(path: path, reason: why) }
        guard Array(file[0..<8]) == ShardFormat.magic else { throw bad("wrong magic") }
        let version = file.loadLE(UInt32.self, at: 8)
        guard version == ShardFormat.version else { throw bad("version \(version), this emopipe reads \(ShardFormat.version)") }
        let count = Int(file.loadLE(UInt32.self, at: 16))
        let indexOffset = Int(file.loadLE(UInt64.self, at: 24))
        let indexLength = Int(file.loadLE(UInt64.self, at: 32))
        guard indexLength == count * ShardFormat.entrySize, indexOffset >= ShardFormat.headerSize,
              indexOffset <= file.count, indexLength <= file.count - indexOffset else {
            throw bad("index of \(count) entries does not fit in \(file.count) bytes")
        }
        let index = UnsafeRawBufferPointer(rebasing: file[indexOffset..<(indexOffset + indexLength)])
        guard ShardFormat.crc(index) == file.loadLE(UInt32.self, at: 40) else { throw bad("index fails its CRC-32C check") }
        return try (0..<count).map { i in
            let at = i * ShardFormat.entrySize
            let key = index[at..<(at + 32)].map { String(format: "%02x", $0) }.joined()
            guard let dtype = DType(rawValue: index[at + 32]) else { throw bad("entry \(i): unknown dtype \(index[at + 32])") }
            let rank = Int(index[at + 33])
            guard rank <= ShardFormat.maxRank else { throw bad("entry \(i): rank \(rank)") }
            let shape = (0..<rank).map { Int(index.loadLE(UInt32.self, at: at + 36 + 4 * $0)) }
            let entry = ShardEntry(
                key: key, dtype: dtype, shape: shape, crc32c: index.loadLE(UInt32.self, at: at + 60),
                metaOffset: Int(index.loadLE(UInt64.self, at: at + 64)), metaLength: Int(index.loadLE(UInt64.self, at: at + 72)),
                dataOffset: Int(index.loadLE(UInt64.self, at: at + 80)), dataLength: Int(index.loadLE(UInt64.self, at: at + 88)))
            guard entry.metaOffset + entry.metaLength <= indexOffset, entry.dataOffset + entry.dataLength <= indexOffset,
                  entry.dataLength == shape.reduce(1, *) * dtype.byteSize else {
                throw bad("entry \(i) points outside the records or disagrees with its shape")
            }
            return entry
        }
    }
}
