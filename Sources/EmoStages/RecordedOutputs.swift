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
        var path: String
        var writtenBy: String
        var sha256: String?
    }

    /// Why the files no longer stand for the stage's result, or nil. Files are hashed only where a
    /// digest was recorded (models, reports: small).
    static func problem(_ expected: [Expected]) -> String? {
        for file in expected {
            guard FileManager.default.fileExists(atPath: file.path) else {
                return "\(file.path), written by run \(file.writtenBy), is missing"
            }
            guard let recorded = file.sha256 else { continue }
            guard let actual = try? SHA256Hex.file(atPath: file.path).hex else {
                return "\(file.path), written by run \(file.writtenBy), cannot be read"
            }
            if actual != recorded { return "\(file.path) has changed since run \(file.writtenBy) wrote it" }
        }
        return nil
    }

    /// The files a run-folder stage (evaluate, export) recorded: each where the work directory's layout
    /// puts it now (the work directory may have moved since), plus `unrecorded` names it also needs.
    static func inRunFolder(_ context: StageContext, stage: StageName, unrecorded: [String] = []) throws -> [Expected]? {
        guard let state = try context.store.stageState(stage) else { return nil }
        let folder = context.workspace.runFolder(state.runId)
        let rows = try context.store.outputArtifacts(stage: stage.rawValue, fingerprint: state.fingerprint, runId: state.runId)
        let recorded = rows.map { Expected(path: folder + "/" + ($0.path as NSString).lastPathComponent, writtenBy: state.runId, sha256: $0.sha256) }
        return recorded + unrecorded.map { Expected(path: folder + "/" + $0, writtenBy: state.runId, sha256: nil) }
    }

    /// `inRunFolder`'s problem, if any.
    static func runFolderProblem(_ context: StageContext, stage: StageName, unrecorded: [String] = []) throws -> String? {
        try inRunFolder(context, stage: stage, unrecorded: unrecorded).flatMap(problem)
    }
}
