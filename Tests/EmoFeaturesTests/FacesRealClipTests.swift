// Face crops on the shared real clips: detection rate, agreement with an independent detector (OpenCV's
// Haar cascade, committed fixture), determinism across decoder threads and decode strategies.
import EmoFeatures
import EmoTestSupport
import Foundation
import Testing

@Suite(.enabled(if: Faces.hasData, "needs ../shared/data/ravdess"))
struct FacesRealClipTests {
    @Test func originalClipHasAFaceInEveryFrameAgreeingWithHaar() throws {
        let clip = try FaceExtractor(FaceParameters()).extract(path: Faces.original)
        #expect(clip.frames.count == 8)
        #expect(clip.crops.count == 8 * 112 * 112 * 3)
        #expect(clip.width == 1280 && clip.height == 720 && clip.rotation == 0 && !clip.truncated)
        #expect(abs(clip.durationSeconds - 3.3) < 0.1)
        #expect(clip.foundFraction >= 0.99)
        #expect(zip(clip.frames, clip.frames.dropFirst()).allSatisfy { $0.time < $1.time })
        // Fewer packets than the clip has: keyframe seeking and dropped non-reference pictures.
        #expect(clip.decode.packetsDecoded < clip.decode.packets)
        let ious = Faces.haarIoUs(clip, name: "01-01-01-01-01-01-01.mp4")
        #expect(ious.count == 8 && ious.allSatisfy { $0 != nil }, "fixture covers every sampled frame")
        for (k, v) in ious.enumerated() { #expect((v ?? 0) >= 0.5, "frame \(k): IoU with Haar \(v ?? -1)") }
        // The crop is a face, not background: the studio wall is near white.
        let mean = Double(clip.crop(0).reduce(0) { $0 + Int($1) }) / Double(112 * 112 * 3)
        #expect(mean < 200)
    }

    @Test func derivedClipsOfActors01And02() throws {
        // Every 6th derived clip keeps the test fast (all 119 run in emoface-bench with the same fixture).
        let all = Faces.derived()
        #expect(all.count >= 100)
        let clips = stride(from: 0, to: all.count, by: 6).map { all[$0] }
        let extractor = try FaceExtractor(FaceParameters())
        let results = Faces.parallel(clips) { path in Result { try extractor.extract(path: path) } }
        var frames = 0, found = 0, compared = 0
        for (path, result) in zip(clips, results) {
            let clip = try result.get()
            frames += clip.frames.count
            found += clip.frames.filter(\.found).count
            for (k, v) in Faces.haarIoUs(clip, name: (path as NSString).lastPathComponent).enumerated() {
                guard let v else { continue }
                compared += 1
                #expect(v >= 0.5, "\(path) frame \(k): IoU with Haar \(v)")
            }
        }
        #expect(Double(found) / Double(frames) >= 0.99, "faces in \(found) of \(frames) frames")
        #expect(compared >= frames * 9 / 10, "Haar boxes matched \(compared) of \(frames) frames")
    }

    @Test func oddLetterboxedReencodes() throws {
        let clips = Faces.odd()
        #expect(clips.count == 4)
        let extractor = try FaceExtractor(FaceParameters())
        let results = Faces.parallel(clips) { path in Result { try extractor.extract(path: path) } }
        var frames = 0, found = 0
        for (path, result) in zip(clips, results) {
            let clip = try result.get()
            #expect(clip.width == 640 && clip.height == 480)
            frames += clip.frames.count
            found += clip.frames.filter(\.found).count
            for f in clip.frames where f.found {
                // Letterboxed: the face lies inside the picture band (bars are ~60 px top and bottom).
                #expect(f.box[1] > 50 && f.box[3] < 430, "\(path): box \(f.box)")
            }
            for (k, v) in Faces.haarIoUs(clip, name: (path as NSString).lastPathComponent).enumerated() {
                guard let v else { continue }
                #expect(v >= 0.5, "\(path) frame \(k): IoU with Haar \(v)")
            }
        }
        #expect(Double(found) / Double(frames) >= 0.99, "faces in \(found) of \(frames) frames")
    }

    @Test func identicalBytesWhateverTheThreadsAndDecodeStrategy() throws {
        var p = FaceParameters()
        let reference = try FaceExtractor(p).extract(path: Faces.original)
        for (threads, strategy) in [(1, FaceDecodeStrategy.minimal), (3, .minimal), (2, .everyFrame),
                                    (1, .skipNonReference), (2, .keyframeSeek)] {
            p.decodeThreads = threads
            p.decodeStrategy = strategy
            let clip = try FaceExtractor(p).extract(path: Faces.original)
            #expect(clip.crops == reference.crops, "threads \(threads), \(strategy)")
            #expect(clip.frames == reference.frames, "threads \(threads), \(strategy)")
        }
    }

    /// A palettised clip (pal8 rawvideo in MOV): its palette comes once, as side data of the first packet, so a
    /// strategy that skips that packet decoded the sampled frames without it (no face found, where every_frame found
    /// one in each). Every strategy gives the bytes every_frame gives.
    @Test(.enabled(if: TestSupport.hasTool("ffmpeg"), "needs ffmpeg"))
    func aPalettisedClipGivesTheSameBytesWhateverTheDecodeStrategy() throws {
        let clip = try TestSupport.temporaryFolder("palette") + "/01-01-01-01-01-01-01.mp4"
        try TestSupport.shell("ffmpeg -v error -i '\(Faces.original)' -t 1.5 -an -vf 'scale=320:-2,split[a][b];[a]palettegen[p];[b][p]paletteuse' "
                              + "-c:v rawvideo -f mov '\(clip)'")
        var p = FaceParameters()
        p.decodeStrategy = .everyFrame
        let reference = try FaceExtractor(p).extract(path: clip)
        #expect(reference.frames.filter(\.found).count >= 6, "faces found decoding every frame: \(reference.frames)")
        for strategy in [FaceDecodeStrategy.minimal, .keyframeSeek, .skipNonReference] {
            p.decodeStrategy = strategy
            let sampled = try FaceExtractor(p).extract(path: clip)
            #expect(sampled.crops == reference.crops && sampled.frames == reference.frames, "\(strategy)")
        }
    }

    @Test func twoThreadsShareOneExtractor() throws {
        let clips = Array(Faces.derived().prefix(3))
        let extractor = try FaceExtractor(FaceParameters())
        let sequential = try clips.map { try extractor.extract(path: $0).crops }
        let concurrent = Faces.parallel(clips + clips, threads: 2) { try? extractor.extract(path: $0).crops }
        for (i, c) in concurrent.enumerated() { #expect(c == sequential[i % clips.count]) }
    }

    @Test func alignmentLevelsTheEyes() throws {
        var p = FaceParameters()
        p.align = true
        let clip = try FaceExtractor(p).extract(path: Faces.original)
        #expect(clip.foundFraction >= 0.99)
        #expect(clip.frames.allSatisfy { $0.angle.isFinite && abs($0.angle) < 20 })
        #expect(clip.crops.count == 8 * 112 * 112 * 3)
    }

    @Test func sizeAndFramesParameters() throws {
        let p = FaceParameters(frames: 3, size: 224, margin: 0.4)
        let clip = try FaceExtractor(p).extract(path: Faces.original)
        #expect(clip.frames.count == 3 && clip.size == 224 && clip.crops.count == 3 * 224 * 224 * 3)
    }
}
