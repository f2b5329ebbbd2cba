import EmoCore
import EmoTestSupport
import Foundation
import Testing
@testable import EmoStore

/// Shards with hostile numbers, as `make fuzz` found them: each used to trap inside
/// `ShardFile.readIndex` (a u64 field converted to Int, an offset plus a length, a shape multiplied
/// out) and so kill the process. Each case is the smallest one: a one-record shard with one field
/// changed and, where the check sits behind it, the index CRC recomputed.
@Suite("shard reader on hostile numbers")
struct ShardFuzzFindingsTests {
    let folder: String
    /// A one-record shard (float32 [2, 3], 8 bytes of metadata) as the cache writes it.
    let pristine: [UInt8]
    let indexOffset: Int

    init() throws {
        folder = try TestSupport.temporaryFolder("shard-fuzz")
        let record = TensorRecord(key: SHA256Hex.of("one"), float32: [1, 2, 3, 4, 5, 6], shape: [2, 3], metadata: "{\"a\":1}")
        _ = try ShardWriter.write([record], to: folder + "/pristine.shard")
        pristine = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/pristine.shard")))
        indexOffset = Int(pristine.withUnsafeBytes { $0.loadLE(UInt64.self, at: 24) })
    }

    /// The pristine shard with u64 fields overwritten (offsets from the start of the file), its index
    /// CRC recomputed, written to a new file; that file's path.
    private func shard(_ name: String, u64 fields: [Int: UInt64] = [:], u32 fields32: [Int: UInt32] = [:],
                       bytes: [Int: UInt8] = [:]) throws -> String {
        var b = pristine
        for (at, value) in fields { withUnsafeBytes(of: value.littleEndian) { b.replaceSubrange(at..<(at + 8), with: $0) } }
        for (at, value) in fields32 { withUnsafeBytes(of: value.littleEndian) { b.replaceSubrange(at..<(at + 4), with: $0) } }
        for (at, value) in bytes { b[at] = value }
        if indexOffset + 128 <= b.count {
            let crc = b.withUnsafeBytes { ShardFormat.crc(UnsafeRawBufferPointer(rebasing: $0[indexOffset..<(indexOffset + 128)])) }
            withUnsafeBytes(of: crc.littleEndian) { b.replaceSubrange(40..<44, with: $0) }
        }
        let path = folder + "/\(name).shard"
        try Data(b).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func expectBad(_ path: String, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: CacheError.badShard(path: path, reason: reason), sourceLocation: sourceLocation) {
            _ = try ShardFile(path: path)
        }
    }

    @Test func thePristineShardReadsBack() throws {
        let shard = try ShardFile(path: try shard("pristine-copy"))
        #expect(try shard.entries.count == 1 && shard.verify(shard.entries[0]))
    }

    @Test func headerOffsetsAboveIntMaxAreRejected() throws {
        let size = pristine.count
        expectBad(try shard("index-offset", u64: [24: 1 << 63]), "index of 1 entries does not fit in \(size) bytes")
        expectBad(try shard("index-length", u64: [32: .max]), "index of 1 entries does not fit in \(size) bytes")
    }

    /// A shard grown past its index (a file padded with zeros, its index row's size edited to match)
    /// was read and verified as sound, and merged whole.
    @Test func bytesAfterTheIndexAreRejected() throws {
        let path = folder + "/padded.shard"
        try Data(pristine + [UInt8](repeating: 0, count: 100)).write(to: URL(fileURLWithPath: path))
        expectBad(path, "100 bytes follow its index, which ends a shard")
    }

    @Test func recordOffsetsAboveIntMaxOrWrappingAroundAreRejected() throws {
        let entry = indexOffset
        expectBad(try shard("data-offset", u64: [entry + 80: 1 << 63]), "entry 0 points outside the records")
        expectBad(try shard("meta-length", u64: [entry + 72: .max]), "entry 0 points outside the records")
        // Each fits an Int; their sum does not.
        expectBad(try shard("meta-wraps", u64: [entry + 64: 0x7FFF_FFFF_FFFF_FFC0, entry + 72: 0x80]),
                  "entry 0 points outside the records")
        expectBad(try shard("data-wraps", u64: [entry + 80: 0x4000_0000_0000_0000, entry + 88: 0x4000_0000_0000_0000]),
                  "entry 0 points outside the records")
        // Records live between the header and the index: not in the header, not in the index.
        expectBad(try shard("meta-in-header", u64: [entry + 64: 0]), "entry 0 points outside the records")
        expectBad(try shard("data-in-index", u64: [entry + 80: UInt64(entry)]), "entry 0 points outside the records")
    }

    @Test func aShapeWhoseElementCountOverflowsIsRejected() throws {
        let entry = indexOffset
        var dims: [Int: UInt32] = [:]
        for axis in 0..<6 { dims[entry + 36 + 4 * axis] = 0xFFFF_FFFF }
        let path = try shard("shape-overflow", u32: dims, bytes: [entry + 33: 6])
        let shape = Array(repeating: "4294967295", count: 6).joined(separator: ", ")
        expectBad(path, "entry 0: 24 bytes disagree with shape [\(shape)] of float32")
    }
    /// The format fixes the header size and the alignment; a tensor off its 64-byte boundary cannot be
    /// viewed as its element type, so a misaligned offset is refused, not read.
    @Test func aHeaderOrTensorOffsetOffTheFormatsAlignmentIsRefused() throws {
        expectBad(try shard("header-size", u32: [12: 128]), "header size 128 and alignment 64; version 1 has 64 and 64")
        expectBad(try shard("alignment", u32: [20: 4]), "header size 64 and alignment 4; version 1 has 64 and 64")
        let dataOffset = Int(pristine.withUnsafeBytes { $0.loadLE(UInt64.self, at: indexOffset + 80) })
        // One byte on: still inside the records, so only the alignment check can refuse it.
        let path = try shard("misaligned", u64: [indexOffset + 80: UInt64(dataOffset + 1)])
        expectBad(path, "entry 0: tensor offset \(dataOffset + 1) is not a multiple of 64")
        #expect(try ShardFile(path: try shard("pristine-again")).entries.count == 1)
    }

    /// A header claiming more records than any writer makes is refused before its index is read: a
    /// sparse file of any size holds such an index, and reading it (for its CRC) took gigabytes.
    @Test func aHeaderClaimingMoreRecordsThanAnyShardHoldsIsRefusedUnread() throws {
        let count = UInt32(ShardFormat.maxRecords + 1)
        let path = try shard("many", u64: [32: UInt64(count) * 128], u32: [16: count])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(indexOffset) + UInt64(count) * 128 + 1024)  // sparse: the claimed index fits
        try handle.close()
        let error = try #require(throws: CacheError.self) { try ShardFile(path: path) }
        #expect("\(error)".contains("claims \(count) records"), "\(error)")
    }
}
