// Clips made with ffmpeg in temp folders: no face, rotation metadata, truncation, damage, very short clips,
// variable frame rate; bad inputs and parameters; the contact sheet.
import EmoCore
import EmoFeatures
import EmoMedia
import EmoTestSupport
import Foundation
import Testing

@Suite struct FacesParameterTests {
    @Test func snakeCaseKeysAndDefaults() throws {
        let p = FaceParameters()
        #expect(p.frames == 8 && p.size == 112 && p.margin == 0.25 && !p.align)
        let json = String(data: try JSONEncoder().encode(p), encoding: .utf8)!
        for key in ["\"detect_width\"", "\"min_score\"", "\"decode_threads\"", "\"decode_strategy\""] {
            #expect(json.contains(key))
        }
        let partial = try JSONDecoder().decode(FaceParameters.self, from: Data(#"{"size": 224, "detect_width": 640}"#.utf8))
        #expect(partial.size == 224 && partial.detectWidth == 640 && partial.frames == 8)
        #expect(try JSONDecoder().decode(FaceParameters.self, from: try JSONEncoder().encode(p)) == p)
    }

    @Test func invalidValuesAreRejected() throws {
        for bad in [FaceParameters(frames: 0), FaceParameters(size: 2), FaceParameters(margin: -1),
                    FaceParameters(detectWidth: 10), FaceParameters(upsample: 3), FaceParameters(smoothing: 1),
                    FaceParameters(decodeThreads: 0)] {
            #expect(throws: InvalidParameter.self) { try bad.validate() }
            #expect(throws: InvalidParameter.self) { _ = try FaceExtractor(bad) }
        }
        // A model file that is not there is named before a run that computes faces starts (the runner
        // asks `landmarkModelProblem`); one that is there but is no model fails when dlib loads it.
        #expect(throws: FaceError.self) { _ = try FaceExtractor(FaceParameters(align: true, landmarkModel: "/nonexistent.dat")) }
        let missing = try #require(FaceParameters(align: true, landmarkModel: "/nonexistent.dat").landmarkModelProblem())
        #expect(missing.key == "landmark_model" && missing.allowed.contains("No such file or directory"), "\(missing)")
        #expect(FaceParameters(align: true, landmarkModel: "/tmp").landmarkModelProblem()?.allowed.contains("not a regular file") == true)
        #expect(FaceParameters(align: false, landmarkModel: "/nonexistent.dat").landmarkModelProblem() == nil, "not loaded without align")
        // A readable file that is no dlib model is loaded once by the check, and named.
        #expect(FaceParameters(align: true, landmarkModel: "/etc/hostname").landmarkModelProblem()?.allowed.contains("dlib cannot load it") == true)
        // Without loading (what `status` asks), a readable file passes; an unreadable one is still named.
        #expect(FaceParameters(align: true, landmarkModel: "/etc/hostname").landmarkModelProblem(loading: false) == nil)
        #expect(FaceParameters(align: true, landmarkModel: "/nonexistent.dat").landmarkModelProblem(loading: false) != nil)
        #expect(throws: FaceError.self) { _ = try FaceExtractor(FaceParameters(align: true, landmarkModel: "/etc/hostname")) }
        #expect(FaceError.noFaceFound.description == "No face was found in any sampled frame of the clip.")
    }
}

@Suite(.enabled(if: Faces.hasData, "needs ../shared/data/ravdess"))
struct FacesEdgeCaseTests {
    let extractor = try! FaceExtractor(FaceParameters())

    @Test func testPatternHasNoFace() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        try Faces.ffmpeg("-f lavfi -i testsrc=size=640x360:rate=30:duration=2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p '\(path)'")
        #expect(throws: FaceError.noFaceFound) { _ = try extractor.extract(path: path) }
    }

    @Test func rotatedClipComesOutUpright() throws {
        // Stored sideways (transposed clockwise) with a display matrix that turns it back: FFmpeg 5.1
        // writes `rotate=90` as a matrix a player applies as 270° clockwise.
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        let sideways = dir + "/sideways.mp4"
        try Faces.ffmpeg("-t 0.8 -i '\(Faces.original)' -an -vf transpose=clock -c:v libx264 -preset ultrafast -crf 16 '\(sideways)'")
        try Faces.ffmpeg("-i '\(sideways)' -c copy -metadata:s:v rotate=90 '\(path)'")
        let probe = try TestSupport.shell("ffprobe -v error -select_streams v -show_entries stream=width,height:stream_side_data=rotation -of compact '\(path)'")
        #expect(probe.contains("width=720") && probe.contains("height=1280") && probe.contains("rotation=90"), "\(probe)")

        let p = FaceParameters(frames: 4)
        let clip = try FaceExtractor(p).extract(path: path)
        #expect(clip.rotation == 270 && clip.width == 1280 && clip.height == 720)
        #expect(clip.foundFraction >= 0.99)  // dlib's frontal detector only finds upright faces
        // Same face, same place as in the original clip's first 0.8 s.
        let reference = try TestSupport.temporaryFolder("faces") + "/ref.mp4"
        try Faces.ffmpeg("-t 0.8 -i '\(Faces.original)' -an -c:v libx264 -preset ultrafast -crf 16 '\(reference)'")
        let upright = try FaceExtractor(p).extract(path: reference)
        for k in 0..<4 {
            #expect(Faces.iou(clip.frames[k].box, upright.frames[k].box) > 0.8)
            let same = Faces.meanAbsDiff(clip.crop(k), upright.crop(k))
            let turned = Faces.meanAbsDiff(clip.crop(k), Faces.rotate(upright.crop(k), size: 112, clockwise: 90)[...])
            #expect(same < 15 && same < turned / 2, "frame \(k): diff \(same) upright vs \(turned) turned")
        }
    }

    @Test func truncatedClipIsAnErrorOrFlagged() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        try TestSupport.shell("head -c 1500000 '\(Faces.original)' > '\(path)'")
        let clip = try extractor.extract(path: path)
        #expect(clip.truncated)
        #expect(clip.frames.count == 8 && clip.foundFraction >= 0.99)
        #expect(clip.decode.distinctFrames == 8)
        #expect(clip.durationSeconds < 2.5, "samples spread over the part that exists")
        // Cut inside the header: a clear, typed error.
        let header = dir + "/02-01-01-01-01-01-01.mp4"
        try TestSupport.shell("head -c 20000 '\(Faces.original)' > '\(header)'")
        #expect { _ = try extractor.extract(path: header) } throws: { error in
            guard case FaceError.media(let m) = error else { return false }
            return m.code == "truncated"
        }
    }

    @Test func damagedPacketsDoNotStopDecoding() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        try TestSupport.shell("cp '\(Faces.original)' '\(path)' && chmod u+w '\(path)'")
        // Garbage over 3 spots of the media data (the moov index is at the front).
        for offset in [600_000, 1_500_000, 2_400_000] {
            try TestSupport.shell("head -c 4000 /dev/urandom | dd of='\(path)' bs=1 seek=\(offset) conv=notrunc status=none")
        }
        let clip = try extractor.extract(path: path)
        #expect(clip.frames.count == 8)
        #expect(clip.foundFraction >= 0.75)
    }

    @Test func framesWithoutADetectionBorrowTheirNeighboursBox() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        // The face is painted over from 1.2 s to 2.0 s (samples 3 and 4 of 8 fall there).
        try Faces.ffmpeg("-i '\(Faces.original)' -an -vf \"scale=640:360,drawbox=x=180:y=60:w=280:h=260:color=black:t=fill:enable='between(t,1.2,2.0)'\" -c:v libx264 -preset ultrafast '\(path)'")
        let clip = try extractor.extract(path: path)
        let missed = clip.frames.indices.filter { !clip.frames[$0].found }
        #expect(missed == [3, 4], "missed \(missed)")
        for k in missed {
            let f = clip.frames[k]
            #expect(f.borrowed && f.score == 0 && f.rawBox.isEmpty)
            // Interpolated between the nearest frames that have the face.
            let before = clip.frames[2].box, after = clip.frames[5].box
            for i in 0..<4 { #expect(f.box[i] >= min(before[i], after[i]) - 0.01 && f.box[i] <= max(before[i], after[i]) + 0.01) }
        }
        #expect(clip.frames.filter(\.found).allSatisfy { !$0.borrowed && $0.score > 0 && $0.rawBox.count == 4 })
    }

    @Test func clipShorterThanKFramesRepeatsFrames() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        try Faces.ffmpeg("-i '\(Faces.original)' -an -frames:v 3 -c:v libx264 -preset ultrafast '\(path)'")
        let clip = try extractor.extract(path: path)
        #expect(clip.frames.count == 8 && clip.decode.distinctFrames == 3)
        #expect(Set(clip.frames.map(\.time)).count == 3)
        #expect(clip.foundFraction >= 0.99)
    }

    @Test func oddResolutionsAndPixelFormats() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        // Odd sizes in 4:4:4 (planes addressed directly) and 10-bit 4:2:0 (the full-frame RGB fallback). Square
        // pixels (setsar=1): scaling alone, ffmpeg would keep the 16:9 picture with pixels a little narrow, shown 631 wide.
        for (name, size, format) in [("a", "633:355", "yuv444p"), ("b", "634:356", "yuv420p10le")] {
            let path = dir + "/\(name).mp4"
            try Faces.ffmpeg("-t 1 -i '\(Faces.original)' -an -vf scale=\(size),setsar=1 -pix_fmt \(format) -c:v libx264 -preset ultrafast '\(path)'")
            let clip = try extractor.extract(path: path)
            #expect("\(clip.width):\(clip.height)" == size)
            #expect(clip.foundFraction >= 0.99)
            let mean = Double(clip.crop(0).reduce(0) { $0 + Int($1) }) / Double(112 * 112 * 3)
            #expect(mean > 40 && mean < 200, "\(format): crop mean \(mean)")
        }
    }

    /// FLV and MPEG-PS declare their streams only in their packets: the clip's face is found, as in an mp4
    /// (they were failures "no video stream" while ingest probed the video), and the same crops come out.
    @Test func containersThatDeclareStreamsInTheirPacketsAreSampledToo() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        for (format, codec) in [("flv", "libx264 -preset ultrafast"), ("mpeg", "mpeg2video -q:v 2")] {
            let (mp4, path) = (dir + "/\(format)-01-01-01-01-01-01-01.mp4", dir + "/\(format)-01-01-01-01-01-02-01.mp4")
            try Faces.ffmpeg("-t 1.5 -i '\(Faces.original)' -an -vf scale=640:360 -c:v \(codec) '\(mp4)'")
            try Faces.ffmpeg("-i '\(mp4)' -c copy -f \(format) '\(path)'")
            let (reference, clip) = (try extractor.extract(path: mp4), try extractor.extract(path: path))
            #expect(clip.width == 640 && clip.height == 360 && clip.foundFraction >= 0.99, "\(format)")
            #expect(clip.frames.count == reference.frames.count && clip.frames.indices.allSatisfy {
                Faces.meanAbsDiff(clip.crop($0), reference.crop($0)) < 1 }, "\(format): the frames of the same stream")
        }
    }

    @Test func variableFrameRate() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let path = dir + "/01-01-01-01-01-01-01.mp4"
        // Keep frames 0-29 and then every 4th: the frame rate drops from 30 to 7.5 fps mid-clip.
        try Faces.ffmpeg("-i '\(Faces.original)' -an -vf \"select='lt(n\\,30)+not(mod(n\\,4))',scale=640:360\" -fps_mode vfr -c:v libx264 -preset ultrafast '\(path)'")
        let clip = try extractor.extract(path: path)
        #expect(clip.frames.count == 8 && clip.foundFraction >= 0.99)
        // Evenly spread in time (not in frame count): the later half of the samples lies in the sparse part.
        #expect(clip.frames[4].time > 1.2 && abs(clip.durationSeconds - 3.3) < 0.2)
        #expect(clip.width == 640 && clip.height == 360)
    }

    @Test func notMediaAndNoVideo() throws {
        let dir = try TestSupport.temporaryFolder("faces")
        let text = dir + "/01-01-01-01-01-01-01.mp4"
        try "not a video".write(toFile: text, atomically: true, encoding: .utf8)
        #expect { _ = try extractor.extract(path: text) } throws: { error in
            guard case FaceError.media(let m) = error else { return false }
            return m.code == "not-media"
        }
        let audio = dir + "/03-01-01-01-01-01-01.m4a"
        try Faces.ffmpeg("-f lavfi -i sine=duration=1 -c:a aac '\(audio)'")
        #expect(throws: FaceError.noVideoStream) { _ = try extractor.extract(path: audio) }
        #expect { _ = try extractor.extract(path: dir + "/missing.mp4") } throws: { error in
            guard case FaceError.media(let m) = error else { return false }
            return m.code == "file-not-found"
        }
    }

    @Test func contactSheetIsAPNG() throws {
        let a = try extractor.extract(path: Faces.original, thumbnailWidth: 200)
        let b = try extractor.extract(path: Faces.odd()[0], thumbnailWidth: 200)
        #expect(a.thumbnail?.width == 200 && a.thumbnail?.height == 113)
        let png = try FaceContactSheet.render(clips: [("original", a, a.thumbnail), ("odd", b, b.thumbnail)])
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let path = try TestSupport.temporaryFolder("faces") + "/sheet.png"
        try png.write(to: URL(fileURLWithPath: path))
        let probe = try TestSupport.shell("ffprobe -v error -show_entries stream=codec_name,width,height -of compact '\(path)'")
        #expect(probe.contains("codec_name=png"))
    }
}
