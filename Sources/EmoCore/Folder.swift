import Foundation

/// Creating the folders EmoPipe writes into. Foundation's error for a file standing where a folder
/// goes ("The operation could not be completed") names neither the file nor the cause, so each
/// missing level is made here and the first one that cannot be is named with its reason.
public enum Folder {
    /// Creates `path` and any missing parents; an existing folder (or a link to one) is left alone.
    public static func create(_ path: String) throws {
        guard !path.isEmpty else { throw EmoError.io(path: path, reason: "cannot create a folder with an empty name") }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty || prefix.hasSuffix("/") ? String(component) : "/" + component
            try createLevel(prefix)
        }
    }

    private static func createLevel(_ path: String) throws {
        if mkdir(path, 0o777) == 0 { return }
        let failure = errno
        var info = stat()
        // EEXIST, or EACCES/EROFS on a level that already exists: only its kind matters then.
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw EmoError.io(path: path, reason: "is a file where a folder should be: move or remove it")
            }
            return
        }
        // EEXIST where stat finds nothing: a link whose target is gone stands in the way.
        if failure == EEXIST, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
            throw EmoError.io(path: path, reason: "is a link to a folder that does not exist: remove it or create its target")
        }
        throw EmoError.io(path: path, reason: "cannot create the folder: \(String(cString: strerror(failure)))")
    }
}
