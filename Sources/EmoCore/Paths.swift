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
    /// `path` made absolute, with links resolved as far as it exists; the missing rest appended as written.
    public static func of(_ path: String) -> String {
        var head = URL(fileURLWithPath: path).standardizedFileURL.path
        var missing: [String] = []
        while head != "/" {
            if let resolved = realpath(head, nil) {
                defer { free(resolved) }
                return ([String(cString: resolved)] + missing).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
            }
            missing.insert((head as NSString).lastPathComponent, at: 0)
            head = (head as NSString).deletingLastPathComponent
        }
        return "/" + missing.joined(separator: "/")
    }

    /// Whether `path` is `folder` or lies below it, both resolved.
    public static func isWithin(_ path: String, _ folder: String) -> Bool {
        let (inner, outer) = (of(path), of(folder))
        return inner == outer || inner.hasPrefix(outer.hasSuffix("/") ? outer : outer + "/")
    }
}
