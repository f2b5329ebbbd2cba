import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStages
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict the emotion of new media files (mp4 or wav) with a run's exported model.",
        discussion: Help.reflow("""
        The run must have completed the export stage. Features are computed as the pipeline computes them.
        A file longer than the model's window (frames × hop) also gets a timeline of windows every --hop
        seconds, audio and video aligned by their timestamps; its label averages the windows.
        With --json: an array of {path, label, probabilities: {label: p}, timeline: [{start, end, label,
        probabilities}]}. A file that cannot be read is reported and skipped (exit status 3).
        Example: emopipe predict --run 20261125-150320-c9e9f3 clip.mp4 speech.wav --json
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
    @Option(name: .customLong("run"), help: "A run id (a folder under WORKDIR/runs) or a path to a run folder.")
    var runReference: String
    // Taken unconditionally so that `--hop -1` reaches `validate` (and is refused there, naming the
    // value) instead of being read as an unknown option `-1`.
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds between timeline windows, at least \(Self.minimumHop).", valueName: "seconds"))
    var hop: Double = 1.0

    /// Windows closer than this only repeat their neighbours at a cost per window.
    static let minimumHop = 0.1
    @Flag(help: "Print one JSON document on stdout.") var json = false
    @Argument(help: "Media files (mp4 or wav).") var files: [String]

    func validate() throws {
        guard hop.isFinite, hop >= Self.minimumHop else {
            throw ValidationError("--hop \(hop): expected a number of seconds of at least \(Self.minimumHop)")
        }
    }

    func run() throws {
        do {
            let folder = workDirectoryOptions.workspace.runFolder(reference: runReference)
            guard FileManager.default.fileExists(atPath: folder) else {
                throw UsageError("no run '\(runReference)': neither a run folder nor a run id in \(workDirectoryOptions.workspace.runsRoot) (see `emopipe runs`)")
            }
            let predictor = try Predictor(run: folder, hopSeconds: hop)
            var predictions: [Predictor.Prediction] = []
            var failed = 0
            for file in files {
                do { predictions.append(try predictor.predict(path: file)) } catch {
                    failed += 1
                    let message = "\(error)"
                    let reason = message.hasPrefix(file + ": ") ? String(message.dropFirst(file.count + 2)) : message
                    FileHandle.standardError.write(Data("emopipe: \(file): \(reason)\n".utf8))
                }
            }
            if json {
                FileHandle.standardOutput.write(try JSONOutput.encoder().encode(predictions) + Data("\n".utf8))
            } else {
                for p in predictions {
                    let top = p.probabilities.sorted { $0.value > $1.value }.prefix(3)
                        .map { String(format: "%@ %.2f", $0.key, $0.value) }.joined(separator: ", ")
                    print("\(p.path): \(p.label) (\(top))" + (p.timeline.isEmpty ? "" : ", \(p.timeline.count) windows"))
                    for w in p.timeline { print(String(format: "  %6.2f–%6.2f s  %@", w.start, w.end, w.label)) }
                }
            }
            if failed > 0 { throw ExitCode(ExitStatus.partial) }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}
