// One decoded video frame and the libswscale conversions made from it: a scaled copy of the whole frame
// (grayscale for a detector, RGB for a thumbnail) and rectangular RGB crops straight from the decoder's
// planes (no full-frame RGB copy), in the frame's stored orientation.
import CFFmpeg
import Foundation

/// A decoded frame kept as a reference-counted AVFrame; freed when the value goes away.
public final class VideoFrame: @unchecked Sendable {
    let frame: UnsafeMutablePointer<AVFrame>
    /// The file it came from, for error messages.
    public let path: String
    /// The decoder reported damage in this frame.
    public let damaged: Bool
    /// Width over height of one stored pixel as a player shows it (anamorphic video stores wide or narrow
    /// pixels): the container's ratio, else the picture's own, else square.
    public let pixelAspect: Double
    /// For pixel formats crops cannot address directly: the whole frame in RGB24, made on first use.
    private var fullRGB: Raster?
    private let lock = NSLock()

    init(frame: UnsafeMutablePointer<AVFrame>, path: String, damaged: Bool, containerAspect: AVRational) {
        self.frame = frame
        self.path = path
        self.damaged = damaged
        pixelAspect = Self.pixelAspect(container: containerAspect, picture: frame.pointee.sample_aspect_ratio)
    }

    /// The first valid ratio of the two; beyond 1:10 to 10:1 it is taken as square: no camera or format stores
    /// such pixels, and a picture shown 100 times wider would leave the face detector a strip.
    static func pixelAspect(container: AVRational, picture: AVRational) -> Double {
        for ratio in [container, picture] where ratio.num > 0 && ratio.den > 0 {
            let value = Double(ratio.num) / Double(ratio.den)
            return (0.1...10).contains(value) ? value : 1
        }
        return 1
    }

    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&f)
    }

    /// Stored size (before any display rotation).
    public var width: Int { Int(frame.pointee.width) }
    public var height: Int { Int(frame.pointee.height) }

    /// Area averaging with accurate rounding: deterministic, and the right filter for shrinking.
    static let scaleFlags = SWS_AREA | SWS_ACCURATE_RND

    /// The whole frame scaled to `w` x `h`, GRAY8 or RGB24, stored orientation.
    public func scaled(width w: Int, height h: Int, gray: Bool) throws(MediaError) -> Raster {
        let f = frame.pointee
        let dstFormat = gray ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24
        guard w > 0, h > 0,
              let sws = converter(width: f.width, height: f.height, format: AVPixelFormat(rawValue: f.format),
                                  outWidth: Int32(w), outHeight: Int32(h), outFormat: dstFormat) else {
            throw .videoDecodeFailed(path: path, reason: "libswscale cannot convert the frame's pixel format")
        }
        defer { sws_freeContext(sws) }
        var out = Raster(width: w, height: h, channels: gray ? 1 : 3)
        let planes: [UnsafePointer<UInt8>?] = [f.data.0, f.data.1, f.data.2, f.data.3].map { $0.map { UnsafePointer($0) } }
        let strides = [f.linesize.0, f.linesize.1, f.linesize.2, f.linesize.3]
        try out.pixels.withUnsafeMutableBufferPointer { (dst) throws(MediaError) in
            guard let base = dst.baseAddress else { return }
            try Self.scale(sws, planes: planes, strides: strides, sourceRows: f.height, into: base, rows: h,
                           rowBytes: w * out.channels, stride: w * out.channels, path: path)
        }
        return out
    }

    /// A libswscale context from `format` (this frame's colour matrix and range) to `outFormat`. Told
    /// nothing, libswscale reads YUV as BT.601 limited range: RAVDESS's BT.709 pictures came out a few
    /// levels low in red and green, and a full-range picture not in a `yuvj` format with stretched contrast,
    /// so one picture stored two ways gave two crops. Unspecified matrices stay BT.601, as in libav's tools.
    func converter(width: Int32, height: Int32, format: AVPixelFormat, outWidth: Int32, outHeight: Int32,
                   outFormat: AVPixelFormat) -> OpaquePointer? {
        Self.converter(colorsOf: frame.pointee, width: width, height: height, format: format,
                       outWidth: outWidth, outHeight: outHeight, outFormat: outFormat)
    }

    /// The same, for the whole of `picture`.
    static func converter(_ picture: UnsafeMutablePointer<AVFrame>, outWidth: Int32, outHeight: Int32,
                          outFormat: AVPixelFormat) -> OpaquePointer? {
        let f = picture.pointee
        return converter(colorsOf: f, width: f.width, height: f.height, format: AVPixelFormat(rawValue: f.format),
                         outWidth: outWidth, outHeight: outHeight, outFormat: outFormat)
    }

    private static func converter(colorsOf f: AVFrame, width: Int32, height: Int32, format: AVPixelFormat,
                                  outWidth: Int32, outHeight: Int32, outFormat: AVPixelFormat) -> OpaquePointer? {
        guard let sws = sws_getContext(width, height, format, outWidth, outHeight, outFormat, scaleFlags, nil, nil, nil) else {
            return nil
        }
        guard let d = av_pix_fmt_desc_get(format)?.pointee, d.nb_components >= 3,
              d.flags & UInt64(AV_PIX_FMT_FLAG_RGB) == 0 else { return sws }
        var sourceTable: UnsafeMutablePointer<Int32>?, outTable: UnsafeMutablePointer<Int32>?
        var sourceFull: Int32 = 0, outFull: Int32 = 0, brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
        guard sws_getColorspaceDetails(sws, &sourceTable, &sourceFull, &outTable, &outFull,
                                       &brightness, &contrast, &saturation) >= 0, let outTable else { return sws }
        // A yuvj format is full range whatever the frame says (libswscale set that already).
        let full: Int32 = sourceFull != 0 || f.color_range == AVCOL_RANGE_JPEG ? 1 : 0
        _ = sws_setColorspaceDetails(sws, sws_getCoefficients(Int32(f.colorspace.rawValue)), full, outTable, outFull,
                                     brightness, contrast, saturation)
        return sws
    }

    /// `sws_scale` into `rows` rows of `rowBytes` bytes at `destination` (`stride` apart), through a buffer whose rows
    /// are padded to whole 64-byte blocks with one block spare and rows spare after the last: libswscale's vector
    /// code writes whole blocks, past the end of a narrow row (a 2-pixel-wide picture written into a tight buffer
    /// corrupted the heap).
    static func scale(_ sws: OpaquePointer, planes: [UnsafePointer<UInt8>?], strides: [Int32], sourceRows: Int32,
                      into destination: UnsafeMutablePointer<UInt8>, rows: Int, rowBytes: Int, stride: Int,
                      path: String) throws(MediaError) {
        let block = 64
        let padded = (rowBytes + block - 1) / block * block + block
        guard rows > 0, rowBytes > 0, let buffer = av_malloc(padded * (rows + 2)) else {
            if rows > 0 && rowBytes > 0 { throw .videoDecodeFailed(path: path, reason: "no memory to convert a frame of \(rowBytes) x \(rows) bytes") }
            return
        }
        defer { av_free(buffer) }
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        var dstPlanes: [UnsafeMutablePointer<UInt8>?] = [bytes, nil, nil, nil]
        var dstStrides: [Int32] = [Int32(padded), 0, 0, 0]
        let written = Int(sws_scale(sws, planes, strides, 0, sourceRows, &dstPlanes, &dstStrides))
        for row in 0..<min(max(written, 0), rows) {
            (destination + row * stride).update(from: bytes + row * padded, count: rowBytes)
        }
    }

    /// Chroma subsampling shifts when crops can address the frame's planes directly (8-bit planar
    /// formats such as yuv420p), nil otherwise.
    var planar8Layout: (shiftW: Int, shiftH: Int)? { Self.planar8Layout(format: frame.pointee.format) }

    static func planar8Layout(format: Int32) -> (shiftW: Int, shiftH: Int)? {
        guard let d = av_pix_fmt_desc_get(AVPixelFormat(rawValue: format))?.pointee else { return nil }
        let unsupported = UInt64(AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM
                                 | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER)
        guard d.flags & UInt64(AV_PIX_FMT_FLAG_PLANAR) != 0, d.flags & unsupported == 0 else { return nil }
        let comps = [d.comp.0, d.comp.1, d.comp.2, d.comp.3].prefix(Int(d.nb_components))
        guard comps.allSatisfy({ $0.depth == 8 && $0.step == 1 && $0.offset == 0 && $0.shift == 0 }) else { return nil }
        // Each component in its own plane (rules out nv12's shared chroma plane).
        guard Set(comps.map(\.plane)).count == comps.count else { return nil }
        return (Int(d.log2_chroma_w), Int(d.log2_chroma_h))
    }

    /// The rectangle x0, y0, x1, y1 (edges, stored-frame pixels; it may reach outside the frame, and the
    /// outside is black) scaled to `ow` x `oh` RGB24. Converts only the pixels inside the rectangle.
    public func crop(x0: Double, y0: Double, x1: Double, y1: Double,
                     outWidth ow: Int, outHeight oh: Int) throws(MediaError) -> Raster {
        var out = Raster(width: ow, height: oh, channels: 3)
        guard let span = CropSpan(frame: self, x0: x0, y0: y0, x1: x1, y1: y1, outWidth: ow, outHeight: oh) else {
            return out
        }
        if let layout = planar8Layout {
            let source = planeWindow(layout, x: span.ix0, y: span.iy0)
            try span.scale(self, from: source.planes, strides: source.strides,
                           format: AVPixelFormat(rawValue: frame.pointee.format), into: &out, path: path)
        } else {
            // Other formats (10-bit, semi-planar...): one full RGB conversion per frame, then crop from it.
            let rgb = try wholeFrameRGB()
            let offset = (span.iy0 * width + span.ix0) * 3
            try rgb.pixels.withUnsafeBufferPointer { (buf) throws(MediaError) in
                guard let base = buf.baseAddress else { return }
                try span.scale(self, from: [UnsafePointer(base + offset), nil, nil, nil], strides: [Int32(width * 3), 0, 0, 0],
                               format: AV_PIX_FMT_RGB24, into: &out, path: path)
            }
        }
        return out
    }

    /// Plane pointers moved to pixel (x, y) (x and y aligned to the chroma subsampling).
    private func planeWindow(_ layout: (shiftW: Int, shiftH: Int),
                             x: Int, y: Int) -> (planes: [UnsafePointer<UInt8>?], strides: [Int32]) {
        let f = frame.pointee
        let data = [f.data.0, f.data.1, f.data.2, f.data.3]
        let lines = [f.linesize.0, f.linesize.1, f.linesize.2, f.linesize.3]
        var planes: [UnsafePointer<UInt8>?] = [nil, nil, nil, nil]
        var strides: [Int32] = [0, 0, 0, 0]
        for p in 0..<4 {
            guard let base = data[p] else { continue }
            let chroma = p == 1 || p == 2
            let px = chroma ? x >> layout.shiftW : x
            let py = chroma ? y >> layout.shiftH : y
            planes[p] = UnsafePointer(base + py * Int(lines[p]) + px)
            strides[p] = lines[p]
        }
        return (planes, strides)
    }

    private func wholeFrameRGB() throws(MediaError) -> Raster {
        lock.lock()
        defer { lock.unlock() }
        if let fullRGB { return fullRGB }
        let rgb = try scaled(width: width, height: height, gray: false)
        fullRGB = rgb
        return rgb
    }
}

/// Where a crop rectangle meets the frame: the source pixels inside it (ix0..<ix1, iy0..<iy1, aligned to
/// the chroma subsampling) and where they land in the output (dx0..<dx1, dy0..<dy1).
private struct CropSpan {
    let ix0, iy0, ix1, iy1: Int
    let dx0, dy0, dx1, dy1: Int
    let outWidth: Int

    init?(frame: VideoFrame, x0: Double, y0: Double, x1: Double, y1: Double, outWidth ow: Int, outHeight oh: Int) {
        // A box of any size or place meets the frame or does not: coordinates are taken to the frame's
        // neighbourhood before they become Ints (a NaN, an infinity or 1e30 trapped there).
        guard [x0, y0, x1, y1].allSatisfy(\.isFinite) else { return nil }
        let rectW = x1 - x0, rectH = y1 - y0
        guard rectW > 0, rectH > 0 else { return nil }
        let layout = frame.planar8Layout
        let alignX = layout.map { 1 << $0.shiftW } ?? 1, alignY = layout.map { 1 << $0.shiftH } ?? 1
        var ix0 = Self.clamped(x0.rounded(.down), 0, frame.width), iy0 = Self.clamped(y0.rounded(.down), 0, frame.height)
        ix0 -= ix0 % alignX; iy0 -= iy0 % alignY
        let ix1 = Self.clamped(x1.rounded(.up), 0, frame.width), iy1 = Self.clamped(y1.rounded(.up), 0, frame.height)
        guard ix1 > ix0, iy1 > iy0 else { return nil }
        let sx = Double(ow) / rectW, sy = Double(oh) / rectH
        let dx0 = Self.clamped(((Double(ix0) - x0) * sx).rounded(), 0, ow)
        let dx1 = Self.clamped(((Double(ix1) - x0) * sx).rounded(), 0, ow)
        let dy0 = Self.clamped(((Double(iy0) - y0) * sy).rounded(), 0, oh)
        let dy1 = Self.clamped(((Double(iy1) - y0) * sy).rounded(), 0, oh)
        guard dx1 > dx0, dy1 > dy0 else { return nil }
        (self.ix0, self.iy0, self.ix1, self.iy1) = (ix0, iy0, ix1, iy1)
        (self.dx0, self.dy0, self.dx1, self.dy1) = (dx0, dy0, dx1, dy1)
        outWidth = ow
    }

    /// `value` within low...high as an Int; NaN (an infinite scale times zero) is low.
    static func clamped(_ value: Double, _ low: Int, _ high: Int) -> Int {
        value >= Double(high) ? high : value > Double(low) ? Int(value) : low
    }

    /// Scales the source window of `frame` (planes already moved to ix0, iy0) into its place in `out`.
    func scale(_ frame: VideoFrame, from planes: [UnsafePointer<UInt8>?], strides: [Int32], format: AVPixelFormat,
               into out: inout Raster, path: String) throws(MediaError) {
        guard let sws = frame.converter(width: Int32(ix1 - ix0), height: Int32(iy1 - iy0), format: format,
                                        outWidth: Int32(dx1 - dx0), outHeight: Int32(dy1 - dy0), outFormat: AV_PIX_FMT_RGB24) else {
            throw .videoDecodeFailed(path: path, reason: "libswscale cannot convert the frame's pixel format")
        }
        defer { sws_freeContext(sws) }
        let rows = Int32(iy1 - iy0), offset = (dy0 * outWidth + dx0) * 3
        try out.pixels.withUnsafeMutableBufferPointer { (dst) throws(MediaError) in
            guard let base = dst.baseAddress else { return }
            try VideoFrame.scale(sws, planes: planes, strides: strides, sourceRows: rows, into: base + offset, rows: dy1 - dy0,
                                 rowBytes: (dx1 - dx0) * 3, stride: outWidth * 3, path: path)
        }
    }
}
