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
    /// `path` made absolute, with links resolved as far as it exists; the missing rest appended. Nil for
    /// a relative path when the current folder is gone (deleted): it leads nowhere.
    public static func of(_ path: String) -> String? { resolve(path) { _, _ in } }

    /// `path` made absolute and tidied (`.`, `//` and `..` removed), as given, links kept: except that where
    /// the text's reading of a `..` and the filesystem's lead to different places (`link/../x` is beside the
    /// link's target), the filesystem's is taken, when the part up to the `..` exists. For paths a manifest
    /// or option gives.
    public static func tidied(_ path: String) -> String {
        let plain = URL(fileURLWithPath: path).standardizedFileURL.path
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard let last = parts.lastIndex(of: "..") else { return plain }
        let prefix = parts[...last].joined(separator: "/")
        guard let physical = existing(prefix.isEmpty ? "/" : prefix) else { return lexical(path) }
        // Both readings lead to the same folder: the path stays as written, links and all.
        if existing(lexical(prefix)) == physical { return lexical(path) }
        let rest = parts[(last + 1)...].joined(separator: "/")
        return lexical(rest.isEmpty ? physical : physical + "/" + rest)
    }

    /// `path` made absolute (against the current folder) with `.`, empty names and `..` removed by the text
    /// alone. (Foundation's `standardized` follows links for a path that ends in `..`, and not otherwise.)
    static func lexical(_ path: String) -> String {
        var names: [Substring] = []
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        for name in absolute.split(separator: "/") where name != "." {
            if name == ".." { _ = names.popLast() } else { names.append(name) }
        }
        return "/" + names.joined(separator: "/")
    }

    /// `path` with every link resolved, when it leads to something that exists (realpath(3)); else nil.
    public static func existing(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Resolves `path` one name at a time, as the kernel does: a link is followed where it stands, so
    /// `link/..` is the folder above the link's target, not the folder holding the link. `visit` sees
    /// every place reached on the way that exists (links included), with its `lstat`. A name that does
    /// not exist is taken as a folder that will be made (`mkdir -p`): `..` after it comes back, and links
    /// after that are followed again. Nil for a relative path when the current folder is gone.
    public static func resolve(_ path: String, visit: (String, stat) -> Void) -> String? {
        let absolute: String
        if path.hasPrefix("/") {
            absolute = path
        } else {
            // Foundation's currentDirectoryPath is "" for a deleted folder, which would make `out` into `/out`.
            guard let cwd = getcwd(nil, 0) else { return nil }
            defer { free(cwd) }
            absolute = String(cString: cwd) + "/" + path
        }
        var pending = Array(absolute.split(separator: "/").map(String.init).reversed())
        var current: [String] = []   // the place reached: link-free components from the root
        var missing = 0              // how many of `current`'s last names do not exist
        var linksFollowed = 0
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." {
                if current.popLast() != nil, missing > 0 { missing -= 1 }
                continue
            }
            let next = "/" + (current + [name]).joined(separator: "/")
            var info = stat()
            guard missing == 0, lstat(next, &info) == 0 else {
                missing += 1
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

    /// Whether `path` is `folder` or lies below it, both resolved (false when either leads nowhere).
    public static func isWithin(_ path: String, _ folder: String) -> Bool {
        guard let inner = of(path), let outer = of(folder) else { return false }
        return inner == outer || inner.hasPrefix(outer.hasSuffix("/") ? outer : outer + "/")
    }
}

/// The folder part of a path, by its text. Foundation's `NSString.deletingLastPathComponent` traps on a
/// one-character name (`x`, `x/`: swift-corelibs-foundation in Swift 6.3), and such a name is a user's to give.
public enum PathText {
    /// `path` with a leading `~` or `~/` read as the home folder ($HOME), as a shell reads it, so that a manifest's
    /// `data: ~/RAVDESS` means what `--data ~/RAVDESS` does (it was taken as a folder named `~` beside the manifest).
    /// Unchanged without an absolute $HOME, and for `~user` forms.
    public static func withHome(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"], home.hasPrefix("/") else { return path }
        return home + path.dropFirst()
    }

    /// What `stat` says of a path that is no folder: missing, a file, a link that leads to nothing, or a link
    /// loop or permission that hides it.
    public static func whyNotAFolder(_ path: String) -> String {
        var info = stat()
        if stat(path, &info) == 0 { return "is not a folder" }
        let failure = errno
        if failure == ENOENT {
            return lstat(path, &info) == 0 ? "is a link that leads to nothing" : "does not exist"
        }
        return "cannot be reached (\(String(cString: strerror(failure))))"
    }

    /// What `deletingLastPathComponent` answers: `a/b/` → `a`, `/a` → `/`, `a` → ``, `/` → `/`, `` → ``.
    public static func folder(of path: String) -> String {
        var text = Substring(path)
        while text.count > 1, text.hasSuffix("/") { text = text.dropLast() }
        guard let slash = text.lastIndex(of: "/") else { return "" }
        var folder = text[..<slash]
        while folder.hasSuffix("/") { folder = folder.dropLast() }
        return folder.isEmpty ? "/" : String(folder)
    }

    /// The folders a file path lies in, outermost first, by its text: `a/b/f` → `a`, `a/b`; `/x/f` → `/x`; `f` → none.
    /// What `mkdir -p` of the file's folder makes, one call each, where only single calls may be made (a signal handler).
    public static func enclosingFolders(of path: String) -> [String] {
        var chain: [String] = []
        var folder = folder(of: path)
        while !folder.isEmpty, folder != "/", folder != ".", chain.count < 4096 {
            chain.append(folder)
            folder = Self.folder(of: folder)
        }
        return chain.reversed()
    }
}
