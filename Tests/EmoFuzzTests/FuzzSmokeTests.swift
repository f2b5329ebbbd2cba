import EmoTestSupport
import Foundation
import Testing

/// A short, fixed-seed run of each `emopipe-fuzz` target (`make fuzz` runs them for longer, with a
/// fresh seed each time). The driver is a separate process: a crash in the code under test kills it,
/// not the test runner, and shows here as a non-zero exit status with the saved input named in stderr.
@Suite("emopipe-fuzz smoke run")
struct FuzzSmokeTests {
    struct Report: Decodable {
        var target: String
        var seed: UInt64
        var seeds: Int
        var iterations: Int
        var failures: Int
        var failureFiles: [String]
        var outcomes: [String: Int]
    }

    @Test(arguments: ["name", "probe", "shard", "manifest"])
    func aFewSecondsWithAFixedSeedFindNothing(target: String) throws {
        let fuzzer = TestSupport.emopipeFuzz
        try #require(FileManager.default.isExecutableFile(atPath: fuzzer),
                     "no \(fuzzer): `swift build --build-tests` (make test) builds it")
        let failures = try TestSupport.temporaryFolder("fuzz-failures")
        defer { try? FileManager.default.removeItem(atPath: failures) }
        let result = try TestSupport.run(fuzzer, ["run", target, "--seconds", "4", "--seed", "20261125", "--json",
                                                  "--failures", failures])
        #expect(result.status == 0, "emopipe-fuzz \(target) exited \(result.status): \(result.stderr.suffix(3000))")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase   // the report follows the snake_case convention
        let report = try decoder.decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.target == target && report.seed == 20_261_125)
        #expect(report.failures == 0, "failures: \(report.outcomes.filter { $0.key.hasPrefix("FAILURE") }), saved: \(report.failureFiles)")
        #expect(report.seeds > 0 && report.iterations >= report.seeds)
        // Both sides of the contract came up: inputs accepted and inputs rejected with a typed error.
        #expect(report.outcomes.keys.contains { $0.hasPrefix("ok: ") })
        #expect(report.outcomes.keys.contains { !$0.hasPrefix("ok: ") && !$0.hasPrefix("FAILURE") })
    }
}

/// The driver's own options and files are input too: a bad one is refused by name, never a trap.
@Suite("emopipe-fuzz refuses bad options")
struct FuzzOptionTests {
    @Test(arguments: [(["--seconds", "nan"], "--seconds nan"), (["--seconds=-1"], "--seconds -1"),
                      (["--seconds", "inf"], "--seconds inf"), (["--seconds", "1e30"], "--seconds 1e+30"),
                      (["--slow-limit", "0"], "--slow-limit 0"), (["--slow-limit=-2"], "--slow-limit -2"),
                      (["--slow-limit", "0.05"], "--slow-limit 0.05"),
                      (["--iterations", "0"], "--iterations 0"), (["--iterations=-5"], "--iterations -5")])
    func aBadNumberIsRefusedByName(arguments: [String], named: String) throws {
        let failures = try TestSupport.temporaryFolder("fuzz-options")
        defer { try? FileManager.default.removeItem(atPath: failures) }
        let result = try TestSupport.run(TestSupport.emopipeFuzz, ["run", "name", "--failures", failures] + arguments)
        #expect(result.status == 64, "exit \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("Error: \(named)"), "\(result.stderr)")
    }

    /// Folders given are checked before any input runs: `--failures ''` saved failing inputs at /, /dev/null lost
    /// them while saying they were saved, and a missing --seed-dir added no seed without a word.
    @Test(arguments: [(["--failures", ""], "Error: --failures '': name the folder"),
                      (["--failures", "/dev/null"], "Error: --failures /dev/null: is not a folder"),
                      (["--failures", "/dev/null/x/y"], "Error: --failures /dev/null/x/y: cannot be read (Not a directory)"),
                      (["--seed-dir", "/nonexistent-emopipe", "--failures", "f"], "Error: --seed-dir /nonexistent-emopipe: cannot be read"),
                      (["--repository", "/nonexistent-emopipe", "--failures", "f"], "Error: --repository /nonexistent-emopipe: its manifests/ cannot be read")])
    func aFolderThatCannotBeUsedIsRefusedByName(arguments: [String], said: String) throws {
        let result = try TestSupport.run(TestSupport.emopipeFuzz, ["run", "--iterations", "1"] + arguments,
                                         currentDirectory: try TestSupport.temporaryFolder("fuzz-folders"))
        #expect(result.status == 64 && result.stderr.contains(said), "exit \(result.status): \(result.stderr)")
    }

    /// replay judges --repository as run does: a bad argument (64) before any input is read, not a failure (1).
    @Test func replayRefusesARepositoryWithoutManifestsAsRunDoes() throws {
        let input = try TestSupport.temporaryFile()
        try Data("data: x\n".utf8).write(to: URL(fileURLWithPath: input))
        let result = try TestSupport.run(TestSupport.emopipeFuzz, ["replay", input, "--target", "manifest",
                                                                   "--repository", "/nonexistent-emopipe"])
        #expect(result.status == 64 && result.stderr.contains("Error: --repository /nonexistent-emopipe: its manifests/ cannot be read"),
                "exit \(result.status): \(result.stderr)")
    }

    /// Ctrl-C ends a run with its seed said (it printed nothing before, so the run could not be repeated), and promptly.
    @Test func ctrlCStopsARunThatSaidItsSeed() throws {
        let failures = try TestSupport.temporaryFolder("fuzz-interrupted")
        defer { try? FileManager.default.removeItem(atPath: failures) }
        let run = try TestSupport.Background(TestSupport.emopipeFuzz, ["run", "name", "probe", "--seconds", "600", "--seed", "77",
                                                                        "--failures", failures, "--json"], keepStdout: true)
        #expect(run.waitForStderr(containing: "emopipe-fuzz: seed 77 (--seed 77 repeats this run)", timeout: 60), "\(run.stderr)")
        Thread.sleep(forTimeInterval: 0.5)
        let sent = Date()
        #expect(kill(run.pid, SIGINT) == 0)
        let status = run.wait()
        #expect(status == 130 && Date().timeIntervalSince(sent) < 10, "exit \(status): \(run.stderr)")
        #expect(run.stderr.contains("stopping after the current input"), "\(run.stderr)")
        // The report of the target stopped is printed, and no later target is started.
        let reports = run.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(reports.map { $0["target"] as? String } == ["name"] && (reports.first?["iterations"] as? Int ?? 0) > 0, "\(run.stdout)")
    }

    @Test func replayRefusesAFolderAndAnInputTooLargeToReadWhole() throws {
        let folder = try TestSupport.temporaryFolder("fuzz-replay")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let folderResult = try TestSupport.run(TestSupport.emopipeFuzz, ["replay", folder, "--target", "probe"])
        #expect(folderResult.status == 64 && folderResult.stderr.contains("\(folder): not a regular file: not read; a saved input is a regular file"), "\(folderResult.stderr)")
        // A sparse file: its size is what counts, and nothing of it is read.
        let large = folder + "/large.yaml"
        #expect(FileManager.default.createFile(atPath: large, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: large))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        let largeResult = try TestSupport.run(TestSupport.emopipeFuzz, ["replay", large, "--target", "manifest"])
        #expect(largeResult.status == 64 && largeResult.stderr.contains("is 1073741824 bytes; a manifest input is read whole"),
                "\(largeResult.stderr)")
    }
}
