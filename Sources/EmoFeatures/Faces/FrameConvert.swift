// Face geometry on decoded pictures: rectangles in upright and stored frame pixels, and the bilinear
// rotation that levels the eyes of a crop. Decoding and pixel-format conversion live in EmoMedia.
import EmoMedia
import Foundation

/// A rectangle x0, y0, x1, y1 (edges, not pixel centres).
struct Rect: Equatable {
    var x0, y0, x1, y1: Double
    var width: Double { x1 - x0 }
    var height: Double { y1 - y0 }
    var centerX: Double { (x0 + x1) / 2 }
    var centerY: Double { (y0 + y1) / 2 }
    var area: Double { max(0, width) * max(0, height) }
    var array: [Double] { [x0, y0, x1, y1] }

    init(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) { self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1 }
    init(_ a: [Double]) { self.init(a[0], a[1], a[2], a[3]) }

    func iou(_ o: Rect) -> Double {
        let inter = Rect(max(x0, o.x0), max(y0, o.y0), min(x1, o.x1), min(y1, o.y1)).area
        let union = area + o.area - inter
        return union > 0 ? inter / union : 0
    }

    func scaled(_ s: Double) -> Rect { scaled(x: s, y: s) }
    func scaled(x sx: Double, y sy: Double) -> Rect { Rect(x0 * sx, y0 * sy, x1 * sx, y1 * sy) }

    /// Maps a rectangle of the upright picture back into the decoded (stored) picture of size w x h.
    func toStored(rotation: Int, storedWidth w: Double, storedHeight h: Double) -> Rect {
        switch rotation {
        case 90: return Rect(y0, h - x1, y1, h - x0)
        case 180: return Rect(w - x1, h - y1, w - x0, h - y0)
        case 270: return Rect(w - y1, x0, w - y0, x1)
        default: return self
        }
    }
}

enum FrameConvert {
    /// Bilinear sample of an RGB raster rotated by `degrees` about its centre into size x size
    /// (the raster's centre square of side size·zoom maps onto the output).
    static func rotateCentre(_ src: Raster, degrees: Double, size: Int) -> Raster {
        var out = Raster(width: size, height: size, channels: 3)
        let theta = degrees * .pi / 180
        let c = cos(theta), s = sin(theta)
        let cx = Double(src.width) / 2, cy = Double(src.height) / 2
        let zoom = Double(src.width) / (Double(size) * 1.5)
        let w = src.width, h = src.height
        src.pixels.withUnsafeBufferPointer { p in
            out.pixels.withUnsafeMutableBufferPointer { o in
                for y in 0..<size {
                    for x in 0..<size {
                        let dx = (Double(x) + 0.5 - Double(size) / 2) * zoom
                        let dy = (Double(y) + 0.5 - Double(size) / 2) * zoom
                        let u = cx + c * dx - s * dy - 0.5
                        let v = cy + s * dx + c * dy - 0.5
                        let x0 = Int(u.rounded(.down)), y0 = Int(v.rounded(.down))
                        let fx = u - Double(x0), fy = v - Double(y0)
                        for k in 0..<3 {
                            func at(_ xx: Int, _ yy: Int) -> Double {
                                let cxx = min(max(xx, 0), w - 1), cyy = min(max(yy, 0), h - 1)
                                return Double(p[(cyy * w + cxx) * 3 + k])
                            }
                            let top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx
                            let bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx
                            let value = top * (1 - fy) + bottom * fy
                            o[(y * size + x) * 3 + k] = UInt8(max(0, min(255, value.rounded())))
                        }
                    }
                }
            }
        }
        return out
    }
}
