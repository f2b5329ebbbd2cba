@testable import EmoPipeline
import Foundation
import Testing

/// Which way a watched metric must move to alert: scores down, `*_drop` and spreads over folds up,
/// counts never.
@Suite("nightly metric directions")
struct NightlyReportTests {
    typealias Change = NightlyReport.MetricChange

    @Test func aScoreAlertsWhenItFallsBeyondTheTolerance() {
        #expect(Change(name: "weighted_f1", previous: 0.60, current: 0.55, tolerance: 0.02).regressed)
        #expect(!Change(name: "weighted_f1", previous: 0.60, current: 0.59, tolerance: 0.02).regressed)
        // A fall of exactly the tolerance, whatever the last bits of the difference say, is within it; a hair more is not.
        let exact = Change(name: "accuracy", previous: 14.0 / 60, current: 11.0 / 60, tolerance: 0.05)
        #expect(!exact.regressed && (exact.delta ?? 0) < -0.05, "the premise: \(exact.delta ?? 0) passes -0.05 in floating point")
        #expect(Change(name: "accuracy", previous: 14.0 / 60, current: 11.0 / 60 - 1e-6, tolerance: 0.05).regressed)
        #expect(!Change(name: "int8.accuracy_drop", previous: 0.1, current: 0.1 + 0.05, tolerance: 0.05).regressed)
        #expect(!Change(name: "seven_class.accuracy", previous: 0.60, current: 0.70, tolerance: 0).regressed)
    }

    @Test func aDropOrASpreadAlertsWhenItRises() {
        #expect(!Change(name: "int8.weighted_f1_drop", previous: 0.000135, current: 0, tolerance: 0).regressed)
        #expect(Change(name: "int8.accuracy_drop", previous: 0.001, current: 0.05, tolerance: 0.02).regressed)
        #expect(Change(name: "cv.weighted_f1.std", previous: 0.03, current: 0.09, tolerance: 0.02).regressed)
        #expect(!Change(name: "cv.weighted_f1.mean", previous: 0.60, current: 0.66, tolerance: 0.02).regressed)
        #expect(Change(name: "int8.accuracy_drop", previous: 0, current: 1, tolerance: 0).alert == "rose")
    }

    @Test func aCountNeverAlerts() {
        for name in ["count", "seven_class.count", "int8.clips", "confidence_interval.actors", "confidence_interval.resamples"] {
            #expect(!Change(name: name, previous: 480, current: 80, tolerance: 0).regressed, "\(name)")
            #expect(Change(name: name, previous: 480, current: 80, tolerance: 0).delta == -400)
        }
    }

    /// The Markdown page keeps one line per path whatever the name holds (a newline, a backtick), and
    /// shows a count as a whole number.
    @Test func theMarkdownPageKeepsOddNamesOnOneLineAndCountsWhole() {
        var report = NightlyReport(runId: "20261204-000000-abcdef", manifest: "m.yaml", dataRoot: "/data",
                                   startedAt: Date(timeIntervalSince1970: 0), finishedAt: Date(timeIntervalSince1970: 1), tolerance: 0.02)
        report.sources.added = ["/data/We`ird|na\nme/03-01-01-01-01-01-01.wav"]
        report.metrics = [Change(name: "count", previous: 58, current: 60, tolerance: 0.02),
                          Change(name: "accuracy", previous: 0.5, current: 0.625, tolerance: 0.02)]
        let lines = report.markdown.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.contains("- `` /data/We`ird|na\\nme/03-01-01-01-01-01-01.wav ``"), "\(report.markdown)")
        #expect(lines.contains("| count | 58 | 60 | +2 |  |") && lines.contains("| accuracy | 0.5000 | 0.6250 | +0.1250 |  |"),
                "\(report.markdown)")
    }

    /// A reports folder full of junk names 20 of the files passed over and counts the rest.
    @Test func passedOverReportsAreCappedAtTwentyNamed() throws {
        let notes = (1...25).map { "nightly/junk-\($0).json: unreadable" }
        let capped = try #require(Nightly.capped(notes))
        #expect(capped.count == 21 && capped.prefix(20).elementsEqual(notes.prefix(20)))
        #expect(capped.last == "… and 5 more that do not read")
        #expect(Nightly.capped(Array(notes.prefix(20))) == Array(notes.prefix(20)))
        #expect(Nightly.capped([]) == nil, "none passed over: no list")
    }
}
