// emopipe-fuzz: seeded random-input testing of the RAVDESS name parser, the probe/decode path,
// the shard reader and manifests. `make fuzz` runs every target for a bounded time.
import ArgumentParser
import EmoCore
import EmoMedia
import Foundation

struct EmoPipeFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emopipe-fuzz",
        abstract: "Feed mutated inputs to EmoPipe's parsers and readers; every one must succeed or throw a typed error.",
        discussion: """
        Targets: name (RavdessName.parse), probe (MediaProbe.probe and AudioDecoder.decodeMono on WAV and MP4
        files), shard (ShardFile open, read and verify), manifest (the shipped manifests mutated, through what
        params and a dry run check: parsing, --set lines, every stage's parameters, a sweep's trials). A crash kills the process (exit status from the
        signal); its input is saved first as FAILURES/<target>-crash.<ext>. An untyped error or a broken
        invariant is a failure: the input is saved under FAILURES and the exit status is 1.
        """,
        subcommands: [Run.self, Replay.self],
        defaultSubcommand: Run.self)
}

enum TargetName: String, CaseIterable, ExpressibleByArgument {
    case name, probe, shard, manifest
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fuzz the targets (all by default), one after the other.")

    @Argument(help: "Targets to run: name, probe, shard, manifest (default: all).")
    var targets: [TargetName] = TargetName.allCases

    @Option(help: "Seconds per target (0 to a week; every seed is tried once however short).")
    var seconds: Double = 10

    @Option(help: "Stop a target after this many inputs (whichever of --seconds and --iterations comes first).")
    var iterations: Int?

    @Option(help: "The random seed (default: from the clock; printed, so a run can be repeated).")
    var seed: UInt64?

    @Option(help: "Where failing inputs are saved.")
    var failures: String = "fuzz-failures"

    @Option(name: .customLong("seed-dir"), help: "Extra seed files (*.wav, *.mp4) for the probe target.")
    var seedDirs: [String] = []

    @Option(help: "The repository whose manifests/ seed the manifest target (default: the one this was built from).")
    var repository: String = repositoryRoot

    @Flag(help: "Do not take seeds from the shared RAVDESS data.")
    var noShared = false

    @Option(help: "An input taking longer than this many seconds (0.1 or more) counts as a failure.")
    var slowLimit: Double = 10

    @Flag(help: "One JSON object per target on stdout instead of text.")
    var json = false

    /// A week: longer runs are split into runs with fresh seeds; the deadline is kept in nanoseconds.
    static let maxSeconds: Double = 7 * 24 * 3600
    static let minSlowLimit = 0.1

    func validate() throws {
        if !(seconds.isFinite && seconds >= 0 && seconds <= Self.maxSeconds) {
            throw ValidationError("--seconds \(seconds): expected a number of seconds from 0 to \(Int(Self.maxSeconds)) (a week)")
        }
        // Below a tenth of a second the limit times the machine, not the input: 1e-9 failed every input.
        if !(slowLimit.isFinite && slowLimit >= Self.minSlowLimit && slowLimit <= Self.maxSeconds) {
            throw ValidationError("--slow-limit \(slowLimit): expected a number of seconds from \(Self.minSlowLimit) to \(Int(Self.maxSeconds))")
        }
        if let iterations, iterations < 1 {
            throw ValidationError("--iterations \(iterations): expected at least 1 input per target")
        }
        // Where failing inputs go must be a folder that can be made: "" saved them at / and /dev/null lost them.
        if failures.isEmpty { throw ValidationError("--failures '': name the folder failing inputs are saved in") }
        if let problem = folderProblem(failures, mayBeMissing: true) { throw ValidationError("--failures \(failures.echoed): \(problem)") }
        for folder in seedDirs {
            if let problem = folderProblem(folder, mayBeMissing: false) { throw ValidationError("--seed-dir \(folder.echoed): \(problem)") }
        }
        if targets.contains(.manifest) { try checkRepository(repository) }
    }

    func run() throws {
        MediaLogging.silenceLibav()
        let seed = seed ?? UInt64(Date().timeIntervalSince1970 * 1000)
        let stop = FuzzStop.listen()
        // Said first, so that a run stopped or killed before its reports can still be repeated.
        StandardStream.error.write(Data("emopipe-fuzz: seed \(seed) (--seed \(seed) repeats this run)\n".utf8))
        let runner = FuzzRunner(seconds: seconds, maxIterations: iterations, seed: seed, failureFolder: failures,
                                slowLimit: slowLimit)
        var failed = 0
        for name in targets where !StopRequest.isSet {
            let target = try makeTarget(name, seedDirs: seedDirs, useShared: !noShared, repository: repository)
            let report = runner.run(target)
            failed += report.failures
            if json {
                print(try JSONOutput.text(report))
            } else {
                printReport(report)
            }
        }
        withExtendedLifetime(stop) {}
        if StopRequest.isSet { throw ExitCode(130) }
        if failed > 0 { throw ExitCode.failure }
    }

    func printReport(_ r: TargetReport) {
        print(String(format: "%@: seed %llu, %.1f s, %d inputs, %.0f exec/s, %d error kinds (%d distinct reasons), %d failures, %d seeds, slowest %.3f s",
                     r.target, r.seed, r.seconds, r.iterations, r.execPerSecond, r.errorKinds, r.distinctReasons,
                     r.failures, r.seeds, r.slowestSeconds))
        let sorted = r.outcomes.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        for (label, count) in sorted.prefix(40) {
            print(String(format: "  %9d  %@", count, label.debugDescription.dropFirst().dropLast().description))
        }
        if sorted.count > 40 { print("  … \(sorted.count - 40) rarer outcomes (--json lists them all)") }
        for file in r.failureFiles { print("  saved: \(file.echoed)") }
        fflush(stdout)
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one saved input through a target and say what it did.")

    @Argument(help: "The saved input (its extension chooses WAV or MP4 for the probe target).")
    var file: String

    @Option(help: "The target the input is for.")
    var target: TargetName

    @Option(help: "The repository whose manifests/ the manifest target reads (default: the one this was built from).")
    var repository: String = repositoryRoot

    /// Name and manifest inputs are read whole; the fuzzer writes none larger than a few hundred kilobytes.
    static let maxReadBytes = 16 << 20

    /// The file argument is checked here, before any work: a folder, a FIFO or a huge file is a bad argument.
    func validate() throws {
        if target == .manifest { try checkRepository(repository) }
        let size = try sizeOfInput()
        if target == .name || target == .manifest, size > Self.maxReadBytes {
            throw ValidationError("\(file.echoed) is \(size) bytes; a \(target.rawValue) input is read whole, and at most \(Self.maxReadBytes) bytes are")
        }
    }

    func run() throws {
        MediaLogging.silenceLibav()
        let size = try sizeOfInput()
        let outcome: Outcome
        switch target {
        case .name: outcome = NameTarget().execute(FuzzInput(bytes: try contents(), fileExtension: "txt"))
        case .probe: outcome = ProbeTarget.check(path: file)
        case .shard: outcome = ShardTarget.check(path: file, size: size)
        case .manifest:
            outcome = try ManifestTarget(repositoryRoot: repository).execute(FuzzInput(bytes: try contents(), fileExtension: "yaml"))
        }
        switch outcome {
        case .accepted(let label): print("accepted: \(label)")
        case .rejected(let label): print("rejected with a typed error: \(label)")
        case .failure(let why):
            print("FAILURE: \(why)")
            throw ExitCode.failure
        }
    }

    /// The size of a regular file; the probe and shard targets read it themselves, in pieces.
    func sizeOfInput() throws -> Int {
        do {
            let (descriptor, size) = try RegularFile.openForReading(file)
            close(descriptor)
            return Int(size)
        } catch {
            throw ValidationError("\(file.echoed): \(EmoError.reason(of: error)); a saved input is a regular file")
        }
    }

    /// The whole file, refused if it grew past `maxReadBytes` since `validate`.
    func contents() throws -> [UInt8] {
        do { return [UInt8](try RegularFile.read(file, atMost: Self.maxReadBytes)) } catch {
            throw ValidationError("\(file.echoed): \(EmoError.reason(of: error))")
        }
    }
}

/// Why `path` cannot be used as a folder (nil when it can): not one, or missing when it must exist; a missing
/// one that may be made is judged as the pipeline judges a folder it is to make (`Folder.creationProblem`).
func folderProblem(_ path: String, mayBeMissing: Bool) -> String? {
    var facts = stat()
    guard stat(path, &facts) == 0 else {
        guard errno == ENOENT && mayBeMissing else { return "cannot be read (\(String(cString: strerror(errno))))" }
        return Folder.creationProblem(path).map { "cannot be made: \(EmoError.reason(of: $0))" }
    }
    return facts.st_mode & S_IFMT == S_IFDIR ? nil : "is not a folder"
}

/// A `--repository` whose manifests/ cannot seed the manifest target is a bad argument (exit 64), for run and replay alike.
func checkRepository(_ repository: String) throws {
    if let problem = folderProblem(repository + "/manifests", mayBeMissing: false) {
        throw ValidationError("--repository \(repository.echoed): its manifests/ \(problem)")
    }
}

/// Ctrl-C (SIGINT) or SIGTERM during `run`: the first ends the target after its current input, prints the reports
/// so far and exits 130; a second stops at once. The seed was printed at the start.
enum FuzzStop {
    static func listen() -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                // A second stop ends the process here and now: _exit, as the target may be mid-decode on the main thread.
                guard StopRequest.setFirst() else { _exit(130) }
                StandardStream.error.write(Data("emopipe-fuzz: stopping after the current input (again to stop now)\n".utf8))
            }
            source.resume()
            return source
        }
    }
}

/// This source file's repository: Sources/emopipe-fuzz/main.swift, two folders down.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func makeTarget(_ name: TargetName, seedDirs: [String], useShared: Bool, repository: String) throws -> FuzzTarget {
    let log = { (text: String) in StandardStream.error.write(Data("emopipe-fuzz: \(text)\n".utf8)) }
    switch name {
    case .name: return NameTarget()
    case .probe: return try ProbeTarget(seeds: MediaSeeds.corpus(extraFolders: seedDirs, useShared: useShared, log: log))
    case .shard: return try ShardTarget(seeds: ShardSeeds.corpus())
    case .manifest: return try ManifestTarget(repositoryRoot: repository)
    }
}

EmoPipeFuzz.main()
