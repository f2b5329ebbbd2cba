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

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a contact sheet: per clip, its crops and a thumbnail of a frame with the detected boxes.",
            discussion: Help.reflow("""
            Runs the face extraction with the faces parameters of --manifest on the given video files (any
            mp4; they need not be ingested) and writes one PNG (libavcodec's encoder).
            Example: emopipe faces preview data/Actor_01/01-01-03-01-01-01-01.mp4 --out sheet.png
            """))

        @OptionGroup var manifestOptions: NamedManifestOptions
        @Option(help: "The PNG to write.") var out: String
        @Argument(help: "Video files (mp4).") var sources: [String]

        func run() throws {
            do {
                try OutputFile.check(out, option: "--out")
                let runner = try PipelineRunner(manifest: try manifestOptions.load(),
                                                workspace: Workspace(root: FileManager.default.currentDirectoryPath),
                                                stages: StageCatalog.all())
                guard let parameters = runner.parameters[StageName.faces.rawValue]?.value as? FaceParameters else {
                    throw PipelineError.invalidFile("\(runner.manifest.pipelinePath): the pipeline has no faces stage")
                }
                let extractor = try FaceExtractor(parameters)
                var rows: [(label: String, clip: FaceClip, thumbnail: FaceThumbnail?)] = []
                for path in sources {
                    do {
                        let clip = try extractor.extract(path: path, thumbnailWidth: 240)
                        rows.append(((path as NSString).lastPathComponent, clip, clip.thumbnail))
                    } catch {
                        FileHandle.standardError.write(Data("emopipe: \(path): \(error)\n".utf8))
                    }
                }
                guard !rows.isEmpty else { throw ExitCode(ExitStatus.failure) }
                let sheet = try FaceContactSheet.render(clips: rows)
                do { try sheet.write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                    throw EmoError.io(path: out, reason: "cannot write the contact sheet (\(error.localizedDescription))")
                }
                print("wrote \(out) (\(rows.count) clips)")
                if rows.count < sources.count { throw ExitCode(ExitStatus.partial) }
            } catch {
                throw Failure.exit(for: error)
            }
        }
    }
}
