import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// A stage that counts its executions and derives its output from its parameters and inputs.
final class CountingStage: Stage, @unchecked Sendable {
    let name: String
    var codeVersion: String
    private let lock = NSLock()
    private var count = 0
    var runs: Int { lock.lock(); defer { lock.unlock() }; return count }

    init(_ name: String, codeVersion: String = "1") { self.name = name; self.codeVersion = codeVersion }

    struct Parameters: StageParameters {
        var x: Int?
        var y: Int?
        var z: Int?
        /// Upstream stages this stage leaves unread (as train does a feature stage it has no branch for).
        var ignores: [String]?
        init() {}
        func validate() throws {
            if let y, y < 0 { throw InvalidParameter(key: "y", value: "\(y)", allowed: "an integer ≥ 0") }
        }
        static var acceptedKeys: Set<String> { ["x", "y", "z", "ignores"] }
    }

    func unreadNeeds(_ parameters: Parameters) -> Set<String> { Set(parameters.ignores ?? []) }

    /// What `status` is told a run would go on from (train's checkpoints), when set.
    var progressNote: String?
    func progress(_ context: StageContext, parameters: Parameters) throws -> String? { progressNote }

    func run(_ context: StageContext, parameters: Parameters) throws -> StageOutcome {
        lock.lock(); count += 1; lock.unlock()
        return StageOutcome(outputDigest: SHA256Hex.of(context.fingerprint.full), unitsDone: 1, unitsSkipped: 0,
                            unitsFailed: 0, summary: "ran")
    }
}

@Suite("runner: fingerprints, status, selection")
struct RunnerTests {
    let folder: String
    let stages: [CountingStage]

    init() throws {
        folder = try TestSupport.temporaryFolder("runner")
        try """
        stages:
          a: {params: {x: 1}}
          b: {needs: [a], params: {y: 2}}
          c: {needs: [a], params: {z: 3}}
          d: {needs: [b]}
        """.write(toFile: folder + "/p.yaml", atomically: true, encoding: .utf8)
        stages = ["a", "b", "c", "d"].map { CountingStage($0) }
    }

    func manifest(_ overrides: String = "") throws -> Manifest {
        try Manifest.parse(yaml: "pipeline: p.yaml\ndata: .\n" + overrides, path: folder + "/m.yaml")
    }

    func runner(_ manifest: Manifest) throws -> PipelineRunner {
        try PipelineRunner(manifest: manifest, workspace: Workspace(root: folder + "/work"), stages: stages)
    }

    func counts() -> [Int] { stages.map(\.runs) }

    @Test func changedParameterMakesThatStageAndItsDependentsStaleAndNothingElse() throws {
        let first = try runner(manifest())
        #expect(try first.status().allSatisfy { $0.state == .neverRun })
        _ = try first.run(RunSelection(), command: "test")
        #expect(counts() == [1, 1, 1, 1])
        #expect(try first.status().allSatisfy { $0.state == .upToDate })

        _ = try first.run(RunSelection(), command: "test")
        #expect(counts() == [1, 1, 1, 1], "an unchanged pipeline must not run again")

        let changed = try runner(manifest("params: {b: {y: 5}}\n"))
        let status = Dictionary(uniqueKeysWithValues: try changed.status().map { ($0.stage, $0) })
        #expect(status["a"]?.state == .upToDate)
        #expect(status["c"]?.state == .upToDate)
        #expect(status["b"]?.state == .stale)
        #expect(status["b"]?.reason.contains("y 2 → 5") == true)
        #expect(status["d"]?.state == .stale)
        #expect(status["d"]?.reason.contains("'b'") == true)

        _ = try changed.run(RunSelection(), command: "test")
        #expect(counts() == [1, 2, 1, 2])
    }

    /// Where a stage would go on from is said under the inputs recorded now; when a stage it reads is
    /// stale, that holds only if the rerun gives the same output, and status says so.
    @Test func progressUnderAStaleUpstreamIsSaidToDependOnIt() throws {
        _ = try runner(manifest()).run(RunSelection(), command: "test")
        stages[0].progressNote = "a's note"
        stages[1].progressNote = "fold 0 after epoch 2; a run resumes from them"
        let status = Dictionary(uniqueKeysWithValues: try runner(manifest("params: {a: {x: 5}, b: {y: 7}}\n")).status().map { ($0.stage, $0) })
        #expect(status["a"]?.reason == "parameters changed: x 1 → 5; a's note", "\(status["a"]?.reason ?? "")")
        #expect(status["b"]?.reason == "parameters changed: y 2 → 7; fold 0 after epoch 2; a run resumes from them "
                + "if a runs to the same output as before", "\(status["b"]?.reason ?? "")")
        stages[0].progressNote = nil
        stages[1].progressNote = nil
    }

    @Test func codeVersionChangeIsStale() throws {
        _ = try runner(manifest()).run(RunSelection(), command: "test")
        stages[2].codeVersion = "2"
        let status = try runner(manifest()).status().first { $0.stage == "c" }
        #expect(status?.state == .stale)
        #expect(status?.reason.contains("1 → 2") == true)
    }

    @Test func untilOnlyAndForceSelectStages() throws {
        let r = try runner(manifest())
        _ = try r.run(RunSelection(until: "b"), command: "test")
        #expect(counts() == [1, 1, 0, 0])
        _ = try r.run(RunSelection(only: "c"), command: "test")
        #expect(counts() == [1, 1, 1, 0])
        _ = try r.run(RunSelection(only: "d"), command: "test")
        #expect(counts() == [1, 1, 1, 1])
        let plan = try r.plan(RunSelection(force: ["b"]))
        #expect(plan.map(\.action) == [.upToDate, .run, .upToDate, .run])
        #expect(plan[3].reason == "downstream of a forced stage")
        _ = try r.run(RunSelection(force: ["a"]), command: "test")
        // Forcing a gives the same output digest, yet everything downstream of it is recomputed too.
        #expect(counts() == [2, 2, 2, 2])
        let forcedB = try r.run(RunSelection(until: "b", force: ["b"]), command: "test")
        // Forcing b recomputes b and, of the selected stages, nothing else (d is not selected; a is upstream).
        #expect(counts() == [2, 3, 2, 2])
        #expect(forcedB.stages.map(\.action) == [.upToDate, .ran])
        _ = try r.run(RunSelection(force: ["b"]), command: "test")
        #expect(counts() == [2, 4, 2, 3], "forcing b recomputes d, which depends on it, and leaves a and c alone")
        #expect(throws: PipelineError.self) { try r.run(RunSelection(only: "nope"), command: "test") }
        // A forced stage the selection never reaches is refused, not silently dropped.
        for unreached in [RunSelection(until: "a", force: ["d"]), RunSelection(only: "b", force: ["c"])] {
            #expect { try r.run(unreached, command: "test") } throws: { error in
                "\(error)".contains("--force \(unreached.force.first!): this run does not reach")
            }
        }
        #expect(counts() == [2, 4, 2, 3], "a refused selection runs nothing")
    }

    @Test func aStageNothingReadsIsLeftOutUnlessAskedForByName() throws {
        let ignoring = try runner(manifest("params: {d: {ignores: [b]}}\n"))
        #expect(try ignoring.plan(RunSelection()).map(\.stage) == ["a", "c", "d"])
        let report = try ignoring.run(RunSelection(), command: "test")
        #expect(report.stages.map(\.stage) == ["a", "c", "d"])
        #expect(counts() == [1, 0, 1, 1])
        let b = try ignoring.status().first { $0.stage == "b" }
        #expect(b?.state == .neverRun)
        #expect(b?.reason.contains("nothing reads it with these parameters") == true)
        #expect(try ignoring.status().filter { $0.stage != "b" }.allSatisfy { $0.state == .upToDate })

        // Asked for by name it runs, and what d does not read cannot make d stale.
        _ = try ignoring.run(RunSelection(until: "b"), command: "test")
        _ = try runner(manifest("params: {d: {ignores: [b]}, b: {y: 7}}\n")).run(RunSelection(force: ["b"]), command: "test")
        #expect(counts() == [1, 2, 1, 1])
        // Forced by name under --until, it runs as it did when d read it; d, which does not, stays.
        let forcedUnder = try ignoring.run(RunSelection(until: "d", force: ["b"]), command: "test")
        #expect(forcedUnder.stages.map(\.stage) == ["a", "b", "d"] && forcedUnder.stages.last?.action == .upToDate)
        #expect(counts() == [1, 3, 1, 1])
        let reproduced = try ignoring.run(RunSelection(targets: ["d"]), command: "test").stages.map(\.stage)
        #expect(reproduced == ["d"], "d reads nothing: a only reached it through b")

        // Reading b again is a parameter change of d, and pulls b back into the run.
        let reading = try runner(manifest())
        #expect(try reading.status().first { $0.stage == "d" }?.state == .stale)
        _ = try reading.run(RunSelection(), command: "test")
        #expect(counts() == [1, 3, 1, 2], "b's output of the forced run is what d now reads")
        #expect(reading.reads("d") == ["b"] && ignoring.reads("d").isEmpty)
    }

    /// A dry run refuses a work directory the run could not make, as the run does (it planned every stage).
    @Test func aDryRunRefusesAWorkDirectoryThatCannotBeMade() throws {
        #expect(FileManager.default.createFile(atPath: folder + "/taken", contents: Data()))
        let blocked = try PipelineRunner(manifest: manifest(), workspace: Workspace(root: folder + "/taken/work"), stages: stages)
        #expect(throws: EmoError.io(path: folder + "/taken", reason: "is a file where a folder should be: move or remove it")) {
            try blocked.plan(RunSelection())
        }
        #expect(throws: EmoError.io(path: folder + "/taken", reason: "is a file where a folder should be: move or remove it")) {
            try blocked.run(RunSelection(), command: "test")
        }
        #expect(try runner(manifest()).plan(RunSelection()).count == 4, "a new work directory that can be made is planned")
        #expect(!FileManager.default.fileExists(atPath: folder + "/work"), "and not made")
    }

    @Test func onlyRefusesAStageWhoseUpstreamNeverRan() throws {
        #expect(throws: PipelineError.upstreamNotReady(stage: "b", upstream: "a")) {
            try runner(manifest()).run(RunSelection(only: "b"), command: "test")
        }
        // Refused before anything is recorded (exit 64 means that): no work directory is made.
        #expect(!FileManager.default.fileExists(atPath: folder + "/work"))
        // A dry run refuses it the same way (it said the stage would run).
        #expect(throws: PipelineError.upstreamNotReady(stage: "b", upstream: "a")) { try runner(manifest()).plan(RunSelection(only: "b")) }
        _ = try runner(manifest()).run(RunSelection(until: "a"), command: "test")
        #expect(throws: PipelineError.upstreamNotReady(stage: "d", upstream: "b")) { try runner(manifest()).plan(RunSelection(only: "d")) }
        #expect(try runner(manifest()).plan(RunSelection(only: "b")).map(\.stage) == ["b"])
        let runs = try ProvenanceStore(path: folder + "/work/emopipe.sqlite").runs().count
        #expect(throws: PipelineError.upstreamNotReady(stage: "d", upstream: "b")) {
            try runner(manifest()).run(RunSelection(only: "d"), command: "test")
        }
        #expect(try ProvenanceStore(path: folder + "/work/emopipe.sqlite").runs().count == runs, "no run recorded")
        #expect(counts() == [1, 0, 0, 0])
        // With a stale upstream, --only takes its last output as it is: the plan judges b as the run does.
        _ = try runner(manifest()).run(RunSelection(), command: "test")
        let staleUpstream = try runner(manifest("params: {a: {x: 9}}\n"))
        let planned = try #require(try staleUpstream.plan(RunSelection(only: "b")).first)
        let ran = try #require(try staleUpstream.run(RunSelection(only: "b"), command: "test").stages.first)
        #expect(planned.action == .upToDate && ran.action == .upToDate, "\(planned.reason)")
    }

    /// Failure counts edited by hand into Int64's limit are summed without an overflow (the end of every run trapped).
    @Test func failureCountsNearTheLimitAreSummedWithoutATrap() throws {
        _ = try runner(manifest()).run(RunSelection(), command: "test")
        let store = try ProvenanceStore(path: folder + "/work/emopipe.sqlite")
        try store.write { try $0.execute(sql: "UPDATE stageState SET unitsFailed = 9223372036854775807 WHERE stage IN ('a', 'b')") }
        let report = try runner(manifest()).run(RunSelection(), command: "test")
        #expect(report.failedUnits == Int.max && report.exitCode == 3)
        #expect([Int.max, 1].clampedSum() == Int.max && [Int.min, -1].clampedSum() == Int.min && [3, -5].clampedSum() == -2)
        #expect(Int.max.clampedMultiplied(by: 2) == Int.max && Int.min.clampedSubtracting(1) == Int.min)
    }

    @Test func unknownParameterOverrideIsRejected() throws {
        #expect(throws: PipelineError.self) { try runner(manifest("params: {b: {yy: 5}}\n")) }
    }

    @Test func badParameterNamesTheFileTheKeyAndTheValue() throws {
        #expect(throws: PipelineError.invalidParameter(file: folder + "/m.yaml", key: "b.y", value: "-1", allowed: "an integer ≥ 0")) {
            try runner(manifest("params: {b: {y: -1}}\n"))
        }
        #expect(throws: PipelineError.invalidParameter(file: folder + "/m.yaml", key: "b.y", value: "\"two\"",
                                                       allowed: "expected a whole number, got a string")) {
            try runner(manifest("params: {b: {y: two}}\n"))
        }
        var withSet = try manifest()
        withSet.commandLine = [try ParameterOverride(parsing: "b.y=1.5")]
        #expect(throws: PipelineError.invalidParameter(file: "--set", key: "b.y", value: "1.5",
                                                       allowed: "expected a whole number, got a number")) {
            try runner(withSet)
        }
    }

    @Test func commandLineOverridesWinAndAreRecordedForReproduction() throws {
        var m = try manifest("params: {b: {y: 5}}\n")
        m.commandLine = [try ParameterOverride(parsing: "b.y=7")]
        let r = try runner(m)
        #expect(r.parameters["b"]?.encoded["y"] == .int(7))
        #expect(r.parameters["b"]?.origins["y"] == .commandLine)
        #expect(r.parameters["a"]?.origins["x"] == .pipeline(path: folder + "/p.yaml"))
        #expect(try Manifest.recordedOverrides(in: m.recordedText) == m.commandLine)
        #expect(try Manifest.recordedOverrides(in: m.text).isEmpty)
    }

    /// A run's recorded manifest, copied and run again, trains what the run trained: its recorded
    /// --set lines are part of the file (origin: the manifest), and a further --set still wins.
    @Test func aCopyOfARecordedManifestCarriesItsOverrides() throws {
        var first = try manifest("params: {b: {y: 5}}\n")
        first.commandLine = [try ParameterOverride(parsing: "b.y=7")]
        let copy = try Manifest.parse(yaml: first.recordedText, path: folder + "/copy.yaml")
        let again = try runner(copy)
        #expect(again.parameters["b"]?.encoded["y"] == .int(7))
        #expect(again.parameters["b"]?.origins["y"] == .manifest(path: folder + "/copy.yaml"))
        var second = copy
        second.commandLine = [try ParameterOverride(parsing: "b.y=9")]
        #expect(try runner(second).parameters["b"]?.encoded["y"] == .int(9))
        let recordedTwice = try Manifest.parse(yaml: second.recordedText, path: folder + "/twice.yaml")
        #expect(try runner(recordedTwice).parameters["b"]?.encoded["y"] == .int(9), "the later --set wins when read back too")
        #expect(throws: PipelineError.self) {
            try Manifest.parse(yaml: "pipeline: p.yaml\n" + Manifest.commandLineMarker + "\n# --set b.y\n", path: folder + "/bad.yaml")
        }
    }

    /// Only the trailing comment block `recordedText` writes carries overrides: the same lines inside a
    /// quoted value, or followed by more of the manifest, are text, not settings.
    @Test func overrideLinesInsideAValueSetNothing() throws {
        let injected = [
            "params: {b: {y: 5}}\ndescription: \"first line\n\(Manifest.commandLineMarker)\n# --set b.y=7\n\"\n",
            "params: {b: {y: 5}}\ndescription: \"first line\n\(Manifest.commandLineMarker)\n# --set b.y=7\"\n",
            "params: {b: {y: 5}}\n\(Manifest.commandLineMarker)\n# --set b.y=7\nseed: 3\n",
        ]
        for text in injected {
            #expect(try Manifest.recordedOverrides(in: "pipeline: p.yaml\n" + text).isEmpty, "\(text.debugDescription)")
        }
        let recorded = "pipeline: p.yaml\nparams: {b: {y: 5}}\n\(Manifest.commandLineMarker)\n# --set b.y=7\n\n"
        #expect(try Manifest.recordedOverrides(in: recorded) == [try ParameterOverride(parsing: "b.y=7")])
    }

    /// A manifest whose last value is a `|` or `>` block (its final line break is part of the value),
    /// saved again with CRLF line ends, or given a comment after the block, keeps its recorded overrides.
    @Test func recordedOverridesSurviveBlockScalarsCRLFAndTrailingComments() throws {
        let expected = [try ParameterOverride(parsing: "b.y=7")]
        for ending in ["description: |\n  notes\n", "description: >\n  notes\n\n", "description: |+\n  notes\n\n"] {
            var m = try manifest("params: {b: {y: 5}}\n" + ending)
            m.commandLine = expected
            let texts = [m.recordedText, m.recordedText.replacingOccurrences(of: "\n", with: "\r\n"),
                         m.recordedText + "\n# a note of my own\n   \n"]
            for text in texts {
                #expect(try Manifest.recordedOverrides(in: text) == expected, "\(text.debugDescription)")
                let copy = try Manifest.parse(yaml: text, path: folder + "/copy.yaml")
                #expect(try runner(copy).parameters["b"]?.encoded["y"] == .int(7), "\(text.debugDescription)")
            }
        }
    }

    /// Characters YAML refuses (DEL, C1 controls) or reads as line breaks (NEL, U+2028, U+2029) in a
    /// --set string cannot break the recorded manifest or smuggle a live line into it.
    @Test func oddCharactersInAnOverrideReadBackAsGiven() throws {
        var first = try manifest("params: {b: {y: 5}}\n")
        let odd = "x\u{2028}seed: 7 #\u{7F}\u{85}\u{9F}\u{2029}\u{FEFF}é"
        first.commandLine = [ParameterOverride(stage: "b", key: "z", value: .string(odd))]
        let text = first.recordedText
        #expect(!text.unicodeScalars.contains { [0x7F, 0x85, 0x9F, 0x2028, 0x2029, 0xFEFF].contains($0.value) }, "\(text.debugDescription)")
        let copy = try Manifest.parse(yaml: text, path: folder + "/copy.yaml")
        #expect(try Manifest.recordedOverrides(in: copy.text) == first.commandLine)
        #expect(copy.seed == first.seed, "no line after the break became part of the manifest")
    }

    @Test func runsAreRecordedAsProvenance() throws {
        let report = try runner(manifest()).run(RunSelection(), command: "emopipe run test")
        let store = try ProvenanceStore(path: folder + "/work/emopipe.sqlite")
        let run = try #require(try store.runs().first)
        #expect(run.id == report.runId)
        #expect(run.status == .done)
        #expect(run.command == "emopipe run test")
        #expect(try store.stageRuns(runId: run.id).map(\.stage) == ["a", "b", "c", "d"])
        #expect(FileManager.default.fileExists(atPath: folder + "/work/runs/\(run.id)/manifest.yaml"))
    }
}

@Suite("work-directory lock")
struct LockTests {
    /// A fresh folder and the lock file's path in it.
    static func lockFile() throws -> (folder: String, path: String) {
        let folder = try TestSupport.temporaryFolder("lock")
        return (folder, folder + "/emopipe.lock")
    }

    @Test func secondHolderIsRefusedWithTheHolderNamed() throws {
        let path = try Self.lockFile().path
        let first = try WorkDirectoryLock.acquire(path: path, holder: "run A (pid 1)")
        #expect(throws: PipelineError.locked(holder: "run A (pid 1)")) {
            try WorkDirectoryLock.acquire(path: path, holder: "run B")
        }
        first.release()
        let second = try WorkDirectoryLock.acquire(path: path, holder: "run B")
        #expect(second.previousHolder == nil, "a clean release leaves no holder behind")
        second.release()
    }

    /// Whether the lock is held is read from the kernel's table without taking it; a lock a killed
    /// process held (its text left behind) is not held. Another process's lock counts, as a run's would.
    @Test func whetherTheLockIsHeldIsToldWithoutTakingIt() throws {
        let (folder, path) = try Self.lockFile()
        #expect(WorkDirectoryLock.isHeld(path: path) == false, "no lock file")
        let lock = try WorkDirectoryLock.acquire(path: path, holder: "run A")
        #expect(WorkDirectoryLock.isHeld(path: path) == true)
        #expect(WorkDirectoryLock.isHeld(path: folder + "/other.lock") == false)
        lock.release()
        #expect(WorkDirectoryLock.isHeld(path: path) == false)
        let holder = Process()
        // One process holding the flock (flock(1) would leave its child holding it after a SIGKILL).
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(30)", path]
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        let deadline = Date().addingTimeInterval(10)
        while WorkDirectoryLock.isHeld(path: path) != true && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(WorkDirectoryLock.isHeld(path: path) == true, "another process's flock")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(WorkDirectoryLock.isHeld(path: path) == false, "the kernel dropped the killed holder's lock")
    }

    /// A held lock file whose text was written over with bytes that are no text is described, not echoed.
    @Test func aLockFileOfBytesThatAreNoTextIsDescribed() throws {
        let path = try Self.lockFile().path
        try Data((0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ 7) }).write(to: URL(fileURLWithPath: path))
        let descriptor = open(path, O_RDWR)
        try #require(descriptor >= 0 && flock(descriptor, LOCK_EX) == 0)
        defer { close(descriptor) }
        let refused = try #require(throws: PipelineError.self) { try WorkDirectoryLock.acquire(path: path, holder: "run B") }
        #expect(refused == .locked(holder: "unknown (the lock file holds at least 4096 bytes that are not its text)"), "\(refused)")
    }

    /// Removing a held lock file (as one removes a lock file believed stale) lets no second holder in:
    /// the guard beside it is locked too. Once the first lets go, the lock is taken as usual.
    @Test func removingAHeldLockFileLetsNoSecondHolderIn() throws {
        let path = try Self.lockFile().path
        let first = try WorkDirectoryLock.acquire(path: path, holder: "run A (pid 1)")
        try FileManager.default.removeItem(atPath: path)
        #expect(WorkDirectoryLock.isHeld(path: path) == true, "held, though its file is gone")
        let refused = try #require(throws: PipelineError.self) { try WorkDirectoryLock.acquire(path: path, holder: "run B") }
        #expect(refused == .locked(holder: "another process, holding .emopipe.lock.guard (an emopipe whose emopipe.lock was removed while it ran, or a process holding the guard itself)"), "\(refused)")
        #expect(WorkDirectoryLock.currentHolder(path: path) != nil)
        first.release()
        #expect(WorkDirectoryLock.isHeld(path: path) == false)
        let second = try WorkDirectoryLock.acquire(path: path, holder: "run B")
        #expect(WorkDirectoryLock.isHeld(path: path) == true)
        second.release()
    }

    /// A guard that is no regular file (a folder or FIFO planted there) is refused as the lock file would be:
    /// used without it, a removed lock file would let a second run in.
    @Test func aGuardThatIsNoFileIsRefused() throws {
        for make in [{ (path: String) in try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) },
                     { (path: String) in try #require(mkfifo(path, 0o644) == 0) }] {
            let path = try Self.lockFile().path
            let guardFile = (path as NSString).deletingLastPathComponent + "/.emopipe.lock.guard"   // the layout the README gives
            try make(guardFile)
            let refused = try #require(throws: EmoError.self) { try WorkDirectoryLock.acquire(path: path, holder: "run A") }
            #expect("\(refused)".contains(guardFile) && "\(refused)".contains("the lock's guard file"), "\(refused)")
            #expect(WorkDirectoryLock.isHeld(path: path) == false, "the lock file was let go")
            try FileManager.default.removeItem(atPath: guardFile)
            try WorkDirectoryLock.acquire(path: path, holder: "run A").release()
        }
    }

    /// `flock DIR command` (a common way to run a job) locks the folder, not the lock: runs go on.
    @Test func aLockOnTheFolderIsNotTheWorkDirectorysLock() throws {
        let (folder, path) = try Self.lockFile()
        let folderLock = open(folder, O_RDONLY | O_DIRECTORY)
        try #require(folderLock >= 0 && flock(folderLock, LOCK_EX | LOCK_NB) == 0)
        defer { close(folderLock) }
        #expect(WorkDirectoryLock.isHeld(path: path) == false)
        let lock = try WorkDirectoryLock.acquire(path: path, holder: "run A")
        #expect(WorkDirectoryLock.isHeld(path: path) == true)
        lock.release()
    }

    /// A lock file someone else wrote is shown escaped and cut; one of zeros names no holder.
    @Test func aLockFilesTextIsShownSafely() throws {
        let path = try Self.lockFile().path
        try Data(repeating: 0, count: 20_000).write(to: URL(fileURLWithPath: path))
        let taken = try WorkDirectoryLock.acquire(path: path, holder: "run A")
        #expect(taken.previousHolder == nil, "zeros name no holder")
        taken.release()
        try ("\u{1B}[2J" + String(repeating: "x", count: 3000) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let holder = open(path, O_RDWR)
        try #require(holder >= 0 && flock(holder, LOCK_EX | LOCK_NB) == 0)
        defer { close(holder) }
        let refused = try #require(throws: PipelineError.self) { try WorkDirectoryLock.acquire(path: path, holder: "run B") }
        guard case .locked(let shown) = refused else { Issue.record("\(refused)"); return }
        #expect(shown.hasPrefix("\\u{1B}[2Jxxx") && shown.count < 220 && !shown.contains("\u{1B}"), "\(shown.debugDescription)")
    }

    @Test func deadHoldersLockIsTakenOver() throws {
        let path = try Self.lockFile().path
        // A process that dies holding the lock leaves its text but no flock.
        try "emopipe run X (pid 99999)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let lock = try WorkDirectoryLock.acquire(path: path, holder: "run C")
        #expect(lock.previousHolder == "emopipe run X (pid 99999)")
        lock.release()
    }

    /// The winner of a race for a new lock writes its name a moment after taking it: the loser is told that
    /// name, not "another process".
    @Test func aRunThatLosesARaceIsToldTheWinnersName() throws {
        let path = try TestSupport.temporaryFolder("lock") + "/emopipe.lock"
        let winner = open(path, O_RDWR | O_CREAT, 0o644)
        try #require(winner >= 0 && flock(winner, LOCK_EX | LOCK_NB) == 0)
        defer { close(winner) }
        // A thread of its own: the global queues share the test pool's threads, which acquire's waits may all hold.
        Thread {
            usleep(10_000)
            _ = "emopipe run W (pid 1)\n".withCString { pwrite(winner, $0, strlen($0), 0) }
        }.start()
        do {
            _ = try WorkDirectoryLock.acquire(path: path, holder: "run L")
            Issue.record("the lock was taken while held")
        } catch let PipelineError.locked(holder) {
            #expect(holder == "emopipe run W (pid 1)")
        }
    }

    /// A holder empties its name just before letting go: a run that finds the lock taken and no name
    /// waiting is given the lock once it is free.
    @Test func aRunThatFindsALockBeingLetGoTakesIt() throws {
        let path = try TestSupport.temporaryFolder("lock") + "/emopipe.lock"
        let ending = open(path, O_RDWR | O_CREAT, 0o644)
        try #require(ending >= 0 && flock(ending, LOCK_EX | LOCK_NB) == 0)
        defer { close(ending) }
        Thread { usleep(10_000); flock(ending, LOCK_UN) }.start()
        let lock = try WorkDirectoryLock.acquire(path: path, holder: "run L")
        #expect(WorkDirectoryLock.currentHolder(path: path) == "run L")
        lock.release()
    }
}
