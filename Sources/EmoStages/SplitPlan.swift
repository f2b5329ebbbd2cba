import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// Which actors each fold tests, validates and trains on.
struct FoldPlanner {
    var folds: Int
    var testFold: Int?          // nil: all folds
    var valCount: Int
    var testActors: [Int]
    var valActors: [Int]
    var taking: [Int]
    var parameters: SplitParameters
    /// Where the split's values came from, named by refusals that depend on the data.
    var origins: [String: ParameterOrigin] = [:]

    init(_ parameters: SplitParameters) {
        folds = parameters.folds
        testFold = parameters.testFold.index
        valCount = parameters.valCount
        testActors = parameters.testActors
        valActors = parameters.valActors
        taking = parameters.actors
        self.parameters = parameters
    }

    func plan(actors present: [Int]) throws -> [SplitPlan.Fold] {
        let folds = try cut(actors: taking.isEmpty ? present : present.filter(taking.contains))
        // Caught here, not by training after the split has been recorded.
        if let empty = folds.first(where: { $0.train.isEmpty }) {
            throw PipelineError.missingData(
                "split: fold \(empty.index) tests \(actorsPhrase(empty.test)) and validates on \(actorList(empty.validation)), "
                + "which leaves no actor to train on; hold out fewer actors ("
                + (testActors.isEmpty ? "more split.folds, each testing fewer actors, or a smaller split.val_count"
                   : valActors.isEmpty ? "a shorter split.test_actors list" : "shorter split.test_actors/val_actors lists")
                + ") or give the data more actors")
        }
        return folds
    }

    /// The folds that validate on fewer actors than `val_count` asks for (the next block is smaller),
    /// worded for the log: quietly validating on fewer would make selection noisier unseen.
    func shortValidation(_ folds: [SplitPlan.Fold], chosen: Bool = true) -> [String] {
        guard testActors.isEmpty else { return [] }
        return folds.filter { $0.validation.count < valCount }.map { fold in
            "fold \(fold.index): validates on \(fold.validation.count) actor(s) (\(actorList(fold.validation))), not split.val_count = \(valCount)\(chosen ? "" : " (the default)"): the next block of actors holds only \(fold.validation.count)"
        }
    }

    /// The `--set` options that split `actors` where `folds` cannot: the most folds they allow with the split's
    /// val_count, else with no validation actors (which needs train.selection: last); nil when none do.
    private func workingFolds(for actors: [Int]) -> String? {
        for noValidation in valCount == 0 ? [true] : [false, true] {
            for count in stride(from: actors.count, through: 2, by: -1) {
                var trial = self
                (trial.folds, trial.taking, trial.testFold) = (count, [], testFold.map { min($0, count - 1) })
                if noValidation { trial.valCount = 0 }
                guard (try? trial.plan(actors: actors)) != nil else { continue }
                return "--set split.folds=\(count)" + (trial.testFold != testFold ? " --set split.test_fold=\(trial.testFold ?? 0)" : "")
                    + (noValidation && valCount != 0 ? " --set split.val_count=0 --set train.selection=last" : "")
            }
        }
        return nil
    }

    private func cut(actors: [Int]) throws -> [SplitPlan.Fold] {
        if !testActors.isEmpty { return [try listed(actors: actors)] }
        guard actors.count >= folds else {
            let kept = taking.isEmpty ? "the data has" : "split.actors keeps, of the data's,"
            // The way out named (the default manifest's 4 folds want 4 actors): settings that do split these actors.
            let way = workingFolds(for: actors).map { "`\($0)` splits them" } ?? "RAVDESS has 24 actors: Zenodo record 1188976"
            throw PipelineError.missingData("split: \(folds) folds need at least \(folds) actors (\(way)); \(kept) \(actors.count) (\(actorList(actors)))")
        }
        let blocks = (0..<folds).map { k in Array(actors[(k * actors.count / folds)..<((k + 1) * actors.count / folds)]) }
        let chosen = testFold.map { [$0] } ?? Array(0..<folds)
        return chosen.map { k in
            let validation = Array(blocks[(k + 1) % folds].prefix(valCount))
            let held = Set(blocks[k] + validation)
            return SplitPlan.Fold(index: k, test: blocks[k], validation: validation,
                                  train: actors.filter { !held.contains($0) })
        }
    }

    private func listed(actors: [Int]) throws -> SplitPlan.Fold {
        let present = Set(actors)
        let missing = (testActors + valActors).filter { !present.contains($0) }
        if !missing.isEmpty {
            throw PipelineError.missingData(
                "split: \(parameters.holdingOut(missing, origins: origins)) \(actorsPhrase(missing)), "
                + "which the data root does not have (it has \(actorList(actors))); "
                + "all 24 RAVDESS actors are in Zenodo record 1188976")
        }
        let held = Set(testActors + valActors)
        return SplitPlan.Fold(index: 0, test: testActors, validation: valActors, train: actors.filter { !held.contains($0) })
    }
}

/// What the split stage writes: the labels, every clip with its sources, and the folds.
public struct SplitPlan: Codable, Equatable, Sendable {
    public struct Source: Codable, Equatable, Sendable {
        public var path: String
        public var sha256: String
    }
    public struct Clip: Codable, Equatable, Sendable {
        public var clip: String
        public var actor: Int
        public var emotion: Int
        public var label: Int
        public var speech: Source?
        public var video: Source?

        /// The file a model input reads: the speech (a wav, else the AV clip, whose sound it is) for
        /// audio, the video for faces.
        public func source(for modality: ModelConfig.Modality) -> Source? { modality == .audio ? speech : video }
    }
    /// The model layer's fold type: a trained model records the fold it was trained on.
    public typealias Fold = ActorFold

    public var labels: [String]
    public var clips: [Clip]
    public var folds: [Fold]

    public static func path(workspace: Workspace, fingerprint: String) -> String {
        workspace.splitPlanPath(fingerprint: fingerprint)
    }

    /// The plan the split stage wrote, checked: `--only train` uses it as it is, and an edited label or fold
    /// was an index out of range in training (a trap), not a refusal. A damaged file is a failure (exit 1).
    /// `recordedSHA256`: the split stage's output digest, which the file's bytes must have: an edit that keeps
    /// the plan sound (a clip's emotion, label and actor changed together, a fold the split never made) would
    /// otherwise train on what the split did not choose.
    public static func load(path: String, recordedSHA256: String? = nil) throws -> SplitPlan {
        let data = try RegularFile.read(path)
        let plan: SplitPlan, decoder = JSONDecoder()
        do { plan = try decoder.decode(SplitPlan.self, from: data) } catch {
            let problem = JSONOutput.problem(error, in: data, decoding: SplitPlan.self, using: decoder)
            throw EmoError.io(path: path, reason: "not a split plan (\(problem)); " + rewriteAdvice)
        }
        if let problem = plan.problem { throw EmoError.io(path: path, reason: problem + "; " + rewriteAdvice) }
        if let recordedSHA256, SHA256Hex.of(data) != recordedSHA256 {
            throw EmoError.io(path: path, reason: "changed since the split stage wrote it (its SHA-256 is not the one recorded then); " + rewriteAdvice)
        }
        return plan
    }

    static let rewriteAdvice = "the split stage writes it: `emopipe run MANIFEST --force split` writes it again"

    /// What makes the plan unusable, or nil: the labels a label map's, each clip's label and actor in range,
    /// and each fold as a trained model's must be. Linear in the plan's size, and every value named is one value.
    var problem: String? {
        guard let map = LabelMap.all.first(where: { $0.labels == labels }) else {
            return "its labels are not a label map's classes in its order ("
                + LabelMap.all.map { "\($0.name): \($0.labels.joined(separator: ", "))" }.joined(separator: "; ") + ")"
        }
        var clipIds = Set<String>()
        for clip in clips {
            guard clipIds.insert(clip.clip).inserted else { return "clip \(clip.clip.echoed) is listed twice" }
            guard labels.indices.contains(clip.label) else {
                return "clip \(clip.clip.echoed) has label \(clip.label), not one of the \(labels.count) labels' indices 0 to \(labels.count - 1)"
            }
            // The label is the emotion's class under the map: another would train the clip as something it is not.
            guard map.classIndex(emotion: clip.emotion) == clip.label else {
                return "clip \(clip.clip.echoed) has emotion \(clip.emotion) and label \(clip.label), which \(map.name) does not map it to"
            }
            guard RavdessName.actorRange.contains(clip.actor) else {
                return "clip \(clip.clip.echoed) has actor \(clip.actor), not \(RavdessName.actorRange.lowerBound) to \(RavdessName.actorRange.upperBound)"
            }
        }
        guard !folds.isEmpty else { return "no fold" }
        var indices = Set<Int>()
        for fold in folds {
            guard (0..<RavdessName.actorRange.count).contains(fold.index), indices.insert(fold.index).inserted else {
                return "fold index \(fold.index) is not 0 to \(RavdessName.actorRange.count - 1), or is listed twice"
            }
            // Longer lists are no split's: logged and recorded in every model.json, they grew both without bound.
            let roles = [("test", fold.test), ("validation", fold.validation), ("train", fold.train)]
            if let (role, listed) = roles.first(where: { $0.1.count > RavdessName.actorRange.count }) {
                return "fold \(fold.index)'s \(role) lists \(listed.count) actors; RAVDESS has \(RavdessName.actorRange.count)"
            }
            if let why = fold.inconsistency { return "fold \(fold.index): \(why)" }
        }
        return nil
    }

    func canonicalJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}

/// "actor 07" or "actors 17, 18".
func actorsPhrase(_ actors: [Int]) -> String { (actors.count == 1 ? "actor " : "actors ") + actorList(actors) }

/// Actors as the split's messages name them: "01, 02, 13", or "none".
func actorList(_ actors: [Int]) -> String {
    actors.isEmpty ? "none" : actors.map { String(format: "%02d", $0) }.joined(separator: ", ")
}
