// Cheap checks on the raw file before any library sees it, so the common failures get precise errors.
import Foundation

enum FileChecks {
    /// The file's size in bytes, after making sure it is a readable, non-empty regular file.
    static func requireNonEmptyFile(_ path: String) throws(MediaError) -> Int64 {
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
/// (libsndfile silently reads what is there, which would hide a truncated download).
enum RiffLayout {
    static let magics: Set<String> = ["RIFF", "RIFX", "RF64"]

    static func hasRiffMagic(_ head: [UInt8]) -> Bool {
        head.count >= 4 && magics.contains(String(decoding: head[0..<4], as: UTF8.self))
    }

    /// Byte range the data chunk claims, or nil when it cannot be located or its size is a placeholder
    /// (RF64 and streamed WAVs write 0 or 0xFFFFFFFF and keep the real size elsewhere).
    static func claimedDataEnd(_ path: String) -> Int64? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 12), header.count == 12,
              String(decoding: header.prefix(4), as: UTF8.self) == "RIFF",
              String(decoding: header.suffix(4), as: UTF8.self) == "WAVE" else { return nil }
        var offset: UInt64 = 12
        while true {
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let chunk = try? handle.read(upToCount: 8), chunk.count == 8 else { return nil }
            let id = String(decoding: chunk.prefix(4), as: UTF8.self)
            let size = chunk.suffix(4).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if id == "data" {
                guard size != 0, size != 0xFFFF_FFFF else { return nil }
                return Int64(offset + 8 + size)
            }
            offset += 8 + size + (size & 1)  // chunks are padded to even sizes
        }
    }
}
