import Foundation
import Testing
@testable import EmoModel

/// The one policy by which a clip of any length meets a fixed-window model.
@Suite struct WindowPolicyTests {
    @Test func windowsCoverEveryFrameAndEndAtTheClipsEnd() {
        let policy = WindowPolicy(frames: 300, hopFrames: 100)
        #expect(policy.starts(realFrames: 0) == [0])
        #expect(policy.starts(realFrames: 120) == [0])
        #expect(policy.starts(realFrames: 300) == [0])
        #expect(policy.starts(realFrames: 301) == [0, 1])
        #expect(policy.starts(realFrames: 350) == [0, 50])
        #expect(policy.starts(realFrames: 500) == [0, 100, 200])
        #expect(policy.starts(realFrames: 555) == [0, 100, 200, 255])
        for total in [1, 299, 300, 301, 417, 1000, 1234] {
            let starts = policy.starts(realFrames: total)
            #expect(starts.first == 0 && starts == starts.sorted() && Set(starts).count == starts.count)
            let covered = Set(starts.flatMap { $0..<min(total, $0 + policy.frames) })
            #expect(covered.count == total, "\(total) frames")
            #expect(starts.allSatisfy { total <= policy.frames || $0 + policy.frames <= total })
        }
    }

    @Test func aTrainingWindowAlwaysFitsInsideTheClip() {
        let policy = WindowPolicy(frames: 10, hopFrames: 5)
        for draw in [0, 1, 7, 12, UInt64.max] as [UInt64] {
            #expect(policy.randomStart(realFrames: 4, draw: draw) == 0)
            let start = policy.randomStart(realFrames: 25, draw: draw)
            #expect((0...15).contains(start))
        }
        #expect(Set((0..<200).map { policy.randomStart(realFrames: 13, draw: UInt64($0)) }) == [0, 1, 2, 3])
    }

    @Test func aWindowIsTheClipsFramesFromItsStartZeroPaddedPastItsEnd() {
        // 2 bands × 5 frames, value = 10·band + frame.
        let values = (0..<2).flatMap { band in (0..<5).map { Float(10 * band + $0) } }
        let clip = ClipFeatures(id: "c", logmel: values, melFrames: 5, faces: [7], faceMask: [1], label: 3)
        let middle = clip.window(start: 1, frames: 3, nMels: 2)
        #expect(middle.logmel == [1, 2, 3, 11, 12, 13] && middle.realFrames == 3)
        let tail = clip.window(start: 3, frames: 4, nMels: 2)
        #expect(tail.logmel == [3, 4, 0, 0, 13, 14, 0, 0] && tail.realFrames == 2)
        #expect(tail.faces == [7] && tail.faceMask == [1] && tail.label == 3 && tail.id == "c")
        #expect(clip.windows(WindowPolicy(frames: 3, hopFrames: 1), nMels: 2).map(\.logmel!.first!) == [0, 1, 2])
        // A band count other than the model's is never indexed: the window has no speech.
        #expect(clip.window(start: 0, frames: 3, nMels: 3).logmel == nil)
        // A cached tensor padded to 6 frames with 4 real keeps only the real ones.
        let padded = ClipFeatures(id: "p", logmel: [1, 2, 3, 4, -80, -80, 5, 6, 7, 8, -80, -80], stride: 6, real: 4,
                                  nMels: 2, faces: nil, faceMask: [], label: 0)
        #expect(padded.melFrames == 4 && padded.logmel == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func aStretchedWindowResamplesTheClipInTime() {
        // One band, frame t = t: resampling a ramp gives positions exactly.
        let clip = ClipFeatures(id: "r", logmel: (0..<20).map(Float.init), melFrames: 20, faces: nil, faceMask: [], label: 0)
        let faster = clip.stretchedWindow(start: 2, source: 8, frames: 4, nMels: 1)
        #expect(faster.logmel == [2, 4, 6, 8] && faster.realFrames == 4)
        let slower = clip.stretchedWindow(start: 0, source: 3, frames: 6, nMels: 1)
        #expect(slower.logmel == [0, 0.5, 1, 1.5, 2, 2.5] && slower.realFrames == 6)
        // Near the clip's end only positions inside it are real; the rest is padding.
        let tail = clip.stretchedWindow(start: 15, source: 10, frames: 5, nMels: 1)
        #expect(tail.logmel == [15, 17, 19, 0, 0] && tail.realFrames == 3)
        #expect(clip.stretchedWindow(start: 3, source: 5, frames: 5, nMels: 1).logmel == clip.window(start: 3, frames: 5, nMels: 1).logmel)
    }

    @Test func aClipsProbabilitiesAreItsWindowsMeanWhetherScoredAloneOrWithOthers() throws {
        let config = ModelConfig(modalities: [.audio], classes: 3, nMels: 8, frames: 16, audioChannels: [4], embedding: 8)
        let model = EmotionModel(config, seed: 1)
        let clips = (0..<5).map { i in
            let frames = [7, 16, 40, 33, 90][i]
            return ClipFeatures(id: "\(i)", logmel: (0..<(8 * frames)).map { Float(($0 * 37 + i * 11) % 90) - 80 },
                                melFrames: frames, faces: nil, faceMask: [], label: i % 3)
        }
        let standardizer = Standardizer.fit(clips, config: config)
        let inference = Inference(model: model, standardizer: standardizer, batchSize: 2)
        let policy = WindowPolicy(frames: 16, hopFrames: 6)
        let together = try inference.clipProbabilities(clips, policy: policy)
        for (i, clip) in clips.enumerated() {
            #expect(try inference.clipProbabilities([clip], policy: policy) == [together[i]])
            let windows = try inference.probabilities(clip.windows(policy, nMels: 8))
            #expect(windows.count == policy.starts(realFrames: clip.melFrames).count)
            for k in 0..<3 {
                let mean = windows.map { Double($0[k]) }.reduce(0, +) / Double(windows.count)
                #expect(abs(Double(together[i][k]) - mean) < 1e-6)
            }
        }
    }
}
