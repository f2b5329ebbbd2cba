// libswscale conversions of the sampled frames only: a small grayscale copy for the detector, square
// RGB crops straight from the decoder's planes (no full-frame RGB copy), thumbnails; and the exact
// 90°-step rotations that make a rotated clip upright.
import CFFmpeg
import Foundation

/// An 8-bit image, row-major, tightly packed: 1 channel (gray) or 3 (RGB).
struct Raster {
    var width: Int
    var height: Int
    var channels: Int
    var pixels: [UInt8]

    init(width: Int, height: Int, channels: Int, pixels: [UInt8]? = nil) {
        self.width = width; self.height = height; self.channels = channels
        self.pixels = pixels ?? [UInt8](repeating: 0, count: width * height * channels)
    }

    /// Turns the picture clockwise by 0, 90, 180 or 270 degrees (exact pixel moves).
    func rotated(clockwise degrees: Int) -> Raster {
        guard degrees % 360 != 0 else { return self }
        let c = channels, w = width, h = height
        let quarter = degrees % 180 != 0
        var out = Raster(width: quarter ? h : w, height: quarter ? w : h, channels: c)
        let ow = out.width, oh = out.height
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let sx: Int, sy: Int
                        switch degrees {
                        case 90: sx = y; sy = h - 1 - x
                        case 180: sx = w - 1 - x; sy = h - 1 - y
                        default: sx = w - 1 - y; sy = x  // 270
                        }
                        let s = (sy * w + sx) * c, d = (y * ow + x) * c
                        for k in 0..<c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return out
    }
}

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

    func scaled(_ s: Double) -> Rect { Rect(x0 * s, y0 * s, x1 * s, y1 * s) }

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
    static let flags = SWS_AREA | SWS_ACCURATE_RND

    /// The whole frame scaled to w x h in `format` (GRAY8 or RGB24), stored orientation.
    static func scaled(_ frame: DecodedFrame, width w: Int, height h: Int, gray: Bool) throws -> Raster {
        let f = frame.frame.pointee
        let dstFormat = gray ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24
        guard let sws = sws_getContext(f.width, f.height, AVPixelFormat(rawValue: f.format), Int32(w), Int32(h),
                                       dstFormat, flags, nil, nil, nil) else {
            throw FaceError.decodeFailed("libswscale cannot convert the frame's pixel format")
        }
        defer { sws_freeContext(sws) }
        var out = Raster(width: w, height: h, channels: gray ? 1 : 3)
        let stride = Int32(w * out.channels)
        withSourcePlanes(frame) { src, srcStride in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                var dstPlanes: [UnsafeMutablePointer<UInt8>?] = [dst.baseAddress, nil, nil, nil]
                var dstStrides: [Int32] = [stride, 0, 0, 0]
                _ = sws_scale(sws, src, srcStride, 0, f.height, &dstPlanes, &dstStrides)
            }
        }
        return out
    }

    private static func withSourcePlanes<T>(_ frame: DecodedFrame,
                                            _ body: ([UnsafePointer<UInt8>?], [Int32]) -> T) -> T {
        let f = frame.frame.pointee
        let planes: [UnsafePointer<UInt8>?] = [f.data.0, f.data.1, f.data.2, f.data.3].map { $0.map { UnsafePointer($0) } }
        let strides = [f.linesize.0, f.linesize.1, f.linesize.2, f.linesize.3]
        return body(planes, strides)
    }

    /// Whether crops can address the frame's planes directly (8-bit planar formats such as yuv420p).
    static func planar8(_ frame: DecodedFrame) -> (shiftW: Int, shiftH: Int)? {
        guard let d = av_pix_fmt_desc_get(AVPixelFormat(rawValue: frame.frame.pointee.format))?.pointee else { return nil }
        let unsupported = UInt64(AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM
                                 | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER)
        guard d.flags & UInt64(AV_PIX_FMT_FLAG_PLANAR) != 0, d.flags & unsupported == 0 else { return nil }
        let comps = [d.comp.0, d.comp.1, d.comp.2, d.comp.3].prefix(Int(d.nb_components))
        guard comps.allSatisfy({ $0.depth == 8 && $0.step == 1 && $0.offset == 0 && $0.shift == 0 }) else { return nil }
        // Each component in its own plane (rules out nv12's shared chroma plane).
        guard Set(comps.map(\.plane)).count == comps.count else { return nil }
        return (Int(d.log2_chroma_w), Int(d.log2_chroma_h))
    }

    /// The rectangle `rect` of the stored frame (may reach outside it: the outside is black) scaled to
    /// outW x outH RGB24. Converts only the pixels inside the rectangle.
    static func crop(_ frame: DecodedFrame, rect: Rect, outWidth ow: Int, outHeight oh: Int,
                     fallbackRGB: inout Raster?) throws -> Raster {
        var out = Raster(width: ow, height: oh, channels: 3)
        let fw = frame.width, fh = frame.height
        guard rect.width > 0, rect.height > 0 else { return out }
        let layout = planar8(frame)
        let alignX = layout.map { 1 << $0.shiftW } ?? 1, alignY = layout.map { 1 << $0.shiftH } ?? 1
        var ix0 = max(0, Int(rect.x0.rounded(.down))), iy0 = max(0, Int(rect.y0.rounded(.down)))
        ix0 -= ix0 % alignX; iy0 -= iy0 % alignY
        let ix1 = min(fw, Int(rect.x1.rounded(.up))), iy1 = min(fh, Int(rect.y1.rounded(.up)))
        guard ix1 > ix0, iy1 > iy0 else { return out }
        let sx = Double(ow) / rect.width, sy = Double(oh) / rect.height
        let dx0 = max(0, min(ow, Int(((Double(ix0) - rect.x0) * sx).rounded())))
        let dx1 = max(0, min(ow, Int(((Double(ix1) - rect.x0) * sx).rounded())))
        let dy0 = max(0, min(oh, Int(((Double(iy0) - rect.y0) * sy).rounded())))
        let dy1 = max(0, min(oh, Int(((Double(iy1) - rect.y0) * sy).rounded())))
        guard dx1 > dx0, dy1 > dy0 else { return out }

        var planes: [UnsafePointer<UInt8>?] = [nil, nil, nil, nil]
        var strides: [Int32] = [0, 0, 0, 0]
        var srcFormat: AVPixelFormat
        var keepAlive: Raster? = nil
        if let layout {
            let f = frame.frame.pointee
            let data = [f.data.0, f.data.1, f.data.2, f.data.3]
            let lines = [f.linesize.0, f.linesize.1, f.linesize.2, f.linesize.3]
            for p in 0..<4 {
                guard let base = data[p] else { continue }
                let chroma = p == 1 || p == 2
                let x = chroma ? ix0 >> layout.shiftW : ix0
                let y = chroma ? iy0 >> layout.shiftH : iy0
                planes[p] = UnsafePointer(base + y * Int(lines[p]) + x)
                strides[p] = lines[p]
            }
            srcFormat = AVPixelFormat(rawValue: f.format)
        } else {
            // Other formats (10-bit, semi-planar...): one full RGB conversion per frame, then crop from it.
            if fallbackRGB == nil { fallbackRGB = try scaled(frame, width: fw, height: fh, gray: false) }
            keepAlive = fallbackRGB
            srcFormat = AV_PIX_FMT_RGB24
            strides[0] = Int32(fw * 3)
        }
        guard let sws = sws_getContext(Int32(ix1 - ix0), Int32(iy1 - iy0), srcFormat, Int32(dx1 - dx0),
                                       Int32(dy1 - dy0), AV_PIX_FMT_RGB24, flags, nil, nil, nil) else {
            throw FaceError.decodeFailed("libswscale cannot convert the frame's pixel format")
        }
        defer { sws_freeContext(sws) }
        func run(_ srcPlanes: [UnsafePointer<UInt8>?]) {
            out.pixels.withUnsafeMutableBufferPointer { dst in
                var dstPlanes: [UnsafeMutablePointer<UInt8>?] = [dst.baseAddress! + (dy0 * ow + dx0) * 3, nil, nil, nil]
                var dstStrides: [Int32] = [Int32(ow * 3), 0, 0, 0]
                _ = sws_scale(sws, srcPlanes, strides, 0, Int32(iy1 - iy0), &dstPlanes, &dstStrides)
            }
        }
        if let rgb = keepAlive {
            rgb.pixels.withUnsafeBufferPointer { buf in
                run([UnsafePointer(buf.baseAddress! + (iy0 * fw + ix0) * 3), nil, nil, nil])
            }
        } else {
            run(planes)
        }
        return out
    }

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
