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

    /// Why a document did not decode is said in the document's words (a list, a mapping, text, a whole
    /// number), never Swift's type names (`Array<Any>`), and JSON that does not parse is called that.
    @Test func aDecodingProblemNamesThePlaceAndTheKindExpected() throws {
        struct Speaker: Decodable { var actor: Int; var mean: [Double]; var name: String }
        struct Document: Decodable { var speakers: [Speaker] }
        let cases: [(String, String)] = [
            ("{\"speakers\": \"x\"}", "`speakers`: expected a list"),
            ("{\"speakers\": [1]}", "`speakers[0]`: expected a mapping"),
            ("{\"speakers\": [{\"actor\": \"a\", \"mean\": [], \"name\": \"n\"}]}", "`speakers[0].actor`: expected a whole number"),
            ("{\"speakers\": [{\"actor\": 1, \"mean\": null, \"name\": \"n\"}]}", "`speakers[0].mean` is null where a list belongs"),
            ("{\"speakers\": [{\"actor\": 1, \"mean\": [], \"name\": 3}]}", "`speakers[0].name`: expected text"),
            ("{\"speakers\": [{\"actor\": 1, \"mean\": []}]}", "`speakers[0].name` is missing"),
            ("[1", "not valid JSON"),
            // Valid, but deeper than a reader takes: said so, not called invalid.
            (String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), "lists or mappings nested 100000 deep"),
            (String(repeating: "[", count: 100_000), "not valid JSON"),
        ]
        for (text, said) in cases {
            let data = Data(text.utf8)
            let error = try #require(throws: DecodingError.self) { try JSONDecoder().decode(Document.self, from: data) }
            let problem = JSONOutput.problem(error, in: data)
            #expect(problem.hasPrefix(said) && !problem.contains("Array<") && !problem.contains("Dictionary<"), "\(text): \(problem)")
        }
    }
}
