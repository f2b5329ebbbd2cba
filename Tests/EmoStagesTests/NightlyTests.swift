import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// `emopipe nightly` over a data root that changes between nights: what it reprocesses, what its
/// report says, and the exit statuses alerting relies on.
@Suite("nightly", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct NightlyTests {
    struct Night {
        var status: Int32
        var report: [String: Any]
        var sources: [String: Any] { report["sources"] as? [String: Any] ?? [:] }
        func list(_ key: String) -> [String] { (sources[key] as? [Any] ?? []).map { ($0 as? String) ?? "\($0)" } }
        var stageActions: [String: String] {
            Dictionary(uniqueKeysWithValues: (report["stages"] as? [[String: Any]] ?? []).map {
                ($0["stage"] as! String, $0["action"] as! String)
            })
        }
        var metrics: [[String: Any]] { report["metrics"] as? [[String: Any]] ?? [] }
    }

    static func night(_ manifest: String, _ workdir: String) throws -> Night {
        let result = try TestSupport.run(TestSupport.emopipe, ["nightly", manifest, "--workdir", workdir, "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                                  "nightly printed its report: \(result.stderr)")
        return Night(status: result.status, report: report)
    }

    /// Actors 01-03's speech and a manifest training the tiny network on them (tests on 01, validates
    /// on 02) under `nightly.metrics`: the data root, the test's folder and the manifest's path.
    static func tinyNight(_ label: String, metrics: String, train: String) throws -> (data: String, folder: String, manifest: String) {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder(label)
        let manifest = try TestSupport.writeManifest(at: folder + "/nightly.yaml", data: data, """
        seed: 3
        threads: 2
        nightly: {tolerance: 0.05, metrics: \(metrics)}
        params:
          split: {test_actors: [1], val_actors: [2]}
          train: {audio_channels: [4, 8], embedding: 16, batch_size: 16, \(train)}
        """)
        return (data, folder, manifest)
    }

    /// A night that fails still reports what its ingest noticed (the files that made it fail); and the
    /// next good night, compared with the last good one, does not call files changed that are as they
    /// were then (a folder gone for a night and back, as an unmounted disk does).
    @Test func aFailedNightReportsItsChangesAndTheNextComparesWithTheLastGoodOne() throws {
        let (data, folder, manifest) = try Self.tinyNight("nightly-failed", metrics: "[accuracy]",
                                                           train: "epochs: 1, warmup_epochs: 0, selection_window: 1")
        let workdir = folder + "/work"
        // A plain run before the first night: that night's report still lists every source as added, since
        // the work directory was made (it listed none: ingest had nothing new to notice that night).
        let ingested = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "ingest", "--workdir", workdir])
        #expect(ingested.status == 0, "\(ingested.stderr)")
        let good = try Self.night(manifest, workdir)
        #expect(good.status == 0, "\(good.report)")
        #expect(good.list("added").count == 180 && good.list("changed").isEmpty && good.list("removed").isEmpty, "\(good.report)")
        try FileManager.default.moveItem(atPath: data + "/Actor_02", toPath: folder + "/Actor_02")
        // A file ingest fails the same night: a failed night still counts the failing units (it said 0).
        let broken = data + "/Actor_04/03-01-05-01-02-01-04.wav"
        try FileManager.default.createDirectory(atPath: data + "/Actor_04", withIntermediateDirectories: true)
        try Data("RIFF this is not audio".utf8).write(to: URL(fileURLWithPath: broken))
        let failed = try Self.night(manifest, workdir)
        #expect(failed.status == 1 && failed.report["error"] is String, "\(failed.report)")
        #expect(failed.list("removed").count == 60 && failed.list("removed").allSatisfy { $0.contains("/Actor_02/") }, "\(failed.report)")
        #expect(failed.report["failed_units"] as? Int == 1, "\(failed.report)")
        let markdown = try String(contentsOfFile: "\(workdir)/nightly/\(failed.report["run_id"] as! String).md", encoding: .utf8)
        #expect(markdown.contains("## The pipeline failed") && markdown.contains("| 1 | 0 | 60 |"), "\(markdown)")
        try FileManager.default.removeItem(atPath: data + "/Actor_04")
        try FileManager.default.moveItem(atPath: folder + "/Actor_02", toPath: data + "/Actor_02")
        let back = try Self.night(manifest, workdir)
        #expect(back.status == 0 && back.report["previous_run_id"] as? String == good.report["run_id"] as? String, "\(back.report)")
        #expect(back.list("added").isEmpty && back.list("changed").isEmpty && back.list("removed").isEmpty, "\(back.report)")
        // A file gone at a good night's report and back with its bytes is added again, not "changed": it was not rewritten.
        let wav = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/Actor_01").filter { $0.hasSuffix(".wav") }.sorted().first)
        try FileManager.default.moveItem(atPath: data + "/Actor_01/" + wav, toPath: folder + "/" + wav)
        let without = try Self.night(manifest, workdir)
        #expect(without.status == 0 && without.list("removed") == [data + "/Actor_01/" + wav], "\(without.report)")
        try FileManager.default.moveItem(atPath: folder + "/" + wav, toPath: data + "/Actor_01/" + wav)
        let returned = try Self.night(manifest, workdir)
        #expect(returned.status == 0 && returned.list("added") == [data + "/Actor_01/" + wav] && returned.list("changed").isEmpty, "\(returned.report)")
    }

    /// A recording of a test actor fixed (its bytes changed): the test clip is evaluated again, but the fold's training
    /// and validation clips are what they were, so train takes the weights it trained before instead of training again
    /// (the same inputs give the same bytes), and the report says the model was not retrained. A training clip changed
    /// trains again.
    @Test func aChangedTestClipIsEvaluatedAgainWithoutRetraining() throws {
        let (data, folder, manifest) = try Self.tinyNight("nightly-testclip", metrics: "[accuracy]",
                                                           train: "epochs: 2, warmup_epochs: 0, selection_window: 1")
        let workdir = folder + "/work"
        let first = try Self.night(manifest, workdir)
        #expect(first.status == 0 && first.stageActions["train"] == "ran", "\(first.report)")
        let weights = try TrainEvaluateTests.bestWeights(workdir)
        func flipByte(in path: String) throws {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count / 2] ^= 0x55
            try bytes.write(to: URL(fileURLWithPath: path))
        }
        func summary(_ night: Night, _ stage: String) -> String {
            ((night.report["stages"] as? [[String: Any]] ?? []).first { $0["stage"] as? String == stage }?["summary"] as? String) ?? ""
        }
        func markdown(_ night: Night) throws -> String {
            try String(contentsOfFile: "\(workdir)/nightly/\(night.report["run_id"] as! String).md", encoding: .utf8)
        }
        try flipByte(in: data + "/Actor_01/03-01-05-01-01-01-01.wav")   // actor 01 is the test actor
        let fixed = try Self.night(manifest, workdir)
        #expect(fixed.status == 0 && fixed.list("changed") == [data + "/Actor_01/03-01-05-01-01-01-01.wav"], "\(fixed.report)")
        #expect(fixed.stageActions["evaluate"] == "ran" && summary(fixed, "train").hasPrefix(StageSummary.weightsTaken), "\(fixed.report)")
        #expect(try markdown(fixed).contains("The model was not retrained: its folds' training and validation clips and settings are those of an earlier training"))
        let trainFolders = try FileManager.default.contentsOfDirectory(atPath: workdir + "/cache/train").filter { !$0.contains(".") }
        #expect(trainFolders.count == 2, "a folder of the new fingerprint holds the weights taken: \(trainFolders)")
        for name in trainFolders {
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(workdir)/cache/train/\(name)/fold-0/best.safetensors")) == weights)
        }
        // A fold whose state says another kept epoch than its recorded description is not taken, nor resumed under its
        // own fingerprint (the data is back as it was first): trained again.
        for name in trainFolders {
            let state = "\(workdir)/cache/train/\(name)/fold-0/state.json"
            var fields = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state))) as? [String: Any])
            // Another of its two epochs than the one kept (and its model.json describes).
            fields["best_epoch"] = fields["best_epoch"] as? Int == 1 ? 2 : 1
            try JSONSerialization.data(withJSONObject: fields).write(to: URL(fileURLWithPath: state))
        }
        try flipByte(in: data + "/Actor_01/03-01-05-01-01-01-01.wav")
        let edited = try Self.night(manifest, workdir)
        #expect(edited.stageActions["train"] == "ran" && !summary(edited, "train").hasPrefix(StageSummary.weightsTaken), "\(edited.report)")
        // An earlier fold whose last checkpoint is damaged is not taken (the trainer would start it over): trained again.
        let allFolders = try FileManager.default.contentsOfDirectory(atPath: workdir + "/cache/train").filter { !$0.contains(".") }
        for name in allFolders {
            let folder = "\(workdir)/cache/train/\(name)/fold-0"
            for checkpoint in try FileManager.default.contentsOfDirectory(atPath: folder) where checkpoint.hasPrefix("checkpoint-") {
                try flipByte(in: folder + "/" + checkpoint)
            }
        }
        try flipByte(in: data + "/Actor_01/03-01-05-01-01-01-01.wav")
        let unsound = try Self.night(manifest, workdir)
        #expect(unsound.stageActions["train"] == "ran" && !summary(unsound, "train").hasPrefix(StageSummary.weightsTaken), "\(unsound.report)")
        // A validation clip (actor 02) or a training clip (actor 03) changed: trained again.
        for changed in ["/Actor_02/03-01-05-01-01-01-02.wav", "/Actor_03/03-01-05-01-01-01-03.wav"] {
            try flipByte(in: data + changed)
            let retrained = try Self.night(manifest, workdir)
            #expect(retrained.stageActions["train"] == "ran" && !summary(retrained, "train").hasPrefix(StageSummary.weightsTaken), "\(changed): \(retrained.report)")
            #expect(try markdown(retrained).contains("The model was retrained: a training input changed."), "\(changed)")
        }
    }

    /// Settings set back to those of an earlier night: the fold it trained then is found finished under that
    /// fingerprint and nothing is trained, so the report says the model was not retrained (it said retrained,
    /// and the trainer logged "resuming after epoch 2" of a fold with nothing left to do).
    @Test func settingsSetBackToAnEarlierNightsTrainNothing() throws {
        let (_, folder, manifest) = try Self.tinyNight("nightly-back", metrics: "[accuracy]",
                                                        train: "epochs: 2, warmup_epochs: 0, selection_window: 1")
        let workdir = folder + "/work"
        let original = try String(contentsOfFile: manifest, encoding: .utf8)
        func summary(_ night: Night) -> String {
            ((night.report["stages"] as? [[String: Any]] ?? []).first { $0["stage"] as? String == "train" }?["summary"] as? String) ?? ""
        }
        let first = try Self.night(manifest, workdir)
        #expect(first.status == 0 && !summary(first).hasPrefix(StageSummary.weightsTaken), "\(first.report)")
        try original.replacingOccurrences(of: "epochs: 2,", with: "epochs: 1,").write(toFile: manifest, atomically: true, encoding: .utf8)
        let shorter = try Self.night(manifest, workdir)
        #expect(shorter.status == 0 && shorter.stageActions["train"] == "ran" && !summary(shorter).hasPrefix(StageSummary.weightsTaken), "\(shorter.report)")
        try original.write(toFile: manifest, atomically: true, encoding: .utf8)
        let back = try TestSupport.run(TestSupport.emopipe, ["nightly", manifest, "--workdir", workdir])
        #expect(back.status == 0 && back.stderr.contains("fold 0: trained before under these settings (2 epochs"), "\(back.stderr)")
        #expect(!back.stderr.contains("resuming after epoch"), "\(back.stderr)")
        let runId = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().first?.id)
        let markdown = try String(contentsOfFile: "\(workdir)/nightly/\(runId).md", encoding: .utf8)
        #expect(markdown.contains("The model was not retrained: its folds' training and validation clips and settings are those of an earlier training"), "\(markdown)")
    }

    @Test func reprocessesOnlyWhatChangedAndAlertsByExitStatus() throws {
        let (data, folder, manifest) = try Self.tinyNight("nightly", metrics: "[accuracy, weighted_f1, cv.weighted_f1.mean]",
                                                           train: "epochs: 2, patience: 10")
        let workdir = folder + "/work"

        // Night 1: everything is new.
        let first = try Self.night(manifest, workdir)
        #expect(first.status == 0, "\(first.report)")
        #expect(first.list("added").count == 180 && first.list("removed").isEmpty)
        #expect(first.stageActions["train"] == "ran")
        #expect(first.metrics.count == 2 && first.metrics.allSatisfy { $0["previous"] is NSNull && $0["delta"] is NSNull })
        // A single split has no cv.json: the watch that can never alert is listed, not silently dropped.
        #expect(first.report["absent_metrics"] as? [String] == ["cv.weighted_f1.mean"], "\(first.report)")
        // Every key in every report, null where nothing applies, and the exit status the night ends with.
        #expect(first.report["previous_run_id"] is NSNull && first.report["error"] is NSNull, "\(first.report)")
        #expect(first.report["exit_code"] as? Int == 0)
        #expect(first.sources["totals"] as? [String: Int] == ["ok": 180, "failed": 0, "ignored": 0, "removed": 0], "\(first.sources)")

        // Night 2: nothing changed, nothing is redone; metrics compared with night 1. Night 1's source list with one
        // hash edited (its count kept) is not taken for the data it used: that source was reported changed.
        func editListing(of night: Night, _ edit: ([Substring]) -> [Substring]) throws {
            let path = workdir + "/runs/\(night.report["run_id"] as! String)/dataset.tsv"
            let listed = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            try #require(listed.count == 180)
            try edit(listed).map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        }
        try editListing(of: first) { lines in [Substring(lines[0].prefix { $0 != "\t" } + "\t" + String(repeating: "0", count: 64))] + lines.dropFirst() }
        let second = try Self.night(manifest, workdir)
        #expect(second.status == 0)
        #expect(second.list("added").isEmpty && second.list("changed").isEmpty, "\(second.sources)")
        #expect((second.sources["listings_not_taken"] as? [String])?.first?.contains("its sources do not give the dataset fingerprint run") == true,
                "the report says its changes were read from the database's rows: \(second.sources)")
        #expect(Set(second.stageActions.values) == ["up to date"], "\(second.stageActions)")
        #expect(second.report["previous_run_id"] as? String == first.report["run_id"] as? String)
        #expect(second.metrics.allSatisfy { ($0["delta"] as? Double) == 0 })
        let markdown = try String(contentsOfFile: "\(workdir)/nightly/\(second.report["run_id"] as! String).md", encoding: .utf8)
        #expect(markdown.contains("| weighted_f1 |") && markdown.contains("not retrained"))
        #expect(markdown.contains("Watched but not in this run's results, so never compared: `cv.weighted_f1.mean`."), "\(markdown)")
        // A model trained between two nights (an `emopipe run`) is not the one the previous report scored: said so,
        // not "no training input changed".
        let retrain = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--force", "train"])
        #expect(retrain.status == 0, "\(retrain.stderr)")
        let trainedBetween = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().max { $0.startedAt < $1.startedAt }?.id)
        // Night 2's list cut short (ten lines gone): not taken either (those ten were reported added).
        try editListing(of: second) { Array($0.dropFirst(10)) }
        let quiet = try Self.night(manifest, workdir)
        #expect(quiet.list("added").isEmpty && quiet.list("changed").isEmpty, "\(quiet.sources)")
        #expect((quiet.sources["listings_not_taken"] as? [String])?.first?.contains("lists 170 source(s), where run") == true, "\(quiet.sources)")
        #expect(first.sources["listings_not_taken"] == nil, "\(first.sources)")
        #expect(quiet.stageActions["train"] == "up to date", "\(quiet.stageActions)")
        #expect(quiet.report["previous_model_run"] as? String == first.report["run_id"] as? String, "\(quiet.report)")
        let quietMarkdown = try String(contentsOfFile: "\(workdir)/nightly/\(quiet.report["run_id"] as! String).md", encoding: .utf8)
        #expect(quietMarkdown.contains("The model was not retrained tonight, but it is not the one the previous report scored: "
                                       + "run \(trainedBetween) trained it since."), "\(quietMarkdown)")

        // Night 3: one recording deleted, one broken file added → exit 3, the removal recorded,
        // its cached record kept until `cache gc`, the model retrained on what is left.
        let removed = data + "/Actor_02/03-01-05-01-02-01-02.wav"
        let removedSHA = try TestSupport.sha256sum(removed)
        try FileManager.default.removeItem(atPath: removed)
        let broken = data + "/Actor_04/03-01-05-01-02-01-04.wav"
        try FileManager.default.createDirectory(atPath: data + "/Actor_04", withIntermediateDirectories: true)
        try Data("RIFF this is not audio".utf8).write(to: URL(fileURLWithPath: broken))
        // A run between two nights (here an ingest; an interrupted night is the same) notices the removal
        // first: the next report still lists it, as changes since the previous report.
        let between = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--until", "ingest"])
        #expect(between.status == 0 || between.status == 3, "\(between.stderr)")
        // A failure under other audio parameters (a sweep trial's, an old manifest's) says nothing of this pipeline.
        let failedElsewhere = data + "/Actor_01/03-01-01-01-01-01-01.wav"
        do {
            let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
            let sha = try #require(try store.source(path: failedElsewhere)?.sha256)
            let runId = try #require(try store.runs().max { $0.startedAt < $1.startedAt }?.id)
            var foreign = FailureRecord(stage: "audio", fingerprint: "other-parameters", subject: failedElsewhere, sha256: sha,
                                        reason: "a trial's failure", runId: runId)
            try store.write { try foreign.insert($0) }
        }
        // A recording in use replaced by a dangling link: unreadable, so no hash, and still a failure of the period.
        let unreadable = data + "/Actor_03/03-01-03-01-01-01-03.wav"
        let unreadableBytes = try Data(contentsOf: URL(fileURLWithPath: unreadable))
        try FileManager.default.removeItem(atPath: unreadable)
        try FileManager.default.createSymbolicLink(atPath: unreadable, withDestinationPath: "/nonexistent/gone.wav")
        let third = try Self.night(manifest, workdir)
        #expect(third.status == 3)
        #expect(third.list("removed") == [removed] && third.list("added") == [broken])
        let failed = third.sources["failed"] as? [[String: Any]] ?? []
        #expect(failed.contains { $0["path"] as? String == broken && !($0["reason"] as? String ?? "").isEmpty })
        #expect(failed.contains { $0["path"] as? String == unreadable && $0["stage"] as? String == "ingest" }, "\(failed)")
        try FileManager.default.removeItem(atPath: unreadable)
        try unreadableBytes.write(to: URL(fileURLWithPath: unreadable))
        #expect(!failed.contains { $0["path"] as? String == failedElsewhere }, "\(failed)")
        #expect(third.stageActions["audio"] == "ran" && third.stageActions["train"] == "ran")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.source(path: removed)?.status == .removed)
        let cache = TensorCache(workspace: Workspace(root: workdir), store: store)
        let kept = try cache.rows(key: removedSHA)
        #expect(!kept.isEmpty, "the removed source's log-mel stays until gc")

        // Night 4: the previous night had (say) far better metrics → exit 4, which wins over 3.
        let latest = "\(workdir)/nightly/\(third.report["run_id"] as! String).json"
        var doctored = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: latest))) as? [String: Any])
        doctored["metrics"] = (doctored["metrics"] as? [[String: Any]] ?? []).map { m in
            var m = m; m["current"] = 1.0; return m
        }
        try JSONSerialization.data(withJSONObject: doctored).write(to: URL(fileURLWithPath: latest))
        let fourth = try Self.night(manifest, workdir)
        #expect(fourth.status == 4, "\(fourth.report)")
        #expect(fourth.metrics.contains { $0["regressed"] as? Bool == true })

        // cache gc drops the removed source's record and nothing else.
        let audioBefore = try cache.rows(key: removedSHA).count
        let gc = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", manifest, "--workdir", workdir])
        #expect(gc.status == 0, "\(gc.stderr)")
        let audioAfter = try cache.rows(key: removedSHA).count
        #expect(audioBefore == 1 && audioAfter == 0)
        let live = Set(try store.sources(status: .ok).compactMap(\.sha256))
        let fingerprint = try #require(try store.stageState("audio")).parametersFingerprint
        #expect(try cache.keys(stage: "audio", fingerprint: fingerprint) == live)
        let verify = try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let after = try Self.night(manifest, workdir)
        #expect(after.stageActions["audio"] == "up to date", "gc kept every record in use")
        // Night 3's broken file still fails: not new, so not listed, but the report says where to look.
        #expect(after.status == 3 && (after.sources["failed"] as? [Any])?.isEmpty == true, "\(after.report)")
        let afterMarkdown = try String(contentsOfFile: "\(workdir)/nightly/\(after.report["run_id"] as! String).md", encoding: .utf8)
        #expect(afterMarkdown.contains("1 unit(s) fail in the stages' current outputs, 1 of them as before this report's period: "
                                       + "`emopipe sources --failed`"), "\(afterMarkdown)")

        // Another manifest in the same work directory is not compared with this one's nights.
        // A file in the reports folder that is no report is passed over in the search, not fatal.
        let other = folder + "/other-nightly.yaml"
        try FileManager.default.copyItem(atPath: manifest, toPath: other)
        try Data("not a report".utf8).write(to: URL(fileURLWithPath: workdir + "/nightly/zz-notes.json"))
        let elsewhere = try Self.night(other, workdir)
        #expect(elsewhere.status == 3 && elsewhere.report["error"] is NSNull, "the broken file of night 3 is still there: \(elsewhere.report)")
        #expect(elsewhere.report["exit_code"] as? Int == 3)
        #expect(elsewhere.report["previous_run_id"] is NSNull && elsewhere.metrics.allSatisfy { $0["previous"] is NSNull && $0["delta"] is NSNull }, "\(elsewhere.report)")
        let back = try Self.night(manifest, workdir)
        #expect(back.report["previous_run_id"] as? String == after.report["run_id"] as? String, "\(back.report)")
        // Newer than the baseline and unreadable, it is named: the comparison skipped a file that may have been the last night.
        for night in [elsewhere, back] {
            let passedOver = try #require(night.report["unreadable_reports"] as? [String], "\(night.report)")
            #expect(passedOver.count == 1 && passedOver[0].contains("/nightly/zz-notes.json") && passedOver[0].contains("unreadable"),
                    "\(passedOver)")
        }
        // A failure an in-between run recorded, of content since replaced by a good file, is not listed.
        try Data("RIFF still not audio, other bytes".utf8).write(to: URL(fileURLWithPath: broken))
        let failing = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--until", "audio"])
        #expect(failing.status == ExitStatus.partial, "\(failing.stderr)")
        try FileManager.default.removeItem(atPath: broken)
        try FileManager.default.copyItem(atPath: data + "/Actor_01/03-01-05-01-02-01-01.wav", toPath: broken)
        let fixed = try Self.night(manifest, workdir)
        #expect(fixed.status == 0 && (fixed.sources["failed"] as? [Any])?.isEmpty == true, "\(fixed.report)")
        #expect(fixed.list("changed") == [broken], "\(fixed.report)")

        // A damaged LATEST (a path out of the folder, or garbage) is passed over: the folder is searched.
        for latest in ["../emopipe.sqlite\n", "\u{0}\u{1}binary"] {
            try Data(latest.utf8).write(to: URL(fileURLWithPath: workdir + "/nightly/LATEST"))
            let next = try Self.night(manifest, workdir)
            #expect(next.report["error"] is NSNull && next.report["previous_run_id"] is String, "\(next.report)")
            #expect((next.report["unreadable_reports"] as? [Any])?.isEmpty == true, "the newest report reads; older junk is not news: \(next.report)")
        }
        // The same file unreadable again, for the same reason: its failure row is night 3's (rows are unique by
        // content and reason), yet it is a failure of this period too.
        try FileManager.default.removeItem(atPath: unreadable)
        try FileManager.default.createSymbolicLink(atPath: unreadable, withDestinationPath: "/nonexistent/gone.wav")
        let again = try Self.night(manifest, workdir)
        let failedAgain = again.sources["failed"] as? [[String: Any]] ?? []
        #expect(again.status == 3 && failedAgain.contains { $0["path"] as? String == unreadable && $0["stage"] as? String == "ingest" },
                "\(again.report)")
        // Its folder gone for a while (a run in between records it removed) and back as it was: failing at the
        // previous report already, for the same reason, it is no news.
        let actorFolder = (unreadable as NSString).deletingLastPathComponent
        try FileManager.default.moveItem(atPath: actorFolder, toPath: actorFolder + ".away")
        let without = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--until", "ingest"])
        #expect(without.status == 0 || without.status == ExitStatus.partial, "\(without.stderr)")
        try FileManager.default.moveItem(atPath: actorFolder + ".away", toPath: actorFolder)
        let returned = try Self.night(manifest, workdir)
        #expect(!(returned.sources["failed"] as? [[String: Any]] ?? []).contains { $0["path"] as? String == unreadable }, "\(returned.report)")
        #expect(returned.list("added").isEmpty && returned.list("removed").isEmpty && returned.list("changed").isEmpty, "\(returned.report)")
        let failingNow = returned.sources["failing"] as? [[String: Any]] ?? []
        #expect(failingNow.contains { $0["path"] as? String == unreadable && $0["stage"] as? String == "ingest" }, "every failing file is kept: \(returned.report)")
        // Gone at a report, it is news again when it comes back failing: that report did not find it failing.
        try FileManager.default.moveItem(atPath: actorFolder, toPath: actorFolder + ".away")
        let absent = try Self.night(manifest, workdir)
        #expect(!(absent.sources["failing"] as? [[String: Any]] ?? []).contains { $0["path"] as? String == unreadable }, "\(absent.report)")
        try FileManager.default.moveItem(atPath: actorFolder + ".away", toPath: actorFolder)
        let cameBack = try Self.night(manifest, workdir)
        #expect((cameBack.sources["failed"] as? [[String: Any]] ?? []).contains { $0["path"] as? String == unreadable }, "\(cameBack.report)")
    }
}

@Suite("nightly failure", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
struct NightlyFailureTests {
    /// A pipeline that fails (here: four folds over one actor) exits 1 and says why on stderr, where a
    /// scheduler's log looks, as well as in the report.
    @Test func aFailedPipelineNamesItsCauseOnStderrAndInTheReport() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 2), ("03-01-02-01-01-01-01.wav", 2)])
        let workdir = try TestSupport.temporaryFolder("nightly-failure")
        let result = try TestSupport.run(TestSupport.emopipe, [
            "nightly", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--json",
        ])
        #expect(result.status == ExitStatus.failure, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let cause = try #require(report["error"] as? String, "\(report)")
        #expect(cause.hasPrefix("split: ") && cause.contains("the data has 1 (01)"), "\(cause)")
        #expect(result.stderr.contains("emopipe: \(cause)\n"), "\(result.stderr)")
    }

    /// A reports folder that cannot be written is named before the night's work, not after it.
    @Test func anUnwritableReportsFolderIsRefusedBeforeAnythingRuns() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 2)])
        let workdir = try TestSupport.temporaryFolder("nightly-reports")
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: workdir + "/nightly"))
        let result = try TestSupport.run(TestSupport.emopipe, [
            "nightly", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
        ])
        #expect(result.status == ExitStatus.failure, "\(result.stderr)")
        #expect(result.stderr.contains("\(workdir)/nightly: is not a folder; nightly reports are written there"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")
    }

    /// LATEST is replaced after a night's work: one that cannot be (a folder) is named before that work.
    @Test func aLatestThatIsNoFileIsRefusedBeforeAnythingRuns() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 2)])
        let workdir = try TestSupport.temporaryFolder("nightly-latest")
        try FileManager.default.createDirectory(atPath: workdir + "/nightly/LATEST", withIntermediateDirectories: true)
        let result = try TestSupport.run(TestSupport.emopipe, [
            "nightly", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
        ])
        #expect(result.status == ExitStatus.failure, "\(result.stderr)")
        #expect(result.stderr.contains("\(workdir)/nightly/LATEST: is not a file"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "nothing ran")
    }
}

@Suite("training warnings", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
struct TrainingWarningTests {
    /// A fold whose training actors never act some emotion cannot learn it: the run says which.
    @Test func aClassNoTrainingClipShowsIsNamed() throws {
        var clips: [(name: String, seconds: Double)] = []
        for actor in ["01", "02", "03"] {
            for emotion in actor == "03" ? ["01", "02"] : ["01", "02", "03"] {
                clips += ["01", "02"].map { ("03-01-\(emotion)-01-01-\($0)-\(actor).wav", 1.5) }
            }
        }
        let data = try TestSupport.synthesizedSpeech(clips)
        let folder = try TestSupport.temporaryFolder("untaught")
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, """
        seed: 1
        threads: 2
        params:
          split: {test_actors: [1], val_actors: [2]}
          train: {epochs: 1, warmup_epochs: 0, audio_channels: [4], embedding: 8, recurrent: false, modalities: [audio], selection: last}
        """)
        let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "train", "--workdir", folder + "/work"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("fold 0: no training clip is happy, sad, angry, fearful, disgust, surprised (training actors 03), "
                                    + "so the model never learns them"), "\(run.stderr)")
    }
}
