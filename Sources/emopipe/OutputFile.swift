import EmoCore
import EmoStore
import Foundation

/// A file a command is told to write (`--out`, `--npy`). It is written under a temporary name and
/// renamed into place, which would replace whatever is there: so the path must name a file (not a
/// folder) in a folder that exists, and anything already there must be a regular file, never a
/// device, a pipe, a folder or a link.
enum OutputFile {
    /// `format` is the file's kind, `"png"` or `"npy"`: a name with another extension (`sheet.jpg`) would
    /// promise a format the file does not have, so it is refused; a name without one is taken as given.
    static func check(_ path: String, option: String, format: String) throws {
        guard !path.isEmpty else { throw UsageError("\(option) \"\": expected a file name") }
        guard !path.hasSuffix("/") else { throw UsageError("\(option) \(path.echoed): names a folder; give a file name in it") }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else {
            throw UsageError("\(option) \(path.echoed): no such folder to write into (\(folder.echoed))")
        }
        guard isFolder.boolValue else { throw UsageError("\(option) \(path.echoed): \(folder.echoed) is a file, not a folder to write into") }
        var facts = stat()
        if lstat(path, &facts) == 0, facts.st_mode & S_IFMT != S_IFREG {
            throw UsageError("\(option) \(path.echoed): exists and is not a regular file (a folder, device, pipe or link); "
                             + "EmoPipe replaces only regular files")
        }
        // Only an extension of letters names a format (sheet.jpg); a version or a number (out.v2, clip.01) does not.
        let fileExtension = URL(fileURLWithPath: path).pathExtension
        guard !fileExtension.allSatisfy(\.isLetter) || fileExtension.isEmpty || fileExtension.lowercased() == format else {
            throw UsageError("\(option) \(path.echoed): EmoPipe writes \(format.uppercased()) here, not \(fileExtension.echoed); name the file .\(format)")
        }
        // Whatever the name says (clip.mp4, a name without an extension), a file already there is replaced only
        // when it is empty or holds the format written: a clip or anything else given by mistake is kept.
        if facts.st_mode & S_IFMT == S_IFREG, facts.st_size > 0, let magic = magic[format], !RegularFile.starts(path, with: magic) {
            throw UsageError("\(option) \(path.echoed): exists and is not a \(format.uppercased()) file; EmoPipe replaces only "
                             + "a file of the kind it writes: remove it first, or give another name")
        }
    }

    /// The first bytes of each format written.
    static let magic: [String: [UInt8]] = ["png": [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "npy": [0x93] + Array("NUMPY".utf8)]


    /// Writes `data` there (a temporary name, synced, then renamed into place); a failure names the
    /// option and the system's reason.
    static func write(_ data: Data, to path: String, option: String) throws {
        do { try DurableFile.write(data, to: path) } catch let error as CacheError {
            guard case .io(_, let reason) = error else { throw error }
            throw EmoError.io(path: path, reason: "\(option): \(reason)")
        }
    }
}
