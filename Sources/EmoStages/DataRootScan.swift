import EmoCore
import EmoStore
import Foundation

/// A file found under the data root, with what `stat` says of it.
struct ScannedFile: Equatable, Sendable {
    var path: String
    var size: Int64
    var mtimeNanos: Int64
    /// `inode:ctime-nanoseconds` (`SourceRecord.inodeState`); nil for what could not be stat'ed.
    var inodeState: String? = nil
    /// What the entry is when it is not a regular file (a named pipe, a device): ingest records it as
    /// a failure without opening it, since reading one can block or never end.
    var notRegular: String? = nil
    /// Why the walk could not use this entry at all (a folder it cannot list, a name that is not
    /// UTF-8, a path `stat` refuses): ingest records it as a failure, whatever its name looks like.
    var walkProblem: String? = nil
    /// A folder the walk could not list: what is recorded below it stays as it was.
    var unlistedFolder = false
    /// For a file whose name is not UTF-8: the name with its bad bytes left out, to tell a RAVDESS
    /// file with a stray byte (a failure) from any other file (ignored, as its UTF-8 namesakes are).
    var namePartThatIsUTF8: String? = nil
    /// The reason its row gives when `namePartThatIsUTF8` is no RAVDESS name (nil: the name is not UTF-8).
    var ignoredReason: String? = nil
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
/// disk never make two sources and no layout of links makes the walk repeat itself. A file's best placed
/// path wins over earlier ones (`placement`): a valid RAVDESS name in its actor's folder, then any
/// RAVDESS-shaped name, then others, which would make it ignored.
struct DataRootScan {
    /// The failure row of a folder named as a recording is (`03-01-…wav/`): no recording itself.
    static let folderNamedAsARecording = "a folder named as a RAVDESS recording is, not a file (the files in it are read as any folder's)"

    let root: String
    let files: [ScannedFile]
    /// Links not followed because they lead into a folder the walk is inside.
    let loopsSkipped: [String]
    /// Links not followed because they lead to a folder that holds the data root (`up -> ..`, a link to `/`):
    /// the walk would read files from outside the root, and all of the root again.
    let rootHoldersSkipped: [String]
    /// Folders not walked because they are the kernel's (/proc, /sys; see `KernelFilesystem`).
    let kernelFoldersSkipped: [String]
    /// Paths not used because they reach a folder or file already found under an earlier path:
    /// (the path, the earlier path).
    let aliases: [(path: String, keptAs: String)]

    /// Folders below the root left out because they are among `leavingOut` (the run's work directory kept
    /// inside the data root: its database, shards and runs are no recordings, and change with every run).
    let foldersLeftOut: [String]
    /// Folders left out because they hold an EmoPipe database (SQLite named `emopipe.sqlite`): other work directories.
    let otherWorkDirectories: [String]
    /// Hidden files whose names, without the leading dot, are a recording's: not read, as no hidden file is.
    let hiddenRecordings: [String]

    init(root: String, leavingOut: [String] = []) throws {
        var info = stat()
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw EmoError.io(path: root, reason: "the data root \(PathText.whyNotAFolder(root))")
        }
        if let refusal = KernelFilesystem.rootRefusal(root) { throw EmoError.io(path: root, reason: refusal) }
        self.root = root
        var walk = Walk(rootDevice: UInt64(info.st_dev))
        walk.holdingRoot = Self.foldersHolding(root)
        walk.leftOut = Set(leavingOut.compactMap { folder in
            var facts = stat()
            return stat(folder, &facts) == 0 && facts.st_mode & S_IFMT == S_IFDIR ? FileIdentity(facts) : nil
        })
        // Its database, cache and runs would be read as data, and change with every run.
        if walk.leftOut.contains(FileIdentity(info)) {
            throw EmoError.io(path: root, reason: "the data root is also the work directory: its database, cache and runs would be "
                              + "read as recordings; give the work directory (--workdir) a folder of its own")
        }
        try walk.visit(root, identity: FileIdentity(info), ancestors: [])
        var files = walk.files.sorted { $0.path < $1.path }  // failure rows join the walk's order out of turn
        var aliases = walk.aliases
        nameConflicts = Self.preferPlacedNames(&files, aliases: &aliases, folderAliases: walk.folderAliases)
        self.files = files.sorted { $0.path < $1.path }
        loopsSkipped = walk.loopsSkipped
        rootHoldersSkipped = walk.rootHoldersSkipped
        kernelFoldersSkipped = walk.kernelFoldersSkipped
        foldersLeftOut = walk.foldersLeftOut
        otherWorkDirectories = walk.otherWorkDirectories
        hiddenRecordings = walk.hiddenRecordings.sorted()
        self.aliases = aliases
    }

    /// Whether a hidden name would be a recording's without its leading dots (`.03-01-…wav`): skipped as every
    /// hidden file is, but said so. AppleDouble companions (`._03-01-…wav`) are no recordings, and are not.
    static func isHiddenRecording(_ name: [UInt8]) -> Bool {
        guard name.first == UInt8(ascii: "."), let text = String(validating: name, as: UTF8.self) else { return false }
        guard case .source = RavdessName.parse(fileName: String(text.drop { $0 == "." })) else { return false }
        return true
    }

    /// The folders above the root's real path, up to `/`, by identity.
    static func foldersHolding(_ root: String) -> Set<FileIdentity> {
        guard let real = realpath(root, nil) else { return [] }
        defer { free(real) }
        var folder = String(cString: real), holding: Set<FileIdentity> = []
        while folder != "/" && !folder.isEmpty {
            folder = PathText.folder(of: folder)
            var facts = stat()
            if stat(folder, &facts) == 0 { holding.insert(FileIdentity(facts)) }
        }
        return holding
    }

    /// Files reached under two or more RAVDESS names that say different things (a link `03-01-01-…` to an
    /// angry `03-01-05-…`): at least one name is wrong, said once per file, naming the one read.
    let nameConflicts: [String]

    /// How well a path's name places a recording: a valid RAVDESS name in its actor's folder (or a folder
    /// that names no actor) is read as it says; then any RAVDESS-shaped name (ingest refuses it, saying why);
    /// then any other name (ignored).
    static func placement(_ path: String) -> (rank: Int, codes: RavdessCodes?) {
        switch RavdessName.parse(fileName: (path as NSString).lastPathComponent) {
        case .notRavdess: return (0, nil)
        case .invalid: return (1, nil)
        case .source(let codes): return (ActorFolder.mismatch(path: path, codes: codes) == nil ? 2 : 1, codes)
        }
    }

    /// The most other paths weighed for all files together (a thousand links to a folder of thousands of
    /// files): past it, files keep their first path.
    static let maximumOtherPaths = 1_000_000

    /// Reads each file reached by several paths (links, hard links, linked folders) under its best placed
    /// path rather than the first: a link `Actor_00 -> Actor_02` sorts first, but the files in Actor_02 are
    /// where their names say, and reading them under Actor_00 failed them all. Equal placements keep the
    /// first path. `files` is sorted by path. Returns what `nameConflicts` says.
    private static func preferPlacedNames(_ files: inout [ScannedFile], aliases: inout [(path: String, keptAs: String)],
                                          folderAliases: [(path: String, keptAs: String)]) -> [String] {
        guard !aliases.isEmpty else { return [] }
        var others: [Int: [String]] = [:]
        let index = Dictionary(files.enumerated().map { ($1.path, $0) }, uniquingKeysWith: { a, _ in a })
        // Every path walked to a file (its first, and the second paths to it), in path order.
        var walked = files.indices.map { (path: files[$0].path, file: $0) }
        for alias in aliases {
            guard let i = index[alias.keptAs], walked.count < maximumOtherPaths else { continue }
            others[i, default: []].append(alias.path)
            walked.append((alias.path, i))
        }
        walked.sort { $0.path < $1.path }
        var weighed = walked.count
        // Each path below a folder reached again is a path below the second one too. Those below a folder are
        // contiguous in path order: found by binary search, not by a scan per link.
        for folder in folderAliases {
            let prefix = folder.keptAs + "/"
            var low = 0, high = walked.count
            while low < high { let mid = (low + high) / 2; if walked[mid].path < prefix { low = mid + 1 } else { high = mid } }
            var k = low
            while k < walked.count, walked[k].path.hasPrefix(prefix), weighed < maximumOtherPaths {
                others[walked[k].file, default: []].append(folder.path + "/" + walked[k].path.dropFirst(prefix.count)); weighed += 1
                k += 1
            }
        }
        var conflicts: [String] = []
        /// Each first path read under another one now: the aliases are rewritten once, after the loop (per file it was quadratic).
        var movedTo: [String: String] = [:]
        for (i, paths) in others.sorted(by: { $0.key < $1.key }) where files[i].walkProblem == nil {
            let first = files[i].path
            let ranked = ([first] + paths.sorted()).map { (path: $0, placement: placement($0)) }
            // The first of the best placed (ranked lists the first path first).
            let top = ranked.map(\.placement.rank).max() ?? 0
            guard let chosen = ranked.first(where: { $0.placement.rank == top }) else { continue }
            let placed = ranked.filter { $0.placement.rank == 2 }
            if let codes = chosen.placement.codes, let other = placed.first(where: { $0.placement.codes != codes }) {
                conflicts.append("\(chosen.path.escaped) is also reached as \(other.path.escaped) (a link or a linked folder), and the two names "
                                 + "disagree, so at least one is mislabelled: read as \(chosen.path.escaped); remove the wrong link")
            }
            guard chosen.path != first else { continue }
            files[i].path = chosen.path
            movedTo[first] = chosen.path
        }
        guard !movedTo.isEmpty else { return conflicts }
        let chosenPaths = Set(movedTo.values)
        aliases = aliases.filter { !chosenPaths.contains($0.path) }.map { ($0.path, movedTo[$0.keptAs] ?? $0.keptAs) }
            + movedTo.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return conflicts
    }

    /// A depth-first walk in path order: entries are visited sorted by name, a folder's name
    /// compared as "name/", which makes the order of the files found the order of their full paths
    /// ("a-b/x" before "a/x"). So the first path by which a folder or file is reached is also the
    /// lexicographically first.
    private struct Walk {
        /// An entry on the root's own device cannot be on /proc or /sys: only others are looked at.
        let rootDevice: UInt64
        init(rootDevice: UInt64) { self.rootDevice = rootDevice }
        var files: [ScannedFile] = []
        var loopsSkipped: [String] = []
        /// The folders that hold the root, by identity, and the links met that lead to one.
        var holdingRoot: Set<FileIdentity> = []
        var rootHoldersSkipped: [String] = []
        var kernelFoldersSkipped: [String] = []
        /// Folders not to walk, by identity (so whatever path or link reaches them), and where they were met.
        var leftOut: Set<FileIdentity> = []
        var foldersLeftOut: [String] = []
        var otherWorkDirectories: [String] = []
        var aliases: [(path: String, keptAs: String)] = []
        /// The aliases that are folders: each file below the kept folder has a path below the alias too.
        var folderAliases: [(path: String, keptAs: String)] = []
        var hiddenRecordings: [String] = []
        private var seen: [FileIdentity: String] = [:]

        /// `ancestors`: the folders on the path from the root down to `folder`, by identity.
        mutating func visit(_ folder: String, identity: FileIdentity, ancestors: Set<FileIdentity>) throws {
            seen[identity] = folder
            let inside = ancestors.union([identity])
            let entries: [(path: String, info: stat)]
            do { entries = try self.entries(of: folder) } catch let EmoError.io(_, reason) where !ancestors.isEmpty {
                // Only the root must be listable: a folder below it is one failure, not the whole run's.
                recordProblem(folder, "\(reason): the files in it are not read (what was recorded of them is kept)",
                              unlistedFolder: true)
                return
            }
            for (path, info) in entries {
                let entry = FileIdentity(info)
                let isFolder = info.st_mode & S_IFMT == S_IFDIR
                if isFolder && inside.contains(entry) { loopsSkipped.append(path); continue }
                if isFolder && leftOut.contains(entry) { foldersLeftOut.append(path); continue }
                if isFolder && Workspace.isWorkDirectory(path) { otherWorkDirectories.append(path); continue }
                // Ending there, or passing through there (`/proc/self/cwd/...`, `/proc/self/root`: a real folder,
                // but another one for every process, the whole machine for the last).
                let onTheKernels = UInt64(info.st_dev) != rootDevice && KernelFilesystem.holds(path: path, info)
                    || Self.isLink(path) && KernelFilesystem.resolve(path).throughKernel
                if isFolder && onTheKernels { kernelFoldersSkipped.append(path); continue }
                if isFolder && holdingRoot.contains(entry) { rootHoldersSkipped.append(path); continue }
                if onTheKernels {
                    // /proc/self/environ, /proc/kmsg: no recording, and reading one may block or never end.
                    recordProblem(path, "a link into the kernel's /proc or /sys filesystem: not read")
                    continue
                }
                if let first = seen[entry] {
                    aliases.append((path, first))
                    if isFolder { folderAliases.append((path, first)) }
                    continue
                }
                if isFolder {
                    // Named as a recording is (`03-01-…wav/`): a copy or an unpacking gone wrong, said once, not
                    // passed over in silence; what is in it is walked as any folder's files are.
                    if Self.isRavdessNamed(path) {
                        recordProblem(path, DataRootScan.folderNamedAsARecording)
                    }
                    try visit(path, identity: entry, ancestors: inside)
                } else {
                    seen[entry] = path
                    files.append(ScannedFile(path: path, size: Int64(info.st_size), mtimeNanos: info.mtimeNanos,
                                             inodeState: FileState(info).inodeState, notRegular: Self.kindIfNotRegular(info.st_mode)))
                }
            }
        }

        static func isLink(_ path: String) -> Bool {
            var facts = stat()
            return lstat(path, &facts) == 0 && facts.st_mode & S_IFMT == S_IFLNK
        }

        static func isRavdessNamed(_ path: String) -> Bool {
            if case .notRavdess = RavdessName.parse(fileName: (path as NSString).lastPathComponent) { return false }
            return true
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

        /// A folder below the root that cannot be listed, or an entry with a name that is not UTF-8 or
        /// that `stat` refuses: one failure row for it, and the walk goes on with the rest.
        private mutating func recordProblem(_ path: String, _ problem: String, unlistedFolder: Bool = false,
                                            namePartThatIsUTF8: String? = nil, ignoredReason: String? = nil) {
            files.append(ScannedFile(path: path, size: 0, mtimeNanos: 0, walkProblem: problem, unlistedFolder: unlistedFolder,
                                     namePartThatIsUTF8: namePartThatIsUTF8, ignoredReason: ignoredReason))
        }

        /// One listed entry: its path, and what `stat` said or why it could not be used.
        private enum Entry {
            case found(path: String, info: stat)
            case unusable(path: String, problem: String, namePartThatIsUTF8: String? = nil, ignoredReason: String? = nil)
        }

        /// Whether folder/name (raw bytes) is a folder, following links.
        private static func isFolder(_ folder: String, rawName: [UInt8]) -> Bool {
            var info = stat()
            let path = (Array(folder.utf8) + [UInt8(ascii: "/")] + rawName + [0]).map { CChar(bitPattern: $0) }
            return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
        }

        /// The folder's visible entries with what `stat` says of them (links followed), in walk order.
        private mutating func entries(of folder: String) throws -> [(path: String, info: stat)] {
            let names = try Self.names(in: folder)
            let spellings = Self.firstSpellings(names)
            var listed: [(key: String, entry: Entry)] = []
            hiddenRecordings += names.filter { DataRootScan.isHiddenRecording($0) && !Self.isFolder(folder, rawName: $0) }
                .map { folder + "/" + String(decoding: $0, as: UTF8.self) }
            for bytes in names where bytes.first != UInt8(ascii: ".") {
                guard let name = String(validating: bytes, as: UTF8.self) else {
                    let shownName = InvalidUTF8.shown(bytes), shown = folder + "/" + shownName
                    let isFolder = Self.isFolder(folder, rawName: bytes)
                    let validPart = isFolder ? nil : String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\u{FFFD}", with: "")
                    listed.append((shownName, .unusable(path: shown, problem: "the name is not valid UTF-8 "
                        + "(shown here with \\x escapes); emopipe reads UTF-8 names only: not read (rename it)",
                        namePartThatIsUTF8: validPart)))
                    continue
                }
                if let first = spellings[name], first != bytes {
                    if let entry = Self.secondSpelling(name, of: first, in: folder, among: spellings) { listed.append(entry) }
                    continue
                }
                let path = folder + "/" + name
                var info = stat()
                if stat(path, &info) == 0 {
                    listed.append((info.st_mode & S_IFMT == S_IFDIR ? name + "/" : name, .found(path: path, info: info)))
                    continue
                }
                let reason = String(cString: strerror(errno))
                // A dangling link is listed as a file, so that ingest records it as a failure (reading
                // it says why) instead of it passing unseen; an entry that vanished is left out.
                if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
                    info.st_mode = (info.st_mode & ~S_IFMT) | S_IFREG
                    listed.append((name, .found(path: path, info: info)))
                } else if errno != ENOENT {
                    listed.append((name, .unusable(path: path, problem: "cannot be examined (\(reason)): not read")))
                }
            }
            var found: [(path: String, info: stat)] = []
            for (_, entry) in listed.sorted(by: { $0.key < $1.key }) {
                switch entry {
                case .found(let path, let info): found.append((path, info))
                case .unusable(let path, let problem, let validPart, let ignoredReason):
                    recordProblem(path, problem, namePartThatIsUTF8: validPart, ignoredReason: ignoredReason)
                }
            }
            return found
        }

        /// A name spelt as `first` is, in other code points. Swift compares strings by their Unicode meaning: two such
        /// names would be one key everywhere (and trapped building a dictionary of sources). The same file or folder
        /// under both (a link) is read once, under the first (nil); another is a row of its own under its \u-escaped
        /// name: ignored when no recording, else a failure.
        private static func secondSpelling(_ name: String, of first: [UInt8], in folder: String,
                                           among spellings: [String: [UInt8]]) -> (key: String, entry: Entry)? {
            let firstName = String(decoding: first, as: UTF8.self)
            var mine = stat(), theirs = stat()
            let here = stat(folder + "/" + name, &mine) == 0, there = stat(folder + "/" + firstName, &theirs) == 0
            if here && there && FileIdentity(mine) == FileIdentity(theirs) { return nil }
            let shownName = unambiguous(name, among: spellings)
            let isFolder = here && mine.st_mode & S_IFMT == S_IFDIR
            let clash = "spelt as \(firstName.echoed) is, in other Unicode code points (shown here with \\u escapes; Unicode spells "
                + "some letters several ways, é as one code point or as e and an accent): emopipe cannot tell the two apart, and reads the first by byte order only"
            return (shownName, .unusable(path: folder + "/" + shownName, problem: "the name is \(clash): not read (rename one)",
                                         namePartThatIsUTF8: isFolder ? nil : name, ignoredReason: "not a RAVDESS file name, and \(clash)"))
        }

        /// For each name in a folder, the first of its spellings by byte order: names that differ only in
        /// Unicode normalisation (é as one code point or as e and a combining accent) are equal as Strings.
        static func firstSpellings(_ names: [[UInt8]]) -> [String: [UInt8]] {
            var first: [String: [UInt8]] = [:]
            for bytes in names where bytes.first != UInt8(ascii: ".") {
                guard let name = String(validating: bytes, as: UTF8.self) else { continue }
                if let earlier = first[name], earlier.lexicographicallyPrecedes(bytes) { continue }
                first[name] = bytes
            }
            return first
        }

        /// The name with every non-ASCII code point spelt \u{…}: a key no other spelling of it shares, made longer
        /// in the unlikely case that a file in the folder is named so.
        static func unambiguous(_ name: String, among spellings: [String: [UInt8]]) -> String {
            var shown = name.unicodeScalars.map { $0.isASCII ? String($0) : "\\u{\(String($0.value, radix: 16, uppercase: true))}" }.joined()
            while spellings[shown] != nil { shown += "~" }
            return shown
        }

        /// The raw names in a folder (readdir), "." and ".." left out.
        private static func names(in folder: String) throws -> [Array<UInt8>] {
            guard let directory = opendir(folder) else {
                throw EmoError.io(path: folder, reason: "cannot list the folder (\(String(cString: strerror(errno))))")
            }
            defer { closedir(directory) }
            var names: [Array<UInt8>] = []
            while true {
                errno = 0
                guard let entry = readdir(directory) else {
                    if errno != 0 {
                        throw EmoError.io(path: folder, reason: "cannot list the folder (\(String(cString: strerror(errno))))")
                    }
                    return names
                }
                let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
                if bytes == [46] || bytes == [46, 46] { continue }
                names.append(bytes)
            }
        }
    }
}
