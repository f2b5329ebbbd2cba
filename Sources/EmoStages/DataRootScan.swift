import EmoCore
import Foundation

/// A regular file found under the data root, with what `stat` says of it.
struct ScannedFile: Equatable, Sendable {
    var path: String
    var size: Int64
    var mtimeNanos: Int64
}

/// Every regular file below a folder, sorted by path. Hidden files and folders (`.git`,
/// `.DS_Store`) are skipped: they are never sources. Only `stat` is called, so a walk over
/// thousands of files takes milliseconds.
struct DataRootScan {
    let root: String
    let files: [ScannedFile]

    init(root: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw EmoError.io(path: root, reason: "the data root does not exist or is not a folder")
        }
        self.root = root
        var found: [ScannedFile] = []
        try Self.walk(root, into: &found)
        files = found.sorted { $0.path < $1.path }
    }

    private static func walk(_ folder: String, into found: inout [ScannedFile]) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw EmoError.io(path: folder, reason: "cannot list the folder (\(error.localizedDescription))")
        }
        for name in names where !name.hasPrefix(".") {
            let path = folder + "/" + name
            var info = stat()
            guard stat(path, &info) == 0 else { continue }  // vanished or a dangling link
            switch info.st_mode & S_IFMT {
            case S_IFDIR: try walk(path, into: &found)
            case S_IFREG:
                let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                found.append(ScannedFile(path: path, size: Int64(info.st_size), mtimeNanos: mtime))
            default: continue
            }
        }
    }
}
