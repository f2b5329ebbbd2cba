// Decoding only what the sampled frames need: the clip's video packets are read once (cheap: demuxing
// copies bytes), K frames are chosen evenly in presentation time, and the decoder is fed only the packets
// those frames depend on (their group of pictures up to them, minus non-reference pictures).
import CFFmpeg
import EmoMedia
import Foundation

/// One decoded frame kept as a reference-counted AVFrame.
final class DecodedFrame: @unchecked Sendable {
    let frame: UnsafeMutablePointer<AVFrame>
    let damaged: Bool

    init(frame: UnsafeMutablePointer<AVFrame>, damaged: Bool) {
        self.frame = frame
        self.damaged = damaged
    }

    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&f)
    }

    var width: Int { Int(frame.pointee.width) }
    var height: Int { Int(frame.pointee.height) }
}

/// K frames of a clip (slots may share a frame when the clip is shorter than K frames).
struct SampledVideo {
    var frames: [DecodedFrame]
    var times: [Double]
    /// A slot whose own frame could not be decoded and repeats a neighbour's.
    var substituted: [Bool]
    var rotation: Int
    var durationSeconds: Double
    var truncated: Bool
    var stats: FaceDecodeStats
}

private struct PacketInfo {
    var pts: Int64
    var key: Bool
    var reference: Bool
}

enum VideoSampler {
    static func sample(path: String, count: Int, threads: Int,
                       strategy: FaceDecodeStrategy) throws -> SampledVideo {
        MediaLogging.silenceLibav()
        var format: UnsafeMutablePointer<AVFormatContext>? = nil
        let opened = avformat_open_input(&format, path, nil, nil)
        guard opened >= 0, let fmt = format else {
            // EmoMedia's probe classifies the failure (missing, not media, damaged header).
            do { _ = try MediaProbe.probe(path: path) } catch { throw FaceError.media(error) }
            throw FaceError.decodeFailed("libavformat cannot open the file (\(describe(opened)))")
        }
        defer { avformat_close_input(&format) }

        var codecOut: UnsafePointer<AVCodec>? = nil
        let streamIndex = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codecOut, 0)
        if streamIndex == AVERROR_STREAM_NOT_FOUND_VALUE { throw FaceError.noVideoStream }
        guard streamIndex >= 0, let codec = codecOut else {
            if streamIndex >= 0 || streamIndex == AVERROR_DECODER_NOT_FOUND_VALUE {
                throw FaceError.decodeFailed("there is no decoder for the video codec")
            }
            throw FaceError.noVideoStream
        }
        let stream = fmt.pointee.streams[Int(streamIndex)]!
        // The demuxer skips the other streams' data entirely.
        for i in 0..<Int(fmt.pointee.nb_streams) where i != Int(streamIndex) {
            fmt.pointee.streams[i]!.pointee.discard = AVDISCARD_ALL
        }
        let par = stream.pointee.codecpar!
        let timeBase = stream.pointee.time_base
        let rotation = displayRotation(stream)

        // 1. Read the video packets.
        var packets: [UnsafeMutablePointer<AVPacket>] = []
        defer { for p in packets { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) } }
        var readFailed = false
        let scratch = av_packet_alloc()!
        defer { var q: UnsafeMutablePointer<AVPacket>? = scratch; av_packet_free(&q) }
        while true {
            let r = av_read_frame(fmt, scratch)
            if r < 0 {
                if r != AVERROR_EOF_VALUE { readFailed = true }
                break
            }
            if scratch.pointee.stream_index == streamIndex && scratch.pointee.size > 0 {
                let kept = av_packet_alloc()!
                av_packet_move_ref(kept, scratch)
                packets.append(kept)
            } else {
                av_packet_unref(scratch)
            }
        }
        guard !packets.isEmpty else {
            // Usually a file cut short inside its header: EmoMedia's probe says so precisely.
            do { _ = try MediaProbe.probe(path: path) } catch { throw FaceError.media(error) }
            throw FaceError.decodeFailed("the video stream has no readable packets")
        }
        let indexed = Int(avformat_index_get_entries_count(stream))
        let truncated = readFailed || (indexed > 0 && packets.count < indexed)

        // 2. Packet facts: presentation time, keyframe, reference picture.
        let lengthSize = par.pointee.codec_id == AV_CODEC_ID_H264 ? avccLengthSize(par) : nil
        var infos: [PacketInfo] = []
        infos.reserveCapacity(packets.count)
        for (i, p) in packets.enumerated() {
            let pk = p.pointee
            let pts = pk.pts != AV_NOPTS_VALUE_ ? pk.pts : (pk.dts != AV_NOPTS_VALUE_ ? pk.dts : Int64(i))
            var reference = (pk.flags & AV_PKT_FLAG_DISPOSABLE) == 0
            if let lengthSize, reference {
                reference = H264NAL.isReference(pk.data, size: Int(pk.size), lengthSize: lengthSize)
            }
            infos.append(PacketInfo(pts: pts, key: (pk.flags & AV_PKT_FLAG_KEY) != 0, reference: reference))
        }

        // 3. K slots, evenly spread in time; each takes the frame presented nearest to its time.
        let order = infos.indices.sorted { (infos[$0].pts, $0) < (infos[$1].pts, $1) }
        let start = infos[order.first!].pts
        let lastPacket = packets[order.last!].pointee
        let lastDuration = lastPacket.duration > 0 ? lastPacket.duration
            : (order.count > 1 ? infos[order.last!].pts - infos[order[order.count - 2]].pts : 1)
        let end = infos[order.last!].pts + max(lastDuration, 1)
        let tb = av_q2d(timeBase) > 0 ? av_q2d(timeBase) : 1.0 / 30
        let span = Double(end - start)
        var slotPacket: [Int] = []  // decode-order packet index per slot
        for k in 0..<count {
            let target = Double(start) + (Double(k) + 0.5) * span / Double(count)
            slotPacket.append(nearest(order: order, infos: infos, target: target))
        }
        let selected = Set(slotPacket)

        // 4. Which packets the decoder needs.
        var feed = [Bool](repeating: false, count: packets.count)
        let seek = strategy == .keyframeSeek || strategy == .minimal
        let skipNonRef = strategy == .skipNonReference || strategy == .minimal
        if strategy == .everyFrame {
            feed = [Bool](repeating: true, count: packets.count)
        } else {
            let last = selected.max()!
            if seek {
                for j in selected {
                    var k = j
                    while k > 0 && !infos[k].key { k -= 1 }
                    for i in k...j { feed[i] = true }
                }
            } else {
                for i in 0...last { feed[i] = true }
            }
            if skipNonRef {
                for i in feed.indices where feed[i] && !infos[i].reference && !selected.contains(i) { feed[i] = false }
            }
        }

        // 5. Decode.
        let ctx = avcodec_alloc_context3(codec)!
        var ctxOpt: UnsafeMutablePointer<AVCodecContext>? = ctx
        defer { avcodec_free_context(&ctxOpt) }
        guard avcodec_parameters_to_context(ctx, par) >= 0 else {
            throw FaceError.decodeFailed("the video stream's codec parameters are unusable")
        }
        ctx.pointee.pkt_timebase = timeBase
        ctx.pointee.thread_count = Int32(threads)
        ctx.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE
        let openCode = avcodec_open2(ctx, codec, nil)
        guard openCode >= 0 else {
            throw FaceError.decodeFailed("the \(String(cString: codec.pointee.name)) decoder does not open (\(describe(openCode)))")
        }

        var wanted: [Int64: DecodedFrame?] = [:]
        for j in selected { wanted[infos[j].pts] = .some(nil) }
        var remaining = wanted.count
        var stats = FaceDecodeStats(packets: packets.count, distinctFrames: selected.count)
        let frame = av_frame_alloc()!
        defer { var f: UnsafeMutablePointer<AVFrame>? = frame; av_frame_free(&f) }

        func receive() {
            while avcodec_receive_frame(ctx, frame) >= 0 {
                let f = frame.pointee
                let pts = f.pts != AV_NOPTS_VALUE_ ? f.pts : f.best_effort_timestamp
                if let slot = wanted[pts], slot == nil {
                    let kept = av_frame_alloc()!
                    av_frame_move_ref(kept, frame)
                    let damaged = kept.pointee.decode_error_flags != 0 || (kept.pointee.flags & AV_FRAME_FLAG_CORRUPT) != 0
                    wanted[pts] = .some(DecodedFrame(frame: kept, damaged: damaged))
                    remaining -= 1
                } else {
                    av_frame_unref(frame)
                }
            }
        }
        for i in packets.indices where feed[i] {
            if remaining == 0 { break }
            stats.packetsDecoded += 1
            var r = avcodec_send_packet(ctx, packets[i])
            while r == AVERROR_EAGAIN_VALUE {
                receive()
                r = avcodec_send_packet(ctx, packets[i])
            }
            if r < 0 { stats.packetsRejected += 1 }  // damaged packet: go on with the next one
            receive()
        }
        if remaining > 0 {
            _ = avcodec_send_packet(ctx, nil)
            receive()
        }

        // 6. Slots whose frame never came out borrow the nearest decoded one.
        var frames: [DecodedFrame?] = slotPacket.map { wanted[infos[$0].pts] ?? nil }
        var times = slotPacket.map { Double(infos[$0].pts - start) * tb }
        var substituted = [Bool](repeating: false, count: count)
        let decodedSlots = frames.indices.filter { frames[$0] != nil }
        guard !decodedSlots.isEmpty else {
            throw FaceError.decodeFailed("none of the sampled frames could be decoded")
        }
        for k in frames.indices where frames[k] == nil {
            let donor = decodedSlots.min { abs($0 - k) < abs($1 - k) }!
            frames[k] = frames[donor]
            times[k] = times[donor]
            substituted[k] = true
        }
        return SampledVideo(frames: frames.map { $0! }, times: times, substituted: substituted, rotation: rotation,
                            durationSeconds: span * tb, truncated: truncated, stats: stats)
    }

    private static func nearest(order: [Int], infos: [PacketInfo], target: Double) -> Int {
        var lo = 0, hi = order.count - 1
        while lo < hi {  // first presented packet with pts >= target
            let mid = (lo + hi) / 2
            if Double(infos[order[mid]].pts) < target { lo = mid + 1 } else { hi = mid }
        }
        if lo > 0 && abs(Double(infos[order[lo - 1]].pts) - target) <= abs(Double(infos[order[lo]].pts) - target) {
            return order[lo - 1]
        }
        return order[lo]
    }

    /// Clockwise degrees a player turns the picture (0, 90, 180, 270), from the display matrix.
    static func displayRotation(_ stream: UnsafeMutablePointer<AVStream>) -> Int {
        var size: Int = 0
        guard let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size),
              size >= 9 * MemoryLayout<Int32>.size else { return 0 }
        let angle = data.withMemoryRebound(to: Int32.self, capacity: 9) { av_display_rotation_get($0) }
        guard angle.isFinite else { return 0 }
        let clockwise = Int((-angle / 90).rounded()) * 90
        return ((clockwise % 360) + 360) % 360
    }

    /// NAL length size of avcC extradata (mp4), or 0 for Annex B start codes.
    private static func avccLengthSize(_ par: UnsafeMutablePointer<AVCodecParameters>) -> Int {
        let p = par.pointee
        guard p.extradata_size >= 7, let e = p.extradata, e[0] == 1 else { return 0 }
        return Int(e[4] & 3) + 1
    }

    static func describe(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        av_strerror(code, &buffer, buffer.count)
        return String(cString: buffer)
    }
}

/// H.264 NAL headers: a picture is a reference when any of its slices has nal_ref_idc != 0.
enum H264NAL {
    static func isReference(_ data: UnsafeMutablePointer<UInt8>?, size: Int, lengthSize: Int) -> Bool {
        guard let data, size > 0 else { return true }
        var sawSlice = false
        func check(_ header: UInt8) -> Bool? {
            let type = header & 0x1f
            guard (1...5).contains(type) else { return nil }
            sawSlice = true
            return (header >> 5) & 3 != 0 ? true : nil
        }
        if lengthSize > 0 {
            var pos = 0
            while pos + lengthSize < size {
                var length = 0
                for b in 0..<lengthSize { length = (length << 8) | Int(data[pos + b]) }
                pos += lengthSize
                guard length > 0, pos + length <= size else { break }
                if check(data[pos]) == true { return true }
                pos += length
            }
        } else {
            var i = 0
            while i + 3 < size {
                if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                    if check(data[i + 3]) == true { return true }
                    i += 3
                } else {
                    i += 1
                }
            }
        }
        return !sawSlice  // unparseable: assume it matters
    }
}

// libav's error macros are not imported into Swift.
let AVERROR_EOF_VALUE: Int32 = -Int32(bitPattern: UInt32(ascii4("EOF ")))
let AVERROR_EAGAIN_VALUE: Int32 = -EAGAIN
let AVERROR_STREAM_NOT_FOUND_VALUE: Int32 = -Int32(bitPattern: UInt32(0xF8) | UInt32(ascii4("STR")) << 8)
let AVERROR_DECODER_NOT_FOUND_VALUE: Int32 = -Int32(bitPattern: UInt32(0xF8) | UInt32(ascii4("DEC")) << 8)
let AV_NOPTS_VALUE_: Int64 = Int64.min

/// MKTAG(a, b, c, d) = a | b << 8 | c << 16 | d << 24 over the first four characters.
private func ascii4(_ s: String) -> UInt32 {
    var v: UInt32 = 0
    for (i, c) in s.utf8.prefix(4).enumerated() { v |= UInt32(c) << (8 * UInt32(i)) }
    return v
}
