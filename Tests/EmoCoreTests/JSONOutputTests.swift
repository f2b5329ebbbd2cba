import EmoCore
import Foundation
import Testing

@Suite("JSON convention")
struct JSONOutputTests {
    struct Model: Codable, Equatable {
        var nMels: Int
        var executableSha256: String
        var bestEpoch: Int
        var libraries: [String: String]
    }

    @Test func writesSnakeCaseKeysSortedWithoutEscapingSlashesAndLeavesDictionaryKeysAlone() throws {
        let value = Model(nMels: 64, executableSha256: "a/b", bestEpoch: 3, libraries: ["OpenBLAS": "0.3", "Actor_01/x": "y"])
        let text = try JSONOutput.text(value)
        #expect(text == #"{"best_epoch":3,"executable_sha256":"a/b","libraries":{"Actor_01/x":"y","OpenBLAS":"0.3"},"n_mels":64}"#)
        #expect(try JSONOutput.decoder().decode(Model.self, from: Data(text.utf8)) == value)
    }

    /// Files written before the convention (model.json, nightly reports, recorded environments) still read.
    @Test func readsTheCamelCaseFilesWrittenBeforeTheConvention() throws {
        let legacy = #"{"bestEpoch":3,"executableSHA256":"x","libraries":{"OpenBLAS":"0.3"},"nMels":40}"#
        let model = try JSONOutput.decoder().decode(Model.self, from: Data(legacy.utf8))
        #expect(model == Model(nMels: 40, executableSha256: "x", bestEpoch: 3, libraries: ["OpenBLAS": "0.3"]))
    }

    @Test func splitsWordsAsFoundationDoes() throws {
        let cases = ["executableSHA256": "executable_sha256", "nFFT": "n_fft", "valWeightedF1": "val_weighted_f1",
                     "snrDb": "snr_db", "best_epoch": "best_epoch", "a1B": "a1_b", "id": "id"]
        for (key, snake) in cases {
            #expect(JSONOutput.snakeCase(key) == snake, "\(key)")
        }
        #expect(JSONOutput.camelCase("val_weighted_f1") == "valWeightedF1")
        #expect(JSONOutput.camelCase("_private_") == "_private_")
    }
}
