import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStore
import Foundation

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the lineage of one source: its facts, the runs that first saw and last changed it, its failures and artifacts.",
        discussion: Help.reflow("""
        SOURCE is a path (as recorded, or relative to the current folder) or a SHA-256, or a prefix of
        one of at least 4 hex digits that only one content starts with (as git takes commit hashes).
        An ambiguous prefix is refused with the candidates listed (exit status 64). Artifacts are listed
        by the paths their runs recorded: one gone from disk is marked so, and one in a work directory
        moved or copied since is shown where it now is.
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions

    @Argument(help: "A source path, or a SHA-256 or unique prefix of one (4 or more hex digits).")
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

    /// The sources `query` names: the one recorded under that path, else those whose SHA-256 starts
    /// with it (several only when the same bytes sit under several names). A prefix shared by
    /// different contents is refused with the candidates listed; one too short, or a bare word
    /// that is not hex, is refused as a usage error.
    static func resolve(_ query: String, in store: ProvenanceStore) throws -> [SourceRecord] {
        guard !query.isEmpty else { throw UsageError("an empty argument names no source: give a path or a SHA-256 prefix") }
        let absolute = URL(fileURLWithPath: query).standardizedFileURL.path
        if let byPath = try store.source(path: absolute) { return [byPath] }
        // The same file by another name: through a link to the data root (or the root's own link undone).
        if let real = ResolvedPath.existing(absolute) {
            if let byRealPath = try store.source(path: real) { return [byRealPath] }
            // Compared as bytes: Swift's == takes a name spelt in other Unicode code points for the same one.
            let sources = try store.sources(), realBytes = Array(real.utf8)
            if let same = sources.first(where: { ResolvedPath.existing($0.path).map { Array($0.utf8) == realBytes } ?? false }) { return [same] }
            if let other = sources.first(where: { $0.path == absolute }) {
                throw EmoError.io(path: query, reason: "not read: its name is \(other.path.escaped)'s spelt in other Unicode code points, and "
                                  + "ingest reads the first spelling by byte order only (`emopipe sources` lists this one with \\u escapes)")
            }
        }
        // A query with a folder or an extension in it means a path, and that path is not recorded.
        guard !query.contains("/"), !query.contains(".") else { return [] }
        let hex = query.lowercased()
        // (A longer prefix than a SHA-256 would also make SQLite's LIKE pattern too complex, exit 1, from about 50,000 digits on.)
        if let problem = HashPrefix.problem(hex) {
            guard HashPrefix.isHex(hex) else {
                throw UsageError("'\(query.echoed)' is neither a recorded source path nor a SHA-256 prefix (hex digits 0-9, a-f)")
            }
            throw UsageError("SHA-256 prefix '\(query.echoed)' \(problem)")
        }
        let matches = try store.sources(sha256Prefix: hex)
        let contents = Set(matches.compactMap(\.sha256))
        guard contents.count <= 1 else {
            let candidates = matches.map { "  \($0.sha256 ?? "-")  \($0.path)" }.joined(separator: "\n")
            throw UsageError("SHA-256 prefix '\(query)' is ambiguous: \(contents.count) contents start with it; give more digits\n\(candidates)")
        }
        return matches
    }

    private func describe(_ s: SourceRecord, store: ProvenanceStore) throws {
        // Rows may come from a merged worker: nothing in them may steer the terminal or break a line.
        print("source   \(s.path.escaped)")
        print("status   \(s.status.rawValue)\(s.reason.map { " — \($0.escapedRecorded)" } ?? "")"
              + (s.changedSinceIngest ? " — \(SourcesCommand.changedNote)" : ""))
        print("sha256   \(s.sha256 ?? "-")   size \(s.size) bytes")
        if let clip = s.clip, let emotion = s.emotion {
            let name = Emotion(rawValue: emotion)?.name ?? "?"
            print("clip     \(clip)   emotion \(name), intensity \(s.intensity ?? 0), statement \(s.statement ?? 0), "
                  + "repetition \(s.repetition ?? 0), actor \(s.actor ?? 0), kind \(s.kind ?? "-")")
        }
        if let probe = s.probeJSON { print("probe    \(probe.escaped)") }
        // Ids equal as Strings (one spelt in NFC, one in NFD by an edited database) are one key, not a trap.
        let runs = Dictionary(try store.runs().map { ($0.id, $0) }) { first, _ in first }
        for (label, id) in [("first seen", s.firstSeenRun), ("changed", s.lastChangedRun)] {
            let when = runs[id].map { ISO8601DateFormatter().string(from: $0.startedAt) } ?? "?"
            print("\(label.padding(toLength: 10, withPad: " ", startingAt: 0)) run \(id.escaped) at \(when)")
        }
        if let sha = s.sha256 {
            let twins = try store.sources(sha256: sha).filter { $0.path != s.path }
            for twin in twins { print("same bytes as \(twin.path.escaped) (\(twin.status.rawValue))") }
            let cache = TensorCache(workspace: workDirectoryOptions.workspace, store: store)
            for row in try cache.rows(key: sha) {
                let shard = try cache.shardFile(row.shardId) ?? "?"
                print("cached   \(row.stage) \(row.dtypeName) \(row.shape) in \(shard) "
                      + "(cache key \(row.fingerprint.prefix(16)), run \(row.runId)) \(row.metadata)")
            }
            for artifact in try store.artifacts(sourceSHA256: sha) {
                // A file removed since (a run folder deleted, `cache gc`) is history, not a file to open.
                let now = workDirectoryOptions.workspace.whereNow(recorded: artifact.path)
                let gone = now == nil ? " — gone from disk" : now == artifact.path ? "" : " — now at \(now!.escaped)"
                print("artifact \(artifact.stage.escaped) \(artifact.kind.escaped) \(artifact.path.escaped) (stage fingerprint \(String(artifact.fingerprint.prefix(16)).escaped), run \(artifact.runId.escaped))\(gone)")
            }
        }
        for failure in try store.failures(subject: s.path) {
            print("failure  \(failure.stage.escaped): \(failure.reason.escapedRecorded) (run \(failure.runId.escaped))")
        }
        // A per-source stage computes identical bytes once, under one of their paths: its failure is this file's too.
        if let sha = s.sha256 {
            for failure in try store.failures(sha256: sha) where failure.subject != s.path && failure.stage != StageName.ingest.rawValue {
                print("failure  \(failure.stage.escaped): \(failure.reason.escapedRecorded) (run \(failure.runId.escaped); "
                      + "computed as \(failure.subject.escaped), the same bytes)")
            }
        }
    }
}
