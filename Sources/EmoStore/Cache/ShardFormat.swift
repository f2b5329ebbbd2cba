import CCRC32C
import EmoCore
import Foundation

/// Element types a cached tensor may have.
public enum DType: UInt8, Codable, Sendable, CaseIterable {
    case float32 = 1, uint8 = 2, int32 = 3, float64 = 4

    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .uint8: return 1
        case .float64: return 8
        }
    }

    public var name: String { String(describing: self) }

    /// NumPy's type string (little-endian), for `.npy` output.
    public var numpyDescriptor: String {
        switch self {
        case .float32: return "<f4"
        case .uint8: return "|u1"
        case .int32: return "<i4"
        case .float64: return "<f8"
        }
    }
}

/// One tensor to cache: keyed by the SHA-256 of the source it was computed from.
public struct TensorRecord: Equatable, Sendable {
    public var key: String
    public var dtype: DType
    public var shape: [Int]
    /// The elements, little-endian, row-major.
    public var data: Data
    /// Canonical JSON (sorted keys) with the record's own facts, e.g. real frames and duration.
    public var metadata: String

    public init(key: String, dtype: DType, shape: [Int], data: Data, metadata: String) {
        self.key = key; self.dtype = dtype; self.shape = shape; self.data = data; self.metadata = metadata
    }

    public init(key: String, float32 values: [Float], shape: [Int], metadata: String) {
        self.init(key: key, dtype: .float32, shape: shape,
                  data: values.withUnsafeBufferPointer { Data(buffer: $0) }, metadata: metadata)
    }
}

/// Where one record sits in its shard (the index entry).
public struct ShardEntry: Equatable, Sendable {
    public var key: String
    public var dtype: DType
    public var shape: [Int]
    public var crc32c: UInt32
    public var metaOffset: Int
    public var metaLength: Int
    public var dataOffset: Int
    public var dataLength: Int

    /// The shape as the index's `shapeJSON` column holds it (`[64,434]`).
    public var shapeJSON: String { "[" + shape.map(String.init).joined(separator: ",") + "]" }
}

/// The on-disk shard layout; `docs/cache-format.md` is its specification.
enum ShardFormat {
    static let magic = Array("EMOSHARD".utf8)
    static let version: UInt32 = 1
    static let headerSize = 64
    static let alignment = 64
    static let entrySize = 128
    /// More records than any writer puts in one shard (publishing batches at most a few hundred): a
    /// header claiming more is damaged, and is refused before its index (128 bytes each) is read.
    static let maxRecords = 1 << 20
    static let maxRank = 6

    static func aligned(_ n: Int) -> Int { n.clampedAdding(alignment - 1) / alignment * alignment }

    /// The size of a shard `ShardWriter` writes with records of these metadata and tensor lengths:
    /// the header, each part padded to the alignment, and one index entry per record.
    static func fileSize(records: [(metaLength: Int, dataLength: Int)]) -> Int {
        // Clamped: the lengths may come from an edited database row.
        records.reduce(headerSize) { $0.clampedAdding(aligned($1.metaLength)).clampedAdding(aligned($1.dataLength)).clampedAdding(entrySize) }
    }

    static func crc(_ parts: UnsafeRawBufferPointer...) -> UInt32 {
        var value: UInt32 = 0
        for part in parts where part.count > 0 { value = crc32c_extend(value, part.baseAddress, part.count) }
        return value
    }
}

/// Little-endian field access for headers and index entries.
extension Data {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// Errors of the cache; each names the file and what is wrong.
public enum CacheError: Error, Equatable, CustomStringConvertible, Sendable {
    case badShard(path: String, reason: String)
    case damagedRecord(path: String, key: String)
    case missing(String)
    /// A record the index lists in a shard it does not list: an edit or damage of the index itself.
    case danglingRecord(key: String, shardId: Int64)
    case io(path: String, reason: String)
    /// The file is there but this process may not read it: the environment's problem, not damage.
    case denied(path: String, reason: String)

    public var description: String {
        switch self {
        case .badShard(let path, let reason): return "\(path.shownPath): not a valid shard: \(reason)"
        case .damagedRecord(let path, let key): return "\(path.shownPath): record for source \(key.escaped) fails its CRC-32C check"
        case .missing(let what): return what
        case .danglingRecord(let key, let shardId):
            return "the cache index lists the record for source \(key.escaped) in shard \(shardId), which it does not list (edited or damaged)"
        case .io(let path, let reason), .denied(let path, let reason): return "\(path.shownPath): \(reason)"
        }
    }

    /// What to do about damage met while reading records; nil for the other errors.
    public var repair: String? {
        switch self {
        case .damagedRecord, .badShard, .danglingRecord: return "`emopipe cache verify` drops damaged records and the next run computes them again"
        case .missing, .io, .denied: return nil
        }
    }
}
