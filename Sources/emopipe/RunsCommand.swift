import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List the recorded runs, newest first: status, manifest, dataset fingerprint, code and headline metrics.",
        discussion: Help.reflow("""
        Each run records its manifest, resolved parameters, dataset fingerprint (SHA-256 of the sorted
        file names, which carry the labels, with the content hashes of the sources in use), git commit and dirty flag, executable SHA-256, toolchain and library
        versions, seed and thread count; the table's "dataset fp" column is the dataset fingerprint's first 12
        hex digits (--json gives data_root as well). Metrics are those of the evaluation the run stands on (its own,
        or the earlier run that computed an up-to-date evaluate stage; the table says under the run which run holds
        the files of its up-to-date evaluate and export stages; a scale-out worker's run, merged in, is marked
        "worker I/N of a scale-out" under it). A run recorded running while nothing holds
        the work directory's lock died without ending (killed, out of memory): it shows interrupted, as the
        next run records it. A run's status is one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))
        (partial: it finished, with some sources failed, exit 3); a stage's state one of
        \(StageRunState.allCases.map(\.rawValue).joined(separator: ", ")).

        With --json: an array of {id, status, exit_code, started_at, finished_at, command, manifest,
        manifest_path, data_root, dataset_fingerprint, sources_in_use, worker, environment,
        params, stages: [{stage, state, stage_fingerprint, cache_key, output_digest, produced_by_run, seconds,
        cpu_seconds, peak_rss_mb, message}], metrics, files}; params and metrics nest as the files do (evaluate's
        borrowed export.quantize is {"export": {"quantize": …}}, cv.weighted_f1.mean is {"cv": {"weighted_f1": {"mean": …}}}),
        files maps each result file's name to its SHA-256 (read where the run that wrote it put it: an up-to-date stage's files are in the run folder of its produced_by_run); message is the stage's summary, or why it failed (the table
        shows a failed stage's under its run); exit_code is the status `emopipe run` gives for that run
        (a nightly or sweep run inside a command of its own may end that command with another). A stage fingerprint (code, parameters and upstream outputs) decides whether a
        stage is up to date; a cache key (code and parameters) keys its cached records.

        Every stage execution records its wall time (seconds), CPU time of the whole process, user
        plus system, every thread (cpu_seconds), and peak resident memory while it ran, VmHWM reset
        at its start (peak_rss_mb); null for runs recorded before EmoPipe measured them. For an
        up-to-date stage they are what deciding so cost. The table's cpu and peak columns are the
        run's total CPU seconds and its largest stage peak.
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    @Option(parsing: .unconditional, help: "Show at most this many runs (0 or more).")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit \(limit): expected 0 or more runs") }
    }

    func run() throws {
        do {
            let store = try workDirectoryOptions.openStore()
            let records = try store.runs(limit: limit)
            let summaries = try records.map {
                try RunSummary.load($0, store: store, workspace: workDirectoryOptions.workspace,
                                    depth: json ? .full : .headline)
            }
            if json { JSONOutput.print(.array(summaries.map(Self.document))) } else { printTable(summaries) }
            DiffCommand.noteUnreadable(summaries, workspace: workDirectoryOptions.workspace)
        } catch {
            throw Failure.exit(for: error)
        }
    }

    private func printTable(_ summaries: [RunSummary]) {
        print("run                     status       manifest          dataset fp    commit        wF1     acc     cpu s   peak MB")
        for run in summaries {
            let commit = run.environment?.gitCommit.map { String($0.prefix(8)) + (run.environment?.gitDirty == true ? "+" : "") } ?? "-"
            // A figure of an edited metrics.json may not be a score in 0...1: shown whole, never cut to the column.
            func number(_ name: String) -> String {
                run.metric(name).map { (0...9.9995).contains($0) ? String(format: "%.3f", $0) : String(format: "%.4g", $0) } ?? "-"
            }
            func wide(_ text: String, _ width: Int) -> String { text.count >= width ? text : text.padding(toLength: width, withPad: " ", startingAt: 0) }
            // An id is ours unless the row was edited: control characters are spelt out, not sent to the terminal.
            let columns = [run.id.escaped.padding(toLength: 22, withPad: " ", startingAt: 0),
                           run.record.status.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0),
                           String(run.manifestName.prefix(16)).padding(toLength: 16, withPad: " ", startingAt: 0),
                           (run.record.datasetFingerprint.map { String($0.prefix(12)) } ?? "-").padding(toLength: 12, withPad: " ", startingAt: 0),
                           commit.padding(toLength: 12, withPad: " ", startingAt: 0),
                           wide(number("weighted_f1"), 6), wide(number("accuracy"), 6),
                           wide(Self.cpuColumn(run.stages), 6), Self.peakColumn(run.stages)]
            print(columns.joined(separator: "  "))
            // A worker's run computed one slice of the per-source stages only: no figures of its own are missing.
            if let worker = run.record.worker {
                print("    worker \(worker.escaped) of a scale-out: the per-source stages over its slice of the sources")
            }
            // A run that found its result stages up to date wrote no results of its own: where they are is said.
            let elsewhere = run.stages.filter { [StageName.evaluate.rawValue, StageName.export.rawValue].contains($0.stage) }
                .compactMap { stage in stage.producedByRun.flatMap { $0 != run.id ? (stage: stage.stage, run: $0) : nil } }
            for producer in Set(elsewhere.map(\.run)).sorted() {
                let stages = elsewhere.filter { $0.run == producer }.map(\.stage).joined(separator: " and ")
                print("    \(stages) up to date: \(stages.contains(" and ") ? "their" : "its") files are in run \(producer.escaped)")
            }
            // Why a run failed stays findable after its output scrolled away.
            for stage in run.stages where stage.state == .failed {
                let reason = stage.message.map { PipelineRunner.withoutStagePrefix($0, stage: stage.stage) } ?? "no reason recorded"
                print("    \(stage.stage) failed: \(PipelineRunner.shortened(reason))")
            }
        }
    }

    static func document(_ run: RunSummary) -> ParamValue {
        let record = run.record
        let formatter = ISO8601DateFormatter()
        let environment = run.environment.flatMap { try? ParamValue.fromJSON(Data($0.json.utf8)) } ?? .null
        return .object([
            "id": .string(run.id), "status": .string(record.status.rawValue),
            "exit_code": JSONOutput.optional(record.exitCode),
            "started_at": .string(formatter.string(from: record.startedAt)),
            "finished_at": JSONOutput.optional(record.finishedAt.map(formatter.string)),
            "command": .string(record.command), "manifest": .string(run.manifestName),
            "manifest_path": JSONOutput.optional(record.manifestPath), "data_root": JSONOutput.optional(record.dataRoot.isEmpty ? nil : record.dataRoot),
            "dataset_fingerprint": JSONOutput.optional(record.datasetFingerprint),
            "sources_in_use": JSONOutput.optional(record.sourcesInUse), "worker": JSONOutput.optional(record.worker),
            "environment": environment, "params": .object(run.params.mapValues(\.nestingDottedKeys)),
            "stages": .array(run.stages.map { stage in
                .object(["stage": .string(stage.stage), "state": .string(stage.state.rawValue),
                         "stage_fingerprint": stage.fingerprint.isEmpty ? .null : .string(stage.fingerprint), "cache_key": JSONOutput.optional(stage.parametersFingerprint),
                         "output_digest": JSONOutput.optional(stage.outputDigest),
                         "produced_by_run": JSONOutput.optional(stage.producedByRun),
                         "seconds": stage.seconds.map(ParamValue.double) ?? .null,
                         "cpu_seconds": stage.cpuSeconds.map(ParamValue.double) ?? .null,
                         "peak_rss_mb": stage.peakRSSMB.map(ParamValue.double) ?? .null,
                         "message": JSONOutput.optional(stage.message)])
            }),
            "metrics": ParamValue.object(Dictionary(run.metrics.map { ($0.0, run.metricValue($0.0)) }, uniquingKeysWith: { a, _ in a })).nestingDottedKeys,
            "files": .object(Dictionary(run.files.map { ($0.0, ParamValue.string($0.1)) }, uniquingKeysWith: { a, _ in a })),
        ])
    }
}

extension RunsCommand {
    /// The run's CPU seconds over its measured stages, or "-" when none was measured.
    static func cpuColumn(_ stages: [StageRunRecord]) -> String {
        let measured = stages.compactMap(\.cpuSeconds)
        return measured.isEmpty ? "-" : measured.reduce(0, +).fixedText(places: 1)
    }

    /// The largest peak resident memory of the run's stages (MiB), or "-".
    static func peakColumn(_ stages: [StageRunRecord]) -> String {
        stages.compactMap(\.peakRSSMB).max().map { $0.fixedText(places: 0) } ?? "-"
    }
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what differs between two runs: parameters, data, code and environment, stage outputs, metrics.",
        discussion: Help.reflow("""
        RUN is a run id (a folder under WORKDIR/runs), the start of one only one run has, or a path to it. Only differing fields are shown
        unless --all. With --json: {a, b, fields: [{section, name, a, b, same}]}; a and b are parameters as
        typed (as `params --json` gives them), numbers for metrics and counts (whole ones for counts), seed and
        threads, true or false for git dirty, text for the rest, null where a run has none or it is unknown.
        Exit status 0 whether or not they differ (use `reproduce` to check a result).
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Argument(help: "The first run.") var runA: String
    @Argument(help: "The second run.") var runB: String

    @Flag(help: "Show the fields that are the same too.")
    var all = false

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    /// A result file that is there but unreadable, or in a run folder that is gone, shows as no value:
    /// said, so it is not taken for a run that produced nothing.
    /// `workspace`: the work directory of every run given (nil: folders not looked at).
    static func noteUnreadable(_ runs: [RunSummary], workspace: Workspace?) {
        for run in runs {
            for problem in run.unreadable {
                StandardStream.error.write(Data("note: run \(run.id)'s result file cannot be read, so it shows no value: \(problem)\n".utf8))
            }
            for problem in run.damagedRecord {
                StandardStream.error.write(Data("note: run \(run.id)'s record is damaged: \(problem), so those fields show no value\n".utf8))
            }
            if let problem = run.datasetProblem {
                StandardStream.error.write(Data("note: run \(run.id)'s source list is not taken: \(problem); its data is compared by the fingerprint and count its record holds\n".utf8))
            }
            for path in run.edited {
                StandardStream.error.write(Data("note: \(path.escaped), a result of run \(run.id), was changed since it was written (its SHA-256 is not the one recorded then): compared as it is now\n".utf8))
            }
            for gone in workspace.map(run.missingResultFolders) ?? [] {
                StandardStream.error.write(Data("note: run \(run.id)'s results are in \(gone.echoed), which is gone (removed?), so they show no value\n".utf8))
            }
        }
    }

    func run() throws {
        do {
            let directory = workDirectoryOptions.workspace
            var opened: ProvenanceStore?
            func store() throws -> ProvenanceStore {
                if let opened { return opened }
                let store = try workDirectoryOptions.openStore()
                opened = store
                return store
            }
            // A path to a run folder of another work directory (a kept reproduction, or any with --workdir not given) is read from that one.
            let (whereA, whereB) = try (Self.workDirectory(of: runA, default: directory, open: store),
                                        Self.workDirectory(of: runB, default: directory, open: store))
            let a = try RunSummary.load(runA, store: whereA.store, workspace: whereA.workspace)
            let b = try RunSummary.load(runB, store: whereB.store, workspace: whereB.workspace)
            for run in [a, b] {
                if let why = run.notAPipelineRun { throw UsageError("run \(run.id) cannot be compared: \(why)") }
            }
            let comparison = RunComparison(a, b)
            Self.noteUnreadable([a], workspace: whereA.workspace)
            Self.noteUnreadable([b], workspace: whereB.workspace)
            let shown = all ? comparison.fields : comparison.differences
            if json {
                JSONOutput.print(.object(["a": .string(a.id), "b": .string(b.id),
                                          "fields": .array(shown.map(FieldTable.document))]))
            } else {
                print("a = \(a.id)\nb = \(b.id)")
                if shown.isEmpty { print("no differences") } else { FieldTable.print(shown, labels: ("a", "b")) }
            }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}

extension DiffCommand {
    /// The work directory a run reference belongs to: WORKDIR's, unless it is a path to a run folder
    /// (`<dir>/runs/<id>`) of another work directory that holds a database.
    /// `open` is called only when the reference is not a run folder of another work directory: a run folder's path
    /// needs no --workdir (the default one, absent, had been opened first and refused the command).
    static func workDirectory(of reference: String, default workspace: Workspace, open: () throws -> ProvenanceStore) throws
        -> (store: ProvenanceStore, workspace: Workspace) {
        guard reference.contains("/") else { return (try open(), workspace) }
        // A path that is no run folder, with no work directory here to read it in: the path is what is wrong, not the default.
        func openOrNamePath() throws -> ProvenanceStore {
            guard workspace.exists else {
                throw UsageError("\(reference.echoed): not a run folder (a work directory's runs/<run>, beside its emopipe.sqlite), "
                                 + "and \(workspace.root.echoed) holds no work directory to look it up in (--workdir names one)")
            }
            return try open()
        }
        let folder = URL(fileURLWithPath: reference).standardizedFileURL.resolvingSymlinksInPath()
        let runs = folder.deletingLastPathComponent()
        guard runs.lastPathComponent == "runs" else { return (try openOrNamePath(), workspace) }
        let other = Workspace(root: runs.deletingLastPathComponent().path)
        let mine = URL(fileURLWithPath: workspace.root).standardizedFileURL.resolvingSymlinksInPath().path
        guard other.root != mine, FileManager.default.fileExists(atPath: other.databasePath) else { return (try openOrNamePath(), workspace) }
        return (try other.openStore(.readOnly), other)
    }
}

/// Prints comparison fields grouped by section, values shortened to fit a terminal.
enum FieldTable {
    static func print(_ fields: [RunComparison.Field], labels: (String, String), marks: Bool = false) {
        var section = ""
        // Values come from the database and result files: control characters are spelt out, so an edited one
        // cannot steer the terminal or print a line of its own.
        for field in fields {
            if field.section != section { section = field.section; Swift.print("\n[\(section.escaped)]") }
            let mark = marks ? (field.same ? "same     " : "DIFFERS  ") : ""
            if field.same && marks {
                Swift.print("  \(mark)\(field.name.escaped): \(shorten(field.a).escaped)")
            } else {
                // Cut, then escaped: a cut never falls inside an escape.
                let (a, b) = shortenAroundDifference(field.a, field.b)
                Swift.print("  \(mark)\(field.name.escaped): \(labels.0) \(a.escaped) | \(labels.1) \(b.escaped)")
            }
        }
    }

    static func document(_ field: RunComparison.Field) -> ParamValue {
        .object(["section": .string(field.section), "name": .string(field.name), "a": field.valueA ?? .null,
                 "b": field.valueB ?? .null, "same": .bool(field.same)])
    }

    private static func shorten(_ value: String) -> String { value.count > 64 ? String(value.prefix(61)) + "..." : value }

    /// Two long values that begin alike are shown from a little before where they part, so the
    /// difference is in what is printed (two reasons after one long path looked equal).
    static func shortenAroundDifference(_ a: String, _ b: String) -> (String, String) {
        let common = zip(a, b).prefix { $0 == $1 }.count
        guard a != b, max(a.count, b.count) > 64, common > 40 else { return (shorten(a), shorten(b)) }
        func window(_ value: String) -> String {
            let tail = String(value.dropFirst(common - 20))
            return "..." + (tail.count > 61 ? String(tail.prefix(58)) + "..." : tail)
        }
        return (window(a), window(b))
    }
}

struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Re-run a recorded run from scratch and report, field by field, whether its results match.",
        discussion: Help.reflow("""
        The run's recorded manifest (relative paths resolved from where it was) with the stage
        parameters it recorded laid over it (so defaults edited since in the pipeline file do not
        change what runs), its data root and thread count drive a fresh run of the same stages in an
        empty work directory (--into, or
        WORKDIR/reproductions/<run>-<time>). Then every stage output digest, metric and result file
        (metrics.json, cv.json, model.onnx, model.int8.onnx, model.safetensors, speakers.json) is compared, with each test clip
        no figure counts (stage, file name, reason), and the inputs that may
        explain a difference (parameters, dataset fingerprint, git commit, executable, libraries).
        The reproduction's work directory is removed when everything matched, unless --keep.

        Exit status: 0 the results match; 1 they differ, or the run cannot be repeated (its record is damaged,
        its data root gone, it did not finish, it was a scale-out worker's run over its share); 64 no such run.
        With --json: {run, reproduction, workdir, results_match, fields: [{section, name, a, b, same}]}, the fields as `diff --json` gives them.
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Argument(help: ArgumentHelp("The run to reproduce: its id, the start of it, or its folder's path.", valueName: "run"))
    var reference: String

    @Option(help: "The empty work directory to reproduce in.")
    var into: String?

    @Flag(help: "Keep the reproduction's work directory even when everything matched.")
    var keep = false

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    /// An empty path would quietly mean the current folder.
    func validate() throws {
        if into?.isEmpty == true { throw ValidationError("--into '': an empty path names no folder") }
        if let into, let refusal = WorkDirectoryOptions.nestingRefusal(into) { throw ValidationError("--into \(into.echoed): \(refusal)") }
        // As --workdir: paths recorded through /proc/self/cwd would mean another folder to every other process.
        if let into, let refusal = KernelFilesystem.rootRefusal(into, as: .workDirectory) { throw ValidationError("--into \(into.echoed): \(refusal)") }
        if let into, let link = Folder.danglingLink(onPathTo: into) {
            throw ValidationError("--into \(into.echoed): \(link.echoed) is a link to a folder that does not exist: remove it or create its target")
        }
    }

    func run() throws {
        do {
            // A path to a run folder of another work directory is read from that one, as `diff` reads it.
            let (store, home) = try DiffCommand.workDirectory(of: reference, default: workDirectoryOptions.workspace, open: { try workDirectoryOptions.openStore() })
            let original = try RunSummary.load(reference, store: store, workspace: home)
            // Said before minutes of work, not as every result DIFFERING after them.
            let reproduction = Reproduction(original: original)
            try reproduction.requireFinished()
            if let gone = original.missingResultFolders(in: home).first {
                throw EmoError.io(path: gone, reason: "the folder of run \(original.id)'s results is gone, so there is nothing to compare "
                                  + "a reproduction with (`emopipe runs` still lists what was recorded of it)")
            }
            let stamp = String(Int(Date().timeIntervalSince1970))
            // Beside the run it repeats: a run folder's path given from elsewhere must not make a `work` folder here.
            let target = into.map { Workspace(root: $0) } ?? home.reproduction(of: original.id, stamp: stamp)
            let cancellation = Cancellation()
            // A record it cannot repeat is said before "reproducing", and before what it will take from this emopipe.
            let recorded = try reproduction.checkedManifest()
            for note in reproduction.notes { StandardStream.error.write(Data("note: \(note)\n".utf8)) }
            let runner = try reproduction.prepare(into: target, stages: StageCatalog.all(), libraries: StageCatalog.libraryVersions,
                                                  cancellation: cancellation, recorded: recorded)
            StandardStream.error.write(Data("reproducing run \(original.id.echoed) in \(target.root.escaped)\n".utf8))
            let signals = SignalTrap(cancellation: cancellation)
            defer { signals.restore() }
            let outcome: Reproduction.Outcome
            do {
                outcome = try reproduction.run(runner)
            } catch let error as EmoError where error == .interrupted {
                // A reproduction cannot resume (it needs an empty folder): say where the part done is left.
                let next = into == nil ? "reproduce again starts a new one" : "reproducing again needs an empty --into folder"
                StandardStream.error.write(Data("emopipe: the interrupted reproduction's work directory is left in \(target.root.escaped) (remove it; \(next))\n".utf8))
                throw error
            }
            let comparison = outcome.comparison
            // Two work directories; the original's run folders were checked before it ran again.
            DiffCommand.noteUnreadable([original, outcome.reproduction], workspace: nil)
            if json {
                JSONOutput.print(.object([
                    "run": .string(original.id), "reproduction": .string(outcome.reproduction.id),
                    "workdir": .string(target.root), "results_match": .bool(comparison.resultsMatch),
                    "fields": .array(comparison.fields.map(FieldTable.document))]))
            } else {
                print("original     \(original.id)\nreproduction \(outcome.reproduction.id) in \(target.root.escaped)")
                FieldTable.print(comparison.fields, labels: ("original", "now"), marks: true)
                print("\nresults \(comparison.resultsMatch ? "match" : "DIFFER"): "
                      + "\(comparison.fields.filter(\.same).count) of \(comparison.fields.count) fields the same")
            }
            if comparison.resultsMatch && !keep && into == nil { try? FileManager.default.removeItem(atPath: target.root) }
            if !comparison.resultsMatch { throw ExitCode(ExitStatus.failure) }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}
