import ArgumentParser
import EmoCore
import EmoFeatures
import EmoPipeline
import EmoStore
import EmoStages
import Foundation

struct FacesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faces",
        abstract: "Look at face crops.",
        subcommands: [Preview.self])

    /// Reached only when no subcommand was named: the help, and a usage error (exit status 64), as `emopipe` alone.
    func run() throws { throw EmoPipeCommand.noCommandNamed(Self.self, path: "emopipe faces") }

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a contact sheet: per clip, its crops and a thumbnail of a frame with the detected boxes.",
            discussion: Help.reflow("""
            Runs the face extraction with the faces parameters of --manifest on the given video files (any
            mp4; they need not be ingested) and writes one PNG (libavcodec's encoder).
            Example: emopipe faces preview data/ravdess/Actor_01/01-01-03-01-01-01-01.mp4 --out sheet.png
            """))

        static let thumbnailWidth = 240

        @OptionGroup var manifestOptions: NamedManifestOptions
        @Option(help: "The PNG to write (- : stdout).") var out: String

        /// `--out -`, as `cache get --npy -`: the PNG on stdout, the line that says what was written on stderr.
        var toStandardOutput: Bool { out == "-" }
        @Argument(help: "Video files (mp4).") var sources: [String]

        func validate() throws {
            if sources.contains("") { throw ValidationError("an empty argument names no file") }
            if toStandardOutput && isatty(STDOUT_FILENO) != 0 {
                throw ValidationError("--out - writes a PNG to stdout, which is a terminal: redirect it (> sheet.png) or pipe it")
            }
        }

        func run() throws {
            do {
                if !toStandardOutput { try OutputFile.check(out, option: "--out", format: "png") }
                let runner = try PipelineRunner(manifest: try manifestOptions.load(),
                                                workspace: Workspace(root: FileManager.default.currentDirectoryPath),
                                                stages: StageCatalog.all())
                guard let resolved = runner.parameters[StageName.faces.rawValue], let parameters = resolved.value as? FaceParameters else {
                    throw PipelineError.invalidFile("\(runner.manifest.pipelinePath): the pipeline has no faces stage")
                }
                // As a run would: a landmark model that is a pipe or a folder is named, never opened by dlib (a pipe hung it).
                try FacesStage().checkBeforeRunning(resolved, loading: true)
                // The sheet's size is known before any clip is read, but for the thumbnails' height (taken as square,
                // a landscape clip's at most): one too large for the PNG encoder is refused now, not after every clip
                // was decoded. Portrait clips can still make it too large at the end, said as an encoding error.
                let sheet = FaceContactSheet.size(rows: sources.count, crops: parameters.frames, cropSize: parameters.size,
                                                  thumbnailWidth: Self.thumbnailWidth, thumbnailHeight: Self.thumbnailWidth)
                guard FaceContactSheet.encodable(width: sheet.width, height: sheet.height) else {
                    throw UsageError("a contact sheet of \(sources.count) clip(s) with faces.frames = \(parameters.frames) and faces.size = \(parameters.size) "
                                     + "would be \(sheet.width)x\(sheet.height) pixels, more than the PNG encoder takes: lower them, or give fewer clips")
                }
                let extractor = try FaceExtractor(parameters)
                var rows: [(label: String, clip: FaceClip, thumbnail: FaceThumbnail?)] = []
                for path in sources {
                    do {
                        let clip = try extractor.extract(path: path, thumbnailWidth: Self.thumbnailWidth)
                        rows.append(((path as NSString).lastPathComponent, clip, clip.thumbnail))
                        // The sheet shows what the part that exists holds; a run's ingest fails such a file.
                        if clip.truncated {
                            StandardStream.error.write(Data(("emopipe: note: \(path.escaped): truncated (it ends before its index says): its crops come from "
                                + "the part that exists, marked TRUNCATED on the sheet; ingest fails such a file, and predict refuses it\n").utf8))
                        }
                    } catch FaceError.media(let media) {
                        // The media error names the file itself.
                        StandardStream.error.write(Data("emopipe: \(media.path.escaped): \(media.reason)\n".utf8))
                    } catch {
                        StandardStream.error.write(Data("emopipe: \(path.escaped): \(Predictor.clause("\(error)"))\n".utf8))
                    }
                }
                guard !rows.isEmpty else { throw ExitCode(ExitStatus.failure) }
                let png = try FaceContactSheet.render(clips: rows)
                let written = "(\(rows.count) clip\(rows.count == 1 ? "" : "s"))"
                if toStandardOutput {
                    StandardStream.output.write(png)
                    StandardStream.error.write(Data("wrote a PNG to stdout \(written)\n".utf8))
                } else {
                    try OutputFile.write(png, to: out, option: "--out")
                    print("wrote \(out.escaped) \(written)")
                }
                if rows.count < sources.count { throw ExitCode(ExitStatus.partial) }
            } catch {
                throw Failure.exit(for: error)
            }
        }
    }
}
