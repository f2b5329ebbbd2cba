import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import GRDB
import Testing

/// What a run records about itself (`runs`), and whether `reproduce` and `diff` tell the truth,
/// on the tiny three-actor training set of the train/evaluate tests.
@Suite("reproducible runs", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct ReproducibilityTests {
    static func json(_ result: TestSupport.ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    static func runsDocument(_ workdir: String) throws -> [[String: Any]] {
        let result = try TestSupport.run(TestSupport.emopipe, ["runs", "--json", "--workdir", workdir])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try json(result) as? [[String: Any]])
    }

    /// Runs the prepared manifest, then a copy with one piece of its text replaced; the run ids newest first.
    static func runTwice(changing text: String, to replacement: String) throws -> (workdir: String, runs: [String]) {
        let (manifest, workdir) = try TrainEvaluateTests.copyOfPrepared()
        try #require(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir]).status == 0)
        let changed = manifest.replacingOccurrences(of: ".yaml", with: "-changed.yaml")
        let original = try String(contentsOfFile: manifest, encoding: .utf8)
        try #require(original.contains(text))
        try original.replacingOccurrences(of: text, with: replacement).write(toFile: changed, atomically: true, encoding: .utf8)
        try #require(try TestSupport.run(TestSupport.emopipe, ["run", changed, "--workdir", workdir]).status == 0)
        return (workdir, try runsDocument(workdir).map { $0["id"] as! String })
    }

    @Test func aRunRecordsItsInputsAndReproducesByteForByte() throws {
        let (manifest, workdir) = try TrainEvaluateTests.copyOfPrepared()
        let first = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir])
        try #require(first.status == 0, "\(first.stderr)")

        let run = try #require(try Self.runsDocument(workdir).first)
        let environment = try #require(run["environment"] as? [String: Any])
        let libraries = try #require(environment["libraries"] as? [String: String])
        for library in ["ffmpeg", "libavformat", "libsndfile", "openblas", "gemm_kernel", "onednn", "dlib", "sqlite"] {
            #expect(!(libraries[library] ?? "").isEmpty, "records the \(library) version")
        }
        #expect((environment["git_commit"] as? String)?.count == 40, "the checkout's commit is recorded")
        #expect((environment["executable_sha256"] as? String)?.count == 64)
        #expect(environment["threads"] as? Int == 2 && environment["seed"] as? Int == 3)
        let params = try #require(run["params"] as? [String: [String: Any]])
        #expect(params["train"]?["epochs"] as? Int == 3, "resolved parameters, overrides applied")
        #expect(params["audio"]?["n_fft"] as? Int == 512, "presets expanded")

        // The dataset fingerprint: SHA-256 of the sorted file names (the labels) and content hashes of the ok sources in use.
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let lines = try store.sources(status: .ok).map { "\(($0.path as NSString).lastPathComponent)\t\($0.sha256 ?? "")" }.sorted()
        #expect(run["dataset_fingerprint"] as? String == SHA256Hex.of(lines.joined(separator: "\n")))
        #expect(run["sources_in_use"] as? Int == lines.count)
        let metrics = try #require(run["metrics"] as? [String: Any])
        let written = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(
            fileURLWithPath: workdir + "/runs/\(run["id"] as! String)/metrics.json"))) as? [String: Any])
        #expect(metrics["weighted_f1"] as? Double == written["weighted_f1"] as? Double)
        // Scalars of nested objects (seven_class.weighted_f1) nest as metrics.json nests them; every key is
        // snake_case (files is keyed by file name), borrowed parameters too (evaluate's export.quantize).
        let sevenClass = try #require(metrics["seven_class"] as? [String: Any])
        #expect(sevenClass["weighted_f1"] as? Double == (written["seven_class"] as? [String: Any])?["weighted_f1"] as? Double)
        #expect(((params["evaluate"]?["export"]) as? [String: Any])?["quantize"] != nil, "\(params["evaluate"] ?? [:])")
        var document = run
        document["files"] = nil
        let notSnakeCase = Self.keys(of: document).filter { $0.range(of: "^[a-z0-9_]+$", options: .regularExpression) == nil }
        #expect(notSnakeCase.isEmpty, "\(notSnakeCase)")

        // A folder that holds anything (a data root, say) is refused: the reproduction would mix into it.
        let busy = try TestSupport.temporaryFolder("repro-busy")
        try FileManager.default.createDirectory(atPath: busy + "/Actor_01", withIntermediateDirectories: true)
        let occupied = try TestSupport.run(TestSupport.emopipe, ["reproduce", run["id"] as! String, "--workdir", workdir, "--into", busy])
        #expect(occupied.status == 64 && occupied.stderr.contains("\(busy) is not empty (it holds Actor_01)"), "\(occupied.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: busy) == ["Actor_01"])
        // Given by its folder's path, from a folder with no work directory, the run is read from its own work directory.
        let byFolder = try TestSupport.run(TestSupport.emopipe, ["reproduce", workdir + "/runs/" + (run["id"] as! String), "--into", busy],
                                           currentDirectory: try TestSupport.temporaryFolder("no-workdir-here"))
        #expect(byFolder.status == 64 && byFolder.stderr.contains("\(busy) is not empty (it holds Actor_01)"), "\(byFolder.stderr)")
        // An --into through a link to nothing is refused before anything, as such a --workdir is.
        let dangling = try TestSupport.temporaryFolder("repro-dangling") + "/gone"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dangling + "-target")
        let throughNothing = try TestSupport.run(TestSupport.emopipe, ["reproduce", run["id"] as! String, "--workdir", workdir, "--into", dangling + "/w"])
        #expect(throughNothing.status == 64 && throughNothing.stderr.contains("--into \(dangling)/w: \(dangling) is a link to a folder that does not exist"),
                "\(throughNothing.stderr)")

        // Reproduce from scratch: every stage output, metric and result file matches.
        let into = try TestSupport.temporaryFolder("repro") + "/w"
        let repro = try TestSupport.run(TestSupport.emopipe, ["reproduce", run["id"] as! String, "--workdir", workdir,
                                                              "--into", into, "--json"])
        #expect(repro.status == 0, "\(repro.stderr)")
        let report = try #require(try Self.json(repro) as? [String: Any])
        #expect(report["results_match"] as? Bool == true)
        let fields = try #require(report["fields"] as? [[String: Any]])
        let compared = Set(fields.filter { $0["same"] as? Bool == true }.map { "\($0["section"]!)/\($0["name"]!)" })
        for name in ["metrics/weighted_f1", "files/model.onnx", "files/model.safetensors", "files/metrics.json",
                     "files/model.json", "files/features.json",
                     "stages/audio output", "stages/train output", "data/dataset fingerprint"] {
            #expect(compared.contains(name), "\(name) compared and the same")
        }

        // A result that no longer matches its recorded bytes is reported, with exit status 1.
        let onnx = workdir + "/runs/\(run["id"] as! String)/model.onnx"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: onnx))
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: onnx))
        let tampered = try TestSupport.run(TestSupport.emopipe, ["reproduce", run["id"] as! String, "--workdir", workdir, "--json"])
        #expect(tampered.status == 1)
        let differing = try #require((try Self.json(tampered) as? [String: Any])?["fields"] as? [[String: Any]])
            .filter { $0["same"] as? Bool == false }.map { "\($0["section"]!)/\($0["name"]!)" }
        #expect(differing == ["files/model.onnx"], "only the tampered file differs: \(differing)")
        #expect(tampered.stderr.contains("note: \(onnx), a result of run \(run["id"] as! String), was changed since it was written"), "\(tampered.stderr)")

        // A recorded value no run could have had is damage: refused before anything runs.
        let id = run["id"] as! String
        /// Edits the run's record (`?` is its id), then reproduces it.
        func reproduce(after sql: String, _ extra: [String] = []) throws -> TestSupport.ProcessResult {
            try edit(sql)
            return try TestSupport.run(TestSupport.emopipe, ["reproduce", id, "--workdir", workdir] + extra)
        }
        func edit(_ sql: String) throws {
            try ProvenanceStore(path: workdir + "/emopipe.sqlite").write { try $0.execute(sql: sql, arguments: [id]) }
        }
        let saved = try ProvenanceStore(path: workdir + "/emopipe.sqlite").read {
            try String.fetchOne($0, sql: "SELECT paramsJSON FROM run WHERE id = ?", arguments: [id])
        }
        let recorded = try #require(saved)
        /// Edits the run's recorded parameters (`?` in `expression` is what the run recorded), then reproduces it.
        func reproduce(parameters expression: String) throws -> TestSupport.ProcessResult {
            try ProvenanceStore(path: workdir + "/emopipe.sqlite").write {
                try $0.execute(sql: "UPDATE run SET paramsJSON = \(expression) WHERE id = ?", arguments: [recorded, id])
            }
            return try TestSupport.run(TestSupport.emopipe, ["reproduce", id, "--workdir", workdir])
        }
        let damaged = try reproduce(after: "UPDATE run SET threads = 0 WHERE id = ?")
        #expect(damaged.status == 1 && damaged.stderr.contains("run \(id) cannot be repeated: it records threads = 0, outside 1-256: its record is damaged"), "\(damaged.stderr)")
        let unreadable = try reproduce(after: "UPDATE run SET threads = 2, paramsJSON = '{not json' WHERE id = ?")
        #expect(unreadable.status == 1 && unreadable.stderr.contains("run \(id) cannot be repeated: its recorded parameters are not valid JSON: its record is damaged"),
                "\(unreadable.stderr)")
        // JSON of another kind is named as such, not as text that is no JSON.
        let list = try reproduce(after: "UPDATE run SET paramsJSON = '[1, 2]' WHERE id = ?")
        #expect(list.status == 1 && list.stderr.contains("run \(id) cannot be repeated: its recorded parameters are not a JSON object: its record is damaged"),
                "\(list.stderr)")
        // A run an older EmoPipe recorded without its resolved parameters is repeated from its manifest, and that is said first.
        let older = try reproduce(after: "UPDATE run SET paramsJSON = NULL WHERE id = ?", ["--into", busy])
        #expect(older.status == 64 && older.stderr.contains("note: run \(id) recorded no resolved parameters (an older EmoPipe did not keep them): "
                                                            + "it is repeated from its recorded manifest with this emopipe's defaults"), "\(older.stderr)")
        // A recorded value out of range is the record's, not the manifest's the values are laid over.
        let outOfRange = try reproduce(parameters: "json_set(?, '$.train.epochs', 100000000)")
        #expect(outOfRange.status == 1 && outOfRange.stderr.contains("run \(id) cannot be repeated: its recorded parameters are refused (its record is damaged")
                && outOfRange.stderr.contains("train.epochs = 100000000"), "\(outOfRange.stderr)")
        #expect(!outOfRange.stderr.contains("reproducing run"), "refused before it is announced: \(outOfRange.stderr)")
        // A stage's parameters gone, or no object, would leave that stage to today's defaults: the record is damaged.
        let notObject = try reproduce(parameters: "json_set(?, '$.audio', 5)")
        #expect(notObject.status == 1 && notObject.stderr.contains("run \(id) cannot be repeated: its recorded parameters are not an object "
                                                                    + "for stage 'audio': its record is damaged"), "\(notObject.stderr)")
        let missing = try reproduce(parameters: "json_remove(?, '$.split')")
        #expect(missing.status == 1 && missing.stderr.contains("run \(id) cannot be repeated: its recorded parameters are missing for "
                                                               + "stage 'split', which the run ran: its record is damaged"), "\(missing.stderr)")

        // A damaged copy of the manifest text is the record's fault, not the manifest file's on disk.
        let garbled = try reproduce(after: "UPDATE run SET paramsJSON = NULL, manifestJSON = '[' || manifestJSON WHERE id = ?")
        #expect(garbled.status == 1 && garbled.stderr.contains("run \(id) cannot be repeated: its recorded manifest text is refused (its record is damaged")
                && garbled.stderr.contains("not valid YAML"), "\(garbled.stderr)")
        try edit("UPDATE run SET manifestJSON = substr(manifestJSON, 2) WHERE id = ?")
        // A recorded manifest that parses but holds a value this emopipe refuses is the record's too.
        let refusedValue = try reproduce(after: "UPDATE run SET manifestJSON = replace(manifestJSON, 'epochs: ', 'epochs: x') WHERE id = ?")
        #expect(refusedValue.status == 1 && refusedValue.stderr.contains("run \(id) cannot be repeated: its recorded manifest is refused"),
                "\(refusedValue.stderr)")
        try edit("UPDATE run SET manifestJSON = replace(manifestJSON, 'epochs: x', 'epochs: ') WHERE id = ?")

        // A data root gone since is said before a work directory is made, not after one is half built.
        let movedInto = try TestSupport.temporaryFolder("repro-moved") + "/w"
        let moved = try reproduce(after: "UPDATE run SET dataRoot = dataRoot || '-moved' WHERE id = ?", ["--into", movedInto])
        #expect(moved.status == 1 && moved.stderr.contains("run \(id) cannot be repeated: its data root ") && moved.stderr.contains("-moved' does not exist or is not a folder"), "\(moved.stderr)")
        #expect(!FileManager.default.fileExists(atPath: movedInto), "no work directory is made")
        #expect(!moved.stderr.contains("reproducing run"), "nothing is announced that does not happen: \(moved.stderr)")
        try edit("UPDATE run SET dataRoot = substr(dataRoot, 1, length(dataRoot) - 6) WHERE id = ?")
        // An --into that is a file is refused as a bad argument before anything is announced.
        let file = try TestSupport.temporaryFolder("repro-file") + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let intoFile = try TestSupport.run(TestSupport.emopipe, ["reproduce", id, "--workdir", workdir, "--into", file])
        #expect(intoFile.status == 64 && intoFile.stderr.contains("\(file) is not a folder") && !intoFile.stderr.contains("reproducing run"),
                "\(intoFile.stderr)")
        let database = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let recordedRoot = try #require(try database.read { try String.fetchOne($0, sql: "SELECT dataRoot FROM run WHERE id = ?", arguments: [id]) })
        let relative = try reproduce(after: "UPDATE run SET dataRoot = 'data' WHERE id = ?", ["--into", movedInto])
        #expect(relative.status == 1 && relative.stderr.contains("it records the data root 'data', not an absolute path"), "\(relative.stderr)")
        try database.write { try $0.execute(sql: "UPDATE run SET dataRoot = ? WHERE id = ?", arguments: [recordedRoot, id]) }
        // A run that did not finish has no whole results to compare: refused before anything runs.
        // (A run recorded as running whose process is gone is marked interrupted when the store is opened.)
        for (status, says) in [("interrupted", "it was interrupted"), ("failed", "it failed"), ("running", "it was interrupted")] {
            let unfinished = try reproduce(after: "UPDATE run SET status = '\(status)' WHERE id = ?", ["--into", movedInto])
            #expect(unfinished.status == 1 && unfinished.stderr.contains("run \(id) cannot be repeated: \(says), so its results are not all there to compare"),
                    "\(unfinished.stderr)")
            #expect(!unfinished.stderr.contains("reproducing run") && !FileManager.default.fileExists(atPath: movedInto), "refused before anything runs")
        }
        try edit("UPDATE run SET status = 'done' WHERE id = ?")

        // A run whose results folder is gone is said so before anything runs, not as every result differing after.
        try FileManager.default.removeItem(atPath: workdir + "/runs/\(run["id"] as! String)")
        let emptied = try TestSupport.temporaryFolder("repro-gone") + "/w"
        let gone = try TestSupport.run(TestSupport.emopipe, ["reproduce", run["id"] as! String, "--workdir", workdir, "--into", emptied])
        #expect(gone.status == 1 && gone.stderr.contains("the folder of run \(run["id"] as! String)'s results is gone"), "\(gone.stderr)")
        #expect(!FileManager.default.fileExists(atPath: emptied), "nothing ran")
    }

    /// `diff --all --json`'s fields.
    static func allFields(_ workdir: String, _ runs: [String]) throws -> [[String: Any]] {
        let diff = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir, "--json", "--all"])
        return try #require((try json(diff) as? [String: Any])?["fields"] as? [[String: Any]])
    }

    /// A run that reused an earlier export holds no model: predict answers with the model of the run whose
    /// folder holds it, and says so (it refused, exit 64, naming that run; the export stage is up to date, so
    /// `run --until export` would write nothing).
    @Test func predictOnARunThatReusedAnExportAnswersWithTheRunHoldingTheModel() throws {
        let (manifest, workdir) = try TrainEvaluateTests.copyOfPrepared()
        try #require(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir]).status == 0)
        try #require(try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--force", "evaluate"]).status == 0)
        let ids = try Self.runsDocument(workdir).map { $0["id"] as! String }
        let evaluatedAgain = try #require(ids.first)
        let exported = try #require(ids.dropFirst().first { FileManager.default.fileExists(atPath: workdir + "/runs/\($0)/model.safetensors") })
        #expect(!FileManager.default.fileExists(atPath: workdir + "/runs/\(evaluatedAgain)/model.safetensors"), "the premise: no model of its own")
        let speech = TestSupport.sharedData + "/speech-flac/Actor_01/03-01-05-01-01-01-01.flac"
        let byExport = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", exported, "--workdir", workdir, "--json", speech])
        #expect(byExport.status == 0, "\(byExport.stderr)")
        let predict = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", evaluatedAgain, "--workdir", workdir, "--json", speech])
        #expect(predict.status == 0 && predict.stdout == byExport.stdout, "\(predict.stderr)")
        #expect(predict.stderr.contains("run \(evaluatedAgain) holds no model of its own: it reused the export of run \(exported), "
                                        + "whose model (in \(workdir)/runs/\(exported)) answers"), "\(predict.stderr)")
        // The run's folder given as a path, with no --workdir (the default work directory is not this one): its own
        // work directory's database says where the model is.
        let byPath = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", workdir + "/runs/" + evaluatedAgain, "--json", speech],
                                         currentDirectory: try TestSupport.temporaryFolder("elsewhere"))
        #expect(byPath.status == 0 && byPath.stdout == byExport.stdout && byPath.stderr.contains("it reused the export of run \(exported)"), "\(byPath.stderr)")
        // Through a link from elsewhere, the model is found where it really is, not beside the link.
        let exportedFolder = try #require(ResolvedPath.existing(workdir + "/runs/" + exported))
        let link = try TestSupport.temporaryFolder("link-to-run") + "/newest"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: workdir + "/runs/" + evaluatedAgain)
        let linked = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", link, "--json", speech],
                                         currentDirectory: try TestSupport.temporaryFolder("elsewhere"))
        #expect(linked.status == 0 && linked.stdout == byExport.stdout && linked.stderr.contains("(in \(exportedFolder))"), "\(linked.stderr)")
        // The runs table says it under the run, where only --json's produced_by_run said it.
        let table = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", workdir]).stdout.split(separator: "\n").map(String.init)
        let row = try #require(table.firstIndex { $0.hasPrefix(evaluatedAgain) }, "\(table)")
        #expect(table.indices.contains(row + 1) && table[row + 1] == "    export up to date: its files are in run \(exported)", "\(table)")
        #expect(!table.contains { $0.contains("evaluate up to date") }, "evaluate ran again in that run: \(table)")
        // The run holding the model removed: said of it, not "run the export stage" (export is up to date).
        try FileManager.default.removeItem(atPath: workdir + "/runs/" + exported)
        let gone = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", evaluatedAgain, "--workdir", workdir, speech])
        #expect(gone.status == 1 && gone.stderr.contains("reused the export of run \(exported), whose folder is gone"), "\(gone.stderr)")
    }

    @Test func diffNamesTheChangedParameterAndItsEffects() throws {
        let (workdir, runs) = try Self.runTwice(changing: "epochs: 3,", to: "epochs: 3, learning_rate: 0.003,")
        let diff = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir, "--json"])
        #expect(diff.status == 0, "\(diff.stderr)")
        let fields = try #require((try Self.json(diff) as? [String: Any])?["fields"] as? [[String: Any]])
        let names = Set(fields.map { "\($0["section"]!)/\($0["name"]!)" })
        #expect(names.contains("params/train.learning_rate"))
        #expect(names.contains("params/manifest sha256"))
        #expect(names.contains("stages/train output") && names.contains("files/model.onnx"))
        #expect(!names.contains { $0.hasPrefix("data/") || $0.hasPrefix("code/") }, "same data, same code: \(names)")
        #expect(!names.contains("stages/audio output"), "audio was not redone")
        let rate = try #require(fields.first { $0["name"] as? String == "train.learning_rate" })
        // Parameters as typed, as `params --json` gives them: a number is a number.
        #expect(rate["a"] as? Double == 0.001 && rate["b"] as? Double == 0.003 && !(rate["a"] is String), "\(rate)")
        // A parameter set to null (fmax: up to Nyquist) is shown as null, not as the mark of a value a run lacks.
        let table = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir, "--all"]).stdout
        #expect(table.contains("audio.fmax: a null | b null"), "\(table)")
        // Ids as far as they are unique will do; the start of several ids is refused, naming them.
        let short = try TestSupport.run(TestSupport.emopipe, ["diff", String(runs[1].dropLast()), String(runs[0].dropLast()), "--workdir", workdir])
        #expect(short.status == 0 && short.stdout.hasPrefix("a = \(runs[1])\nb = \(runs[0])"), "\(short.stdout) \(short.stderr)")
        // Run folders' paths name their work directory: no --workdir is needed, from a folder with no `work` of its own
        // (the default work directory, absent, was opened first and refused the command).
        let elsewhere = try TestSupport.temporaryFolder("no-workdir-here")
        let byFolder = try TestSupport.run(TestSupport.emopipe, ["diff", workdir + "/runs/" + runs[1], workdir + "/runs/" + runs[0]],
                                           currentDirectory: elsewhere)
        #expect(byFolder.status == 0 && byFolder.stdout.hasPrefix("a = \(runs[1])\nb = \(runs[0])"), "\(byFolder.stdout) \(byFolder.stderr)")
        // A path there that is no run folder is named as what is wrong (it blamed the absent default work directory).
        let notARun = try TestSupport.run(TestSupport.emopipe, ["diff", workdir + "/runs", workdir + "/runs/" + runs[0]], currentDirectory: elsewhere)
        #expect(notARun.status == 64 && notARun.stderr.contains("\(workdir)/runs: not a run folder"), "\(notARun.stderr)")
        // A mistyped path is no run, even when its last part names one.
        let mistyped = try TestSupport.run(TestSupport.emopipe, ["diff", "/nonexistent/typo/" + runs[1], runs[0], "--workdir", workdir])
        #expect(mistyped.status == ExitStatus.usage && mistyped.stderr.contains("/nonexistent/typo/\(runs[1]): no run folder there"), "\(mistyped.stderr)")
        let common = String(zip(runs[0], runs[1]).prefix { $0 == $1 }.map(\.0))
        let ambiguous = try TestSupport.run(TestSupport.emopipe, ["diff", common, runs[0], "--workdir", workdir])
        #expect(ambiguous.status == ExitStatus.usage && ambiguous.stderr.contains("is the start of ") && ambiguous.stderr.contains("runs' ids")
                && ambiguous.stderr.contains(runs[0]) && ambiguous.stderr.contains(runs[1]), "\(ambiguous.stderr)")
        // Metrics are numbers, as in metrics.json (a count a whole one); a metric a run lacks is null.
        let metricsA = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: workdir + "/runs/\(runs[1])/metrics.json"))) as? [String: Any])
        let all = try Self.allFields(workdir, runs)
        let count = try #require(all.first { $0["name"] as? String == "count" })
        let clips = try #require(metricsA["count"] as? Int)
        #expect(count["a"] as? Int == clips && !(count["a"] is String), "\(count)")
        let accuracy = try #require(all.first { $0["name"] as? String == "accuracy" })
        #expect(accuracy["a"] as? Double == metricsA["accuracy"] as? Double, "\(accuracy)")
        // Counts, seed and thread count are numbers, the dirty flag true or false, as `runs --json` gives them.
        func field(_ section: String, _ name: String) throws -> [String: Any] {
            try #require(all.first { $0["section"] as? String == section && $0["name"] as? String == name }, "\(section)/\(name)")
        }
        #expect(try field("data", "sources in use")["a"] as? Int == (try Self.runsDocument(workdir).last?["sources_in_use"] as? Int))
        #expect(try field("code", "seed")["a"] is Int && (try field("code", "threads")["b"] as? Int) == 2)
        #expect(try field("code", "git dirty")["a"] is Bool)
        let diffText = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir, "--json", "--all"]).stdout
        #expect(diffText.range(of: "\"a\": *\(clips)[,\n ]", options: .regularExpression) != nil, "a whole number, not \(clips).0")
        let listed = try TestSupport.run(TestSupport.emopipe, ["runs", "--workdir", workdir, "--json"]).stdout
        #expect(listed.range(of: "\"count\": *\(clips)[,\n ]", options: .regularExpression) != nil
                && !listed.contains("\"count\": \(clips).0") && !listed.contains("\"count\":\(clips).0"), "\(listed)")

        // A metrics.json rewritten after its run (another run's copied in, a figure typed over; here one byte
        // added, so the file surely differs) is not that run's: no value, and the edit named.
        let metrics = workdir + "/runs/\(runs[0])/metrics.json"
        let own = try Data(contentsOf: URL(fileURLWithPath: metrics))
        try (own + Data("\n".utf8)).write(to: URL(fileURLWithPath: metrics))
        for command in [["diff", runs[1], runs[0]], ["runs"]] {
            let copied = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir])
            #expect(copied.status == 0 && copied.stderr.contains("note: run \(runs[0])'s result file cannot be read, so it shows no value: "
                                                            + "\(metrics): edited since run \(runs[0]) wrote it"), "\(command): \(copied.stderr)")
        }
        try own.write(to: URL(fileURLWithPath: metrics))
        // A source list cut short is named and left out (it reported sources added that never were), and so is a
        // record whose parameters or environment were damaged (shown as no value without a word).
        let listing = workdir + "/runs/\(runs[0])/dataset.tsv"
        let wholeListing = try Data(contentsOf: URL(fileURLWithPath: listing))
        try wholeListing.prefix(wholeListing.count / 2).write(to: URL(fileURLWithPath: listing))
        let cutList = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
        #expect(cutList.status == 0 && cutList.stderr.contains("note: run \(runs[0])'s source list is not taken: \(listing): ")
                && !cutList.stdout.contains("sources added"), "\(cutList.stdout)\(cutList.stderr)")
        try wholeListing.write(to: URL(fileURLWithPath: listing))
        let database = try DatabaseQueue(path: workdir + "/emopipe.sqlite")
        let savedRecord = try database.read { try String.fetchOne($0, sql: "SELECT paramsJSON FROM run WHERE id = ?", arguments: [runs[0]]) }
        try database.write { try $0.execute(sql: "UPDATE run SET paramsJSON = '{' WHERE id = ?", arguments: [runs[0]]) }
        let damagedRecord = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
        #expect(damagedRecord.stderr.contains("note: run \(runs[0])'s record is damaged: its recorded parameters are not valid JSON"),
                "\(damagedRecord.stderr)")
        // A stage's value no object read as no parameters: diff said "no differences" of it.
        try database.write { try $0.execute(sql: "UPDATE run SET paramsJSON = json_set(?, '$.audio', 5) WHERE id = ?", arguments: [savedRecord, runs[0]]) }
        let notObject = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
        #expect(notObject.stderr.contains("note: run \(runs[0])'s record is damaged: its recorded parameters are not an object for stage 'audio'"),
                "\(notObject.stderr)")
        try database.write { try $0.execute(sql: "UPDATE run SET paramsJSON = ? WHERE id = ?", arguments: [savedRecord, runs[0]]) }
        // A thread count no run can have had is damage too, said by runs and diff (reproduce refuses it).
        let savedThreads = try database.read { try Int.fetchOne($0, sql: "SELECT threads FROM run WHERE id = ?", arguments: [runs[0]]) }
        try database.write { try $0.execute(sql: "UPDATE run SET threads = -5 WHERE id = ?", arguments: [runs[0]]) }
        for command in [["diff", runs[1], runs[0]], ["runs"]] {
            let threads = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir])
            #expect(threads.stderr.contains("note: run \(runs[0])'s record is damaged: its recorded thread count -5 is outside 1-256"), "\(command): \(threads.stderr)")
        }
        try database.write { try $0.execute(sql: "UPDATE run SET threads = ? WHERE id = ?", arguments: [savedThreads, runs[0]]) }
        try database.close()
        // A model changed since is compared as it is now, and the change is named (diff would show only a new hash).
        let model = workdir + "/runs/\(runs[0])/model.onnx"
        if FileManager.default.fileExists(atPath: model) {
            let before = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
            #expect(!before.stderr.contains("was changed since it was written"), "\(before.stderr)")
            let written = try Data(contentsOf: URL(fileURLWithPath: model))
            try (written + Data([0])).write(to: URL(fileURLWithPath: model))
            let after = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
            #expect(after.status == 0 && after.stderr.contains("note: \(model), a result of run \(runs[0]), was changed since it was written"), "\(after.stderr)")
            try written.write(to: URL(fileURLWithPath: model))
        } else {
            Issue.record("the run has no model.onnx to compare")
        }

        // A result file that is there but cannot be read shows no value, and diff says why.
        #expect(truncate(metrics, 300 << 20) == 0)   // over the bound, quick to hash
        let unreadable = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
        #expect(unreadable.status == 0 && unreadable.stderr.contains("note: run \(runs[0])'s result file cannot be read, so it shows no value: "
                                                                     + "\(metrics): it is 314572800 bytes"), "\(unreadable.stderr)")
        // One cut short is named too, by diff and by the runs table: as edited, judged by its recorded SHA-256 before it is
        // parsed (an edited file of megabytes took minutes to parse first); without a recorded one, as not JSON.
        try Data("{\"accuracy\": 0.5".utf8).write(to: URL(fileURLWithPath: metrics))
        for command in [["diff", runs[1], runs[0]], ["runs"]] {
            let cut = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir])
            #expect(cut.status == 0 && cut.stderr.contains("note: run \(runs[0])'s result file cannot be read, so it shows no value: "
                                                         + "\(metrics): edited since run \(runs[0]) wrote it"), "\(command): \(cut.stderr)")
        }
        let artifacts = try DatabaseQueue(path: workdir + "/emopipe.sqlite")
        let metricsRow = "WHERE runId = ? AND path LIKE '%/metrics.json'"
        let digest = try #require(try artifacts.read { try String.fetchAll($0, sql: "SELECT sha256 FROM artifact \(metricsRow)", arguments: [runs[0]]) }.first)
        try artifacts.write { try $0.execute(sql: "UPDATE artifact SET sha256 = NULL \(metricsRow)", arguments: [runs[0]]) }
        for command in [["diff", runs[1], runs[0]], ["runs"]] {
            let cut = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir])
            #expect(cut.status == 0 && cut.stderr.contains("note: run \(runs[0])'s result file cannot be read, so it shows no value: "
                                                         + "\(metrics): not valid JSON, where EmoPipe writes a JSON object of its results"), "\(command): \(cut.stderr)")
        }
        // Past the bound of what is decoded, and with no digest to judge it by first: named by its length, not parsed.
        try Data(("{\"accuracy\": 0.5, \"x\": \"" + String(repeating: "a", count: 5 << 20) + "\"}").utf8).write(to: URL(fileURLWithPath: metrics))
        let long = try TestSupport.run(TestSupport.emopipe, ["diff", runs[1], runs[0], "--workdir", workdir])
        #expect(long.status == 0 && long.stderr.contains("\(metrics): \((5 << 20) + 26) bytes of JSON, more than the \(4 << 20) read of what EmoPipe records; not read"),
                "\(long.stderr)")
        try artifacts.write { try $0.execute(sql: "UPDATE artifact SET sha256 = ? \(metricsRow)", arguments: [digest, runs[0]]) }
        try artifacts.close()
        // One deleted from a folder still there: said to be gone, not shown as a result the run never had.
        try FileManager.default.removeItem(atPath: metrics)
        for command in [["diff", runs[1], runs[0]], ["runs"]] {
            let deleted = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir])
            #expect(deleted.status == 0 && deleted.stderr.contains("note: run \(runs[0])'s result file cannot be read, so it shows no value: "
                                                             + "\(metrics): gone since run \(runs[0]) wrote it (deleted?)"), "\(command): \(deleted.stderr)")
        }
        // A run folder removed: its results are said to be gone, not shown as a run that produced nothing;
        // predict says the run is recorded but its folder (and model) is gone.
        let folder = workdir + "/runs/\(runs[0])"
        try FileManager.default.removeItem(atPath: folder)
        for command in [["diff", runs[1], runs[0]], ["runs"]] {
            let gone = try TestSupport.run(TestSupport.emopipe, command + ["--workdir", workdir])
            #expect(gone.status == 0 && gone.stderr.contains("note: run \(runs[0])'s results are in \(folder), which is gone (removed?)"),
                    "\(command): \(gone.stderr)")
        }
        let predict = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", runs[0], "--workdir", workdir, folder + ".wav"])
        #expect(predict.status == ExitStatus.failure && predict.stderr.contains("run \(runs[0]) is recorded, but its folder is gone"), "\(predict.stderr)")
        // A path that leads nowhere is not called a removed run when the run's folder is there: it is pointed to.
        let misdirected = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", "../" + runs[1], "--workdir", workdir, folder + ".wav"])
        #expect(misdirected.status == ExitStatus.usage && misdirected.stderr.contains(
            "no run folder '../\(runs[1])'; run \(runs[1]) is in \(workdir)/runs/\(runs[1]): give that path or its id"), "\(misdirected.stderr)")
        // `show` marks an artifact of that folder as gone from disk, and only those.
        let source = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").read { db in
            try String.fetchOne(db, sql: "SELECT sourceSHA256 FROM artifact WHERE path LIKE ? AND sourceSHA256 IS NOT NULL", arguments: [folder + "/%"])
        })
        let lines = try TestSupport.run(TestSupport.emopipe, ["show", source, "--workdir", workdir]).stdout.split(separator: "\n").filter { $0.hasPrefix("artifact ") }
        #expect(lines.contains { $0.contains(folder + "/") } && lines.allSatisfy { $0.contains(folder + "/") == $0.hasSuffix(" — gone from disk") }, "\(lines)")
        // A work directory moved elsewhere keeps the paths its runs recorded: `show` finds each artifact
        // where it now is, and still calls the removed run's gone.
        let moved = workdir + "-moved"
        try FileManager.default.moveItem(atPath: workdir, toPath: moved)
        let after = try TestSupport.run(TestSupport.emopipe, ["show", source, "--workdir", moved]).stdout.split(separator: "\n").filter { $0.hasPrefix("artifact ") }
        #expect(after.count == lines.count && after.contains { $0.contains(" — now at \(moved)/") }, "\(after)")
        for line in after {
            let recorded = try #require(line.split(separator: " ").first { $0.hasPrefix(workdir + "/") })
            let tail = recorded.dropFirst(workdir.count)
            #expect(line.hasSuffix(recorded.hasPrefix(folder + "/") ? " — gone from disk" : " — now at \(moved)\(tail)"), "\(line)")
        }
    }

    /// A train setting that changes nothing in these weights (a patience no epoch reaches, in 3 epochs) still
    /// makes a new model.json and model.onnx: the run must hold its own, not point at the earlier export.
    @Test func aTrainChangeThatKeepsTheWeightsStillExportsTheRunsOwnModel() throws {
        let (workdir, runs) = try Self.runTwice(changing: "patience: 10,", to: "patience: 11,")
        // The newest run first; an up-to-date run holds no results, so the earlier model is in the run that made it.
        let latest = workdir + "/runs/" + runs[0]
        let earlier = try #require(runs.dropFirst().map { workdir + "/runs/" + $0 }
            .first { FileManager.default.fileExists(atPath: $0 + "/model.safetensors") })
        let weights = { (run: String) in try Data(contentsOf: URL(fileURLWithPath: run + "/model.safetensors")) }
        #expect(try weights(latest) == weights(earlier), "the change leaves the weights as they were")
        let onnx = try String(decoding: Data(contentsOf: URL(fileURLWithPath: latest + "/model.onnx")), as: UTF8.self)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let train = try #require(try store.stageState(.train))
        #expect(onnx.contains(train.fingerprint), "model.onnx names the training that made this run's model")
        let repro = try TestSupport.run(TestSupport.emopipe, ["reproduce", runs[0], "--workdir", workdir,
                                                              "--into", try TestSupport.temporaryFolder("repro") + "/w", "--json"])
        #expect(repro.status == 0, "\(repro.stdout)\(repro.stderr)")
    }

    /// Every key of a JSON document, at every depth.
    static func keys(of value: Any) -> [String] {
        if let object = value as? [String: Any] { return object.keys + object.values.flatMap { keys(of: $0) } }
        if let array = value as? [Any] { return array.flatMap { keys(of: $0) } }
        return []
    }
}
