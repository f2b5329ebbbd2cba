import EmoCore
@testable import EmoStore
import EmoTestSupport
import Foundation
import GRDB
import Testing

@Suite("tensor cache")
struct TensorCacheTests {
    let folder: String
    let store: ProvenanceStore
    let cache: TensorCache

    init() throws {
        folder = try TestSupport.temporaryFolder("cache")
        store = try ProvenanceStore(path: folder + "/emopipe.sqlite")
        try store.insert(RunRecord(id: "r1", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                   threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        cache = TensorCache(workspace: Workspace(root: folder), store: store)
    }

    /// Records of varied shapes, types and metadata lengths (so alignment padding varies).
    static func records(count: Int, seed: UInt64) -> [TensorRecord] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let key = SHA256Hex.of("record \(i) seed \(seed)")
            if i % 3 == 2 {
                let shape = [2, 3 + i, 5]
                let bytes = (0..<shape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                return TensorRecord(key: key, dtype: .uint8, shape: shape, data: Data(bytes),
                                    metadata: "{\"i\":\(i),\"pad\":\"\(String(repeating: "x", count: i * 7))\"}")
            }
            let shape = [4, 7 + i]
            let values = (0..<shape.reduce(1, *)).map { _ in Float(Int64(bitPattern: rng.next() >> 11)) / 1e12 }
            return TensorRecord(key: key, float32: values, shape: shape, metadata: "{\"i\":\(i)}")
        }
    }

    @Test func recordsRoundTripByteForByteThroughMappedShards() throws {
        let first = Self.records(count: 7, seed: 1), second = Self.records(count: 4, seed: 2)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: first, failures: [])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: second, failures: [])
        #expect(try cache.keys(stage: "audio", fingerprint: "fp") == Set((first + second).map(\.key)))
        for record in first + second {
            let tensor = try #require(try cache.tensor(stage: "audio", fingerprint: "fp", key: record.key, verify: true))
            #expect(tensor.dtype == record.dtype)
            #expect(tensor.shape == record.shape)
            #expect(try tensor.bytes == record.data)
            #expect(try tensor.metadata == record.metadata)
            // Records start on 64-byte boundaries, so a mapped view of one can be used as a typed array (the Python reader's).
            #expect(tensor.entry.dataOffset % 64 == 0)
        }
        let stats = try cache.stats()
        #expect(stats.count == 1 && stats[0].shards == 2 && stats[0].records == 11)
        let shardBytes = try store.read { try CacheShardRow.fetchAll($0) }.map(\.bytes)
        #expect(stats[0].bytes == shardBytes.reduce(0, +) && stats[0].bytes > 0)
        #expect(try cache.tensor(stage: "audio", fingerprint: "other", key: first[0].key) == nil)
    }

    /// What reading some records maps: every shard holding one of them, whole (the other records in it too), each
    /// shard once, and no shard of another fingerprint: the address-space check had counted only the records' bytes.
    @Test func theShardsHoldingRecordsAreCountedWholeAndOnce() throws {
        let first = Self.records(count: 5, seed: 3), second = Self.records(count: 3, seed: 4), other = Self.records(count: 4, seed: 5)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: first, failures: [])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: second, failures: [])
        try cache.publish(stage: "audio", fingerprint: "other", runId: "r1", records: other, failures: [])
        let shards = try store.read { try CacheShardRow.fetchAll($0, sql: "SELECT * FROM cacheShard WHERE fingerprint = 'fp' ORDER BY id") }
        try #require(shards.count == 2)
        let twoOfTheFirst = Set(first.prefix(2).map(\.key))
        #expect(try cache.shardBytes(stage: "audio", fingerprint: "fp", holding: twoOfTheFirst) == shards[0].bytes)
        #expect(shards[0].bytes > first.prefix(2).map(\.data.count).reduce(0, +))
        let oneOfEach = Set([first[4].key, second[0].key, other[0].key])
        #expect(try cache.shardBytes(stage: "audio", fingerprint: "fp", holding: oneOfEach) == shards[0].bytes + shards[1].bytes)
        #expect(try cache.shardBytes(stage: "audio", fingerprint: "fp", holding: Set(other.map(\.key))) == 0)
        // A size edited to text in the index counts as nothing, not as a database error out of the memory check.
        try store.write { try $0.execute(sql: "UPDATE cacheShard SET bytes = 'many' WHERE id = ?", arguments: [shards[0].id]) }
        #expect(try cache.shardBytes(stage: "audio", fingerprint: "fp", holding: oneOfEach) == shards[1].bytes)
    }

    /// Sizes edited by hand in the index (text, negative) are left out of the sum; large ones are summed exactly
    /// (not through a double), and two near Int64's limit clamp instead of stopping `cache stats` on an overflow.
    @Test func statsSurviveHandEditedShardSizes() throws {
        for seed in 1...4 {
            try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: Self.records(count: 2, seed: UInt64(seed)), failures: [])
        }
        let ids = try store.read { try CacheShardRow.fetchAll($0) }.compactMap(\.id).sorted()
        try #require(ids.count == 4)
        try store.write { db in
            try db.execute(sql: "UPDATE cacheShard SET bytes = 'many' WHERE id = ?", arguments: [ids[0]])
            try db.execute(sql: "UPDATE cacheShard SET bytes = -5 WHERE id = ?", arguments: [ids[1]])
            try db.execute(sql: "UPDATE cacheShard SET bytes = 1234567890123456789 WHERE id = ?", arguments: [ids[2]])
            try db.execute(sql: "UPDATE cacheShard SET bytes = 1 WHERE id = ?", arguments: [ids[3]])
        }
        let stats = try cache.stats()
        #expect(stats.count == 1 && stats[0].shards == 4 && stats[0].records == 8)
        #expect(stats[0].bytes == 1_234_567_890_123_456_790)
        try store.write { db in
            try db.execute(sql: "UPDATE cacheShard SET bytes = 9223372036854775807 WHERE id IN (?, ?)", arguments: [ids[2], ids[3]])
        }
        #expect(try cache.stats().first?.bytes == Int.max)
    }

    /// A value of the wrong type in the index (text where a length is, bytes where a name is) is an error of the
    /// read (GRDB's plain subscripts stopped the process), and a length near Int64's limit gives a figure, not an overflow.
    @Test func handEditedIndexValuesAreErrorsNotTraps() throws {
        for seed in 1...2 {
            try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: Self.records(count: 3, seed: UInt64(seed)), failures: [])
        }
        let shards = try store.read { try CacheShardRow.fetchAll($0) }
        let kept = try cache.keys(stage: "audio", fingerprint: "fp")
        let first = try store.read { try CacheRecordRow.filter(Column("shardId") == shards[0].id).fetchAll($0) }
        try #require(first.count == 3)
        // The first shard's first record no longer live: a compaction that sums the others' lengths, one absurd.
        try store.write { db in
            try db.execute(sql: "UPDATE cacheRecord SET dataLength = 9223372036854775800 WHERE key = ?", arguments: [first[2].key])
        }
        let plan = try cache.planGarbage(keep: ["audio": ["fp"]], liveKeys: kept.subtracting([first[0].key]))
        #expect(plan.compactions.map(\.shard.id) == [shards[0].id])
        #expect(plan.totalBytes >= 0)
        #expect(ShardFormat.fileSize(records: [(metaLength: 10, dataLength: Int.max - 3)]) == Int.max)
        try store.write { db in try db.execute(sql: "UPDATE cacheRecord SET dataLength = 'abc' WHERE rowid = 1") }
        #expect(throws: (any Error).self) { try cache.recordBytes(stage: "audio", fingerprint: "fp") }
        try store.write { db in try db.execute(sql: "UPDATE cacheShard SET fingerprint = X'ff' WHERE id = ?", arguments: [shards[0].id]) }
        #expect(throws: (any Error).self) { try cache.stats() }
    }

    /// A shard whose index rows cannot be committed (a full disk fails SQLite too; here a trigger stands in
    /// for it) is removed: no shard is left on disk that no row names.
    @Test func aShardWhoseIndexIsNotCommittedIsRemoved() throws {
        try store.write { db in
            try db.execute(sql: "CREATE TEMP TRIGGER fullDisk BEFORE INSERT ON cacheShard BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        }
        #expect(throws: (any Error).self) {
            try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: Self.records(count: 3, seed: 9), failures: [])
        }
        let folder = cache.workspace.path(cache.folder(stage: "audio", fingerprint: "fp"))
        let left = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        #expect(left.isEmpty, "\(left)")
        #expect(try cache.keys(stage: "audio", fingerprint: "fp").isEmpty)
    }

    /// Another process cutting a shard short while this one has it mapped: reading a record past the new end
    /// touches pages the file no longer has (SIGBUS, which killed the process). Each read is an error naming the
    /// shard, records before the cut still read, and a later cut is caught again (the guard stays in place).
    @Test func aShardCutShortWhileMappedIsAnErrorNotACrash() throws {
        // Records of 16 KiB each, so a cut after the first leaves whole pages of the others beyond the end.
        let records = (0..<4).map { i in
            TensorRecord(key: SHA256Hex.of("cut \(i)"), float32: (0..<4096).map { Float($0 + i) }, shape: [64, 64], metadata: "{\"i\":\(i)}")
        }
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: records, failures: [])
        let row = try #require(try store.read { try CacheShardRow.fetchOne($0) })
        let path = try cache.workspace.cacheFile(row.file)
        let shard = try ShardFile(path: path)
        let entries = records.map { record in shard.entries.first { $0.key == record.key }! }
        #expect(try shard.floats(entries[3]) == (0..<4096).map { Float($0 + 3) })
        // Cut the file at the page after the first record's data (the shard was written read-only): the pages
        // past it are gone (a cut inside a page leaves its rest reading as zeros, which the CRC check catches).
        let page = sysconf(Int32(_SC_PAGESIZE))
        let cut = (entries[0].dataOffset + entries[0].dataLength + page - 1) / page * page
        try #require(entries[3].dataOffset >= cut, "records of 16 KiB put the last one past the cut on pages of \(page) bytes")
        #expect(chmod(path, 0o644) == 0 && truncate(path, off_t(cut)) == 0)
        for attempt in 0..<2 {
            let error = #expect(throws: CacheError.self, "attempt \(attempt)") { try shard.floats(entries[3]) }
            guard case .badShard(let named, let reason)? = error else { Issue.record("not badShard: \(String(describing: error))"); continue }
            #expect(named == path && reason.contains("cut short"))
            #expect(throws: CacheError.self) { try shard.data(entries[2]) }
            #expect(throws: CacheError.self) { try shard.verify(entries[1]) }
        }
        #expect(try shard.floats(entries[0]) == (0..<4096).map { Float($0) })
        #expect(try shard.verify(entries[0]))
    }

    /// The guard holds in optimised builds too (`make build` is a release build): its C file compiled at -O2 by
    /// the toolchain's clang, around reads of a mapping cut short. (At -O2 the jump target's store was once
    /// dropped as dead, and the process died of SIGBUS.)
    @Test(.enabled(if: TestSupport.hasTool("clang"), "needs the toolchain's clang"))
    func theGuardHoldsWhenOptimised() throws {
        let folder = try TestSupport.temporaryFolder("guard-O2")
        let harness = """
        #include "guarded_read.h"
        #include <fcntl.h>
        #include <signal.h>
        #include <stdio.h>
        #include <string.h>
        #include <sys/mman.h>
        #include <unistd.h>
        int main(int argc, char **argv) {
            long page = sysconf(_SC_PAGESIZE);
            int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
            static char bytes[1 << 18];
            memset(bytes, 7, sizeof bytes);
            if (write(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes) return 2;
            char *map = mmap(NULL, sizeof bytes, PROT_READ, MAP_SHARED, fd, 0);
            if (map == MAP_FAILED || ftruncate(fd, page) != 0) return 2;
            static char out[1 << 16];
            uint32_t crc = 0;
            printf("%d %d %d %d\\n", emo_guarded_copy(out, map + 4 * page, 1000), emo_guarded_crc32c(0, map + 2 * page, 100, &crc),
                   emo_guarded_copy(out, map, 100), emo_guarded_copy(out, map + 3 * page, 10));
            // A SIGBUS another process sends still ends the process, as by default.
            fflush(stdout);
            kill(getpid(), SIGBUS);
            sleep(5);
            return 0;
        }
        """
        try harness.write(toFile: folder + "/main.c", atomically: true, encoding: .utf8)
        let sources = TestSupport.repositoryRoot + "/Sources"
        try TestSupport.shell("clang -O2 -I '\(sources)/CGuardedRead/include' -I '\(sources)/CCRC32C/include' -o '\(folder)/harness' "
                              + "'\(folder)/main.c' '\(sources)/CGuardedRead/guarded_read.c' '\(sources)/CCRC32C/crc32c.c' -lpthread")
        let run = try TestSupport.run(folder + "/harness", [folder + "/mapped"])
        #expect(run.signaled && run.status == SIGBUS && run.stdout == "-1 -1 0 -1\n", "exit \(run.status) signaled \(run.signaled): \(run.stdout) \(run.stderr)")
    }

    /// A unit that failed and is then computed under the same parameters (a passing fault, read again by
    /// --force) is no longer failed; another stage's or parameters' failure of the same bytes stays.
    @Test func aRecordPublishedForAFailedUnitEndsItsFailure() throws {
        let records = Self.records(count: 2, seed: 5)
        func failure(_ key: String, stage: String = "audio", fingerprint: String = "fp") -> FailureRecord {
            FailureRecord(stage: stage, fingerprint: fingerprint, subject: "/data/\(key).wav", sha256: key, reason: "Bad file descriptor", runId: "r1")
        }
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: [],
                          failures: [failure(records[0].key), failure(records[1].key), failure(records[0].key, fingerprint: "other"),
                                     failure(records[0].key, stage: "faces")])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: [records[0]], failures: [])
        let left = try store.read { try FailureRecord.fetchAll($0) }.map { "\($0.stage) \($0.fingerprint) \($0.sha256 == records[0].key ? 0 : 1)" }.sorted()
        #expect(left == ["audio fp 1", "audio other 0", "faces fp 0"], "\(left)")
    }

    /// A run id can come back (a `cache gc` killed and rerun within one second): a second cache object,
    /// as in a new process, publishing under it must leave the first shards and their records whole,
    /// whether their files are still there or one was deleted with its row kept.
    @Test func aRunIdUsedAgainNeverWritesOverAnIndexedShard() throws {
        let first = Self.records(count: 3, seed: 11), second = Self.records(count: 2, seed: 12)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: first, failures: [])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: second, failures: [])
        let firstShard = try #require(try cache.row(stage: "audio", fingerprint: "fp", key: first[0].key)?.shardId)
        let firstFile = try #require(try cache.shardFile(firstShard))
        #expect(unlink(folder + "/" + firstFile) == 0)

        let again = TensorCache(workspace: Workspace(root: folder), store: store)
        let third = Self.records(count: 4, seed: 13)
        try again.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: third, failures: [])
        let files = try store.read { db in try String.fetchAll(db, sql: "SELECT file FROM cacheShard ORDER BY id") }
        #expect(files.count == 3 && Set(files).count == 3)
        #expect(files.last?.hasSuffix("r1-00003.shard") == true)
        for record in second + third {
            let tensor = try #require(try again.tensor(stage: "audio", fingerprint: "fp", key: record.key, verify: true))
            #expect(try tensor.bytes == record.data)
        }
        #expect(try again.recordsInUnsoundShards(stage: "audio", fingerprint: "fp") == [firstFile: Set(first.map(\.key))])
    }

    @Test func aFlippedByteIsFoundNamedAndDroppedFromTheIndex() throws {
        let records = Self.records(count: 5, seed: 3)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: records, failures: [])
        var source = SourceRecord(path: "/data/Actor_01/03-01-01-01-01-01-01.wav", sha256: records[2].key, size: 1,
                                  mtimeNanos: 1, status: .ok, reason: nil, runId: "r1")
        source.kind = "wav"
        try store.write { try source.insert($0) }
        let row = try #require(try cache.row(stage: "audio", fingerprint: "fp", key: records[2].key))
        let shardPath = folder + "/" + (try store.read { try CacheShardRow.fetchOne($0, key: row.shardId)!.file })
        try flipByte(in: shardPath, at: row.dataOffset + 5)

        let fresh = TensorCache(workspace: Workspace(root: folder), store: store)  // no shard mapped before the damage
        #expect(throws: CacheError.damagedRecord(path: shardPath, key: records[2].key)) {
            _ = try fresh.tensor(row, verify: true)
        }
        let report = try fresh.verify(runId: "r1")
        #expect(report.checkedRecords == 5)
        #expect(report.damaged.map(\.key) == [records[2].key])
        #expect(report.damaged.first?.sources == [source.path])
        #expect(try fresh.keys(stage: "audio", fingerprint: "fp") == Set(records.map(\.key)).subtracting([records[2].key]))
        let failure = try #require(try store.failures(subject: source.path).first)
        #expect(failure.reason.contains("CRC-32C"))
        // The undamaged records are still there and intact.
        #expect(try fresh.verify(runId: "r1").damaged.isEmpty)
    }

    /// A shard deleted after it was written, and an index row whose offset the shard does not hold, are
    /// damage with the same repair as a bad CRC (`cache verify`), and verify drops exactly their records.
    @Test func aDeletedShardOrAMisplacedIndexRowIsDamageThatVerifyRepairs() throws {
        let kept = Self.records(count: 3, seed: 5), deleted = Self.records(count: 2, seed: 6)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: kept, failures: [])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: deleted, failures: [])
        let gone = try #require(try cache.row(stage: "audio", fingerprint: "fp", key: deleted[0].key))
        let gonePath = folder + "/" + (try store.read { try CacheShardRow.fetchOne($0, key: gone.shardId)!.file })
        try FileManager.default.removeItem(atPath: gonePath)
        try store.write { db in
            try db.execute(sql: "UPDATE cacheRecord SET dataOffset = dataOffset + 64 WHERE key = ?", arguments: [kept[1].key])
        }
        let fresh = TensorCache(workspace: Workspace(root: folder), store: store)
        #expect(try fresh.recordsInUnsoundShards(stage: "audio", fingerprint: "fp").values.flatMap { $0 }.sorted() == deleted.map(\.key).sorted(),
                "a moved record is there to verify, not gone")
        for key in [deleted[0].key, kept[1].key] {
            let error = try #require(throws: CacheError.self) { _ = try fresh.tensor(stage: "audio", fingerprint: "fp", key: key) }
            #expect(error.repair?.contains("`emopipe cache verify` drops damaged records") == true, "\(error)")
            #expect("\(error)".contains(key == kept[1].key ? "holds no record for source \(key) at offset" : "the file is gone"), "\(error)")
        }
        let report = try fresh.verify(runId: "r1")
        #expect(Set(report.damaged.map(\.key)) == [deleted[0].key, deleted[1].key, kept[1].key])
        #expect(try fresh.keys(stage: "audio", fingerprint: "fp") == [kept[0].key, kept[2].key])
        #expect(try fresh.verify(runId: "r1").damaged.isEmpty)
    }

    /// A record's CRC covers its bytes only: a type or shape edited in the shard's index, with the index's
    /// own CRC fixed up, reads the same bytes as other values. Reading such a record is refused as damage
    /// (once a float32 record read as int32 trapped training), verify drops it, and the rest stay.
    @Test func aTypeOrShapeEditedInTheShardIndexIsDamageThatVerifyRepairs() throws {
        let records = Self.records(count: 4, seed: 11)  // records 0, 1 and 3 float32 [4, 7 + i]
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: records, failures: [])
        let shardPath = folder + "/" + (try store.read { try CacheShardRow.fetchAll($0)[0].file })
        let edits: [(index: Int, edit: (inout [UInt8], Int) -> Void)] = [
            (0, { b, at in b[at + 32] = DType.int32.rawValue }),                               // float32 -> int32, same size
            (1, { b, at in b[at + 36] = 8; b[at + 40] = 4 }),                                   // [4, 8] -> [8, 4]
            (3, { b, at in b[at + 33] = 1; b[at + 36] = UInt8(4 * 10); b[at + 40] = 0 }),       // [4, 10] -> [40]
        ]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: shardPath)))
        let indexOffset = Int(bytes.withUnsafeBytes { $0.loadLE(UInt64.self, at: 24) })
        let indexLength = Int(bytes.withUnsafeBytes { $0.loadLE(UInt64.self, at: 32) })
        let shard = try ShardFile(path: shardPath)
        for (key, edit) in edits.map({ (records[$0.index].key, $0.edit) }) {
            let position = try #require(shard.entries.firstIndex { $0.key == key })
            edit(&bytes, indexOffset + position * 128)
        }
        let crc = bytes.withUnsafeBytes { ShardFormat.crc(UnsafeRawBufferPointer(rebasing: $0[indexOffset..<(indexOffset + indexLength)])) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(40..<44, with: $0) }
        chmod(shardPath, 0o644)
        try Data(bytes).write(to: URL(fileURLWithPath: shardPath))

        let fresh = TensorCache(workspace: Workspace(root: folder), store: store)
        for index in edits.map(\.index) {
            let error = try #require(throws: CacheError.self) {
                _ = try fresh.tensor(stage: "audio", fingerprint: "fp", key: records[index].key, verify: true)
            }
            #expect("\(error)".contains("where the provenance database's index says float32 \(records[index].shape)"), "\(error)")
            #expect(error.repair != nil)
        }
        let untouched = try #require(try fresh.tensor(stage: "audio", fingerprint: "fp", key: records[2].key, verify: true))
        #expect(try untouched.bytes == records[2].data)
        #expect(throws: CacheError.self) { _ = try untouched.floats() }  // uint8: no Float view, and no trap
        let report = try fresh.verify(runId: "r1")
        #expect(Set(report.damaged.map(\.key)) == Set(edits.map { records[$0.index].key }))
        #expect(try fresh.keys(stage: "audio", fingerprint: "fp") == [records[2].key])
    }

    /// A shard appended to after it was indexed reads as before (its records' CRCs hold), but it is not
    /// the file written: verify drops its records, as `cache stats` says it would.
    @Test func aShardOfAnotherSizeThanWrittenIsDamageThatVerifyRepairs() throws {
        let kept = Self.records(count: 2, seed: 12), grown = Self.records(count: 3, seed: 13)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: kept, failures: [])
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: grown, failures: [])
        let row = try #require(try cache.row(stage: "audio", fingerprint: "fp", key: grown[0].key))
        let shard = try #require(try store.read { try CacheShardRow.fetchOne($0, key: row.shardId) })
        let path = folder + "/" + shard.file
        chmod(path, 0o644)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 7, count: 7))
        try handle.close()
        #expect(try cache.unsoundShards().map(\.file) == [shard.file])
        let report = try cache.verify(runId: "r1")
        #expect(Set(report.damaged.map(\.key)) == Set(grown.map(\.key)))
        #expect(report.damaged.allSatisfy { $0.reason == "its shard is \(shard.bytes + 7) bytes, written as \(shard.bytes)" }, "\(report.damaged)")
        #expect(try cache.keys(stage: "audio", fingerprint: "fp") == Set(kept.map(\.key)))
        #expect(try cache.unsoundShards().isEmpty, "verify followed: no shard left to warn of")
    }

    /// An index row whose metadata is not its shard's (an edited database) is damage verify finds: `show` and
    /// the Python reader offer the row's copy.
    @Test func anIndexRowWithOtherMetadataThanItsShardIsDamage() throws {
        let records = Self.records(count: 2, seed: 41)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: records, failures: [])
        try store.write { try $0.execute(sql: "UPDATE cacheRecord SET metadata = '{\"real_frames\": 5}' WHERE key = ?", arguments: [records[0].key]) }
        let report = try cache.verify(runId: "r1")
        #expect(report.damaged.map(\.key) == [records[0].key] && report.damaged.first?.reason == "the index's metadata differs from its shard's",
                "\(report.damaged)")
    }

    /// A link put where a shard was, to the shard moved elsewhere, is followed by `run`, `stats` and verify
    /// as by every reader: its records stay. A link leading nowhere is damage, and verify drops its records.
    @Test func aLinkToAMovedShardIsFollowedAndADanglingOneIsDamage() throws {
        let records = Self.records(count: 3, seed: 21)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: records, failures: [])
        let shard = try #require(try store.read { try CacheShardRow.fetchOne($0) })
        let path = folder + "/" + shard.file
        try FileManager.default.moveItem(atPath: path, toPath: folder + "/elsewhere.shard")
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: folder + "/elsewhere.shard")
        #expect(try cache.unsoundShards().isEmpty)
        #expect(try cache.recordsInUnsoundShards(stage: "audio", fingerprint: "fp").isEmpty)
        #expect(try cache.verify(runId: "r1").damaged.isEmpty)
        #expect(try cache.keys(stage: "audio", fingerprint: "fp") == Set(records.map(\.key)))
        try FileManager.default.removeItem(atPath: folder + "/elsewhere.shard")
        #expect(try cache.unsoundShards().map(\.file) == [shard.file])
        let report = try cache.verify(runId: "r1")
        #expect(Set(report.damaged.map(\.key)) == Set(records.map(\.key)))
        #expect(report.damaged.allSatisfy { $0.reason == "its shard is gone or no longer a regular file" }, "\(report.damaged)")
        #expect(try cache.keys(stage: "audio", fingerprint: "fp").isEmpty)
    }

    /// gc says what it frees: a shard already deleted frees nothing, a folder standing where a shard was is
    /// left alone and named, and only the file still there counts its bytes.
    @Test func garbageCollectionCountsOnlyWhatItRemoves() throws {
        for seed in [7, 8, 9, 10] as [UInt64] {
            try cache.publish(stage: "audio", fingerprint: "old", runId: "r1", records: Self.records(count: 2, seed: seed), failures: [])
        }
        let files = try store.read { try CacheShardRow.fetchAll($0) }.sorted { ($0.id ?? 0) < ($1.id ?? 0) }.map(\.file)
        try FileManager.default.removeItem(atPath: folder + "/" + files[0])
        try FileManager.default.removeItem(atPath: folder + "/" + files[1])
        try FileManager.default.createDirectory(atPath: folder + "/" + files[1], withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: folder + "/cache/audio/stray.shard", withIntermediateDirectories: true)
        // A link where a shard was: neither it nor what it points at is the cache's to remove.
        try FileManager.default.moveItem(atPath: folder + "/" + files[3], toPath: folder + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: folder + "/" + files[3], withDestinationPath: folder + "/elsewhere")
        let remaining = try #require(try FileManager.default.attributesOfItem(atPath: folder + "/" + files[2])[.size] as? Int)
        let plan = try cache.collectGarbage(keep: ["audio": ["new"]])
        #expect(plan.totalRecords == 8 && plan.totalBytes == remaining, "\(plan.totalBytes) bytes against \(remaining) on disk")
        #expect(plan.leftInPlace.map(\.path).sorted() == [files[1], files[3]].sorted() && plan.leftoverFiles.isEmpty)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + files[3])) == folder + "/elsewhere")
        #expect(FileManager.default.fileExists(atPath: folder + "/elsewhere"))
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: folder + "/" + files[1], isDirectory: &isFolder) && isFolder.boolValue)
        #expect(!FileManager.default.fileExists(atPath: folder + "/" + files[2]) && FileManager.default.fileExists(atPath: folder + "/cache/audio/stray.shard"))
        #expect(try cache.stats().isEmpty)
    }

    /// A compaction's freed bytes, planned and reported, are what the shard file shrinks by (header,
    /// index entries and alignment padding included), not only the dropped records' payload.
    @Test func aCompactionFreesWhatTheShardFileShrinksBy() throws {
        let mixed = Self.records(count: 7, seed: 41)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: mixed, failures: [])
        let row = try #require(try cache.row(stage: "audio", fingerprint: "fp", key: mixed[0].key))
        let shardFile = try #require(try cache.shardFile(row.shardId))
        func size(_ path: String) throws -> Int { try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) }
        let before = try size(folder + "/" + shardFile)
        let live = Set(mixed.indices.filter { $0 % 3 != 1 }.map { mixed[$0].key })
        let planned = try cache.planGarbage(keep: ["audio": ["fp"]], liveKeys: live)
        let plan = try cache.collectGarbage(keep: ["audio": ["fp"]], liveKeys: live)
        let compacted = try #require(plan.groups.first { $0.reason == .compacted })
        let shards = try store.read { try CacheShardRow.fetchAll($0) }
        let after = try size(folder + "/" + (try #require(shards.first).file))
        #expect(shards.count == 1 && after < before)
        #expect(compacted.bytes == before - after && planned.totalBytes == before - after,
                "planned \(planned.totalBytes), reported \(compacted.bytes), shrank by \(before - after)")
        #expect(try cache.keys(stage: "audio", fingerprint: "fp") == live)
    }

    /// A shard to compact that holds a damaged live record is left as it is (its live records still indexed,
    /// nothing lost), named, and not counted as freed; the rest of the collection is done.
    @Test func aShardWithADamagedLiveRecordIsLeftUncompactedAndTheRestIsCollected() throws {
        let mixed = Self.records(count: 3, seed: 31), old = Self.records(count: 2, seed: 32)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: mixed, failures: [])
        try cache.publish(stage: "audio", fingerprint: "old", runId: "r1", records: old, failures: [])
        let row = try #require(try cache.row(stage: "audio", fingerprint: "fp", key: mixed[1].key))
        let shardFile = try #require(try cache.shardFile(row.shardId))
        try flipByte(in: folder + "/" + shardFile, at: row.dataOffset + 3)
        // mixed[0]'s source is gone: its shard would be compacted around the two live records, one of them damaged.
        let plan = try cache.collectGarbage(keep: ["audio": ["fp"]], liveKeys: Set(mixed.dropFirst().map(\.key)))
        #expect(plan.notCompacted.map(\.path) == [shardFile] && plan.notCompacted.first?.problem.contains("CRC-32C") == true,
                "\(plan.notCompacted)")
        #expect(!plan.groups.contains { $0.reason == .compacted && $0.shards != 0 }, "nothing counted as compacted: \(plan.groups)")
        #expect(FileManager.default.fileExists(atPath: folder + "/" + shardFile))
        #expect(try cache.keys(stage: "audio", fingerprint: "fp") == Set(mixed.dropFirst().map(\.key)))
        #expect(try cache.keys(stage: "audio", fingerprint: "old").isEmpty, "the other cache key's shard went")
    }

    /// A kill mid-write leaves a temporary file beside the one being written: a checkpoint's
    /// `.dat.nosync…`, a `<file>.part-<pid>` in a run folder or the work directory. gc removes those
    /// of processes that are gone, and leaves the files of a process still writing.
    @Test func filesThatKilledWritesLeftAreRemovedByGC() throws {
        let gone = "2147483646", alive = "\(getpid())"
        let leftovers = ["cache/train/fp/fold-0/.dat.nosync3AE.FuHzJ9", "runs/20261203-120000-abcdef/manifest.yaml.part-\(gone)",
                         "executable.sha256.part-\(gone)", "sweeps/grid-0123abcd/state.json.part-\(gone)",
                         "nightly/20261203-120000-abcdef.md.part-\(gone)"]
        let kept = ["runs/20261203-120000-abcdef/features.json.part-\(alive)", "runs/20261203-120000-abcdef/model.onnx",
                    "cache/train/fp/fold-0/best.safetensors", "sweeps/grid-0123abcd/state.json.part-\(alive)",
                    "nightly/LATEST", "workers/0-of-2/runs/20261203-120000-abcdef/manifest.yaml.part-\(gone)",
                    // Where writers do not hold the work-directory lock, a dead pid may be a live writer in another
                    // PID namespace: a file modified within the last 10 minutes stays.
                    "sweeps/grid-0123abcd/running.json.part-\(gone)"]
        for file in leftovers + kept {
            try FileManager.default.createDirectory(atPath: ((folder + "/" + file) as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data(repeating: 1, count: 10).write(to: URL(fileURLWithPath: folder + "/" + file))
            if !file.hasSuffix("running.json.part-\(gone)") {
                try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-660)], ofItemAtPath: folder + "/" + file)
            }
        }
        let report = try cache.collectGarbage(keep: [:])
        #expect(report.leftoverFiles.map(\.path) == leftovers.sorted(), "\(report.leftoverFiles)")
        for file in leftovers { #expect(!FileManager.default.fileExists(atPath: folder + "/" + file), "\(file) removed") }
        for file in kept { #expect(FileManager.default.fileExists(atPath: folder + "/" + file), "\(file) kept") }
    }

    @Test func aShardCutShortOrLeftHalfWrittenIsNeverVisible() throws {
        let records = Self.records(count: 3, seed: 4)
        try cache.publish(stage: "audio", fingerprint: "fp", runId: "r1", records: records, failures: [])
        let shard = try #require(try store.read { try CacheShardRow.fetchAll($0) }.first)
        // A crash mid-write leaves only a temporary file, never indexed; gc removes it.
        let leftover = folder + "/" + shard.file.replacingOccurrences(of: ".shard", with: "-x.shard.part-2147483646")
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: leftover))
        // A truncated copy is rejected with a clear reason, not read as garbage.
        let truncated = folder + "/truncated.shard"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + shard.file))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: truncated))
        #expect(throws: CacheError.self) { _ = try ShardFile(path: truncated) }
        #expect(throws: CacheError.self) { _ = try ShardFile(path: leftover) }

        let report = try cache.collectGarbage(keep: ["audio": ["fp"]])
        #expect(report.leftoverFiles.map(\.path) == [shard.file.replacingOccurrences(of: ".shard", with: "-x.shard.part-2147483646")])
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(try cache.keys(stage: "audio", fingerprint: "fp").count == 3)
        let old = try cache.collectGarbage(keep: ["audio": ["new-fingerprint"]])
        #expect(old.totalRecords == 3)
        #expect(try cache.stats().isEmpty)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: TestSupport.repositoryRoot + "/.venv/bin/python"),
                   "needs the test venv (make venv) for numpy"))
    func npyFilesLoadInNumpyWithTheRightShapeAndValues() throws {
        let records = Self.records(count: 3, seed: 5)
        for record in records {
            let path = folder + "/\(record.key.prefix(8)).npy"
            try NumpyFile.encode(dtype: record.dtype, shape: record.shape, data: record.data).write(to: URL(fileURLWithPath: path))
            let script = "import numpy as n,hashlib;a=n.load('\(path)');print(a.dtype,list(a.shape),hashlib.sha256(a.tobytes()).hexdigest())"
            let out = try TestSupport.shell("'\(TestSupport.repositoryRoot)/.venv/bin/python' -c \"\(script)\"")
            let expectedType = record.dtype == .float32 ? "float32" : "uint8"
            #expect(out.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "\(expectedType) \(record.shape) \(SHA256Hex.of(record.data))")
        }
    }

    private func flipByte(in path: String, at offset: Int) throws {
        chmod(path, 0o644)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        let byte = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data([byte ^ 0x40]))
        try handle.close()
    }
}
