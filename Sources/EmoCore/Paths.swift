/// Paths relative to a data root: what ingest's digest, the dataset listing and the scale-out
/// partition use, so that moving the whole root changes none of them.
public enum DataRootPath {
    /// `path` without the `root/` prefix; unchanged when it does not lie under `root`.
    public static func relative(_ path: String, to root: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
