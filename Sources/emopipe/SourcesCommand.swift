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
        A file ingest accepted may still fail in the audio or faces stage (silent, too short, no face):
        such a failure under the stage's current parameters is listed with the file, and --failed
        includes it. So does a file that changed on disk after ingest hashed it, while audio or faces
        read it: its features were not computed, and the next `emopipe run` reads it again.

        With --json: an array of {path, sha256, kind, modality, channel, emotion, intensity, statement,
        repetition, actor, status, reason, stage_failures: [{stage, reason, run_id}],
        changed_since_ingest}; the code fields are integers, null for an ignored file or a name whose codes are invalid; status and
        reason are ingest's.
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Flag(help: "Only the sources that failed, in ingest or in a per-source stage.")
    var failed = false

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    func run() throws {
        do {
            let store = try workDirectoryOptions.openStore()
            let all = try store.sources(status: nil)
            let stageFailures = try Self.currentStageFailures(store, sources: all)
            let sources = all.filter {
                !failed || $0.status == .failed || stageFailures[$0.path] != nil || $0.changedSinceIngest
            }
            if json {
                JSONOutput.print(.array(sources.map { Self.json($0, stageFailures: stageFailures[$0.path] ?? []) }))
            } else {
                printTable(sources, stageFailures: stageFailures, of: all.count)
            }
        } catch {
            throw Failure.exit(for: error)
        }
    }

    /// Per path, the audio and faces failures recorded under each stage's current parameters for
    /// the file's current content: what the last run of the stage counted as failed. A failure is the
    /// content's, so every file with those bytes shows it (the stage computed them once, under one path).
    static func currentStageFailures(_ store: ProvenanceStore, sources: [SourceRecord]) throws -> [String: [FailureRecord]] {
        let current = try [StageName.audio, .faces].compactMap { stage in
            try store.stageState(stage.rawValue).map { (stage.rawValue, $0.parametersFingerprint) }
        }
        let ok = sources.filter { $0.status == .ok && $0.sha256 != nil }
        var found: [String: [FailureRecord]] = [:]
        for (stage, fingerprint) in current {
            // The newest failure of each content.
            var byContent: [String: FailureRecord] = [:]
            for failure in try store.failures(stage: stage) where failure.fingerprint == fingerprint
                && (byContent[failure.sha256]?.id ?? .min) < (failure.id ?? .min) {
                byContent[failure.sha256] = failure
            }
            for source in ok {
                guard let sha = source.sha256, let failure = byContent[sha] else { continue }
                found[source.path, default: []].append(failure)
            }
        }
        return found
    }

    static let changedNote = "changed on disk after ingest hashed it: not computed; the next `emopipe run` reads it again"

    static func json(_ s: SourceRecord, stageFailures: [FailureRecord] = []) -> ParamValue {
        .object([
            "stage_failures": .array(stageFailures.map {
                .object(["stage": .string($0.stage), "reason": .string($0.reason), "run_id": .string($0.runId)])
            }),
            "path": .string(s.path), "sha256": JSONOutput.optional(s.sha256), "kind": JSONOutput.optional(s.kind),
            "modality": JSONOutput.optional(s.modality), "channel": JSONOutput.optional(s.channel),
            "emotion": JSONOutput.optional(s.emotion), "intensity": JSONOutput.optional(s.intensity),
            "statement": JSONOutput.optional(s.statement), "repetition": JSONOutput.optional(s.repetition),
            "actor": JSONOutput.optional(s.actor), "status": .string(s.status.rawValue),
            "reason": JSONOutput.optional(s.reason), "changed_since_ingest": .bool(s.changedSinceIngest),
        ])
    }

    private func printTable(_ sources: [SourceRecord], stageFailures: [String: [FailureRecord]], of total: Int) {
        for s in sources {
            let emotion = s.emotion.flatMap { Emotion(rawValue: $0)?.name } ?? "-"
            let actor = s.actor.map { String(format: "%02d", $0) } ?? "--"
            var line = "\(s.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) "
                + "\(emotion.padding(toLength: 9, withPad: " ", startingAt: 0)) actor \(actor)  \(s.path.escaped)"
            // A file name may hold line breaks or terminal escapes: one line per source, and nothing that steers the terminal.
            if let reason = s.reason { line += "  — \(reason.escapedRecorded)" }
            for failure in stageFailures[s.path] ?? [] { line += "  — \(failure.stage) failed: \(failure.reason.escapedRecorded)" }
            if s.changedSinceIngest { line += "  — \(Self.changedNote)" }
            print(line)
        }
        let counts = Dictionary(grouping: sources, by: \.status).mapValues(\.count)
        var parts = SourceStatus.allCases.compactMap { status in counts[status].map { "\($0) \(status.rawValue)" } }
        let failedLater = sources.filter { stageFailures[$0.path] != nil }.count
        if failedLater > 0 { parts.append("\(failedLater) failed in audio or faces") }
        let changed = sources.filter(\.changedSinceIngest).count
        if changed > 0 { parts.append("\(changed) changed since ingest") }
        let summary = sources.isEmpty
            ? (failed && total > 0 ? "no failed sources (of \(total))" : "no sources recorded yet (run ingest first)")
            : "\(sources.count) source\(sources.count == 1 ? "" : "s"): \(parts.joined(separator: ", "))"
        StandardStream.error.write(Data("\(summary)\n".utf8))
    }
}
