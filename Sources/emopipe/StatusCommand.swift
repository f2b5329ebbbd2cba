import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Say, per stage, whether it is up to date, stale or never run, and why.",
        discussion: Help.reflow("""
        Sources are judged against --data when given, else the data root the work directory remembers
        from its last `run --data`, else the manifest's `data`; one line on stderr says which.
        The reason of a stage a run would do adds what the run would refuse before starting it (a
        landmark model that cannot be read), what `run --dry-run` foretells of it (a split naming actors the
        data root has no file of), or that its last attempt with these parameters failed.
        With --json: an array of {stage, state, reason, seconds, cpu_seconds, peak_rss_mb}; state is
        up-to-date, stale or never-run; the last three are what the execution that produced the stage's
        current output cost (wall time, process CPU time, peak resident memory in MiB), null when it
        never completed or ran before EmoPipe measured it.
        """))

    @OptionGroup var manifestOptions: ManifestOptions
    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    func run() throws {
        do {
            let (manifest, dataRoot) = try manifestOptions.load(in: workDirectoryOptions.workspace)
            dataRoot.announce()
            // Status still reports (ingest shows as stale), but says why a run would stop.
            dataRoot.warnUnlessFolder()
            let runner = try PipelineRunner(manifest: manifest, workspace: workDirectoryOptions.workspace,
                                            stages: StageCatalog.all())
            let statuses = try runner.status()
            if manifestOptions.arguments.given == nil { otherManifest.write(otherManifest.text(judgedBy: manifest.path)) }
            // Read while a run works: its stage in progress shows as it was before that run.
            let lockPath = workDirectoryOptions.workspace.lockPath
            if let holder = WorkDirectoryLock.currentHolder(path: lockPath) {
                StandardStream.error.write(Data("note: \(holder) is working in this work directory; states are as recorded so far\n".utf8))
            } else if let obstruction = WorkDirectoryLock.obstruction(path: lockPath) {
                StandardStream.error.write(Data("emopipe: warning: \(lockPath) is \(obstruction), not a regular file; `run` refuses it until it is removed\n".utf8))
            }
            if json {
                JSONOutput.print(.array(statuses.map {
                    .object(["stage": .string($0.stage), "state": .string($0.state.rawValue), "reason": .string($0.reason),
                             "seconds": $0.lastExecution.map { .double($0.seconds) } ?? .null,
                             "cpu_seconds": $0.lastExecution.map { .double($0.cpuSeconds) } ?? .null,
                             "peak_rss_mb": $0.lastExecution?.peakRSSMB.map(ParamValue.double) ?? .null])
                }))
            } else {
                let width = statuses.map(\.stage.count).max() ?? 0
                for status in statuses {
                    let name = status.stage.padding(toLength: width, withPad: " ", startingAt: 0)
                    let cost = status.lastExecution.map { " [took \(ProgressReporter.duration($0.seconds)), \($0.line)]" } ?? ""
                    print("\(name)  \(status.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))  \(status.reason.escaped)\(cost)")
                }
            }
        } catch {
            // The default manifest is relative to the current folder: outside the checkout, name the run's own.
            if manifestOptions.arguments.given == nil { otherManifest.write(otherManifest.textWithoutDefault()) }
            throw Failure.exit(for: error)
        }
    }

    private var otherManifest: OtherManifestNote {
        OtherManifestNote(workDirectory: workDirectoryOptions, command: ["emopipe", "status"],
                          rest: OtherManifestNote.arguments(of: manifestOptions) + (json ? ["--json"] : []))
    }
}
