import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import Testing

@Suite("faces stage", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct FacesStageTests {
    @Test func cachesCropsWithPerFrameFactsAndFailsAClipWithoutAFace() throws {
        let source = try IngestFixture.materialized.get()
        let root = try TestSupport.temporaryFolder("faces") + "/data"
        let actor = root + "/Actor_01"
        try FileManager.default.createDirectory(atPath: actor, withIntermediateDirectories: true)
        let clips = try FileManager.default.contentsOfDirectory(atPath: source + "/Actor_01")
            .filter { $0.hasPrefix("01-") }.sorted().prefix(4)
        for clip in clips { try FileManager.default.copyItem(atPath: source + "/Actor_01/" + clip, toPath: actor + "/" + clip) }
        // FFmpeg's test pattern with a tone: a valid audio-video clip with no face in it.
        let noFace = actor + "/01-01-08-02-02-02-01.mp4"
        try TestSupport.shell("ffmpeg -nostdin -v error -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -f lavfi -i sine=duration=2 -c:v libx264 -c:a aac -shortest '\(noFace)'")
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "faces"], data: root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")

        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let failures = try store.failures(stage: "faces")
        #expect(failures.map(\.subject) == [noFace])
        #expect(failures.first?.reason.lowercased().contains("no face") == true, "\(failures)")

        let first = actor + "/" + clips.first!
        let json = try IngestFixture.emopipe(["cache", "get", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", root,
                                              "--stage", "faces", "--source", first, "--json",
                                              "--npy", workdir + "/faces.npy"], workdir: workdir)
        #expect(json.status == 0, "\(json.stderr)")
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(fields["shape"] as? [Int] == [8, 112, 112, 3])
        #expect(fields["dtype"] as? String == "uint8")
        // `--npy -` writes the same file to stdout (a pipe here), byte for byte.
        _ = try TestSupport.shell("cd '\(workdir)' && '\(TestSupport.emopipe)' cache get '\(TestSupport.repositoryRoot)/manifests/demo.yaml' "
                                  + "--data '\(root)' --stage faces --source '\(first)' --npy - --workdir . | cat > piped.npy")
        #expect(try Data(contentsOf: URL(fileURLWithPath: workdir + "/piped.npy")) == (try Data(contentsOf: URL(fileURLWithPath: workdir + "/faces.npy"))))
        #expect(!FileManager.default.fileExists(atPath: workdir + "/-"))
        let frames = try #require(fields["frames"] as? [[String: Any]])
        #expect(frames.count == 8)
        for frame in frames {
            let box = try #require(frame["box"] as? [Double])
            #expect(box.count == 4 && box[0] < box[2] && box[1] < box[3] && box[2] <= 1280 && box[3] <= 720)
            #expect(frame["found"] as? Bool == true || frame["borrowed"] as? Bool == true)
            #expect(frame["time"] is Double && frame["score"] is Double)
        }
        let npy = try Data(contentsOf: URL(fileURLWithPath: workdir + "/faces.npy"))
        #expect(npy.count > 8 * 112 * 112 * 3)
    }
}
