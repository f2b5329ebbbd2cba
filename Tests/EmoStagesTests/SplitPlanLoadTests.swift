import EmoPipeline
@testable import EmoStages
import EmoTestSupport
import Foundation
import Testing

/// The split plan in cache/split/ is read by training as it is under `--only train`: an edited one is refused
/// naming the file and the value, before any index reaches training (a label past the classes trapped there).
@Suite("split plan loading")
struct SplitPlanLoadTests {
    static let labels = #"["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]"#

    static func plan(label: Int = 0, actor: Int = 1, secondClip: String = "01-01-02-01-01-01",
                     folds: String = #"[{"index": 0, "test": [2], "validation": [], "train": [1]}]"#, labels: String = labels) -> String {
        let clip = { (id: String, label: Int, actor: Int) in
            #"{"clip": "\#(id)", "actor": \#(actor), "emotion": 1, "label": \#(label), "speech": {"path": "/d/a.wav", "sha256": "00"}}"#
        }
        return #"{"labels": \#(labels), "clips": [\#(clip("01-01-01-01-01-01", label, actor)), \#(clip(secondClip, 1, 2))], "folds": \#(folds)}"#
    }

    @Test func aSoundPlanLoads() throws {
        let path = try TestSupport.temporaryFolder("split-plan") + "/plan.json"
        try Self.plan().write(toFile: path, atomically: true, encoding: .utf8)
        let plan = try SplitPlan.load(path: path)
        #expect(plan.clips.map(\.label) == [0, 1] && plan.folds.first?.train == [1])
    }

    @Test(arguments: [
        (plan(label: 99), "clip 01-01-01-01-01-01 has label 99, not one of the 8 labels' indices 0 to 7"),
        (plan(label: -1), "has label -1"),
        (plan(actor: 0), "clip 01-01-01-01-01-01 has actor 0, not 1 to 24"),
        (plan(secondClip: "01-01-01-01-01-01"), "clip 01-01-01-01-01-01 is listed twice"),
        (plan(labels: #"["a", "a"]"#), "name a class twice"),
        (plan(labels: "[]"), "0 labels, not 1 to 1024"),
        (plan(folds: "[]"), "no fold"),
        (plan(folds: #"[{"index": -3, "test": [2], "validation": [], "train": [1]}]"#), "fold index -3 is below 0"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": [1]}, {"index": 0, "test": [1], "validation": [], "train": [2]}]"#), "or listed twice"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": []}]"#), "fold 0 trains on no actor"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": [1, 2]}]"#), "fold 0 trains on actor 2, whom it also tests"),
        (plan(folds: #"[{"index": 0, "test": [200], "validation": [], "train": [1]}]"#), "fold 0's test actors [200] are not all 1 to 24"),
        (#"{"labels": ["a"]}"#, "not a split plan"),
    ])
    func anEditedPlanIsRefusedNamingTheFileAndTheValue(text: String, reason: String) throws {
        let path = try TestSupport.temporaryFolder("split-plan") + "/plan.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try #require(throws: PipelineError.self) { try SplitPlan.load(path: path) }
        let said = "\(refused)"
        #expect(said.contains(path) && said.contains(reason) && said.contains("--force split"), "\(said)")
    }
}
