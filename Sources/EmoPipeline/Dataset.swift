import EmoCore
import EmoStore
import Foundation

/// The sources a run used: every ok source under the data root, by path relative to the root.
/// Its fingerprint is the SHA-256 of each source's file name (which carries its labels) with its
/// hash, sorted: moving the root or files between folders keeps it; any changed byte changes it, and
/// so does a rename that relabels a file (two files swapping names).
public struct Dataset: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var relativePath: String
        public var sha256: String

        public init(relativePath: String, sha256: String) {
            self.relativePath = relativePath
            self.sha256 = sha256
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries.sorted { $0.relativePath < $1.relativePath } }

    public init(store: ProvenanceStore, root: String) throws {
        self.init(entries: try store.sources(status: .ok, under: root).map {
            Entry(relativePath: DataRootPath.relative($0.path, to: root), sha256: $0.sha256 ?? "")
        })
    }

    /// The most sources a listing is read for: a few gigabytes of paths at PATH_MAX each, far past any dataset.
    static let maxListedSources = 1 << 20

    /// Reads a `dataset.tsv` written by `listing`.
    public init(listing: String) {
        self.init(entries: listing.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            return fields.count == 2 ? Entry(relativePath: Self.unescaped(fields[0]), sha256: String(fields[1])) : nil
        })
    }

    /// The `dataset.tsv` at `path` of a run recorded as `record`, or why it is not taken: every line two fields,
    /// a path and a SHA-256, as many as the run used, and the fingerprint the run recorded (as spelt now, or
    /// before file names were part of it). A listing edited or cut short would report changes that never were.
    /// Read up to a bound that follows the sources recorded, so a huge file is refused rather than held.
    public static func recorded(at path: String, record: RunRecord) -> (dataset: Dataset?, problem: String?) {
        // The count as recorded, within what a listing can hold (an edited database overflowed the product).
        let sources = min(max(record.sourcesInUse ?? 100_000, 0), Self.maxListedSources)
        let limit = max(1 << 20, sources * (Int(PATH_MAX) + 80))
        let text: String?
        do { text = try RegularFile.text(path, atMost: limit) } catch {
            var facts = stat()
            return (nil, lstat(path, &facts) == 0 ? "\(path.shownPath): \(EmoError.reason(of: error))" : nil)
        }
        guard let text else { return (nil, "\(path.shownPath): not UTF-8 text, as EmoPipe writes it") }
        let lines = text.split(separator: "\n")
        let malformed = lines.firstIndex { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            return fields.count != 2 || fields[1].count != 64 || !fields[1].allSatisfy { $0.isHexDigit && !$0.isUppercase }
        }
        if let malformed {
            return (nil, "\(path.shownPath): line \(malformed + 1) is not a path and a SHA-256 separated by a tab (edited or damaged)")
        }
        let dataset = Dataset(listing: text)
        if let count = record.sourcesInUse, count != dataset.entries.count {
            return (nil, "\(path.shownPath): lists \(dataset.entries.count) source(s), where run \(record.id) recorded \(count) (edited or cut short)")
        }
        if let recorded = record.datasetFingerprint, ![dataset.fingerprint, dataset.hashOnlyFingerprint].contains(recorded) {
            return (nil, "\(path.shownPath): its sources do not give the dataset fingerprint run \(record.id) recorded (edited or damaged)")
        }
        return (dataset, nil)
    }

    /// The fingerprint as runs recorded it before 2026-12-05: the sorted hashes alone.
    var hashOnlyFingerprint: String { SHA256Hex.of(entries.map(\.sha256).sorted().joined(separator: "\n")) }

    public var fingerprint: String {
        SHA256Hex.of(entries.map { "\(($0.relativePath as NSString).lastPathComponent)\t\($0.sha256)" }.sorted().joined(separator: "\n"))
    }

    /// One line per source: the relative path (a tab, newline, carriage return or backslash in it
    /// written as `\t`, `\n`, `\r`, `\\`, so every path stays one field of one line), a tab, its SHA-256.
    public var listing: String { entries.map { "\(Self.escaped($0.relativePath))\t\($0.sha256)\n" }.joined() }

    static func escaped(_ path: String) -> String {
        var out = ""
        for character in path.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static func unescaped(_ field: Substring) -> String {
        var out = ""
        var escaping = false
        for character in field.unicodeScalars {
            if escaping {
                switch character {
                case "t": out += "\t"
                case "n": out += "\n"
                case "r": out += "\r"
                case "\\": out += "\\"
                default: out += "\\"; out.unicodeScalars.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.unicodeScalars.append(character)
            }
        }
        return escaping ? out + "\\" : out
    }

    /// What changed from `old` to `self`, by relative path.
    public func changes(since old: Dataset) -> (added: [String], removed: [String], changed: [String]) {
        let before = Dictionary(old.entries.map { ($0.relativePath, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(entries.map { ($0.relativePath, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        return (after.keys.filter { before[$0] == nil }.sorted(),
                before.keys.filter { after[$0] == nil }.sorted(),
                after.keys.filter { before[$0] != nil && before[$0] != after[$0] }.sorted())
    }
}
