import EmoCore
import EmoPipeline
@testable import EmoStages
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("split: speaker-independent folds")
struct SplitStageTests {
    static func planner(_ params: String) throws -> FoldPlanner {
        let pipeline = try PipelineDefinition.parse(yaml: "stages:\n  split:\n    params: \(params)\n", origin: "p.yaml")
        let resolved = try ParameterResolver.resolve(SplitParameters.self, stage: "split", layers: [
            .init(origin: .pipeline(path: "p.yaml"), values: pipeline.stages[0].params)])
        return FoldPlanner(try #require(resolved.value as? SplitParameters))
    }

    @Test func everyFoldHoldsOutWholeActorsAndTheyPartitionTheActors() throws {
        let actors = Array(1...16)
        let folds = try Self.planner("{folds: 4, test_fold: all, val_count: 2}").plan(actors: actors)
        #expect(folds.count == 4)
        for fold in folds {
            #expect(fold.test.count == 4)
            #expect(fold.validation.count == 2)
            #expect(Set(fold.test + fold.validation + fold.train) == Set(actors))
            #expect(Set(fold.test).isDisjoint(with: fold.train) && Set(fold.validation).isDisjoint(with: fold.train))
            #expect(Set(fold.test).isDisjoint(with: fold.validation))
            // Contiguous blocks of RAVDESS actors alternate men (odd) and women (even).
            #expect(fold.test.filter { $0 % 2 == 1 }.count == 2)
        }
        #expect(Set(folds.flatMap(\.test)) == Set(actors), "every actor is tested exactly once")
        #expect(folds.flatMap(\.test).count == 16)
    }

    @Test func aFoldValidatingOnFewerActorsThanAskedIsNamed() throws {
        // 4 actors in 3 blocks ([1], [2], [3, 4]): folds 0 and 2 can borrow only one validation actor.
        let planner = try Self.planner("{folds: 3, test_fold: all, val_count: 2}")
        let folds = try planner.plan(actors: [1, 2, 3, 4])
        #expect(folds.map(\.validation) == [[2], [3, 4], [1]])
        let warnings = planner.shortValidation(folds, chosen: false)
        #expect(warnings.count == 2)
        #expect(warnings.first?.contains("fold 0: validates on 1 actor(s) (02), not split.val_count = 2 (the default)") == true, "\(warnings)")
        // Written in the manifest, the same value is its choice (cv4.yaml writes val_count: 2), not the default.
        #expect(planner.shortValidation(folds, chosen: true).first?.contains("not split.val_count = 2: the next block") == true)
        // A val_count the manifest chose is not called the default.
        let chosen = try Self.planner("{folds: 3, test_fold: all, val_count: 3}")
        let chosenNotes = chosen.shortValidation(try chosen.plan(actors: [1, 2, 3, 4]))
        #expect(chosenNotes.count == 3 && chosenNotes.allSatisfy { $0.contains("not split.val_count = 3:") }, "\(chosenNotes)")
        #expect(try planner.shortValidation(Self.planner("{folds: 4, test_fold: all, val_count: 2}").plan(actors: Array(1...16))).isEmpty)
    }

    @Test func oneFoldIsChosenByIndex() throws {
        let folds = try Self.planner("{folds: 4, test_fold: 2, val_count: 2}").plan(actors: Array(1...16))
        #expect(folds.map(\.index) == [2])
        #expect(folds[0].test == [9, 10, 11, 12])
        #expect(folds[0].validation == [13, 14])
    }

    @Test func listedActorsAreHeldOutAndAbsentOnesStopWithAClearMessage() throws {
        let planner = try Self.planner("{folds: 4, test_fold: 0, val_count: 2, test_actors: [17, 18], val_actors: [15]}")
        let fold = try planner.plan(actors: Array(1...24)).first!
        #expect(fold.test == [17, 18] && fold.validation == [15])
        #expect(fold.train.count == 21)
        do {
            _ = try planner.plan(actors: Array(1...16))
            Issue.record("absent actors were accepted")
        } catch let error as PipelineError {
            #expect(error.description.contains("17, 18"))
            #expect(error.description.contains("does not have"))
            #expect(error.description.contains("split.test_actors holds out actors 17, 18"),
                    "named by the key that holds them (15 is there): \(error)")
        }
        let both = try Self.planner("{test_actors: [17], val_actors: [18]}")
        #expect(throws: PipelineError.missingData("split: split.test_actors and split.val_actors hold out actors 17, 18, which the data "
                                                  + "root does not have (it has 01, 02, 03); all 24 RAVDESS actors are in Zenodo record 1188976")) {
            try both.plan(actors: [1, 2, 3])
        }
        // Only the keys given are named: validation actors not named are not blamed.
        let testOnly = try Self.planner("{test_actors: [17, 18]}")
        #expect(throws: PipelineError.missingData("split: split.test_actors holds out actors 17, 18, which the data root does not have "
                                                  + "(it has 01, 02, 03); all 24 RAVDESS actors are in Zenodo record 1188976")) {
            try testOnly.plan(actors: [1, 2, 3])
        }
        // With their origins known (a run), the message names where the values came from: once when both share it.
        var placed = both
        placed.origins = ["test_actors": .manifest(path: "m.yaml"), "val_actors": .manifest(path: "m.yaml")]
        #expect(throws: PipelineError.missingData("split: split.test_actors and split.val_actors (from m.yaml) hold out actors 17, 18, which the "
                                                  + "data root does not have (it has 01, 02, 03); all 24 RAVDESS actors are in Zenodo record 1188976")) {
            try placed.plan(actors: [1, 2, 3])
        }
        placed.origins["val_actors"] = .commandLine
        #expect(throws: PipelineError.missingData("split: split.test_actors (from m.yaml) and split.val_actors (from --set) hold out actors 17, 18, "
                                                  + "which the data root does not have (it has 01, 02, 03); all 24 RAVDESS actors are in Zenodo record 1188976")) {
            try placed.plan(actors: [1, 2, 3])
        }
    }

    /// An actor whose files are all song (include_song false) is on disk: the message says what left its clips out.
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func aHeldOutActorWhoseClipsAreAllLeftOutIsNotCalledAbsent() throws {
        let data = try TestSupport.synthesizedSpeech([("03-02-01-01-01-01-01.wav", 1), ("03-02-02-01-01-01-01.wav", 1),
                                                      ("03-01-01-01-01-01-02.wav", 1), ("03-01-02-01-01-01-03.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("split-song-only") + "/work"
        let run = try TestSupport.run(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "split",
            "--set", "split.test_actors=[1]", "--set", "split.val_actors=[2]",
        ])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("split.test_actors (from --set) holds out actor 01, whose recorded files hold no clip the split takes (only song while include_song is false")
                && !run.stderr.contains("does not have"), "\(run.stderr)")
        // Folds over too few actors: the song-only actor is named as not counting, and why.
        let folds = try TestSupport.run(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "split",
            "--set", "split.folds=3",
        ])
        #expect(folds.status == 1 && folds.stderr.contains("split: 3 folds need at least 3 actors (`--set split.folds=2 --set split.val_count=0 --set "
                                                           + "train.selection=last` splits them); the data has 2 (02, 03); actor 01 recorded only "
                                                           + "clips the split does not take (only song while include_song is false"), "\(folds.stderr)")
        // Status says why once: the failed attempt's reason, not that and the same reason foretold again.
        let status = try TestSupport.run(TestSupport.emopipe, ["status", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data,
                                                               "--workdir", workdir, "--set", "split.folds=3"])
        let splitLine = status.stdout.split(separator: "\n").first { $0.hasPrefix("split") } ?? ""
        #expect(splitLine.contains("failed") && splitLine.components(separatedBy: "3 folds need at least 3 actors").count == 2, "\(status.stdout)")
    }

    /// The summary says what of the recorded clips the split did not take, and why (a song archive unzipped
    /// beside the speech is read but is no part of the clips).
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func theSummaryCountsTheClipsLeftOutByWhatLeftThemOut() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-02-01-01-01-01-01.wav", 1),
                                                      ("03-01-02-01-01-01-02.wav", 1), ("03-01-03-01-01-01-03.wav", 1),
                                                      ("03-01-03-01-01-01-04.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("split-left-out") + "/work"
        let run = try TestSupport.run(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "split",
            "--set", "split.test_actors=[1]", "--set", "split.val_actors=[2]", "--set", "split.actors=[1,2,3]",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("3 clips of 3 actors (0 audio+video, 3 audio only, 0 video only), 1 fold(s); "
                                    + "left out: 1 clip(s) of actors outside split.actors, 1 song clip(s) (include_song is false)"), "\(run.stderr)")
    }

    /// A model whose every branch no actor has files for (faces only over speech recordings) is refused once ingest has
    /// read the data root, by the file names alone, before the feature stages: train refused it only after them. When only the
    /// training actors of this plan lack them, it is a warning (split plans over the clips it takes, which names alone
    /// do not tell). One video file of a training actor, or a branch the speech feeds, is enough to say nothing.
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func aModelNoTrainingActorHasFilesForIsForetold() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1), ("03-01-02-01-01-01-03.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("train-forecast") + "/work"
        func run(_ modalities: String, dryRun: Bool = true) throws -> TestSupport.ProcessResult {
            try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/default.yaml", "--data", data, "--workdir", workdir,
                                                      "--set", "split.test_actors=[1]", "--set", "split.val_actors=[2]",
                                                      "--set", "train.modalities=\(modalities)"] + (dryRun ? ["--dry-run"] : []))
        }
        let why = "train.modalities = [\"faces\"] (from --set): no training actor (03) has a file of video (a 01 or 02 mp4) under \(data), judged by the file names"
        let facesOnly = try run("[faces]")
        #expect(facesOnly.status == 1 && facesOnly.stderr.contains(why + ": refused before faces and split ran (train would refuse it only after)"),
                "\(facesOnly.stderr)")
        // The run itself refuses alike once ingest has recorded the files, computing no features, and records the refusal
        // as train's failed attempt.
        let refused = try run("[faces]", dryRun: false)
        #expect(refused.status == 1 && refused.stderr.contains(why + ": refused before faces") && !refused.stderr.contains("faces: running"),
                "\(refused.stderr)")
        #expect(try IngestFixture.sources(workdir: workdir).count == 3, "ingest recorded the files")
        let status = try TestSupport.run(TestSupport.emopipe, ["status", TestSupport.repositoryRoot + "/manifests/default.yaml", "--data", data,
                                                               "--workdir", workdir, "--set", "split.test_actors=[1]", "--set", "split.val_actors=[2]",
                                                               "--set", "train.modalities=[faces]"])
        let trainLine = status.stdout.split(separator: "\n").first { $0.hasPrefix("train") } ?? ""
        #expect(trainLine.contains("its last attempt with these parameters failed") && trainLine.components(separatedBy: "no training actor (03)").count == 2,
                "\(status.stdout)")
        let both = try run("[audio, faces]")
        #expect(both.status == 0 && !both.stderr.contains("no training actor"), "\(both.stderr)")
        // Names decide, nothing is opened: an empty file named as the test actor's audio-video clip is a video file to the
        // forecast. The training actor still has none, but a split over other clips could train on actor 01: a warning.
        try Data().write(to: URL(fileURLWithPath: data + "/Actor_01/01-01-01-01-01-01-01.mp4"))
        let testActorVideo = try run("[faces]")
        #expect(testActorVideo.status == 0 && testActorVideo.stderr.contains(why + ": train will refuse the run when its turn comes"),
                "\(testActorVideo.stderr)")
        try Data().write(to: URL(fileURLWithPath: data + "/Actor_03/01-01-02-01-01-01-03.mp4"))
        let withVideo = try run("[faces]")
        #expect(withVideo.status == 0 && !withVideo.stderr.contains("no training actor"), "\(withVideo.stderr)")
    }

    /// The holdout protocol on a root without its actors: a run (and its plan) says so before ingest, not only
    /// once split refuses it after the stages before it; so does a cross-validation with more folds than actors. Names alone decide: files, and Actor_XX folders (links too).
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func actorsTheDataRootHasNoFileOfAreForetold() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("split-forecast") + "/work"
        let plan = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/holdout-17-24.yaml",
                                                             "--data", data, "--workdir", workdir, "--dry-run"])
        let absent = "split.test_actors and split.val_actors (from \(TestSupport.repositoryRoot)/manifests/holdout-17-24.yaml) name actors 15, 16, 17, 18, "
            + "19, 20, 21, 22, 23, 24, of which the data root \(data) holds no RAVDESS file"
        #expect(plan.status == 1 && plan.stderr.contains(absent + " (all 24 RAVDESS actors are in Zenodo record 1188976): refused before "
                                                          + "audio ran (split would refuse it only after)"), "\(plan.stderr)")
        // The run refuses alike once ingest has recorded the files: no feature is computed for a split that cannot be made.
        let refused = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/holdout-17-24.yaml",
                                                                "--data", data, "--workdir", workdir])
        #expect(refused.status == 1 && refused.stderr.contains("ingest: running") && !refused.stderr.contains("audio: running"), "\(refused.stderr)")
        // Said first as ingest starts, as what will happen (not "when its turn comes"), then as the refusal.
        #expect(refused.stderr.contains("warning run: " + absent + ": the run stops once ingest has recorded the files, before the stages after it")
                && refused.stderr.contains("emopipe: " + absent + " (all 24 RAVDESS actors are in Zenodo record 1188976): refused before audio ran"),
                "\(refused.stderr)")
        #expect(try IngestFixture.sources(workdir: workdir).count == 2, "ingest recorded the files")
        // With the stages before split up to date, split is the first to run: the plan still says it (it said nothing).
        let upstream = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/default.yaml", "--data", data,
                                                                 "--workdir", workdir, "--until", "audio"])
        #expect(upstream.status == 0, "\(upstream.stderr)")
        let afterUpstream = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/holdout-17-24.yaml",
                                                                      "--data", data, "--workdir", workdir, "--dry-run"])
        #expect(afterUpstream.status == 1 && afterUpstream.stderr.contains(absent + " (all 24 RAVDESS actors are in Zenodo record 1188976)")
                && !afterUpstream.stderr.contains("refused before"), "\(afterUpstream.stdout)\(afterUpstream.stderr)")
        // Without ingest (`--only split`), split reads what ingest recorded, which the names now need not match: only a warning, and split judges.
        let withoutIngest = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/holdout-17-24.yaml",
                                                                      "--data", data, "--workdir", workdir, "--dry-run", "--only", "split"])
        #expect(withoutIngest.status == 0 && withoutIngest.stderr.contains(absent + ": split will refuse the run when its turn comes"),
                "\(withoutIngest.stderr)")
        // `status` says it in split's reason once: the refused run's reason, not that and the forecast again.
        let status = try TestSupport.run(TestSupport.emopipe, ["status", TestSupport.repositoryRoot + "/manifests/holdout-17-24.yaml",
                                                               "--data", data, "--workdir", workdir])
        let splitLine = status.stdout.split(separator: "\n").first { $0.hasPrefix("split ") }.map(String.init) ?? ""
        #expect(status.status == 0 && splitLine.contains("its last attempt with these parameters failed")
                && splitLine.components(separatedBy: absent).count == 2, "\(status.stdout)")
        // Before any run was refused, status says what a run would refuse (it said only "never-run").
        let fresh = try TestSupport.run(TestSupport.emopipe, ["status", TestSupport.repositoryRoot + "/manifests/holdout-17-24.yaml",
                                                              "--data", data, "--workdir", try TestSupport.temporaryFolder("split-forecast-status") + "/work"])
        let foretold = fresh.stdout.split(separator: "\n").first { $0.hasPrefix("split ") }.map(String.init) ?? ""
        #expect(fresh.status == 0 && foretold.contains(absent + ": the run stops once ingest has recorded the files, before the stages after it"),
                "\(fresh.stdout)")
        // Cross-validation with more folds than the root has actors is foretold too (it listed every stage to run,
        // and the run failed at split after ingest and the feature stages); with as many folds as actors, nothing is.
        for (folds, refused) in [(4, true), (2, false)] {
            let cut = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/default.yaml", "--data", data,
                                                                "--workdir", workdir, "--dry-run", "--set", "split.folds=\(folds)",
                                                                "--set", "split.val_count=0", "--set", "train.selection=last"])
            #expect(cut.status == (refused ? 1 : 0), "\(cut.stderr)")
            #expect(cut.stderr.contains("split: 4 folds need at least 4 actors (`--set split.folds=2` splits them); "
                                        + "the data has 2 (01, 02) (judged by the RAVDESS file names under \(data)): refused before faces ran") == refused,
                    "\(cut.stderr)")
        }
        // A folder whose name is not UTF-8 cannot be looked into by the names (ingest reads it): only a warning then.
        let unspelled = try TestSupport.shell("cd '\(data)' && mkdir \"$(printf 'RAVDESS\\377')\" && ls | wc -l")
        #expect(Int(unspelled.trimmingCharacters(in: .whitespacesAndNewlines)) == 3 && SplitStage.actorsNamed(under: data)?.seenWhole == false)
        let unsure = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/default.yaml", "--data", data,
                                                               "--workdir", workdir, "--dry-run", "--set", "split.folds=4",
                                                               "--set", "split.val_count=0", "--set", "train.selection=last"])
        #expect(unsure.status == 0 && unsure.stderr.contains("split: 4 folds need at least 4 actors") && unsure.stderr.contains("split will refuse the run"),
                "\(unsure.stderr)")
        _ = try TestSupport.shell("cd '\(data)' && rmdir \"$(printf 'RAVDESS\\377')\"")
        #expect(SplitStage.actorsNamed(under: data)?.seenWhole == true)
        // Files reached through a linked folder count, as ingest reads them (and the root may be a link); an
        // empty Actor_XX folder does not, nor a loop of links more than once.
        let elsewhere = try TestSupport.temporaryFolder("actor-elsewhere")
        try FileManager.default.copyItem(atPath: data + "/Actor_01/03-01-01-01-01-01-01.wav", toPath: elsewhere + "/03-01-01-01-01-01-15.wav")
        try FileManager.default.createSymbolicLink(atPath: data + "/Actor_15", withDestinationPath: elsewhere)
        try FileManager.default.createDirectory(atPath: data + "/Actor_17", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: elsewhere + "/up", withDestinationPath: data)
        // Nor does a recording beside the root, reached by a link up to a folder that holds the root (ingest does not follow it).
        let beside = PathText.folder(of: data) + "/beside-\(UUID().uuidString)/Actor_20"
        try FileManager.default.createDirectory(atPath: beside, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data + "/Actor_01/03-01-01-01-01-01-01.wav", toPath: beside + "/03-01-01-01-01-01-20.wav")
        try FileManager.default.createSymbolicLink(atPath: data + "/parent", withDestinationPath: "..")
        #expect(SplitStage.actorsNamed(under: data)?.actors == [1, 2, 15] && SplitStage.actorsNamed(under: data)?.unlisted == [])
        let linkedRoot = try TestSupport.temporaryFolder("linked-root") + "/root"
        try FileManager.default.createSymbolicLink(atPath: linkedRoot, withDestinationPath: data)
        #expect(SplitStage.actorsNamed(under: linkedRoot)?.actors == [1, 2, 15])
        #expect(SplitStage.actorsNamed(under: data, limit: 1) == nil, "a walk longer than the limit foretells nothing")
        let covered = try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data,
                                                                "--workdir", workdir, "--dry-run", "--set", "split.test_actors=[1]", "--set", "split.val_actors=[2]"])
        #expect(covered.status == 0 && !covered.stderr.contains("holds no RAVDESS file"), "\(covered.stderr)")
    }

    /// What the names say the split takes: a clip's wav and mp4 count once, song only with include_song, and an actor
    /// with no clip taken is not among the actors the forecasts plan folds over (it had been, with its song clips counted).
    @Test func theNamesCountTheClipsTheSplitTakesPerActor() throws {
        let root = try TestSupport.temporaryFolder("names-taken")
        for name in ["Actor_01/03-02-01-01-01-01-01.wav", "Actor_01/01-02-01-01-01-01-01.mp4",
                     "Actor_02/03-01-03-01-01-01-02.wav", "Actor_02/01-01-03-01-01-01-02.mp4", "Actor_02/02-01-03-01-01-01-02.mp4",
                     "Actor_03/03-01-04-01-01-01-03.wav", "Actor_03/03-02-04-01-01-01-03.wav"] {
            try FileManager.default.createDirectory(atPath: root + "/" + (name as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: root + "/" + name, contents: Data()))
        }
        // A folder named as a recording is, or a link so named to a folder, is walked as ingest walks it: its files
        // count, its name does not (a forecast had counted actor 04 for it and not looked in, and refused a run split took).
        let misnamed = root + "/Actor_04/03-01-05-01-01-01-04.wav"
        try FileManager.default.createDirectory(atPath: misnamed, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: misnamed + "/03-01-05-01-01-01-05.wav", contents: Data()))
        let elsewhere = try TestSupport.temporaryFolder("names-taken-elsewhere")
        #expect(FileManager.default.createFile(atPath: elsewhere + "/03-01-06-01-01-01-06.wav", contents: Data()))
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_04/03-01-06-01-01-01-07.wav", withDestinationPath: elsewhere)
        // Hidden names are skipped, files and folders, as ingest skips them (a hidden folder's actor had been counted).
        try FileManager.default.createDirectory(atPath: root + "/.Actor_08", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: root + "/.Actor_08/03-01-05-01-01-01-08.wav", contents: Data()))
        let names = try #require(SplitStage.actorsNamed(under: root))
        #expect(names.actors == [1, 2, 3, 5, 6] && names.seenWhole, "\(names.actors.sorted())")
        try FileManager.default.removeItem(atPath: root + "/Actor_04")
        let named = try #require(SplitStage.actorsNamed(under: root))
        #expect(named.actors == [1, 2, 3] && named.seenWhole)
        #expect(named.clipsTaken(includeSong: false, labels: .ravdess8) == [2: 1, 3: 1])
        #expect(named.clipsTaken(includeSong: true, labels: .ravdess8) == [1: 1, 2: 1, 3: 2])
    }

    /// A run refused by a foretold split is recorded with split's failed attempt, which has no stage fingerprint: `diff`
    /// shows it as none ("—"), not as an empty fingerprint that differs.
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func aForetoldRefusalHasNoStageFingerprintInADiff() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1), ("03-01-03-01-01-01-03.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("foretold-diff") + "/work"
        // Up to train: audio runs after ingest, so split's refusal is foretold (`--until split` runs split right after ingest).
        func run(_ until: String, _ sets: [String]) throws -> TestSupport.ProcessResult {
            try TestSupport.run(TestSupport.emopipe, ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
                                                      "--until", until] + sets.flatMap { ["--set", $0] })
        }
        let refused = try run("train", [])
        #expect(refused.status == 1 && refused.stderr.contains("split: 4 folds need at least 4 actors") && refused.stderr.contains("refused before audio"),
                "\(refused.stderr)")
        #expect(try run("split", ["split.folds=3", "split.val_count=1"]).status == 0)
        let listed = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", workdir, "--json"])
        let runs = (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
        func run(status: String) -> String? { runs.first { $0["status"] as? String == status }?["id"] as? String }
        let (done, failed) = (try #require(run(status: "done"), "\(listed.stdout)"), try #require(run(status: "failed"), "\(listed.stdout)"))
        // `runs --json` gives it as null, as it gives any value not known (it gave "").
        let refusedSplit = ((runs.first { $0["id"] as? String == failed }?["stages"] as? [[String: Any]]) ?? []).first { $0["stage"] as? String == "split" }
        #expect(refusedSplit?["state"] as? String == "failed" && refusedSplit?["stage_fingerprint"] is NSNull, "\(listed.stdout)")
        let diff = try TestSupport.run(TestSupport.emopipe, ["diff", done, failed, "--workdir", workdir])
        let line = diff.stdout.split(separator: "\n").first { $0.contains("split stage fingerprint") }.map(String.init) ?? ""
        #expect(line.range(of: #"^  split stage fingerprint: a [0-9a-f]{64} \| b —$"#, options: .regularExpression) != nil, "\(diff.stdout)")
    }

    /// Song alone while include_song is false: the refusal says the recorded clips were left out and why,
    /// not that the data has no actor.
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func songOnlyDataIsRefusedSayingWhatLeftItOut() throws {
        let data = try TestSupport.synthesizedSpeech([("03-02-01-01-01-01-01.wav", 1), ("03-02-02-01-01-01-02.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("split-song-only-data") + "/work"
        let run = try TestSupport.run(TestSupport.emopipe, [
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "split",
        ])
        #expect(run.status == 1 && run.stderr.contains("split: none of the 2 recorded clips is taken: 2 song clip(s) (include_song is false) "
                                                       + "(include_song: true in the manifest takes song)"), "\(run.stderr)")
    }

    /// An actor with far fewer clips than the others, or a gap in the actors' numbers, is warned of: most
    /// often a download that stopped partway. Equal counts, or fewer than three actors, say nothing.
    @Test func anActorWithFewClipsOrAGapInTheActorsIsWarnedOf() throws {
        func clips(_ counts: [Int: Int]) -> [SplitPlan.Clip] {
            counts.flatMap { actor, count in
                (0..<count).map { SplitPlan.Clip(clip: "\(actor)-\($0)", actor: actor, emotion: 1, label: 0, speech: nil, video: nil) }
            }
        }
        #expect(SplitStage.incompleteActors(clips([1: 60, 2: 60, 3: 60, 4: 60])).isEmpty)
        #expect(SplitStage.incompleteActors(clips([1: 60, 2: 4])).isEmpty, "two actors have no median to speak of")
        let short = SplitStage.incompleteActors(clips([1: 60, 2: 60, 3: 60, 4: 29]))
        #expect(short == ["actor 04 has 29 clip(s) where the median actor has 60: an incomplete download or copy? Its clips are used as they are"],
                "\(short)")
        #expect(SplitStage.incompleteActors(clips([1: 60, 2: 60, 3: 60, 4: 30])).isEmpty, "half the median is not under it")
        let gap = SplitStage.incompleteActors(clips([1: 60, 2: 60, 4: 60, 6: 60]))
        #expect(gap == ["actors 03, 05 between 01 and 06 have no clip the split takes: an incomplete download or copy?"], "\(gap)")
        // Actors split.actors chose (the men, say) are no gap; nor is actor 18 among song clips (RAVDESS has none of it).
        #expect(SplitStage.incompleteActors(clips([1: 60, 3: 60, 5: 60]), actorsNamed: true).isEmpty)
        let song = [17, 19, 20].flatMap { actor in
            (0..<44).map { SplitPlan.Clip(clip: "02-01-01-01-01-\($0)-\(actor)", actor: actor, emotion: 1, label: 0, speech: nil, video: nil) }
        }
        #expect(SplitStage.incompleteActors(song).isEmpty)
        let speech = song.map { var clip = $0; clip.clip = "01" + clip.clip.dropFirst(2); return clip }
        #expect(SplitStage.incompleteActors(speech) == ["actor 18 between 17 and 20 has no clip the split takes: an incomplete download or copy?"])
    }

    /// An actor whose every file failed ingest is on disk too: the message names the failure, not absence.
    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
    func aHeldOutActorWhoseFilesAllFailedIngestIsNotCalledAbsent() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1),
                                                      ("03-01-03-01-01-01-03.wav", 1), ("03-01-04-01-01-01-03.wav", 1)])
        for name in ["03-01-03-01-01-01-03.wav", "03-01-04-01-01-01-03.wav"] {
            try Data("not a wav".utf8).write(to: URL(fileURLWithPath: data + "/Actor_03/" + name))
        }
        let workdir = try TestSupport.temporaryFolder("split-failed-only") + "/work"
        for (sets, role) in [(["split.test_actors=[3]"], "split.test_actors (from --set) names"),
                             (["split.actors=[1,2,3]", "split.test_actors=[1]"], "split.actors (from --set) names")] {
            let run = try TestSupport.run(TestSupport.emopipe, [
                "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "split",
                "--set", "split.val_actors=[2]",
            ] + sets.flatMap { ["--set", $0] })
            #expect(run.status == 1, "\(run.stderr)")
            #expect(run.stderr.contains("\(role) actor 03, but every file of that actor failed ingest (2 files; first: \(data)/Actor_03/03-01-03-01-01-01-03.wav: ")
                    && run.stderr.contains("`emopipe sources --failed` lists them") && !run.stderr.contains("does not have"), "\(run.stderr)")
            // The summary says what finished before the stage that failed, and what the run cost.
            #expect(run.stderr.range(of: #"run [0-9a-f-]+ \(failed\):\n  ingest: (ran|up to date) .*\n(.*\n)*  split: failed after [0-9.hms]+\n  in all: cpu"#,
                                     options: .regularExpression) != nil && !run.stderr.contains("resumes from here"), "\(run.stderr)")
            // `runs` names the stage once, then its reason.
            let runs = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", workdir, "--limit", "1"])
            #expect(runs.stdout.contains("    split failed: \(role) actor 03") && !runs.stdout.contains("split: split"), "\(runs.stdout)")
        }
    }

    @Test func actorsLeftOutOfTheSplitAreNeverTrainedValidatedOrTested() throws {
        let folds = try Self.planner("{folds: 3, test_fold: all, val_count: 2, actors: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}")
            .plan(actors: Array(1...16))
        #expect(folds.count == 3)
        #expect(folds.map(\.test) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
        for fold in folds {
            #expect(Set(fold.test + fold.validation + fold.train) == Set(1...12), "13-16 stay untouched")
        }
        let final = try Self.planner("{actors: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], test_actors: [13, 14, 15, 16], val_actors: [11, 12]}")
            .plan(actors: Array(1...24))
        #expect(final.count == 1 && final[0].train == Array(1...10), "17-24 take no part when present")
    }

    @Test func foldsWithoutValidationActorsTrainOnEveryActorNotTested() throws {
        let folds = try Self.planner("{folds: 3, test_fold: all, val_count: 0, actors: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}")
            .plan(actors: Array(1...16))
        for fold in folds {
            #expect(fold.validation.isEmpty && fold.train == Array(1...12).filter { !fold.test.contains($0) })
        }
        let named = try Self.planner("{test_actors: [13, 14, 15, 16]}").plan(actors: Array(1...16))
        #expect(named.count == 1 && named[0].validation.isEmpty && named[0].train == Array(1...12))
        #expect(throws: PipelineError.self) { try Self.planner("{val_count: -1}") }
        #expect(throws: PipelineError.self) { try Self.planner("{val_actors: [3]}") }
    }

    @Test func actorsTheDataDoesNotHaveAreNamed() throws {
        #expect(throws: Never.self) { try SplitStage.checkPresent([1, 2], among: [1, 2, 3]) }
        do {
            try SplitStage.checkPresent([2, 4, 5], among: [1, 2, 3])
            Issue.record("absent actors were accepted")
        } catch let error as PipelineError {
            #expect(error.description.contains("split: split.actors names actors 04, 05") && error.description.contains("it has 01, 02, 03"))
        }
        let named = try #require(throws: PipelineError.self) { try SplitStage.checkPresent([4], among: [1, 2, 3], origins: ["actors": .commandLine]) }
        #expect(named.description.hasPrefix("split: split.actors (from --set) names actor 04"), "\(named)")
    }

    /// Fold settings beside named test actors would be ignored (`test_fold: all` would not cross-validate):
    /// refused, naming the key and where the test actors came from; their defaults, repeated, are fine.
    @Test func foldSettingsBesideNamedTestActorsAreRefused() throws {
        for (setting, key) in [("folds: 3", "split.folds = 3"), ("test_fold: all", "split.test_fold = all"), ("val_count: 1", "split.val_count = 1")] {
            let error = try #require(throws: PipelineError.self) { try Self.planner("{test_actors: [1, 2], \(setting)}") }
            #expect(error.description.contains("p.yaml: \(key): has no effect: split.test_actors [1, 2] names the one fold"), "\(error)")
        }
        if TestSupport.hasEmopipe {
            let manifest = try TestSupport.writeManifest(at: try TestSupport.temporaryFolder("split-folds") + "/m.yaml", data: "/nowhere",
                                                         "params: {split: {test_actors: [1]}}")
            let refused = try TestSupport.run(TestSupport.emopipe, ["params", manifest, "--set", "split.test_fold=all"])
            #expect(refused.status == 64 && refused.stderr.contains("--set: split.test_fold = all: has no effect")
                    && refused.stderr.contains("split.test_actors is from \(manifest)"), "\(refused.stderr)")
        }
        #expect(try Self.planner("{folds: 4, test_fold: 0, val_count: 2, test_actors: [3], val_actors: [1]}").plan(actors: [1, 2, 3]).count == 1)
    }

    @Test func tooFewActorsForTheFoldsIsAnError() throws {
        #expect(throws: PipelineError.self) { try Self.planner("{folds: 4, test_fold: 0, val_count: 2}").plan(actors: [1, 2]) }
    }

    /// A fold that holds out every actor is refused by the split, naming the fold and what to change,
    /// rather than recorded and left for training to fail on.
    @Test func aFoldWithNoActorToTrainOnIsAnError() throws {
        let cases: [(params: String, actors: [Int], fold: String)] = [
            ("{folds: 2, test_fold: all, val_count: 2}", [1, 2, 3], "fold 0 tests actor 01 and validates on 02, 03"),
            ("{test_actors: [1, 2], val_actors: [3]}", [1, 2, 3], "fold 0 tests actors 01, 02 and validates on 03"),
            ("{test_actors: [1, 2, 3]}", [1, 2, 3], "fold 0 tests actors 01, 02, 03 and validates on none"),
        ]
        for c in cases {
            let error = try #require(throws: PipelineError.self) { try Self.planner(c.params).plan(actors: c.actors) }
            #expect(error.description.contains(c.fold) && error.description.contains("no actor to train on"), "\(error)")
            // The advice names the keys that decide this split: folds and val_count, or the actor lists given.
            let listed = c.params.contains("test_actors"), bothListed = c.params.contains("val_actors")
            #expect(error.description.contains("split.val_count") != listed, "\(error)")
            #expect(error.description.contains("test_actors/val_actors") == bothListed, "\(error)")
            #expect(error.description.contains("a shorter split.test_actors list") == (listed && !bothListed), "\(error)")
        }
        #expect(try Self.planner("{folds: 2, test_fold: all, val_count: 1}").plan(actors: [1, 2, 3, 4]).allSatisfy { !$0.train.isEmpty })
        // No validation actors: every actor not tested trains (train.selection must then be last).
        #expect(try Self.planner("{folds: 2, test_fold: all, val_count: 0}").plan(actors: [1, 2]).map(\.train) == [[2], [1]])
    }

    /// Too few actors for the folds: the refusal names settings that do split them, and they do (the advice had been
    /// "give at most 2 folds", which with val_count 2 left no actor to train on, a second refusal).
    @Test func tooFewActorsForTheFoldsNamesSettingsThatSplitThem() throws {
        for (params, actors, advice) in [("{folds: 4}", [1, 2, 3], "--set split.folds=3"),
                                         ("{folds: 4}", [1, 2], "--set split.folds=2 --set split.val_count=0 --set train.selection=last"),
                                         ("{folds: 4, val_count: 0, test_fold: 3}", [1, 2, 3], "--set split.folds=3 --set split.test_fold=2")] {
            let error = try #require(throws: PipelineError.self) { try Self.planner(params).plan(actors: actors) }
            #expect(error.description.contains("(`\(advice)` splits them)"), "\(error)")
            let followed = params.replacingOccurrences(of: "folds: 4", with: "folds: \(advice.contains("folds=3") ? 3 : 2)")
                .replacingOccurrences(of: "test_fold: 3", with: "test_fold: 2")
                .replacingOccurrences(of: "}", with: advice.contains("val_count=0") ? ", val_count: 0}" : "}")
            #expect(try Self.planner(followed).plan(actors: actors).allSatisfy { !$0.train.isEmpty }, "\(followed)")
        }
        let alone = try #require(throws: PipelineError.self) { try Self.planner("{folds: 2}").plan(actors: [5]) }
        #expect(alone.description.contains("(RAVDESS has 24 actors: Zenodo record 1188976)"), "\(alone)")
    }

    static func source(_ name: String, sha: String, folder: String = "/d/") -> SourceRecord {
        var s = SourceRecord(path: folder + name, sha256: sha, size: 1, mtimeNanos: 1, status: .ok, reason: nil, runId: "r")
        if case .source(let c) = RavdessName.parse(fileName: name) {
            s.modality = c.modality; s.channel = c.channel; s.emotion = c.emotion; s.intensity = c.intensity
            s.statement = c.statement; s.repetition = c.repetition; s.actor = c.actor; s.clip = c.clipID
            s.kind = c.sourceKind.rawValue
        }
        return s
    }

    /// Two files of different content for one clip (a stray copy at the root, `.WAV` beside `.wav`,
    /// `Actor_2/` beside `Actor_02/`): the one in its own actor folder, named in lowercase, is used
    /// whatever the paths' order, and the others are named as left out. Same bytes are no conflict.
    @Test func aClipWithTwoDifferentFilesUsesTheOneInItsActorFolderAndNamesTheOther() throws {
        let name = "03-01-05-01-02-01-02.wav"
        let catalog = ClipCatalog(sources: [
            Self.source(name, sha: "stray", folder: "/d/"),
            Self.source(name, sha: "real", folder: "/d/Actor_02/"),
            Self.source(name.replacingOccurrences(of: ".wav", with: ".WAV"), sha: "upper", folder: "/d/Actor_02/"),
            Self.source(name, sha: "short-folder", folder: "/d/Actor_2/"),
            Self.source("03-01-06-01-02-01-02.wav", sha: "same", folder: "/d/Actor_02/"),
            Self.source("03-01-06-01-02-01-02.wav", sha: "same", folder: "/d/Actor_02/copy/"),
        ])
        let clip = try #require(catalog.clips.first { $0.id == "01-05-01-02-01-02" })
        #expect(clip.speech?.sha256 == "real")
        #expect(catalog.conflicts == [ClipCatalog.Conflict(clip: "01-05-01-02-01-02", modality: "speech", used: "/d/Actor_02/" + name,
                                                           reason: "in its own Actor_XX folder, named in lowercase",
                                                           leftOut: ["/d/" + name, "/d/Actor_02/03-01-05-01-02-01-02.WAV", "/d/Actor_2/" + name],
                                                           contents: 4)])
        // An mp4-only clip's file serves speech and video: one conflict, said once; two stray copies of one
        // content count as one; with no file in its folder, the first path wins and says so.
        let video = "01-01-03-01-01-01-04.mp4"
        let avOnly = ClipCatalog(sources: [Self.source(video, sha: "x", folder: "/d/b/"), Self.source(video, sha: "y", folder: "/d/a/"),
                                           Self.source(video, sha: "x", folder: "/d/c/")])
        #expect(avOnly.conflicts == [ClipCatalog.Conflict(clip: "01-03-01-01-01-04", modality: "speech and video", used: "/d/a/" + video,
                                                          reason: "the first by path", leftOut: ["/d/b/" + video, "/d/c/" + video], contents: 2)])
        // A folder naming the actor in another spelling, as ingest reads it (`ACTOR_04`, `actor_4`), is its own before any other.
        let otherSpelling = ClipCatalog(sources: [Self.source(video, sha: "stray", folder: "/d/"), Self.source(video, sha: "upper", folder: "/d/ACTOR_04/"),
                                                  Self.source(video.replacingOccurrences(of: ".mp4", with: ".MP4"), sha: "own", folder: "/d/ACTOR_04/")])
        #expect(otherSpelling.conflicts == [ClipCatalog.Conflict(clip: "01-03-01-01-01-04", modality: "speech and video", used: "/d/ACTOR_04/" + video,
                                                                 reason: "in its own actor's folder (spelt otherwise than Actor_XX), named in lowercase",
                                                                 leftOut: ["/d/" + video, "/d/ACTOR_04/01-01-03-01-01-01-04.MP4"], contents: 3)])
    }

    /// The labels are the file name's: a database row edited to another emotion trained a neutral clip as angry, and
    /// one edited out of range was left out as an emotion the label map drops. Such rows are left out and named.
    @Test func aRowWhoseCodesAreNotItsNamesIsLeftOutAndNamed() throws {
        let neutral = "03-01-01-01-01-01-01.wav"
        var angry = Self.source(neutral, sha: "a", folder: "/d/Actor_01/")
        angry.emotion = 5
        var nowhere = Self.source("03-01-02-01-01-01-01.wav", sha: "b", folder: "/d/Actor_01/")
        (nowhere.emotion, nowhere.actor) = (99, -1)
        var moved = Self.source("03-01-03-01-01-01-01.wav", sha: "c", folder: "/d/Actor_01/")
        moved.clip = "01-03-01-01-01-02"
        var emptied = Self.source("03-01-05-02-01-01-01.wav", sha: "h", folder: "/d/Actor_01/")
        emptied.emotion = nil   // a code emptied: left out silently before
        var renamed = Self.source("03-01-06-01-01-01-01.wav", sha: "e", folder: "/d/Actor_01/")
        renamed.path = "/d/Actor_01/take.wav"
        // Sound rows are kept, an upper-case extension and a file outside its actor's folder too.
        let sound = [Self.source("03-01-04-01-01-01-01.wav", sha: "d", folder: "/d/Actor_01/"),
                     Self.source("03-01-07-01-01-01-01.WAV", sha: "f", folder: "/d/Actor_01/"),
                     Self.source("03-01-08-01-01-01-01.wav", sha: "g", folder: "/elsewhere/")]
        let catalog = ClipCatalog(sources: [angry, nowhere, moved, renamed, emptied] + sound)
        #expect(catalog.clips.map(\.id) == ["01-04-01-01-01-01", "01-07-01-01-01-01", "01-08-01-01-01-01"])
        #expect(catalog.contradicted.map(\.path) == ["/d/Actor_01/" + neutral, "/d/Actor_01/03-01-02-01-01-01-01.wav",
                                                      "/d/Actor_01/03-01-03-01-01-01-01.wav", "/d/Actor_01/03-01-05-02-01-01-01.wav",
                                                      "/d/Actor_01/take.wav"])
        #expect(catalog.contradicted[3].recorded == "none, clip 01-05-02-01-01-01" && catalog.contradicted[3].named == "03-01-05-02-01-01-01")
        #expect(catalog.contradicted.last?.named == "none")
        #expect(catalog.contradicted.first.map { ($0.recorded, $0.named) } ?? ("", "") == ("03-01-05-01-01-01-01, clip 01-01-01-01-01-01", "03-01-01-01-01-01-01"))
        #expect(catalog.contradicted[1].recorded == "03-01-99-01-01-01--1, clip 01-02-01-01-01-01")
    }

    @Test func clipsCarryLabelsAndSourcesPerModality() throws {
        func source(_ name: String, sha: String) -> SourceRecord {
            var s = SourceRecord(path: "/d/" + name, sha256: sha, size: 1, mtimeNanos: 1, status: .ok, reason: nil, runId: "r")
            if case .source(let c) = RavdessName.parse(fileName: name) {
                s.modality = c.modality; s.channel = c.channel; s.emotion = c.emotion; s.intensity = c.intensity
                s.statement = c.statement; s.repetition = c.repetition; s.actor = c.actor; s.clip = c.clipID
                s.kind = c.sourceKind.rawValue
            }
            return s
        }
        let catalog = ClipCatalog(sources: [
            source("03-01-02-01-01-01-01.wav", sha: "a"), source("01-01-02-01-01-01-01.mp4", sha: "b"),
            source("01-01-03-01-01-01-01.mp4", sha: "c"),            // AV only: speech from the mp4
            source("02-01-04-01-01-01-01.mp4", sha: "d"),            // video only: no speech
            source("03-02-05-01-01-01-01.wav", sha: "e"),            // song
        ])
        let byID = Dictionary(uniqueKeysWithValues: catalog.clips.map { ($0.id, $0) })
        #expect(byID["01-02-01-01-01-01"]?.speech?.sha256 == "a" && byID["01-02-01-01-01-01"]?.video?.sha256 == "b")
        #expect(byID["01-03-01-01-01-01"]?.speech?.sha256 == "c" && byID["01-03-01-01-01-01"]?.video?.sha256 == "c")
        #expect(byID["01-04-01-01-01-01"]?.speech == nil && byID["01-04-01-01-01-01"]?.video?.sha256 == "d")
        #expect(byID["02-05-01-01-01-01"]?.codes.isSong == true)
    }
}
