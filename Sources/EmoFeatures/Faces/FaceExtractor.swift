// The face-crop feature: sample K frames, find the face, crop it. Thread-safe: several threads may call
// `extract` at once (each borrows its own dlib detector from a pool; the landmark model is shared).
import EmoMedia
import Foundation

public final class FaceExtractor: @unchecked Sendable {
    public let parameters: FaceParameters
    private let detectors = DetectorPool()
    private let landmarks: LandmarkModel?

    public init(_ p: FaceParameters) throws {
        try p.validate()
        parameters = p
        landmarks = p.align ? try LandmarkModel.shared(path: p.landmarkModel) : nil
        MediaLogging.silenceLibav()
    }

    /// `stop` is polled while the video is read and decoded, and between frames' detections
    /// (`FaceError.media(.stopped)`).
    public func extract(path: String, stop: StopCheck = .never) throws -> FaceClip {
        try extract(path: path, thumbnailWidth: 0, stop: stop)
    }

    /// With `thumbnailWidth` > 0 the clip also carries a thumbnail of its middle sampled frame and that
    /// frame's detections, for `FaceContactSheet`.
    public func extract(path: String, thumbnailWidth: Int, stop: StopCheck = .never) throws -> FaceClip {
        try extract(video: try sampleFrames(path: path, stop: stop), thumbnailWidth: thumbnailWidth, stop: stop, path: path)
    }

    /// The crops of K frames sampled elsewhere (a live stream's): `video` must hold `parameters.frames`
    /// slots, each with its time.
    /// With `memo`, a picture already detected under the same view (size, scale and rotation) is not detected again
    /// (a stream's overlapping windows share pictures).
    public func extract(video: SampledVideo, thumbnailWidth: Int = 0, memo: FaceDetectionMemo? = nil,
                        stop: StopCheck = .never, path: String = "") throws -> FaceClip {
        let p = parameters
        guard video.frames.count == p.frames, video.times.count == p.frames, video.substituted.count == p.frames else {
            throw FaceError.invalidParameters("\(video.frames.count) frames were given for \(p.frames) crops")
        }
        // The clip as a player shows it: its first picture's pixels, widened by their aspect ratio, turned
        // upright. Boxes are in these pixels; every picture is seen at this size (one whose shape changed
        // mid-stream, clips joined end to end, letterboxed in it: `PicturePlacement`).
        let stored = video.frames[0]
        let rotation = video.rotation
        let quarter = rotation % 180 != 0
        let viewW = max(1, Int((Double(stored.width) * stored.pixelAspect).rounded())), viewH = stored.height
        let uprightW = quarter ? viewH : viewW
        let uprightH = quarter ? viewW : viewH

        // Detection on a small upright grayscale copy of each distinct frame.
        let scale = min(1, Double(p.detectWidth) / Double(uprightW))
        // Detections are in this view's pixels: a stream's window that starts at another picture size sees the same
        // picture in another view, and must not take its boxes.
        let view = FaceDetectionMemo.View(width: viewW, height: viewH, scale: scale, rotation: rotation)
        // Where each picture sits in the view: its gray copy, its crop and the thumbnail all use it.
        let placements = video.frames.map { PicturePlacement($0, viewWidth: viewW, viewHeight: viewH) }
        var grays: [ObjectIdentifier: Raster] = [:]
        var detections: [[Detection]] = []
        var detected: [ObjectIdentifier: [Detection]] = [:]
        try detectors.withDetector { detector in
            for (k, frame) in video.frames.enumerated() {
                // A large picture at a large detect_width takes seconds: a stop asked for meanwhile is not kept waiting for the whole clip.
                if stop.isRequested { throw FaceError.media(.stopped(path: path)) }
                let id = ObjectIdentifier(frame)
                if grays[id] == nil {
                    let sw = max(1, Int((Double(viewW) * scale).rounded()))
                    let sh = max(1, Int((Double(viewH) * scale).rounded()))
                    grays[id] = try FaceError.mapping { () throws(MediaError) in
                        try placements[k].picture(width: sw, height: sh, gray: true)
                    }.rotated(clockwise: rotation)
                }
                let gray = grays[id]!
                // A clip shorter than K frames fills several slots with one picture: detected once.
                if let known = detected[id] ?? memo?.detections(frame, view: view) {
                    detections.append(known)
                    continue
                }
                let gx = Double(gray.width) / Double(uprightW), gy = Double(gray.height) / Double(uprightH)
                let found = try detector.detect(gray, upsample: p.upsample, threshold: p.minScore)
                let inSource = found.map { d in
                    Detection(box: Rect(d.box.x0 / gx, d.box.y0 / gy, d.box.x1 / gx, d.box.y1 / gy), score: d.score)
                }
                memo?.remember(frame, view: view, detections: inSource)
                detected[id] = inSource
                detections.append(inSource)
            }
        }
        guard var track = FaceTrack.build(detections: detections, times: video.times, width: Double(uprightW),
                                          height: Double(uprightH), smoothing: p.smoothing,
                                          angles: Array(repeating: nil, count: p.frames)) else {
            throw FaceError.noFaceFound
        }
        if let landmarks {
            try level(&track, video: video, grays: grays, uprightW: uprightW, uprightH: uprightH, model: landmarks)
        }

        // Crops straight from the decoded planes.
        let n = p.size * p.size * 3
        var crops = [UInt8](repeating: 0, count: n * p.frames)
        for (k, frame) in video.frames.enumerated() {
            let box = track[k].box
            let side = max(box.width, box.height) * (1 + 2 * p.margin)
            let aligned = p.align && abs(track[k].angle) > 0.01
            let region = aligned ? side * 1.5 : side  // room for the rotation
            let outSide = aligned ? Int((Double(p.size) * 1.5).rounded()) : p.size
            let upright = Rect(box.centerX - region / 2, box.centerY - region / 2,
                               box.centerX + region / 2, box.centerY + region / 2)
            let rect = placements[k].inPicture(upright.toStored(rotation: rotation, storedWidth: Double(viewW), storedHeight: Double(viewH)))
            var crop = try FaceError.mapping { () throws(MediaError) in
                try frame.crop(x0: rect.x0, y0: rect.y0, x1: rect.x1, y1: rect.y1, outWidth: outSide, outHeight: outSide)
            }.rotated(clockwise: rotation)
            if aligned { crop = FrameConvert.rotateCentre(crop, degrees: track[k].angle, size: p.size) }
            crops.replaceSubrange((k * n)..<((k + 1) * n), with: crop.pixels)
        }

        let frames = (0..<p.frames).map { k in
            FaceFrame(time: video.times[k], box: track[k].box.array, score: track[k].score, found: track[k].found,
                      borrowed: !track[k].found, rawBox: track[k].raw?.array ?? [], angle: track[k].angle,
                      damaged: video.substituted[k] || video.frames[k].damaged)
        }
        var clip = FaceClip(crops: crops, frames: frames, size: p.size, width: uprightW, height: uprightH,
                            durationSeconds: video.durationSeconds)
        clip.rotation = rotation
        clip.truncated = video.truncated
        clip.decode = video.stats
        if thumbnailWidth > 0 {
            let k = p.frames / 2
            let tw = thumbnailWidth
            let ts = Double(tw) / Double(uprightW)
            let th = max(1, Int((Double(uprightH) * ts).rounded()))
            let sw = quarter ? th : tw, sh = quarter ? tw : th
            let thumb = try FaceError.mapping { () throws(MediaError) in
                try placements[k].picture(width: sw, height: sh, gray: false)
            }.rotated(clockwise: rotation)
            clip.thumbnail = FaceThumbnail(width: thumb.width, height: thumb.height, rgb: thumb.pixels, scale: ts,
                                           frameIndex: k, detections: detections[k].map { $0.box.array })
        }
        return clip
    }

    /// The K sampled frames from EmoMedia, its failures named as face errors.
    private func sampleFrames(path: String, stop: StopCheck) throws(FaceError) -> SampledVideo {
        let p = parameters
        return try FaceError.mapping { () throws(MediaError) in
            try VideoFrameSampler.sample(path: path, count: p.frames, threads: p.decodeThreads,
                                         strategy: p.decodeStrategy.videoStrategy, stop: stop)
        }
    }

    /// Eye angles from the 68 landmarks of each found frame; borrowed frames interpolate theirs.
    private func level(_ track: inout [TrackedBox], video: SampledVideo, grays: [ObjectIdentifier: Raster],
                       uprightW: Int, uprightH: Int, model: LandmarkModel) throws {
        var known: [Int] = []
        for k in track.indices where track[k].found {
            let gray = grays[ObjectIdentifier(video.frames[k])]!
            let gx = Double(gray.width) / Double(uprightW), gy = Double(gray.height) / Double(uprightH)
            let pts = try model.landmarks(gray, box: track[k].raw!.scaled(x: gx, y: gy))
            track[k].angle = LandmarkModel.eyeAngle(pts)
            known.append(k)
        }
        for k in track.indices where !track[k].found {
            let b = known.last { $0 < k }, a = known.first { $0 > k }
            switch (b, a) {
            case let (b?, a?): track[k].angle = (track[b].angle + track[a].angle) / 2
            case let (b?, nil): track[k].angle = track[b].angle
            case let (nil, a?): track[k].angle = track[a].angle
            default: break
            }
        }
    }
}

/// Where one picture sits in a clip's view (view pixels, stored orientation): the whole view for a picture of the
/// view's shape, else the largest centred rectangle of its own shape, on black, as a player letterboxes it. Stretched
/// to the view, a portrait picture in a landscape clip squeezed its faces past the detector.
struct PicturePlacement {
    let frame: VideoFrame
    let x: Double, y: Double, width: Double, height: Double
    let viewWidth: Int, viewHeight: Int

    init(_ frame: VideoFrame, viewWidth: Int, viewHeight: Int) {
        self.frame = frame
        (self.viewWidth, self.viewHeight) = (viewWidth, viewHeight)
        let (w, h) = (Double(viewWidth), Double(viewHeight))
        let shape = Double(frame.width) * frame.pixelAspect / Double(max(1, frame.height))
        // Within 1% (the view's width is rounded from the first picture's): the same shape, the whole view.
        if abs(shape / (w / h) - 1) < 0.01 {
            (x, y, width, height) = (0, 0, w, h)
        } else if shape > w / h {
            (width, height) = (w, w / shape)
            (x, y) = (0, (h - height) / 2)
        } else {
            (width, height) = (h * shape, h)
            (x, y) = ((w - width) / 2, 0)
        }
    }

    var isWhole: Bool { x == 0 && y == 0 && width == Double(viewWidth) && height == Double(viewHeight) }

    /// A rectangle of the view in the picture's stored pixels.
    func inPicture(_ r: Rect) -> Rect {
        let sx = Double(frame.width) / width, sy = Double(frame.height) / height
        return Rect((r.x0 - x) * sx, (r.y0 - y) * sy, (r.x1 - x) * sx, (r.y1 - y) * sy)
    }

    /// The view drawn `w` × `h` pixels, gray or RGB: the picture scaled into its place.
    func picture(width w: Int, height h: Int, gray: Bool) throws(MediaError) -> Raster {
        guard !isWhole else { return try frame.scaled(width: w, height: h, gray: gray) }
        let sx = Double(w) / Double(viewWidth), sy = Double(h) / Double(viewHeight)
        let pw = min(w, max(1, Int((width * sx).rounded()))), ph = min(h, max(1, Int((height * sy).rounded())))
        let inner = try frame.scaled(width: pw, height: ph, gray: gray)
        var canvas = Raster(width: w, height: h, channels: inner.channels)
        canvas.paste(inner, x: min(w - pw, max(0, Int((x * sx).rounded()))), y: min(h - ph, max(0, Int((y * sy).rounded()))))
        return canvas
    }
}

extension FaceDecodeStrategy {
    /// EmoMedia's name for the same choice of packets.
    var videoStrategy: VideoDecodeStrategy {
        switch self {
        case .everyFrame: .everyFrame
        case .skipNonReference: .skipNonReference
        case .keyframeSeek: .keyframeSeek
        case .minimal: .minimal
        }
    }
}

/// Detections of pictures already seen, for a caller that hands the same picture to several
/// `extract(video:memo:)` calls. Holds its pictures (so their identities stay theirs) until forgotten.
public final class FaceDetectionMemo {
    /// The view a picture was detected in: the window's shown size, detector scale and rotation.
    struct View: Equatable {
        let width, height: Int
        let scale: Double
        let rotation: Int
    }
    private struct Entry {
        let frame: VideoFrame
        let view: View
        let detections: [Detection]
    }
    private var entries: [ObjectIdentifier: Entry] = [:]

    public init() {}

    public var count: Int { entries.count }

    func detections(_ frame: VideoFrame, view: View) -> [Detection]? {
        guard let entry = entries[ObjectIdentifier(frame)], entry.frame === frame, entry.view == view else { return nil }
        return entry.detections
    }

    func remember(_ frame: VideoFrame, view: View, detections: [Detection]) {
        entries[ObjectIdentifier(frame)] = Entry(frame: frame, view: view, detections: detections)
    }

    /// Forgets every picture but `frames`.
    public func keepOnly(_ frames: [VideoFrame]) {
        let kept = Set(frames.map { ObjectIdentifier($0) })
        entries = entries.filter { kept.contains($0.key) }
    }
}
