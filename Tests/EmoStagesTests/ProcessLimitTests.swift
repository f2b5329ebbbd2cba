import EmoCore
import EmoPipeline
import EmoStore
@testable import EmoStages
import EmoTestSupport
import Foundation
import Testing

/// The machine's limits on a process (open files, address space) are not a recording's fault: running
/// out must never become a source's recorded failure (later runs would trust it and never read the file
/// again), nor a hang.
@Suite("process limits", .serialized, .enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox"), "needs the emopipe binary and sox"))
struct ProcessLimitTests {
    /// `emopipe ARGUMENTS` under `ulimit -n limit`, with `held` descriptors already open (as a parent
    /// process or other work could hold them), so that the files run out part way.
    static func emopipe(_ arguments: [String], limit: Int, held: Int) throws -> TestSupport.ProcessResult {
        try TestSupport.run("/bin/bash", ["-c", "ulimit -n \(limit); for fd in $(seq 10 \(9 + held)); do eval \"exec $fd</dev/null\"; done; "
                                          + "exec \(quoted(arguments))"])
    }

    static func quoted(_ arguments: [String]) -> String {
        ([TestSupport.emopipe] + arguments).map { "'\($0)'" }.joined(separator: " ")
    }

    /// `emopipe ARGUMENTS` under `ulimit -v kilobytes`, ended after 60 s if it hangs (exit 124).
    static func emopipe(_ arguments: [String], addressSpaceKB: Int) throws -> TestSupport.ProcessResult {
        try TestSupport.run("/bin/bash", ["-c", "ulimit -v \(addressSpaceKB); exec timeout 60 \(quoted(arguments))"])
    }

    /// A full disk (here `ulimit -f 0`, which refuses the same growth) keeps SQLite from making the
    /// shared-memory file a write-ahead-log database is read through: commands that only read a
    /// cleanly closed work directory read it as it is, rather than failing with "disk I/O error".
    @Test func aWorkDirectoryIsReadWhereNoFileCanGrow() throws {
        let workdir = try TestSupport.temporaryFolder("file-size-limit") + "/work"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        do {
            try ProvenanceStore(path: workdir + "/emopipe.sqlite").insert(RunRecord(
                id: "20261203-120000-abcdef", command: "test", manifestJSON: "name: t\n", manifestSHA256: "", dataRoot: "/",
                threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        }
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite-wal"), "closed cleanly: every commit is in the file")
        // Only emopipe is limited, its output piped: the test's own output files must still grow.
        let runs = try TestSupport.run("/bin/bash", ["-c", "prlimit --fsize=0 \(Self.quoted(["runs", "--workdir", workdir, "--json"])) 2>&1 | cat; "
                                                     + "exit ${PIPESTATUS[0]}"])
        #expect(runs.status == 0 && runs.stdout.contains("20261203-120000-abcdef"), "exit \(runs.status): \(runs.stdout)")
    }

    /// A reader of stdout that went away (`| head`) ends a command with status 1, as any output that cannot
    /// be written does, never with a signal (141), whichever command printed; quietly, as other tools do
    /// (the reader left on purpose; `> /dev/full` still gets its reason, below).
    @Test func aClosedStandardOutputEndsACommandWithStatusOne() throws {
        let workdir = try TestSupport.temporaryFolder("closed-stdout") + "/work"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        try ProvenanceStore(path: workdir + "/emopipe.sqlite").insert(RunRecord(
            id: "20261205-120000-abcdef", command: "test", manifestJSON: "name: t\n", manifestSHA256: "", dataRoot: "/",
            threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        for arguments in [["runs", "--workdir", workdir], ["runs", "--workdir", workdir, "--json"], ["cache", "stats", "--workdir", workdir],
                          ["sources", "--workdir", workdir, "--json"], ["--help"]] {
            let output = Pipe()
            try output.fileHandleForReading.close()   // the reader is gone before the first byte
            let errors = Pipe()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestSupport.emopipe)
            process.arguments = arguments
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            try output.fileHandleForWriting.close()
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 1
                    && !stderr.contains("cannot write to standard output"), "\(arguments): \(process.terminationReason) \(process.terminationStatus) \(stderr)")
        }
        let full = try TestSupport.run("/bin/bash", ["-c", Self.quoted(["runs", "--workdir", workdir]) + " > /dev/full"])
        #expect(full.status == 1 && full.stderr.contains("emopipe: cannot write to standard output: No space left on device"), "\(full.stderr)")
        // Closed before the start (`>&-`), stdout is held, so the database opened later does not take its descriptor:
        // the first write fails, saying why ("Bad file descriptor", or "Invalid argument" where an epoll handle took it).
        let closed = try TestSupport.run("/bin/bash", ["-c", Self.quoted(["runs", "--workdir", workdir]) + " >&-"])
        #expect(closed.status == 1 && closed.stderr.contains("emopipe: cannot write to standard output: it was closed when emopipe started (>&-)"),
                "\(closed.stderr)")
    }

    /// A run with stdout and stderr closed (`>&- 2>&-`) neither writes its log into a file it opened (the database
    /// could take descriptor 2) nor fails: its work and records are as a run's with them open.
    @Test func aRunWithItsStandardStreamsClosedWritesIntoNoFileOfItsOwn() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-05-01-01-01-01.wav", 2)])
        let workdir = try TestSupport.temporaryFolder("closed-streams") + "/work"
        let run = try TestSupport.run("/bin/bash", ["-c", Self.quoted(["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data,
                                                                        "--workdir", workdir, "--until", "audio"]) + " >&- 2>&-"])
        #expect(run.status == 0)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        #expect(try store.runs().first?.status == .done && store.stageState("audio") != nil)
        let check = try store.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        #expect(check == "ok")
        for file in try FileManager.default.subpathsOfDirectory(atPath: workdir) where !file.hasSuffix(".shard") {
            let text = (try? String(contentsOfFile: workdir + "/" + file, encoding: .utf8)) ?? ""
            #expect(!text.contains("info    audio"), "the log landed in \(file)")
        }
    }

    /// A command that writes, on a full disk (a file-size limit here), is told that, not "disk I/O error".
    @Test func aWritingCommandOnAFullDiskSaysTheDiskIsFull() throws {
        let workdir = try TestSupport.temporaryFolder("full-disk-write") + "/work"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        _ = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1)])
        let run = try TestSupport.run("/bin/bash", ["-c", "prlimit --fsize=0 " + Self.quoted([
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "ingest",
        ]) + " 2>&1 | cat; exit ${PIPESTATUS[0]}"])
        #expect(run.status == 1 && run.stdout.contains("the disk is full, or a file-size limit is reached")
                && !run.stdout.contains("disk I/O error"), "\(run.stdout)")
    }

    /// A database whose making fails part way (the file-size limit here; a full disk or a kill alike)
    /// leaves nothing under its name, so the next run makes it, rather than refusing a half-made one as
    /// not EmoPipe's for ever.
    @Test func aDatabaseThatCouldNotBeMadeLeavesNothingTheNextRunRefuses() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("db-creation") + "/work"
        let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "ingest"]
        let limited = try TestSupport.run("/bin/bash", ["-c", "ulimit -f 16; exec \(Self.quoted(arguments))"])
        #expect(limited.status == 1 && limited.stderr.contains("emopipe.sqlite: ") && limited.stderr.contains("nothing was left behind")
                && limited.stderr.contains("the disk may be full, or a file-size limit reached (ulimit -f is 16 KB)"), "\(limited.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: workdir).filter { $0.hasPrefix("emopipe.sqlite") }
        #expect(left.isEmpty, "nothing half made is left: \(left)")
        // A killed maker's leftover (a process id no process has) is removed by the next one.
        let leftover = workdir + "/emopipe.sqlite.new-2147483646"
        try Data("half made".utf8).write(to: URL(fileURLWithPath: leftover))
        let next = try TestSupport.run(TestSupport.emopipe, arguments)
        #expect(next.status == 0, "\(next.stderr)")
        #expect(!FileManager.default.fileExists(atPath: leftover))
    }

    /// OpenBLAS retries a refused buffer forever, so a low address-space limit hung emopipe even in
    /// `--version` (at exit) and in training (at the first product): it is named instead, exit 1.
    @Test func anAddressSpaceLimitOpenBLASWouldHangOnIsNamedNotWaitedOn() throws {
        let version = try Self.emopipe(["--version"], addressSpaceKB: 500_000)
        #expect(version.status == 1, "exit \(version.status) (124: it hung): \(version.stderr)")
        #expect(version.stderr.hasPrefix("emopipe: the address-space limit (ulimit -v) is 488 MB, below the ")
                && version.stderr.contains("OpenBLAS reserves 128 MB for each thread that multiplies"), "\(version.stderr)")

        // Room for OpenBLAS's threads (one per core) and a few of ours, not for 32: train says so before its first product.
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let roomForDefaults = (1 << 20) + 128 * 1024 * (cores + 4) + 256 * 1024
        let data = try TestSupport.synthesizedSpeech((1...4).flatMap { emotion in
            ["01", "02", "03"].map { actor in ("03-01-0\(emotion)-01-01-01-\(actor).wav", 1.0) }
        })
        let workdir = try TestSupport.temporaryFolder("address-space") + "/work"
        let run = try Self.emopipe(["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir,
                                    "--threads", "32", "--set", "split.test_actors=[3]", "--set", "split.val_actors=[2]"],
                                   addressSpaceKB: roomForDefaults)
        #expect(run.status == 1, "exit \(run.status) (124: it hung): \(run.stderr)")
        #expect(run.stderr.contains("MB that 32 thread(s) and OpenBLAS's "), "\(run.stderr)")
        #expect(!run.stderr.contains("epoch 1/"), "train did not start: \(run.stderr)")
    }

    @Test func filesTheOpenFileLimitKeptUnreadAreNotRecordedAsFailedAndTheNextRunReadsThem() throws {
        let data = try TestSupport.synthesizedSpeech((1...8).flatMap { emotion in
            ["01", "02"].map { actor in ("03-01-0\(emotion)-01-01-01-\(actor).wav", 1.0) }
        })
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let root = try TestSupport.temporaryFolder("open-files")
        var stoppedForFiles: [String] = []
        // From enough descriptors to none to spare: each run stops somewhere else, or finishes. The window
        // where reading sources (not listing them, not opening the database) meets the limit is a descriptor
        // or two wide, and where it falls varies with what the two threads hold at that moment: tried again
        // if no run met it.
        for attempt in 0..<3 where stoppedForFiles.isEmpty {
            for held in stride(from: 40, through: 54, by: 1) {
                let workdir = "\(root)/held-\(held)-\(attempt)"
                let run = try Self.emopipe(["run", manifest, "--data", data, "--workdir", workdir, "--until", "audio", "--threads", "2"],
                                          limit: 64, held: held)
                #expect(run.status == 0 || run.status == 1, "held \(held): exit \(run.status) (a trap is 132-134): \(run.stderr)")
                if run.stderr.contains("not recorded as the file's failure") {
                    stoppedForFiles.append(workdir)
                    #expect(run.stderr.contains("Too many open files") && run.stderr.contains("ulimit -n is 64"), "\(run.stderr)")
                }
                guard FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"),
                      let store = try? ProvenanceStore(path: workdir + "/emopipe.sqlite") else { continue }
                let failures = try store.failures(stage: "ingest") + store.failures(stage: "audio")
                #expect(failures.isEmpty, "held \(held): \(failures.map(\.reason))")
            }
        }
        // With the files to spare, the same work directory reads what the limit kept unread.
        let workdir = try #require(stoppedForFiles.last, "no run met the limit while reading sources: the test did not test")
        let rerun = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--data", data, "--workdir", workdir, "--until", "audio"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let said = rerun.stdout + rerun.stderr
        #expect(said.contains("16 files: 16 ok, 0 failed") && said.contains("16 log-mel tensors, 0 failed"), "\(said)")
    }

    @Test func aLimitTooLowToRunIsSaidBeforeAnythingStarts() throws {
        let workdir = try TestSupport.temporaryFolder("open-files-low") + "/work"
        let run = try Self.emopipe(["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--workdir", workdir], limit: 20, held: 0)
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr == "emopipe: the open-file limit (ulimit -n) is 20, below the \(OpenFileLimit.minimum) emopipe needs to run "
                + "(the database, the cache, decoders and worker threads hold files open): raise it\n", "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir), "nothing was created")
    }

    /// Under a low limit on a user's threads (`ulimit -u`, which root is exempt from: the run is another
    /// user's) Foundation's Thread.start() failed without a word and a stage waited for ever on the thread
    /// that publishes finished work (SIGTERM did not end it). It publishes as each batch ends instead.
    @Test(.enabled(if: geteuid() == 0 && TestSupport.hasTool("setpriv"), "needs root and setpriv to run as another user"))
    func aThreadThatCannotBeMadeIsNoWaitForEver() throws {
        let data = try TestSupport.synthesizedSpeech((1...6).map { ("03-01-0\($0 % 8 + 1)-01-01-01-0\($0 % 2 + 1).wav", 1.5) })
        let workdir = try TestSupport.temporaryFolder("thread-limit")
        #expect(chmod(workdir, 0o777) == 0)
        let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir + "/work", "--until", "audio"]
        // A user id no process has (the limit counts every process of the user, system-wide), given the folder.
        let user = 61_000 + Int(getpid() % 1000)
        #expect(chown(workdir, uid_t(user), gid_t(user)) == 0)
        // Room for the threads emopipe needs to start (`ThreadLimit`) and few more; OpenBLAS's own, one per core, are
        // made before emopipe's code runs: one, so the room does not depend on the machine.
        let run = try TestSupport.run("/bin/bash", ["-c", "export OPENBLAS_NUM_THREADS=1 && ulimit -u \(ThreadLimit.minimumSpare + 4) && exec timeout -k 5 120 "
                                                    + "setpriv --reuid \(user) --regid \(user) --clear-groups " + Self.quoted(arguments)])
        // How many threads are alive when one is asked for depends on timing (libdispatch's workers come and go),
        // so the limit may be met at any thread: the run finishes, or stops saying which thread it could not start
        // and which limit to raise. Never does it wait (124 or 137).
        #expect(run.status == 0 || run.status == 1, "exit \(run.status) (124 or 137: it hung): \(run.stderr.suffix(600))")
        if run.status == 0 {
            #expect(run.stderr.contains("audio: ran") && run.stderr.contains("6 "), "\(run.stderr.suffix(600))")
        } else {
            #expect(run.stderr.contains("ulimit -u"), "a stop names the limit to raise: \(run.stderr.suffix(600))")
        }
    }

    /// With room for almost no thread under the user's limit, libdispatch waited for ever for one at start-up (a run
    /// hung, deaf to SIGTERM and SIGINT): the room is tried first, and too little is said before anything starts.
    @Test(.enabled(if: geteuid() == 0 && TestSupport.hasTool("setpriv"), "needs root and setpriv to run as another user"))
    func aThreadLimitLeavingNoRoomIsSaidBeforeAnythingStarts() throws {
        let folder = try TestSupport.temporaryFolder("thread-room")
        #expect(chmod(folder, 0o777) == 0)
        let user = 62_000 + Int(getpid() % 1000)
        for limit in [3, ThreadLimit.minimumSpare] {
            let workdir = folder + "/work-\(limit)"
            // OpenBLAS makes its threads (one per core) before emopipe's code runs: one, so the room does not depend on the machine.
            let run = try TestSupport.run("/bin/bash", ["-c", "export OPENBLAS_NUM_THREADS=1 && ulimit -u \(limit) && exec timeout -k 5 60 setpriv --reuid \(user) --regid \(user) "
                                                        + "--clear-groups " + Self.quoted(["run", TestSupport.repositoryRoot + "/manifests/demo.yaml",
                                                                                           "--workdir", workdir])])
            #expect(run.status == 1 && run.stderr.hasPrefix("emopipe: the limit on this user's processes and threads (ulimit -u) is \(limit), which leaves room for ")
                    && run.stderr.contains("not the \(ThreadLimit.minimumSpare) emopipe needs to run: raise it"), "ulimit -u \(limit): exit \(run.status) \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: workdir), "nothing was created")
        }
    }

    /// Features the address-space limit cannot map with what is mapped already are refused by that limit, with the
    /// figures (reading them failed at a shard's mmap naming neither): held counts the shards mapped and the copies.
    @Test func featuresPastTheAddressSpaceLimitAreNamedByIt() {
        let megabyte = 1 << 20
        #expect(FeatureSet.addressSpaceShortfall(held: 1324 * megabyte, mapped: 1024 * megabyte, limit: 1465 * megabyte)
                == "with the 1024 MB of address space mapped now that is about 2348 MB, over the address-space limit (ulimit -v) of 1465 MB")
        #expect(FeatureSet.addressSpaceShortfall(held: 82 * megabyte, mapped: 1024 * megabyte, limit: 1465 * megabyte) == nil)
        #expect(FeatureSet.addressSpaceShortfall(held: Int.max, mapped: 1024 * megabyte, limit: nil) == nil, "no limit")
        #expect(FeatureSet.addressSpaceShortfall(held: Int.max, mapped: Int.max, limit: 1465 * megabyte) != nil, "sums clamp, never trap")
    }

    /// The soft CPU-time limit (`ulimit -t`) sends SIGXCPU, whose default killed a run without a word (status 152,
    /// the run left "running"): it stops the run as SIGTERM does, saying why, and the run is recorded interrupted.
    @Test func aCPUTimeLimitStopsTheRunSayingSoAndItIsRecordedInterrupted() throws {
        let data = try IngestFixture.materialized.get()
        let workdir = try TestSupport.temporaryFolder("cpu-limit") + "/work"
        let run = try TestSupport.run("/bin/bash", ["-c", "ulimit -St 3 && ulimit -Ht 120 && exec " + Self.quoted([
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--set", "train.epochs=200",
            // The fixture's two actors, one tested and one trained on (the demo's 4 folds are refused once ingest has run).
            "--set", "split.test_actors=[1]", "--set", "train.selection=last"])])
        #expect(run.status == ExitStatus.interrupted && run.stderr.contains("emopipe: the soft CPU-time limit (ulimit -t) was reached: stopping"),
                "exit \(run.status): \(run.stderr.suffix(600))")
        let recorded = try ProvenanceStore(path: workdir + "/emopipe.sqlite").runs()
        #expect(recorded.count == 1 && recorded.first?.status == .interrupted, "\(recorded.map(\.status))")
    }

    /// A database this user may not read is said with the system's reason (it was "cannot read the
    /// provenance database", no more). Root reads any file: the command runs as another user.
    @Test(.enabled(if: geteuid() == 0 && TestSupport.hasTool("setpriv"), "needs root and setpriv to run as another user"))
    func anUnreadableDatabaseSaysWhy() throws {
        let workdir = try TestSupport.temporaryFolder("unreadable-database")
        try ProvenanceStore(path: workdir + "/emopipe.sqlite").insert(RunRecord(
            id: "20261205-120000-abcdef", command: "test", manifestJSON: "name: t\n", manifestSHA256: "", dataRoot: "/",
            threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        #expect(chmod(workdir, 0o777) == 0 && chmod(workdir + "/emopipe.sqlite", 0) == 0)
        let runs = try TestSupport.run("/bin/bash", ["-c", "exec setpriv --reuid 65534 --regid 65534 --clear-groups " + Self.quoted(["runs", "--workdir", workdir])])
        #expect(runs.status == 1 && runs.stderr.contains("\(workdir)/emopipe.sqlite: cannot read the provenance database: Permission denied"), "\(runs.stderr)")
    }

    /// A write-ahead log or shared-memory file this user may not write is named (the message blamed the
    /// work directory or the database, both writable).
    @Test(.enabled(if: geteuid() == 0 && TestSupport.hasTool("setpriv"), "needs root and setpriv to run as another user"))
    func aDatabaseFileThisUserMayNotWriteIsNamed() throws {
        let workdir = try TestSupport.temporaryFolder("unwritable-wal")
        let database = workdir + "/emopipe.sqlite"
        try ProvenanceStore(path: database).insert(RunRecord(
            id: "20261205-120000-abcdef", command: "test", manifestJSON: "name: t\n", manifestSHA256: "", dataRoot: "/",
            threads: 1, codeVersion: "t", host: "h", pid: 1, startedAt: Date()))
        for file in [database + "-wal", database + "-shm"] { #expect(FileManager.default.createFile(atPath: file, contents: nil)) }
        #expect(chown(database, 65534, 65534) == 0 && chmod(workdir, 0o1777) == 0)
        let data = try TestSupport.temporaryFolder("unwritable-wal-data")
        let run = try TestSupport.run("/bin/bash", ["-c", "exec setpriv --reuid 65534 --regid 65534 --clear-groups " + Self.quoted([
            "run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--until", "ingest"])])
        #expect(run.status == 1 && run.stderr.contains("\(database)-wal and \(database)-shm may not be written by this user"), "\(run.stderr)")
    }

    /// A run that trains, under an address-space limit too small for its threads' OpenBLAS buffers, is
    /// refused before any stage runs (train refused it only after the feature stages: hours on the full data).
    @Test func anAddressSpaceLimitTooSmallForTrainingIsSaidBeforeTheFeatureStages() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1), ("03-01-02-01-01-01-02.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("address-space-run") + "/work"
        // One actor tested, one trained on (the demo's 4 folds are refused once ingest has run, and by a dry run).
        let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", data, "--workdir", workdir, "--threads", "8",
                         "--set", "split.test_actors=[1]", "--set", "train.selection=last"]
        // One OpenBLAS thread whatever the cores, so the start-up check (OpenBLAS's own threads) passes on any machine.
        func limited(_ arguments: [String]) throws -> TestSupport.ProcessResult {
            try TestSupport.run("/bin/bash", ["-c", "ulimit -v 2000000; OPENBLAS_NUM_THREADS=1 exec timeout 60 \(Self.quoted(arguments))"])
        }
        let refused = try limited(arguments)
        #expect(refused.status == 1 && refused.stderr.contains("the address-space limit (ulimit -v) is 1953 MB, below the")
                && refused.stderr.contains("8 thread(s)") && refused.stderr.contains("nothing was run"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workdir + "/emopipe.sqlite"), "no stage ran")
        // A run that stops before training needs no such room; a dry run prints its plan with a warning.
        let features = try limited(arguments + ["--until", "audio"])
        #expect(features.status == 0, "\(features.stderr)")
        let dry = try limited(arguments + ["--dry-run"])
        #expect(dry.status == 0 && dry.stderr.contains("warning: the address-space limit (ulimit -v) is 1953 MB")
                && dry.stderr.contains("evaluate and train would refuse to run") && dry.stdout.contains("train"), "\(dry.stdout) \(dry.stderr)")
    }

    /// Under an address-space limit that leaves room for the threads but not for a batch size's training memory,
    /// train refuses the batch size naming one that fits, and that one trains: the allocation the limit refused
    /// ended the process (a Swift trap, exit 134).
    @Test func aBatchSizeTheAddressSpaceLimitCannotHoldIsRefusedNamingOneThatFits() throws {
        let data = try TestSupport.materialize(actors: 1...3, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("address-space-batch")
        let manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, """
        params:
          split: {test_actors: [1], val_actors: [2]}
          train: {epochs: 1, warmup_epochs: 0, audio_channels: [64, 128, 256]}
        """)
        let workdir = folder + "/work"
        let prepared = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--workdir", workdir, "--threads", "1", "--until", "split"])
        try #require(prepared.status == 0, "\(prepared.stderr)")
        func train(batchSize: Int) throws -> TestSupport.ProcessResult {
            let arguments = ["run", manifest, "--workdir", workdir, "--threads", "1", "--set", "train.batch_size=\(batchSize)"]
            return try TestSupport.run("/bin/bash", ["-c", "ulimit -v 1400000; OPENBLAS_NUM_THREADS=1 exec timeout 300 \(Self.quoted(arguments))"])
        }
        let refused = try train(batchSize: 64)
        let named = try #require(refused.stderr.range(of: #"exceeds the address-space limit \(ulimit -v\) of 1367 MB; the largest batch size that fits is (\d+)"#,
                                                      options: .regularExpression), "\(refused.status) \(refused.stderr.suffix(1500))")
        #expect(refused.status == ExitStatus.usage && refused.stderr.contains("train.batch_size = 64"), "\(refused.stderr.suffix(800))")
        let fits = try #require(Int(refused.stderr[named].split(separator: " ").last ?? ""))
        #expect(fits >= 2 && fits < 64)
        let trained = try train(batchSize: fits)
        #expect(trained.status == 0, "batch size \(fits): \(trained.status) \(trained.stderr.suffix(1500))")
    }

    /// Threads get stacks of `ulimit -s`: at 64 KB ingest crashed, at 96 KB SQLite called a sound database
    /// malformed. Below 1 MiB emopipe says so and starts nothing.
    @Test func aStackLimitTooLowToRunIsSaidBeforeAnythingStarts() throws {
        let workdir = try TestSupport.temporaryFolder("stack-low") + "/work"
        for kilobytes in [64, 96] {
            let run = try TestSupport.run("/bin/bash", ["-c", "ulimit -s \(kilobytes) && exec '\(TestSupport.emopipe)' run '\(TestSupport.repositoryRoot)/manifests/demo.yaml' --workdir '\(workdir)'"])
            #expect(run.status == 1 && run.stderr == "emopipe: the stack limit (ulimit -s) is \(kilobytes) KB, below the 1024 KB emopipe needs "
                    + "(each thread gets a stack of that size; theirs would overflow): raise it (ulimit -s 8192)\n", "\(run.status) \(run.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: workdir), "nothing was created")
        let enough = try TestSupport.run("/bin/bash", ["-c", "ulimit -s 1024 && exec '\(TestSupport.emopipe)' params '\(TestSupport.repositoryRoot)/manifests/demo.yaml'"])
        #expect(enough.status == 0, "\(enough.stderr)")
    }
}
