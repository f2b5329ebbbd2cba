import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing
@testable import EmoStages

/// Where a stage's recorded result files are looked for: where the work directory's layout puts them
/// now, and, in a sweep worker only, where the main work directory's run wrote them.
@Suite("recorded result files")
struct RecordedOutputsTests {
    let main: Workspace
    let worker: Workspace
    let weights: Data

    init() throws {
        main = Workspace(root: try TestSupport.temporaryFolder("recorded") + "/work")
        worker = Workspace(root: main.workersRoot + "/sweep-abc-0-of-2")
        weights = Data("weights".utf8)
        let fold = main.path("cache/train/0123456789abcdef/fold-0")
        try FileManager.default.createDirectory(atPath: fold, withIntermediateDirectories: true)
        try weights.write(to: URL(fileURLWithPath: fold + "/best.safetensors"))
        try FileManager.default.createDirectory(atPath: worker.root, withIntermediateDirectories: true)
    }

    func row(_ path: String, id: Int64, sha256: String) -> ArtifactRecord {
        var row = ArtifactRecord(stage: "train", fingerprint: "f", sourceSHA256: nil, kind: "model", path: path, sha256: sha256, runId: "r\(id)")
        row.id = id
        return row
    }

    /// The layout's place for a recorded path inside `workspace`.
    func place(in workspace: Workspace) -> (String) -> String {
        { workspace.path(String($0.dropFirst(main.root.count + 1))) }
    }

    @Test func aSweepWorkerFindsTheMainDirectorysFilesAndACopyOnlyItsOwn() throws {
        let recorded = main.path("cache/train/0123456789abcdef/fold-0/best.safetensors")
        let rows = [row(recorded, id: 1, sha256: SHA256Hex.of(weights))]
        // Not yet a worker: judged on its own (absent) files.
        let copy = RecordedOutputs.expected(rows, in: worker, place: place(in: worker))
        #expect(copy.count == 1 && copy[0].recordedPath == nil)
        #expect(RecordedOutputs.problem(copy)?.hasSuffix("is missing") == true, "\(copy)")
        // With its marker, the main directory's file stands for it.
        try Data("abc 0/2\n".utf8).write(to: URL(fileURLWithPath: worker.sweepWorkerMarkerPath))
        #expect(SweepWorker.mainWorkspace(of: worker) == main)
        let found = RecordedOutputs.expected(rows, in: worker, place: place(in: worker))
        #expect(found.count == 1 && found[0].recordedPath == recorded && RecordedOutputs.problem(found) == nil, "\(found)")
        // Edited there: changed.
        try Data("other".utf8).write(to: URL(fileURLWithPath: recorded))
        #expect(RecordedOutputs.problem(found) == "\(recorded) has changed since run r1 wrote it")
    }

    @Test func aRowWrittenWhereTheFileIsNowOutranksNewerRowsFromElsewhere() throws {
        let here = main.path("cache/train/0123456789abcdef/fold-0/best.safetensors")
        let merged = "/elsewhere/work/cache/train/0123456789abcdef/fold-0/best.safetensors"
        let rows = [row(here, id: 1, sha256: SHA256Hex.of(weights)), row(merged, id: 2, sha256: "b"), row(here, id: 0, sha256: "old")]
        let chosen = RecordedOutputs.expected(rows, in: main) { _ in here }
        #expect(chosen.map(\.writtenBy) == ["r1"] && RecordedOutputs.problem(chosen) == nil, "\(chosen)")
        // Moved: no row was written where the file is now, so the newest counts.
        let moved = RecordedOutputs.expected([row(merged, id: 2, sha256: "b"), row("/old/x", id: 1, sha256: "a")], in: main) { _ in here }
        #expect(moved.map(\.writtenBy) == ["r2"])
    }

    /// The run folder's layout (EmoStore) names the model files the model layer writes and loads: the
    /// two must agree, or export would record one file and predict read another.
    /// A file larger than the stage writes there is judged changed by its size, without hashing it (a 20 GB
    /// sparse file in the split plan's place was hashed for 58 s first); one within the bound is hashed as before.
    @Test func aFileLargerThanTheStageWritesIsChangedWithoutBeingHashed() throws {
        let path = main.path("plan.json")
        let text = Data("{}".utf8)
        try text.write(to: URL(fileURLWithPath: path))
        let sound = RecordedOutputs.Expected(path: path, writtenBy: "r1", sha256: SHA256Hex.of(text), maxBytes: 1 << 20)
        #expect(RecordedOutputs.problem(sound) == nil)
        #expect(truncate(path, 1 << 40) == 0)   // a terabyte, sparse: hashing it would take hours
        #expect(RecordedOutputs.problem(sound) == "\(path) has changed since run r1 wrote it (it is 1099511627776 bytes, more than the stage writes)")
    }

    /// A recorded file that cannot be hashed says why (it said "cannot be read" alone; `run` gave the reason, `status` not).
    @Test func aFileThatCannotBeReadSaysWhy() throws {
        let path = main.path("plan.json")
        #expect(mkfifo(path, 0o644) == 0)
        let expected = RecordedOutputs.Expected(path: path, writtenBy: "r1", sha256: "a")
        let problem = try #require(RecordedOutputs.problem(expected))
        #expect(problem.hasPrefix("\(path), written by run r1, cannot be read (") && problem.contains("not a regular file"), "\(problem)")
    }

    @Test func theRunFolderNamesTheModelFilesAsTheModelLayerDoes() {
        #expect(RunFile.weights.rawValue == TrainedModel.Weights.exported.rawValue)
        #expect(RunFile.modelDescription.rawValue == TrainedModel.fileName)
        #expect(Set(RunFile.allCases.map(\.rawValue)).count == RunFile.allCases.count)
    }
}
