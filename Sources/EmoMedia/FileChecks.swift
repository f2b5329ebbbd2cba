// Cheap checks on the raw file before any library sees it, so the common failures get precise errors.
import Foundation

enum FileChecks {
    /// The file's size in bytes, after making sure it is a readable, non-empty regular file.
    static func requireNonEmptyFile(_ path: String) throws(MediaError) -> Int64 {
        // The C calls below would stop at the NUL and open another file than the one named.
        guard !path.utf8.contains(0) else {
            throw .unreadable(path: path.replacingOccurrences(of: "\0", with: "\\0"), reason: "the path holds a NUL byte, which no file name can")
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        guard access(path, R_OK) == 0 else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard info.st_size > 0 else { throw .emptyFile(path: path) }
        return Int64(info.st_size)
    }

    /// Up to `count` bytes from the start of the file (fewer when the file is shorter).
    static func head(_ path: String, count: Int) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        return [UInt8]((try? handle.read(upToCount: count)) ?? Data())
    }

    static func isWavPath(_ path: String) -> Bool {
        (path as NSString).pathExtension.lowercased() == "wav"
    }
}

/// Just enough RIFF parsing to tell whether a WAV's data chunk extends past the end of the file
/// (libsndfile silently reads what is there, which would hide a truncated download). RIFX is RIFF with
/// big-endian sizes; RF64 keeps a large data chunk's size in its `ds64` chunk.
enum RiffLayout {
    static let magics: Set<String> = ["RIFF", "RIFX", "RF64"]

    static func hasRiffMagic(_ head: [UInt8]) -> Bool {
        head.count >= 4 && magics.contains(String(decoding: head[0..<4], as: UTF8.self))
    }

    /// Byte offset where the data chunk claims to end (Int64.max when past any file), or nil when it
    /// cannot be located or its size is a placeholder (a streamed WAV writes 0 or 0xFFFFFFFF).
    static func claimedDataEnd(_ path: String) -> Int64? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 12), header.count == 12,
              String(decoding: header.suffix(4), as: UTF8.self) == "WAVE" else { return nil }
        let magic = String(decoding: header.prefix(4), as: UTF8.self)
        guard magics.contains(magic) else { return nil }
        let bigEndian = magic == "RIFX"
        var ds64DataSize: UInt64?
        var offset: UInt64 = 12
        while true {
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let chunk = try? handle.read(upToCount: 8), chunk.count == 8 else { return nil }
            let id = String(decoding: chunk.prefix(4), as: UTF8.self)
            let size = integer(chunk.suffix(4), bigEndian: bigEndian)
            if magic == "RF64", id == "ds64" {
                // riffSize (8 bytes), then dataSize (8 bytes), little-endian.
                guard let sizes = try? handle.read(upToCount: 16), sizes.count == 16 else { return nil }
                ds64DataSize = integer(sizes.suffix(8), bigEndian: false)
            }
            if id == "data" {
                let claimed = size == 0xFFFF_FFFF ? (ds64DataSize ?? size) : size
                guard claimed != 0, claimed != 0xFFFF_FFFF else { return nil }
                let (end, overflow) = (offset + 8).addingReportingOverflow(claimed)
                return overflow || end > UInt64(Int64.max) ? Int64.max : Int64(end)
            }
            offset += 8 + size + (size & 1)  // chunks are padded to even sizes
        }
    }

    /// What is wrong with the `fmt ` chunk's channel count or sample rate, in words naming the field;
    /// nil when they are sound or the chunk is not among the first chunks.
    static func formatProblem(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 12), header.count == 12,
              String(decoding: header.suffix(4), as: UTF8.self) == "WAVE" else { return nil }
        let bigEndian = String(decoding: header.prefix(4), as: UTF8.self) == "RIFX"
        var offset: UInt64 = 12
        // Bounded: a file of millions of tiny chunks must not cost millions of reads for a message.
        for _ in 0..<1_000 {
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let chunk = try? handle.read(upToCount: 8), chunk.count == 8 else { return nil }
            let size = integer(chunk.suffix(4), bigEndian: bigEndian)
            if String(decoding: chunk.prefix(4), as: UTF8.self) == "fmt " {
                guard let fields = try? handle.read(upToCount: 8), fields.count == 8 else { return nil }
                let channels = integer(fields[fields.startIndex + 2 ..< fields.startIndex + 4], bigEndian: bigEndian)
                let rate = integer(fields[fields.startIndex + 4 ..< fields.startIndex + 8], bigEndian: bigEndian)
                if channels == 0 { return "the WAV's fmt chunk declares 0 channels" }
                if rate == 0 { return "the WAV's fmt chunk declares a sample rate of 0 Hz" }
                return nil
            }
            offset += 8 + size + (size & 1)
        }
        return nil
    }

    private static func integer<Bytes: Collection>(_ bytes: Bytes, bigEndian: Bool) -> UInt64 where Bytes.Element == UInt8 {
        let ordered = bigEndian ? Array(bytes) : bytes.reversed()
        return ordered.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
