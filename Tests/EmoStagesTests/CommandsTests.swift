import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// Commands that do what they say (issue #11), end to end through the command line on
/// `FaultFixture`'s data: `--force train` retrains from epoch 1, Ctrl-C in training stops within a
/// batch and resumes to an uninterrupted run's weights, and `cache gc` keeps what recorded runs used
/// and lists exactly what it removes.
@Suite("commands: --force, Ctrl-C, cache gc", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct CommandsTests {
    /// A copy of the fixture's finished reference work directory.
    static func copyOfReference(_ fixture: FaultFixture, _ label: String) throws -> String {
        let workdir = try TestSupport.temporaryFolder("work") + "/" + label
        try TestSupport.shell("cp -a '\(fixture.reference)' '\(workdir)'")
        // Model rows name their weights by absolute path: point them into the copy, as a run there would.
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        try store.write { db in
            try db.execute(sql: "UPDATE artifact SET path = ? || substr(path, ?) WHERE path LIKE ? || '/%'",
                           arguments: [workdir, fixture.reference.count + 1, fixture.reference])
        }
        return workdir
    }

    /// The fixture's manifest with `replacing` swapped for `with` (a parameter changed).
    static func variant(_ fixture: FaultFixture, replacing: String, with: String) throws -> String {
        let text = try String(contentsOfFile: fixture.manifest, encoding: .utf8)
        #expect(text.contains(replacing), "the fixture's manifest has \(replacing)")
        let path = try TestSupport.temporaryFolder("manifest") + "/variant.yaml"
        try text.replacingOccurrences(of: replacing, with: with).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Each fold's `state.json` under `cache/train/`, by path, decoded.
    static func trainingStates(_ workdir: String) throws -> [String: TrainingStateFile] {
        var states: [String: TrainingStateFile] = [:]
        for file in FaultFixture.trainFiles(workdir) where file.hasSuffix("/state.json") {
            let data = try Data(contentsOf: URL(fileURLWithPath: workdir + "/" + file))
            states[file] = try JSONDecoder().decode(TrainingStateFile.self, from: data)
        }
        return states
    }

    struct TrainingStateFile: Decodable {
        struct Epoch: Decodable { var epoch: Int }
        var epochs: [Epoch]
        var finished: Bool
    }

    /// Facts without the checkpoint folders `--force` set aside (their files are the reference's, elsewhere).
    static func factsInUse(_ workdir: String) throws -> FaultFixture.Facts {
        var facts = try FaultFixture.facts(workdir)
        facts.files = facts.files.filter { !$0.key.contains(GarbagePlan.supersededMarker) }
        return facts
    }

    // MARK: --force

    @Test func forcedTrainSetsItsCheckpointsAsideAndTrainsFromEpochOneWithItsDependents() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try Self.copyOfReference(fixture, "forced")
        let before = Set(FaultFixture.trainFiles(workdir))
        let forced = try fixture.run(["--force", "train"], workdir: workdir)
        #expect(forced.status == fixture.referenceStatus, "\(forced.stderr)")
        #expect(!forced.stderr.contains("resuming after epoch"), "a forced training must not resume: \(forced.stderr)")
        #expect(forced.stderr.contains("forced: earlier checkpoints moved to \(workdir)/cache/train/"), "\(forced.stderr)")
        // Every fold trains all its epochs again, from epoch 1, in this run.
        for epoch in 1...FaultFixture.epochs {
            let logged = forced.stderr.components(separatedBy: "epoch \(epoch)/\(FaultFixture.epochs) ").count - 1
            #expect(logged == FaultFixture.folds, "epoch \(epoch) logged \(logged) times: \(forced.stderr)")
        }
        let states = try Self.trainingStates(workdir).filter { !$0.key.contains(GarbagePlan.supersededMarker) }
        #expect(states.count == FaultFixture.folds)
        for (file, state) in states {
            #expect(state.epochs.map(\.epoch) == Array(1...FaultFixture.epochs) && state.finished, "\(file)")
        }
        // The old checkpoints are kept aside, intact.
        let aside = Set(FaultFixture.trainFiles(workdir)).subtracting(before)
        #expect(aside.count == before.count && aside.allSatisfy { $0.contains(GarbagePlan.supersededMarker) }, "\(aside.sorted())")
        // Dependents ran although train's output digest is unchanged.
        let summary = forced.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        for stage in ["train", "evaluate", "export"] {
            #expect(summary.contains { $0.hasPrefix("  \(stage): ran ") }, "\(stage) runs: \(summary)")
        }
        for stage in ["ingest", "audio", "faces", "split"] {
            #expect(summary.contains { $0.hasPrefix("  \(stage): up to date") }, "\(stage) is untouched: \(summary)")
        }
        // Training is deterministic: the retrained models, metrics and ONNX equal the reference's.
        let differences = try Self.factsInUse(workdir).differences(from: try FaultFixture.facts(fixture.reference))
        #expect(differences.isEmpty, "\(differences.prefix(12))")

        // cache gc lists the set-aside folder, then removes it (and only it).
        let dry = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", fixture.manifest, "--dry-run", "--json", "--workdir", workdir])
        #expect(dry.status == 0, "\(dry.stderr)")
        let listing = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        let folders = (listing["superseded_checkpoints"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
        #expect(folders.count == 1 && folders.allSatisfy { $0.hasPrefix("cache/train/") && $0.contains(GarbagePlan.supersededMarker) }, "\(listing)")
        #expect(Set(FaultFixture.trainFiles(workdir)).count == 2 * before.count, "a dry run removes nothing")
        let gc = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", fixture.manifest, "--workdir", workdir])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(Set(FaultFixture.trainFiles(workdir)) == before)
    }

    @Test func forcedAudioRecomputesEverySourceByteForByte() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try Self.copyOfReference(fixture, "forced-audio")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let shardsBefore = Set(try store.read { try CacheShardRow.filter(sql: "stage = 'audio'").fetchAll($0) }.map(\.file))
        let forced = try fixture.run(["--force", "audio", "--until", "audio"], workdir: workdir)
        #expect(forced.status == fixture.referenceStatus, "\(forced.stderr)")
        let records = try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").fetchAll($0) }
        #expect(!records.isEmpty)
        let shards = Dictionary(uniqueKeysWithValues: try store.read { try CacheShardRow.fetchAll($0) }.map { ($0.id!, $0.file) })
        #expect(records.allSatisfy { !shardsBefore.contains(shards[$0.shardId] ?? "") }, "every record is recomputed into a new shard")
        let differences = try FaultFixture.facts(workdir).differences(from: try FaultFixture.facts(fixture.reference))
        #expect(differences.isEmpty, "\(differences.prefix(12))")
    }

    // MARK: Outputs deleted or edited since

    @Test func resultFilesDeletedOrEditedSinceMakeTheirStagesRunAgainToTheSameResults() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try Self.copyOfReference(fixture, "outputs-gone")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let evaluated = try #require(try store.stageState("evaluate")?.runId)
        let exported = try #require(try store.stageState("export")?.runId)
        let weights = try #require(FaultFixture.trainFiles(workdir).first { $0.hasSuffix("/fold-1/best.safetensors") })
        try FileManager.default.removeItem(atPath: "\(workdir)/runs/\(exported)/model.onnx")
        try FileManager.default.removeItem(atPath: "\(workdir)/runs/\(evaluated)/metrics.json")
        let edited = try FileHandle(forWritingTo: URL(fileURLWithPath: workdir + "/" + weights))
        try edited.seekToEnd()
        try edited.write(contentsOf: Data([0]))
        try edited.close()

        let status = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        let stale = status.stdout.split(separator: "\n").filter { $0.contains(" stale ") }.map { String($0.prefix { $0 != " " }) }
        #expect(stale == ["train", "evaluate", "export"], "\(status.stdout)")
        #expect(status.stdout.contains("\(workdir)/\(weights) has changed since run "), "\(status.stdout)")

        let again = try fixture.run([], workdir: workdir)
        #expect(again.status == fixture.referenceStatus, "\(again.stderr)")
        #expect(again.stderr.contains("has changed since run"), "\(again.stderr)")
        #expect(again.stderr.contains("earlier checkpoints moved to \(workdir)/\(weights.dropLast("/best.safetensors".count))\(GarbagePlan.supersededMarker)"),
                "\(again.stderr)")
        // Only the edited fold trains again, from epoch 1.
        #expect(again.stderr.components(separatedBy: "epoch 1/\(FaultFixture.epochs) ").count - 1 == 1, "\(again.stderr)")
        let summary = again.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        for stage in ["train", "evaluate", "export"] {
            #expect(summary.contains { $0.hasPrefix("  \(stage): ran ") }, "\(stage) runs: \(summary)")
        }
        // Training is deterministic: the same weights, metrics and ONNX as the reference's.
        let differences = try Self.factsInUse(workdir).differences(from: try FaultFixture.facts(fixture.reference))
        #expect(differences.isEmpty, "\(differences.prefix(12))")
        let after = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(!after.stdout.contains(" stale "), "\(after.stdout)")

        // A fold's model.json (its standardiser, window and labels, which evaluate and export read) edited is
        // the fold's result edited too: train is stale, and the fold trains again to the same files.
        let description = weights.replacingOccurrences(of: "/best.safetensors", with: "/model.json")
        let original = try String(contentsOfFile: workdir + "/" + description, encoding: .utf8)
        let shifted = original.replacingOccurrences(of: #""hop_frames" : ([0-9]+)"#, with: #""hop_frames" : 1$1"#, options: .regularExpression)
        #expect(shifted != original)
        try shifted.write(toFile: workdir + "/" + description, atomically: true, encoding: .utf8)
        let describedStatus = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(describedStatus.stdout.contains("\(workdir)/\(description) has changed since run "), "\(describedStatus.stdout)")
        let retrained = try fixture.run([], workdir: workdir)
        #expect(retrained.status == fixture.referenceStatus && retrained.stderr.components(separatedBy: "epoch 1/\(FaultFixture.epochs) ").count - 1 == 1,
                "\(retrained.stderr)")
        #expect(try String(contentsOfFile: workdir + "/" + description, encoding: .utf8) == original)
        #expect(try Self.factsInUse(workdir).differences(from: try FaultFixture.facts(fixture.reference)).isEmpty)

        // A deleted split plan is written again, the same, and leaves what follows it up to date.
        let plan = try #require(FileManager.default.subpathsOfDirectory(atPath: workdir + "/cache/split").first { $0.hasSuffix(".json") })
        try FileManager.default.removeItem(atPath: workdir + "/cache/split/" + plan)
        let planGone = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(planGone.stdout.contains("cache/split/\(plan), written by run "), "\(planGone.stdout)")
        let replanned = try fixture.run([], workdir: workdir)
        let lines = replanned.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        #expect(lines.contains { $0.hasPrefix("  split: ran ") } && lines.contains { $0.hasPrefix("  train: up to date") }, "\(lines)")
        #expect(FileManager.default.fileExists(atPath: workdir + "/cache/split/" + plan))

        // Folds set aside by a `--force train` killed before it reached them have neither a folder nor a
        // row: train is stale, and a run trains just those folds (here all four), to the reference's weights.
        let trainFolder = try #require(FaultFixture.trainFiles(workdir).first { $0.hasSuffix("/fold-0/state.json") })
            .dropLast("/fold-0/state.json".count)
        func setAside(_ folds: [Int]) throws {
            for fold in folds {
                let folder = "\(workdir)/\(trainFolder)/fold-\(fold)"
                try FileManager.default.removeItem(atPath: folder)
                try store.write { db in try db.execute(sql: "DELETE FROM artifact WHERE stage = 'train' AND path LIKE ?", arguments: [folder + "/%"]) }
            }
        }
        try setAside([2, 3])
        let foldsGone = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(foldsGone.stdout.contains("the recorded folds' weights (folds 0, 1) are not those run "), "\(foldsGone.stdout)")
        // With every fold set aside, that is said (it was "folds )").
        try setAside([0, 1])
        let allGone = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(allGone.stdout.contains("no fold's weights are left of those run "), "\(allGone.stdout)")
        let refolded = try fixture.run([], workdir: workdir)
        #expect(refolded.stderr.components(separatedBy: "epoch 1/\(FaultFixture.epochs) ").count - 1 == 4, "\(refolded.stderr)")
        #expect(try Self.factsInUse(workdir).differences(from: try FaultFixture.facts(fixture.reference)).isEmpty)

        // An edited file predict reads beside model.onnx, and a fold whose state says it is unfinished
        // though every epoch is there: stale once, then up to date again.
        let exportedLast = try #require(try store.stageState("export")?.runId)
        try "{}".write(toFile: "\(workdir)/runs/\(exportedLast)/features.json", atomically: true, encoding: .utf8)
        let stateFile = "\(workdir)/\(trainFolder)/fold-0/state.json"
        let finished = try String(contentsOfFile: stateFile, encoding: .utf8)
        try finished.replacingOccurrences(of: "\"finished\" : true", with: "\"finished\" : false").write(toFile: stateFile, atomically: true, encoding: .utf8)
        let edited2 = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(edited2.stdout.contains("fold 0 is partway through training") , "\(edited2.stdout)")
        let repaired = try fixture.run([], workdir: workdir)
        #expect(repaired.status == fixture.referenceStatus, "\(repaired.stderr)")
        let settled = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(!settled.stdout.contains(" stale "), "\(settled.stdout)")
        try "{}".write(toFile: "\(workdir)/runs/\(try #require(try store.stageState("export")?.runId))/features.json", atomically: true, encoding: .utf8)
        let featuresEdited = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(featuresEdited.stdout.contains("/features.json has changed since run "), "\(featuresEdited.stdout)")
        _ = try fixture.run([], workdir: workdir)

        // A work directory moved elsewhere stays up to date: files are looked for where its layout puts them.
        let moved = workdir + "-moved"
        try FileManager.default.moveItem(atPath: workdir, toPath: moved)
        let elsewhere = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", moved])
        #expect(elsewhere.status == 0 && !elsewhere.stdout.contains(" stale "), "\(elsewhere.stdout)")
        // It is judged on its own files, although its rows name the first place's, which a copy fills again.
        try TestSupport.shell("cp -a '\(moved)' '\(workdir)'")
        let exportedNow = try #require(try ProvenanceStore(path: moved + "/emopipe.sqlite").stageState("export")?.runId)
        try FileManager.default.removeItem(atPath: "\(moved)/runs/\(exportedNow)/model.onnx")
        let copied = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", moved])
        #expect(copied.stdout.contains("\(moved)/runs/\(exportedNow)/model.onnx, written by run \(exportedNow), is missing"), "\(copied.stdout)")
    }

    /// `--only train` reads the split plan as it is: one edited into another sound plan (a clip moved to another
    /// actor) is refused naming the file, as the whole run would have written it again.
    @Test func aSplitPlanEditedSinceItWasWrittenIsRefusedWhereTrainReadsItAsItIs() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try Self.copyOfReference(fixture, "edited-plan")
        let plan = try #require(FileManager.default.subpathsOfDirectory(atPath: workdir + "/cache/split").first { $0.hasSuffix(".json") })
        let path = workdir + "/cache/split/" + plan
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        var document = try #require(try JSONSerialization.jsonObject(with: written) as? [String: Any])
        var clips = try #require(document["clips"] as? [[String: Any]])
        let actor = try #require(clips[0]["actor"] as? Int)
        clips[0]["actor"] = try #require((clips.compactMap { $0["actor"] as? Int }).first { $0 != actor })
        document["clips"] = clips
        try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        let refused = try fixture.run(["--only", "train", "--force", "train"], workdir: workdir)
        #expect(refused.status == ExitStatus.failure && refused.stderr.contains("\(path): changed since the split stage wrote it")
                && refused.stderr.contains("--force split"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("epoch 1/"), "nothing trained: \(refused.stderr)")
    }

    // MARK: Ctrl-C

    @Test func sigintInTrainingStopsWithinABatchAndTheResumeEqualsAnUninterruptedRun() throws {
        let fixture = try FaultFixture.shared.get()
        // A checkpoint every 3 epochs: a stop in epoch 2 finds no checkpoint on disk to fall back on. That changes no
        // weight, so a patience no epoch reaches changes the cache key: the folds train again, as in an edited manifest.
        let manifest = try Self.variant(fixture, replacing: "checkpoint_every: 1, patience: \(FaultFixture.epochs)}",
                                        with: "checkpoint_every: 3, patience: \(FaultFixture.epochs + 1)}")
        let uninterrupted = try Self.copyOfReference(fixture, "uninterrupted")
        let whole = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", uninterrupted])
        #expect(whole.status == fixture.referenceStatus, "\(whole.stderr)")

        let workdir = try Self.copyOfReference(fixture, "interrupted")
        let run = try TestSupport.Background(TestSupport.emopipe, ["run", manifest, "--workdir", workdir])
        #expect(run.waitForStderr(containing: "epoch 1/\(FaultFixture.epochs) "), "\(run.stderr)")
        // Into the second epoch: a fraction of the time the first epoch took in this very run (its line
        // says), so a machine busier or idler than during the reference run still lands in epoch 2.
        let firstEpoch = Self.epochSeconds(in: run.stderr, epoch: 1) ?? fixture.batchSeconds["train"]!
        Thread.sleep(forTimeInterval: 0.4 * firstEpoch)
        let sent = Date()
        #expect(kill(run.pid, SIGINT) == 0)
        let status = run.wait()
        let seconds = Date().timeIntervalSince(sent)
        print("ctrl-c: exit \(status) \(String(format: "%.2f", seconds))s after SIGINT (the first epoch took \(String(format: "%.2f", firstEpoch))s)")
        #expect(status == ExitStatus.interrupted, "\(run.stderr)")
        #expect(seconds < 5, "stopped \(seconds)s after SIGINT")
        // In a batch of training or of validation: either way the epoch is done again.
        #expect(run.stderr.contains("stopped in epoch") || run.stderr.contains("stopped while validating epoch"), "\(run.stderr)")
        // The summary still says what finished, the stage it stopped in and what the run cost.
        #expect(run.stderr.range(of: #"run [0-9a-f-]+ \(interrupted\):\n(  [a-z]+: (up to date|ran) .*\n)*  train: interrupted after [0-9.hms]+\n  in all: cpu [0-9.]+ s, peak RSS ([0-9]+ MB \([a-z]+\)|unknown)\n  the same command resumes from here"#,
                                     options: .regularExpression) != nil, "\(run.stderr)")

        let runs = try TestSupport.run(TestSupport.emopipe, ["runs", "--json", "--workdir", workdir])
        let documents = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        let latest = try #require(documents.max { ($0["id"] as? String ?? "") < ($1["id"] as? String ?? "") })
        #expect(latest["status"] as? String == "interrupted" && latest["exit_code"] as? Int == 130, "\(latest)")
        // The stop wrote an epoch-boundary checkpoint that is not one of the every-3-epochs ones.
        let partial = try Self.trainingStates(workdir).values.filter { !$0.finished }
        #expect(partial.count == 1 && partial.allSatisfy { (1..<3).contains($0.epochs.count) },
                "\(partial.map { $0.epochs.count })")
        // A kill while the next checkpoint is being published leaves newer weights beside the state that
        // does not describe them yet: the resume must take the published pair, not start over.
        let stopped = try #require(try Self.trainingStates(workdir).first { !$0.value.finished })
        let fold = workdir + "/" + (stopped.key as NSString).deletingLastPathComponent
        let published = fold + "/checkpoint-\(stopped.value.epochs.count).safetensors"
        #expect(FileManager.default.fileExists(atPath: published), "\(published)")
        let unpublished = try Data(contentsOf: URL(fileURLWithPath: published))
        try unpublished.prefix(unpublished.count / 2).write(to: URL(fileURLWithPath: fold + "/checkpoint-\(stopped.value.epochs.count + 1).safetensors"))

        // status says where a run will go on from, not only that train never completed.
        let partwayStatus = try TestSupport.run(TestSupport.emopipe, ["status", manifest, "--workdir", workdir])
        #expect(partwayStatus.stdout.contains("checkpoints of these parameters: fold ")
                && partwayStatus.stdout.contains("after epoch \(stopped.value.epochs.count); a run resumes from them"), "\(partwayStatus.stdout)")

        let resumed = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir])
        #expect(resumed.status == fixture.referenceStatus, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming after epoch \(stopped.value.epochs.count)"), "\(resumed.stderr)")
        let differences = try FaultFixture.facts(workdir).differences(from: try FaultFixture.facts(uninterrupted))
        #expect(differences.isEmpty, "\(differences.prefix(12))")
        let trained = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").stageState("train")).fingerprint
        let weights = try FaultFixture.facts(workdir).files.keys.filter { $0.hasPrefix("cache/train/\(trained.prefix(16))/") && $0.hasSuffix("/best.safetensors") }
        #expect(weights.count == FaultFixture.folds, "the comparison covers every fold's weights: \(weights)")
    }

    /// The seconds an epoch's log line says it took (`epoch 1/4  loss …  lr …  1.3s  ETA ≤ 3.9s`).
    static func epochSeconds(in log: String, epoch: Int) -> Double? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("epoch \(epoch)/") }) else { return nil }
        return line.components(separatedBy: "  ").lazy.compactMap { $0.hasSuffix("s") ? Double($0.dropLast()) : nil }.first
    }

    // MARK: cache gc

    /// Records per "stage cache-key" in a work directory.
    static func recordCounts(_ store: ProvenanceStore) throws -> [String: Int] {
        try store.read { try CacheRecordRow.fetchAll($0) }.reduce(into: [:]) { $0["\($1.stage) \($1.fingerprint)", default: 0] += 1 }
    }

    /// `cache gc` with `arguments`, its listing as JSON.
    static func gc(_ manifest: String, _ workdir: String, _ arguments: [String]) throws -> (listing: [String: Any], stderr: String) {
        let result = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", manifest, "--json", "--workdir", workdir] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return (try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]), result.stderr)
    }

    /// The listing without its `dry_run` flag, for comparing a dry run with the real one.
    static func removals(_ listing: [String: Any]) -> NSDictionary {
        var listing = listing
        listing["dry_run"] = nil
        return listing as NSDictionary
    }

    @Test func gcKeepsWhatRecordedRunsUsedUnlessCurrentOnlyAndDryRunListsExactlyWhatGoes() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try Self.copyOfReference(fixture, "gc")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let referenceAudio = try #require(try store.stageState("audio")).parametersFingerprint
        let manifest = try Self.variant(fixture, replacing: "params:\n", with: "params:\n  audio: {n_mels: 80}\n")
        let other = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "audio", "--workdir", workdir])
        #expect(other.status == fixture.referenceStatus, "\(other.stderr)")
        let newAudio = try #require(try store.stageState("audio")).parametersFingerprint
        #expect(newAudio != referenceAudio)
        // A crash leftover, which every gc removes.
        let leftover = "cache/audio/\(newAudio.prefix(16))/leftover-00001.shard.part-2147483646"  // a process id no process has
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: workdir + "/" + leftover))
        let counts = try Self.recordCounts(store)
        #expect(counts["audio \(referenceAudio)"] ?? 0 > 0 && counts["audio \(newAudio)"] ?? 0 > 0)

        // Default: the older run's records stay; only the leftover goes, as the dry run said.
        let dry = try Self.gc(manifest, workdir, ["--dry-run"])
        #expect(dry.listing["dry_run"] as? Bool == true)
        #expect((dry.listing["removed"] as? [Any])?.isEmpty == true, "\(dry.listing)")
        #expect((dry.listing["leftover_files"] as? [[String: Any]])?.map { $0["path"] as? String } == [leftover], "\(dry.listing)")
        #expect(FileManager.default.fileExists(atPath: workdir + "/" + leftover), "a dry run removes nothing")
        let kept = try #require(dry.listing["kept"] as? [String: [String]])
        #expect(Set(kept["audio"] ?? []) == [referenceAudio, newAudio], "\(kept)")
        let real = try Self.gc(manifest, workdir, [])
        #expect(Self.removals(real.listing) == Self.removals(dry.listing))
        #expect(!FileManager.default.fileExists(atPath: workdir + "/" + leftover))
        #expect(try Self.recordCounts(store) == counts, "gc after a run with other parameters keeps the older run's records")

        // --current-only: the records of the default n_mels go, exactly as listed.
        let shardBytes = try store.read { try CacheShardRow.fetchAll($0) }
            .filter { $0.stage == "audio" && $0.fingerprint == referenceAudio }
            .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: workdir + "/" + $1.file)[.size] as? Int) ?? 0) }
        let dryCurrent = try Self.gc(manifest, workdir, ["--dry-run", "--current-only"])
        #expect(dryCurrent.stderr.contains("would drop \(counts["audio \(referenceAudio)"]!) record(s) of parameters that earlier runs used"),
                "\(dryCurrent.stderr)")
        #expect(try Self.recordCounts(store) == counts, "a dry run removes nothing")
        let removed = try #require(dryCurrent.listing["removed"] as? [[String: Any]])
        #expect(removed.count == 1, "\(removed)")
        let group = try #require(removed.first)
        #expect(group["stage"] as? String == "audio" && group["cache_key"] as? String == referenceAudio
                && group["reason"] as? String == "cache key not kept", "\(group)")
        #expect(group["records"] as? Int == counts["audio \(referenceAudio)"], "\(group)")
        #expect(group["bytes"] as? Int == shardBytes, "\(group) vs \(shardBytes) bytes of shards on disk")
        let realCurrent = try Self.gc(manifest, workdir, ["--current-only"])
        #expect(Self.removals(realCurrent.listing) == Self.removals(dryCurrent.listing))
        var expected = counts
        expected["audio \(referenceAudio)"] = nil
        #expect(try Self.recordCounts(store) == expected, "exactly the listed records went")
        #expect(try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir]).status == 0)
    }
}
