import EmoPipeline
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
}
