// One face track per clip: in each sampled frame the largest, most central detection (preferring the one
// that continues the previous frame's face), boxes smoothed across frames without crossing cuts, and frames
// without a detection borrowing their neighbours' box.
import Foundation

struct TrackedBox {
    var box: Rect
    var raw: Rect?
    var score: Double
    var found: Bool
    var angle: Double
}

enum FaceTrack {
    /// Larger and closer to the centre is better (weights in 0...1 · area).
    static func weight(_ d: Detection, width: Double, height: Double) -> Double {
        let dx = (d.box.centerX - width / 2) / (width / 2), dy = (d.box.centerY - height / 2) / (height / 2)
        let off = min(1, sqrt(dx * dx + dy * dy) / sqrt(2))
        return d.box.area * (1 - 0.5 * off)
    }

    /// `detections[k]`: frame k's detections (upright source pixels). Returns nil when no frame has a face.
    static func build(detections: [[Detection]], times: [Double], width: Double, height: Double,
                      smoothing: Double, angles: [Double?]) -> [TrackedBox]? {
        var chosen: [Detection?] = []
        var previous: Rect? = nil
        for dets in detections {
            let best = dets.max { a, b in
                let wa = weight(a, width: width, height: height) * (1 + (previous.map { a.box.iou($0) } ?? 0))
                let wb = weight(b, width: width, height: height) * (1 + (previous.map { b.box.iou($0) } ?? 0))
                return wa < wb
            }
            chosen.append(best)
            if let best { previous = best.box }
        }
        let foundIdx = chosen.indices.filter { chosen[$0] != nil }
        guard !foundIdx.isEmpty else { return nil }

        // Zero-phase EMA (forward then backward, averaged) over the found boxes, restarted at a jump
        // (consecutive found boxes that barely overlap: a cut, or another person).
        let raw = foundIdx.map { chosen[$0]!.box }
        var smooth = raw
        if smoothing > 0 && raw.count > 1 {
            func vec(_ r: Rect) -> [Double] { [r.centerX, r.centerY, r.width, r.height] }
            func rect(_ v: [Double]) -> Rect { Rect(v[0] - v[2] / 2, v[1] - v[3] / 2, v[0] + v[2] / 2, v[1] + v[3] / 2) }
            var segmentStart = 0
            var segments: [Range<Int>] = []
            for i in 1..<raw.count where raw[i].iou(raw[i - 1]) < 0.3 {
                segments.append(segmentStart..<i); segmentStart = i
            }
            segments.append(segmentStart..<raw.count)
            for seg in segments {
                let vs = seg.map { vec(raw[$0]) }
                var fwd = vs, bwd = vs
                for i in 1..<max(1, vs.count) { fwd[i] = zip(fwd[i - 1], vs[i]).map { smoothing * $0 + (1 - smoothing) * $1 } }
                if vs.count > 1 {
                    for i in stride(from: vs.count - 2, through: 0, by: -1) {
                        bwd[i] = zip(bwd[i + 1], vs[i]).map { smoothing * $0 + (1 - smoothing) * $1 }
                    }
                }
                for (j, i) in seg.enumerated() { smooth[i] = rect(zip(fwd[j], bwd[j]).map { ($0 + $1) / 2 }) }
            }
        }

        var out: [TrackedBox?] = Array(repeating: nil, count: detections.count)
        for (j, i) in foundIdx.enumerated() {
            out[i] = TrackedBox(box: smooth[j], raw: chosen[i]!.box, score: chosen[i]!.score, found: true,
                                angle: angles[i] ?? 0)
        }
        // Misses: interpolate in time between the nearest found frames (or copy the nearest at the ends).
        for k in out.indices where out[k] == nil {
            let before = foundIdx.last { $0 < k }, after = foundIdx.first { $0 > k }
            let box: Rect, angle: Double
            switch (before, after) {
            case let (b?, a?):
                let span = times[a] - times[b]
                let t = span > 0 ? (times[k] - times[b]) / span : 0.5
                let rb = out[b]!.box, ra = out[a]!.box
                box = Rect(rb.x0 + (ra.x0 - rb.x0) * t, rb.y0 + (ra.y0 - rb.y0) * t,
                           rb.x1 + (ra.x1 - rb.x1) * t, rb.y1 + (ra.y1 - rb.y1) * t)
                angle = out[b]!.angle + (out[a]!.angle - out[b]!.angle) * t
            case let (b?, nil): box = out[b]!.box; angle = out[b]!.angle
            case let (nil, a?): box = out[a]!.box; angle = out[a]!.angle
            default: fatalError("unreachable: at least one frame has a face")
            }
            out[k] = TrackedBox(box: box, raw: nil, score: 0, found: false, angle: angle)
        }
        return out.map { $0! }
    }
}
