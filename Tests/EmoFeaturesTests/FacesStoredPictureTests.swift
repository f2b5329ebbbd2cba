// One picture stored several ways gives one set of crops: the colour matrix and range the stream declares,
// its pixel aspect ratio, a size that changes mid-stream, and an edit list that cuts frames. Each clip is
// made by ffmpeg from the shared original, so the crops of the variant are compared with those of a plain copy.
import EmoFeatures
import EmoMedia
import EmoTestSupport
import Foundation
import Testing

@Suite(.enabled(if: Faces.hasData && TestSupport.hasTool("ffmpeg"), "needs ../shared/data/ravdess and ffmpeg"))
struct FacesStoredPictureTests {
    /// The first `seconds` of the original, without sound, re-encoded with `options`.
    static func variant(_ name: String, _ options: String, seconds: Double = 1) throws -> String {
        let path = try TestSupport.temporaryFolder("stored-\(name)") + "/01-01-01-01-01-01-01.mp4"
        try Faces.ffmpeg("-i '\(Faces.original)' -t \(seconds) -an \(options) '\(path)'")
        return path
    }

    /// The original's first second with `first` (ffmpeg output options), then its second second with `second`,
    /// joined end to end without re-encoding: one stream whose pictures change size at 1 s.
    static func joined(_ name: String, first: String, second: String) throws -> String {
        let folder = try TestSupport.temporaryFolder("stored-\(name)")
        let common = "-c:v libx264 -crf 12 -pix_fmt yuv420p -bsf:v h264_mp4toannexb -f mpegts"
        try Faces.ffmpeg("-i '\(Faces.original)' -t 1 -an \(first) \(common) '\(folder)/a.ts'")
        try Faces.ffmpeg("-ss 1 -i '\(Faces.original)' -t 1 -an \(second) \(common) '\(folder)/b.ts'")
        try "file 'a.ts'\nfile 'b.ts'\n".write(toFile: folder + "/list.txt", atomically: true, encoding: .utf8)
        let joined = folder + "/01-01-01-01-01-01-01.mp4"
        try Faces.ffmpeg("-f concat -safe 0 -i '\(folder)/list.txt' -c copy '\(joined)'")
        return joined
    }

    static let plainOptions = "-c:v libx264 -qp 0 -pix_fmt yuv420p -colorspace bt709 -color_primaries bt709 -color_trc bt709"

    /// Per channel, the mean of every crop's values.
    static func channelMeans(_ clip: FaceClip) -> [Double] {
        (0..<3).map { c in
            let values = stride(from: c, to: clip.crops.count, by: 3).map { Double(clip.crops[$0]) }
            return values.reduce(0, +) / Double(values.count)
        }
    }

    static func deviation(_ clip: FaceClip) -> Double {
        let mean = clip.crops.reduce(0.0) { $0 + Double($1) } / Double(clip.crops.count)
        return (clip.crops.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(clip.crops.count)).squareRoot()
    }

    /// A BT.709 picture converted to RGB by ffmpeg (as its tools read the matrix the stream declares) gives the
    /// crops of the YUV picture, within about a level of rounding: read as BT.601, red came out 4.0 levels and
    /// green 3.1 levels apart on average.
    @Test func aBT709PictureGivesTheCropsOfItsRGBCopy() throws {
        let extractor = try FaceExtractor(FaceParameters())
        let yuv = try extractor.extract(path: try Self.variant("bt709", Self.plainOptions))
        let rgb = try extractor.extract(path: try Self.variant("rgb", "-c:v libx264rgb -qp 0 -pix_fmt rgb24"))
        #expect(yuv.frames.map(\.time) == rgb.frames.map(\.time))
        for (c, (a, b)) in zip(Self.channelMeans(yuv), Self.channelMeans(rgb)).enumerated() {
            #expect(abs(a - b) < 1.5, "channel \(c): \(a) from YUV, \(b) from RGB")
        }
    }

    /// A full-range picture not in a `yuvj` format (10-bit HEVC flags its range; there is no yuvj for 10 bits):
    /// read as limited range, its contrast was stretched (the crops' deviation 86.8 against 82.0). The means
    /// stay within the rounding of two range conversions.
    @Test func aFullRangePictureGivesTheCropsOfItsLimitedRangeCopy() throws {
        let extractor = try FaceExtractor(FaceParameters())
        let limited = try extractor.extract(path: try Self.variant("limited", Self.plainOptions))
        let full = try extractor.extract(path: try Self.variant("full",
            "-vf scale=out_range=full,format=yuv420p10le -c:v libx265 -x265-params log-level=error:lossless=1:range=full -pix_fmt yuv420p10le "
            + "-color_range pc -colorspace bt709 -color_primaries bt709 -color_trc bt709"))
        let (a, b) = (Self.deviation(limited), Self.deviation(full))
        #expect(abs(a - b) / a < 0.02, "deviation \(a) limited, \(b) full range")
        for (c, (x, y)) in zip(Self.channelMeans(limited), Self.channelMeans(full)).enumerated() {
            #expect(abs(x - y) < 2.5, "channel \(c): \(x) limited, \(y) full range")
        }
    }

    /// Anamorphic pictures (half as wide, pixels twice as wide) are seen as a player shows them: the clip is
    /// 1280 × 720, its boxes and crops those of the square-pixel copy. Ignored, the face was half as wide and
    /// found in 3 of 8 frames.
    @Test func widePixelsAreShownWide() throws {
        let extractor = try FaceExtractor(FaceParameters())
        let square = try extractor.extract(path: try Self.variant("square", "-c:v libx264 -crf 12 -pix_fmt yuv420p"))
        let wide = try extractor.extract(path: try Self.variant("wide", "-vf scale=640:720,setsar=2 -c:v libx264 -crf 12 -pix_fmt yuv420p"))
        #expect(wide.width == 1280 && wide.height == 720, "\(wide.width) x \(wide.height)")
        #expect(wide.frames.allSatisfy { $0.found }, "\(wide.frames.map(\.found))")
        for k in 0..<8 {
            #expect(Faces.iou(square.frames[k].box, wide.frames[k].box) > 0.8, "frame \(k): \(square.frames[k].box) \(wide.frames[k].box)")
            #expect(Faces.meanAbsDiff(square.crop(k), wide.crop(k)) < 10, "frame \(k)")
        }
    }

    /// Clips joined end to end with different picture sizes: the later pictures are seen at the first size, as
    /// libav's tools scale them. Cropped with the first picture's box coordinates, they showed a corner of the face.
    @Test func aPictureSizeChangedMidStreamIsCroppedWhereTheFaceIs() throws {
        let joined = try Self.joined("joined", first: "", second: "-vf scale=640:360")
        let whole = try Self.variant("whole", "-c:v libx264 -crf 12 -pix_fmt yuv420p", seconds: 2)
        let extractor = try FaceExtractor(FaceParameters())
        let (a, b) = (try extractor.extract(path: whole), try extractor.extract(path: joined))
        #expect(b.width == 1280 && b.height == 720 && b.frames.allSatisfy { $0.found })
        let later = b.frames.indices.filter { b.frames[$0].time >= 1 }
        #expect(later.count >= 3, "\(b.frames.map(\.time))")
        for k in b.frames.indices {
            let nearest = a.frames.indices.min { abs(a.frames[$0].time - b.frames[k].time) < abs(a.frames[$1].time - b.frames[k].time) }!
            #expect(Faces.meanAbsDiff(a.crop(nearest), b.crop(k)) < 12, "frame \(k) at \(b.frames[k].time) s")
        }
    }

    /// A landscape clip joined to a portrait one (a phone turned): the portrait pictures are letterboxed in the
    /// landscape view, as a player shows them. Stretched to it, their face was squeezed to a third of its width and
    /// found in 4 of 8 frames.
    @Test func aPictureTurnedToPortraitMidStreamIsLetterboxedNotStretched() throws {
        let joined = try Self.joined("portrait", first: "-vf scale=640:360", second: "-vf crop=406:720,scale=360:640")
        // The wanted crops: the portrait pictures letterboxed by ffmpeg in the landscape size, as a player shows them.
        let boxed = try Self.variant("portrait-boxed", "-vf crop=406:720,scale=202:360,setsar=1,pad=640:360:219:0 -c:v libx264 -crf 12 -pix_fmt yuv420p", seconds: 2)
        let extractor = try FaceExtractor(FaceParameters())
        let (a, b) = (try extractor.extract(path: boxed), try extractor.extract(path: joined))
        #expect(b.width == 640 && b.height == 360)
        #expect(b.frames.allSatisfy { $0.found }, "\(b.frames.map(\.found))")
        let later = b.frames.indices.filter { b.frames[$0].time >= 1 }
        #expect(later.count >= 3, "\(b.frames.map(\.time))")
        for k in later {
            let nearest = a.frames.indices.min { abs(a.frames[$0].time - b.frames[k].time) < abs(a.frames[$1].time - b.frames[k].time) }!
            #expect(Faces.meanAbsDiff(a.crop(nearest), b.crop(k)) < 12, "frame \(k) at \(b.frames[k].time) s")
        }
    }

    /// A clip trimmed without re-encoding keeps the frames before its cut (to decode from their keyframe), marked
    /// to be discarded: they are not sampled and not counted in its duration. Sampled, they came out of the
    /// decoder as nothing, and most slots repeated one frame.
    @Test func framesAnEditListCutsAreNotSampled() throws {
        let long = try Self.variant("gop", "-c:v libx264 -crf 18 -g 250 -pix_fmt yuv420p", seconds: 3.3)
        let trimmed = try TestSupport.temporaryFolder("stored-trimmed") + "/01-01-01-01-01-01-01.mp4"
        try Faces.ffmpeg("-ss 2 -i '\(long)' -c copy '\(trimmed)'")
        let clip = try FaceExtractor(FaceParameters()).extract(path: trimmed)
        #expect(abs(clip.durationSeconds - 1.3) < 0.1, "\(clip.durationSeconds) s")
        #expect(Set(clip.frames.map(\.time)).count == 8 && clip.frames.allSatisfy { !$0.damaged }, "\(clip.frames.map(\.time))")
    }

    /// A clip whose every frame the edit list cuts (one frame copied out after its cut, or a trim past the pictures)
    /// is taken whole rather than not at all: its frames were fed flagged, the decoder showed none, and the clip failed
    /// as "none of the sampled frames could be decoded".
    @Test func aClipWhoseEveryFrameIsCutIsTakenWhole() throws {
        let folder = try TestSupport.temporaryFolder("stored-all-cut")
        for (name, options) in [("one", "-ss 1 -i '\(Faces.original)' -frames:v 1"), ("past", "-ss 3.32 -i '\(Faces.original)'")] {
            let path = folder + "/\(name)/01-01-01-01-01-01-01.mp4"
            try FileManager.default.createDirectory(atPath: folder + "/" + name, withIntermediateDirectories: true)
            try Faces.ffmpeg("\(options) -an -c copy '\(path)'")
            let clip = try FaceExtractor(FaceParameters()).extract(path: path)
            #expect(clip.foundFraction >= 0.99, "\(name): \(clip.frames.map(\.found))")
        }
    }

    /// A stream's windows share pictures and their detections (`FaceDetectionMemo`): a picture detected in a window
    /// that began at another picture size was seen in that view, and its boxes must not be taken by a window of its own size.
    @Test func aPictureSeenInAnotherViewIsDetectedAgain() throws {
        let narrow = try Self.variant("memo-narrow", "-vf scale=640:360 -c:v libx264 -crf 12 -pix_fmt yuv420p")
        let padded = try Self.variant("memo-padded", "-vf scale=640:360,pad=640:480:0:60 -c:v libx264 -crf 12 -pix_fmt yuv420p")
        let a = try VideoFrameSampler.sample(path: narrow, count: 8, threads: 1, strategy: .minimal)
        let b = try VideoFrameSampler.sample(path: padded, count: 8, threads: 1, strategy: .minimal)
        let mixed = SampledVideo(frames: [a.frames[0]] + b.frames.dropFirst(), times: b.times, substituted: b.substituted,
                                 rotation: 0, durationSeconds: b.durationSeconds)
        let extractor = try FaceExtractor(FaceParameters())
        let memo = FaceDetectionMemo()
        _ = try extractor.extract(video: mixed, memo: memo)
        let remembered = try extractor.extract(video: b, memo: memo)
        let fresh = try extractor.extract(video: b)
        #expect(remembered.frames == fresh.frames && remembered.crops == fresh.crops, "\(remembered.frames.map(\.box)) \(fresh.frames.map(\.box))")
    }
}
