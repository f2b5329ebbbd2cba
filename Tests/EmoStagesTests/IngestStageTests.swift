import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("ingest stage", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct IngestStageTests {
    @Test func recordsEveryFileWithItsStatusAndGoesOnPastBadOnes() throws {
        let root = try IngestFixture.dataRoot()
        var expected = try IngestFixture.addBadFiles(to: root)
        // An mp4 cut inside its first box: FFmpeg opens it and finds no stream at all.
        let cutEarly = root + "/Actor_09/01-01-06-01-01-01-09.mp4"
        try Data(contentsOf: URL(fileURLWithPath: root + "/Actor_01/01-01-01-01-01-01-01.mp4")).prefix(100).write(to: URL(fileURLWithPath: cutEarly))
        expected[cutEarly] = ("failed", "audio-video clip (modality 01) has no audio or video stream FFmpeg can find (a file cut short?)")
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "bad sources make a partial run: \(result.stderr)")

        let sources = try IngestFixture.sources(workdir: workdir)
        for (path, (status, reason)) in expected {
            let row = try #require(sources[path], "no row for \(path)")
            #expect(row["status"] as? String == status, "\(path)")
            if reason.isEmpty { #expect(row["reason"] is NSNull, "\(path): \(row["reason"] ?? "")") }
            else { #expect((row["reason"] as? String)?.contains(reason) == true, "\(path): \(row["reason"] ?? "nil")") }
            #expect(result.stderr.contains(path) || status != "failed", "the failure is reported naming the file")
        }
        let shared = sources.filter { !$0.key.contains("/Actor_09/") }
        #expect(shared.count == 240)
        #expect(shared.values.allSatisfy { $0["status"] as? String == "ok" })
        // Every row has exactly the documented fields; codes are integers, null when ignored.
        let keys: Set = ["path", "sha256", "kind", "modality", "channel", "emotion", "intensity", "statement",
                         "repetition", "actor", "status", "reason", "stage_failures", "changed_since_ingest"]
        #expect(sources.values.allSatisfy { Set($0.keys) == keys })
        let wav = try #require(sources[root + "/Actor_02/03-01-05-02-01-02-02.wav"])
        #expect(wav["emotion"] as? Int == 5 && wav["intensity"] as? Int == 2 && wav["actor"] as? Int == 2)
        #expect(wav["kind"] as? String == "wav" && wav["modality"] as? Int == 3)
        #expect(sources[root + "/Actor_09/notes.txt"]?["emotion"] is NSNull)
        // Hashes agree with the shared checksums (an independent record of the original files).
        let checksums = try String(contentsOfFile: TestSupport.sharedData + "/speech-sha256.txt", encoding: .utf8)
        let line = try #require(checksums.split(separator: "\n").first { $0.hasSuffix("Actor_01/03-01-01-01-01-01-01.wav") })
        #expect(sources[root + "/Actor_01/03-01-01-01-01-01-01.wav"]?["sha256"] as? String == String(line.prefix(64)))
        #expect(result.stderr.contains("identical content under 2 names"))
        // One recording under two actors' names: at least one label is wrong, and the warning says so.
        #expect(result.stderr.contains("their names disagree (angry by actor 1 / angry by actor 9), so at least one is mislabelled"), "\(result.stderr)")
        #expect(result.stderr.contains("Actor_09/03-01-05-01-01-01-09.wav"))

        let failedOnly = try IngestFixture.emopipe(["sources", "--failed", "--json"], workdir: workdir)
        let failedRows = try JSONSerialization.jsonObject(with: Data(failedOnly.stdout.utf8)) as! [[String: Any]]
        #expect(failedRows.count == expected.values.filter { $0.status == "failed" }.count)
    }

    @Test func unchangedFilesAreNotReadAgainAndChangesAreNoticed() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let before = try store.allSources()

        let again = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(again.status == 0)
        // The counts repeated for an up-to-date stage are named as the earlier run's.
        let first = try #require(try store.read { try RunRecord.fetchAll($0) }.min { $0.startedAt < $1.startedAt }?.id)
        #expect(again.stderr.contains("ingest: up to date (as run \(first) left it: "), "\(again.stderr)")
        #expect(again.stderr.contains("  ingest: up to date (run \(first)) — "), "\(again.stderr)")
        #expect(try store.allSources() == before, "a no-op run changes no row")

        // Touch one file (new mtime, same bytes), replace one, remove one, add one.
        let touched = root + "/Actor_01/03-01-02-01-01-01-01.wav"
        let replaced = root + "/Actor_02/03-01-03-01-01-01-02.wav"
        let removed = root + "/Actor_02/03-01-04-01-01-01-02.wav"
        try TestSupport.shell("touch -d '2020-01-01' '\(touched)'")
        try TestSupport.shell("rm '\(replaced)' && sox '\(root)/Actor_02/03-01-03-02-01-01-02.wav' '\(replaced)' trim 0 1")
        try FileManager.default.removeItem(atPath: removed)
        try FileManager.default.copyItem(atPath: root + "/Actor_01/03-01-08-01-01-01-01.wav",
                                         toPath: root + "/Actor_02/03-01-08-01-01-01-02.wav.tmp")
        try FileManager.default.createDirectory(atPath: root + "/Actor_03", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: root + "/Actor_02/03-01-08-01-01-01-02.wav.tmp",
                                         toPath: root + "/Actor_03/03-01-08-02-02-02-03.wav")

        let status = try IngestFixture.emopipe(["status", "--json"], data: root, workdir: workdir)
        #expect(status.stdout.contains("1 added, 2 changed, 1 removed"), "\(status.stdout)")

        let third = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(third.stderr.contains("3 to read, 1 gone"), "\(third.stderr)")
        #expect(third.stderr.contains("1 source gone from disk or now read under another path, marked removed: \(removed)\n"),
                "the file is named: \(third.stderr)")
        let after = Dictionary(uniqueKeysWithValues: try store.allSources().map { ($0.path, $0) })
        let old = Dictionary(uniqueKeysWithValues: before.map { ($0.path, $0) })
        #expect(after[touched]?.sha256 == old[touched]?.sha256)
        #expect(after[replaced]?.sha256 != old[replaced]?.sha256)
        #expect(after[replaced]?.sha256 == (try TestSupport.sha256sum(replaced)))
        #expect(after[removed]?.status == .removed)
        #expect(after[root + "/Actor_03/03-01-08-02-02-02-03.wav"]?.status == .ok)

        // Bytes rewritten in place at the same size with the mtime put back (`cp -p`, `touch -r`): the same
        // inode, but the change time moved, so a plain run reads the file again.
        let rewritten = root + "/Actor_01/03-01-03-01-01-01-01.wav"
        try TestSupport.shell("cp -p '\(rewritten)' '\(root)/reference.tmp'")
        let handle = try #require(FileHandle(forUpdatingAtPath: rewritten))
        try handle.seek(toOffset: 20_000)
        try handle.write(contentsOf: Data(repeating: 0x55, count: 4_000))
        try handle.close()
        try TestSupport.shell("touch -r '\(root)/reference.tmp' '\(rewritten)' && rm '\(root)/reference.tmp'")
        let plain = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(plain.status == 0 && plain.stderr.contains("1 to read, 0 gone"), "\(plain.stderr)")
        #expect(try store.source(path: rewritten)?.sha256 == (try TestSupport.sha256sum(rewritten)))

        // Two files of one size and one mtime (as RAVDESS unpacks) swapping names: each path has the
        // other's inode now, so both are read again and each name gets the bytes it now holds.
        let happy = root + "/Actor_01/03-01-03-02-01-01-01.wav", sad = root + "/Actor_01/03-01-04-02-01-01-01.wav"
        // Removed first: the data root's files are hard links to ones other tests read.
        try TestSupport.shell("rm -f '\(happy)' '\(sad)' && cp '\(rewritten)' '\(happy)' && cp '\(rewritten)' '\(sad)' "
                              + "&& printf 'other bytes' | dd of='\(sad)' bs=1 seek=30000 conv=notrunc status=none "
                              + "&& touch -d '2019-01-01 00:00:00' '\(happy)' '\(sad)'")
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let (happyBytes, sadBytes) = (try TestSupport.sha256sum(happy), try TestSupport.sha256sum(sad))
        try TestSupport.shell("mv '\(happy)' '\(root)/swap.tmp' && mv '\(sad)' '\(happy)' && mv '\(root)/swap.tmp' '\(sad)'")
        let swapStatus = try IngestFixture.emopipe(["status"], data: root, workdir: workdir)
        #expect(swapStatus.stdout.contains("ingest    stale       2 files to hash again (same size and mtime, but another inode or change time"),
                "\(swapStatus.stdout)")
        let swapped = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(swapped.status == 0 && swapped.stderr.contains("2 to read, 0 gone"), "\(swapped.stderr)")
        #expect(try store.source(path: happy)?.sha256 == sadBytes && store.source(path: sad)?.sha256 == happyBytes)

        // A forced ingest hashes every file again (what no stat can tell: a rewrite while the clock was set back).
        let forced = try IngestFixture.emopipe(["run", "--until", "ingest", "--force", "ingest"], data: root, workdir: workdir)
        #expect(forced.status == 0, "\(forced.stderr)")
        let sources = try store.allSources().filter { $0.status != .removed }.count
        #expect(forced.stderr.contains("0 new, 0 changed, 0 removed; \(sources) read again with the content recorded"), "\(forced.stderr)")
    }

    /// A file whose examination ran out of memory (an mp4 header claiming 2^31 chunks, or a tight memory limit) is
    /// examined again by the next run, as one that could not be read: the limit may be another then. (It stayed
    /// failed, and the failure called the file damaged whatever the cause.)
    @Test func aFileThatRanOutOfMemoryIsExaminedAgain() throws {
        let root = try TestSupport.temporaryFolder("out-of-memory") + "/root"
        try FileManager.default.createDirectory(atPath: root + "/Actor_01", withIntermediateDirectories: true)
        var clip = try Data(contentsOf: URL(fileURLWithPath: TestSupport.sharedData + "/av-original/Actor_01/01-01-01-01-01-01-01.mp4"))
        let stco = try #require(clip.range(of: Data("stco".utf8)))
        clip.replaceSubrange((stco.upperBound + 4)..<(stco.upperBound + 8), with: [0x7f, 0xff, 0xff, 0xff])
        try clip.write(to: URL(fileURLWithPath: root + "/Actor_01/01-01-01-01-01-01-01.mp4"))
        let workdir = try TestSupport.temporaryFolder("work")
        let first = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(first.status == ExitStatus.partial && first.stderr.contains("libavformat could not allocate what its header declares"), "\(first.stderr)")
        let second = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(second.stderr.contains("1 to read (1 that could not be read last time)"), "\(second.stderr)")
    }

    /// Rows recorded before the inode state was kept (an older emopipe's work directory) have their files
    /// hashed once more: a swap made meanwhile is known only by the bytes. Then a plain run reads nothing.
    @Test func rowsWithoutAnInodeStateAreHashedOnce() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let sources = try store.allSources().filter { $0.status != .removed }.count
        try store.write { try $0.execute(sql: "UPDATE source SET inodeState = NULL") }
        // Swapped under those rows, with the sizes and mtimes the rows hold.
        let (a, b) = (root + "/Actor_01/03-01-05-01-01-01-01.wav", root + "/Actor_01/03-01-06-01-01-01-01.wav")
        let (aBytes, bBytes) = (try TestSupport.sha256sum(a), try TestSupport.sha256sum(b))
        let (aRow, bRow) = (try #require(try store.source(path: a)), try #require(try store.source(path: b)))
        try TestSupport.shell("mv '\(a)' '\(root)/swap.tmp' && mv '\(b)' '\(a)' && mv '\(root)/swap.tmp' '\(b)'")
        try store.write { db in
            for (row, path) in [(bRow, a), (aRow, b)] {
                try db.execute(sql: "UPDATE source SET size = ?, mtimeNanos = ? WHERE path = ?", arguments: [row.size, row.mtimeNanos, path])
            }
        }
        let status = try IngestFixture.emopipe(["status"], data: root, workdir: workdir)
        #expect(status.stdout.contains("\(sources) files to hash again") && status.stdout.contains("recorded by an emopipe that kept none"),
                "\(status.stdout)")
        let again = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(again.status == 0 && again.stderr.contains("\(sources) to read"), "\(again.stderr)")
        #expect(try store.source(path: a)?.sha256 == bBytes && store.source(path: b)?.sha256 == aBytes, "the swap is found")
        #expect(try store.allSources().filter { $0.status != .removed && $0.inodeState == nil }.isEmpty)
        let plain = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(plain.status == 0 && plain.stderr.contains("ingest: up to date"), "\(plain.stderr)")
    }

    @Test func aSecondRunOnABusyWorkDirectoryExits75NamingTheHolder() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        let lock = try WorkDirectoryLock.acquire(path: workdir + "/emopipe.lock", holder: "emopipe run TEST (pid \(getpid()))")
        defer { lock.release() }
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(result.status == ExitStatus.locked)
        #expect(result.stderr.contains("locked by emopipe run TEST (pid \(getpid()))"), "\(result.stderr)")
        // status reads on, and says who is working there (its stage in progress shows as recorded before).
        let status = try IngestFixture.emopipe(["status"], data: root, workdir: workdir)
        #expect(status.stderr.contains("note: emopipe run TEST (pid \(getpid())) is working in this work directory"), "\(status.stderr)")
        lock.release()
        let idle = try IngestFixture.emopipe(["status"], data: root, workdir: workdir)
        #expect(!idle.stderr.contains("is working in this work directory"), "\(idle.stderr)")
        #expect(!idle.stderr.contains("not a regular file"), "\(idle.stderr)")

        // A lock file a run refuses (a folder, a FIFO, a link) is named by status too.
        let lockPath = workdir + "/emopipe.lock"
        for (make, kind) in [({ try FileManager.default.createDirectory(atPath: lockPath, withIntermediateDirectories: false) }, "a folder"),
                             ({ _ = mkfifo(lockPath, 0o644) }, "a FIFO"),
                             ({ try FileManager.default.createSymbolicLink(atPath: lockPath, withDestinationPath: "/tmp/elsewhere.lock") }, "a symbolic link")]
                as [(() throws -> Void, String)] {
            try FileManager.default.removeItem(atPath: lockPath)
            try make()
            let refused = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
            #expect(refused.status != 0, "\(kind): \(refused.stderr)")
            let status = try IngestFixture.emopipe(["status"], data: root, workdir: workdir)
            #expect(status.stderr.contains("warning: \(lockPath) is \(kind), not a regular file; `run` refuses it"), "\(status.stderr)")
        }
        try FileManager.default.removeItem(atPath: lockPath)
    }

    /// Numbers read back from a damaged database are shown as they are: seconds of 9e999 (infinity to
    /// SQLite) or -1e300 trapped status when it made a duration of them.
    @Test func statusShowsDamagedDurationsWithoutTrapping() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        try #require(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        for value in ["9e999", "-1e300", "9.3e18"] {
            try ProvenanceStore(path: workdir + "/emopipe.sqlite").write { try $0.execute(sql: "UPDATE stageRun SET seconds = \(value), cpuSeconds = \(value)") }
            let status = try IngestFixture.emopipe(["status"], data: root, workdir: workdir)
            #expect(status.status == 0 && status.stdout.contains("ingest") && status.stdout.contains("[took "), "\(value): \(status.stdout)\(status.stderr)")
            let json = try IngestFixture.emopipe(["status", "--json"], data: root, workdir: workdir)
            #expect(json.status == 0, "\(value): \(json.stderr)")
        }
    }

    /// A forced ingest reads every file again: the dry run's plan counts them all (it said 0 to compute).
    @Test func aForcedIngestPlansEveryFile() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        try #require(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let files = try IngestFixture.sources(workdir: workdir).count
        try #require(files > 0)
        let plan = try IngestFixture.emopipe(["run", "--until", "ingest", "--dry-run", "--force", "ingest"], data: root, workdir: workdir)
        #expect(plan.status == 0 && plan.stdout.contains("forced (--force ingest) — \(files) unit(s) to compute"), "\(plan.stdout)")
        let unforced = try IngestFixture.emopipe(["run", "--until", "ingest", "--dry-run"], data: root, workdir: workdir)
        #expect(unforced.status == 0 && unforced.stdout.contains("ingest") && !unforced.stdout.contains("unit(s) to compute"), "\(unforced.stdout)")
    }

    /// Before the work directory exists, a dry run counts the files a first run reads, says that the
    /// stages after ingest are counted once it has run, and refuses a data root without a RAVDESS file
    /// as the run would (it printed the plan and exited 0); it makes no work directory either way.
    @Test func aDryRunBeforeTheWorkDirectoryExistsPlansAndRefusesAsARun() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work") + "/new"
        // The fixture's two actors, one tested and one trained on (the demo's 4 folds would be refused as the run would).
        let plan = try IngestFixture.emopipe(["run", "--dry-run", "--json", "--set", "split.test_actors=[1]", "--set", "train.selection=last"],
                                             data: root, workdir: workdir)
        let stages = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [[String: Any]], "\(plan.stderr)")
        let byStage = Dictionary(uniqueKeysWithValues: stages.map { ($0["stage"] as? String ?? "", $0) })
        #expect(plan.status == 0 && !FileManager.default.fileExists(atPath: workdir), "\(plan.stderr)")
        #expect(byStage["audio"]?["units_after"] as? String == "ingest" && byStage["ingest"]?["units_after"] is NSNull)
        try #require(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let files = try IngestFixture.sources(workdir: workdir).count
        #expect(files > 0 && byStage["ingest"]?["units"] as? Int == files, "\(plan.stdout)")

        let empty = try TestSupport.temporaryFolder("empty-root")
        let elsewhere = try TestSupport.temporaryFolder("work") + "/new"
        let refused = try IngestFixture.emopipe(["run", "--dry-run"], data: empty, workdir: elsewhere)
        #expect(refused.status == 1 && refused.stderr.contains("\(empty): the data root holds no RAVDESS file"), "\(refused.stdout)\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: elsewhere))
    }

    /// A root whose files come close to RAVDESS names (a copy's suffix, a hidden file) is refused naming what
    /// is wrong with them; a hidden file named as a recording beside real ones is warned of, not read silently,
    /// while an AppleDouble companion (`._…`) is no recording and passes without a word.
    @Test func nearMissAndHiddenNamesAreNamedNotPassedOverSilently() throws {
        let root = try IngestFixture.dataRoot()
        let recording = try #require(try FileManager.default.subpathsOfDirectory(atPath: root).sorted().first { $0.hasSuffix(".wav") })
        let name = (recording as NSString).lastPathComponent
        let close = try TestSupport.temporaryFolder("near-miss-root") + "/Actor_01"
        try FileManager.default.createDirectory(atPath: close, withIntermediateDirectories: true)
        for copy in [name.dropLast(4) + " (copy).wav", name.dropLast(4) + "_1.wav", "." + name, "._" + name] {
            try FileManager.default.copyItem(atPath: root + "/" + recording, toPath: close + "/" + copy)
        }
        // A folder named as a recording is no near miss: a failure row of its own, not counted among the names.
        try FileManager.default.createDirectory(atPath: close + "/" + name, withIntermediateDirectories: false)
        let closeRoot = PathText.folder(of: close)
        let refused = try IngestFixture.emopipe(["run", "--until", "ingest"], data: closeRoot, workdir: try TestSupport.temporaryFolder("work"))
        #expect(refused.status == 1 && refused.stderr.contains("\(closeRoot): the data root holds no RAVDESS file"), "\(refused.stderr)")
        #expect(refused.stderr.contains("); 2 names hold a recording's seven codes with more besides, as Actor_01/\(name.dropLast(4)) (copy).wav does")
                && refused.stderr.contains("1 hidden file is named as a recording, as Actor_01/.\(name) is, and hidden files are not read"),
                "\(refused.stderr)")

        let hidden = PathText.folder(of: root + "/" + recording) + "/." + name
        try FileManager.default.copyItem(atPath: root + "/" + recording, toPath: hidden)
        try FileManager.default.copyItem(atPath: root + "/" + recording, toPath: PathText.folder(of: hidden) + "/._" + name)
        let ran = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: try TestSupport.temporaryFolder("work"))
        #expect(ran.status == 0 && ran.stderr.contains("\(hidden): not read, its name starts with \".\" (a hidden file)"), "\(ran.stderr)")
        #expect(!ran.stderr.contains("._" + name), "\(ran.stderr)")
    }

    /// `cache gc --dry-run` takes no lock, so it may list a working run's temporaries as leftovers: it says
    /// that a run is working, and gc proper is refused meanwhile.
    @Test func aDryRunGCDuringARunSaysARunIsWorking() throws {
        let root = try IngestFixture.dataRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        try #require(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let lock = try WorkDirectoryLock.acquire(path: workdir + "/emopipe.lock", holder: "emopipe run TEST (pid \(getpid()))")
        defer { lock.release() }
        let dry = try IngestFixture.emopipe(["cache", "gc", "--dry-run"], data: root, workdir: workdir)
        #expect(dry.status == 0 && dry.stderr.contains("note: emopipe run TEST (pid \(getpid())) is working in this work directory: "
                                                       + "files it is still writing may be listed"), "\(dry.stderr)")
        let gc = try IngestFixture.emopipe(["cache", "gc"], data: root, workdir: workdir)
        #expect(gc.status == ExitStatus.locked, "\(gc.stderr)")
        lock.release()
        let idle = try IngestFixture.emopipe(["cache", "gc", "--dry-run"], data: root, workdir: workdir)
        #expect(idle.status == 0 && !idle.stderr.contains("is working"), "\(idle.stderr)")
    }
}
