import EmoCore
import EmoPipeline
@testable import EmoStages
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// Resource accounting and the manifest's memory budget, through the command line: every stage
/// execution records seconds, cpu_seconds and peak_rss_mb; a budget keeps the per-source stages'
/// recorded peak under it; training refuses a batch size that would not fit and names one that does.
@Suite("resources and budgets", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct ResourceBudgetTests {
    /// The budget of the test, MiB: above what the process needs with one clip in flight (measured
    /// 90 MB resident and ~23 MB per clip on a debug build), below what 8 threads reach without it
    /// (~148 MB; the test checks that the budget lowered the peak).
    static let budgetMB = 140

    /// Actor 01's audio-video clips only (hard links into `IngestFixture.materialized`, which no test ingests
    /// itself, so the change time a link moves is no one's change): the audio stage reads their sound, faces their picture.
    static func avRoot(clips: Int) throws -> String {
        let source = try IngestFixture.materialized.get()
        let root = try TestSupport.temporaryFolder("budget") + "/data"
        try FileManager.default.createDirectory(atPath: root + "/Actor_01", withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: source + "/Actor_01")
            .filter { $0.hasPrefix("01-") && $0.hasSuffix(".mp4") }.sorted().prefix(clips)
        for name in names { try FileManager.default.linkItem(atPath: source + "/Actor_01/" + name, toPath: root + "/Actor_01/" + name) }
        return root
    }

    static func manifest(data: String, _ fields: String) throws -> String {
        try TestSupport.writeManifest(at: try TestSupport.temporaryFolder("manifest") + "/m.yaml", data: data, fields)
    }

    /// `runs --json`'s stage executions that ran (state done), the newest of each stage, by name.
    static func recordedStages(_ workdir: String) throws -> [String: [String: Any]] {
        let runs = try TestSupport.run(TestSupport.emopipe, ["runs", "--json", "--workdir", workdir])
        #expect(runs.status == 0, "\(runs.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        var newest: [String: [String: Any]] = [:]
        for stage in list.flatMap({ $0["stages"] as? [[String: Any]] ?? [] }) where stage["state"] as? String == "done" {
            if let name = stage["stage"] as? String, newest[name] == nil { newest[name] = stage }
        }
        return newest
    }

    /// Runs ingest and audio, then faces (faces does not need audio), as two runs.
    static func runPerSourceStages(_ manifest: String, workdir: String, threads: Int) throws -> [String] {
        try ["audio", "faces"].map { until in
            let result = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", until, "--threads", "\(threads)",
                                                                   "--workdir", workdir])
            #expect(result.status == 0, "\(result.stderr)")
            return result.stderr
        }
    }

    static func peak(_ stage: [String: Any]?) throws -> Double { try #require(stage?["peak_rss_mb"] as? Double) }

    @Test func aBudgetKeepsTheRecordedPeakOfThePerSourceStagesUnderIt() throws {
        let data = try Self.avRoot(clips: 24)
        let perSource = ["ingest", "audio", "faces"]

        let unbounded = try TestSupport.temporaryFolder("work") + "/w"
        _ = try Self.runPerSourceStages(try Self.manifest(data: data, "threads: 2"), workdir: unbounded, threads: 8)
        let freeStages = try Self.recordedStages(unbounded)

        let bounded = try TestSupport.temporaryFolder("work") + "/w"
        let manifest = try Self.manifest(data: data, "threads: 2\nresources: {max_memory_mb: \(Self.budgetMB)}")
        let logs = try Self.runPerSourceStages(manifest, workdir: bounded, threads: 8)
        #expect(logs.allSatisfy { $0.contains("memory budget \(Self.budgetMB) MB") }, "each stage says what it learnt per unit")
        #expect(!logs.contains { $0.contains("over the memory budget") }, "kept to the budget: no warning")
        let stages = try Self.recordedStages(bounded)
        for name in perSource {
            let stage = try #require(stages[name], "\(name) recorded")
            let peak = try Self.peak(stage)
            #expect(peak > 10 && peak <= Double(Self.budgetMB), "\(name): peak \(peak) MB under a \(Self.budgetMB) MB budget")
            #expect((stage["seconds"] as? Double ?? -1) > 0 && (stage["cpu_seconds"] as? Double ?? -1) > 0, "\(stage)")
        }

        // The budget is what kept faces lower: 8 clips decoded at once without it peak higher.
        #expect(try Self.peak(stages["faces"]) < Self.peak(freeStages["faces"]), "\(stages["faces"] ?? [:]) \(freeStages["faces"] ?? [:])")

        // The same records with and without the budget: it schedules work, it changes no result.
        let digests = { (stages: [String: [String: Any]]) in perSource.map { stages[$0]?["output_digest"] as? String } }
        #expect(digests(stages) == digests(freeStages) && !digests(stages).contains(nil))

        // `status --json` shows what produced each stage's current output cost.
        let status = try TestSupport.run(TestSupport.emopipe, ["status", manifest, "--data", data, "--json", "--workdir", bounded])
        #expect(status.status == 0, "\(status.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
        for name in perSource {
            let row = try #require(rows.first { $0["stage"] as? String == name })
            #expect(row["peak_rss_mb"] as? Double == stages[name]?["peak_rss_mb"] as? Double, "\(row)")
            #expect(row["cpu_seconds"] as? Double == stages[name]?["cpu_seconds"] as? Double, "\(row)")
        }
        let never = try #require(rows.first { $0["stage"] as? String == "train" })
        #expect(never["peak_rss_mb"] is NSNull && never["seconds"] is NSNull, "a stage never run has no cost: \(never)")
    }

    /// A copy of the prepared training fixture's work directory, and a manifest of its settings with a memory budget.
    static func preparedCopy(budgetMB: Int) throws -> (manifest: String, workdir: String) {
        let (base, workdir) = try TrainEvaluateTests.copyOfPrepared()
        let text = try String(contentsOfFile: base, encoding: .utf8)
        let manifest = (base as NSString).deletingLastPathComponent + "/budget-\(budgetMB)-\(UUID().uuidString.prefix(6)).yaml"
        try (text + "\nresources: {max_memory_mb: \(budgetMB)}\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        return (manifest, workdir)
    }

    @Test func trainingRefusesABatchSizeThatDoesNotFitAndNamesOneThatDoes() throws {
        let (manifest, workdir) = try Self.preparedCopy(budgetMB: 160)
        // Planned first, while stages before train have work to do (the run below does it).
        let planned = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=512", "--workdir", workdir, "--dry-run"])
        #expect(planned.status == 0, "\(planned.stderr)")
        let big = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=512", "--workdir", workdir])
        #expect(big.status == ExitStatus.usage, "\(big.stderr)")
        // The batch size came from --set, the budget from the manifest: each is named where it was given.
        #expect(big.stderr.contains("--set: train.batch_size = 512")
                && big.stderr.contains("max_memory_mb = 160 (\(manifest))"), "\(big.stderr)")
        let said = try #require(big.stderr.range(of: #"the largest batch size that fits is (\d+)"#, options: .regularExpression),
                                "\(big.stderr)")
        let largest = try #require(Int(big.stderr[said].split(separator: " ").last ?? ""))
        #expect((1..<512).contains(largest))
        // Foretold as the run starts, before the stages ahead of train run (and by --dry-run), naming a size
        // at least as large (less is resident then, and this fixture's model has one branch: its cheapest);
        // not by a run of train alone, which refuses at once.
        for foretelling in [big, planned] {
            let forecast = try #require(foretelling.stderr.range(of: #"train\.batch_size = 512 \(batches of \d+: the most clips a fold trains on, judged by the file names\): training is estimated at \d+ MB or more \(the audio branch alone\), .* over resources\.max_memory_mb = 160: train will likely refuse it .*the largest batch size that fits is at most (\d+)"#,
                                                                 options: .regularExpression), "\(foretelling.stderr)")
            #expect(try #require(Int(foretelling.stderr[forecast].split(separator: " ").last ?? "")) >= largest, "\(foretelling.stderr)")
        }
        // Train caps a batch at a fold's training clips, and so does the forecast: a batch far past the clips that fits once
        // capped is not foretold as refused (4096 was, over this machine's memory, and then ran).
        let (roomy, roomyWork) = try Self.preparedCopy(budgetMB: 2000)
        let capped = try TestSupport.run(TestSupport.emopipe, ["run", roomy, "--set", "train.batch_size=4096", "--workdir", roomyWork, "--dry-run"])
        #expect(capped.status == 0 && !capped.stderr.contains("will likely refuse"), "\(capped.stderr)")
        let alone = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=512", "--only", "train", "--workdir", workdir])
        #expect(alone.status == ExitStatus.usage && !alone.stderr.contains("will likely refuse"), "\(alone.stderr)")

        // The size it names is accepted, and the run stays under the budget.
        let fits = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=\(largest)", "--until", "train",
                                                             "--workdir", workdir])
        #expect(fits.status == 0, "\(fits.stderr)")
        #expect(fits.stderr.contains("batch size \(largest): about"), "the estimate is logged: \(fits.stderr)")
        #expect(!fits.stderr.contains("will likely refuse"), "no forecast for a size that fits: \(fits.stderr)")
        // predict on that run, which exported nothing, is told the command that exports it with its own --set (it
        // advised the manifest alone, which trains another model).
        let fitted = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().first { $0.command.contains("batch_size=\(largest)") })
        let advice = try TestSupport.run(TestSupport.emopipe, ["predict", "--workdir", workdir, "--run", fitted.id, manifest])
        #expect(advice.status == 1 && advice.stderr.contains("`emopipe run \(manifest) --until export --set train.batch_size=\(largest) --workdir \(workdir)`"),
                "\(advice.stderr)")
        // With every stage before train up to date, nothing runs before it: train refuses at once, unforetold.
        let upToDate = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=512", "--workdir", workdir])
        #expect(upToDate.status == ExitStatus.usage && upToDate.stderr.contains("the largest batch size that fits is")
                && !upToDate.stderr.contains("will likely refuse"), "\(upToDate.stderr)")
        // The plan runs nothing, so it says what train, the first stage to run, would refuse at once.
        let plannedUpToDate = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=512", "--workdir", workdir, "--dry-run"])
        #expect(plannedUpToDate.status == 0 && plannedUpToDate.stderr.contains("train will likely refuse"), "\(plannedUpToDate.stderr)")
        #expect(try Self.peak(try Self.recordedStages(workdir)["train"]) <= 160)
    }

    /// Features that alone would not fit the budget are refused before any is read, naming their size (the cache
    /// index's) and the settings that make them, not a batch size: reading first held gigabytes under a 256 MB budget.
    @Test func featuresLargerThanTheBudgetAreRefusedBeforeTheyAreRead() throws {
        let (manifest, workdir) = try Self.preparedCopy(budgetMB: 160)
        // Eight times the frames of the defaults: about 140 MB of log-mels, held twice while read (the shards mapped
        // and the copies), with the process's own resident memory.
        let fine = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "audio.hop_length=20", "--workdir", workdir])
        #expect(fine.status == ExitStatus.usage && !fine.signaled, "\(fine.status) \(fine.stderr)")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let audio = try #require(try store.stageState(.audio))
        let bytes = try store.read { db in
            try Int.fetchOne(db, sql: "SELECT SUM(dataLength) FROM cacheRecord WHERE stage = 'audio' AND fingerprint = ?",
                             arguments: [audio.parametersFingerprint]) ?? 0
        }
        let megabytes = String(format: "%.0f", Double(bytes) / 1_048_576)
        #expect(fine.stderr.contains("resources.max_memory_mb = 160: the 180 cached feature records train reads are \(megabytes) MB, held twice while they are read (the shards mapped, and the copies): with what is resident"),
                "\(fine.stderr)")
        #expect(fine.stderr.contains("coarser features (audio.hop_length, audio.n_mels, audio.frames)") && !fine.stderr.contains("batch_size"),
                "\(fine.stderr)")
    }

    /// No batch holds more clips than the largest fold trains on, so a batch size above that is estimated
    /// as that many clips: the same memory as a batch of exactly the fold's clips, never refused for more.
    @Test func aBatchSizeAboveTheTrainingClipsIsEstimatedAtTheClips() throws {
        let (manifest, workdir) = try Self.preparedCopy(budgetMB: 100000)
        func estimate(_ batch: Int) throws -> (clips: Int?, megabytes: String) {
            let run = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.batch_size=\(batch)", "--until", "train",
                                                                "--workdir", workdir])
            #expect(run.status == 0, "\(run.stderr)")
            let line = try #require(run.stderr.split(separator: "\n").first { $0.contains("batch size \(batch)") && $0.contains("MB estimated") },
                                    "\(run.stderr)")
            func number(after prefix: String) -> String? {
                line.range(of: prefix).map { String(line[$0.upperBound...].prefix { $0.isNumber }) }
            }
            let clips = line.contains("clips, the largest fold's") ? number(after: "(at most ").flatMap { Int($0) } : nil
            return (clips, try #require(number(after: "): about ") ?? number(after: ": about ")))
        }
        let above = try estimate(4096)
        let clips = try #require(above.clips, "the estimate says it is capped at the fold's clips")
        #expect(clips < 4096)
        let exact = try estimate(clips)
        #expect(exact.clips == nil && exact.megabytes == above.megabytes, "\(above) vs \(exact)")
    }

    /// Without a budget the machine's memory is one: parameters each within range whose model could
    /// not be trained here (about 23 GB of activations per sample, 4,096 samples a batch) are refused
    /// before training, naming what to change, never a crash.
    @Test func trainingRefusesAModelLargerThanTheMachine() throws {
        let (manifest, workdir) = try TrainEvaluateTests.copyOfPrepared()
        let huge = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--set", "train.audio_channels=[1024]",
                                                             "--set", "train.window_frames=10000", "--set", "train.batch_size=4096",
                                                             "--set", "train.modalities=[audio]", "--workdir", workdir])
        #expect(huge.status == ExitStatus.usage && !huge.signaled, "\(huge.status) \(huge.stderr)")
        #expect(huge.stderr.contains("exceeds this machine's"), "\(huge.stderr)")
        // Which key is named depends on the machine: the batch size when a smaller one fits, else the model.
        let namesBatch = huge.stderr.contains("--set: train.batch_size = 4096") && huge.stderr.contains("the largest batch size that fits is")
        let namesModel = huge.stderr.contains("--set: train.audio_channels = [1024]") && huge.stderr.contains("not even batch size 2 fits")
        #expect(namesBatch || namesModel, "\(huge.stderr)")
        // Recorded with the status the process exits with (it was 1 while the process exited 64).
        let recorded = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs().first)
        #expect(recorded.status == .failed && recorded.exitCode == Int(huge.status), "\(recorded.status) \(String(describing: recorded.exitCode))")
    }

    @Test func threadsOnTheCommandLineAreCheckedAndRecorded() throws {
        let data = try Self.avRoot(clips: 2)
        let manifest = try Self.manifest(data: data, "threads: 2")
        let workdir = try TestSupport.temporaryFolder("work") + "/w"
        let bad = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "ingest", "--threads", "0", "--workdir", workdir])
        #expect(bad.status == ExitStatus.usage && bad.stderr.contains("--threads 0"), "\(bad.stderr)")
        let good = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--until", "ingest", "--threads", "3", "--workdir", workdir])
        #expect(good.status == 0, "\(good.stderr)")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.runs().first?.threads == 3)
    }
}

/// The budget's arithmetic, without data.
@Suite("memory budget overrun")
struct BudgetOverrunTests {
    /// A stage that went over its budget although units ran one at a time says so, with the figures;
    /// one that kept to it says nothing.
    @Test func aBudgetOverrunIsSaid() {
        var over = InFlightLimit(budget: 64 << 20, threads: 2)
        over.learn(peak: 94 << 20, resident: 76 << 20, workers: 1)
        over.learn(peak: 100 << 20, resident: 60 << 20, workers: 2)   // two at once, 20 MB each: the peak batch is this one
        #expect(over.overrun == "resident memory reached 100 MB, over the memory budget of 64 MB, with units run one at a time when they "
                + "did not fit (about 20.0 MB per unit; 60 MB were resident before that batch): raise resources.max_memory_mb")
        var within = InFlightLimit(budget: 128 << 20, threads: 2)
        within.learn(peak: 94 << 20, resident: 76 << 20, workers: 1)
        #expect(within.overrun == nil && InFlightLimit(budget: nil, threads: 2).overrun == nil)
    }

    /// Training that went over the budget its estimate kept to says so, with the estimate; within it, or
    /// without a budget, nothing.
    @Test func aTrainingOverrunIsSaid() {
        let estimated = (needed: 1860 << 20, resident: 94 << 20)
        #expect(TrainParameters.overrun(peak: 2123 << 20, resources: ResourceSettings(maxMemoryMB: 2000), estimated: estimated, batchSize: 18,
                                        featureBytes: 700 << 20)
                == "resident memory reached 2123 MB, over resources.max_memory_mb = 2000, though batch size 18 was estimated at "
                + "1860 MB on 94 MB resident; the features it read are 700 MB, held twice while read: lower train.batch_size, "
                + "use coarser features (audio.hop_length, audio.n_mels, faces.frames, faces.size) or raise the budget")
        #expect(TrainParameters.overrun(peak: 1325 << 20, resources: ResourceSettings(maxMemoryMB: 2000), estimated: estimated, batchSize: 12, featureBytes: 0) == nil)
        #expect(TrainParameters.overrun(peak: 2123 << 20, resources: ResourceSettings(), estimated: estimated, batchSize: 18, featureBytes: 0) == nil)
        #expect(TrainParameters.overrun(peak: nil, resources: ResourceSettings(maxMemoryMB: 2000), estimated: estimated, batchSize: 18, featureBytes: 0) == nil)
        // Evaluate and export read the features too, and say so the same way.
        #expect(FeatureSet.overrun(peak: 2123 << 20, resources: ResourceSettings(maxMemoryMB: 2000), featureBytes: 1000 << 20)
                == "resident memory reached 2123 MB, over resources.max_memory_mb = 2000; the features it read are 1000 MB, held twice while read: "
                + "use coarser features (audio.hop_length, audio.n_mels, faces.frames, faces.size) or raise the budget")
        #expect(FeatureSet.overrun(peak: 1900 << 20, resources: ResourceSettings(maxMemoryMB: 2000), featureBytes: 1000 << 20) == nil)
    }
}
