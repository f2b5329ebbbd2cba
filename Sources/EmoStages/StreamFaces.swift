import EmoFeatures
import EmoMedia
import Foundation

/// The face crops of a stream's windows, from its pictures as they arrive.
///
/// The rule: the stream is sampled on one grid of times, a point every W/K seconds at (j + ½)·W/K
/// (W the model's window, K its face frames), and each grid point takes the picture presented nearest
/// to it (the earlier one on a tie). Any window [s, s + W) holds exactly K grid points, so each window
/// gets K pictures spread evenly over its span — the faces stage's rule for a clip (K slots centred in
/// K equal parts) — and overlapping windows share their pictures. A window's K pictures then go through
/// the faces stage's extractor: detection, one smoothed track, missed frames borrowing their neighbours'
/// box, crops. No face in any of them: the window has no faces.
///
/// Memory: only the pictures of grid points that a window still to be scored needs (at most
/// `maximumHeld`; when a stream's video runs ahead of its audio by more, the newer pictures are passed over,
/// so the windows the audio reaches keep theirs, and audio that ends early keeps its last window's), and the last picture;
/// each is detected once (`FaceDetectionMemo`), however many windows share it.
final class StreamFaceSampler {
    let extractor: FaceExtractor
    /// K, W in clock frames, and the clock's seconds per frame.
    let slots: Int, windowFrames: Int, secondsPerFrame: Double
    let rotation: Int
    private var samples: [Int: LiveVideoFrame] = [:]
    private var nextGrid = 0
    private(set) var last: LiveVideoFrame?
    private(set) var picturesSeen = 0
    /// Each held picture is detected once, whichever windows share it.
    private let memo = FaceDetectionMemo()

    /// Enough for the windows that overlap the current one several times over.
    var maximumHeld: Int { 4 * slots }

    init(extractor: FaceExtractor, windowFrames: Int, secondsPerFrame: Double, rotation: Int) {
        self.extractor = extractor
        slots = extractor.parameters.frames
        self.windowFrames = windowFrames
        self.secondsPerFrame = secondsPerFrame
        self.rotation = rotation
    }

    private var spacing: Double { Double(windowFrames) * secondsPerFrame / Double(slots) }

    func gridTime(_ j: Int) -> Double { (Double(j) + 0.5) * spacing }

    /// The first grid point at or after clock frame `start`: the least j with (2j + 1)·W ≥ 2K·start.
    func firstGrid(ofWindowAt start: Int) -> Int {
        let (twiceK, overflow) = (2 * slots).multipliedReportingOverflow(by: start)
        guard !overflow else { return Int.max / 4 }
        let numerator = twiceK - windowFrames
        guard numerator > 0 else { return 0 }
        return (numerator + 2 * windowFrames - 1) / (2 * windowFrames)
    }

    /// A picture, in presentation order: it resolves the grid points up to its time.
    func take(_ picture: LiveVideoFrame) {
        picturesSeen += 1
        let time = picture.time
        guard time.isFinite, time >= 0, time < 1e9 else { return }  // before the clock's start, or nonsense
        // A jump in time (a gap in the stream) resolves at most `maximumHeld` points: the rest are skipped.
        let reached = Int((time / spacing - 0.5).rounded(.down))
        if reached - nextGrid > maximumHeld { nextGrid = reached - maximumHeld }
        while gridTime(nextGrid) <= time {
            let target = gridTime(nextGrid)
            // Every picture held is one a window still to be scored needs (`forget` lets go of the rest).
            if samples.count < maximumHeld {
                samples[nextGrid] = last.map { target - $0.time <= time - target } == true ? last : picture
            }
            nextGrid += 1
        }
        last = picture
    }

    /// The earliest grid point from `first` on that holds a picture, if any.
    func earliestHeldGrid(from first: Int) -> Int? { samples.keys.filter { $0 >= first }.min() }

    /// The clock frame of grid point `j` (rounded down).
    func gridFrame(_ j: Int) -> Double { gridTime(j) / secondsPerFrame }

    /// Whether every grid point of the window starting at `start` has its picture.
    func hasPictures(forWindowAt start: Int) -> Bool {
        nextGrid >= firstGrid(ofWindowAt: start) + slots
    }

    /// Lets go of the pictures before the window starting at `start`.
    func forget(before start: Int) {
        let first = firstGrid(ofWindowAt: start)
        for j in samples.keys where j < first { samples[j] = nil }
        memo.keepOnly(samples.values.map(\.frame) + (last.map { [$0.frame] } ?? []))
    }

    /// The crops of the window starting at `start`, or nil when it has no face (or no picture). After
    /// the stream `ended`, grid points past its last picture take that picture (a stream shorter than a
    /// window repeats its nearest frames, as a short clip does); a point with no picture otherwise
    /// borrows the nearest slot that has one.
    func crops(forWindowAt start: Int, ended: Bool) -> FaceClip? {
        let first = firstGrid(ofWindowAt: start)
        var chosen: [LiveVideoFrame?] = (first..<(first + slots)).map { j in
            samples[j] ?? (ended && j >= nextGrid ? last : nil)
        }
        let present = chosen.indices.filter { chosen[$0] != nil }
        guard !present.isEmpty else { return nil }
        var substituted = [Bool](repeating: false, count: slots)
        for k in chosen.indices where chosen[k] == nil {
            guard let donor = present.min(by: { abs($0 - k) < abs($1 - k) }) else { continue }
            chosen[k] = chosen[donor]
            substituted[k] = true
        }
        let pictures = chosen.compactMap { $0 }
        let video = SampledVideo(frames: pictures.map(\.frame), times: pictures.map(\.time), substituted: substituted,
                                 rotation: rotation, durationSeconds: Double(windowFrames) * secondsPerFrame)
        // No face found (or a picture that cannot be converted): this window is scored without faces.
        return try? extractor.extract(video: video, memo: memo)
    }
}
