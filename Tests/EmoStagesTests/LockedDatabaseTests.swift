import EmoCore
import EmoPipeline
import EmoTestSupport
import Foundation
import Testing

/// A run that meets the provenance database held by another process waits for it, and one Ctrl-C
/// (SIGINT) ends that wait: exit 130 within a second or two, not when the holder lets go.
@Suite("locked provenance database", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("sox") && TestSupport.hasTool("python3"),
                                              "needs the emopipe binary, sox and python3"))
struct LockedDatabaseTests {
    @Test func oneInterruptEndsTheWaitForAnotherProcesssLock() throws {
        let data = try TestSupport.synthesizedSpeech([("03-01-01-01-01-01-01.wav", 1)])
        let workdir = try TestSupport.temporaryFolder("locked-db")
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let first = try TestSupport.run(TestSupport.emopipe, ["run", manifest, "--data", data, "--workdir", workdir, "--until", "ingest"])
        #expect(first.status == 0, "\(first.stderr)")
        let held = workdir + "/held"
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try #require(TestSupport.executable(named: "python3")))
        holder.arguments = ["-c", """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None); db.execute('BEGIN EXCLUSIVE')
            open(sys.argv[2], 'w').close(); time.sleep(20)
            """, workdir + "/emopipe.sqlite", held]
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        while !FileManager.default.fileExists(atPath: held) && holder.isRunning { Thread.sleep(forTimeInterval: 0.02) }
        let errors = try TestSupport.temporaryFile()
        let run = Process()
        run.executableURL = URL(fileURLWithPath: TestSupport.emopipe)
        run.arguments = ["run", manifest, "--workdir", workdir, "--until", "ingest"]
        run.standardError = FileHandle(forWritingAtPath: errors)
        run.standardOutput = FileHandle.nullDevice
        try run.run()
        let deadline = Date().addingTimeInterval(30)
        func said() -> String { (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "" }
        while !said().contains("is locked by another process's write transaction") && run.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(said().contains("waiting for it"), "\(said())")
        let interrupted = Date()
        kill(run.processIdentifier, SIGINT)
        run.waitUntilExit()
        #expect(run.terminationStatus == ExitStatus.interrupted, "\(said())")
        #expect(Date().timeIntervalSince(interrupted) < 10, "the wait ended on the interrupt, not when the holder let go (20 s)")
    }
}
