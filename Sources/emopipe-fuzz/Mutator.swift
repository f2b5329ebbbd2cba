// The seeded random source and the byte-level mutations every binary target shares.

/// xoshiro256** seeded through SplitMix64: fast, and the same `--seed` gives the same inputs.
struct FuzzRandom: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    mutating func next() -> UInt64 {
        func rotl(_ v: UInt64, _ k: UInt64) -> UInt64 { (v << k) | (v >> (64 - k)) }
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    /// Uniform in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next(upperBound: UInt64(n))) }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// 1 most of the time, sometimes a few: how many mutations to stack on one input.
    mutating func stackDepth(max: Int = 8) -> Int {
        var n = 1
        while n < max && chance(0.45) { n += 1 }
        return n
    }
}

/// Values that tend to break size and offset arithmetic.
enum Interesting {
    static let u8: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40, 0xFE]
    static let u16: [UInt16] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF, 1024]
    static let u32: [UInt32] = [0, 1, 2, 3, 4, 7, 8, 16, 44, 64, 127, 128, 255, 256, 4096, 65_535, 65_536,
                                0x7FFF_FFFE, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFE, 0xFFFF_FFFF]
    static let u64: [UInt64] = [0, 1, 63, 64, 128, 4096, 0xFFFF_FFFF, 0x1_0000_0000,
                                0x3FFF_FFFF_FFFF_FFFF, 0x4000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFC0,
                                0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFC0,
                                0xFFFF_FFFF_FFFF_FFFF]

    /// A value for a size or offset field of a file of `length` bytes: a classic, or one near the length.
    static func size32(_ rng: inout FuzzRandom, length: Int, current: UInt32? = nil) -> UInt32 {
        switch rng.below(4) {
        case 0: return rng.pick(u32)
        case 1: return UInt32(truncatingIfNeeded: length + rng.below(9) - 4)
        case 2: if let current { return current &+ UInt32(bitPattern: Int32(rng.below(17) - 8)) }
                return rng.pick(u32)
        default: return UInt32(truncatingIfNeeded: rng.next())
        }
    }

    static func size64(_ rng: inout FuzzRandom, length: Int, current: UInt64? = nil) -> UInt64 {
        switch rng.below(4) {
        case 0: return rng.pick(u64)
        case 1: return UInt64(truncatingIfNeeded: length + rng.below(257) - 128)
        case 2: if let current { return current &+ UInt64(bitPattern: Int64(rng.below(17) - 8)) }
                return rng.pick(u64)
        default: return rng.next() >> UInt64(rng.below(64))
        }
    }
}

/// Little- and big-endian field access on a byte array, ignoring writes that would not fit.
extension Array where Element == UInt8 {
    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return nil }
        var value: T = 0
        for i in 0..<size { value |= T(self[offset + i]) << (8 * i) }
        return value
    }

    mutating func writeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return }
        for i in 0..<size { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    mutating func writeBE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return }
        for i in 0..<size { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - i))) }
    }
}

/// Format-blind mutations: bit flips, interesting values, arithmetic, truncation, range insertion,
/// deletion and duplication, and splicing with another input.
enum Mutator {
    static let names = ["bit-flip", "byte", "word", "arith", "random-bytes", "truncate", "insert", "delete",
                        "duplicate", "splice"]

    static func mutate(_ bytes: inout [UInt8], rng: inout FuzzRandom, other: [UInt8], maxSize: Int) {
        for _ in 0..<rng.stackDepth() { mutateOnce(&bytes, rng: &rng, other: other, maxSize: maxSize) }
    }

    /// An offset to change: near the start most of the time (headers live there), anywhere otherwise.
    static func position(_ rng: inout FuzzRandom, count: Int) -> Int {
        guard count > 0 else { return 0 }
        return rng.chance(0.6) ? rng.below(Swift.min(count, 256)) : rng.below(count)
    }

    static func mutateOnce(_ b: inout [UInt8], rng: inout FuzzRandom, other: [UInt8], maxSize: Int) {
        if b.isEmpty { b = [rng.pick(Interesting.u8)]; return }
        switch rng.below(10) {
        case 0:  // flip 1-8 bits
            for _ in 0..<(1 + rng.below(8)) {
                let at = position(&rng, count: b.count)
                b[at] ^= 1 << UInt8(rng.below(8))
            }
        case 1:
            b[position(&rng, count: b.count)] = rng.pick(Interesting.u8)
        case 2:  // a 16-, 32- or 64-bit interesting value, either byte order
            let at = position(&rng, count: b.count)
            let bigEndian = rng.chance(0.3)
            switch rng.below(3) {
            case 0: let v = rng.pick(Interesting.u16); bigEndian ? b.writeBE(v, at: at) : b.writeLE(v, at: at)
            case 1: let v = Interesting.size32(&rng, length: b.count); bigEndian ? b.writeBE(v, at: at) : b.writeLE(v, at: at)
            default: let v = Interesting.size64(&rng, length: b.count); bigEndian ? b.writeBE(v, at: at) : b.writeLE(v, at: at)
            }
        case 3:  // add or subtract a little from a 32-bit little-endian field
            let at = position(&rng, count: b.count)
            if let v = b.readLE(UInt32.self, at: at) {
                b.writeLE(v &+ UInt32(bitPattern: Int32(rng.below(65) - 32)), at: at)
            }
        case 4:
            let at = position(&rng, count: b.count), n = Swift.min(1 + rng.below(16), b.count - at)
            for i in at..<(at + n) { b[i] = UInt8(truncatingIfNeeded: rng.next()) }
        case 5:  // truncate: anywhere, or just a little off the end
            let keep = rng.chance(0.5) ? rng.below(b.count) : Swift.max(0, b.count - 1 - rng.below(64))
            b.removeSubrange(keep...)
        case 6:  // insert random bytes, a run of one value, or a copy of part of the input
            guard b.count < maxSize else { return }
            let at = rng.below(b.count + 1), n = 1 + rng.below(rng.chance(0.8) ? 16 : 4096)
            let insert: [UInt8]
            switch rng.below(3) {
            case 0: insert = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: insert = [UInt8](repeating: rng.pick(Interesting.u8), count: n)
            default:
                let from = rng.below(b.count)
                insert = Array(b[from..<Swift.min(b.count, from + n)])
            }
            b.insert(contentsOf: insert, at: at)
        case 7:
            let at = rng.below(b.count), n = Swift.min(1 + rng.below(rng.chance(0.8) ? 16 : 4096), b.count - at)
            b.removeSubrange(at..<(at + n))
        case 8:  // duplicate a range in place
            guard b.count < maxSize else { return }
            let at = rng.below(b.count), n = Swift.min(1 + rng.below(512), b.count - at)
            b.insert(contentsOf: b[at..<(at + n)], at: at)
        default:  // splice: our head, another input's tail
            let o = other
            guard !o.isEmpty else { return }
            let cut = rng.below(b.count + 1), from = rng.below(o.count)
            b = Array(b[..<cut]) + o[from...]
            if b.count > maxSize { b.removeSubrange(maxSize...) }
        }
    }
}
