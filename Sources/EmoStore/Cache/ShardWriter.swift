import Foundation

/// Writes one immutable shard: records, then the index, then the header that points at it.
/// The file appears under its final name only after its bytes are durable (write to a temporary
/// name, fsync, rename, fsync the folder), so a crash never leaves a half-written shard visible.
enum ShardWriter {
    static func write(_ records: [TensorRecord], to path: String) throws -> [ShardEntry] {
        var body = Data()
        var entries: [ShardEntry] = []
        let zeros = Data(count: ShardFormat.alignment)
        func pad(_ data: inout Data, base: Int) {
            let end = base + data.count
            data.append(zeros.prefix(ShardFormat.aligned(end) - end))
        }
        for record in records {
            precondition(record.shape.count <= ShardFormat.maxRank, "rank above \(ShardFormat.maxRank)")
            precondition(record.shape.reduce(1, *) * record.dtype.byteSize == record.data.count,
                         "record \(record.key): shape \(record.shape) does not match \(record.data.count) bytes")
            let meta = Data(record.metadata.utf8)
            let metaOffset = ShardFormat.headerSize + body.count
            body.append(meta)
            pad(&body, base: ShardFormat.headerSize)
            let dataOffset = ShardFormat.headerSize + body.count
            body.append(record.data)
            pad(&body, base: ShardFormat.headerSize)
            let crc = meta.withUnsafeBytes { m in record.data.withUnsafeBytes { d in ShardFormat.crc(m, d) } }
            entries.append(ShardEntry(key: record.key, dtype: record.dtype, shape: record.shape, crc32c: crc,
                                      metaOffset: metaOffset, metaLength: meta.count,
                                      dataOffset: dataOffset, dataLength: record.data.count))
        }
        let index = encodeIndex(entries)
        let indexOffset = ShardFormat.headerSize + body.count
        var file = header(count: entries.count, indexOffset: indexOffset, index: index)
        file.append(body)
        file.append(index)
        try DurableFile.write(file, to: path, mode: 0o444)
        return entries
    }

    static func header(count: Int, indexOffset: Int, index: Data) -> Data {
        var h = Data(ShardFormat.magic)
        h.appendLE(ShardFormat.version)
        h.appendLE(UInt32(ShardFormat.headerSize))
        h.appendLE(UInt32(count))
        h.appendLE(UInt32(ShardFormat.alignment))
        h.appendLE(UInt64(indexOffset))
        h.appendLE(UInt64(index.count))
        h.appendLE(index.withUnsafeBytes { ShardFormat.crc($0) })
        h.append(Data(count: ShardFormat.headerSize - h.count))
        return h
    }

    static func encodeIndex(_ entries: [ShardEntry]) -> Data {
        var index = Data()
        for e in entries {
            var entry = Data(hexKey: e.key)
            entry.append(e.dtype.rawValue)
            entry.append(UInt8(e.shape.count))
            entry.appendLE(UInt16(0))
            for axis in 0..<ShardFormat.maxRank { entry.appendLE(UInt32(axis < e.shape.count ? e.shape[axis] : 0)) }
            entry.appendLE(e.crc32c)
            entry.appendLE(UInt64(e.metaOffset))
            entry.appendLE(UInt64(e.metaLength))
            entry.appendLE(UInt64(e.dataOffset))
            entry.appendLE(UInt64(e.dataLength))
            entry.append(Data(count: ShardFormat.entrySize - entry.count))
            index.append(entry)
        }
        return index
    }
}

extension Data {
    /// The 32 bytes of a SHA-256 written as 64 hex digits (zeros when the text is not such a digest).
    init(hexKey: String) {
        var bytes = [UInt8](repeating: 0, count: 32)
        let digits = Array(hexKey.utf8)
        if digits.count == 64 {
            func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
            for i in 0..<32 { bytes[i] = nibble(digits[2 * i]) << 4 | nibble(digits[2 * i + 1]) }
        }
        self.init(bytes)
    }
}
