import EmoTestSupport
import Foundation
import Testing

/// `emopipe faces preview CLIP.mp4 --out sheet.png`, the form `--help` and the README show.
@Suite("faces preview", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasSharedData))
struct FacesPreviewCommandTests {
    static let clip = TestSupport.sharedData + "/av-original/Actor_01/01-01-01-01-01-01-01.mp4"

    @Test func writesAContactSheetForTheClipsGiven() throws {
        let out = try TestSupport.temporaryFolder("preview") + "/sheet.png"
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", Self.clip, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let bytes = try #require(FileManager.default.contents(atPath: out))
        #expect(bytes.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a PNG file")
    }

    @Test func aMissingOutputFolderIsNamedBeforeAnyWork() throws {
        let folder = try TestSupport.temporaryFolder("preview") + "/not-there"
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", Self.clip, "--out", folder + "/p.png"])
        #expect(result.status == 1)
        #expect(result.stderr == "emopipe: \(folder): no such folder to write the contact sheet into\n", "\(result.stderr)")
    }
}
