import EmoCore
import EmoPipeline
import EmoStore
import Foundation

/// A stage's result files, as its last completed execution recorded them, checked against the disk. A
/// result file deleted or edited since then makes the stage stale (`status`) and a run makes it again,
/// rather than calling it up to date while `predict` or the next stage finds nothing, or something else.
struct RecordedOutputs {
    /// A file the stage must have left, the run that wrote it, and its SHA-256 when one was recorded.
    struct Expected: Equatable {
        /// Where the work directory's layout puts the file now (it may have moved since).
        var path: String
        /// Where the recording run wrote it, when that was the main work directory of this sweep
        /// worker's: a worker's database is a copy of the main one's, whose files stay there. (A copied
        /// or moved work directory is judged on its own files, the ones its stages read.)
        var recordedPath: String?
        var writtenBy: String
        var sha256: String?
        /// The most bytes the stage writes there, when known: a larger file is not its own, and is not hashed
        /// (a 20 GB file put in the split plan's place took 58 s to hash before it was refused).
        var maxBytes: Int? = nil

        /// The first of its places that holds the file, if any.
        var found: String? {
            ([path] + [recordedPath].compactMap { $0 }).first { FileManager.default.fileExists(atPath: $0) }
        }
    }

    /// Why the files no longer stand for the stage's result, or nil. Files are hashed only where a
    /// digest was recorded (models, reports).
    static func problem(_ expected: [Expected]) -> String? {
        expected.lazy.compactMap(problem).first
    }

    static func problem(_ file: Expected) -> String? {
        guard let found = file.found else { return "\(file.path), written by run \(file.writtenBy), is missing" }
        guard let recorded = file.sha256 else { return nil }
        let actual: String
        do { actual = try SHA256Hex.file(atPath: found, atMost: file.maxBytes.map(Int64.init)).hex } catch let large as SHA256Hex.TooLarge {
            return "\(found) has changed since run \(file.writtenBy) wrote it (it is \(large.size) bytes, more than the stage writes)"
        } catch {
            return "\(found), written by run \(file.writtenBy), cannot be read (\(EmoError.reason(of: error)))"
        }
        return actual == recorded ? nil : "\(found) has changed since run \(file.writtenBy) wrote it"
    }

    /// `rows` where the layout puts each now (`place` maps a recorded path there), one row per place:
    /// the newest of those this work directory wrote where it is now, else the newest of all. Rows of
    /// a work directory that has moved since, or merged from a sweep worker, stay behind.
    static func expected(_ rows: [ArtifactRecord], in workspace: Workspace, place: (String) -> String) -> [Expected] {
        var kept: [String: ArtifactRecord] = [:]
        for row in rows {
            let path = place(row.path)
            if let other = kept[path] {
                let rank = { (r: ArtifactRecord) in (r.path == path ? 1 : 0, r.id ?? 0) }
                if rank(other) > rank(row) { continue }
            }
            kept[path] = row
        }
        let main = SweepWorker.mainWorkspace(of: workspace)
        return kept.sorted { $0.key < $1.key }.map { path, row in
            let inMain = main.map { row.path.hasPrefix($0.root + "/") } ?? false
            return Expected(path: path, recordedPath: row.path != path && inMain ? row.path : nil, writtenBy: row.runId, sha256: row.sha256)
        }
    }

    /// The files a run-folder stage (evaluate, export) recorded, plus `unrecorded` names it also needs
    /// (looked for by name only where no row records them: work directories from before they were recorded).
    static func inRunFolder(_ context: StageContext, stage: StageName, unrecorded: [RunFile] = []) throws -> [Expected]? {
        guard let state = try context.store.stageState(stage) else { return nil }
        let folder = context.workspace.runFolder(state.runId)
        let rows = try context.store.outputArtifacts(stage: stage.rawValue, fingerprint: state.fingerprint, runId: state.runId)
        let recorded = expected(rows, in: context.workspace) { folder + "/" + ($0 as NSString).lastPathComponent }
        // Files without a row have the same second place as the recorded ones.
        let elsewhere = recorded.first?.recordedPath.map { PathText.folder(of: $0) }
        let named = Set(recorded.map { ($0.path as NSString).lastPathComponent })
        return recorded + unrecorded.filter { !named.contains($0.rawValue) }.map { file in
            Expected(path: file.path(in: folder), recordedPath: elsewhere.map(file.path(in:)), writtenBy: state.runId, sha256: nil)
        }
    }

    /// `inRunFolder`'s problem, if any.
    static func runFolderProblem(_ context: StageContext, stage: StageName, unrecorded: [RunFile] = []) throws -> String? {
        try inRunFolder(context, stage: stage, unrecorded: unrecorded).flatMap(problem)
    }
}
