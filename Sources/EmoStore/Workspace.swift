import EmoCore
import Foundation

/// A work directory (default `./work`) and its layout. Every path inside it is spelled here and
/// only here; the rest of the code asks this type.
///
///     emopipe.sqlite                    provenance (WAL mode)
///     emopipe.lock                      held by the one run allowed at a time; names its holder
///     .emopipe.lock.guard               locked with it (removing a held emopipe.lock lets no second run in)
///     executable.sha256                 the running binary's hash, remembered between runs
///     worker.txt                        in a scale-out worker's work directory: its slice (`I/N`)
///     data-root.txt                     the data root the last `run --data` named (commands without --data use it)
///     cache/<stage>/<fp16>/*.shard      immutable tensor shards of one stage and cache key (parameters fingerprint)
///     cache/train/<fp16>/fold-<k>/      training checkpoints of one fold
///     cache/split/<fp16>.json           the split plan
///     runs/<run-id>/                    manifest copy and the run's outputs
///     nightly/<run-id>.{json,md}        nightly reports; `nightly/LATEST` names the last good one
///     workers/<I>-of-<N>/               scale-out workers' own work directories
///     workers/sweep-<sweep>-<I>-of-<N>/ sweep workers' own work directories (`sweep-worker.txt` names sweep and slice)
///     sweeps/<sweep>/                   a sweep's state.json, running.json, sweep.lock (and .sweep.lock.guard), leaderboard.json, report.html, best.yaml
///     reproductions/<run-id>-<stamp>/   where `emopipe reproduce` re-runs a run by default
///
/// `<fp16>` is the first 16 hex digits of a fingerprint. The Python reader mirrors the paths it
/// opens (the database, the cache folder) in `python/emopipe/layout.py`: change both together.
///
///     let workspace = Workspace(root: "work")
///     let store = try workspace.openStore(.readOnly)
public struct Workspace: Sendable, Equatable {
    public let root: String

    public init(root: String) {
        self.root = URL(fileURLWithPath: root).standardizedFileURL.path
    }

    /// The path inside the work directory of a file under its root; nil for one elsewhere.
    public func relativePath(_ absolute: String) -> String? {
        absolute.hasPrefix(root + "/") ? String(absolute.dropFirst(root.count + 1)) : nil
    }

    /// A path inside the work directory from one relative to it (as the shard index records them).
    public func path(_ relative: String) -> String { root + "/" + relative }

    // MARK: Provenance and the lock

    public var databasePath: String { path(Self.databaseName) }
    public static let databaseName = "emopipe.sqlite"

    /// Whether `folder` is a work directory: it holds an SQLite database by the provenance database's name
    /// (a file of that name that is not SQLite, an empty one or a folder does not make it one).
    public static func isWorkDirectory(_ folder: String) -> Bool {
        var facts = stat()
        let path = folder + "/" + databaseName
        return lstat(path, &facts) == 0 && facts.st_mode & S_IFMT == S_IFREG && RegularFile.starts(path, with: DatabaseFile.sqliteHeader)
    }
    public var lockPath: String { path("emopipe.lock") }

    /// Why SQLite could not open this work directory's database for the length of its path, judged before
    /// anything is made: a refusal after creating the folders left them behind, lock files and all.
    public var databasePathProblem: String? {
        var facts = stat()
        let making = lstat(databasePath, &facts) != 0
        do { try DatabaseFile.checkPathLength(databasePath, making: making); return nil } catch let error as EmoError {
            guard case .io(_, let reason) = error else { return error.description }
            return "the provenance database there, \(Self.databaseName): \(reason)"
        } catch { return "\(error)" }
    }
    public var executableHashPath: String { path("executable.sha256") }

    /// Whether a work directory exists here: something is at the database's name. A link that leads nowhere
    /// is there too (and `openStore` names it), not "no work directory yet" over a work directory's cache and runs.
    public var exists: Bool { var facts = stat(); return lstat(databasePath, &facts) == 0 }

    /// Why there is no database although a work directory's folders are here (cache/ or runs/): it was removed,
    /// or left behind when the folder was copied. Nil when there is a database, or nothing of a work directory.
    public var missingDatabase: String? {
        guard !exists else { return nil }
        let kept = [cacheRoot, runsRoot].filter { folder in
            var facts = stat()
            return stat(folder, &facts) == 0 && facts.st_mode & S_IFMT == S_IFDIR
        }
        guard !kept.isEmpty else { return nil }
        let names = kept.map { ($0 as NSString).lastPathComponent + "/" }.joined(separator: " and ")
        return "\(names) \(kept.count == 1 ? "is" : "are") here but not emopipe.sqlite, the provenance database that records them (removed, or not copied with them): "
            + "restore it; a run without it records everything anew and computes every stage again"
    }

    /// Why the database's name is a link that cannot be followed (its target gone, an unmounted disk, a
    /// loop), or nil.
    func brokenDatabaseLink() -> String? {
        var facts = stat()
        guard lstat(databasePath, &facts) == 0, facts.st_mode & S_IFMT == S_IFLNK, stat(databasePath, &facts) != 0 else { return nil }
        let reason = String(cString: strerror(errno))
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: databasePath)) ?? "?"
        return "a link to \(target.echoed) that cannot be followed (\(reason)): restore or mount what it leads to, or remove the link"
    }

    /// Creates the folders a run writes into.
    public func create() throws {
        for folder in [root, cacheRoot, runsRoot] { try Folder.create(folder) }
    }

    /// How a command uses the provenance database.
    public enum Access: Sendable {
        /// Inspects only: opened read-only, so a read-only work directory can be read.
        case readOnly
        /// Records runs: created (with its schema) when missing, migrated when older.
        case readWrite
    }

    /// What a reader says of a path that holds no work directory: the default `work` is empty until a first
    /// run, and a new user's first look is often at another one (`work-demo`) named without --workdir.
    public static let noneHere = "no work directory here yet (run `emopipe run` first, or name an existing one with --workdir or $EMOPIPE_WORKDIR)"

    /// The provenance database. A reader finds no work directory here when it is missing; a
    /// file that is empty or not EmoPipe's is refused, never re-created or migrated over.
    public func openStore(_ access: Access) throws -> ProvenanceStore {
        if let broken = brokenDatabaseLink() { throw EmoError.io(path: databasePath, reason: broken) }
        switch access {
        case .readOnly:
            guard exists else {
                throw EmoError.io(path: root, reason: missingDatabase ?? Self.noneHere)
            }
            return try ProvenanceStore(readingPath: databasePath)
        case .readWrite:
            return try ProvenanceStore(path: databasePath)
        }
    }

    // MARK: The remembered data root

    /// `data-root.txt`: the data root the last `run --data` (or `nightly --data`) named. Commands
    /// given no `--data` judge against it rather than the manifest's `data`, so `status` after
    /// `run --data X` speaks of X.
    public var dataRootPath: String { path("data-root.txt") }

    /// Longest path `data-root.txt` may hold (Linux's PATH_MAX): the file is read no further.
    static let maximumDataRootBytes = 4096

    /// The remembered data root; nil when no run here was given `--data`. A file that does not hold
    /// one absolute path on one line (edited, truncated, another program's) is refused by name
    /// rather than half-used or silently skipped.
    public func rememberedDataRoot() throws -> String? {
        let refuse = { (why: String) in EmoError.io(path: self.dataRootPath, reason: "\(why): it should hold the one absolute data root a `run --data` named; remove it or give --data") }
        // Opened without blocking and checked once open: a folder here would read as empty, a pipe block.
        var info = stat()
        if lstat(dataRootPath, &info) != 0 {
            let code = errno
            if code == ENOENT { return nil }
            // Not there to judge (a work directory this user may not search, a path too long to name it): said as
            // such, not as a file holding the wrong thing.
            throw EmoError.io(path: dataRootPath, reason: "cannot be looked for: \(String(cString: strerror(code)))")
        }
        let opened: (descriptor: Int32, size: Int64)
        do { opened = try RegularFile.openForReading(dataRootPath) } catch {
            let reason = EmoError.reason(of: error)
            throw refuse(reason == RegularFile.notRegular ? "is not a regular file" : reason)
        }
        let handle = FileHandle(fileDescriptor: opened.descriptor, closeOnDealloc: true)
        let bytes = (try? handle.read(upToCount: Self.maximumDataRootBytes + 2)) ?? Data()
        guard bytes.count <= Self.maximumDataRootBytes + 1 else { throw refuse("is longer than a path can be") }
        guard var text = String(data: bytes, encoding: .utf8) else { throw refuse("is not UTF-8 text") }
        if text.hasSuffix("\n") { text.removeLast() }
        // Emptied (`> data-root.txt`, with or without blank lines): nothing remembered, as when absent.
        guard !text.allSatisfy(\.isWhitespace) else { return nil }
        guard text.hasPrefix("/"), !text.contains("\n"), !text.contains("\0") else {
            throw refuse("does not hold one absolute path on one line")
        }
        return text
    }

    /// Remembers `root` (an absolute path) as this work directory's data root.
    public func rememberDataRoot(_ root: String) throws {
        try Folder.create(self.root)
        try DurableFile.write(Data((root + "\n").utf8), to: dataRootPath)
    }

    // MARK: Cache

    public static let cacheFolderName = "cache"
    public var cacheRoot: String { path(Self.cacheFolderName) }

    /// The shard folder of one stage and parameters fingerprint, relative to the work directory.
    public func relativeCacheFolder(stage: String, fingerprint: String) -> String {
        "\(Self.cacheFolderName)/\(stage)/\(fingerprint.prefix(16))"
    }

    /// Whether `name` is one plain path component: ASCII letters, digits, `.`, `_` and `-` only (bytes,
    /// not Characters: `/` followed by a combining mark is one Character but still a `/`), and not `.` or `..`.
    public static func isPlainName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
    }

    /// Whether `relative` is where the cache puts a shard of `stage` (a per-source stage) under
    /// `fingerprint`: `cache/<stage>/<fingerprint prefix>/<plain name>.shard`. A row from another work
    /// directory (a worker's) naming anything else would copy or delete outside the cache.
    public func isShardPath(_ relative: String, stage: String, fingerprint: String) -> Bool {
        guard [StageName.audio.rawValue, StageName.faces.rawValue].contains(stage) else { return false }
        let folder = relativeCacheFolder(stage: stage, fingerprint: fingerprint) + "/"
        guard relative.hasPrefix(folder) else { return false }
        let name = relative.dropFirst(folder.count)
        return name.hasSuffix(".shard") && Self.isPlainName(name)
            && relative.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(Self.isPlainName)
    }

    /// Whether `runId` can name a folder under `runs/`: one plain name (a run row from another work
    /// directory could otherwise name `../..`, or hold terminal escapes).
    public static func isRunFolderName(_ runId: String) -> Bool { isPlainName(runId) }

    /// Another work directory's database (a worker's), opened to read only: not a link (SQLite would put
    /// its `-shm` file beside the link's target), and never upgraded in place.
    public func openForeignStore() throws -> ProvenanceStore {
        var facts = stat()
        guard lstat(databasePath, &facts) == 0, facts.st_mode & S_IFMT == S_IFREG else {
            throw EmoError.io(path: databasePath, reason: "is missing, a link or not a regular file")
        }
        return try ProvenanceStore(readingPath: databasePath, upgrade: false)
    }

    /// Whether every folder of `relative` under the root is a real folder, not a link.
    public func isLinkFree(_ relative: String) -> Bool {
        var current = root
        for part in relative.split(separator: "/") {
            current += "/" + part
            var facts = stat()
            guard lstat(current, &facts) == 0, facts.st_mode & S_IFMT == S_IFDIR else { return false }
        }
        return true
    }

    /// Creates `relative`'s folders under the root, refusing any that is a link or not a folder: a
    /// merged link (`cache/x -> /elsewhere`) must not carry a write out of the work directory. The
    /// first folder (`cache`, `runs`) may be a link to a folder: only the user makes those (say, to
    /// put the cache on a bigger disk); merge never copies a link.
    public func createFoldersWithoutLinks(_ relative: String) throws {
        var current = root
        for (depth, part) in relative.split(separator: "/").enumerated() {
            current += "/" + part
            var facts = stat()
            let examined = depth == 0 ? stat(current, &facts) : lstat(current, &facts)
            if examined != 0 {
                guard mkdir(current, 0o755) == 0 || errno == EEXIST else {
                    throw EmoError.io(path: current, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
                }
                guard lstat(current, &facts) == 0 else { throw EmoError.io(path: current, reason: "cannot examine the folder") }
            }
            guard facts.st_mode & S_IFMT == S_IFDIR else {
                throw EmoError.io(path: current, reason: "is a link or not a folder; EmoPipe writes only inside the work directory's own folders")
            }
        }
    }

    /// A cache file named by a database row: only a relative path inside `cache/` without `.` or `..`
    /// parts is used, so a damaged or hand-edited row cannot make gc delete, or a reader open, a file
    /// elsewhere (`../notes.txt`).
    public func cacheFile(_ relative: String) throws -> String {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == Substring(Self.cacheFolderName),
              !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw CacheError.io(path: databasePath, reason: "a cache row names \(relative.echoed), which is not a file inside "
                                + "\(Self.cacheFolderName)/; refused (the row was not written by EmoPipe)")
        }
        return path(relative)
    }

    /// A path found under `cacheRoot`, as the shard index records it (relative to the work directory).
    public func relativeCachePath(_ underCacheRoot: String) -> String { "\(Self.cacheFolderName)/\(underCacheRoot)" }

    /// The train stage's checkpoints: one folder per fingerprint.
    public var trainRoot: String { cacheRoot + "/" + StageName.train.rawValue }

    /// The train stage's checkpoints for one fingerprint: one `fold-<k>` folder per fold.
    public func trainFolder(fingerprint: String) -> String {
        path(relativeCacheFolder(stage: StageName.train.rawValue, fingerprint: fingerprint))
    }

    public func trainFoldFolder(fingerprint: String, fold: Int) -> String {
        trainFolder(fingerprint: fingerprint) + "/" + Self.foldFolderName(fold)
    }

    public static func foldFolderName(_ fold: Int) -> String { "fold-\(fold)" }

    /// The fold a `fold-<k>` folder name stands for; nil for any other name.
    public static func fold(folderName: String) -> Int? {
        guard folderName.hasPrefix("fold-") else { return nil }
        return Int(folderName.dropFirst("fold-".count))
    }

    /// The split stage's plan for one fingerprint.
    public func splitPlanPath(fingerprint: String) -> String {
        path(relativeCacheFolder(stage: StageName.split.rawValue, fingerprint: fingerprint) + ".json")
    }

    // MARK: Runs

    static let runsFolderName = "runs"
    public var runsRoot: String { path(Self.runsFolderName) }
    public func runFolder(_ runId: String) -> String { runsRoot + "/" + runId }

    public func runFile(_ runId: String, _ file: RunFile) -> String { file.path(in: runFolder(runId)) }

    /// The sources a run used (relative path, SHA-256), written by the runner.
    public func datasetListingPath(runId: String) -> String { runFile(runId, .dataset) }

    /// The copy of the manifest a run was started with.
    public func manifestCopyPath(runId: String) -> String { runFile(runId, .manifest) }

    /// Where a command's `RUN` argument points: a path to a run's folder as given, else a run id
    /// under `runs/` (design.md: RUN is either).
    public func runFolder(reference: String) -> String {
        FileManager.default.fileExists(atPath: reference) ? reference : runFolder(reference)
    }

    /// The run id a `RUN` argument names: the folder's name.
    public static func runId(reference: String) -> String {
        URL(fileURLWithPath: reference).lastPathComponent
    }

    static let reproductionsFolderName = "reproductions"

    /// Where `emopipe reproduce` re-runs a run unless told otherwise.
    public func reproduction(of runId: String, stamp: String) -> Workspace {
        Workspace(root: path("\(Self.reproductionsFolderName)/\(runId)-\(stamp)"))
    }

    // MARK: Sweeps

    static let sweepsFolderName = "sweeps"
    public var sweepsRoot: String { path(Self.sweepsFolderName) }
    public func sweepFolder(_ sweepId: String) -> SweepFolder { SweepFolder(path: sweepsRoot + "/" + sweepId) }

    /// The folders a sweep worker brings back whole: its runs' folders and its trained models.
    public static let sweepWorkerOutputFolders = [runsFolderName, "\(cacheFolderName)/\(StageName.train.rawValue)"]

    // MARK: Nightly reports

    static let nightlyFolderName = "nightly"
    public var nightlyFolder: String { path(Self.nightlyFolderName) }

    /// The folders under which EmoPipe writes files through `DurableFile` (besides `cache/` and the work
    /// directory itself), so where a killed write may have left a `.part-<pid>` file, and whether each is
    /// written only under the work-directory lock: a sweep writes its folder under its own `sweep.lock`,
    /// and nightly writes its report once the run has let go of the lock.
    static let durablyWrittenFolders: [(name: String, underWorkDirectoryLock: Bool)] =
        [(runsFolderName, true), (sweepsFolderName, false), (nightlyFolderName, false)]

    /// `nightly/<run-id>.<fileExtension>` (json or md).
    public func nightlyReportPath(runId: String, fileExtension: String) -> String {
        "\(nightlyFolder)/\(runId).\(fileExtension)"
    }

    /// Names the run of the last nightly report whose pipeline completed.
    public var nightlyLatestPath: String { nightlyFolder + "/LATEST" }

    /// The work directory among whose own files `path` (followed through links) would lie, with that folder
    /// (its cache, runs, sweeps, nightly or workers folder): a work directory made there would have its files
    /// listed, replaced or removed as that one's (`cache gc` removed a nested one's shards as leftovers; `merge`
    /// fails on a folder in workers/ that no worker made). Its reproductions folder holds work directories by design,
    /// and the workers folder those its workers make themselves.
    public static func enclosingOwnFolder(of path: String) -> (workspace: Workspace, folder: String)? {
        guard let resolved = ResolvedPath.of(path) else { return nil }
        var current = resolved
        while current != "/" && !current.isEmpty {
            let parent = PathText.folder(of: current)
            let enclosing = Workspace(root: parent.isEmpty ? "/" : parent)
            if enclosing.exists, let folder = [enclosing.cacheRoot, enclosing.runsRoot, enclosing.sweepsRoot, enclosing.nightlyFolder, enclosing.workersRoot]
                .first(where: { ResolvedPath.isWithin(resolved, $0) }) {
                // A worker's own work directory is one, refused by its commands with what to do instead.
                let candidate = Workspace(root: resolved)
                let ownWorker = [candidate.workerMarkerPath, candidate.sweepWorkerMarkerPath].contains { FileManager.default.fileExists(atPath: $0) }
                return folder == enclosing.workersRoot && ownWorker ? nil : (enclosing, folder)
            }
            current = parent
        }
        return nil
    }

    /// The work directory's own folders, where EmoPipe adds, lists and removes files by its own rules:
    /// files another tool writes there could be taken for EmoPipe's or removed as leftovers.
    public var ownFolders: [String] { [cacheRoot, runsRoot, sweepsRoot, nightlyFolder, workersRoot, path(Self.reproductionsFolderName)] }

    /// Where a file a run recorded by its absolute path is now: that path, else the same file in this
    /// work directory (one copied or moved keeps the paths its runs recorded), else nil when it is gone.
    /// The same file is the recorded path's tail from one of the work directory's own folders on.
    /// This work directory's own copy comes first: a copy's rows still name the original's files.
    public func whereNow(recorded path: String) -> String? {
        let exists = { FileManager.default.fileExists(atPath: $0) }
        if relativePath(path) != nil { return exists(path) ? path : nil }
        let names = Set(ownFolders.map { URL(fileURLWithPath: $0).lastPathComponent })
        let parts = path.split(separator: "/")
        // A damaged row's `cache/../..` must not lead out of the work directory.
        if !parts.contains(where: { $0 == ".." || $0 == "." }) {
            for start in parts.indices where names.contains(String(parts[start])) {
                let here = self.path(parts[start...].joined(separator: "/"))
                if exists(here) { return here }
            }
        }
        return exists(path) ? path : nil
    }

    // MARK: Scale-out workers

    public var workersRoot: String { path("workers") }

    /// Worker `index` of `count`'s own work directory inside this one.
    public func worker(index: Int, count: Int) -> Workspace {
        Workspace(root: "\(workersRoot)/\(index)-of-\(count)")
    }

    /// The folders inside this one's `workers` folder, sorted by name: every one is a worker's work
    /// directory or should be, so one without a database (a worker killed as it started) is named by
    /// the merge, not passed over. Files there (a pod's `<I>-of-<N>.done` marker), hidden folders and
    /// `lost+found` are left out.
    public var workerFolders: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workersRoot)) ?? []
        // Hidden folders and a file system's lost+found (a volume mounted at workers/) are no workers'.
        return names.filter { !$0.hasPrefix(".") && $0 != "lost+found" }.sorted().map { workersRoot + "/" + $0 }.filter { folder in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue
        }
    }

    /// Set in a scale-out worker's work directory: `worker.txt` names its slice (`I/N`).
    public var workerMarkerPath: String { path("worker.txt") }

    /// Sweep worker `index` of `count`'s own work directory inside this one, for one sweep.
    public func sweepWorker(sweepId: String, index: Int, count: Int) -> Workspace {
        Workspace(root: "\(workersRoot)/sweep-\(sweepId)-\(index)-of-\(count)")
    }

    /// Set in a sweep worker's work directory: `sweep-worker.txt` names its sweep and slice (`<sweep> I/N`).
    public var sweepWorkerMarkerPath: String { path("sweep-worker.txt") }

    /// The text of `worker.txt`, trimmed; nil when this is not a worker's work directory (or its marker
    /// cannot be read: `readWorkerMarker` says why).
    public var workerMarker: String? { try? readWorkerMarker() }

    /// The text of `worker.txt`, trimmed; nil when there is none. One that is there but cannot be read
    /// (a folder, a file far larger than a marker, not UTF-8) is an error naming it.
    public func readWorkerMarker() throws -> String? {
        var facts = stat()
        guard lstat(workerMarkerPath, &facts) == 0 else { return nil }
        guard let text = try RegularFile.text(workerMarkerPath, atMost: RegularFile.markerLimit) else {
            throw EmoError.io(path: workerMarkerPath, reason: "not UTF-8 text")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The files of a run's folder, `runs/<run-id>/`.
public enum RunFile: String, CaseIterable, Sendable {
    // Written by the runner.
    case manifest = "manifest.yaml"
    case dataset = "dataset.tsv"
    // Written by evaluate.
    case metrics = "metrics.json"
    case crossValidation = "cv.json"
    case predictionsCSV = "predictions.csv"
    case predictionsJSONL = "predictions.jsonl"
    case report = "report.html"
    // Written by export: the graphs, and what `emopipe predict` reads beside them.
    case onnx = "model.onnx"
    case int8Onnx = "model.int8.onnx"
    /// The name `TrainedModel.Weights.exported` gives the weights (the model layer's own name).
    case weights = "model.safetensors"
    /// The name `TrainedModel.fileName` gives the model's description.
    case modelDescription = "model.json"
    /// The feature stages' parameters the model was trained on.
    case features = "features.json"
    /// A speaker-normalised model's per-actor statistics (the name `RecordedSpeakers.fileName` gives).
    case speakers = "speakers.json"

    public func path(in runFolder: String) -> String { runFolder + "/" + rawValue }
}

/// One sweep's folder, `sweeps/<sweep>/`, and the files in it.
public struct SweepFolder: Sendable, Equatable {
    public let path: String
    /// Every trial's attempts and figures; what resuming reads.
    public var state: String { path + "/state.json" }
    /// Held while a sweep or a merge of its workers writes the state.
    public var lock: String { path + "/sweep.lock" }
    /// The trial in hand, for a leaderboard read meanwhile.
    public var running: String { path + "/running.json" }
    public var leaderboard: String { path + "/leaderboard.json" }
    public var report: String { path + "/report.html" }
    /// The best trial's manifest.
    public var bestManifest: String { path + "/best.yaml" }
}
