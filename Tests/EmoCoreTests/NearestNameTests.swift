@testable import EmoCore
import Testing

@Suite("nearest name")
struct NearestNameTests {
    static let trainKeys = ["batch_size", "dropout", "epochs", "learning_rate", "warmup_epochs", "weight_decay", "patience"]

    /// A mistyped name (a letter missing, extra, wrong, or two swapped; in another case) finds the name meant.
    @Test(arguments: [("epoch", "epochs"), ("epochss", "epochs"), ("lerning_rate", "learning_rate"), ("dropuot", "dropout"),
                      ("batchsize", "batch_size"), ("Patience", "patience"), ("warmup_epoch", "warmup_epochs")])
    func aTypoFindsTheNameMeant(typed: String, meant: String) {
        #expect(NearestName.among(Self.trainKeys, to: typed) == meant)
    }

    /// Nothing close, nothing said: a guess from a name that shares little with any would mislead.
    @Test(arguments: ["xyz", "", "e", "modalities", String(repeating: "epochs", count: 20)])
    func aNameFarFromAllFindsNone(typed: String) {
        #expect(NearestName.among(Self.trainKeys, to: typed) == nil)
    }

    /// The distance counts a swap of neighbours as one edit, as a typist makes it.
    @Test func distanceCountsEditsAndSwaps() {
        func d(_ a: String, _ b: String) -> Int { NearestName.distance(Array(a.utf8), Array(b.utf8)) }
        #expect(d("trian", "train") == 1 && d("train", "train") == 0 && d("", "abc") == 3 && d("kitten", "sitting") == 3)
        #expect(NearestName.among(["ingest", "audio", "faces", "split", "train", "evaluate", "export"], to: "trian") == "train")
    }
}
