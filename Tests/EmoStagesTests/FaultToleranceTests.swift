import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// Crash safety and faults, end to end through the command line (issue #7): SIGKILL at seeded
/// moments in every stage that does work, a full disk, a file-size limit, a flipped byte in a
/// shard, and the work-directory lock. Each scenario ends by comparing against the uninterrupted
/// reference run of `FaultFixture`.
///
/// The lock refusing a second run with exit 75 and the holder's text is
/// `IngestStageTests.aSecondRunOnABusyWorkDirectoryExits75NamingTheHolder`; here a real run is the
/// holder, and a run killed while holding the lock is taken over by the next one.
@Suite("crash safety and faults", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct FaultToleranceTests {
    /// One SIGKILL: when it came (seconds after a batch of the run became durable, or after the stage
    /// logged `running`) and what it left.
    struct Kill: CustomStringConvertible {
        var stage: String
        /// The durable units the kill waited for, or nil for a kill timed from the stage's start.
        var target: Int?
        var delay: Double
        var before: Int
        var after: Int
        var total: Int
        var landed: Bool
        var stageCompleted: Bool
        var description: String {
            String(format: "%@ kill %.2fs after %@: %d → %d of %d%@", stage, delay,
                   target.map { "\($0) units were durable" } ?? "the start",
                   before, after, total,
                   landed ? (stageCompleted ? " (after the stage completed)" : "") : " (missed: the run had ended)")
        }
    }

    @Test func killedAtSeededMomentsInEveryStageResumesToTheReference() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try TestSupport.temporaryFolder("work") + "/killed"
        var rng = SplitMix64(seed: 7)
        var kills: [Kill] = []
        var output = ""                           // stderr of every run
        var killedHolder: Int32?                  // the pid whose lock the next run must take over
        var checkedLiveHolder = false
        let started = Date()

        var missed: [Kill] = []                   // kills the run outran, retried from a copy
        for stage in ["ingest", "audio", "faces", "train"] {
            let total = fixture.totals[stage]!
            var attempt = 0
            while attempt < 3 {
                let before = try FaultFixture.progress(stage, workdir: workdir)
                if try FaultFixture.completed(stage, workdir: workdir) { break }
                // A copy of the work directory as this attempt finds it: a run that completes the stage
                // before its kill (a loaded machine can finish the last shards between two polls) is
                // undone and the attempt made again with the next seeded moment, up to 3 times per stage.
                let beforeAttempt = workdir + ".before-attempt"
                try? FileManager.default.removeItem(atPath: beforeAttempt)
                let existed = FileManager.default.fileExists(atPath: workdir)
                if existed { try TestSupport.shell("cp -a '\(workdir)' '\(beforeAttempt)'") }
                // The first and the last kill come a seeded moment after the stage's durable work
                // passed a seeded point in the first half of what is left (so the resumed run has work
                // to keep), the second a seeded moment after the stage started (before this run made
                // anything durable). The moment: a seeded fraction of the time one batch took in the
                // reference run.
                let afterBatch = attempt != 1
                var target = before + 1 + Int(rng.next() % UInt64(max(1, (total - before) / 2)))
                // The last training kill comes after the first fold's model was recorded (asserted below),
                // whatever the earlier kills left.
                if stage == "train" && attempt == 2 { target = max(target, FaultFixture.epochs) }
                let fraction = 0.1 + 0.8 * Double(rng.next() % 1000) / 1000
                // Within one batch's time, and within a quarter of what is left of the stage (a previous
                // kill may have left little): a kill timed past the stage's end would miss it. A quarter,
                // because the reference's time per unit includes the stage's start-up and the load of the
                // suites running beside it, so the last units of a run can go several times faster (a CI
                // run finished faces' last 11 of 35 clips within 64% of their reference time).
                func killDelay(leaving done: Int) -> Double {
                    fraction * min(fixture.batchSeconds[stage]!, fixture.seconds[stage]! * Double(total - done) / Double(total) / 4)
                }
                var delay = killDelay(leaving: before)
                let run = try TestSupport.Background(TestSupport.emopipe, ["run", fixture.manifest, "--until", stage,
                                                                           "--workdir", workdir])
                #expect(run.waitForStderr(containing: "\(stage): running"), "\(stage): \(run.stderr)")
                var marked = Date()
                if let pid = killedHolder {
                    #expect(run.stderr.contains("took over the lock left by a run that is no longer alive: emopipe run "),
                            "\(run.stderr)")
                    #expect(run.stderr.contains("(pid \(pid) on "), "the message names the dead holder: \(run.stderr)")
                }
                if stage == "train" && attempt == 0 {
                    // While this run holds the work directory, a second one is refused, naming it.
                    let second = try fixture.run(["--until", "ingest"], workdir: workdir)
                    if run.isRunning {
                        checkedLiveHolder = true
                        #expect(second.status == ExitStatus.locked, "\(second.stderr)")
                        #expect(second.stderr.contains("the work directory is locked by emopipe run "), "\(second.stderr)")
                        #expect(second.stderr.contains("(pid \(run.pid) on \(ProcessInfo.processInfo.hostName), since "),
                                "\(second.stderr)")
                    }
                }
                if afterBatch {
                    var done = before
                    while run.isRunning, done < target {
                        Thread.sleep(forTimeInterval: 0.01)
                        done = try FaultFixture.progress(stage, workdir: workdir)
                    }
                    marked = Date()
                    delay = killDelay(leaving: done)
                }
                let pid = run.pid
                let landed = try Self.holdingWriteLock(workdir) {
                    // Under the run's 10 s busy timeout, so the run is killed waiting, never failed by it.
                    Thread.sleep(forTimeInterval: min(8, max(0, delay - Date().timeIntervalSince(marked))))
                    return run.kill()
                }
                let completed = try FaultFixture.completed(stage, workdir: workdir)
                let kill = Kill(stage: stage, target: afterBatch ? target : nil, delay: delay, before: before,
                                after: try FaultFixture.progress(stage, workdir: workdir), total: total,
                                landed: landed, stageCompleted: completed)
                // The run finished the stage before the kill (whether the kill then met the run's last
                // bookkeeping or nothing): undone, and tried again.
                if completed && missed.filter({ $0.stage == stage }).count < 3 {
                    missed.append(kill)
                    try FileManager.default.removeItem(atPath: workdir)
                    if existed { try FileManager.default.moveItem(atPath: beforeAttempt, toPath: workdir) }
                    continue
                }
                output += run.stderr
                killedHolder = landed && !completed ? pid : nil
                kills.append(kill)
                attempt += 1
            }
            try? FileManager.default.removeItem(atPath: workdir + ".before-attempt")
        }
        let final = try fixture.run(workdir: workdir)
        output += final.stderr
        if let pid = killedHolder {
            #expect(final.stderr.contains("took over the lock") && final.stderr.contains("(pid \(pid) on "), "\(final.stderr)")
        }
        #expect(final.status == fixture.referenceStatus, "\(final.stderr)")
        // Kills may leave shards that were written but never indexed, or half-written temporary files:
        // invisible to readers, and what `cache gc` removes.
        let gc = try TestSupport.run(TestSupport.emopipe, ["cache", "gc", fixture.manifest, "--workdir", workdir])
        #expect(gc.status == 0, "\(gc.stderr)")
        print("fault tolerance: cache gc after the kills: \(gc.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
        let damage = try FaultFixture.damage(workdir)
        #expect(damage.isEmpty, "\(damage)")
        print("fault tolerance: \(kills.count) kills and the final run in \(String(format: "%.1f", Date().timeIntervalSince(started)))s; "
              + "reference stages: \(fixture.seconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.1fs", $0.key, $0.value) }), "
              + "a batch: \(fixture.batchSeconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.2fs", $0.key, $0.value) })")
        for kill in kills { print("  \(kill)") }
        for kill in missed { print("  retried from a copy: \(kill)") }

        // Every kill must have interrupted something; each stage must have been cut mid-way at least once.
        for stage in ["ingest", "audio", "faces", "train"] {
            let mine = kills.filter { $0.stage == stage }
            #expect(mine.filter { $0.landed && !$0.stageCompleted }.count >= 2,
                    "at least 2 of the 3 kills must land while \(stage) runs: \(mine)")
            #expect(mine.contains { $0.landed && !$0.stageCompleted && $0.after > 0 && $0.after < $0.total },
                    "one kill must leave \(stage) part done: \(mine)")
        }
        #expect(checkedLiveHolder, "the second run must have met a live holder")
        let epochsPerFold = FaultFixture.epochs
        #expect(kills.contains { $0.stage == "train" && $0.landed && !$0.stageCompleted && $0.after >= epochsPerFold },
                "a kill must come after a fold's model was recorded: \(kills.filter { $0.stage == "train" })")
        #expect(output.contains("resuming after epoch"), "a killed training resumes from its checkpoint")

        let expected = try FaultFixture.facts(fixture.reference)
        let facts = try FaultFixture.facts(workdir)
        #expect(expected.records.keys.contains { $0.hasPrefix("audio ") } && expected.records.keys.contains { $0.hasPrefix("faces ") })
        #expect(expected.failures.contains { $0.hasPrefix("ingest\t") } && expected.failures.contains { $0.hasPrefix("audio\t") }
                && expected.failures.contains { $0.hasPrefix("faces\t") })
        #expect(expected.models.filter { $0.hasPrefix("model\t") }.count == FaultFixture.folds)
        #expect(expected.files.keys.contains("runs/RUN/metrics.json") && expected.files.keys.contains("runs/RUN/model.onnx"))
        #expect(expected.files.keys.filter { $0.hasSuffix("/best.safetensors") }.count == FaultFixture.folds)
        let differences = facts.differences(from: expected)
        #expect(differences.isEmpty, "\(differences.count) differences: \(differences.prefix(12))")
    }

    /// Runs `body` while this process holds the provenance database's write lock. The run under test
    /// goes on with work that needs no commit but cannot record its stage as completed, so a kill
    /// inside `body` lands while the stage runs however fast the machine finishes the rest (a CI run
    /// once completed ingest before a kill timed from the reference run's batches). The run waits on
    /// the lock (busy timeout 10 s); the hold lasts at most one batch of the reference run, and 8 s. A
    /// kill therefore never lands inside a SQLite commit; WAL recovery after such a kill is SQLite's own.
    static func holdingWriteLock(_ workdir: String, _ body: () -> Bool) throws -> Bool {
        let path = workdir + "/emopipe.sqlite"
        guard FileManager.default.fileExists(atPath: path) else { return body() }   // nothing to hold yet
        var result = false
        do {
            try ProvenanceStore(path: path).write { db in
                try db.execute(sql: "DELETE FROM stageState WHERE 0")   // takes the write lock, changes nothing
                result = body()
                throw CancellationError()                                // rolls back: nothing was written
            }
        } catch is CancellationError {}
        return result
    }

    // MARK: Disk full

    /// Actor 01's 60 wavs, copied from the fixture's data so the records have the reference's keys (a hard link
    /// would change the fixture files' change time, which ingest reads as a change, under other tests).
    static func smallRoot(_ fixture: FaultFixture) throws -> String {
        let root = try TestSupport.temporaryFolder("data") + "/small"
        try FileManager.default.createDirectory(atPath: root + "/Actor_01", withIntermediateDirectories: true)
        try TestSupport.shell("cp '\(fixture.root)'/Actor_01/03-*.wav '\(root)/Actor_01/'")
        return root
    }

    /// The audio records of a work directory equal the reference's for the same sources.
    static func expectReferenceAudio(_ workdir: String, _ fixture: FaultFixture, count: Int) throws {
        let records = try FaultFixture.facts(workdir).records
        let reference = try FaultFixture.facts(fixture.reference).records
        #expect(records.count == count, "\(records.count) records")
        #expect(records.allSatisfy { reference[$0.key] == $0.value }, "records equal the reference run's")
    }

    static let canMountTmpfs: Bool = {
        guard getuid() == 0, let folder = try? TestSupport.temporaryFolder("tmpfs-probe"),
              (try? TestSupport.shell("mount -t tmpfs -o size=1m tmpfs '\(folder)'")) != nil else { return false }
        _ = try? TestSupport.shell("umount '\(folder)'")
        return true
    }()

    @Test(.enabled(if: canMountTmpfs, "needs `mount -t tmpfs` (root, and a container that allows it); the file-size-limit test covers the same path"))
    func aFullDiskFailsNamingTheShardAndTheNextRunCompletes() throws {
        let fixture = try FaultFixture.shared.get()
        let root = try Self.smallRoot(fixture)
        let mountPoint = try TestSupport.temporaryFolder("tmpfs")
        try TestSupport.shell("mount -t tmpfs -o size=32m tmpfs '\(mountPoint)'")
        defer { _ = try? TestSupport.shell("umount '\(mountPoint)' || umount -l '\(mountPoint)'") }
        let workdir = mountPoint + "/work"
        #expect(try fixture.run(["--data", root, "--until", "ingest"], workdir: workdir).status == 0)

        // Leave 512 KB: less than any shard (at least 8 log-mel records of 77 KB).
        var fs = statvfs()
        #expect(statvfs(mountPoint, &fs) == 0)
        let free = Int(fs.f_bavail) * Int(fs.f_frsize)
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o644)
        #expect(posix_fallocate(fd, 0, off_t(free - 512 * 1024)) == 0)
        close(fd)

        let full = try fixture.run(["--data", root, "--until", "audio"], workdir: workdir)
        #expect(!full.signaled && full.status == ExitStatus.failure, "exit \(full.status): \(full.stderr)")
        let message = FaultFixture.errorLine(full.stderr)
        // The disk fills while a shard is written, or (a smaller shard, published early) while its index rows are:
        // either way the file and why are named, and no shard is left without its rows.
        let shardFull = message.hasPrefix("emopipe: \(workdir)/cache/audio/") && message.hasSuffix(".shard: cannot write: No space left on device")
        let indexFull = message.hasPrefix("emopipe: \(workdir)/emopipe.sqlite: cannot write: database or disk is full")
        #expect(shardFull || indexFull, "the error names the file and why: \(message)")
        let damage = try FaultFixture.damage(workdir)
        #expect(damage.isEmpty, "\(damage)")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.runs().first?.status == .failed)
        #expect(try store.failures(stage: "audio").isEmpty, "a full disk is not the sources' fault")

        try FileManager.default.removeItem(atPath: filler)
        let again = try fixture.run(["--data", root, "--until", "audio"], workdir: workdir)
        #expect(again.status == 0, "\(again.stderr)")
        try Self.expectReferenceAudio(workdir, fixture, count: 60)
    }

    @Test func aFileSizeLimitFailsNamingTheShardInsteadOfKillingTheRun() throws {
        let fixture = try FaultFixture.shared.get()
        let root = try Self.smallRoot(fixture)
        let workdir = try TestSupport.temporaryFolder("work") + "/limited"
        #expect(try fixture.run(["--data", root, "--until", "ingest"], workdir: workdir).status == 0)
        let databaseSize = try FileManager.default.attributesOfItem(atPath: workdir + "/emopipe.sqlite")[.size] as? Int ?? 0
        #expect(databaseSize < 200 * 1024, "the limit below must leave room for the database")

        // 256 KB: room for the database, none for a shard. Past it a write raises SIGXFSZ, which
        // kills a process silently unless it is ignored. A test runner may pass the signal on
        // ignored already (`swift test` does), so emopipe starts with the default action.
        let limited = try TestSupport.run("/bin/bash", ["-c", "ulimit -f 256 && exec env --default-signal=XFSZ \"$0\" \"$@\"",
                                                        TestSupport.emopipe, "run",
                                                        fixture.manifest, "--data", root, "--until", "audio", "--workdir", workdir])
        #expect(!limited.signaled, "emopipe died of signal \(limited.status)")
        #expect(limited.status == ExitStatus.failure, "\(limited.stderr)")
        let message = FaultFixture.errorLine(limited.stderr)
        #expect(message.hasPrefix("emopipe: \(workdir)/cache/audio/") && message.hasSuffix(".shard: cannot write: File too large"),
                "the error names the file and why: \(message)")
        let damage = try FaultFixture.damage(workdir)
        #expect(damage.isEmpty, "\(damage)")

        let again = try fixture.run(["--data", root, "--until", "audio"], workdir: workdir)
        #expect(again.status == 0, "\(again.stderr)")
        try Self.expectReferenceAudio(workdir, fixture, count: 60)
    }

    // MARK: A flipped byte

    static func cacheRow(_ store: ProvenanceStore, _ row: CacheRecordRow) throws -> CacheRecordRow? {
        try TensorCache(workspace: Workspace(root: ""), store: store).row(stage: row.stage, fingerprint: row.fingerprint, key: row.key)
    }

    /// Flips one bit of a record's data, picked by `seed` among the audio records, in a copy of the reference.
    static func flipARecord(seed: UInt64, named name: String) throws
        -> (workdir: String, store: ProvenanceStore, row: CacheRecordRow, shard: String, sources: [String]) {
        let fixture = try FaultFixture.shared.get()
        let workdir = try TestSupport.temporaryFolder("work") + "/" + name
        try TestSupport.shell("cp -a '\(fixture.reference)' '\(workdir)'")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let rows = try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").order(sql: "key").fetchAll($0) }
        var rng = SplitMix64(seed: seed)
        let row = rows[Int(rng.next() % UInt64(rows.count))]
        let shard = try #require(try TensorCache(workspace: Workspace(root: workdir), store: store).shardFile(row.shardId))
        let sources = try store.sources(sha256: row.key).map(\.path)
        let offset = row.dataOffset + Int(rng.next() % UInt64(row.dataLength))
        chmod(workdir + "/" + shard, 0o644)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: workdir + "/" + shard))
        try handle.seek(toOffset: UInt64(offset))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data([byte ^ 0x10]))
        try handle.close()
        return (workdir, store, row, shard, sources)
    }

    /// A run whose training meets a damaged record does what `cache verify` would, and goes on: the
    /// record is dropped and recorded as a failure of the run, the audio stage computes it (only it)
    /// again, and training runs on the record as it was, never on the flipped bit.
    @Test func aRunThatMeetsAFlippedByteRecomputesThatRecordAndGoesOn() throws {
        let fixture = try FaultFixture.shared.get()
        let (workdir, store, row, shard, sources) = try Self.flipARecord(seed: 29, named: "flipped-in-run")
        // A run that leaves the audio stage out cannot repair it, and says so.
        let only = try fixture.run(["--only", "train", "--force", "train"], workdir: workdir)
        #expect(only.status == ExitStatus.failure && only.stderr.contains("this run leaves the audio stage out, so it cannot compute the record again"),
                "\(only.stderr)")
        let retrain = try fixture.run(["--force", "train"], workdir: workdir)
        #expect(retrain.status == fixture.referenceStatus, "\(retrain.stderr)")
        #expect(retrain.stderr.contains("\(shard): record for source \(row.key) fails its CRC-32C check"), "\(retrain.stderr)")
        #expect(sources.contains { retrain.stderr.contains("(the audio record of \($0))") }, "\(retrain.stderr)")
        #expect(retrain.stderr.contains("audio: 1 of \(try store.read { try CacheRecordRow.filter(sql: "stage = 'audio'").fetchCount($0) }) cached records damaged (in \(shard)); dropped"),
                "\(retrain.stderr)")
        let summary = retrain.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        #expect(summary.contains { $0.hasPrefix("  audio: ran ") && $0.hasSuffix("; 1 computed now") }, "\(summary)")
        #expect(summary.contains { $0.hasPrefix("  train: ran ") }, "\(summary)")
        let run = try #require(try store.runs().first)
        let failure = try #require(try store.failures(stage: "cache", subject: sources[0]).first)
        #expect(failure.runId == run.id && failure.reason.contains("CRC-32C") && failure.reason.contains(shard), "\(failure)")
        #expect(try FaultFixture.facts(workdir).records == FaultFixture.facts(fixture.reference).records)
        #expect(try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir]).status == 0)
        // The weights trained again on the restored record are the reference's, so are their scores.
        let reference = try ProvenanceStore(path: fixture.reference + "/emopipe.sqlite").runs()[0].id
        let metrics = { (folder: String, id: String) in try Data(contentsOf: URL(fileURLWithPath: "\(folder)/runs/\(id)/metrics.json")) }
        #expect(try metrics(workdir, run.id) == metrics(fixture.reference, reference))
    }

    /// After `cache verify` dropped a record, a run that leaves its stage out (`--only train`) trains without
    /// that clip and says so, recorded as trained on other inputs: the next whole run computes the record and
    /// trains again, ending where an undamaged run ends.
    @Test func aRunWithOnlyAfterVerifyDroppedARecordSaysSoAndIsNotTakenForTheWholeResult() throws {
        let fixture = try FaultFixture.shared.get()
        let (workdir, _, _, _, sources) = try Self.flipARecord(seed: 47, named: "only-after-verify")
        #expect(try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir]).status == ExitStatus.partial)
        let status = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--workdir", workdir])
        #expect(status.stdout.contains("train     stale"), "the stages reading audio are stale too: \(status.stdout)")
        let only = try fixture.run(["--only", "train"], workdir: workdir)
        #expect(only.stderr.contains("1 clip source(s) have no cached audio record and no recorded failure ("), "\(only.stderr)")
        #expect(sources.contains { only.stderr.contains($0) }, "the source is named: \(only.stderr)")
        let whole = try fixture.run(workdir: workdir)
        #expect(whole.status == fixture.referenceStatus, "\(whole.stderr)")
        let summary = whole.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        #expect(summary.contains { $0.hasPrefix("  audio: ran ") && $0.hasSuffix("; 1 computed now") }, "\(summary)")
        #expect(summary.contains { $0.hasPrefix("  train: ran ") }, "trained again on every clip: \(summary)")
        #expect(try FaultFixture.facts(workdir).records == FaultFixture.facts(fixture.reference).records)
        let reference = try ProvenanceStore(path: fixture.reference + "/emopipe.sqlite").runs()[0].id
        // Trained again to the same weights, evaluate finds its inputs as the reference run left them.
        let evaluated = try #require(try ProvenanceStore(path: workdir + "/emopipe.sqlite").stageState("evaluate")).runId
        let metrics = { (folder: String, id: String) in try Data(contentsOf: URL(fileURLWithPath: "\(folder)/runs/\(id)/metrics.json")) }
        #expect(try metrics(workdir, evaluated) == metrics(fixture.reference, reference))
    }

    /// A shard cut short (a copy that stopped, a full disk elsewhere) is not taken as done: the next run
    /// names it and computes its records again.
    @Test func aShardCutShortIsComputedAgainByTheNextRun() throws {
        let fixture = try FaultFixture.shared.get()
        let workdir = try TestSupport.temporaryFolder("work") + "/cut-short"
        try TestSupport.shell("cp -a '\(fixture.reference)' '\(workdir)'")
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let shard = try #require(try store.read { try CacheShardRow.filter(sql: "stage = 'audio'").order(sql: "file").fetchAll($0) }.last)
        let records = try store.read { try CacheRecordRow.filter(sql: "shardId = ?", arguments: [shard.id]).fetchCount($0) }
        #expect(truncate(workdir + "/" + shard.file, off_t(shard.bytes / 2)) == 0)
        let rerun = try fixture.run(workdir: workdir)
        #expect(rerun.status == fixture.referenceStatus, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("\(shard.file): gone or not of the size it was written at: its \(records) record(s) are not trusted"),
                "\(rerun.stderr)")
        let summary = rerun.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        #expect(summary.contains { $0.hasPrefix("  audio: ran ") && $0.hasSuffix("; \(records) computed now") }, "\(summary)")
        #expect(try FaultFixture.facts(workdir).records == FaultFixture.facts(fixture.reference).records)
    }

    @Test func aFlippedByteIsNamedByVerifyAndOnlyThatRecordIsRecomputed() throws {
        let fixture = try FaultFixture.shared.get()
        let (workdir, store, row, shard, sources) = try Self.flipARecord(seed: 11, named: "flipped")

        let verify = try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir])
        #expect(verify.status == ExitStatus.partial, "\(verify.stderr)")
        #expect(verify.stderr.contains("damaged: audio record of \(sources.joined(separator: ", ")) in \(shard): "), "\(verify.stderr)")
        let total = try store.read { try CacheRecordRow.fetchCount($0) } + 1
        #expect(verify.stdout.contains("\(total) records checked") && verify.stdout.contains(", 1 damaged"), "\(verify.stdout)")
        #expect(try Self.cacheRow(store, row) == nil, "the damaged record is dropped from the index")
        let failure = try #require(try store.failures(stage: "cache", subject: sources[0]).first)
        #expect(failure.reason.contains("CRC-32C") && failure.reason.contains(shard), "\(failure.reason)")
        let verifyRun = try #require(try store.runs().first { $0.id == failure.runId }, "the failure row names a recorded run")
        #expect(verifyRun.command.hasSuffix("cache verify --workdir \(workdir)") && verifyRun.status == .partial)
        // `runs` names the command that read no manifest, rather than a manifest it cannot name.
        let runs = try TestSupport.run(TestSupport.emopipe, ["runs", "--json", "--workdir", workdir])
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(listed.first { $0["id"] as? String == verifyRun.id }?["manifest"] as? String == "(cache verify)", "\(runs.stdout.prefix(600))")
        #expect(listed.first { $0["id"] as? String == verifyRun.id }?["data_root"] is NSNull, "it read no data root: \(runs.stdout.prefix(600))")
        // It is no pipeline run: reproduce and diff refuse it by name (reproduce blamed a damaged manifest record).
        let reproduce = try TestSupport.run(TestSupport.emopipe, ["reproduce", verifyRun.id, "--workdir", workdir])
        #expect(reproduce.status == 1 && reproduce.stderr.contains("it is the record of `emopipe cache verify`"), "\(reproduce.stderr)")
        let pipelineRun = try #require(try store.runs().first { $0.id != verifyRun.id })
        let diff = try TestSupport.run(TestSupport.emopipe, ["diff", pipelineRun.id, verifyRun.id, "--workdir", workdir])
        #expect(diff.status == 64 && diff.stderr.contains("run \(verifyRun.id) cannot be compared: it is the record of `emopipe cache verify`"), "\(diff.stderr)")

        let status = try TestSupport.run(TestSupport.emopipe, ["status", fixture.manifest, "--json", "--workdir", workdir])
        let states = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]])
        let audio = try #require(states.first { $0["stage"] as? String == "audio" })
        #expect(audio["state"] as? String == "stale")
        #expect((audio["reason"] as? String)?.hasPrefix("1 source(s) have no cached") == true, "\(audio)")

        let rerun = try fixture.run(workdir: workdir)
        #expect(rerun.status == fixture.referenceStatus, "\(rerun.stderr)")
        let summary = rerun.stderr.split(separator: "\n").filter { $0.hasPrefix("  ") }
        #expect(summary.contains { $0.hasPrefix("  audio: ran ") && $0.hasSuffix("; 1 computed now") }, "\(summary)")
        for stage in ["ingest", "faces", "split", "train", "evaluate", "export"] {
            #expect(summary.contains { $0.hasPrefix("  \(stage): up to date") }, "\(stage) is untouched: \(summary)")
        }
        let expected = try FaultFixture.facts(fixture.reference)
        let facts = try FaultFixture.facts(workdir)
        #expect(facts.records["audio " + row.key] == expected.records["audio " + row.key], "the record is computed again, byte for byte")
        #expect(facts.records == expected.records)
        #expect(try TestSupport.run(TestSupport.emopipe, ["cache", "verify", "--workdir", workdir]).status == 0)
    }
}
