import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStages
import Foundation

struct NightlyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nightly",
        abstract: "Reprocess what changed under the data root, retrain only if needed, and write a dated report.",
        discussion: Help.reflow("""
        Runs every stage of the manifest that its final stages read: ingest re-scans the data
        root and marks sources gone from disk as removed (their cached records stay until `cache gc`),
        per-source stages compute only new or changed sources, and train, evaluate and export re-run
        only when their stage fingerprint changed (data, manifest or code).

        The report goes to WORKDIR/nightly/<run>.json and <run>.md (and to stdout: Markdown, or the JSON
        with --json): sources added, changed, removed and failed since the previous report (so an interrupted
        or failed night's changes, or those an `emopipe run` noticed in between, are listed too; the sources in use
        are compared, content by content, with those of the previous report's run); each stage's action and time; the
        manifest's watched metrics (`nightly: {metrics: [...], tolerance: 0.02}`) against the previous
        nightly report of the same manifest and data root, with deltas. A watched name must be a scalar of
        metrics.json (weighted_f1, seven_class.accuracy, ...) or cv.json (cv.weighted_f1.mean, ...): another
        is refused, exit 64.

        Exit status for alerting: 0 all well; 3 some sources failed; 4 a watched metric worsened by more
        than the tolerance (a score fell, an `int8.*_drop` or `cv.*.std` rose; counts never alert; 4 wins
        over 3); 1 the pipeline failed (the cause on stderr too) or the reports folder cannot be written
        (checked first); 64 a bad manifest or a data root that is not a folder; 75 another run holds the
        work directory.

        Scheduling examples: pipelines/deploy/crontab, emopipe-nightly.service and .timer.
        """))

    @Argument(help: "The experiment manifest.")
    var manifest: String = "manifests/nightly.yaml"

    @Option(name: .long, help: "The data root, instead of the one the work directory remembers or the manifest's `data`; remembered.")
    var data: String?

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Flag(help: "Print the report as one JSON document on stdout (instead of Markdown).")
    var json = false

    func validate() throws { try workDirectoryOptions.requireOwnPlace() }

    func run() throws {
        do {
            let (manifest, dataRoot) = try ManifestOptions.load(path: self.manifest, data: data, settings: [],
                                                                in: workDirectoryOptions.workspace)
            dataRoot.announce()
            let cancellation = Cancellation()
            let signals = SignalTrap(cancellation: cancellation)
            defer { signals.restore() }
            let runner = try PipelineRunner(manifest: manifest, workspace: workDirectoryOptions.workspace,
                                            stages: StageCatalog.all(), cancellation: cancellation,
                                            libraries: StageCatalog.libraryVersions)
            try dataRoot.requireFolder(apartFrom: workDirectoryOptions.workspace)
            let workspace = workDirectoryOptions.workspace
            runner.started = { dataRoot.remember(in: workspace) }
            let nightly = Nightly(runner: runner)
            let report = try nightly.run(command: CommandLine.arguments.joined(separator: " "))
            if json {
                StandardStream.output.write(report.json + Data("\n".utf8))
            } else {
                print(report.markdown, terminator: "")
            }
            for passedOver in report.unreadableReports ?? [] {
                StandardStream.error.write(Data("note: passed over when the previous report was looked for: \(passedOver)\n".utf8))
            }
            // The cause goes to stderr too, where a scheduler's log looks for it, as `emopipe run` puts it.
            if let error = report.error { StandardStream.error.write(Data("emopipe: \(error)\n".utf8)) }
            StandardStream.error.write(Data("nightly report: \(nightly.reportsFolder)/\(report.runId).md\n".utf8))
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}
