import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// `runs/<id>/dataset.tsv`: one line per source, whatever characters its path holds.
@Suite("dataset listing")
struct DatasetListingTests {
    @Test func pathsWithTabsNewlinesAndBackslashesReadBackAsWritten() {
        let paths = ["Actor_01/03-01-01-01-01-01-01.wav", "tab\tq/03-01-02-01-01-01-01.wav", "Actor_01\nnl/x.wav",
                     "cr\r/y.wav", #"back\slash\t/z.wav"#, #"ends\"#, "é/ü.wav"]
        let dataset = Dataset(entries: paths.enumerated().map { Dataset.Entry(relativePath: $0.element, sha256: String(repeating: "\($0.offset)", count: 64)) })
        let lines = dataset.listing.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == paths.count, "one line per source: \(dataset.listing)")
        #expect(lines.allSatisfy { $0.split(separator: "\t", omittingEmptySubsequences: false).count == 2 }, "two fields each")
        #expect(Dataset(listing: dataset.listing) == dataset)
    }

    /// The fingerprint follows each file's name (its labels) with its bytes, not the folders it is in.
    @Test func theFingerprintFollowsNamesAndBytesNotFolders() {
        let (a, b) = (String(repeating: "a", count: 64), String(repeating: "b", count: 64))
        let dataset = Dataset(entries: [.init(relativePath: "Actor_04/03-01-04-02-01-01-04.wav", sha256: a),
                                        .init(relativePath: "Actor_04/03-01-08-02-01-01-04.wav", sha256: b)])
        let moved = Dataset(entries: [.init(relativePath: "flat/03-01-04-02-01-01-04.wav", sha256: a),
                                      .init(relativePath: "03-01-08-02-01-01-04.wav", sha256: b)])
        let swapped = Dataset(entries: [.init(relativePath: "Actor_04/03-01-04-02-01-01-04.wav", sha256: b),
                                        .init(relativePath: "Actor_04/03-01-08-02-01-01-04.wav", sha256: a)])
        #expect(moved.fingerprint == dataset.fingerprint)
        #expect(swapped.fingerprint != dataset.fingerprint, "two files swapping names relabel both")
    }

    /// A run's listing is taken only when it holds what the run recorded: cut short, a line of garbage, one hash
    /// typed over or another count are named, not read as sources added, removed or changed. So is a file too large
    /// for the sources recorded. The listing of a run recorded before names were fingerprinted is taken.
    @Test func aRunsListingIsTakenOnlyWhenItMatchesItsRecord() throws {
        let hashes = (0..<3).map { String(repeating: "\($0)", count: 64) }
        let dataset = Dataset(entries: hashes.enumerated().map { .init(relativePath: "Actor_01/03-01-0\($0.offset + 1)-01-01-01-01.wav", sha256: $0.element) })
        let folder = try TestSupport.temporaryFolder("listing")
        var record = RunRecord(id: "r", command: "", manifestJSON: "", manifestSHA256: "", dataRoot: "/d", threads: 1, codeVersion: "",
                               host: "", pid: 0, startedAt: Date())
        record.sourcesInUse = 3
        record.datasetFingerprint = dataset.fingerprint
        func taken(_ text: String, _ record: RunRecord = record) throws -> (Dataset?, String?) {
            let path = folder + "/dataset.tsv"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return Dataset.recorded(at: path, record: record)
        }
        #expect(try taken(dataset.listing) == (dataset, nil))
        let cut = try taken(String(dataset.listing.prefix(100)))
        #expect(cut.0 == nil && cut.1?.contains("line 2 is not a path and a SHA-256 separated by a tab") == true, "\(String(describing: cut.1))")
        let shorter = try taken(dataset.listing.split(separator: "\n").prefix(2).joined(separator: "\n") + "\n")
        #expect(shorter.0 == nil && shorter.1?.contains("lists 2 source(s), where run r recorded 3") == true)
        let typedOver = try taken(dataset.listing.replacingOccurrences(of: hashes[1], with: String(repeating: "f", count: 64)))
        #expect(typedOver.0 == nil && typedOver.1?.contains("do not give the dataset fingerprint run r recorded") == true)
        var older = record
        older.datasetFingerprint = SHA256Hex.of(hashes.sorted().joined(separator: "\n"))
        #expect(try taken(dataset.listing, older).0 == dataset, "recorded as the hashes alone, before 2026-12-05")
        let huge = try taken(String(repeating: "x", count: 2 << 20))
        #expect(huge.0 == nil && huge.1?.contains("more than the") == true, "\(String(describing: huge.1))")
        // A count no run records (an edited database) bounds the read as the largest listing would; it overflowed.
        for count in [Int.max, Int.min, -1] {
            var edited = record
            edited.sourcesInUse = count
            let answer = try taken(dataset.listing, edited)
            #expect(answer.0 == nil && answer.1?.contains("lists 3 source(s), where run r recorded \(count)") == true, "\(String(describing: answer.1))")
        }
    }
}
