import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// The test clips evaluate could not score: a file of theirs that would feed the model failed ingest
/// (so the split never took the clip) or failed the feature stage of every input the model reads, or
/// the clip has no file of an input the model learnt from.
/// Their count is what separates metrics.json's clip count from the clips on disk.
enum UnscoredTestClips {
    /// `scored`: the test clips that have a prediction. `learnt`: by fold index, the inputs its model learnt
    /// from, when not all of `modalities` (a branch no training clip fed).
    static func find(_ context: StageContext, scored: Set<String>, plan: SplitPlan, folds: [ActorFold],
                     modalities: [ModelConfig.Modality], learnt: [Int: [ModelConfig.Modality]] = [:]) throws -> [UnscoredClip] {
        let inputs = try FeatureInputs(context, modalities: modalities)
        let labels = try LabelMap(named: context.manifest.labelMap)
        // The files that failed ingest and would have fed the model, best-ranked first per clip.
        let failedFiles = try context.store.sources(status: .failed, under: context.dataRoot)
            .compactMap { source -> (id: String, actor: Int, rank: Int, source: SourceRecord)? in
                guard let id = source.clip, let codes = source.codes, !scored.contains(id),
                      context.manifest.includeSong || !codes.isSong, labels.classIndex(emotion: codes.emotion) != nil,
                      let rank = inputs.rank(modality: codes.modality) else { return nil }
                return (id, codes.actor, rank, source)
            }
            .sorted { ($0.rank, $0.source.path) < ($1.rank, $1.source.path) }
        let planned = Dictionary(plan.clips.map { ($0.clip, $0) }, uniquingKeysWith: { a, _ in a })
        // Sorted best first: the first file of each clip is the one named.
        let bestFailed = Dictionary(failedFiles.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var found: [UnscoredClip] = []
        for fold in folds {
            let testing = Set(fold.test)
            let unscoredPlanned = plan.clips.filter { testing.contains($0.actor) && !scored.contains($0.clip) }
            let unplannedFailed = failedFiles.filter { testing.contains($0.actor) && planned[$0.id] == nil }
            var seen = Set<String>()
            for (id, actor) in unscoredPlanned.map({ ($0.clip, $0.actor) }) + unplannedFailed.map({ ($0.id, $0.actor) })
            where seen.insert(id).inserted {
                // A feature stage's failure first; then the file that failed ingest (a clip the split took from
                // another file); then a clip the model takes no input of; else the stage not being up to date.
                let failure = planned[id].flatMap(inputs.failure(of:))
                let notTaken = planned[id].flatMap { Self.notTaken($0, modalities: modalities, learnt: learnt[fold.index] ?? modalities, fold: fold.index) }
                let cause: (path: String, stage: StageName, reason: String)?
                if let failure, failure.recorded { cause = (failure.path, failure.stage, failure.reason) }
                else if let file = bestFailed[id] { cause = (file.source.path, .ingest, file.source.reason ?? "failed") }
                else if let notTaken { cause = (notTaken.path, .evaluate, notTaken.reason) }
                else { cause = failure.map { ($0.path, $0.stage, $0.reason) } }
                if let cause {
                    found.append(UnscoredClip(clip: id, actor: actor, fold: fold.index, path: cause.path, stage: cause.stage.rawValue, reason: cause.reason))
                }
            }
        }
        return found.sorted { ($0.fold, $0.clip) < ($1.fold, $1.clip) }
    }

    /// Why a test clip the split planned is no input for the fold's model, or nil when it has a file of an
    /// input the model learnt: it has only files of inputs the model does not read (a video-only clip under an
    /// audio model), or only of an input whose branch no training clip fed (scored, it would get the bias).
    static func notTaken(_ clip: SplitPlan.Clip, modalities: [ModelConfig.Modality], learnt: [ModelConfig.Modality],
                         fold: Int) -> (path: String, reason: String)? {
        guard !learnt.contains(where: { clip.source(for: $0) != nil }), let file = clip.video ?? clip.speech else { return nil }
        let reads = learnt.map(\.rawValue).joined(separator: " and ")
        if let untrained = modalities.first(where: { !learnt.contains($0) && clip.source(for: $0) != nil }) {
            return (file.path, "its only input is \(untrained.rawValue), whose branch never learnt (no training clip of fold \(fold) had it): not scored")
        }
        let has = clip.speech == nil ? "only a video file (no speech)" : "only speech (no video)"
        return (file.path, "has \(has), and the model reads \(reads): not scored")
    }

    /// What left a fold with no test clip to score, for its error: how many failed at which stage, and
    /// the first one's file and reason; empty when no failure explains it.
    /// `planned`: the fold's test clips in the split's plan (a failed file can keep a clip out of it).
    /// `role`: what the clips are to the fold (train says it of its training or validation clips).
    static func why(_ unscored: [UnscoredClip], of planned: Int, actors: [Int], role: String = "test") -> String {
        // A clip the model takes no input of failed nothing: the caller says that of it.
        let unscored = unscored.filter { $0.stage != StageName.evaluate.rawValue }
        guard let first = unscored.first else { return "" }
        let byStage = Dictionary(grouping: unscored, by: \.stage).map { "\($0.key): \($0.value.count)" }.sorted()
        let total = max(planned, unscored.count)
        let count = unscored.count == total ? "the \(total)" : "\(unscored.count) of the \(total)"
        return ": \(count) \(role) clip\(total == 1 ? "" : "s") of \(actorsPhrase(actors)) failed (\(byStage.joined(separator: ", ")); "
            + "first: \(first.path): \(first.reason)); `emopipe sources --failed` lists them"
    }

    /// Why the list evaluate last wrote no longer holds (a test clip's file failing since, or failing
    /// otherwise), or nil. Ingest's output digest follows only the files that work, so evaluate's
    /// fingerprint does not see this.
    static func changedSince(_ context: StageContext) throws -> String? {
        guard let state = try context.store.stageState(.evaluate), let split = try context.store.stageState(.split) else { return nil }
        let folder = context.workspace.runFolder(state.runId)
        guard let metrics = try? EvaluationJSON.decode(MetricsDocument.self, from: RegularFile.read(RunFile.metrics.path(in: folder))),
              let lines = try? RegularFile.read(RunFile.predictionsJSONL.path(in: folder)) else { return nil }
        // What cannot be read here (folds or plan gone) is for train's and split's own checks to report.
        struct Row: Decodable { var clip: String }
        guard let rows = try? String(decoding: lines, as: UTF8.self).split(separator: "\n")
                .map({ try JSONDecoder().decode(Row.self, from: Data($0.utf8)).clip }),
              let models = try? TrainStage.foldFolders(context).map(TrainedModel.description(in:)),
              let modalities = models.first?.config.modalities,
              let plan = try? SplitPlan.load(path: SplitPlan.path(workspace: context.workspace, fingerprint: split.fingerprint))
        else { return nil }
        let scored = Set(rows)
        let learnt = Dictionary(models.map { ($0.fold.index, $0.learntModalities) }, uniquingKeysWith: { a, _ in a })
        let now = try find(context, scored: scored, plan: plan, folds: models.map(\.fold), modalities: modalities, learnt: learnt)
        guard now != metrics.unscored else { return nil }
        return "the test clips not scored changed since run \(state.runId): " + firstDifference(then: metrics.unscored, now: now)
    }

    private static func firstDifference(then: [UnscoredClip], now: [UnscoredClip]) -> String {
        let before = Dictionary(then.map { ("\($0.fold) \($0.clip)", $0) }, uniquingKeysWith: { a, _ in a })
        if let changed = now.first(where: { before["\($0.fold) \($0.clip)"] != $0 }) {
            let was = before["\(changed.fold) \(changed.clip)"] == nil ? "now" : "now otherwise"
            // A clip the model takes no input of failed nothing: it is not scored.
            let verb = changed.stage == StageName.evaluate.rawValue ? "is not scored" : "fails"
            return "clip \(changed.clip) \(verb) \(was) (\(changed.path), \(changed.stage): \(changed.reason))"
        }
        let current = Set(now.map { "\($0.fold) \($0.clip)" })
        let recovered = then.first { !current.contains("\($0.fold) \($0.clip)") }
        return "clip \(recovered?.clip ?? "?") no longer fails"
    }

    /// The feature stages the model reads, under the parameters they last completed with.
    private struct FeatureInputs {
        let stages: [(modality: ModelConfig.Modality, stage: StageName, failures: [String: String])]
        /// The modality codes the model reads, best first.
        let order: [Int]

        init(_ context: StageContext, modalities: [ModelConfig.Modality]) throws {
            stages = try modalities.map { modality in
                let stage: StageName = modality == .audio ? .audio : .faces
                let fingerprint = try context.store.stageState(stage)?.parametersFingerprint
                let failures = try context.store.failures(stage: stage.rawValue).filter { $0.fingerprint == fingerprint }
                return (modality, stage, Dictionary(failures.map { ($0.sha256, $0.reason) }, uniquingKeysWith: { a, _ in a }))
            }
            order = stages.flatMap { $0.stage == .audio ? ClipCatalog.speechOrder : ClipCatalog.videoOrder }
        }

        /// Where a file of this RAVDESS modality code ranks among those the model can read (nil: it reads none).
        func rank(modality: Int) -> Int? { order.firstIndex(of: modality) }

        /// Why a planned clip has no features: its first input's recorded failure, else the stage not
        /// being up to date for it. Nil for a clip with no file any input reads (a video-only clip under an audio model).
        /// `recorded`: the stage recorded the failure (else the reason is the stage not being up to date).
        func failure(of clip: SplitPlan.Clip) -> (path: String, stage: StageName, reason: String, recorded: Bool)? {
            var first: (path: String, stage: StageName, reason: String, recorded: Bool)?
            for input in stages {
                guard let source = clip.source(for: input.modality) else { continue }
                if let reason = input.failures[source.sha256] { return (source.path, input.stage, reason, true) }
                first = first ?? (source.path, input.stage, "no cached \(input.stage.rawValue) record and no recorded failure: "
                                  + "the stage is not up to date (`emopipe status` says why)", false)
            }
            return first
        }
    }
}
