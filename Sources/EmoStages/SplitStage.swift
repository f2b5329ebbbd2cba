import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// Split: the clips to learn from, each with its label and its sources per modality, and the
/// speaker-independent folds — whole actors are held out, never random clips.
///
/// Actors present are sorted and cut into `folds` contiguous blocks (so a block of four RAVDESS
/// actors holds two men and two women); fold k tests on block k and validates on the first
/// `val_count` actors of the next block. `test_actors`/`val_actors` name the actors instead
/// (one fold). `test_fold: all` keeps every fold, for cross-validation.
/// The plan is written to `cache/split/<fingerprint>.json`.
public struct SplitStage: Stage {
    public let name = StageName.split.rawValue
    // 2: of two files of one kind for a clip, the one in its own Actor_XX folder (lowercase) is taken.
    public let codeVersion = "2"
    public let manifestFields = ["label_map", "include_song"]
    public let reads: Set<String> = [StageName.ingest.rawValue]

    public init() {}

    /// A plan file deleted or edited since is made again: its digest is the stage's output digest.
    public func externalChanges(_ context: StageContext, parameters: SplitParameters) throws -> String? {
        guard let state = try context.store.stageState(.split) else { return nil }
        let plan = SplitPlan.path(workspace: context.workspace, fingerprint: state.fingerprint)
        return RecordedOutputs.problem([.init(path: plan, writtenBy: state.runId, sha256: state.outputDigest)])
    }

    /// Actors the split names that the data root has no file of: split refuses them only once ingest (and,
    /// for the run, audio) are done, so a run says it when its first stage starts, and `--dry-run` too.
    /// Judged by file names alone (nothing opened).
    public func forecast(_ parameters: [String: ResolvedParameters], manifest: Manifest) -> [String] {
        guard let split = parameters[name]?.value as? SplitParameters else { return [] }
        let named = Set(split.actors + split.testActors + split.valActors)
        guard !named.isEmpty, let present = Self.actorsNamed(under: manifest.dataRoot) else { return [] }
        let absent = named.subtracting(present).sorted()
        guard !absent.isEmpty else { return [] }
        return ["split names \(actorsPhrase(absent)), of which the data root \(manifest.dataRoot.echoed) holds no RAVDESS file: "
                + "split will refuse the run when its turn comes, after the stages before it (all 24 RAVDESS actors are in Zenodo record 1188976)"]
    }

    /// The actors that the RAVDESS file names under `root` give, following links to folders as ingest does
    /// (each real folder once), or nil when the root cannot be listed or holds more entries than a forecast
    /// should walk. Names alone: nothing is opened.
    static func actorsNamed(under root: String, limit: Int = 200_000) -> Set<Int>? {
        guard let start = ResolvedPath.of(root) else { return nil }
        var pending = [start], visited: Set<String> = [start], actors = Set<Int>(), seen = 0
        while let folder = pending.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            for name in names {
                seen += 1
                if seen > limit { return nil }
                if case .source(let codes) = RavdessName.parse(fileName: name) { actors.insert(codes.actor); continue }
                var facts = stat()
                let path = folder + "/" + name
                // Never /proc or /sys, which ingest does not walk either.
                guard stat(path, &facts) == 0, facts.st_mode & S_IFMT == S_IFDIR, !KernelFilesystem.holds(path: path, facts),
                      let real = ResolvedPath.of(path), visited.insert(real).inserted else { continue }
                pending.append(real)
            }
        }
        return actors
    }

    public func run(_ context: StageContext, parameters: SplitParameters) throws -> StageOutcome {
        let labels = try LabelMap(named: context.manifest.labelMap)
        let includeSong = context.manifest.includeSong
        let catalog = ClipCatalog(sources: try context.store.sources(status: .ok, under: context.dataRoot))
        let taking = Set(parameters.actors)
        let present = Set(catalog.clips.map(\.codes.actor))
        let origins = context.parameterOrigins
        try Self.checkNotOnlyFailed(parameters, present: present,
                                    failed: try context.store.sources(status: .failed, under: context.dataRoot), origins: origins)
        try Self.checkPresent(parameters.actors, among: present, origins: origins)
        let clips = catalog.clips.filter { includeSong || !$0.codes.isSong }.filter {
            taking.isEmpty || taking.contains($0.codes.actor)
        }.compactMap { clip -> SplitPlan.Clip? in
            guard let label = labels.classIndex(emotion: clip.codes.emotion) else { return nil }
            return SplitPlan.Clip(clip: clip.id, actor: clip.codes.actor, emotion: clip.codes.emotion, label: label,
                                  speech: clip.speech.map { .init(path: $0.path, sha256: $0.sha256!) },
                                  video: clip.video.map { .init(path: $0.path, sha256: $0.sha256!) })
        }
        let actors = Array(Set(clips.map(\.actor))).sorted()
        let notTaken = Self.leftOut(catalog.clips, taking: taking, includeSong: includeSong, labels: labels)
        // Recorded clips, none taken (song-only data while include_song is false): say why, not "0 actors".
        if clips.isEmpty, !catalog.clips.isEmpty {
            throw PipelineError.missingData("split: none of the \(catalog.clips.count) recorded clips is taken: "
                + notTaken.phrases.joined(separator: ", ") + (notTaken.song > 0 ? " (include_song: true in the manifest takes song)" : ""))
        }
        // An actor on disk whose every clip is left out is not "absent": say what left the clips out.
        let leftOut = Set(catalog.clips.map(\.codes.actor)).subtracting(actors)
        let heldOutButLeftOut = (parameters.testActors + parameters.valActors).filter(leftOut.contains)
        if !heldOutButLeftOut.isEmpty {
            throw PipelineError.missingData("split: \(parameters.holdingOut(heldOutButLeftOut, origins: origins)) \(actorsPhrase(heldOutButLeftOut)), "
                + "whose recorded files hold no clip the split takes (only song while include_song is false, "
                + "or only emotions label_map '\(context.manifest.labelMap)' leaves out)")
        }
        var planner = FoldPlanner(parameters)
        planner.origins = origins
        let folds = try planner.plan(actors: actors)
        let plan = SplitPlan(labels: labels.labels, clips: clips, folds: folds)
        let data = try plan.canonicalJSON()
        let path = SplitPlan.path(workspace: context.workspace, fingerprint: context.fingerprint.full)
        try Folder.create((path as NSString).deletingLastPathComponent)
        try DurableFile.write(data, to: path)
        for fold in folds {
            context.logger.info("fold \(fold.index): test actors \(fold.test), validation \(fold.validation), \(fold.train.count) training actors")
        }
        // A val_count the manifest chose and the split could not honour is a warning; the default's shortfall
        // on a small dataset (the demo's) is only information.
        let chosen = origins[SplitParameters.CodingKeys.valCount.rawValue]?.givenByTheUser ?? false
        for note in planner.shortValidation(folds, chosen: chosen) {
            if chosen { context.logger.warning("\(note)") } else { context.logger.info("\(note)") }
        }
        let taken = Set(clips.map(\.clip))
        for conflict in catalog.conflicts where taken.contains(conflict.clip) {
            let leftOut = conflict.leftOut.joined(separator: ", ")
            context.logger.warning("clip \(conflict.clip) has \(conflict.modality) files of \(conflict.contents) different contents: \(conflict.used) is used (\(conflict.reason)); left out: \(leftOut)")
        }
        let both = clips.filter { $0.speech != nil && $0.video != nil }.count
        let audioOnly = clips.filter { $0.speech != nil && $0.video == nil }.count
        let conflicted = Set(catalog.conflicts.map(\.clip)).intersection(taken).count
        for warning in Self.incompleteActors(clips, actorsNamed: !taking.isEmpty) { context.logger.warning("\(warning)") }
        let summary = "\(clips.count) clips of \(actors.count) actors (\(both) audio+video, \(audioOnly) audio only, "
            + "\(clips.count - both - audioOnly) video only), \(folds.count) fold(s)"
            + (conflicted > 0 ? "; \(conflicted) clip(s) with two different files of one kind, one left out (see the warnings)" : "")
            + (notTaken.phrases.isEmpty ? "" : "; left out: " + notTaken.phrases.joined(separator: ", "))
        return StageOutcome(outputDigest: SHA256Hex.of(data), unitsDone: clips.count, unitsSkipped: 0, unitsFailed: 0,
                            summary: summary)
    }
}

extension SplitStage {
    /// What the split did not take of the clips ingest recorded, by what left them out (the summary says
    /// so: a song archive unzipped beside the speech is read, but is no part of the 1440 clips).
    struct LeftOut {
        var outsideActors = 0, song = 0, unlabelled = 0
        var labelMap: String

        /// "1012 song clip(s) (include_song is false)", one phrase per reason that left any out.
        var phrases: [String] {
            [(outsideActors, "clip(s) of actors outside split.actors"), (song, "song clip(s) (include_song is false)"),
             (unlabelled, "clip(s) of emotions label_map '\(labelMap)' leaves out")].filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
        }
    }

    static func leftOut(_ recorded: [ClipCatalog.Clip], taking: Set<Int>, includeSong: Bool, labels: LabelMap) -> LeftOut {
        let actorsTaken = recorded.filter { taking.isEmpty || taking.contains($0.codes.actor) }
        return LeftOut(outsideActors: recorded.count - actorsTaken.count,
                       song: includeSong ? 0 : actorsTaken.filter(\.codes.isSong).count,
                       unlabelled: actorsTaken.filter { (includeSong || !$0.codes.isSong) && labels.classIndex(emotion: $0.codes.emotion) == nil }.count,
                       labelMap: labels.name)
    }

    /// An actor with far fewer clips than the others (under half their median), or a gap in the actors'
    /// numbers, most often means a download or copy that stopped partway: said, and the run goes on.
    /// `actorsNamed`: `split.actors` chose the actors, so a gap in their numbers is the manifest's, not the data's.
    static func incompleteActors(_ clips: [SplitPlan.Clip], actorsNamed: Bool = false) -> [String] {
        let counts = Dictionary(grouping: clips, by: \.actor).mapValues(\.count)
        guard counts.count >= 3 else { return [] }
        let sorted = counts.values.sorted()
        let median = sorted[sorted.count / 2]
        var warnings = counts.filter { $0.value * 2 < median }.sorted { $0.key < $1.key }.map { actor, count in
            "actor \(String(format: "%02d", actor)) has \(count) clip(s) where the median actor has \(median): "
                + "an incomplete download or copy? Its clips are used as they are"
        }
        let present = counts.keys.sorted()
        // RAVDESS has no song of actor 18: clips that are all song (a clip id starts with its vocal channel) do not miss it.
        let songOnly = clips.allSatisfy { $0.clip.hasPrefix("02-") }
        if !actorsNamed, let first = present.first, let last = present.last {
            let missing = (first...last).filter { counts[$0] == nil && !(songOnly && $0 == 18) }
            if !missing.isEmpty {
                warnings.append("\(actorsPhrase(missing)) between \(actorList([first])) and \(actorList([last])) "
                                + "\(missing.count == 1 ? "has" : "have") no clip the split takes: an incomplete download or copy?")
            }
        }
        return warnings
    }

    /// Actors the split names (to take, test or validate on) whose every recorded file failed ingest:
    /// said so, with the first file and its reason, not called actors the data root does not have.
    static func checkNotOnlyFailed(_ parameters: SplitParameters, present: Set<Int>, failed: [SourceRecord],
                                   origins: [String: ParameterOrigin] = [:]) throws {
        let named = Set(parameters.actors + parameters.testActors + parameters.valActors).subtracting(present)
        let failedByActor = Dictionary(grouping: failed.filter { $0.actor.map(named.contains) == true }, by: { $0.actor! })
        guard !failedByActor.isEmpty else { return }
        let actors = failedByActor.keys.sorted()
        let files = actors.flatMap { failedByActor[$0]! }.sorted { $0.path < $1.path }
        let roles = [(SplitParameters.CodingKeys.actors, parameters.actors), (.testActors, parameters.testActors),
                     (.valActors, parameters.valActors)].filter { !Set($0.1).isDisjoint(with: actors) }.map(\.0)
        let one = actors.count == 1
        throw PipelineError.missingData("split: \(SplitParameters.named(roles, origins)) name\(roles.count == 1 ? "s" : "") \(actorsPhrase(actors)), "
            + "but every file of \(one ? "that actor" : "those actors") failed ingest (\(files.count) file\(files.count == 1 ? "" : "s"); first: \(files[0].path): "
            + "\(files[0].reason ?? "no reason recorded")); `emopipe sources --failed` lists them")
    }

    /// `split.actors` names only actors the data root has: a missing one would silently shrink
    /// every fold (or leave a fold without training actors).
    static func checkPresent(_ wanted: [Int], among present: Set<Int>, origins: [String: ParameterOrigin] = [:]) throws {
        let absent = wanted.filter { !present.contains($0) }
        guard !absent.isEmpty else { return }
        throw PipelineError.missingData("split: \(SplitParameters.named(.actors, origins)) names \(actorsPhrase(absent)), which the data root does not have (it has \(actorList(present.sorted())))")
    }
}

/// The split stage's parameters.
public struct SplitParameters: StageParameters {
    /// Which fold to test on, or every one (cross-validation).
    public enum TestFold: Codable, Equatable, Sendable {
        case index(Int)
        case all

        var index: Int? { if case .index(let k) = self { return k } else { return nil } }

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let k = try? c.decode(Int.self) { self = .index(k); return }
            guard (try? c.decode(String.self)) == "all" else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                        debugDescription: "expected a fold number or 'all'"))
            }
            self = .all
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .index(let k): try c.encode(k)
            case .all: try c.encode("all")
            }
        }
    }

    /// Actors sorted, cut into this many contiguous blocks.
    public var folds = 4
    public var testFold = TestFold.index(0)
    /// Validation actors: the first ones of the next block (0: none, for `train.selection: last`).
    public var valCount = 2
    /// Or name the test actors (one fold) and the validation actors (none: `train.selection: last`).
    public var testActors: [Int] = []
    public var valActors: [Int] = []
    /// Only these actors take part (empty: every actor present). The others are neither trained,
    /// validated nor tested on: how settings are chosen while some actors stay untouched.
    public var actors: [Int] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case folds, testFold = "test_fold", valCount = "val_count", testActors = "test_actors", valActors = "val_actors"
        case actors
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(&folds, forKey: .folds)
        try c.overwrite(&testFold, forKey: .testFold)
        try c.overwrite(&valCount, forKey: .valCount)
        try c.overwrite(&testActors, forKey: .testActors)
        try c.overwrite(&valActors, forKey: .valActors)
        try c.overwrite(&actors, forKey: .actors)
        // Sets of actors, whatever order they are written in: [2, 1] is the split [1, 2] is, with its fingerprint.
        testActors.sort(); valActors.sort(); actors.sort()
    }

    public func validate() throws {
        func bad(_ key: String, _ value: Any, _ allowed: String, bounds: [String] = []) -> InvalidParameter {
            InvalidParameter(key: key, value: "\(value)", allowed: allowed, bounds: bounds)
        }
        let ravdess = RavdessName.actorRange
        guard (2...ravdess.count).contains(folds) else { throw bad("folds", folds, "an integer from 2 to \(ravdess.count)") }
        if let k = testFold.index, !(0..<folds).contains(k) {
            throw bad("test_fold", k, "a fold number from 0 to \(folds - 1), or all")
        }
        // 0: no validation actors, for a training that keeps its last epoch (train.selection: last).
        guard (0...ravdess.count - 2).contains(valCount) else { throw bad("val_count", valCount, "an integer from 0 to \(ravdess.count - 2)") }
        for (key, list) in [("test_actors", testActors), ("val_actors", valActors), ("actors", self.actors)] {
            if let outside = list.first(where: { !ravdess.contains($0) }) {
                throw bad(key, list, "RAVDESS actor numbers from \(ravdess.lowerBound) to \(ravdess.upperBound); \(outside) is not one")
            }
            guard Set(list).count == list.count else { throw bad(key, list, "each actor at most once") }
        }
        if let both = testActors.first(where: valActors.contains) {
            throw bad("val_actors", valActors, "actors that are not also test actors (\(both) is both)", bounds: ["test_actors"])
        }
        if !actors.isEmpty, let outside = (testActors + valActors).first(where: { !actors.contains($0) }) {
            throw bad(testActors.contains(outside) ? "test_actors" : "val_actors", testActors.contains(outside) ? testActors : valActors,
                      "actors among split.actors \(actors) (\(outside) is not)", bounds: ["actors"])
        }
        // Held out from split.actors, they would leave no one to train on (decided here, not at the run).
        if !actors.isEmpty, !testActors.isEmpty, Set(actors).subtracting(testActors + valActors).isEmpty {
            throw bad("actors", actors, "at least one actor besides the test and validation actors \((testActors + valActors).sorted()), "
                      + "to train on", bounds: ["test_actors", "val_actors"])
        }
        // Named test actors make the one fold: fold settings beside them would be silently ignored.
        if !testActors.isEmpty {
            let defaults = SplitParameters()
            let ignored: [(String, String)] = [("folds", folds != defaults.folds ? "\(folds)" : nil),
                                               ("test_fold", testFold != defaults.testFold ? (testFold.index.map(String.init) ?? "all") : nil),
                                               ("val_count", valCount != defaults.valCount ? "\(valCount)" : nil)]
                .compactMap { key, value in value.map { (key, $0) } }
            if let (key, value) = ignored.first {
                throw bad(key, value, "has no effect: split.test_actors \(testActors) names the one fold, so folds, test_fold and val_count "
                          + "are not used; leave \(key) out, or drop test_actors/val_actors", bounds: ["test_actors"])
            }
        }
        // Cut into folds, split.actors must hold one actor per fold at least (known here, not at the run).
        if testActors.isEmpty, !actors.isEmpty, actors.count < folds {
            throw bad("folds", folds, "at most the \(actors.count) actor(s) split.actors keeps (\(actors.sorted()))", bounds: ["actors"])
        }
        // ... and leave every fold an actor to train on once its test and validation actors are held out.
        if testActors.isEmpty, !actors.isEmpty {
            do { _ = try FoldPlanner(self).plan(actors: actors.sorted()) } catch PipelineError.missingData(let why) {
                throw bad("folds", folds, String(why.dropFirst("split: ".count)) + " (of split.actors \(actors.sorted()))",
                          bounds: ["actors", "val_count"])
            }
        }
        // Test actors alone: one fold without validation actors (train.selection: last).
        if testActors.isEmpty && !valActors.isEmpty {
            throw bad("val_actors", valActors, "actors named together with test_actors (val_actors alone names no fold)")
        }
    }
}

extension SplitParameters {
    /// The key that leaves the folds without validation actors, its value and what it does, or nil.
    /// With test actors named, an empty val_actors given somewhere is what to blame; absent, the test actors.
    func withoutValidation(valActorsGiven: Bool) -> (key: String, value: String, effect: String)? {
        if !testActors.isEmpty {
            guard valActors.isEmpty else { return nil }
            return valActorsGiven ? ("val_actors", "[]", "with split.test_actors \(testActors), the fold has")
                                  : ("test_actors", "\(testActors)", "named without split.val_actors, the fold has")
        }
        return valCount == 0 ? ("val_count", "0", "the folds have") : nil
    }

    /// The keys that name any of `actors` among the held-out ones, with their verb, as a message says them.
    /// `split.<key>`, and where its value came from when that is known (a refusal that depends on the data
    /// names the file or `--set` to change, as a refusal of the value alone does).
    static func named(_ key: CodingKeys, _ origins: [String: ParameterOrigin]) -> String {
        origins[key.rawValue].map { "split.\(key.rawValue) (from \($0.place))" } ?? "split.\(key.rawValue)"
    }

    /// Several keys joined with "and"; when they all come from one place (the manifest, say) it is named once.
    static func named(_ keys: [CodingKeys], _ origins: [String: ParameterOrigin]) -> String {
        let places = Set(keys.map { origins[$0.rawValue]?.place })
        guard places.count == 1, keys.count > 1 else { return keys.map { named($0, origins) }.joined(separator: " and ") }
        return keys.map { "split.\($0.rawValue)" }.joined(separator: " and ") + (places.first.flatMap { $0 }.map { " (from \($0))" } ?? "")
    }

    func holdingOut(_ actors: [Int], origins: [String: ParameterOrigin] = [:]) -> String {
        let keys = [(CodingKeys.testActors, testActors), (.valActors, valActors)]
            .filter { !Set($0.1).isDisjoint(with: actors) }.map(\.0)
        return Self.named(keys, origins) + (keys.count == 1 ? " holds out" : " hold out")
    }
}

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
                + (testActors.isEmpty ? "fewer split.folds or a smaller split.val_count"
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

    private func cut(actors: [Int]) throws -> [SplitPlan.Fold] {
        if !testActors.isEmpty { return [try listed(actors: actors)] }
        guard actors.count >= folds else {
            let kept = taking.isEmpty ? "the data has" : "split.actors keeps, of the data's,"
            throw PipelineError.missingData("split: \(folds) folds need at least \(folds) actors; \(kept) \(actors.count) (\(actorList(actors)))")
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

    public static func load(path: String) throws -> SplitPlan {
        try JSONDecoder().decode(SplitPlan.self, from: RegularFile.read(path))
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
