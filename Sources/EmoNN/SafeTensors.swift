import EmoCore
import Foundation

/// Reader and writer for the safetensors format: an 8-byte little-endian
/// header length, a JSON header mapping names to dtype, shape and byte range,
/// then the raw little-endian data. Float32 tensors carry the model; int64
/// vectors carry counters and RNG words exactly (a float would round them).
public struct SafeTensorsFile {
    public var tensors: [String: Tensor]
    public var integers: [String: [Int64]]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], integers: [String: [Int64]] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.integers = integers
        self.metadata = metadata
    }

    /// Writes the file whole or not at all (a temporary file beside it, renamed over it). The tensors are
    /// written one by one from their own storage: a checkpoint of a large model is not copied into memory
    /// again (twice, as one body and then header plus body) on top of the snapshot it writes.
    public func write(to url: URL) throws {
        let names = (Array(tensors.keys) + Array(integers.keys)).sorted()
        guard Set(names).count == names.count else { throw NNError.invalidArgument("a name is both float and integer") }
        var header = "{"
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            header += "\"__metadata__\":{\(items.joined(separator: ","))}"
        }
        var offset = 0
        for name in names {
            let (dtype, shape, count) = tensors[name].map { ("F32", $0.shape, $0.data.count * 4) }
                ?? ("I64", [integers[name]!.count], integers[name]!.count * 8)
            if header.count > 1 { header += "," }
            header += "\(jsonString(name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],"
                + "\"data_offsets\":[\(offset),\(offset + count)]}"
            offset += count
        }
        header += "}"
        var headerBytes = Data(header.utf8)
        // The data section starts 8-byte aligned; the format pads with spaces.
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        try DurableWrite.write(to: url) { put in
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try put($0) }
            try headerBytes.withUnsafeBytes { try put($0) }
            for name in names {
                if let t = tensors[name] {
                    // Float32 is stored as it lies in memory: little-endian on every platform Swift builds EmoPipe for.
                    try t.data.withUnsafeBytes { try put($0) }
                } else {
                    try integers[name]!.map { $0.littleEndian }.withUnsafeBytes { try put($0) }
                }
            }
        }
    }

    /// Reads the file; with `limit`, a file of more bytes is refused before more than that is read
    /// (what a model can hold is known, so a huge file put in its place allocates nothing like its size).
    public static func read(from url: URL, atMost limit: Int? = nil) throws -> SafeTensorsFile {
        let data: Data
        if let limit {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            data = try handle.read(upToCount: limit + 1) ?? Data()
            guard data.count <= limit else {
                throw NNError.format("\(url.lastPathComponent): holds more than \(limit) bytes, more than any checkpoint of this model")
            }
        } else {
            data = try Data(contentsOf: url)
        }
        guard data.count >= 8 else { throw NNError.format("\(url.lastPathComponent): shorter than a header") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8) else { throw NNError.format("\(url.lastPathComponent): header length \(n) too large") }
        let headerData = data.subdata(in: 8..<(8 + Int(n)))
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw NNError.format("\(url.lastPathComponent): header is not a JSON object")
        }
        let base = 8 + Int(n)
        try checkOffsets(header, file: url.lastPathComponent, dataBytes: data.count - base)
        try checkNoOverlap(header, file: url.lastPathComponent)
        var file = SafeTensorsFile()
        for (name, value) in header {
            if name == "__metadata__" {
                file.metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let range = entry["data_offsets"] as? [Int], range.count == 2,
                  range[0] >= 0, range[0] <= range[1], range[1] <= data.count - base else {
                throw NNError.format("\(url.lastPathComponent): bad entry for \(name)")
            }
            let bytes = data.subdata(in: (base + range[0])..<(base + range[1]))
            // A crafted header may claim any shape: the element count is checked against the bytes
            // present before anything is multiplied out or allocated.
            guard let elementSize = ["F32": 4, "I64": 8][dtype] else {
                throw NNError.format("\(name): dtype \(dtype) not supported (F32, I64 are)")
            }
            guard let count = Self.elementCount(shape, atMost: bytes.count / elementSize), bytes.count == count * elementSize else {
                throw NNError.format("\(url.lastPathComponent): \(name): \(bytes.count) bytes for shape \(shape) of \(dtype)")
            }
            switch dtype {
            case "F32":
                let values = bytes.withUnsafeBytes { raw in
                    (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
                }
                file.tensors[name] = Tensor(raw: shape, values)
            case "I64":
                file.integers[name] = bytes.withUnsafeBytes { raw in
                    (0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                }
            default:
                throw NNError.format("\(name): dtype \(dtype) not supported (F32, I64 are)")
            }
        }
        return file
    }

    /// Each entry's `data_offsets` lie within the bytes after the header, start before they end.
    static func checkOffsets(_ header: [String: Any], file: String, dataBytes: Int) throws {
        for (name, value) in header.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            guard let offsets = (value as? [String: Any])?["data_offsets"] as? [Int], offsets.count == 2 else {
                throw NNError.format("\(file): tensor \(name): no data_offsets [begin, end] of whole numbers")
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw NNError.format("\(file): tensor \(name): data_offsets \(offsets) are not 0 <= begin <= end")
            }
            guard offsets[1] <= dataBytes else {
                throw NNError.format("\(file): tensor \(name): data_offsets \(offsets) reach past the \(dataBytes) bytes of tensor data "
                                     + "after the header (the file is cut short, or its header damaged)")
            }
        }
    }

    /// The format lays tensors end to end: two entries sharing bytes are a damaged or crafted header.
    static func checkNoOverlap(_ header: [String: Any], file: String) throws {
        let ranges = header.compactMap { name, value -> (String, Int, Int)? in
            guard let offsets = (value as? [String: Any])?["data_offsets"] as? [Int], offsets.count == 2 else { return nil }
            return (name, offsets[0], offsets[1])
        }.sorted { ($0.1, $0.2, $0.0) < ($1.1, $1.2, $1.0) }
        for (earlier, later) in zip(ranges, ranges.dropFirst()) where later.1 < earlier.2 {
            throw NNError.format("\(file): tensors \(earlier.0) and \(later.0) share bytes (\(earlier.1)..<\(earlier.2) and \(later.1)..<\(later.2))")
        }
    }

    /// The product of a shape's dimensions, or nil when a dimension is negative or the product
    /// exceeds `limit` (computed without overflow).
    static func elementCount(_ shape: [Int], atMost limit: Int) -> Int? {
        checkedProduct(shape).flatMap { $0 <= limit ? $0 : nil }
    }
}

/// JSON string literal with the escapes the format's parsers require.
func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// A file written to a temporary name beside it, synced and renamed over it: a kill or a full disk leaves
/// the previous file, never half of the new one.
public enum DurableWrite {
    /// `body` writes the bytes through the function it is given, in order.
    public static func write(to url: URL, _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).part-\(getpid())")
        // A leftover of a killed write is replaced; a link planted under that name is not written through.
        unlink(temporary.path)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        func failed() -> NNError { NNError.write("\(url.path): cannot write: \(String(cString: strerror(errno)))") }
        guard fd >= 0 else { throw failed() }
        var (isOpen, written) = (true, false)
        defer {
            if isOpen { close(fd) }
            if !written { unlink(temporary.path) }
        }
        try body { bytes in
            var done = 0
            while done < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failed() }
                done += n
            }
        }
        // On disk before it replaces the old file; a full disk or a quota may only show at close.
        guard fsync(fd) == 0 else { throw failed() }
        isOpen = false   // released by close whatever it returns
        guard close(fd) == 0 else { throw failed() }
        guard rename(temporary.path, url.path) == 0 else { throw failed() }
        written = true
        Folder.syncEntries(holding: url.path)
    }

    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { put in try data.withUnsafeBytes { try put($0) } }
    }
}
