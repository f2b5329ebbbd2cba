import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStore
import Foundation

struct SourcesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sources",
        abstract: "List the files ingest has recorded: ok, failed (with the reason), ignored or removed.",
        discussion: Help.reflow("""
        With --json: an array of {path, sha256, kind, modality, channel, emotion, intensity, statement,
        repetition, actor, status, reason}; the code fields are integers, null for an ignored file.
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Flag(help: "Only the sources that failed.")
    var failed = false

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    func run() throws {
        do {
            let store = try workDirectoryOptions.openStore()
            let sources = try store.sources(status: failed ? .failed : nil)
            if json { JSONOutput.print(.array(sources.map(Self.json))) } else { printTable(sources) }
        } catch {
            throw Failure.exit(for: error)
        }
    }

    static func json(_ s: SourceRecord) -> ParamValue {
        .object([
            "path": .string(s.path), "sha256": JSONOutput.optional(s.sha256), "kind": JSONOutput.optional(s.kind),
            "modality": JSONOutput.optional(s.modality), "channel": JSONOutput.optional(s.channel),
            "emotion": JSONOutput.optional(s.emotion), "intensity": JSONOutput.optional(s.intensity),
            "statement": JSONOutput.optional(s.statement), "repetition": JSONOutput.optional(s.repetition),
            "actor": JSONOutput.optional(s.actor), "status": .string(s.status.rawValue),
            "reason": JSONOutput.optional(s.reason),
        ])
    }

    private func printTable(_ sources: [SourceRecord]) {
        for s in sources {
            let emotion = s.emotion.flatMap { Emotion(rawValue: $0)?.name } ?? "-"
            let actor = s.actor.map { String(format: "%02d", $0) } ?? "--"
            var line = "\(s.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) "
                + "\(emotion.padding(toLength: 9, withPad: " ", startingAt: 0)) actor \(actor)  \(s.path.escaped)"
            // A file name may hold line breaks or terminal escapes: one line per source, and nothing that steers the terminal.
            if let reason = s.reason { line += "  — \(reason.escaped)" }
            print(line)
        }
        let counts = Dictionary(grouping: sources, by: \.status).mapValues(\.count)
        let parts = SourceStatus.allCases.compactMap { status in counts[status].map { "\($0) \(status.rawValue)" } }
        FileHandle.standardError.write(Data("\(sources.count) sources: \(parts.joined(separator: ", "))\n".utf8))
    }
}
