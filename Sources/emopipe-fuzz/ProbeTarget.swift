// `probe`: what ingest and the audio stage do to a file — MediaProbe.probe, then
// AudioDecoder.decodeMono at 16 kHz — on mutated WAVs (libsndfile) and MP4s (libavformat/libavcodec).
// Inputs go through a temporary file, as real ones do.
import EmoCore
import EmoMedia
import Foundation

final class ProbeTarget: FuzzTarget {
    let name = "probe"
    let seeds: [MediaSeed]
    private let riff: [[RiffChunk]]
    private let boxes: [[Mp4Box]]
    private let folder: String

    init(seeds: [MediaSeed]) throws {
        self.seeds = seeds
        riff = seeds.map { $0.fileExtension == "wav" ? RiffWalker.chunks($0.bytes) : [] }
        boxes = seeds.map { $0.fileExtension == "mp4" ? Mp4Walker.boxes($0.bytes) : [] }
        folder = NSTemporaryDirectory() + "/emopipe-fuzz-probe-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    var seedCount: Int { seeds.count }

    func seed(_ index: Int) -> FuzzInput { FuzzInput(bytes: seeds[index].bytes, fileExtension: seeds[index].fileExtension) }

    func generate(_ rng: inout FuzzRandom) -> FuzzInput {
        let index = rng.below(seeds.count)
        var input = seed(index)
        let structured = rng.chance(0.6)
        if structured {
            for _ in 0..<rng.stackDepth(max: 4) {
                if input.fileExtension == "wav" { editWav(&input.bytes, chunks: riff[index], &rng) }
                else { editMp4(&input.bytes, boxes: boxes[index], &rng) }
            }
        }
        if !structured || rng.chance(0.4) {
            let other = seeds[rng.below(seeds.count)].bytes
            Mutator.mutate(&input.bytes, rng: &rng, other: other, maxSize: max(input.bytes.count, 1 << 16) * 2)
        }
        if rng.chance(0.04) { input.fileExtension = input.fileExtension == "wav" ? "mp4" : "wav" }  // the other reader
        return input
    }

    // MARK: WAV header edits

    private static let chunkIDs = ["fmt ", "data", "LIST", "fact", "ds64", "JUNK", "bext", "FLLR", "PEAK", "cue ", "\0\0\0\0", "RIFF"]
    private static let formatTags: [UInt16] = [0, 1, 2, 3, 6, 7, 0x11, 0x31, 0x50, 0x55, 0xFFFE, 0xFFFF]
    private static let channelCounts: [UInt16] = [0, 1, 2, 3, 6, 8, 255, 256, 1024, 1025, 0x7FFF, 0xFFFF]
    private static let rates: [UInt32] = [0, 1, 8_000, 16_000, 44_100, 48_000, 96_000, 768_000, 768_001,
                                          0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
    private static let bitDepths: [UInt16] = [0, 1, 4, 7, 8, 12, 16, 20, 24, 32, 48, 64, 0xFFFF]

    /// Edits one header field: the RIFF size, a chunk's size or id, a format field, a ds64 size,
    /// the container magic, or the order of two chunks.
    private func editWav(_ b: inout [UInt8], chunks: [RiffChunk], _ rng: inout FuzzRandom) {
        let be = RiffWalker.bigEndian(b)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) { be ? b.writeBE(v, at: at) : b.writeLE(v, at: at) }
        let fmt = chunks.first { $0.id == "fmt " }.map { $0.offset + 8 }
        switch rng.below(8) {
        case 0:
            put(Interesting.size32(&rng, length: b.count, current: UInt32(truncatingIfNeeded: b.count - 8)), 4)
        case 1, 2:
            guard let chunk = chunks.isEmpty ? nil : rng.pick(chunks) else { return }
            put(Interesting.size32(&rng, length: b.count - chunk.offset, current: chunk.size), chunk.offset + 4)
        case 3:
            guard let chunk = chunks.isEmpty ? nil : rng.pick(chunks) else { return }
            let id = rng.chance(0.8) ? Array(rng.pick(Self.chunkIDs).utf8) : (0..<4).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for i in 0..<4 where chunk.offset + i < b.count { b[chunk.offset + i] = id[i] }
        case 4, 5:
            guard let fmt else { return }
            switch rng.below(7) {
            case 0: put(rng.pick(Self.formatTags), fmt)
            case 1: put(rng.pick(Self.channelCounts), fmt + 2)
            case 2: put(rng.pick(Self.rates), fmt + 4)
            case 3: put(Interesting.size32(&rng, length: b.count), fmt + 8)  // byte rate
            case 4: put(rng.pick(Interesting.u16), fmt + 12)  // block align
            case 5: put(rng.pick(Self.bitDepths), fmt + 14)
            default: put(rng.pick(Interesting.u16), fmt + 16 + 2 * rng.below(5))  // cbSize and the extension
            }
        case 6:
            if let ds64 = chunks.first(where: { $0.id == "ds64" }) {
                put(Interesting.size64(&rng, length: b.count), ds64.offset + 8 + 8 * rng.below(3))
            } else {
                let magic = Array(rng.pick(["RIFF", "RIFX", "RF64", "RIFF"]).utf8)
                for i in 0..<4 where i < b.count { b[i] = magic[i] }
            }
        default:  // swap two chunks (data before fmt, say)
            guard chunks.count >= 2 else { return }
            let i = rng.below(chunks.count - 1)
            let a = chunks[i], c = chunks[i + 1]
            let end = c.offset + 8 + Int(c.size) + Int(c.size & 1)
            guard end <= b.count, a.offset < c.offset else { return }
            let first = Array(b[a.offset..<c.offset]), second = Array(b[c.offset..<end])
            b.replaceSubrange(a.offset..<end, with: second + first)
        }
    }

    // MARK: MP4 box edits

    private static let boxTypes = ["moov", "trak", "mdia", "minf", "stbl", "stsd", "stts", "stsc", "stsz", "stco", "co64",
                                   "mdhd", "tkhd", "hdlr", "mdat", "free", "mp4a", "esds", "avc1", "elst", "ftyp", "mvhd"]
    private static let tables: Set<String> = ["stts", "stsc", "stsz", "stco", "co64", "ctts", "stss", "elst", "sgpd", "sbgp"]

    /// Edits one box: its size, its type, a field of its payload (table counts and entries most
    /// of all: sample sizes, chunk offsets, time-to-sample), or removes or repeats it.
    private func editMp4(_ b: inout [UInt8], boxes: [Mp4Box], _ rng: inout FuzzRandom) {
        guard !boxes.isEmpty else { return }
        let tableBoxes = boxes.filter { Self.tables.contains($0.type) }
        let box = !tableBoxes.isEmpty && rng.chance(0.4) ? rng.pick(tableBoxes) : rng.pick(boxes)
        let payload = box.offset + box.headerSize
        switch rng.below(7) {
        case 0:
            b.writeBE(rng.chance(0.2) ? rng.pick([0, 1, 7, 8] as [UInt32])
                                      : Interesting.size32(&rng, length: b.count - box.offset, current: UInt32(truncatingIfNeeded: box.size)),
                      at: box.offset)
        case 1:
            let type = Array(rng.pick(Self.boxTypes).utf8)
            for i in 0..<4 where box.offset + 4 + i < b.count { b[box.offset + 4 + i] = type[i] }
        case 2, 3:  // a 32-bit field: version/flags, entry count, or a table entry
            let fields = max(1, min((box.size - box.headerSize) / 4, 64))
            let at = payload + 4 * (Self.tables.contains(box.type) && rng.chance(0.5) ? 1 : rng.below(fields))
            b.writeBE(Interesting.size32(&rng, length: b.count, current: b.readLE(UInt32.self, at: at).map { UInt32(bigEndian: $0) }), at: at)
        case 4:  // a 64-bit field (co64 offsets, version-1 durations)
            let at = payload + 4 * rng.below(max(1, min((box.size - box.headerSize) / 4, 32)))
            b.writeBE(Interesting.size64(&rng, length: b.count), at: at)
        case 5:
            guard box.offset + box.size <= b.count else { return }
            b.removeSubrange(box.offset..<(box.offset + box.size))
        default:
            guard box.offset + box.size <= b.count, box.size < 1 << 20 else { return }
            b.insert(contentsOf: b[box.offset..<(box.offset + box.size)], at: box.offset)
        }
    }

    // MARK: Running

    func execute(_ input: FuzzInput) -> Outcome {
        let path = "\(folder)/input.\(input.fileExtension)"
        guard FileManager.default.createFile(atPath: path, contents: Data(input.bytes)) else {
            return .failure("cannot write \(path)")
        }
        return Self.check(path: path)
    }

    /// Probes and decodes one file; the label names both results.
    static func check(path: String) -> Outcome {
        let probed: String
        do {
            let facts = try MediaProbe.probe(path: path)
            if let problem = implausible(facts) { return .failure("probe of \(path): \(problem)") }
            probed = "probed"
        } catch {
            if error.path != path { return .failure("probe error names \(error.path), not the file \(path): \(error)") }
            probed = "probe: MediaError.\(error.code)"
        }
        let decoded: String
        do {
            let audio = try AudioDecoder.decodeMono(path: path, sampleRate: 16_000)
            if audio.sampleRate != 16_000 || audio.samples.isEmpty || audio.samples.contains(where: { !$0.isFinite }) {
                return .failure("decode of \(path) returned \(audio.samples.count) samples at \(audio.sampleRate) Hz, not all finite")
            }
            decoded = "decoded"
        } catch {
            if error.path != path { return .failure("decode error names \(error.path), not the file \(path): \(error)") }
            decoded = "decode: MediaError.\(error.code)"
        }
        switch (probed, decoded) {
        case ("probed", "decoded"): return .accepted("probed and decoded")
        case ("probed", _): return .rejected("\(decoded) (probe ok)")
        case (_, "decoded"): return .rejected("\(probed) (decode ok)")
        default: return .rejected("\(probed) / \(decoded)")
        }
    }

    /// Facts ingest would store: they must encode as JSON (a NaN or infinity would not) and make sense.
    static func implausible(_ facts: MediaFacts) -> String? {
        do { _ = try JSONOutput.encoder().encode(facts) } catch { return "facts do not encode as JSON (\(error)): \(facts)" }
        if let d = facts.durationSeconds, !(d.isFinite && d >= 0) { return "duration \(d)" }
        for stream in facts.streams {
            if let rate = stream.sampleRate, rate <= 0 { return "stream \(stream.index): sample rate \(rate)" }
            if let channels = stream.channels, channels <= 0 { return "stream \(stream.index): \(channels) channels" }
            if let d = stream.durationSeconds, !(d.isFinite && d >= 0) { return "stream \(stream.index): duration \(d)" }
            if let r = stream.frameRate, !(r.isFinite && r > 0) { return "stream \(stream.index): frame rate \(r)" }
            if let r = stream.rotationDegrees, !(0..<360).contains(r) { return "stream \(stream.index): rotation \(r)" }
        }
        return nil
    }
}
