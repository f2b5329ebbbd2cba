@testable import EmoStages
import EmoCore
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// A source is computed only from the bytes ingest hashed: a file written to while its features are
/// computed gives no record, even when its bytes are the ingested ones again by the end.
@Suite struct SourceChangeTests {
    func unit(_ path: String) throws -> SourceUnit {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var record = SourceRecord(path: path, sha256: SHA256Hex.of(data), size: Int64(data.count), mtimeNanos: 1, status: .ok, reason: nil, runId: "r")
        record.kind = "speech"
        return SourceUnit(record)
    }

    func record(_ unit: SourceUnit) -> TensorRecord {
        TensorRecord(key: unit.sha256, dtype: .float32, shape: [1], data: Data(count: 4), metadata: "{}")
    }

    @Test func aFileChangedAndPutBackWhileReadGivesNoRecord() throws {
        let path = try TestSupport.temporaryFolder("changed-while-read") + "/03-01-01-01-01-01-01.wav"
        let original = Data("the ingested bytes".utf8)
        try original.write(to: URL(fileURLWithPath: path))
        let source = try unit(path)
        // Untouched: the record stands.
        #expect(try PerSourceWork.computeIfUnchanged(source) { record($0) }.key == source.sha256)
        // Overwritten with other bytes while "decoding", then put back: the same hash, but not what was read.
        let error = try #require(throws: SourceChangedSinceIngest.self) {
            try PerSourceWork.computeIfUnchanged(source) { unit in
                usleep(20_000)   // past the kernel's timestamp tick, so the change time moves
                try Data("other bytes".utf8).write(to: URL(fileURLWithPath: unit.path))
                let read = self.record(unit)
                try original.write(to: URL(fileURLWithPath: unit.path))
                return read
            }
        }
        #expect(error.path == path && error.change == PerSourceWork.touchedWhileRead, "\(error)")
        // A failure while it was touched is not recorded as the ingested content's either.
        #expect(throws: SourceChangedSinceIngest.self) {
            try PerSourceWork.computeIfUnchanged(source) { unit -> TensorRecord in
                usleep(20_000)
                try original.write(to: URL(fileURLWithPath: unit.path))
                throw EmoError.io(path: unit.path, reason: "undecodable")
            }
        }
        // Changed for good: the change is named.
        let changed = try #require(throws: SourceChangedSinceIngest.self) {
            try PerSourceWork.computeIfUnchanged(source) { unit in
                try Data("new bytes".utf8).write(to: URL(fileURLWithPath: unit.path))
                return self.record(unit)
            }
        }
        #expect(changed.change.contains("bytes where ingest recorded"), "\(changed)")
    }

    /// Thousands of copies of one file are named by their first few, not all on one line.
    @Test func aWarningListsAFewNamesAndCountsTheRest() {
        let names = (1...3200).map { "copy-\($0).wav" }
        let line = IngestStage.listed(names, separator: ", ", atMost: 5)
        #expect(line == "copy-1.wav, copy-2.wav, copy-3.wav, copy-4.wav, copy-5.wav, … and 3195 more")
        #expect(IngestStage.listed(["a", "b"], separator: " / ", atMost: 5) == "a / b")
    }
}
