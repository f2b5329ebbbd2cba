// `shard`: ShardFile on mutated shards — open (header and index checks), then every entry's
// metadata and tensor bytes read in place, its CRC verified and its .npy encoding made, as
// `emopipe cache verify` and `cache get` do. Header and index edits usually come with their
// CRC-32C recomputed, so the checks behind the CRC are reached too.
import CCRC32C
import EmoStore
import Foundation

final class ShardTarget: FuzzTarget {
    let name = "shard"
    let seeds: [[UInt8]]
    private let folder: String

    /// Field offsets of docs/cache-format.md.
    enum Layout {
        static let header = 64, entry = 128
        static let count = 16, indexOffset = 24, indexLength = 32, indexCRC = 40
        static let dtype = 32, rank = 33, shape = 36, crc = 60, metaOffset = 64, metaLength = 72, dataOffset = 80, dataLength = 88
    }

    init(seeds: [[UInt8]]) throws {
        self.seeds = seeds
        folder = NSTemporaryDirectory() + "/emopipe-fuzz-shard-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    var seedCount: Int { seeds.count }

    func seed(_ index: Int) -> FuzzInput { FuzzInput(bytes: seeds[index], fileExtension: "shard") }

    func generate(_ rng: inout FuzzRandom) -> FuzzInput {
        var b = rng.pick(seeds)
        let structured = rng.chance(0.7)
        if structured {
            for _ in 0..<rng.stackDepth(max: 4) { edit(&b, &rng) }
            if rng.chance(0.5) { fixRecordCRCs(&b) }
            if rng.chance(0.85) { fixIndexCRC(&b) }
        }
        if !structured || rng.chance(0.4) {
            let other = rng.pick(seeds)
            Mutator.mutate(&b, rng: &rng, other: other, maxSize: 1 << 16)
            if rng.chance(0.3) { fixRecordCRCs(&b); fixIndexCRC(&b) }
        }
        return FuzzInput(bytes: b, fileExtension: "shard")
    }

    private func indexRange(_ b: [UInt8]) -> Range<Int>? {
        guard let offset = b.readLE(UInt64.self, at: Layout.indexOffset), let length = b.readLE(UInt64.self, at: Layout.indexLength),
              offset <= UInt64(b.count), length <= UInt64(b.count) - offset else { return nil }
        return Int(offset)..<Int(offset + length)
    }

    /// One header field or one index-entry field set to a value that tends to break arithmetic.
    private func edit(_ b: inout [UInt8], _ rng: inout FuzzRandom) {
        let entries = indexRange(b).map { max(0, $0.count / Layout.entry) } ?? 0
        if entries == 0 || rng.chance(0.3) {
            switch rng.below(6) {
            case 0: b.writeLE(Interesting.size32(&rng, length: entries, current: b.readLE(UInt32.self, at: Layout.count)), at: Layout.count)
            case 1: b.writeLE(Interesting.size64(&rng, length: b.count, current: b.readLE(UInt64.self, at: Layout.indexOffset)), at: Layout.indexOffset)
            case 2: b.writeLE(Interesting.size64(&rng, length: entries * Layout.entry, current: b.readLE(UInt64.self, at: Layout.indexLength)), at: Layout.indexLength)
            case 3:  // count and index length that agree with each other, but not with the file
                let n = rng.pick([0, 1, 2, 3, 1 << 20, 0x7FFF_FFFF, 0xFFFF_FFFF] as [UInt32])
                b.writeLE(n, at: Layout.count)
                b.writeLE(UInt64(n) * UInt64(Layout.entry), at: Layout.indexLength)
            case 4: b.writeLE(rng.pick([0, 2, 0xFFFF_FFFF] as [UInt32]), at: 8)  // version
            default: b.writeLE(Interesting.size32(&rng, length: b.count), at: 12 + 8 * rng.below(2))  // header size, alignment
            }
            return
        }
        let base = indexRange(b)!.lowerBound + Layout.entry * rng.below(entries)
        switch rng.below(8) {
        case 0: b[base + Layout.dtype] = rng.pick([0, 1, 2, 3, 4, 5, 0x80, 0xFF] as [UInt8])
        case 1: b[base + Layout.rank] = rng.pick([0, 1, 2, 5, 6, 7, 0x80, 0xFF] as [UInt8])
        case 2: b.writeLE(rng.pick(Interesting.u32), at: base + Layout.shape + 4 * rng.below(6))
        case 3:  // a shape whose element count overflows when multiplied out
            for axis in 0..<6 { b.writeLE(rng.pick([0x1_0000, 0xFFFF_FFFF, 0x8000_0000, 1, 0x7FFF_FFFF] as [UInt32]), at: base + Layout.shape + 4 * axis) }
            b[base + Layout.rank] = UInt8(1 + rng.below(6))
        case 4:
            let field = rng.pick([Layout.metaOffset, Layout.metaLength, Layout.dataOffset, Layout.dataLength])
            b.writeLE(Interesting.size64(&rng, length: b.count, current: b.readLE(UInt64.self, at: base + field)), at: base + field)
        case 5:  // offset and length that each look fine but whose sum wraps around
            let field = rng.chance(0.5) ? Layout.metaOffset : Layout.dataOffset
            let offset = rng.pick([0x7FFF_FFFF_FFFF_FFC0, 0x4000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFC0, 64] as [UInt64])
            b.writeLE(offset, at: base + field)
            b.writeLE(rng.pick([0x7FFF_FFFF_FFFF_FFC0, 0x4000_0000_0000_0000, 0x80, 0xFFFF_FFFF_FFFF_FF00] as [UInt64]), at: base + field + 8)
        case 6: b.writeLE(UInt32(truncatingIfNeeded: rng.next()), at: base + Layout.crc)
        default:  // point the entry at the header or at the index itself
            let target = rng.pick([0, 8, Layout.header, indexRange(b)!.lowerBound, b.count - 1, b.count])
            b.writeLE(UInt64(target), at: base + (rng.chance(0.5) ? Layout.metaOffset : Layout.dataOffset))
        }
    }

    private static func crc(_ b: [UInt8], _ range: Range<Int>) -> UInt32 {
        b.withUnsafeBytes { raw in crc32c_extend(0, raw.baseAddress! + range.lowerBound, range.count) }
    }

    /// The index CRC recomputed over whatever range the header now names (when it lies in the file).
    private func fixIndexCRC(_ b: inout [UInt8]) {
        guard b.count >= Layout.header, let range = indexRange(b) else { return }
        b.writeLE(range.isEmpty ? 0 : Self.crc(b, range), at: Layout.indexCRC)
    }

    /// Each entry's record CRC recomputed over its (possibly edited) metadata and tensor ranges.
    private func fixRecordCRCs(_ b: inout [UInt8]) {
        guard let index = indexRange(b) else { return }
        for base in stride(from: index.lowerBound, to: index.upperBound - Layout.entry + 1, by: Layout.entry) {
            guard let mo = b.readLE(UInt64.self, at: base + Layout.metaOffset), let ml = b.readLE(UInt64.self, at: base + Layout.metaLength),
                  let dof = b.readLE(UInt64.self, at: base + Layout.dataOffset), let dl = b.readLE(UInt64.self, at: base + Layout.dataLength),
                  mo <= UInt64(b.count), ml <= UInt64(b.count) - mo, dof <= UInt64(b.count), dl <= UInt64(b.count) - dof
            else { continue }
            let crc = b.withUnsafeBytes { raw -> UInt32 in
                let meta = crc32c_extend(0, raw.baseAddress! + Int(mo), Int(ml))
                return crc32c_extend(meta, raw.baseAddress! + Int(dof), Int(dl))
            }
            b.writeLE(crc, at: base + Layout.crc)
        }
    }

    func execute(_ input: FuzzInput) -> Outcome {
        let path = "\(folder)/input.shard"
        guard FileManager.default.createFile(atPath: path, contents: Data(input.bytes)) else {
            return .failure("cannot write \(path)")
        }
        return Self.check(path: path, size: input.bytes.count)
    }

    /// Opens the shard and reads, verifies and exports every entry.
    static func check(path: String, size: Int) -> Outcome {
        let shard: ShardFile
        do {
            shard = try ShardFile(path: path)
        } catch let error as CacheError {
            return .rejected(label(error, path: path))
        } catch {
            return .failure("ShardFile threw an untyped error: \(type(of: error)): \(error)")
        }
        var damaged = 0
        for (i, entry) in shard.entries.enumerated() {
            // What open promises: every range inside the file, lengths that match the shape.
            guard entry.shape.count <= 6, entry.metaOffset >= 0, entry.metaLength >= 0, entry.dataOffset >= 0,
                  entry.dataLength >= 0, entry.metaOffset <= size - entry.metaLength, entry.dataOffset <= size - entry.dataLength
            else { return .failure("entry \(i) accepted outside the file: \(entry)") }
            do {
                let data = try shard.data(entry)
                guard data.count == entry.dataLength else { return .failure("entry \(i): data copy of \(data.count) bytes, not \(entry.dataLength)") }
                _ = try shard.metadata(entry)
                if try !shard.verify(entry) { damaged += 1 }
                let npy = NumpyFile.encode(dtype: entry.dtype, shape: entry.shape, data: data)
                guard npy.count >= data.count + 64 else { return .failure("entry \(i): .npy of \(npy.count) bytes for \(data.count) of data") }
            } catch let error as CacheError {
                // The fuzzed file is not changed while open: a read of it failing is a defect.
                return .failure("entry \(i): reading it failed: \(label(error, path: path))")
            } catch {
                return .failure("entry \(i): untyped error \(type(of: error)): \(error)")
            }
        }
        if shard.entries.isEmpty { return .accepted("opened, no records") }
        return .accepted(damaged == 0 ? "opened, every record verifies" : "opened, some records fail their CRC")
    }

    static func label(_ error: CacheError, path: String) -> String {
        switch error {
        case .badShard(_, let reason): return "CacheError.badShard: " + normalised(reason, path: path)
        case .damagedRecord: return "CacheError.damagedRecord"
        case .danglingRecord: return "CacheError.danglingRecord"
        case .missing(let what): return "CacheError.missing: " + normalised(what, path: path)
        case .io(_, let reason), .denied(_, let reason): return "CacheError.io: " + normalised(reason, path: path)
        }
    }
}
