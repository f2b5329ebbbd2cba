import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStore
import Foundation

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the lineage of one source: its facts, the runs that saw it, its failures and artifacts.",
        discussion: "SOURCE is a path (as recorded, or relative to the current folder) or a SHA-256 (or a prefix of one).")

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Argument(help: "A source path or SHA-256.")
    var source: String

    func run() throws {
        do {
            let store = try workDirectoryOptions.openStore()
            let matches = try Self.resolve(source, in: store)
            guard !matches.isEmpty else {
                throw EmoError.io(path: source, reason: "no recorded source has this path or SHA-256")
            }
            for (i, record) in matches.enumerated() {
                if i > 0 { print("") }
                try describe(record, store: store)
            }
        } catch {
            throw Failure.exit(for: error)
        }
    }

    static func resolve(_ query: String, in store: ProvenanceStore) throws -> [SourceRecord] {
        let absolute = URL(fileURLWithPath: query).standardizedFileURL.path
        if let byPath = try store.source(path: absolute) { return [byPath] }
        let hex = query.lowercased()
        guard hex.count >= 8, hex.allSatisfy(\.isHexDigit) else { return [] }
        return try store.sources(sha256Prefix: hex)
    }

    private func describe(_ s: SourceRecord, store: ProvenanceStore) throws {
        print("source   \(s.path)")
        print("status   \(s.status.rawValue)\(s.reason.map { " — \($0)" } ?? "")")
        print("sha256   \(s.sha256 ?? "-")   size \(s.size) bytes")
        if let clip = s.clip, let emotion = s.emotion {
            let name = Emotion(rawValue: emotion)?.name ?? "?"
            print("clip     \(clip)   emotion \(name), intensity \(s.intensity ?? 0), statement \(s.statement ?? 0), "
                  + "repetition \(s.repetition ?? 0), actor \(s.actor ?? 0), kind \(s.kind ?? "-")")
        }
        if let probe = s.probeJSON { print("probe    \(probe)") }
        let runs = Dictionary(uniqueKeysWithValues: try store.runs().map { ($0.id, $0) })
        for (label, id) in [("first seen", s.firstSeenRun), ("changed", s.lastChangedRun)] {
            let when = runs[id].map { ISO8601DateFormatter().string(from: $0.startedAt) } ?? "?"
            print("\(label.padding(toLength: 10, withPad: " ", startingAt: 0)) run \(id) at \(when)")
        }
        if let sha = s.sha256 {
            let twins = try store.sources(sha256: sha).filter { $0.path != s.path }
            for twin in twins { print("same bytes as \(twin.path) (\(twin.status.rawValue))") }
            let cache = TensorCache(workspace: workDirectoryOptions.workspace, store: store)
            for row in try cache.rows(key: sha) {
                let shard = try cache.shardFile(row.shardId) ?? "?"
                print("cached   \(row.stage) \(DType(rawValue: UInt8(row.dtype))?.name ?? "?") \(row.shape) in \(shard) "
                      + "(parameters \(row.fingerprint.prefix(16)), run \(row.runId)) \(row.metadata)")
            }
            for artifact in try store.artifacts(sourceSHA256: sha) {
                print("artifact \(artifact.stage) \(artifact.kind) \(artifact.path) (fingerprint \(artifact.fingerprint.prefix(16)), run \(artifact.runId))")
            }
        }
        for failure in try store.failures(subject: s.path) {
            print("failure  \(failure.stage): \(failure.reason) (run \(failure.runId))")
        }
    }
}
