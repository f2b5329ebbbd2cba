import EmoCore
@testable import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing
import Yams

@Suite("sweep blocks")
struct SweepSpecTests {
    static func manifest(_ sweep: String) throws -> Manifest {
        try Manifest.parse(yaml: "name: s\nsweep:\n" + sweep.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n",
                           path: "/tmp/m/s.yaml")
    }

    static func refusal(_ sweep: String) -> String {
        do { _ = try manifest(sweep); return "" } catch { return "\(error)" }
    }

    @Test func aGridValueGivenTwiceIsRefused() {
        #expect(Self.refusal("metric: weighted_f1\ngrid: {train.dropout: [0.1, 0.2, 1.0e-1]}").contains("sweep.grid.train.dropout lists 0.1 more than once"))
        #expect(Self.refusal("metric: weighted_f1\ngrid: {train.epochs: [3, 3.0]}").contains("lists 3.0 more than once"))
        #expect(Self.refusal("metric: weighted_f1\ngrid: {train.modalities: [[audio], [audio, faces]]}").isEmpty)
        #expect(Self.refusal("metric: weighted_f1\ngrid: {train.seed_like: [9007199254740992, 9007199254740993]}").isEmpty,
                "whole numbers past 2^53 stay apart")
    }

    /// A sweep's state is keyed by what its trials' results depend on: `--threads` with another count
    /// than the file gives (not in the manifest's text) is another sweep, whose trials are not "finished before".
    @Test func theThreadCountJoinsTheSweepsIdentity() throws {
        var manifest = try Self.manifest("metric: weighted_f1\ngrid: {train.dropout: [0.1]}")
        let asWritten = SweepRunner.sweepId(manifest)
        manifest.threads += 1
        #expect(SweepRunner.sweepId(manifest) == asWritten, "the file's own count (or this machine's) keeps the id: workers and merge agree")
        manifest.threadsOverride = 1
        #expect(SweepRunner.sweepId(manifest) != asWritten)
        #expect(asWritten.hasPrefix("s-"))
    }

    /// The sweep's folder starts with the manifest's name: 64 characters of it, unless they take more
    /// bytes than a file name leaves (84 Devanagari code points in 14 clusters took 252, and the folder
    /// could not be made); an ASCII or short name keeps the id it had.
    @Test func aSweepFolderNameFitsAFileNameWhateverTheManifestIsCalled() throws {
        for name in [String(repeating: "प्रयोग", count: 14), String(repeating: "𝔸", count: 64), String(repeating: "e\u{301}", count: 200),
                     "a" + String(repeating: "\u{301}", count: 300), String(repeating: "x", count: 300)] {
            var manifest = try Self.manifest("metric: weighted_f1\ngrid: {train.dropout: [0.1]}")
            manifest.name = name
            let id = SweepRunner.sweepId(manifest)
            let worker = Workspace(root: "/w").sweepWorker(sweepId: id, index: WorkerSlice.maximumCount - 1, count: WorkerSlice.maximumCount)
            #expect((worker.root as NSString).lastPathComponent.utf8.count <= 255, "\(id.utf8.count) bytes, a worker's folder too")
            #expect(id.count >= 13 && id.dropLast(13).count <= 64 && (name.hasPrefix(id.dropLast(13)) || id.dropLast(13) == "sweep"))
            #expect(SweepRunner.isSweepId(id), "a worker's marker naming it is merged: \(id)")
        }
        for stray in ["../x-0123456789ab", "a/b-0123456789ab", "x-0123456789AB", "x-０123456789ab", "0123456789ab", "x 0123456789ab", "x.y-0123456789ab"] {
            #expect(!SweepRunner.isSweepId(stray), "\(stray)")
        }
        #expect(SweepRunner.folderNamePart("ab c/d") == "ab_c_d")
        #expect(SweepRunner.folderNamePart(String(repeating: "प्रयोग", count: 5)) == String(repeating: "प्रयोग", count: 5), "a short name is whole")
        #expect(SweepRunner.folderNamePart(String(repeating: "y", count: 70)) == String(repeating: "y", count: 64))
        #expect(SweepRunner.folderNamePart(String(repeating: "𝔸", count: 64)).utf8.count == 200)
        // Nothing left: one character (a letter with 300 combining marks) past the byte limit. Emoji keep their
        // underscores, so that sweeps made before keep their folders.
        #expect(SweepRunner.folderNamePart("a" + String(repeating: "\u{301}", count: 300)) == "sweep")
        #expect(SweepRunner.folderNamePart("😀😀") == "__")
        #expect(SweepRunner.folderNamePart("😀 run 2") == "__run_2")
    }

    @Test func aGridIsEveryCombinationInKeyOrderTheLastKeyFastest() throws {
        let spec = try #require(try Self.manifest("""
            metric: weighted_f1
            strategy: grid
            grid: {train.learning_rate: [0.001, 0.003], train.dropout: [0.1, 0.3, 0.5]}
            """).sweep)
        #expect(spec.direction == .maximize, "maximize is the default")
        let trials = try spec.trials()
        #expect(trials.map(\.index) == Array(0..<6))
        let pairs = trials.map { trial in trial.settings.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
        #expect(pairs == ["train.dropout=0.1 train.learning_rate=0.001", "train.dropout=0.1 train.learning_rate=0.003",
                          "train.dropout=0.3 train.learning_rate=0.001", "train.dropout=0.3 train.learning_rate=0.003",
                          "train.dropout=0.5 train.learning_rate=0.001", "train.dropout=0.5 train.learning_rate=0.003"])
        #expect(trials[1].overrides == [ParameterOverride(stage: "train", key: "dropout", value: .double(0.1)),
                                        ParameterOverride(stage: "train", key: "learning_rate", value: .double(0.003))])
    }

    @Test func randomDrawsAreSeededAndStayInTheirRanges() throws {
        let block = """
            metric: macro_f1
            direction: maximize
            strategy: random
            random: {n_trials: 50, seed: SEED, params: {train.learning_rate: {distribution: log_uniform, low: 1.0e-4, high: 1.0e-2},
                     train.dropout: {distribution: uniform, low: 0.1, high: 0.5}, train.embedding: {distribution: int_uniform, low: 8, high: 12},
                     train.batch_size: {distribution: choice, values: [16, 32]}}}
            """
        let a = try #require(try Self.manifest(block.replacingOccurrences(of: "SEED", with: "1")).sweep).trials()
        let again = try #require(try Self.manifest(block.replacingOccurrences(of: "SEED", with: "1")).sweep).trials()
        let other = try #require(try Self.manifest(block.replacingOccurrences(of: "SEED", with: "2")).sweep).trials()
        #expect(a.count == 50 && a == again)
        #expect(a != other, "another seed draws other trials")
        func values(_ key: String) -> [ParamValue] { a.compactMap { $0.settings.first { $0.key.description == key }?.value } }
        let rates = values("train.learning_rate").compactMap(\.doubleValue)
        #expect(rates.count == 50 && rates.allSatisfy { (1e-4...1e-2).contains($0) })
        // Log-uniform: about half the draws below the geometric middle (1e-3), not a tenth.
        #expect((15...35).contains(rates.filter { $0 < 1e-3 }.count), "\(rates)")
        #expect(values("train.dropout").compactMap(\.doubleValue).allSatisfy { (0.1...0.5).contains($0) })
        let embeddings = values("train.embedding").compactMap(\.intValue)
        #expect(embeddings.count == 50 && Set(embeddings) == Set(8...12), "whole numbers, both ends included")
        #expect(Set(values("train.batch_size")) == [.int(16), .int(32)])
    }

    @Test func halvingNeedsRisingBudgetsAndCandidates() throws {
        let spec = try #require(try Self.manifest("""
            metric: weighted_f1
            strategy: halving
            halving: {budgets: [2, 4, 8]}
            random: {n_trials: 8, seed: 1, params: {train.dropout: {distribution: uniform, low: 0.1, high: 0.5}}}
            """).sweep)
        let count = try spec.trials().count
        #expect(spec.halving?.budgets == [2, 4, 8] && count == 8)
        #expect(Self.refusal("""
            metric: weighted_f1
            strategy: halving
            halving: {budgets: [4, 2]}
            random: {n_trials: 8, seed: 1, params: {train.dropout: {distribution: uniform, low: 0.1, high: 0.5}}}
            """).contains("sweep.halving.budgets = [4,2]"))
        #expect(Self.refusal("""
            metric: weighted_f1
            strategy: halving
            halving: {budgets: [2, 4]}
            grid: {train.epochs: [3, 6]}
            """).contains("train.epochs"))
    }

    @Test func badBlocksAreRefusedNamingTheField() {
        let cases: [(String, String)] = [
            ("metric: weighted_f1\nstrategy: grid", "sweep.strategy = grid needs a sweep.grid block"),
            ("metric: weighted_f1\nstrategy: bayes\ngrid: {train.dropout: [0.1]}", "sweep.strategy = \"bayes\": expected one of grid, random, halving"),
            ("metric: weighted_f1\ndirection: up\ngrid: {train.dropout: [0.1]}", "sweep.direction"),
            ("strategy: grid\ngrid: {train.dropout: [0.1]}", "sweep.metric is missing: expected the name of a scalar of metrics.json"),
            ("metric: 3\ngrid: {train.dropout: [0.1]}", "sweep.metric = 3: expected the name of a scalar"),
            ("metric: count\ngrid: {train.dropout: [0.1]}", "sweep.metric = \"count\" is a count or a setting of metrics.json, the same for every trial"),
            ("metric: confidence_interval.level\ngrid: {train.dropout: [0.1]}", "sweep.metric = \"confidence_interval.level\" is a count or a setting"),
            ("metric: cv.folds\ngrid: {train.dropout: [0.1]}", "not a score to rank them on"),
            ("metric: m\nstrategy: halving\nhalving: {}\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}",
             "sweep.halving.budgets is missing: expected 2 to"),
            ("metric: m\nstrategy: halving\nhalving: {budgets: [1, 2], eta: 3}\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}",
             "sweep.halving: unknown field 'eta' (known: budgets)"),
            ("metric: m\nstrategy: random\nrandom: {params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}", "sweep.random.n_trials is missing: expected an integer"),
            ("metric: weighted_f1\ngrid: {dropout: [0.1]}", "sweep key 'dropout': expected stage.key"),
            ("metric: weighted_f1\ngrid: {train.dropout: []}", "sweep.grid.train.dropout must be a non-empty list"),
            ("metric: weighted_f1\ngrid: {train.dropout: [0.1]}\ntrials: 3", "sweep: unknown field 'trials'"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, seed: 18446744073709551615, params: {train.dropout: {distribution: uniform, low: 0, high: 0.5}}}",
             "sweep.random.seed = 1.8446744073709552e+19: expected an integer from 0 to 9223372036854775807"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 0, params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}", "sweep.random.n_trials = 0"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 1, high: 0}}}", "uniform needs low ≤ high (got 1.0 > 0.0)"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0.1}}}", "uniform needs 'high'"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0.1, high: .nan}}}",
             "train.dropout.high = nan: uniform needs a finite number"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.embedding: {distribution: int_uniform, low: \"1\", high: 3}}}",
             "train.embedding.low = \"1\": int_uniform needs a whole number"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.learning_rate: {distribution: log_uniform, low: 0, high: 1}}}", "log_uniform needs low > 0"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: -1.0e308, high: 1.0e308}}}",
             "uniform from -1e+308 to 1e+308 spans more than a 64-bit float holds"),
            // A block the strategy does not read would look like part of the sweep and change nothing.
            ("metric: m\nstrategy: grid\ngrid: {train.dropout: [0.1]}\nhalving: {budgets: [1, 2]}",
             "sweep.strategy = grid does not read sweep.halving, so it would change nothing: remove it"),
            ("metric: m\nstrategy: random\ngrid: {train.dropout: [0.1]}\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}",
             "sweep.strategy = random does not read sweep.grid"),
            ("metric: m\nstrategy: halving\nhalving: {budgets: [1, 2]}\ngrid: {train.dropout: [0.1]}\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}",
             "sweep.strategy = halving draws its candidates from sweep.random, so sweep.grid beside it would change nothing"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.embedding: {distribution: int_uniform, low: -9223372036854775807, high: 9223372036854775807}}}",
             "int_uniform from -9223372036854775807 to 9223372036854775807 spans more than a 64-bit integer holds"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.batch_size: {distribution: gauss}}}", "must be {distribution: choice|int_uniform|log_uniform|uniform"),
            ("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.batch_size: {distribution: choice, values: [1], low: 2}}}", "unknown field 'low' for choice"),
        ]
        for (block, expected) in cases {
            let message = Self.refusal(block)
            #expect(message.contains(expected) && message.contains("/tmp/m/s.yaml"), "\(block) → \(message)")
        }
    }

    /// A random search never runs the same settings twice, and asking for more trials than the
    /// distributions can tell apart is refused with the number they hold.
    @Test func randomTrialsAreDistinctAndBoundedByTheirSpace() throws {
        let spec = try #require(try Self.manifest("""
            metric: m
            strategy: random
            random: {n_trials: 6, seed: 4, params: {train.batch_size: {distribution: choice, values: [16, 32, 16]},
                     train.embedding: {distribution: int_uniform, low: 1, high: 3}}}
            """).sweep)
        let trials = try spec.trials()
        let settings = trials.map { $0.settings.map(\.value.canonicalJSON) }
        #expect(trials.count == 6 && Set(settings).count == 6, "every one of the 2 × 3 settings once: \(settings)")
        #expect(trials.map(\.index) == Array(0..<6))
        #expect(Self.refusal("""
            metric: m
            strategy: random
            random: {n_trials: 7, seed: 4, params: {train.batch_size: {distribution: choice, values: [16, 32, 16]},
                     train.embedding: {distribution: int_uniform, low: 1, high: 3}}}
            """).contains("sweep.random.n_trials = 7: the distributions hold only 6 distinct settings"))
        #expect(Self.refusal("metric: m\nstrategy: random\nrandom: {n_trials: 2, params: {train.dropout: {distribution: uniform, low: 0.3, high: 0.3}}}")
                    .contains("hold only 1 distinct setting;"))
        // Infinities of either sign are two values (JSON spells neither, and they were counted as one): the trials'
        // own check then names what is wrong with them.
        let infinities = try #require(try Self.manifest("""
            metric: m
            strategy: random
            random: {n_trials: 2, params: {train.dropout: {distribution: choice, values: [.inf, -.inf]}}}
            """).sweep)
        #expect(try infinities.trials().count == 2)
        let nested = try #require(try Self.manifest("""
            metric: m
            strategy: random
            random: {n_trials: 2, params: {train.channels: {distribution: choice, values: [[.inf], [-.inf]]}}}
            """).sweep)
        #expect(try nested.trials().count == 2, "inside a list too")
    }

    /// Draws are rounded to 4 significant digits: a range holds as many settings as it has such values
    /// (unbounded when an end is not one of them, as draws rounding out of the range are kept as drawn).
    @Test func roundedRangesHoldAsManySettingsAsTheirFourDigitValues() throws {
        typealias D = SweepSpec.Distribution
        #expect(D.roundedValues(from: 0.1, to: 0.3) == 2001)
        #expect(D.roundedValues(from: -0.3, to: -0.1) == 2001)
        #expect(D.roundedValues(from: 0.1, to: 0.1001) == 2)
        #expect(D.roundedValues(from: 1, to: 10) == 9001)
        #expect(D.roundedValues(from: 0.5, to: 0.5) == 1)
        #expect(D.roundedValues(from: 0.1, to: 0.1000001).isInfinite)
        #expect(D.roundedValues(from: -1, to: 1).isInfinite)
        #expect(Self.refusal("metric: m\nstrategy: random\nrandom: {n_trials: 2002, params: {train.dropout: {distribution: uniform, low: 0.1, high: 0.3}}}")
                    .contains("the distributions hold only 2001 distinct settings"))
        #expect(Self.refusal("metric: m\nstrategy: random\nrandom: {n_trials: 3, params: {train.dropout: {distribution: log_uniform, low: 0.1, high: 0.1001}}}")
                    .contains("the distributions hold only 2 distinct settings"))
        let all = try #require(try Self.manifest("""
            metric: m
            strategy: random
            random: {n_trials: 2001, seed: 1, params: {train.dropout: {distribution: uniform, low: 0.1, high: 0.3}}}
            """).sweep)
        #expect(try all.trials().count == 2001, "every 4-digit value is drawn")
    }

    /// The sweep compares trials on the same test clips: a split key that changes them is no sweep axis.
    @Test func aSplitKeyIsNoSweepAxis() throws {
        for block in ["strategy: grid\ngrid: {split.test_actors: [[1], [2]]}",
                      "strategy: random\nrandom: {n_trials: 2, params: {split.folds: {distribution: int_uniform, low: 3, high: 5}}}"] {
            let refused = Self.refusal("metric: m\n" + block)
            #expect(refused.contains("sweeps split.") && refused.contains("their metrics do not compare"), "\(refused)")
        }
        // Validation actors change what selects the epoch, not the clips scored.
        #expect(Self.refusal("metric: m\nstrategy: grid\ngrid: {split.val_count: [1, 2]}") == "")
    }

    @Test func drawsNearTheEndsOfTheNumbersStayFinite() throws {
        let spec = try #require(try Self.manifest("""
            metric: m
            strategy: random
            random: {n_trials: 20, seed: 5, params: {train.a: {distribution: log_uniform, low: 1.0e-320, high: 1.0e-310},
                     train.b: {distribution: int_uniform, low: -9223372036854775807, high: 0}}}
            """).sweep)
        for trial in try spec.trials() {
            let a = try #require(trial.settings[0].value.doubleValue)
            #expect(a.isFinite && a > 0 && a <= Double("1e-310")!, "\(a)")
            let b = try #require(trial.settings[1].value.intValue)
            #expect(b <= 0)
        }
    }

    @Test func roundedDrawsStayInsideANarrowRange() throws {
        // Four significant digits would give 0.9999 or 1.0 here, both outside the range.
        let spec = try #require(try Self.manifest("""
            metric: m
            strategy: random
            random: {n_trials: 40, seed: 3, params: {train.dropout: {distribution: uniform, low: 0.99991, high: 0.99999},
                     train.learning_rate: {distribution: log_uniform, low: 1.00001e-3, high: 1.00009e-3}}}
            """).sweep)
        for trial in try spec.trials() {
            let dropout = try #require(trial.settings[0].value.doubleValue)
            let rate = try #require(trial.settings[1].value.doubleValue)
            #expect((0.99991...0.99999).contains(dropout), "\(dropout)")
            #expect((1.00001e-3...1.00009e-3).contains(rate), "\(rate)")
        }
    }

    @Test func aSeedOfTheWrongTypeIsRefusedNotReadAsZero() {
        for seed in ["\"abc\"", "1.5", "-3", "[1]"] {
            let message = Self.refusal("metric: m\nstrategy: random\nrandom: {n_trials: 2, seed: \(seed), params: {train.dropout: {distribution: uniform, low: 0, high: 1}}}")
            #expect(message.contains("/tmp/m/s.yaml") && message.contains("sweep.random.seed"), "\(seed) → \(message)")
        }
    }

    @Test func aHugeGridIsRefusedBeforeAnyTrialIsMade() throws {
        let values = "[" + (1...100).map(String.init).joined(separator: ", ") + "]"
        // 100^3 = 10^6 combinations: refused when the manifest is read, naming it.
        let message = Self.refusal("metric: m\ngrid: {train.a: \(values), train.b: \(values), train.c: \(values)}")
        #expect(message.contains("/tmp/m/s.yaml") && message.contains("sweep.grid has 100 × 100 × 100 trials; at most 10000"), "\(message)")
        let largest = "[" + (1...100).map(String.init).joined(separator: ", ") + "]"
        let spec = try #require(try Self.manifest("metric: m\ngrid: {train.a: \(largest), train.b: \(largest)}").sweep)
        #expect(try spec.trials().count == 10_000, "exactly the limit is allowed")
    }

    @Test func theKubernetesSweepJobGivesEveryWorkerATrial() throws {
        let (manifest, spec, command) = try DeploymentFilesTests.indexedJob(TestSupport.repositoryRoot + "/pipelines/deploy/sweep/sweep-workers.yaml")
        #expect(spec["completionMode"] as? String == "Indexed" && manifest.workers == spec["completions"] as? Int)
        let trials = try #require(manifest.sweep).trials()
        #expect(trials.count >= manifest.workers ?? .max, "no worker is left without a trial")
        #expect(command.contains("emopipe sweep /config/manifest.yaml --worker env"))
    }

    @Test func theShippedSweepManifestsParse() throws {
        for name in ["sweep-demo", "sweep-halving-demo"] {
            let manifest = try Manifest.load(path: TestSupport.repositoryRoot + "/manifests/\(name).yaml")
            let sweep = try #require(manifest.sweep)
            #expect(try sweep.trials().count == (name == "sweep-demo" ? 4 : 8))
        }
    }
}

@Suite("sweep leaderboard")
struct SweepLeaderboardTextTests {
    @Test func aTrialNotRunYetShowsNoSeconds() throws {
        let key = try SweepKey(parsing: "train.learning_rate") { PipelineError.invalidFile($0) }
        func entry(_ index: Int, _ status: SweepStatus, _ metric: Double?, _ seconds: Double) -> SweepLeaderboard.Entry {
            .init(trial: SweepTrial(index: index, settings: [(key, .double(0.001 * Double(index + 1)))]),
                  status: status, metric: metric, seconds: seconds, run: nil, epochs: nil, reason: nil)
        }
        let board = SweepLeaderboard(sweep: "s", metric: "weighted_f1", direction: .maximize,
                                     entries: [entry(0, .done, 0.5, 12.34), entry(1, .pending, nil, 0), entry(2, .interrupted, nil, 3.5), entry(3, .running, nil, 0)],
                                     best: 0)
        let rows = board.text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let byTrial = Dictionary(rows.filter { $0.count > 4 && Int($0[0]) != nil }.map { ($0[1], $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byTrial["0"]?[4] == "12.3")
        #expect(byTrial["1"]?[2] == "pending" && byTrial["1"]?[4] == "-", "\(board.text)")
        // An interrupted trial ran for a while: its time is shown.
        #expect(byTrial["2"]?[4] == "3.5", "\(board.text)")
        // A trial being trained for the first time has no time of its own yet either.
        #expect(byTrial["3"]?[2] == "running" && byTrial["3"]?[4] == "-", "\(board.text)")
    }
}

@Suite("sweep merge")
struct SweepMergeLockTests {
    /// A sweep of the same manifest running in WORKDIR holds its sweep lock and rewrites state.json
    /// after every trial: merge must wait for it (exit 75), not write the state file underneath it.
    @Test func mergeRefusesWhileTheMainSweepRuns() throws {
        let folder = try TestSupport.temporaryFolder("sweep-merge-lock")
        let main = Workspace(root: folder + "/work")
        let worker = main.workersRoot + "/sweep-s-0123456789ab-0-of-2"
        try FileManager.default.createDirectory(atPath: worker, withIntermediateDirectories: true)
        try Data("s-0123456789ab 0/2\n".utf8).write(to: URL(fileURLWithPath: Workspace(root: worker).sweepWorkerMarkerPath))
        try FileManager.default.createDirectory(atPath: main.path("sweeps/s-0123456789ab"), withIntermediateDirectories: true)
        let running = try WorkDirectoryLock.acquire(path: main.path("sweeps/s-0123456789ab/sweep.lock"), holder: "emopipe sweep (pid 1)")
        defer { running.release() }
        do {
            _ = try SweepMerge(main: main).merge(worker)
            Issue.record("merge went on while the sweep held its lock")
        } catch let error as PipelineError {
            #expect(error == .locked(holder: "emopipe sweep (pid 1)"), "\(error)")
        }
    }

    /// Sweep workers started together each hold the main lock while they copy the database: one that
    /// finds another worker copying waits for it (it was refused with exit 75, and its trials were lost to
    /// the merge); any other holder is refused at once, and a copy that never ends is waited for no longer
    /// than the patience.
    @Test func aSweepWorkerWaitsForAnotherWorkersCopyOnly() throws {
        let main = Workspace(root: try TestSupport.temporaryFolder("sweep-lock") + "/work")
        try Folder.create(main.root)
        final class Held: @unchecked Sendable { var lock: WorkDirectoryLock?; init(_ lock: WorkDirectoryLock) { self.lock = lock } }
        let copying = Held(try main.lock(holder: "emopipe sweep worker 0/2 \(SweepWorker.copyingTheDatabase) (pid 1)"))
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.4) { copying.lock?.release() }
        let started = Date()
        let lock = try SweepWorker.lockWaitingForSiblings(main, holder: "emopipe sweep worker 1/2 \(SweepWorker.copyingTheDatabase) (pid 2)")
        #expect(Date().timeIntervalSince(started) >= 0.3)
        lock.release()

        let stuck = try main.lock(holder: "emopipe sweep worker 0/2 \(SweepWorker.copyingTheDatabase) (pid 1)")
        #expect(throws: PipelineError.self) { try SweepWorker.lockWaitingForSiblings(main, holder: "w", patience: 0.2) }
        stuck.release()
        let running = try main.lock(holder: "emopipe run 20261205-000000-abcdef (pid 3)")
        let started2 = Date()
        let refused = try #require(throws: PipelineError.self) { try SweepWorker.lockWaitingForSiblings(main, holder: "w") }
        #expect(refused == .locked(holder: "emopipe run 20261205-000000-abcdef (pid 3)") && Date().timeIntervalSince(started2) < 5, "\(refused)")
        running.release()
    }
}
