import Foundation

/// Creating the folders EmoPipe writes into. Foundation's error for a file standing where a folder
/// goes ("The operation could not be completed") names neither the file nor the cause, so each
/// missing level is made here and the first one that cannot be is named with its reason.
public enum Folder {
    /// Syncs the folder that holds `path`: a file renamed into it is there after a power cut only once its
    /// folder is on disk too (else the old file may come back).
    public static func syncEntries(holding path: String) {
        let folder = PathText.folder(of: path)
        let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Creates `path` and any missing parents; an existing folder (or a link to one) is left alone.
    /// Returns the folders it made, outermost first. `undoingOnFailure`: a level that cannot be made (a
    /// name too long, a file in the way) removes the levels made before it. Only for a caller that owns
    /// what it makes: another process may have just found such a level there and be writing into it.
    @discardableResult
    public static func create(_ path: String, undoingOnFailure: Bool = false) throws -> [String] {
        guard !path.isEmpty else { throw EmoError.io(path: path, reason: "cannot create a folder with an empty name") }
        var prefix = path.hasPrefix("/") ? "/" : ""
        var made: [String] = []
        do {
            for component in path.split(separator: "/", omittingEmptySubsequences: true) {
                prefix += prefix.isEmpty || prefix.hasSuffix("/") ? String(component) : "/" + component
                if try createLevel(prefix) { made.append(prefix) }
            }
        } catch {
            if undoingOnFailure { for folder in made.reversed() { rmdir(folder) } }
            throw error
        }
        return made
    }

    /// Whether the level was made (false: it was there).
    private static func createLevel(_ path: String) throws -> Bool {
        if mkdir(path, 0o777) == 0 { return true }
        let failure = errno
        var info = stat()
        // EEXIST, or EACCES/EROFS on a level that already exists: only its kind matters then.
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw EmoError.io(path: path, reason: "is a file where a folder should be: move or remove it")
            }
            return false
        }
        // EEXIST where stat finds nothing: a link whose target is gone stands in the way.
        if failure == EEXIST, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
            throw EmoError.io(path: path, reason: "is a link to a folder that does not exist: remove it or create its target")
        }
        throw EmoError.io(path: path, reason: "cannot create the folder: \(String(cString: strerror(failure)))")
    }

    /// Why `create(path)` would fail, judged without making anything (a dry run's question): the nearest
    /// level that exists must be a folder this process may write in, not on /proc or /sys. Nil when it
    /// looks creatable (a full disk, say, shows only when it is made).
    public static func creationProblem(_ path: String) -> EmoError? {
        // A link whose target is gone stands in the way, as `create` says.
        if let link = danglingLink(onPathTo: path) {
            return .io(path: link, reason: "is a link to a folder that does not exist: remove it or create its target")
        }
        // Without trailing slashes: `lstat("link/")` follows a link, so a link to nothing would read as missing.
        var level = path
        while level.count > 1 && level.hasSuffix("/") { level.removeLast() }
        // The outermost level that is missing: the one `create` would fail to make, and name.
        var missing: String?
        while true {
            var info = stat()
            if stat(level, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    return .io(path: level, reason: "is a file where a folder should be: move or remove it")
                }
                let made = missing ?? path
                if KernelFilesystem.holds(path: level, info) {
                    return .io(path: made, reason: "cannot create the folder: \(level) is on the kernel's /proc or /sys filesystem")
                }
                guard missing == nil || access(level, W_OK | X_OK) == 0 else {
                    return .io(path: made, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
                }
                return nil
            }
            missing = level
            // PathText's, not NSString's: Foundation traps on the folder of a one-character relative name ("f").
            let parent = PathText.folder(of: level)
            guard parent != level else { return nil }
            level = parent.isEmpty ? "." : parent
        }
    }

    /// The link whose target is gone that `create(path)` would meet on the way to a missing `path` (the
    /// path itself or a level above it), or nil.
    public static func danglingLink(onPathTo path: String) -> String? {
        var level = path
        while level.count > 1 && level.hasSuffix("/") { level.removeLast() }
        while true {
            var info = stat()
            if stat(level, &info) == 0 { return nil }
            if lstat(level, &info) == 0, info.st_mode & S_IFMT == S_IFLNK { return level }
            let parent = PathText.folder(of: level)
            guard parent != level else { return nil }
            level = parent.isEmpty ? "." : parent
        }
    }
}
