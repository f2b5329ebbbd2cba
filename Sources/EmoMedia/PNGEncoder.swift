// PNG files from RGB24 pictures through libavcodec's PNG encoder (deterministic: no timestamps or
// metadata are written), for pictures meant for people, such as the faces contact sheet.
import CFFmpeg
import Foundation

public enum PNGEncoder {
    /// Whether libavcodec takes a picture this large (`av_image_check_size`, which opening the encoder applies).
    public static func fits(width: Int, height: Int) -> Bool {
        guard (1...Int(Int32.max)).contains(width), (1...Int(Int32.max)).contains(height) else { return false }
        LibavLog.install()   // the check logs its refusal; our own message says it
        return av_image_check_size(UInt32(width), UInt32(height), 0, nil) == 0
    }

    /// The PNG bytes of a `width` x `height` RGB24 picture (`rgb` holds width*height*3 bytes, rows top to
    /// bottom). `name` says what the picture is for, in error messages.
    public static func encode(rgb: [UInt8], width: Int, height: Int, name: String) throws(MediaError) -> Data {
        LibavLog.install()
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw .encodeFailed(path: name, reason: "\(rgb.count) bytes are not a \(width)x\(height) RGB picture")
        }
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_PNG) else {
            throw .encodeFailed(path: name, reason: "libavcodec has no PNG encoder")
        }
        var context = avcodec_alloc_context3(codec)
        defer { avcodec_free_context(&context) }
        guard let ctx = context else { throw .encodeFailed(path: name, reason: "libavcodec has no PNG encoder") }
        ctx.pointee.width = Int32(clamping: width)
        ctx.pointee.height = Int32(clamping: height)
        ctx.pointee.pix_fmt = AV_PIX_FMT_RGB24
        ctx.pointee.time_base = AVRational(num: 1, den: 1)
        guard avcodec_open2(ctx, codec, nil) >= 0 else { throw .encodeFailed(path: name, reason: "the PNG encoder does not open") }
        var frame = av_frame_alloc()
        defer { av_frame_free(&frame) }
        guard let frame else { throw .encodeFailed(path: name, reason: "out of memory") }
        frame.pointee.width = Int32(clamping: width)
        frame.pointee.height = Int32(clamping: height)
        frame.pointee.format = AV_PIX_FMT_RGB24.rawValue
        frame.pointee.pts = 0
        guard av_frame_get_buffer(frame, 0) >= 0, let plane = frame.pointee.data.0 else {
            throw .encodeFailed(path: name, reason: "out of memory")
        }
        let line = Int(frame.pointee.linesize.0)
        rgb.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            for y in 0..<height {
                (plane + y * line).update(from: base + y * width * 3, count: width * 3)
            }
        }
        guard avcodec_send_frame(ctx, frame) >= 0 else {
            throw .encodeFailed(path: name, reason: "the PNG encoder refused the image")
        }
        _ = avcodec_send_frame(ctx, nil)
        return try collectPackets(ctx, name: name)
    }

    private static func collectPackets(_ ctx: UnsafeMutablePointer<AVCodecContext>,
                                       name: String) throws(MediaError) -> Data {
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard let packet else { throw .encodeFailed(path: name, reason: "out of memory") }
        var out = Data()
        while avcodec_receive_packet(ctx, packet) >= 0 {
            if let data = packet.pointee.data { out.append(data, count: Int(packet.pointee.size)) }
            av_packet_unref(packet)
        }
        guard !out.isEmpty else { throw .encodeFailed(path: name, reason: "the PNG encoder produced nothing") }
        return out
    }
}
