import Foundation

/// Paths relative to a data root: what ingest's digest, the dataset listing and the scale-out
/// partition use, so that moving the whole root changes none of them.
public enum DataRootPath {
    /// `path` without the `root/` prefix; unchanged when it does not lie under `root`.
    public static func relative(_ path: String, to root: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}

/// Where a path leads, whether or not it exists yet: compared with another folder's, it tells whether a
/// folder about to be created would lie inside that one (through links, `..` or a relative name).
public enum ResolvedPath {
    /// `path` made absolute, with links resolved as far as it exists; the missing rest appended.
    public static func of(_ path: String) -> String { resolve(path) { _, _ in } }

    /// Resolves `path` one name at a time, as the kernel does: a link is followed where it stands, so
    /// `link/..` is the folder above the link's target, not the folder holding the link. `visit` sees
    /// every place reached on the way that exists (links included), with its `lstat`. Past the first
    /// name that does not exist, the rest is appended with `.` and `..` taken as written.
    public static func resolve(_ path: String, visit: (String, stat) -> Void) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var pending = Array(absolute.split(separator: "/").map(String.init).reversed())
        var current: [String] = []   // the place reached: link-free components from the root
        var linksFollowed = 0
        var exists = true
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." { _ = current.popLast(); continue }
            let next = "/" + (current + [name]).joined(separator: "/")
            var info = stat()
            guard exists, lstat(next, &info) == 0 else {
                exists = false
                current.append(name)
                continue
            }
            visit(next, info)
            // Linux gives up after 40 links on one path (ELOOP): so does this walk, the rest taken as names.
            if info.st_mode & S_IFMT == S_IFLNK, linksFollowed < 40, let target = linkTarget(next) {
                linksFollowed += 1
                if target.hasPrefix("/") { current = [] }
                pending += target.split(separator: "/").map(String.init).reversed()
                continue
            }
            current.append(name)
        }
        return "/" + current.joined(separator: "/")
    }

    private static func linkTarget(_ link: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(link, &buffer, Int(PATH_MAX))
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `path` is `folder` or lies below it, both resolved.
    public static func isWithin(_ path: String, _ folder: String) -> Bool {
        let (inner, outer) = (of(path), of(folder))
        return inner == outer || inner.hasPrefix(outer.hasSuffix("/") ? outer : outer + "/")
    }
}
