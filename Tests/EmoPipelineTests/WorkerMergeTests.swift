import EmoCore
@testable import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import GRDB
import Testing

/// `emopipe merge` reads another work directory's database and files: rows that name paths outside
/// the cache, damaged shards and files that are not files are refused before anything is copied.
@Suite("worker merge")
struct WorkerMergeTests {
    /// A finished worker work directory with one published shard, beside an empty main one.
    static func worker(_ index: Int = 0, of count: Int = 2, dataRoot: String = "/data",
                       main: Workspace? = nil) throws -> (main: Workspace, worker: Workspace, shard: String) {
        let main = try main ?? Workspace(root: TestSupport.temporaryFolder("worker-merge") + "/box/main")
        let worker = Workspace(root: main.root + "/workers/\(index)-of-\(count)")
        try FileManager.default.createDirectory(atPath: worker.root, withIntermediateDirectories: true)
        try "\(index)/\(count)\n".write(toFile: worker.workerMarkerPath, atomically: true, encoding: .utf8)
        let store = try ProvenanceStore(path: worker.path("emopipe.sqlite"))
        var run = RunRecord(id: "20261202-00000\(index)-abcdef", command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: dataRoot,
                            threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date())
        run.status = .done
        try store.insert(run)
        let records = (0..<3).map { TensorRecord(key: SHA256Hex.of("key \($0) of worker \(index)"), float32: [Float](repeating: Float($0), count: 64), shape: [8, 8], metadata: "{}") }
        try TensorCache(workspace: worker, store: store).publish(stage: "audio", fingerprint: "fp", runId: run.id, records: records, failures: [])
        let shard = try store.read { try String.fetchOne($0, sql: "SELECT file FROM cacheShard") } ?? ""
        return (main, worker, shard)
    }

    /// Merges and returns each worker's report, throwing the first worker's damage as merge reported it.
    static func merge(_ main: Workspace, _ folders: [String]) throws -> [MergeReport] {
        try WorkerMerge(main: main).merge(folders).map { try $0.1.get() }
    }

    static func setShardFile(_ worker: Workspace, to file: String) throws {
        let queue = try DatabaseQueue(path: worker.path("emopipe.sqlite"))
        try queue.write { try $0.execute(sql: "UPDATE cacheShard SET file = ?", arguments: [file]) }
    }

    @Test func aSoundWorkerMerges() throws {
        let (main, worker, shard) = try Self.worker()
        let reports = try Self.merge(main, [worker.root])
        #expect(reports.first?.records == 3 && reports.first?.shards == 1)
        #expect(FileManager.default.contentsEqual(atPath: worker.path(shard), andPath: main.path(shard)))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: main.path(shard))[.posixPermissions] as? Int)
        #expect(mode == 0o444, "a merged shard is read-only, as a run writes one: \(String(mode, radix: 8))")
    }

    /// A worker's source row of the same sighting as the main's (a snapshot's copy) leaves the main's as it
    /// is, with what it gained since without a new sighting (its inode state); a newer sighting wins.
    @Test func aSnapshotsCopyOfASourceRowDoesNotUndoTheMains() throws {
        let (main, worker, _) = try Self.worker()
        func row(_ path: String, run: String, state: String?) -> SourceRecord {
            var source = SourceRecord(path: path, sha256: String(repeating: "a", count: 64), size: 10, mtimeNanos: 1, status: .ok, reason: nil, runId: run)
            source.inodeState = state
            return source
        }
        func recordRuns(_ store: ProvenanceStore, _ ids: [String]) throws {
            for id in ids {
                var run = RunRecord(id: id, command: "test", manifestJSON: "", manifestSHA256: "", dataRoot: "/data",
                                    threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date())
                run.status = .done
                try store.insert(run)
            }
        }
        let mainStore = try ProvenanceStore(path: main.path("emopipe.sqlite"))
        let workerStore = try ProvenanceStore(path: worker.path("emopipe.sqlite"))
        try recordRuns(mainStore, ["20261201-000000-aaaaaa"])
        try recordRuns(workerStore, ["20261201-000000-aaaaaa", "20261202-000000-bbbbbb"])
        try mainStore.write { db in
            try row("/data/same.wav", run: "20261201-000000-aaaaaa", state: "12:34").save(db)
            try row("/data/newer.wav", run: "20261201-000000-aaaaaa", state: "12:35").save(db)
        }
        try workerStore.write { db in
            try row("/data/same.wav", run: "20261201-000000-aaaaaa", state: nil).save(db)
            try row("/data/newer.wav", run: "20261202-000000-bbbbbb", state: "56:78").save(db)
        }
        _ = try Self.merge(main, [worker.root])
        #expect(try mainStore.source(path: "/data/same.wav")?.inodeState == "12:34")
        #expect(try mainStore.source(path: "/data/newer.wav")?.inodeState == "56:78")
    }

    /// A record the main `cache verify` dropped from a shard merged before is not merged again (its shard's
    /// name is the main cache's) but counted, so the worker's counts add up.
    @Test func aRecordWhoseShardIsAlreadyMergedIsCountedAsLeftOut() throws {
        let (main, worker, _) = try Self.worker()
        _ = try Self.merge(main, [worker.root])
        try ProvenanceStore(path: main.path("emopipe.sqlite")).write {
            try $0.execute(sql: "DELETE FROM cacheRecord WHERE rowid = (SELECT min(rowid) FROM cacheRecord)")
        }
        let again = try #require(try Self.merge(main, [worker.root]).first)
        #expect(again.records == 0 && again.recordsAlreadyPresent == 2 && again.recordsInShardsAlreadyPresent == 1, "\(again)")
    }

    @Test func aShardRowNamingAPathOutsideTheCacheIsRefusedAndNothingIsWritten() throws {
        for stray in ["../../../escaped.shard", "runs/x/model.onnx", "cache/audio/../../../escaped.shard", "/tmp/escaped.shard",
                      "cache/../\u{301}x/y/z.shard", "cache/train/fp/z.shard", "cache/audio/fp/../z.shard"] {
            let (main, worker, shard) = try Self.worker()
            // The file the row names exists, so only the check can stop the copy.
            let outside = (worker.path(stray) as NSString).standardizingPath
            try? FileManager.default.createDirectory(atPath: (outside as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try? FileManager.default.copyItem(atPath: worker.path(shard), toPath: outside)
            try Self.setShardFile(worker, to: stray)
            let error = #expect(throws: CacheError.self) { try Self.merge(main, [worker.root]) }
            #expect("\(error.map { "\($0)" } ?? "")".contains("which is not where the cache keeps a shard"), "\(stray): \(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: (main.path(stray) as NSString).standardizingPath), "\(stray)")
            #expect(try ProvenanceStore(path: main.path("emopipe.sqlite")).read { try CacheRecordRow.fetchCount($0) } == 0)
        }
    }

    @Test func aDamagedOrNonRegularShardIsRefusedWithoutBlocking() throws {
        let (main, worker, shard) = try Self.worker()
        let path = worker.path(shard)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0xff   // inside a record's data
        try bytes.write(to: URL(fileURLWithPath: path))
        let damaged = #expect(throws: CacheError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(damaged.map { "\($0)" } ?? "")".contains("does not match its CRC-32C"), "\(String(describing: damaged))")

        try FileManager.default.removeItem(atPath: path)
        #expect(mkfifo(path, 0o644) == 0)
        let fifo = #expect(throws: EmoError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(fifo.map { "\($0)" } ?? "")".contains("not a regular file"), "\(String(describing: fifo))")
        #expect(!FileManager.default.fileExists(atPath: main.path(shard)))
    }

    /// A worker's index row that disagrees with its shard's own index (an edited or damaged database) is
    /// refused, naming the field, and a row naming no shard likewise: readers of the main index trust it.
    @Test func anIndexRowThatDisagreesWithItsShardIsRefused() throws {
        let edits = [("UPDATE cacheRecord SET crc32c = crc32c + 1 WHERE rowid = 2", "says crc32c"),
                     ("UPDATE cacheRecord SET metadata = '{\"real_frames\": 5}' WHERE rowid = 1", "says metadata"),
                     ("UPDATE cacheRecord SET shapeJSON = '[64,1]' WHERE rowid = 3", "says shape [64,1], its shard [8,8]"),
                     ("UPDATE cacheRecord SET key = 'a' || substr(key, 2) WHERE rowid = 1", "names a record its shard does not hold"),
                     ("UPDATE cacheRecord SET fingerprint = 'deadbeef' WHERE rowid = 1", "is of audio deadbeef, its shard of audio fp"),
                     ("UPDATE cacheRecord SET shardId = 999 WHERE rowid = 1", "names shard 999, which it does not index"),
                     ("UPDATE cacheShard SET records = records - 1", "says 2 records, the shard holds 3")]
        for (edit, said) in edits {
            let (main, worker, shard) = try Self.worker()
            // As an sqlite3 shell edits it: without the foreign keys EmoPipe's own connections enforce.
            var configuration = Configuration()
            configuration.foreignKeysEnabled = false
            try DatabaseQueue(path: worker.path("emopipe.sqlite"), configuration: configuration).write { try $0.execute(sql: edit) }
            let error = #expect(throws: CacheError.self) { try Self.merge(main, [worker.root]) }
            #expect("\(error.map { "\($0)" } ?? "")".contains(said), "\(edit): \(String(describing: error))")
            #expect(try ProvenanceStore(path: main.path("emopipe.sqlite")).read { try CacheRecordRow.fetchCount($0) } == 0, "\(edit)")
            #expect(!FileManager.default.fileExists(atPath: main.path(shard)), "the refused worker's copied shard is not left behind: \(edit)")
        }
    }

    /// The advice merge gives works: `cache verify` on the damaged worker drops its damaged record, and the
    /// worker's shard, still holding that unindexed record, then merges with the records it still indexes.
    @Test func aWorkerVerifiedAfterDamageMergesItsSoundRecords() throws {
        let (main, worker, shard) = try Self.worker()
        let store = try ProvenanceStore(path: worker.path("emopipe.sqlite"))
        let row = try #require(try store.read { try CacheRecordRow.order(Column("dataOffset")).fetchOne($0) })
        let path = worker.path(shard)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[row.dataOffset + 1] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: CacheError.self) { try Self.merge(main, [worker.root]) }
        let report = try TensorCache(workspace: worker, store: store).verify(runId: "20261202-000000-abcdef")
        #expect(report.damaged.map(\.key) == [row.key])
        let merged = try Self.merge(main, [worker.root])
        #expect(merged.first?.records == 2, "\(merged)")
    }

    /// One damaged worker does not keep the others out: they are merged, and it is reported, naming
    /// its own shard file (not the copy the check read).
    @Test func aDamagedWorkerIsLeftOutAndTheOthersAreMerged() throws {
        let (main, damaged, shard) = try Self.worker(0, of: 2)
        let (_, sound, _) = try Self.worker(1, of: 2, main: main)
        let path = damaged.path(shard)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 5] ^= 0xff   // inside the shard's index
        try bytes.write(to: URL(fileURLWithPath: path))
        // A third worker's shard is gone altogether: its own problem too.
        let (_, gone, goneShard) = try Self.worker(2, of: 3, main: main)
        try FileManager.default.removeItem(atPath: gone.path(goneShard))
        var heard: [String] = []
        let results = try WorkerMerge(main: main).merge([damaged.root, sound.root, gone.root]) { folder, _ in heard.append(folder) }
        #expect(results.count == 3 && heard == [damaged.root, sound.root, gone.root])
        guard case .failure(let damage) = results[0].1 else { Issue.record("the damaged worker merged: \(results)"); return }
        #expect("\(damage)".hasPrefix(path + ": not a valid shard: ") && "\(damage)".contains("`emopipe cache verify --workdir` on that worker's folder"),
                "\(damage)")
        #expect((try? results[1].1.get())?.records == 3, "\(results)")
        guard case .failure(let missing) = results[2].1 else { Issue.record("the worker without its shard merged: \(results)"); return }
        #expect("\(missing)".contains(gone.path(goneShard)), "\(missing)")
        #expect(try ProvenanceStore(path: main.path("emopipe.sqlite")).read { try CacheRecordRow.fetchCount($0) } == 3)
    }

    /// A worker whose process died (its last run still says running, its lock free) and a folder that is
    /// no worker's are left out; the finished worker is merged, and the first one joins once it has finished.
    @Test func anUnfinishedWorkerIsLeftOutAndTheFinishedOnesAreMerged() throws {
        let (main, killed, _) = try Self.worker(0, of: 2)
        let (_, finished, _) = try Self.worker(1, of: 2, main: main)
        try ProvenanceStore(path: killed.path("emopipe.sqlite")).write { try $0.execute(sql: "UPDATE run SET status = 'running'") }
        let typo = main.root + "/workers/2-of-2"
        // A work directory that no `run --worker` made (its worker.txt gone).
        let (_, unmarked, _) = try Self.worker(3, of: 4, main: main)
        try FileManager.default.removeItem(atPath: unmarked.workerMarkerPath)
        let results = try WorkerMerge(main: main).merge([killed.root, finished.root, typo, unmarked.root])
        #expect(results.map(\.0) == [killed.root, finished.root, typo, unmarked.root])
        guard case .failure(let unfinished) = results[0].1, case .failure(let missing) = results[2].1,
              case .failure(let notAWorker) = results[3].1 else {
            Issue.record("an unfinished, missing or unmarked worker merged: \(results)"); return
        }
        #expect("\(unfinished)".contains("the worker's last run 20261202-000000-abcdef did not finish (its process died); run it again"), "\(unfinished)")
        #expect("\(missing)".contains("\(typo): no such folder"), "\(missing)")
        #expect("\(notAWorker)".contains("\(unmarked.root) is not a worker's work directory (no worker.txt"), "\(notAWorker)")
        #expect((try? results[1].1.get())?.records == 3, "\(results)")
        let mainStore = try ProvenanceStore(path: main.path("emopipe.sqlite"))
        #expect(try mainStore.read { try CacheRecordRow.fetchCount($0) } == 3)
        try ProvenanceStore(path: killed.path("emopipe.sqlite")).write { try $0.execute(sql: "UPDATE run SET status = 'done'") }
        let again = try Self.merge(main, [killed.root, finished.root])
        #expect(again.map(\.records) == [3, 0] && again[1].recordsAlreadyPresent == 3, "\(again)")
        #expect(try mainStore.read { try CacheRecordRow.fetchCount($0) } == 6)
        // None finished: nothing merged, and no main directory made for it.
        let (emptyMain, alone, _) = try Self.worker(0, of: 1, main: Workspace(root: TestSupport.temporaryFolder("worker-merge") + "/none/main"))
        try ProvenanceStore(path: alone.path("emopipe.sqlite")).write { try $0.execute(sql: "UPDATE run SET status = 'running'") }
        let none = try WorkerMerge(main: emptyMain).merge([alone.root])
        #expect(none.count == 1 && (try? none[0].1.get()) == nil, "\(none)")
        #expect(!FileManager.default.fileExists(atPath: emptyMain.path("emopipe.sqlite")) && !FileManager.default.fileExists(atPath: emptyMain.cacheRoot))
    }

    /// A worker's folder is named as messages name paths, escaped, on stdout and stderr alike: a path holding an
    /// escape sequence or a line break was printed raw (a terminal obeyed it; a reader of the output split the line).
    @Test func workerFoldersWithControlCharactersAreNamedEscaped() throws {
        let odd = try TestSupport.temporaryFolder("worker-merge") + "/box\u{1B}[31m\nred/main"
        let (main, sound, _) = try Self.worker(0, of: 2, main: Workspace(root: odd))
        let (_, killed, _) = try Self.worker(1, of: 2, main: main)
        try ProvenanceStore(path: killed.path("emopipe.sqlite")).write { try $0.execute(sql: "UPDATE run SET status = 'running'") }
        let merged = try TestSupport.run(TestSupport.emopipe, ["merge", "--workdir", main.root])
        #expect(merged.status == 3, "one merged, one left out: \(merged.stderr)")
        #expect(merged.stdout.hasPrefix("\(sound.root.escaped): 0 sources, 0 failures, 3 records in 1 shards"), "\(merged.stdout)")
        #expect(merged.stderr.contains("emopipe: \(killed.root.echoed): the worker's last run"), "\(merged.stderr)")
        for text in [merged.stdout, merged.stderr] {
            #expect(!text.contains("\u{1B}") && text.split(separator: "\n").allSatisfy { !$0.hasPrefix("red/") }, "\(text)")
        }
    }

    /// A worker's database is checked against its folder: a last run of another slice (a worker's folder
    /// copied over this one), a source outside the data root its runs read, a status outside its enum, and
    /// a lock file that cannot be taken each leave that worker out, named, while the others merge. A folder
    /// under workers/ without a database (a worker killed as it started) is one the merge names too.
    @Test func aWorkersOwnInconsistenciesLeaveItOutAndTheOthersMerge() throws {
        let (main, copied, _) = try Self.worker(0, of: 5)
        try ProvenanceStore(path: copied.path("emopipe.sqlite")).write { try $0.execute(sql: "UPDATE run SET worker = '1/5'") }
        let (_, outside, _) = try Self.worker(1, of: 5, main: main)
        try ProvenanceStore(path: outside.path("emopipe.sqlite")).write {
            try SourceRecord(path: "/etc/Actor_01/03-01-01-01-01-01-01.wav", sha256: nil, size: 1, mtimeNanos: 1, status: .ok,
                             reason: nil, runId: "20261202-000001-abcdef").insert($0)
        }
        let (_, badStatus, _) = try Self.worker(2, of: 5, main: main)
        try ProvenanceStore(path: badStatus.path("emopipe.sqlite")).write {
            try SourceRecord(path: "/data/Actor_01/03-01-01-01-01-01-01.wav", sha256: nil, size: 1, mtimeNanos: 1, status: .ok,
                             reason: nil, runId: "20261202-000002-abcdef").insert($0)
            try $0.execute(sql: "UPDATE source SET status = 'zzz'")
        }
        let (_, unlockable, _) = try Self.worker(3, of: 5, main: main)
        try FileManager.default.createDirectory(atPath: unlockable.lockPath, withIntermediateDirectories: false)
        let (_, sound, _) = try Self.worker(4, of: 5, main: main)
        let bare = main.root + "/workers/5-of-6"
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: false)
        // No workers': a file system's lost+found (a volume mounted at workers/) and hidden folders.
        for other in ["lost+found", ".snapshot"] {
            try FileManager.default.createDirectory(atPath: main.root + "/workers/" + other, withIntermediateDirectories: false)
        }
        #expect(main.workerFolders == [copied.root, outside.root, badStatus.root, unlockable.root, sound.root, bare])

        let results = try WorkerMerge(main: main).merge(main.workerFolders)
        let said = results.map { folder, result in (folder, (try? result.get()) == nil ? "\(result)" : "merged") }
        #expect(said.count == 6, "\(said)")
        let expected = [
            (copied.root, "its last run 20261202-000000-abcdef was worker 1/5, but \(copied.workerMarkerPath) says 0/5"),
            (outside.root, "its source row /etc/Actor_01/03-01-01-01-01-01-01.wav is not under the data root its last run read (/data)"),
            (badStatus.root, "a row does not hold what EmoPipe writes (column status: Cannot initialize SourceStatus from invalid String value zzz"),
            (unlockable.root, "\(unlockable.lockPath): the lock file is a folder; remove it"),
            (sound.root, "merged"),
            (bare, "\(bare): not a work directory (no emopipe.sqlite)"),
        ]
        for ((folder, text), (expectedFolder, says)) in zip(said, expected) {
            #expect(folder == expectedFolder && text.contains(says), "\(folder): \(text)")
        }
        #expect(try ProvenanceStore(path: main.path("emopipe.sqlite")).read { try CacheRecordRow.fetchCount($0) } == 3)
    }

    /// A file given as a worker is said to be no folder, not to be a worker to run again.
    @Test func aFileGivenAsAWorkerIsSaidToBeNoFolder() throws {
        let (main, _, _) = try Self.worker(0, of: 2)
        let file = main.root + "/afile"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let results = try WorkerMerge(main: main).merge([file])
        let said = results.map { "\($0.1)" }.joined()
        #expect(said.contains("\(file): not a folder (a worker's work directory is one)") && !said.contains("run that worker again"), "\(said)")
    }

    /// A link under workers/ to another worker's folder is that worker, listed once (merging every folder
    /// refused it as "one folder given twice", exit 64, and merged none).
    @Test func aLinkToAWorkerUnderWorkersIsListedOnce() throws {
        let (main, first, _) = try Self.worker(0, of: 2)
        let (_, second, _) = try Self.worker(1, of: 2, main: main)
        try FileManager.default.createSymbolicLink(atPath: main.workersRoot + "/zz-alias", withDestinationPath: second.root)
        #expect(main.workerFolders.count == 3)
        #expect(WorkerMerge.workerFolders(in: main) == [first.root, second.root])
        #expect(try Self.merge(main, WorkerMerge.workerFolders(in: main)).map(\.records) == [3, 3])
    }

    /// Nothing to merge says why: no folder under workers/, or workers/ a file where the folder should be.
    @Test func nothingToMergeSaysWhetherTheWorkersFolderIsAFile() throws {
        let main = Workspace(root: try TestSupport.temporaryFolder("worker-merge") + "/main")
        try FileManager.default.createDirectory(atPath: main.root, withIntermediateDirectories: true)
        #expect(throws: PipelineError.missingData("nothing to merge: no worker work directories given, and none under \(main.workersRoot)")) {
            try WorkerMerge(main: main).merge(main.workerFolders)
        }
        try "not a folder\n".write(toFile: main.workersRoot, atomically: true, encoding: .utf8)
        #expect(throws: PipelineError.missingData("nothing to merge: no worker work directories given, and \(main.workersRoot) is a file, not the folder workers write into")) {
            try WorkerMerge(main: main).merge(main.workerFolders)
        }
    }

    @Test func aMalformedSliceAndTheMainDirectoryItselfAreNamedForWhatTheyAre() throws {
        let (main, worker, _) = try Self.worker()
        for (marker, says) in [("garbage", "garbage is not a worker slice I/N"), ("1/2/3", "1/2/3 is not a worker slice I/N"), ("", "is empty"),
                               ("5/2", "worker 5/2: the index I counts from 0, so of 2 workers it is 0 to 1"),
                               ("0/0", "worker 0/0: the count N must be from 1 to 100000"),
                               ("9999999/99999999", "worker 9999999/99999999: the count N must be from 1 to 100000"),
                               ("-1/2", "worker -1/2: the index I counts from 0")] {
            try "\(marker)\n".write(toFile: worker.workerMarkerPath, atomically: true, encoding: .utf8)
            let error = #expect(throws: PipelineError.self) { try Self.merge(main, [worker.root]) }
            #expect("\(error.map { "\($0)" } ?? "")".contains("worker.txt: \(says)"), "\(marker): \(String(describing: error))")
        }
        // A marker that is there but is no marker (far larger than one, a folder) is named, not called missing.
        #expect(truncate(worker.workerMarkerPath, 50 << 30) == 0)
        let huge = #expect(throws: PipelineError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(huge.map { "\($0)" } ?? "")".contains("worker.txt: it is 53687091200 bytes"), "\(String(describing: huge))")
        try FileManager.default.removeItem(atPath: worker.workerMarkerPath)
        try FileManager.default.createDirectory(atPath: worker.workerMarkerPath, withIntermediateDirectories: false)
        let folder = #expect(throws: PipelineError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(folder.map { "\($0)" } ?? "")".contains("worker.txt: not a regular file"), "\(String(describing: folder))")
        try FileManager.default.removeItem(atPath: worker.workerMarkerPath)
        let unmarked = #expect(throws: PipelineError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(unmarked.map { "\($0)" } ?? "")".contains("no worker.txt"))
        let alias = main.root + "/alias"
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: worker.root)
        for given in [worker.root + "/", alias] {
            let itself = #expect(throws: PipelineError.self) { try Self.merge(worker, [given]) }
            #expect("\(itself.map { "\($0)" } ?? "")".contains("is the work directory merged into"), "\(given): \(String(describing: itself))")
        }
    }

    /// Workers merged together read one data root, the main directory's when it has run; slices may
    /// overlap (re-partitioned workers), a worker.txt that disagrees with its folder may not.
    @Test func workersOfAnotherRootAreRefusedBeforeAnythingIsMerged() throws {
        func refusal(_ folders: [String], main: Workspace) -> String {
            do { _ = try Self.merge(main, folders) } catch { return "\(error)" }
            return "merged"
        }
        let (main, zero, _) = try Self.worker(0, of: 2)
        let (_, foreign, _) = try Self.worker(1, of: 2, dataRoot: "/elsewhere", main: main)
        #expect(refusal([zero.root, foreign.root], main: main).contains("read the data root /elsewhere"))
        #expect(try ProvenanceStore(path: main.path("emopipe.sqlite")).read { try CacheRecordRow.fetchCount($0) } == 0, "nothing merged")
        #expect(refusal([zero.root], main: main) == "merged")
        // Merged alone later, the foreign worker meets the main directory's root.
        #expect(refusal([foreign.root], main: main).contains("/elsewhere, \(main.root)'s last run read /data"))

        let (otherMain, first, _) = try Self.worker(0, of: 2)
        let (_, three, _) = try Self.worker(1, of: 3, main: otherMain)
        try "0/2\n".write(toFile: three.workerMarkerPath, atomically: true, encoding: .utf8)
        #expect(refusal([first.root, three.root], main: otherMain).contains("says slice 0/2 but the folder is 1-of-3"))
        try "1/3\n".write(toFile: three.workerMarkerPath, atomically: true, encoding: .utf8)
        #expect(refusal([first.root, three.root], main: otherMain) == "merged", "re-partitioned slices overlap harmlessly")
    }

    /// A worker still running holds its lock: the merge says so (locked, exit 75), whatever its last run says.
    @Test func aRunningWorkerIsReportedAsLocked() throws {
        let (main, worker, _) = try Self.worker()
        try ProvenanceStore(path: worker.path("emopipe.sqlite")).write { try $0.execute(sql: "UPDATE run SET status = 'running'") }
        let held = try worker.lock(holder: "emopipe run --worker 0/2 (pid 1)")
        defer { held.release() }
        let error = #expect(throws: PipelineError.self) { try Self.merge(main, [worker.root]) }
        guard case .locked(let holder)? = error else { Issue.record("expected locked, got \(String(describing: error))"); return }
        #expect(holder == "emopipe run --worker 0/2 (pid 1), in the worker's folder \(worker.root): merge once it has finished", "\(holder)")
    }

    /// A link among the main directory's folders must not carry a shard out of it.
    @Test func aLinkedFolderInTheMainCacheIsNotWrittenThrough() throws {
        let (main, worker, shard) = try Self.worker()
        let outside = try TestSupport.temporaryFolder("outside")
        let folder = (shard as NSString).deletingLastPathComponent   // cache/audio/<fp>
        try FileManager.default.createDirectory(atPath: main.path((folder as NSString).deletingLastPathComponent), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: main.path(folder), withDestinationPath: outside)
        let error = #expect(throws: EmoError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("is a link or not a folder"), "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    /// The user's own `cache` folder may be a link (to a bigger disk): merge writes through it, as `run` does.
    @Test func theMainCacheFolderItselfMayBeALink() throws {
        let (main, worker, shard) = try Self.worker()
        let disk = try TestSupport.temporaryFolder("bigger-disk")
        try FileManager.default.createDirectory(atPath: main.root, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: main.path("cache"), withDestinationPath: disk)
        let reports = try Self.merge(main, [worker.root])
        #expect(reports.first?.records == 3)
        #expect(FileManager.default.contentsEqual(atPath: worker.path(shard), andPath: disk + "/" + shard.dropFirst("cache/".count)))
    }

    /// A shard of another size than its row says (here a link to a bigger file) is refused before
    /// anything is copied: copying first would fill the disk with a file the CRC check then refuses.
    @Test func aShardOfAnotherSizeThanItsRowIsNotCopied() throws {
        let (main, worker, shard) = try Self.worker()
        let big = try TestSupport.temporaryFolder("big") + "/big.bin"
        #expect(FileManager.default.createFile(atPath: big, contents: Data(count: 3 << 20)))
        try FileManager.default.removeItem(atPath: worker.path(shard))
        try FileManager.default.createSymbolicLink(atPath: worker.path(shard), withDestinationPath: big)
        let error = #expect(throws: CacheError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("is \(3 << 20) bytes where its database row says"), "\(String(describing: error))")
        let folder = main.path((shard as NSString).deletingLastPathComponent)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).isEmpty, "no copy, not even a partial one")
    }

    /// One worker given twice, by one name or through a link, is a usage error, not its own lock held.
    @Test func aWorkerGivenTwiceIsNamedAsSuch() throws {
        let (main, worker, _) = try Self.worker()
        let alias = main.root + "/alias"
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: worker.root)
        for pair in [[worker.root, worker.root], [worker.root, alias]] {
            let error = #expect(throws: PipelineError.self) { try WorkerMerge(main: main).merge(pair) }
            guard case .invalidFile(let why)? = error else { Issue.record("\(pair): \(String(describing: error))"); continue }
            #expect(why.contains("give each worker's work directory once"), "\(why)")
        }
    }

    /// A run id that is not one plain name (here `/` plus a combining mark, one Character but a `/`
    /// to the file system, and a terminal escape) is refused.
    @Test func aRunIdThatIsNotAPlainNameIsRefused() throws {
        for id in ["../\u{301}evil", "20261202-x\u{1B}[2J", "..", "a/b"] {
            let (main, worker, _) = try Self.worker()
            let queue = try DatabaseQueue(path: worker.path("emopipe.sqlite"))
            try queue.write { try $0.execute(sql: "UPDATE run SET id = ?", arguments: [id]) }
            let error = #expect(throws: CacheError.self) { try Self.merge(main, [worker.root]) }
            #expect("\(error.map { "\($0)" } ?? "")".contains("is not a plain name"), "\(id): \(String(describing: error))")
        }
    }

    /// Links and hand-made SQL in a worker's folder: its lock file linked to a file elsewhere (the lock is
    /// emptied and written), its database linked elsewhere (SQLite writes beside the target), a view
    /// that never ends in place of a table. Each is refused, and nothing outside is touched.
    @Test func linksAndViewsInAWorkerAreRefusedAndTouchNothingOutside() throws {
        let victim = try TestSupport.temporaryFolder("victim") + "/important.txt"
        try "user data\n".write(toFile: victim, atomically: true, encoding: .utf8)

        let (main, worker, _) = try Self.worker()
        try FileManager.default.createSymbolicLink(atPath: worker.path("emopipe.lock"), withDestinationPath: victim)
        let locked = #expect(throws: EmoError.self) { try Self.merge(main, [worker.root]) }
        #expect("\(locked.map { "\($0)" } ?? "")".contains("the lock file is a link; remove it"), "\(String(describing: locked))")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "user data\n")

        let (otherMain, linked, _) = try Self.worker()
        let outside = (victim as NSString).deletingLastPathComponent + "/elsewhere.sqlite"
        try FileManager.default.moveItem(atPath: linked.path("emopipe.sqlite"), toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: linked.path("emopipe.sqlite"), withDestinationPath: outside)
        let database = #expect(throws: EmoError.self) { try Self.merge(otherMain, [linked.root]) }
        #expect("\(database.map { "\($0)" } ?? "")".contains("is missing, a link or not a regular file"), "\(String(describing: database))")
        #expect(!FileManager.default.fileExists(atPath: outside + "-shm"))

        let (thirdMain, viewed, _) = try Self.worker()
        let queue = try DatabaseQueue(path: viewed.path("emopipe.sqlite"))
        try queue.write { db in
            try db.execute(sql: "ALTER TABLE failure RENAME TO failure_old")
            try db.execute(sql: "CREATE VIEW failure AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT * FROM failure_old, n")
        }
        try queue.close()
        let view = #expect(throws: EmoError.self) { try Self.merge(thirdMain, [viewed.root]) }
        #expect("\(view.map { "\($0)" } ?? "")".contains("holds a view or trigger (failure)"), "\(String(describing: view))")
    }
}
