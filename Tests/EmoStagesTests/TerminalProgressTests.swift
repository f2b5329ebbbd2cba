import EmoTestSupport
import Foundation
import Testing

/// On a terminal the progress line is redrawn in place: cut to the terminal's width (a wider line wraps, and
/// each redraw then stacked one more line), and cleared before a log line is written (a fold's result ran
/// on after "evaluate 2/134 … ETA"). `script` gives the run a terminal of 40 columns.
@Suite("progress on a terminal", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasSharedData && TestSupport.hasTool("script"),
                                         "needs the emopipe binary, the shared data and script(1)"))
struct TerminalProgressTests {
    @Test func theLineFitsTheTerminalAndIsClearedBeforeALogLine() throws {
        let data = try TestSupport.speechWithOneVideo(filedAs: 3)
        let folder = try TestSupport.temporaryFolder("terminal-progress")
        let manifest = try TrainEvaluateTests.tinyManifest(at: folder + "/tiny.yaml", data: data, speakerNorm: false)
        let command = "stty cols 40; '\(TestSupport.emopipe)' run '\(manifest)' --workdir '\(folder)/work'"
        // A terminal that moves the cursor, whatever the test runner's own TERM (dumb gets plain lines).
        let result = try TestSupport.run("/usr/bin/env", ["script", "-qec", command, "/dev/null"], environment: ["TERM": "xterm"])
        #expect(result.status == 0, "\(result.stdout.suffix(800))")
        let clear = "\r\u{1B}[K"
        let drawn = result.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        // Every progress line drawn: the text after a clear, up to the next clear or line break, that is no log
        // line (a log line after an open progress line follows a clear too).
        let logLine = try Regex(#"\d\d:\d\d:\d\d (info|notice|warning) "#)
        let progress = drawn.components(separatedBy: clear).dropFirst().map { $0.prefix { $0 != "\n" && $0 != "\r" } }
            .filter { (try? logLine.prefixMatch(in: $0)) == nil }
        #expect(progress.count > 5 && progress.contains { $0.hasPrefix("evaluate ") }, "\(drawn.suffix(800))")
        // Lines redrawn fit (the last of each stage, ended by a line break, keeps its end).
        let redrawn = drawn.components(separatedBy: clear).dropFirst().filter { !$0.contains("\n") && (try? logLine.prefixMatch(in: $0)) == nil }
        #expect(redrawn.count > 5, "\(drawn.suffix(800))")
        for line in redrawn { #expect(line.count <= 39, "wider than the terminal: \(line)") }
        // A log line starts a line of its own: after a line break, or after the clear of an open progress line.
        for match in drawn.matches(of: logLine) {
            let before = drawn[..<match.range.lowerBound]
            #expect(before.isEmpty || before.hasSuffix("\n") || before.hasSuffix(clear),
                    "a log line ran on after: \(before.suffix(60).debugDescription)")
        }
    }
}
