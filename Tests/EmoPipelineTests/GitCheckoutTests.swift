@testable import EmoPipeline
import EmoTestSupport
import Foundation
import Testing

/// The commit a run records comes from `git status` in a user's checkout, which must never hold the
/// run: what the checkout holds bounds nothing else, so the wait is bounded, and what git started goes with it.
@Suite("git checkout lookup")
struct GitCheckoutTests {
    /// A program that never answers is stopped at its patience, with what it started (its process group).
    @Test func aProgramThatDoesNotAnswerIsStoppedWithWhatItStarted() throws {
        let folder = try TestSupport.temporaryFolder("git-wait")
        let pidFile = folder + "/sleeper.pid"
        let outcome = GitCheckout.run(["sh", "-c", "sleep 600 & echo $! > '\(pidFile)'; wait"], patience: 0.5, outputLimit: 1 << 20)
        #expect(outcome == .timedOut)
        let sleeper = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // Killed, then reaped by init (it was the shell's child): gone or a zombie for a moment, never left sleeping.
        var alive = kill(sleeper, 0) == 0
        for _ in 0..<200 where alive {
            usleep(10_000)
            let state = (try? String(contentsOfFile: "/proc/\(sleeper)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
            alive = kill(sleeper, 0) == 0 && state != "Z"
        }
        #expect(!alive, "the program's child \(sleeper) outlived the wait")
    }

    /// Output past the limit is not read on: what was read is kept and the program stopped.
    @Test func outputPastTheLimitIsCutShort() {
        guard case .cutShort(let text) = GitCheckout.run(["yes"], patience: 30, outputLimit: 10_000) else {
            Issue.record("`yes` was not cut short")
            return
        }
        #expect(text.utf8.count >= 10_000 && text.hasPrefix("y\ny\n"))
        #expect(GitCheckout.run(["sh", "-c", "echo done"], patience: 30, outputLimit: 10_000) == .finished("done\n"))
        #expect(GitCheckout.run(["sh", "-c", "exit 3"], patience: 30, outputLimit: 10_000) == .failed)
        #expect(GitCheckout.run(["no-such-program-emopipe"], patience: 30, outputLimit: 10_000) == .failed)
    }

    /// A checkout whose HEAD is a FIFO (git blocks opening it) records no commit instead of holding the run.
    @Test func aCheckoutThatBlocksGitRecordsNoCommit() throws {
        let checkout = try TestSupport.temporaryFolder("git-fifo")
        for folder in [".git/objects", ".git/refs", "pipelines"] {
            try FileManager.default.createDirectory(atPath: checkout + "/" + folder, withIntermediateDirectories: true)
        }
        try #require(mkfifo(checkout + "/.git/HEAD", 0o644) == 0)
        #expect(GitCheckout.describe(checkout + "/pipelines", patience: 1) == nil)
        // This repository's own checkout answers as before.
        if FileManager.default.fileExists(atPath: TestSupport.repositoryRoot + "/.git") {
            #expect(GitCheckout.describe(TestSupport.repositoryRoot + "/pipelines")?.commit.count == 40)
        }
    }
}
