import EmoCore
import Testing

@Suite("RAVDESS file names")
struct RavdessNameTests {
    @Test func parsesEveryCode() throws {
        guard case .source(let codes) = RavdessName.parse(fileName: "01-01-05-02-01-02-12.mp4") else {
            Issue.record("a valid name was rejected"); return
        }
        #expect(codes == RavdessCodes(modality: 1, channel: 1, emotion: 5, intensity: 2, statement: 1, repetition: 2, actor: 12))
        #expect(codes.sourceKind == .mp4)
        #expect(codes.clipID == "01-05-02-01-02-12")
        #expect(!codes.isSong)
    }

    @Test func threeSourcesOfOneClipShareTheClipID() {
        let ids = ["01-01-05-01-02-01-12.mp4", "02-01-05-01-02-01-12.mp4", "03-01-05-01-02-01-12.wav"].map { name -> String? in
            if case .source(let codes) = RavdessName.parse(fileName: name) { return codes.clipID }
            return nil
        }
        #expect(Set(ids).count == 1)
        #expect(ids[0] != nil)
    }

    @Test(arguments: [
        ("00-01-01-01-01-01-01.wav", "modality 00 out of range 01-03"),
        ("04-01-01-01-01-01-01.wav", "modality 04 out of range 01-03"),
        ("03-01-01-01-01-01-01.mp4", "modality 03 (audio-only) must be a .wav file, not .mp4"),
        ("01-01-01-01-01-01-01.wav", "modality 01 (audio-video) must be a .mp4 file, not .wav"),
        ("02-01-01-01-01-01-01.wav", "modality 02 (video-only) must be a .mp4 file, not .wav"),
        ("03-03-01-01-01-01-01.wav", "vocal channel 03 out of range 01-02"),
        ("03-00-01-01-01-01-01.wav", "vocal channel 00 out of range 01-02"),
        ("03-01-09-01-01-01-01.wav", "emotion 09 out of range 01-08"),
        ("03-01-00-01-01-01-01.wav", "emotion 00 out of range 01-08"),
        ("03-02-07-01-01-01-01.wav", "emotion 07 out of range 01-06 for song"),
        ("03-01-02-03-01-01-01.wav", "intensity 03 out of range 01-02"),
        ("03-01-01-02-01-01-01.wav", "intensity 02 (strong) is not used with emotion 01 (neutral)"),
        ("03-01-02-01-03-01-01.wav", "statement 03 out of range 01-02"),
        ("03-01-02-01-01-00-01.wav", "repetition 00 out of range 01-02"),
        ("03-01-02-01-01-03-01.wav", "repetition 03 out of range 01-02"),
        ("03-01-02-01-01-01-00.wav", "actor 00 out of range 01-24"),
        ("03-01-02-01-01-01-25.wav", "actor 25 out of range 01-24"),
    ])
    func rejectsEachInvalidCodeWithItsReason(name: String, reason: String) {
        #expect(RavdessName.parse(fileName: name) == .invalid(reason: reason))
    }

    @Test(arguments: ["01-01-07-02-02-01-01_1.mp4", "readme.txt", "03-01-01-01-01-01.wav", "3-1-1-1-1-1-1.wav",
                      "03-01-01-01-01-01-01-01.wav", "03-01-01-01-01-01-aa.wav", "Makefile", "03-01-01-01-01-01-01.flac"])
    func otherNamesAreNotRavdess(name: String) {
        guard case .notRavdess(let reason) = RavdessName.parse(fileName: name) else {
            Issue.record("\(name) was taken for a RAVDESS name"); return
        }
        #expect(!reason.isEmpty)
    }

    /// Found by `make fuzz`: NSString's path methods ignore a trailing "/", so these parsed as sources.
    @Test(arguments: ["03-01-05-01-02-01-12.wav/", "03-01-05-01-02-01-12.wav//", "Actor_12/03-01-05-01-02-01-12.wav"])
    func aPathIsNotAFileName(name: String) {
        #expect(RavdessName.parse(fileName: name) == .notRavdess(reason: "a file name has no \"/\" in it"))
    }

    @Test func extensionCaseDoesNotMatter() {
        if case .source = RavdessName.parse(fileName: "03-01-01-01-01-01-01.WAV") {} else {
            Issue.record("upper-case extension rejected")
        }
    }

    @Test func songAllowsSixEmotions() {
        for emotion in 1...6 {
            let name = String(format: "03-02-%02d-01-01-01-01.wav", emotion)
            if case .source(let codes) = RavdessName.parse(fileName: name) { #expect(codes.isSong) }
            else { Issue.record("\(name) rejected") }
        }
    }
}

@Suite("label maps")
struct LabelMapTests {
    @Test func eightClassesFollowTheEmotionCodes() throws {
        let map = try LabelMap(named: "ravdess8")
        #expect(map.count == 8)
        for emotion in Emotion.allCases { #expect(map.labels[map.classIndex(emotion: emotion.rawValue)!] == emotion.name) }
    }

    @Test func sevenClassesMergeCalmIntoNeutral() throws {
        let map = try LabelMap(named: "ravdess7")
        #expect(map.count == 7)
        #expect(!map.labels.contains("calm"))
        #expect(map.classIndex(emotion: Emotion.calm.rawValue) == map.classIndex(emotion: Emotion.neutral.rawValue))
        let indices = Emotion.allCases.compactMap { map.classIndex(emotion: $0.rawValue) }
        #expect(Set(indices) == Set(0..<7))
    }

    @Test func unknownMapIsAnError() {
        #expect(throws: EmoError.self) { try LabelMap(named: "ravdess9") }
    }
}
