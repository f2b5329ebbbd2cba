import EmoModel
@testable import EmoStages
import Testing

/// Training warns when its window would be mostly padding for the clips it is given.
@Suite("training window")
struct TrainWindowTests {
    static func clip(frames: Int) -> ClipFeatures {
        ClipFeatures(id: "c\(frames)", logmel: [Float](repeating: 0, count: 4 * frames), melFrames: frames, faces: nil, faceMask: [], label: 0)
    }

    @Test func aWindowMostlyOfPaddingIsSaid() {
        // audio.hop_length 16000 at 16 kHz: a 4 s clip is 4 frames, against the 300-frame window.
        let short = [4, 5, 4, 6, 3].map(Self.clip)
        #expect(TrainStage.mostlyPadding(short, windowFrames: 300)
                == "the median clip has 4 log-mel frames, a quarter or less of train.window_frames (300): most of every window is padding "
                + "(a longer audio.hop_length than meant, audio.trim_db or audio.frames cutting the clips short, or a shorter window fits these clips)")
        // RAVDESS clips at the speech preset: about 350 frames, more than the window.
        #expect(TrainStage.mostlyPadding([340, 355, 372].map(Self.clip), windowFrames: 300) == nil)
        #expect(TrainStage.mostlyPadding([75, 75, 75].map(Self.clip), windowFrames: 300) != nil)
        #expect(TrainStage.mostlyPadding([76, 76, 76].map(Self.clip), windowFrames: 300) == nil)
        #expect(TrainStage.mostlyPadding([], windowFrames: 300) == nil, "faces only: no log-mel to pad")
    }
}
