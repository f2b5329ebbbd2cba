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
    // 3: next, one in a folder naming its actor otherwise (`actor_02`, `Actor_2`), before any other folder.
    public let codeVersion = "3"
    public let manifestFields = ["label_map", "include_song"]
    public let reads: Set<String> = [StageName.ingest.rawValue]

    public init() {}

    /// A plan file deleted or edited since is made again: its digest is the stage's output digest.
    public func externalChanges(_ context: StageContext, parameters: SplitParameters) throws -> String? {
        guard let state = try context.store.stageState(.split) else { return nil }
        let plan = SplitPlan.path(workspace: context.workspace, fingerprint: state.fingerprint)
        return RecordedOutputs.problem([.init(path: plan, writtenBy: state.runId, sha256: state.outputDigest, maxBytes: RegularFile.documentLimit)])
    }

    /// Actors the split names that the data root has no file of, or folds the actors it has cannot fill: split
    /// refuses them only once ingest (and, for the run, audio) are done, so a run says it when its first stage
    /// starts, and `--dry-run` too. Judged by file names alone (nothing opened; a file that then fails ingest
    /// can still leave split short).
    public func forecast(_ parameters: [String: ResolvedParameters], manifest: Manifest) -> [Forecast] {
        guard let split = parameters[name]?.value as? SplitParameters, let named = Self.actorsNamed(under: manifest.dataRoot) else { return [] }
        // An actor folder that cannot be listed may hold the files of records ingest kept, or none (a new work directory).
        let listed = named.actors, unlistedActors = named.unlistedActors.subtracting(named.actors)
        guard !listed.isEmpty || !unlistedActors.isEmpty else { return [] }
        let root = manifest.dataRoot.echoed
        let cannotList = named.unlisted.first.map { "\($0.echoed)\(named.unlisted.count > 1 ? " and \(named.unlisted.count - 1) more" : "")" }
        /// What split would refuse with `present` actors (and a note for the end of the line), or nil.
        func refusal(_ present: Set<Int>) -> (why: String, note: String)? {
            let absent = Set(split.actors + split.testActors + split.valActors).subtracting(present).sorted()
            guard absent.isEmpty else {
                // The keys that name them, with where each was given, as split's own refusal names them.
                let keys = [(SplitParameters.CodingKeys.actors, split.actors), (.testActors, split.testActors), (.valActors, split.valActors)]
                    .filter { !Set($0.1).isDisjoint(with: absent) }.map(\.0)
                let naming = SplitParameters.named(keys, parameters[name]?.origins ?? [:]) + (keys.count == 1 ? " names " : " name ")
                return (naming + "\(actorsPhrase(absent)), of which the data root \(root) holds no RAVDESS file"
                        + (cannotList.map { " it can list (it cannot list \($0))" } ?? ""), " (all 24 RAVDESS actors are in Zenodo record 1188976)")
            }
            do { _ = try FoldPlanner(split).plan(actors: present.sorted()) } catch PipelineError.missingData(let why) {
                return ("\(why) (judged by the RAVDESS file names under \(root))", "")
            } catch {}
            return nil
        }
        let refusedLater = "split will refuse the run when its turn comes"
        if let certain = refusal(listed.union(unlistedActors)) {
            // Fewer actors than named can only make it worse, so with every folder seen no data the run reads can avoid it.
            // Unless some actor's clips are all left out (song only): split's own refusal then says why it does not count.
            let everyActorTaken = (try? LabelMap(named: manifest.labelMap)).map { Set(named.clipsTaken(includeSong: manifest.includeSong, labels: $0).keys) == listed } ?? false
            return [Forecast(reason: certain.why, consequence: refusedLater, note: certain.note, certain: named.seenWhole && everyActorTaken)]
        }
        if !unlistedActors.isEmpty, let cannotList, let likely = refusal(listed) {
            return [Forecast(reason: likely.why, consequence: "\(refusedLater), unless ingest kept records of the files in \(cannotList), which cannot be listed now",
                             note: likely.note)]
        }
        return []
    }

    /// What the RAVDESS file names under a data root say, nothing opened: the actors, and which of them have a
    /// file of speech (modality 01 or 03) and of video (01 or 02); folders that cannot be listed, and their actors.
    struct NamesUnderRoot {
        var actors: Set<Int> = []
        var speechActors: Set<Int> = []
        var videoActors: Set<Int> = []
        /// Each actor's clips (`clipID` → the codes of a file of it), of whatever modality: which the split takes.
        var clips: [Int: [String: RavdessCodes]] = [:]
        var unlisted: [String] = []
        var unlistedActors: Set<Int> = []
        /// Folders holding an entry whose name this walk cannot spell (not UTF-8), so cannot look at: no certainty is
        /// claimed over what it did not see.
        var unspelled: Set<String> = []

        /// Every folder listed and every entry looked at: what ingest will read is all here.
        var seenWhole: Bool { unlisted.isEmpty && unspelled.isEmpty }

        /// How many clips of each actor the split takes: of speech, or song too with `includeSong`, of an emotion `labels` has.
        /// An actor with none is left out of its folds.
        func clipsTaken(includeSong: Bool, labels: LabelMap) -> [Int: Int] {
            clips.mapValues { $0.values.count { (includeSong || !$0.isSong) && labels.classIndex(emotion: $0.emotion) != nil } }.filter { $0.value > 0 }
        }
    }

    /// The actors that the RAVDESS file names under `root` give, following links to folders as ingest does
    /// (each real folder once), or nil when the root cannot be listed or holds more entries than a forecast
    /// should walk. Names alone: nothing is opened. A folder below the root that cannot be listed is named in
    /// `unlisted`, and its actor in `unlistedActors` when its name is an actor's (`Actor_02`): ingest keeps what
    /// it recorded of its files, if anything, and split takes those.
    static func actorsNamed(under root: String, limit: Int = 200_000) -> NamesUnderRoot? {
        guard let start = ResolvedPath.of(root), (try? FileManager.default.contentsOfDirectory(atPath: start)) != nil else { return nil }
        // As ingest: never up into a folder that holds the root (files outside it, or the whole machine).
        let holdingRoot = DataRootScan.foldersHolding(root)
        // Each folder by its real path, with the name the walk reached it by (a link `Actor_05 -> /mnt/x` is actor 05's).
        var pending = [(real: start, arrivedAs: "")], visited: Set<String> = [start], seen = 0
        var found = NamesUnderRoot()
        while let (folder, arrivedAs) = pending.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                found.unlisted.append(folder)
                if let actor = ActorFolder.actor(folderName: arrivedAs) { found.unlistedActors.insert(actor) }
                continue
            }
            // Hidden names are skipped, files and folders, as ingest skips them.
            for name in names where !name.hasPrefix(".") {
                seen += 1
                if seen > limit { return nil }
                var facts = stat()
                let path = folder + "/" + name
                let reached = stat(path, &facts) == 0, isFolder = reached && facts.st_mode & S_IFMT == S_IFDIR
                // A folder named as a recording is (`03-01-…wav/`, or a link to one) is walked as ingest walks it, its name no file.
                if case .source(let codes) = RavdessName.parse(fileName: name), !isFolder {
                    found.actors.insert(codes.actor)
                    if codes.modality != 2 { found.speechActors.insert(codes.actor) }
                    if codes.modality != 3 { found.videoActors.insert(codes.actor) }
                    found.clips[codes.actor, default: [:]][codes.clipID] = codes
                    continue
                }
                // A name that is not UTF-8 is listed with U+FFFD in its place, and no path reaches it; a link to nothing is nothing.
                if !reached, lstat(path, &facts) != 0 { found.unspelled.insert(folder); continue }
                // Never /proc or /sys, which ingest does not walk either.
                guard isFolder, !KernelFilesystem.holds(path: path, facts),
                      !holdingRoot.contains(FileIdentity(facts)), let real = ResolvedPath.of(path), visited.insert(real).inserted else { continue }
                pending.append((real, name))
            }
        }
        found.unlisted.sort()
        return found
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
        let folds: [SplitPlan.Fold]
        do { folds = try planner.plan(actors: actors) } catch PipelineError.missingData(let why) where !leftOut.isEmpty {
            // Too few actors for the folds, counted without those on disk whose clips were all left out: say why they do not count.
            throw PipelineError.missingData(why + "; \(actorsPhrase(leftOut.sorted())) recorded only clips the split does not take "
                + "(only song while include_song is false, or only emotions label_map '\(context.manifest.labelMap)' leaves out)")
        }
        let plan = SplitPlan(labels: labels.labels, clips: clips, folds: folds)
        let data = try plan.canonicalJSON()
        let path = SplitPlan.path(workspace: context.workspace, fingerprint: context.fingerprint.full)
        try Folder.create(PathText.folder(of: path))
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
        for row in catalog.contradicted {
            let note = "\(row.path.echoed): \(row.why): left out; \(ContradictedSource.advice)"
            context.logger.warning("\(note)")
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
