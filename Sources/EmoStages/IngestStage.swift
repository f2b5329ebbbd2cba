import EmoCore
import EmoMedia
import EmoPipeline
import EmoStore
import Foundation

/// Ingest: find every file under the data root, recognise RAVDESS sources by their 7-part names,
/// validate the codes, hash and probe each new or changed file, and record one provenance row per
/// file (`ok`, `failed` with the reason, `ignored`, or `removed` when it left the disk).
///
/// A file whose size, mtime, inode and change time are unchanged since it was recorded is not read
/// again (a rename or a rewrite that kept size and mtime changes the last two). Work is
/// committed in batches, each in one transaction, so a killed ingest keeps what it finished.
public struct IngestStage: Stage {
    public let name = StageName.ingest.rawValue
    public let perSource = true
    public let codeVersion = "1"
    /// Ingest reads the data root; a different root is a different ingest.
    public let manifestFields = ["data_root"]
    public let batchSize: Int

    public init(batchSize: Int = 64) { self.batchSize = batchSize }

    public func run(_ context: StageContext, parameters: NoParameters) throws -> StageOutcome {
        let root = context.dataRoot
        let (files, keptAs) = try Self.scanned(context, log: true)
        let known = try Self.recordedSources(context)
        // Forced, every file is read and hashed again (what no stat can tell: a clock set back while a file was rewritten).
        let plan = IngestPlan(files: files, known: known, readingAll: context.forced)
        let retried = plan.retried > 0 ? " (\(plan.retried) that could not be read last time)" : ""
        context.logger.info("\(files.count) file\(files.count == 1 ? "" : "s") under \(root)\(context.worker.map { " (worker \($0)'s share)" } ?? ""): \(plan.toRead.count) to read\(retried), \(plan.removed.count) gone")

        let progress = context.progress(total: plan.toRead.count, unit: "files")
        var failedNow = 0
        // Read again (size or mtime differ: a copy, a touch) but with the content recorded.
        var sameContent = 0
        // Before each batch, and after the last: what a batch finished is recorded first.
        func stopIfAsked() throws {
            guard context.cancellation.isCancelled else { return }
            progress.finish()  // ends the progress line before the run says it was interrupted
            throw EmoError.interrupted
        }
        for batch in stride(from: 0, to: plan.toRead.count, by: batchSize).map({ Array(plan.toRead[$0..<min($0 + batchSize, plan.toRead.count)]) }) {
            try stopIfAsked()
            let examined = examineConcurrently(batch, known: known, runId: context.runId, threads: context.threads,
                                               stopped: { context.cancellation.isCancelled })
            // A file the open-file limit kept unread, or whose hashing a stop cut short, is not recorded
            // at all: the next run reads it.
            let rows = examined.filter { !$0.failedForLackOfOpenFiles }
            try commit(rows, context: context)
            sameContent += rows.filter { row in
                let key = PathKey(row.path)
                return plan.changedPaths.contains(key) && known[key].map { $0.status != .removed && $0.sha256 != nil && $0.sha256 == row.sha256 } ?? false
            }.count
            let failures = rows.filter { $0.status == .failed }.count
            failedNow += failures
            progress.advance(by: rows.count, failed: failures)
            if let unread = examined.first(where: \.failedForLackOfOpenFiles) {
                progress.finish()
                throw OpenFilesRanOut(path: unread.path, reason: unread.reason ?? "")
            }
        }
        if !plan.toRead.isEmpty {
            try stopIfAsked()
            progress.finish()
        }
        try markRemoved(plan.removed, keptAs: keptAs, context: context)

        let current = try context.store.sources(under: root)
        try reportDuplicates(context)
        let counts = Dictionary(grouping: current, by: \.status).mapValues(\.count)
        let failedTotal = counts[.failed] ?? 0
        let present = current.count - (counts[.removed] ?? 0)
        let summary = "\(present) file\(present == 1 ? "" : "s"): \(counts[.ok] ?? 0) ok, \(failedTotal) failed, "
            + "\(counts[.ignored] ?? 0) ignored; \(plan.added) new, \(plan.changed - sameContent) changed, \(plan.removed.count) removed"
            + (sameContent > 0 ? "; \(sameContent) read again with the content recorded" : "")
            + (plan.retried > 0 ? "; \(plan.retried) that could not be read last time tried again" : "")
        return StageOutcome(outputDigest: Self.digest(of: current, root: root), unitsDone: plan.toRead.count,
                            unitsSkipped: plan.unchanged, unitsFailed: failedTotal, summary: summary)
    }

    public func externalChanges(_ context: StageContext, parameters: NoParameters) throws -> String? {
        let files: [ScannedFile]
        do { files = try Self.files(context) } catch let error as PipelineError {
            // A root gone or empty (an unmounted disk) is reported, as `status` promises; a run refuses it
            // when ingest starts, with the same reason.
            return "the data root cannot be ingested now: \(error)"
        } catch let error as EmoError where error != .interrupted {
            return "the data root cannot be ingested now: \(EmoError.reason(of: error))"
        }
        let plan = try Self.currentPlan(context, files: files)
        guard !plan.toRead.isEmpty || !plan.removed.isEmpty else { return nil }
        let retried = plan.retried > 0 ? "; \(plan.retried) that could not be read to try again" : ""
        let changed = plan.changed - plan.restated
        // Same size and mtime, another inode or change time: not known to be a change until hashed.
        let restated = "\(plan.restated) file\(plan.restated == 1 ? "" : "s") to hash again (same size and mtime, but another inode "
            + "or change time: renamed, linked, chmod'ed or rewritten since, or recorded by an emopipe that kept none)"
        guard plan.added + changed + plan.removed.count > 0 else {
            if plan.restated > 0 { return restated + retried }
            return "\(plan.retried) file\(plan.retried == 1 ? "" : "s") that could not be read last time to try again"
        }
        return "data root changed: \(plan.added) added, \(changed) changed, \(plan.removed.count) removed"
            + (plan.restated > 0 ? "; " + restated : "") + retried
    }

    public func plannedUnits(_ context: StageContext, parameters: NoParameters) throws -> Int? {
        try Self.currentPlan(context, readingAll: context.forced).toRead.count
    }

    /// What a run would do now: the data root's files against what is recorded (all of them read when forced).
    private static func currentPlan(_ context: StageContext, readingAll: Bool = false, files: [ScannedFile]? = nil) throws -> IngestPlan {
        IngestPlan(files: try files ?? Self.files(context), known: try recordedSources(context), readingAll: readingAll)
    }

    /// The rows recorded under the data root, by their paths' bytes, as SQLite keys them: two names that differ
    /// only in Unicode normalisation are one String to Swift (keyed so, they trapped, or a file renamed into the
    /// other spelling was taken for the old one, whose row then stayed for ever). Paths are the table's primary key,
    /// so keys collide only in an edited database whose bytes are not UTF-8: the first row stands for them.
    private static func recordedSources(_ context: StageContext) throws -> [PathKey: SourceRecord] {
        Dictionary(try context.store.sources(under: context.dataRoot).map { (PathKey($0.path), $0) }) { first, _ in first }
    }

    /// The files under the data root; a scale-out worker's share only. A whole data root without a
    /// single RAVDESS-named file is an error (a wrong `--data`, an unmounted disk), not an empty dataset
    /// whose sources would all be marked removed; a worker's share may be empty.
    static func files(_ context: StageContext, log: Bool = false) throws -> [ScannedFile] {
        try scanned(context, log: log).files
    }

    /// `files`, and for each path left out as a second path to a file, the path it is read under.
    static func scanned(_ context: StageContext, log: Bool = false) throws -> (files: [ScannedFile], keptAs: [String: String]) {
        let scan = try DataRootScan(root: context.dataRoot, leavingOut: [context.workspace.root])
        if log { report(scan, context: context) }
        let keptAs = Dictionary(scan.aliases.map { ($0.path, $0.keptAs) }, uniquingKeysWith: { first, _ in first })
        guard let worker = context.worker else {
            try requireRavdessFiles(scan)
            return (scan.files, keptAs)
        }
        return (scan.files.filter { worker.contains(relativePath: DataRootPath.relative($0.path, to: context.dataRoot)) }, keptAs)
    }

    private static func requireRavdessFiles(_ scan: DataRootScan) throws {
        // A folder named like a recording (`03-01-…wav/`) is no recording: a root of only those holds none.
        let ravdessNamed = scan.files.contains { file in
            if file.walkProblem == DataRootScan.folderNamedAsARecording { return false }
            if case .notRavdess = RavdessName.parse(fileName: (file.path as NSString).lastPathComponent) { return false }
            return true
        }
        guard ravdessNamed else {
            let unusable = scan.files.filter { $0.walkProblem != nil && $0.namePartThatIsUTF8 == nil }
            if let first = unusable.first, let problem = first.walkProblem {
                throw PipelineError.missingData("\(scan.root): the data root holds no RAVDESS file ingest could read; "
                    + "\(unusable.count) folder(s) or name(s) could not be used (\(first.path): \(problem))" + nearMisses(scan, after: ";"))
            }
            throw PipelineError.missingData("\(scan.root): the data root holds no RAVDESS file (\(scan.files.count) file\(scan.files.count == 1 ? "" : "s"), "
                + "none named like 03-01-05-01-02-01-12.wav or 01-01-05-01-02-01-12.mp4); is it the right folder?" + nearMisses(scan))
        }
    }

    /// For a root of no RAVDESS file: the files that come close, a recording's seven codes with more in the name
    /// (`… (copy).wav`, `…_1.wav`) or a hidden one, which are why, as a hint.
    private static func nearMisses(_ scan: DataRootScan, after separator: String = "") -> String {
        let codes = #/[0-9]{2}(-[0-9]{2}){6}/#
        // Files only: a folder named as a recording is (a failure row of its own) is no near miss.
        let close = scan.files.filter { $0.walkProblem == nil }.map(\.path).filter { (($0 as NSString).lastPathComponent).contains(codes) }
        var hints: [String] = []
        if let first = close.first {
            hints.append("\(close.count) name\(close.count == 1 ? " holds" : "s hold") a recording's seven codes with more besides, as "
                         + "\(DataRootPath.relative(first, to: scan.root).echoed) does: a recording's name is the codes and .wav or .mp4 alone")
        }
        if let first = scan.hiddenRecordings.first {
            hints.append("\(scan.hiddenRecordings.count) hidden file\(scan.hiddenRecordings.count == 1 ? " is named as a recording" : "s are named as recordings"), "
                         + "as \(DataRootPath.relative(first, to: scan.root).echoed) is, and hidden files are not read")
        }
        return hints.isEmpty ? "" : separator + " " + hints.joined(separator: "; ")
    }

    /// Says which links were not followed and which paths were left out as second paths to a file.
    private static func report(_ scan: DataRootScan, context: StageContext) {
        for loop in scan.loopsSkipped {
            context.logger.warning("\(loop): not followed, it leads back into a folder it is inside")
        }
        for hidden in scan.hiddenRecordings {
            context.logger.warning("\(hidden): not read, its name starts with \".\" (a hidden file); without the dot it would be read as a recording")
        }
        for link in scan.rootHoldersSkipped {
            context.logger.warning("\(link): not followed, it leads to a folder that holds the data root (its files are outside the root, and the root's own would be read twice)")
        }
        for folder in scan.kernelFoldersSkipped {
            context.logger.warning("\(folder): not walked, it \(KernelFilesystem.refusal)")
        }
        for folder in scan.foldersLeftOut {
            context.logger.info("\(folder): not walked, it is the work directory (its database, cache and runs are no recordings)")
        }
        for folder in scan.otherWorkDirectories {
            context.logger.warning("\(folder): not walked, it holds an EmoPipe database (emopipe.sqlite), so it is taken for a work directory, not data")
        }
        for conflict in scan.nameConflicts.prefix(20) { context.logger.warning("\(conflict)") }
        if scan.nameConflicts.count > 20 {
            context.logger.warning("\(scan.nameConflicts.count - 20) more file(s) reached under names that disagree")
        }
        if !scan.aliases.isEmpty {
            let examples = scan.aliases.prefix(3).map { "\($0.path) = \($0.keptAs)" }.joined(separator: ", ")
            let more = scan.aliases.count > 3 ? ", …" : ""
            context.logger.info("\(scan.aliases.count) path(s) reach a folder or file already found under another path, used once: \(examples)\(more)")
        }
    }

    /// The facts downstream stages consume: the ok sources, by path relative to the root, so that
    /// moving the whole data root does not make everything downstream stale.
    static func digest(of sources: [SourceRecord], root: String) -> String {
        let lines = sources.filter { $0.status == .ok }.map { source -> String in
            [DataRootPath.relative(source.path, to: root), source.sha256 ?? "", source.kind ?? "", source.clip ?? ""]
                .joined(separator: "\t")
        }.sorted()
        return SHA256Hex.of(lines.joined(separator: "\n"))
    }

    // MARK: Examining files

    /// The rows of the files examined; a file whose hashing was stopped has none.
    private func examineConcurrently(_ files: [ScannedFile], known: [PathKey: SourceRecord], runId: String,
                                     threads: Int, stopped: @escaping @Sendable () -> Bool) -> [SourceRecord] {
        ParallelMap.map(files, threads: threads) { file -> SourceRecord? in
            guard var row = try? SourceExaminer.examine(file, runId: runId, stopped: stopped) else { return nil }
            if let previous = known[PathKey(file.path)] { row.firstSeenRun = previous.firstSeenRun }
            return row
        }.compactMap { $0 }
    }

    private func commit(_ rows: [SourceRecord], context: StageContext) throws {
        let now = Date()
        try context.store.write { db in
            for row in rows {
                try row.save(db)
                if row.status == .failed, let reason = row.reason {
                    var failure = FailureRecord(stage: name, subject: row.path, sha256: row.sha256, reason: reason,
                                                runId: context.runId, recordedAt: now)
                    try failure.insert(db)
                    context.logger.error("\(row.path): \(reason)")
                }
            }
        }
    }

    private func markRemoved(_ removed: [SourceRecord], keptAs: [String: String], context: StageContext) throws {
        guard !removed.isEmpty else { return }
        // A folder that could not be listed had a row of its own; once it lists, its files have theirs.
        let listsAgain = removed.filter { $0.kind == nil && $0.status == .failed && Self.isFolder($0.path) }
        let gone = removed.filter { source in !listsAgain.contains { $0.path == source.path } }
        try context.store.write { db in
            for source in listsAgain { _ = try source.delete(db) }
            for var source in gone {
                source.status = .removed
                // Still there, it is a second path to a file another path now reaches first (a link added).
                var facts = stat()
                source.reason = lstat(source.path, &facts) == 0
                    ? "still on disk, but now read as \((keptAs[source.path] ?? "another path that reaches the same file").escaped) (noticed by run \(context.runId))"
                    : "gone from disk (noticed by run \(context.runId))"
                source.lastChangedRun = context.runId
                try source.update(db)
            }
        }
        for folder in listsAgain { context.logger.info("\(folder.path): lists again; its files are read") }
        if !gone.isEmpty {
            // Named, so a test set that shrank says by which files (`emopipe sources` lists them all as removed).
            let named = gone.map(\.path).sorted().prefix(3).map(\.escaped).joined(separator: ", ")
            let more = gone.count > 3 ? " and \(gone.count - 3) more" : ""
            context.logger.warning("\(gone.count) source\(gone.count == 1 ? "" : "s") gone from disk or now read under another path, marked removed: \(named)\(more)")
        }
    }

    private static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    private func reportDuplicates(_ context: StageContext) throws {
        // Rows of an earlier data root stay in the database: only this root's names are compared.
        let inRoot = context.dataRoot.hasSuffix("/") ? context.dataRoot : context.dataRoot + "/"
        let groups = try context.store.duplicateContent().map { $0.filter { $0.path.hasPrefix(inRoot) } }.filter { $0.count > 1 }
        // A few lines say it; thousands of copies (a folder unpacked twice) must not flood the log.
        let shownGroups = 20, shownNames = 5
        for rows in groups.prefix(shownGroups) {
            // One recording cannot be two emotions, or two actors: at least one name's labels are wrong.
            // In the order of the paths named before them.
            var seen = Set<String>()
            let labels = rows.map { "\(Emotion(rawValue: $0.emotion ?? 0)?.name ?? "?") by actor \($0.actor ?? 0)" }.filter { seen.insert($0).inserted }
            let conflict = labels.count > 1 ? "; their names disagree (\(Self.listed(labels, separator: " / ", atMost: shownNames))), so at least one is mislabelled" : ""
            context.logger.warning("identical content under \(rows.count) names: \(Self.listed(rows.map(\.path), separator: ", ", atMost: shownNames))\(conflict)")
        }
        if groups.count > shownGroups {
            let more = "identical content under several names in \(groups.count - shownGroups) more group(s) of files "
                + "(`emopipe sources --json` gives each file's sha256)"
            context.logger.warning("\(more)")
        }
    }

    /// The first `atMost` items joined, and how many more there are.
    static func listed(_ items: [String], separator: String, atMost: Int) -> String {
        items.prefix(atMost).joined(separator: separator) + (items.count > atMost ? "\(separator)… and \(items.count - atMost) more" : "")
    }
}

/// Which files ingest must read: new, changed (size, mtime, inode or change time), or back after being removed.
/// A path compared by its UTF-8 bytes, as the file system and SQLite compare it, not by Unicode meaning as Swift's
/// String is: é spelt as one code point and as e with an accent are two files.
struct PathKey: Hashable {
    let bytes: [UInt8]
    init(_ path: String) { bytes = Array(path.utf8) }
}

struct IngestPlan {
    var toRead: [ScannedFile] = []
    var removed: [SourceRecord] = []
    var added = 0
    var changed = 0
    var unchanged = 0
    /// Unchanged files whose last reading failed before their bytes were hashed (permission denied, a
    /// read error, a file cut or grown while read): not a verdict on their content, so tried again.
    var retried = 0
    /// The paths of the files counted in `changed`.
    var changedPaths: Set<PathKey> = []
    /// Of `changed`, those of the same size and mtime whose inode or change time moved (renamed, linked,
    /// chmod'ed or rewritten with the mtime put back), or was never recorded: hashed again, most likely
    /// found unchanged.
    var restated = 0

    init(files: [ScannedFile], known: [PathKey: SourceRecord], readingAll: Bool = false) {
        var seen = Set<PathKey>()
        // Files below a folder that could not be listed this time are not known to be gone: kept as they are.
        let unlisted = files.filter(\.unlistedFolder).map { $0.path + "/" }
        for file in files {
            let key = PathKey(file.path)
            seen.insert(key)
            guard let previous = known[key], previous.status != .removed else {
                added += 1; toRead.append(file); continue
            }
            let statChanged = previous.size != file.size || previous.mtimeNanos != file.mtimeNanos
            if statChanged || readingAll || Self.inodeStateMoved(previous, file) {
                changed += 1; toRead.append(file); changedPaths.insert(key)
                if !statChanged && !readingAll { restated += 1 }
            } else if previous.failedUnread || previous.failedForLackOfOpenFiles || previous.failedForLackOfMemory, file.notRegular == nil, file.walkProblem == nil {
                // Not the file's fault (nor is a failure for lack of open files, recorded by an emopipe
                // before 2026-12-03): read again. A chmod changes no mtime.
                retried += 1; toRead.append(file)
            } else if previous.acceptedInAnotherActorsFolder {
                // Recorded ok before an actor folder's name was read in any case (`actor_02/`): judged again, as a
                // fresh work directory judges it.
                retried += 1; toRead.append(file)
            } else {
                unchanged += 1
            }
        }
        removed = known.values.filter { source in
            !seen.contains(PathKey(source.path)) && source.status != .removed && !unlisted.contains { source.path.hasPrefix($0) }
        }.sorted { $0.path < $1.path }
    }

    /// Whether the file has another inode or change time than when its row was recorded. A row recorded
    /// before the state was kept has none: its file is hashed once more, since a rename made meanwhile
    /// (or before the upgrade) is known only by its bytes.
    static func inodeStateMoved(_ previous: SourceRecord, _ file: ScannedFile) -> Bool {
        previous.inodeState != file.inodeState
    }
}

extension SourceRecord {
    /// Recorded ok though its folder names another actor than its file name does (the folder's name in another case
    /// than `Actor_XX`, which an emopipe before 2026-12-07 did not read).
    var acceptedInAnotherActorsFolder: Bool {
        guard status == .ok, case .source(let codes) = RavdessName.parse(fileName: (path as NSString).lastPathComponent) else { return false }
        return ActorFolder.mismatch(path: path, codes: codes) != nil
    }

    /// Failed because the open files ran out while it was read: the machine's limit, not the file's fault.
    var failedForLackOfOpenFiles: Bool { status == .failed && OpenFileLimit.ranOut(reason ?? "") }

    /// Failed for want of memory (a damaged header's counts, or a memory limit): examined again, as the limit may
    /// be another next time.
    var failedForLackOfMemory: Bool { status == .failed && (reason ?? "").contains(String(cString: strerror(ENOMEM))) }

    /// Failed before its bytes could be hashed for a reason of the moment, not of the file: permission
    /// denied, an I/O error, the file cut or grown while read. (A dangling link or a link loop is not
    /// one: its size and mtime change once its target is there.)
    var failedUnread: Bool {
        guard status == .failed, sha256 == nil, let reason else { return false }
        return Self.passingReadFailures.contains { reason.contains($0) }
    }

    private static let passingReadFailures = [EACCES, EPERM, EIO, ESTALE].map { String(cString: strerror($0)) }
        + [SHA256Hex.shrankWhileRead, SHA256Hex.grewWhileRead]
}
