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
        /// Where the recording run wrote it, when elsewhere: a sweep worker's database names the main
        /// work directory's files, which stay there.
        var recordedPath: String?
        var writtenBy: String
        var sha256: String?

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
        guard let actual = try? SHA256Hex.file(atPath: found).hex else {
            return "\(found), written by run \(file.writtenBy), cannot be read"
        }
        return actual == recorded ? nil : "\(found) has changed since run \(file.writtenBy) wrote it"
    }

    /// `rows` where the layout puts each now (`place` maps a recorded path there), the newest row
    /// of each place only: rows of a work directory that moved, or merged from a sweep worker, stay behind.
    static func expected(_ rows: [ArtifactRecord], place: (String) -> String) -> [Expected] {
        var newest: [String: ArtifactRecord] = [:]
        for row in rows {
            let path = place(row.path)
            if let kept = newest[path], (kept.id ?? 0) > (row.id ?? 0) { continue }
            newest[path] = row
        }
        return newest.sorted { $0.key < $1.key }.map { path, row in
            Expected(path: path, recordedPath: row.path == path ? nil : row.path, writtenBy: row.runId, sha256: row.sha256)
        }
    }

    /// The files a run-folder stage (evaluate, export) recorded, plus `unrecorded` names it also needs.
    static func inRunFolder(_ context: StageContext, stage: StageName, unrecorded: [String] = []) throws -> [Expected]? {
        guard let state = try context.store.stageState(stage) else { return nil }
        let folder = context.workspace.runFolder(state.runId)
        let rows = try context.store.outputArtifacts(stage: stage.rawValue, fingerprint: state.fingerprint, runId: state.runId)
        let recorded = expected(rows) { folder + "/" + ($0 as NSString).lastPathComponent }
        // Files without a row are looked for beside a recorded one, wherever that was found.
        let beside = recorded.first.flatMap(\.found).map { ($0 as NSString).deletingLastPathComponent } ?? folder
        return recorded + unrecorded.map {
            Expected(path: folder + "/" + $0, recordedPath: beside == folder ? nil : beside + "/" + $0, writtenBy: state.runId, sha256: nil)
        }
    }

    /// `inRunFolder`'s problem, if any.
    static func runFolderProblem(_ context: StageContext, stage: StageName, unrecorded: [String] = []) throws -> String? {
        try inRunFolder(context, stage: stage, unrecorded: unrecorded).flatMap(problem)
    }
}
