import EmoCore
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// `CacheExport`'s files, read back by independent tools: GNU tar for the WebDataset shards, Info-ZIP's
/// `unzip` (which checks every CRC-32) for the npz files.
@Suite("cache export", .enabled(if: TestSupport.hasTool("tar") && TestSupport.hasTool("unzip"), "needs tar and unzip"))
struct CacheExportTests {
    let folder: String
    let cache: TensorCache
    let records: [TensorRecord]

    init() throws {
        folder = try TestSupport.temporaryFolder("export")
        let store = try ProvenanceStore(path: folder + "/emopipe.sqlite")
        try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                   threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        cache = TensorCache(workspace: Workspace(root: folder), store: store)
        // Two shards of float32 and uint8 records of varied shapes.
        let first = TensorCacheTests.records(count: 7, seed: 11), second = TensorCacheTests.records(count: 4, seed: 12)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: first, failures: [])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: second, failures: [])
        records = (first + second).sorted { $0.key < $1.key }
    }

    static func document(_ row: CacheRecordRow) -> String { "{\"sha256\":\"\(row.key)\"}" }

    func npy(_ record: TensorRecord) -> Data {
        NumpyFile.encode(dtype: record.dtype, shape: record.shape, data: record.data)
    }

    func export(_ format: ExportFormat, perFile: Int) throws -> (String, [CacheExport.WrittenFile]) {
        let out = try TestSupport.temporaryFolder("out")
        let written = try CacheExport.export(try cache.rows(stage: "audio", fingerprint: "fp"), from: cache, format: format,
                                             to: out, recordsPerFile: perFile) { row, _ in Self.document(row) }
        return (out, written)
    }

    @Test func tarShardsHoldEachRecordsNpyAndJsonInKeyOrderAsGNUTarReadsThem() throws {
        let (out, written) = try export(.tar, perFile: 4)
        #expect(written.map { ($0.path as NSString).lastPathComponent } == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"])
        #expect(written.map(\.records) == [4, 4, 3])
        var listed: [String] = []
        for file in written {
            listed += try TestSupport.shell("tar -tf '\(file.path)'").split(separator: "\n").map(String.init)
            try TestSupport.shell("tar -xf '\(file.path)' -C '\(out)'")
            let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int
            #expect(size == file.bytes)
        }
        #expect(listed == records.flatMap { [$0.key + ".npy", $0.key + ".json"] })
        for record in records {
            #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/\(record.key).npy")) == npy(record))
            #expect(try String(contentsOfFile: out + "/\(record.key).json", encoding: .utf8) == "{\"sha256\":\"\(record.key)\"}")
        }
    }

    @Test func npzFilesPassUnzipsCRCCheckAndHoldEveryRecordAndTheLabels() throws {
        let (out, written) = try export(.npz, perFile: 6)
        #expect(written.map(\.records) == [6, 5])
        var keys: [String] = []
        for file in written {
            let check = try TestSupport.run("/usr/bin/env", ["unzip", "-t", file.path])
            #expect(check.status == 0 && check.stdout.contains("No errors detected"), "\(check.stdout)")
            try TestSupport.shell("unzip -q -o '\(file.path)' -d '\(out)/x'")
            let labels = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/x/labels.json"))) as? [String: [String: String]])
            keys += labels.keys.sorted()
            for (key, document) in labels { #expect(document == ["sha256": key]) }
        }
        #expect(keys == records.map(\.key))
        for record in records {
            #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/x/\(record.key).npy")) == npy(record))
        }
    }

    @Test func aFailedExportLeavesNothingAndAUsedOrMissingFolderIsRefused() throws {
        let out = try TestSupport.temporaryFolder("out")
        struct Refused: Error {}
        let rows = try cache.rows(stage: "audio", fingerprint: "fp")
        #expect(throws: Refused.self) {
            _ = try CacheExport.export(rows, from: cache, format: .tar, to: out, recordsPerFile: 2) { row, _ in
                if row.key == rows[6].key { throw Refused() }
                return Self.document(row)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == [])

        // Interrupted after its first file (an interrupt asks it to stop): it removes what it wrote too.
        var asked = 0
        #expect(throws: EmoError.interrupted) {
            _ = try CacheExport.export(rows, from: cache, format: .tar, to: out, recordsPerFile: 2, stopped: { asked += 1; return asked > 3 }) { row, _ in
                Self.document(row)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == [])

        // What a killed export was writing (a .part) is no earlier export: the next one removes it. But
        // while another export holds the folder, its .part is its work: refused, and left alone.
        try #require(FileManager.default.createFile(atPath: out + "/shard-000003.npz.part", contents: Data("half".utf8)))
        try CacheExport.checkDestination(out)
        // (flock locks belong to an open file: one taken here stands for another export's.)
        let other = open(out + "/.emopipe-export.lock", O_RDWR | O_CREAT, 0o644)
        #expect(other >= 0 && flock(other, LOCK_EX | LOCK_NB) == 0)
        #expect(throws: CacheError.io(path: out, reason: "another export is writing into this folder (it holds .emopipe-export.lock)")) {
            _ = try CacheExport.export(rows, from: cache, format: .npz, to: out, recordsPerFile: 100) { row, _ in Self.document(row) }
        }
        #expect(FileManager.default.fileExists(atPath: out + "/shard-000003.npz.part"))
        close(other)
        _ = try CacheExport.export(rows, from: cache, format: .npz, to: out, recordsPerFile: 100) { row, _ in Self.document(row) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["export.json", "shard-000000.npz"], "the .part and the lock are gone")
        #expect(throws: CacheError.io(path: out, reason: "already holds an earlier export (export.json): export into an empty folder")) {
            try CacheExport.checkDestination(out)
        }
        // Files that look whole without the summary written after the last of them: a killed export's.
        try FileManager.default.removeItem(atPath: out + "/export.json")
        #expect(throws: CacheError.io(path: out, reason: "already holds shard-000000.npz of an earlier export without export.json (it was killed, "
                                      + "or written by an emopipe older than export.json): remove its shard-* files, or export into an empty folder")) {
            try CacheExport.checkDestination(out)
        }
        // Somebody's own export.json is never replaced, nor called an export's.
        let foreign = try TestSupport.temporaryFolder("foreign")
        try Data("{\"mine\": true}".utf8).write(to: URL(fileURLWithPath: foreign + "/export.json"))
        #expect(throws: CacheError.io(path: foreign, reason: "already holds an export.json that is not an export's summary: export into an empty folder")) {
            try CacheExport.checkDestination(foreign)
        }
        // A missing folder is created with its parents; one that cannot be (under a file) is named with why.
        try CacheExport.checkDestination(out + "/missing/deeper")
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: out + "/missing/deeper", isDirectory: &isFolder) && isFolder.boolValue)
        #expect(throws: CacheError.io(path: out + "/shard-000000.npz", reason: "is a file where a folder should be: move or remove it")) {
            try CacheExport.checkDestination(out + "/shard-000000.npz/sub")
        }
        try FileManager.default.createSymbolicLink(atPath: out + "/dangling", withDestinationPath: out + "/nowhere")
        #expect(throws: CacheError.io(path: out + "/dangling", reason: "is a link to a folder that does not exist: remove it or create its target")) {
            try CacheExport.checkDestination(out + "/dangling")
        }
        // A failed export into folders it created removes them too.
        let fresh = try TestSupport.temporaryFolder("fresh")
        #expect(throws: Refused.self) {
            _ = try CacheExport.export(rows, from: cache, format: .npz, to: fresh + "/made/here", recordsPerFile: 2) { _, _ in throw Refused() }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: fresh) == [])
    }

    /// `export.json`, written after the last file, names the stage, cache key, format and every file.
    @Test func theSummaryListsEveryFileWithItsRecordsAndBytes() throws {
        let (out, written) = try export(.tar, perFile: 5)
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/" + CacheExport.summaryName))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(json.keys) == ["stage", "cache_key", "format", "records", "files"], "\(json.keys)")
        let summary = try JSONOutput.decoder().decode(CacheExport.Summary.self, from: data)
        #expect(summary.stage == "audio" && summary.cacheKey == "fp" && summary.format == "tar" && summary.records == records.count)
        #expect(summary.files.map(\.name) == written.map { ($0.path as NSString).lastPathComponent })
        #expect(summary.files.map(\.records) == written.map(\.records) && summary.files.map(\.bytes) == written.map(\.bytes))
    }
}
