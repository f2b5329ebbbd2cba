import EmoCore
import Foundation

/// A file found under the data root, with what `stat` says of it.
struct ScannedFile: Equatable, Sendable {
    var path: String
    var size: Int64
    var mtimeNanos: Int64
    /// What the entry is when it is not a regular file (a named pipe, a device): ingest records it as
    /// a failure without opening it, since reading one can block or never end.
    var notRegular: String? = nil
}

/// What identifies a file or folder on disk whatever the path used to reach it.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// Every file below a folder (regular ones, and pipes or devices marked as such), sorted by path. Hidden files and folders (`.git`,
/// `.DS_Store`) are skipped: they are never sources. Only `stat` is called, so a walk over
/// thousands of files takes milliseconds.
///
/// Links are followed, but each folder is listed once: a link back into a folder the walk is inside
/// (`Actor_01/loop -> ..`) is a loop and is skipped, and a folder or file reached by a second path
/// (links, hard links) is kept under its lexicographically first path only, so the same bytes on
/// disk never make two sources and no layout of links makes the walk repeat itself.
struct DataRootScan {
    let root: String
    let files: [ScannedFile]
    /// Links not followed because they lead into a folder the walk is inside.
    let loopsSkipped: [String]
    /// Paths not used because they reach a folder or file already found under an earlier path:
    /// (the path, the earlier path).
    let aliases: [(path: String, keptAs: String)]

    init(root: String) throws {
        var info = stat()
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw EmoError.io(path: root, reason: "the data root does not exist or is not a folder")
        }
        self.root = root
        var walk = Walk()
        try walk.visit(root, identity: FileIdentity(info), ancestors: [])
        files = walk.files.sorted { $0.path < $1.path }  // already in this order; kept explicit
        loopsSkipped = walk.loopsSkipped
        aliases = walk.aliases
    }

    /// A depth-first walk in path order: entries are visited sorted by name, a folder's name
    /// compared as "name/", which makes the order of the files found the order of their full paths
    /// ("a-b/x" before "a/x"). So the first path by which a folder or file is reached is also the
    /// lexicographically first.
    private struct Walk {
        var files: [ScannedFile] = []
        var loopsSkipped: [String] = []
        var aliases: [(path: String, keptAs: String)] = []
        private var seen: [FileIdentity: String] = [:]

        /// `ancestors`: the folders on the path from the root down to `folder`, by identity.
        mutating func visit(_ folder: String, identity: FileIdentity, ancestors: Set<FileIdentity>) throws {
            seen[identity] = folder
            let inside = ancestors.union([identity])
            for (path, info) in try Self.entries(of: folder) {
                let entry = FileIdentity(info)
                let isFolder = info.st_mode & S_IFMT == S_IFDIR
                if isFolder && inside.contains(entry) { loopsSkipped.append(path); continue }
                if let first = seen[entry] { aliases.append((path, first)); continue }
                if isFolder {
                    try visit(path, identity: entry, ancestors: inside)
                } else {
                    seen[entry] = path
                    let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                    files.append(ScannedFile(path: path, size: Int64(info.st_size), mtimeNanos: mtime,
                                             notRegular: Self.kindIfNotRegular(info.st_mode)))
                }
            }
        }

        static func kindIfNotRegular(_ mode: mode_t) -> String? {
            switch mode & S_IFMT {
            case S_IFREG: return nil
            case S_IFIFO: return "a named pipe (FIFO)"
            case S_IFCHR: return "a character device"
            case S_IFBLK: return "a block device"
            case S_IFSOCK: return "a socket"
            default: return "an entry of unknown type"
            }
        }

        /// The folder's visible entries with what `stat` says of them (links followed), in walk order.
        private static func entries(of folder: String) throws -> [(path: String, info: stat)] {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
                throw EmoError.io(path: folder, reason: "cannot list the folder (\(error.localizedDescription))")
            }
            let entries = names.filter { !$0.hasPrefix(".") }.compactMap { name -> (key: String, path: String, info: stat)? in
                let path = folder + "/" + name
                var info = stat()
                if stat(path, &info) == 0 { return (info.st_mode & S_IFMT == S_IFDIR ? name + "/" : name, path, info) }
                // A dangling link is listed as a file, so that ingest records it as a failure (reading
                // it says why) instead of it passing unseen; an entry that vanished is left out.
                guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return nil }
                info.st_mode = (info.st_mode & ~S_IFMT) | S_IFREG
                return (name, path, info)
            }
            return entries.sorted { $0.key < $1.key }.map { ($0.path, $0.info) }
        }
    }
}
