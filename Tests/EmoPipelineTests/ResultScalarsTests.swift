@testable import EmoPipeline
import Foundation
import Testing

/// The figures `runs`, `diff`, nightly reports and sweeps read from a result file.
@Suite("result scalars")
struct ResultScalarsTests {
    /// 0 and 1 are numbers, not booleans: a perfect or a failed model's accuracy must not vanish.
    @Test func zeroAndOneAreFiguresAndBooleansAreNot() {
        let json = #"{"accuracy": 1, "weighted_f1": 0, "macro_f1": 1.0, "uar": 0.0, "calibrated": true, "label": "x", "#
            + #""seven_class": {"accuracy": 1, "flag": false, "count": 80}, "per_class": [1, 0]}"#
        let found = Dictionary(uniqueKeysWithValues: RunSummary.scalars(inResult: .metrics, Data(json.utf8)).map { ($0.0, $0.1) })
        #expect(found == ["accuracy": 1, "weighted_f1": 0, "macro_f1": 1, "uar": 0, "seven_class.accuracy": 1, "seven_class.count": 80],
                "\(found)")
    }

    /// JSON shows counts as integers and every other figure as a number, whatever its value: an
    /// agreement of exactly 1 (written `1`) stays a rate, a count stays whole.
    @Test func countsAreWholeByNameNotByHowTheyAreWritten() {
        for name in ["count", "seven_class.count", "int8.clips", "confidence_interval.actors", "confidence_interval.resamples"] {
            #expect(RunSummary.isCount(name), "\(name)")
        }
        for name in ["accuracy", "int8.agreement", "int8.accuracy_drop", "cv.weighted_f1.std", "seven_class.accuracy"] {
            #expect(!RunSummary.isCount(name), "\(name)")
        }
    }

    @Test func crossValidationKeepsMeansAndSpreadsOnly() {
        let json = #"{"weighted_f1": {"mean": 1, "std": 0, "folds": [1, 1]}, "folds": 3}"#
        let found = RunSummary.scalars(inResult: .crossValidation, Data(json.utf8)).map(\.0)
        #expect(found == ["cv.weighted_f1.mean", "cv.weighted_f1.std"], "\(found)")
    }
}
