import EmoCore
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

    /// Two clips; the first's emotion is its label's under ravdess8 (label + 1) unless `emotion` says otherwise.
    static func plan(label: Int = 0, emotion: Int? = nil, actor: Int = 1, secondClip: String = "01-01-02-01-01-01",
                     folds: String = #"[{"index": 0, "test": [2], "validation": [], "train": [1]}]"#, labels: String = labels) -> String {
        let clip = { (id: String, label: Int, emotion: Int, actor: Int) in
            #"{"clip": "\#(id)", "actor": \#(actor), "emotion": \#(emotion), "label": \#(label), "speech": {"path": "/d/a.wav", "sha256": "00"}}"#
        }
        let first = clip("01-01-01-01-01-01", label, emotion ?? label + 1, actor), second = clip(secondClip, 1, 2, 2)
        return #"{"labels": \#(labels), "clips": [\#(first), \#(second)], "folds": \#(folds)}"#
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
        (plan(label: 3, emotion: 1), "clip 01-01-01-01-01-01 has emotion 1 and label 3, which ravdess8 does not map it to"),
        (plan(emotion: 99), "has emotion 99 and label 0"),
        (plan(secondClip: "01-01-01-01-01-01"), "clip 01-01-01-01-01-01 is listed twice"),
        (plan(labels: #"["a", "a"]"#), "its labels are not a label map's classes in its order (ravdess8: neutral, calm"),
        (plan(labels: #"["neutral", "calm"]"#), "its labels are not a label map's classes"),
        (plan(folds: "[]"), "no fold"),
        (plan(folds: #"[{"index": -3, "test": [2], "validation": [], "train": [1]}]"#), "fold index -3 is not 0 to 23"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": [1]}, {"index": 0, "test": [1], "validation": [], "train": [2]}]"#), "or is listed twice"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": []}]"#), "fold 0: train lists no actor"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": [1, 2]}]"#), "fold 0: actor 2 is listed under both train and test"),
        (plan(folds: #"[{"index": 0, "test": [200], "validation": [], "train": [1]}]"#), "fold 0: test lists 200, which is not a RAVDESS actor"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": [1, 1]}]"#), "fold 0: train lists actor 1 twice"),
        (plan(folds: #"[{"index": 0, "test": [2], "validation": [\#(Array(repeating: "3", count: 25).joined(separator: ","))], "train": [1]}]"#),
         "fold 0's validation lists 25 actors; RAVDESS has 24"),
        (#"{"labels": ["a"]}"#, "not a split plan"),
        (plan().replacingOccurrences(of: #""label": 0"#, with: #""label": 1.5"#), "`clips[0].label` = 1.5 does not fit its field"),
    ])
    func anEditedPlanIsRefusedNamingTheFileAndTheValue(text: String, reason: String) throws {
        let path = try TestSupport.temporaryFolder("split-plan") + "/plan.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try #require(throws: EmoError.self) { try SplitPlan.load(path: path) }
        let said = "\(refused)"
        #expect(said.contains(path) && said.contains(reason) && said.contains("--force split"), "\(said)")
    }

    /// A plan edited into another sound one (a clip's emotion, label and actor together, a fold past the split's
    /// count) passes every check of its contents: its bytes are checked against the digest the split recorded.
    @Test(arguments: [
        plan(label: 2, actor: 3),
        plan(folds: #"[{"index": 0, "test": [2], "validation": [], "train": [1]}, {"index": 7, "test": [1], "validation": [], "train": [2]}]"#),
    ])
    func aSoundPlanWithOtherBytesThanTheSplitRecordedIsRefused(edited: String) throws {
        let path = try TestSupport.temporaryFolder("split-plan") + "/plan.json"
        let written = Self.plan()
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
        _ = try SplitPlan.load(path: path)   // sound as it stands
        let refused = try #require(throws: EmoError.self) { try SplitPlan.load(path: path, recordedSHA256: SHA256Hex.of(written)) }
        #expect("\(refused)".contains("\(path): changed since the split stage wrote it (its SHA-256 is not the one recorded then)")
                && "\(refused)".contains("--force split"), "\(refused)")
        try written.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try SplitPlan.load(path: path, recordedSHA256: SHA256Hex.of(written)).clips.count == 2)
    }

    /// The checks are linear in the plan: long actor lists (a 256 MiB plan may hold millions) are judged at once.
    @Test func longActorListsAreJudgedInOnePass() throws {
        let path = try TestSupport.temporaryFolder("split-plan") + "/plan.json"
        let (ones, twos) = (Array(repeating: "1", count: 2_000_000).joined(separator: ","), Array(repeating: "2", count: 2_000_000).joined(separator: ","))
        try Self.plan(folds: #"[{"index": 0, "test": [\#(twos)], "validation": [\#(twos)], "train": [\#(ones)]}]"#)
            .write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try #require(throws: EmoError.self) { try SplitPlan.load(path: path) }
        #expect("\(refused)".contains("fold 0's test lists 2000000 actors; RAVDESS has 24") && "\(refused)".count < 1000, "\("\(refused)".prefix(300))")
    }
}
