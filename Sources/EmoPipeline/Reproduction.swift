import EmoCore
import EmoStore
import Foundation

/// Re-runs a recorded run from scratch in a fresh work directory — same manifest text, data root,
/// thread count and stages — and compares the two runs field by field.
///
///     let original = try RunSummary.load("20261125-101500-ab12cd", store: store, workspace: work)
///     let reproduction = Reproduction(original: original)
///     let outcome = try reproduction.run(reproduction.prepare(into: Workspace(root: "/tmp/repro"), stages: all, libraries: [:]))
///     print(outcome.comparison.resultsMatch)
public struct Reproduction {
    public var original: RunSummary

    public init(original: RunSummary) { self.original = original }

    /// What the reproduction cannot take from the record and takes from this emopipe instead, said before it runs: a run
    /// recorded before runs kept their resolved parameters (the column is empty) is repeated from its manifest with
    /// today's defaults, so a default changed since shows as a difference, not as a bug in the run.
    public var notes: [String] {
        guard original.record.paramsJSON == nil, !original.stages.isEmpty else { return [] }
        return ["run \(original.id) recorded no resolved parameters (an older EmoPipe did not keep them): it is repeated from its "
                + "recorded manifest with this emopipe's defaults, so a default changed since shows as a difference"]
    }

    /// A run that did not finish has no whole results to compare a reproduction with.
    public func requireFinished() throws {
        if let why = original.notAPipelineRun { throw PipelineError.unrepeatable(run: original.id, why: why) }
        let why: String
        switch original.record.status {
        case .done, .partial: return
        case .running: why = "it has not finished (it is running)"
        case .failed: why = "it failed"
        case .interrupted: why = "it was interrupted"
        }
        throw PipelineError.unrepeatable(run: original.id, why: "\(why), so its results are not all there to compare a "
                                         + "reproduction with: reproduce a run that finished (done or partial)")
    }

    /// The recorded manifest (its recorded --set lines included: `Manifest.parse` reads them), its
    /// relative paths resolved from where it was, with the recorded data root and thread count.
    public func manifest() throws -> Manifest {
        let record = original.record
        var manifest: Manifest
        do {
            manifest = try Manifest.parse(yaml: record.manifestJSON, path: record.manifestPath ?? record.dataRoot + "/manifest.yaml")
        } catch {
            // The text parsed is the record's copy: the message would otherwise blame the manifest file on disk.
            throw PipelineError.unrepeatable(run: record.id, why: "its recorded manifest text is refused (its record is damaged, "
                                             + "or this emopipe no longer takes it): \(error)")
        }
        manifest.dataRoot = record.dataRoot
        // The record is read back from a database: a value no run could have had is damage, not a setting.
        guard (1...Manifest.maxThreads).contains(record.threads) else {
            throw PipelineError.unrepeatable(run: record.id, why: "it records threads = \(record.threads), outside 1-\(Manifest.maxThreads): its record is damaged")
        }
        manifest.threads = record.threads
        // Unreadable recorded parameters would leave the reproduction to today's defaults, silently.
        if let problem = original.parametersProblem {
            throw PipelineError.unrepeatable(run: record.id, why: "its recorded parameters are \(problem): its record is damaged")
        }
        return manifest
    }

    /// The recorded manifest, and its data root checked: said before a work directory is made (a
    /// reproduction cannot resume, so a folder left half made would only have to be removed).
    public func checkedManifest() throws -> Manifest {
        // A scale-out worker read its slice of the data root: repeated whole, it reads all of it and differs.
        if let worker = original.record.worker {
            throw PipelineError.unrepeatable(run: original.id, why: "it is scale-out worker \(worker.echoed)'s run, which read only its share "
                                             + "of the data root; reproduce repeats whole runs: reproduce a run over the whole data root "
                                             + "(after `emopipe merge`, `emopipe run`), or repeat this one with `emopipe run MANIFEST --worker \(worker.echoed)`")
        }
        let recorded = try manifest()
        // Every run records the absolute path it read: a relative one would be read from wherever this runs.
        guard recorded.dataRoot.hasPrefix("/") else {
            throw PipelineError.unrepeatable(run: original.id, why: "it records the data root '\(recorded.dataRoot.echoed)', not an absolute "
                                             + "path: its record is damaged")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: recorded.dataRoot, isDirectory: &isFolder), isFolder.boolValue else {
            throw PipelineError.unrepeatable(run: original.id, why: "its data root '\(recorded.dataRoot.echoed)' does not exist or is not a "
                                             + "folder (a reproduction reads the same files)")
        }
        return recorded
    }

    /// The manifest with every stage parameter the run recorded laid over its own: defaults in the
    /// pipeline file edited since (or code defaults changed) would otherwise make the reproduction run
    /// other settings and call the result different. Manifest-wide fields and borrowed keys
    /// (`stage.key`) the record repeats per stage are left to the manifest, which sets them; a key this
    /// code no longer takes is left out, and the comparison shows it.
    func replaying(_ manifest: Manifest, stages: [any Stage]) -> Manifest {
        var manifest = manifest
        let byName = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, recorded) in original.params {
            guard let stage = byName[name], let values = recorded.objectValue else { continue }
            let own = values.filter { stage.parameterKeys.contains($0.key) && !stage.manifestFields.contains($0.key) }
            manifest.overrides[name] = ParamValue.merge(manifest.overrides[name] ?? [:], own)
        }
        return manifest
    }

    public struct Outcome: Sendable {
        public var reproduction: RunSummary
        public var comparison: RunComparison
        public var report: RunReport
    }

    /// The runner of the reproduction, every refusal said (a folder that is not empty, a manifest or
    /// recorded parameters this emopipe refuses) and nothing made yet: a command announces the
    /// reproduction only once this has passed. `recorded`: the run's `checkedManifest()` when the caller
    /// has it already (checked again otherwise).
    public func prepare(into workspace: Workspace, stages: [any Stage], libraries: [String: String],
                        cancellation: Cancellation = Cancellation(), recorded checked: Manifest? = nil) throws -> PipelineRunner {
        if workspace.exists {
            throw PipelineError.invalidFile("\(workspace.root) already holds a work directory; a reproduction starts from an empty one")
        }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: workspace.root, isDirectory: &isFolder), !isFolder.boolValue {
            throw PipelineError.invalidFile("\(workspace.root) is not a folder; a reproduction starts in an empty one")
        }
        // Anything else there (a data root, say) would get a database, a cache and runs mixed into it.
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: workspace.root), let first = contents.sorted().first {
            throw PipelineError.invalidFile("\(workspace.root) is not empty (it holds \(first.echoed)\(contents.count > 1 ? " and \(contents.count - 1) more" : "")); a reproduction starts in an empty folder")
        }
        let recorded = try checked ?? checkedManifest()
        let runner: PipelineRunner
        do {
            runner = try PipelineRunner(manifest: replaying(recorded, stages: stages), workspace: workspace, stages: stages,
                                        cancellation: cancellation, libraries: libraries)
        } catch let refusal as PipelineError {
            // The recorded parameters are laid over the manifest: a value only they hold is the record's,
            // though the message names the manifest the values were laid over.
            do { _ = try PipelineRunner(manifest: recorded, workspace: workspace, stages: stages) } catch {
                // Refused without the parameters laid over it too: the recorded manifest (or the pipeline
                // file it names) is what this emopipe cannot take, not the manifest file on disk.
                throw PipelineError.unrepeatable(run: original.id, why: "its recorded manifest is refused (its record is damaged, "
                                                 + "this emopipe no longer takes it, or its pipeline file changed): \(error)")
            }
            throw PipelineError.unrepeatable(run: original.id, why: "its recorded parameters are refused (its record is damaged, or this "
                                             + "emopipe no longer takes them): \(refusal)")
        }
        return runner
    }

    /// Runs the stages the original ran with `runner` (from `prepare`) and compares the two runs.
    public func run(_ runner: PipelineRunner) throws -> Outcome {
        let targets = original.stages.map(\.stage).uniqued()
        let report = try runner.run(RunSelection(targets: targets), command: "emopipe reproduce \(original.id)")
        let store = try runner.workspace.openStore(.readOnly)
        let reproduction = try RunSummary.load(report.runId, store: store, workspace: runner.workspace)
        return Outcome(reproduction: reproduction,
                       comparison: RunComparison(original, reproduction, stagesOfFirst: true), report: report)
    }
}
