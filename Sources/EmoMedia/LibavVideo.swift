// Video from containers through libavcodec, decoding only what K sampled frames need: the clip's video
// packets are read once (cheap: demuxing copies bytes), K frames are chosen evenly in presentation time,
// and the decoder is fed only the packets those frames depend on (their group of pictures up to them,
// minus non-reference pictures).
import CFFmpeg
import Foundation

/// How much of a clip the decoder is fed. Every strategy yields the same frames (bit-exact); they differ
/// only in the work done.
public enum VideoDecodeStrategy: Sendable, CaseIterable {
    /// Every packet of the clip, start to end.
    case everyFrame
    /// From the first packet up to the last sampled frame, minus non-reference packets that are not sampled.
    case skipNonReference
    /// Only the group of pictures that holds a sampled frame, from its keyframe up to the sample.
    case keyframeSeek
    /// Both of the above.
    case minimal
}

/// How much decoding a clip took (for benchmarks and logs).
public struct VideoDecodeStats: Codable, Equatable, Sendable {
    /// Video packets in the clip (as read from the container).
    public var packets: Int = 0
    /// Packets handed to the decoder.
    public var packetsDecoded: Int = 0
    /// Packets the decoder rejected as damaged (decoding went on past them).
    public var packetsRejected: Int = 0
    /// Distinct frames sampled (fewer than K when the clip is shorter than K frames).
    public var distinctFrames: Int = 0

    public init(packets: Int = 0, packetsDecoded: Int = 0, packetsRejected: Int = 0, distinctFrames: Int = 0) {
        self.packets = packets; self.packetsDecoded = packetsDecoded
        self.packetsRejected = packetsRejected; self.distinctFrames = distinctFrames
    }
}

/// K frames of a clip (slots may share a frame when the clip is shorter than K frames).
public struct SampledVideo: Sendable {
    public var frames: [VideoFrame]
    /// Presentation time of each slot's frame, in seconds from the first presented frame.
    public var times: [Double]
    /// A slot whose own frame could not be decoded and repeats a neighbour's.
    public var substituted: [Bool]
    /// Clockwise quarter turns a player applies (0, 90, 180, 270), from the display matrix.
    public var rotation: Int
    public var durationSeconds: Double
    /// The file ends before its index says it should: frames were sampled from the part that exists.
    public var truncated: Bool
    public var stats: VideoDecodeStats

    public init(frames: [VideoFrame], times: [Double], substituted: [Bool], rotation: Int, durationSeconds: Double,
                truncated: Bool = false, stats: VideoDecodeStats = VideoDecodeStats()) {
        self.frames = frames; self.times = times; self.substituted = substituted; self.rotation = rotation
        self.durationSeconds = durationSeconds; self.truncated = truncated; self.stats = stats
    }
}

public enum VideoFrameSampler {
    /// The packet bytes (with each packet's own bookkeeping) one clip may hold: a RAVDESS clip takes
    /// about 3 MB, and two decoding threads must not hold gigabytes each for a film named like one.
    public static let maximumPacketBytes = 512 << 20

    /// `count` frames of the first (best) video stream, spread evenly in presentation time; `threads`
    /// decoder threads (results do not depend on them). Damaged packets are skipped, and a slot whose frame
    /// could not be decoded borrows the nearest decoded one; only a clip with no decodable sample fails.
    /// `stop` is polled between packets, read and decoded: a request ends it with `MediaError.stopped`.
    /// A video stream of more than `maximumPacketBytes` is refused while it is read (`videoTooLarge`).
    public static func sample(path: String, count: Int, threads: Int, strategy: VideoDecodeStrategy,
                              stop: StopCheck = .never, maximumPacketBytes: Int = maximumPacketBytes) throws(MediaError) -> SampledVideo {
        guard count >= 1, threads >= 1 else {
            throw .invalidArgument(path: path, reason: "sample \(count) frames with \(threads) threads")
        }
        return try LibavLog.capturing { (log) throws(MediaError) -> SampledVideo in
            let input = try LibavInput.open(path, log: log, mode: .salvage)
            let (stream, codec) = try videoStream(input, log: log)
            input.discardStreams(except: stream)
            let packets = try VideoPackets.read(input, stream: stream, stop: stop, maximumBytes: maximumPacketBytes)
            let plan = SamplePlan(packets: packets, count: count, strategy: strategy,
                                  timeBase: stream.pointee.time_base, streamSeconds: StreamReader.seconds(stream.pointee.duration, stream.pointee.time_base))
            let decoder = try VideoCodec.open(codec, stream: stream, threads: threads, path: path)
            let (decoded, stats) = try decoder.decode(packets, plan: plan, stop: stop)
            return try assemble(plan: plan, decoded: decoded, stats: stats, packets: packets,
                                rotation: StreamReader.quarterTurnRotation(stream), path: path)
        }
    }

    /// The clip's video stream and its decoder. A container that declares its streams only in its
    /// packets (FLV, MPEG-PS: libav's "no header" formats) has none after opening: its first packets are
    /// read to find them, as probing does, and only then is the video stream missing for good.
    private static func videoStream(_ input: borrowing LibavInput, log: LogCapture)
        throws(MediaError) -> (UnsafeMutablePointer<AVStream>, UnsafePointer<AVCodec>) {
        do {
            return try bestVideoStream(input)
        } catch .noVideoStream where input.context.pointee.ctx_flags & AVFMTCTX_NOHEADER != 0 {
            // A damaged file may still hold a readable video stream found so far: salvage what there is.
            try? input.findStreamInfo(log: log)
            return try bestVideoStream(input)
        }
    }

    /// libavformat's choice of video stream and its decoder.
    static func bestVideoStream(_ input: borrowing LibavInput)
        throws(MediaError) -> (UnsafeMutablePointer<AVStream>, UnsafePointer<AVCodec>) {
        var codecOut: UnsafePointer<AVCodec>? = nil
        let streams = input.streams
        // Cover art is a video stream of one still to libav, which takes it when nothing better is there.
        let stills = Set(streams.indices.filter { streams[$0].pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 })
        var index = av_find_best_stream(input.context, AVMEDIA_TYPE_VIDEO, -1, -1, &codecOut, 0)
        if index >= 0, stills.contains(Int(index)),
           let moving = streams.indices.first(where: { !stills.contains($0) && streams[$0].pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO }) {
            index = av_find_best_stream(input.context, AVMEDIA_TYPE_VIDEO, Int32(moving), -1, &codecOut, 0)
        }
        if index == AVCode.streamNotFound || (index >= 0 && stills.contains(Int(index))) {
            throw stills.isEmpty ? .noVideoStream(path: input.path) : .onlyStillPictures(path: input.path)
        }
        guard index >= 0, Int(index) < streams.count, let codec = codecOut else {
            if index >= 0 || index == AVCode.decoderNotFound {
                let stream = index >= 0 && Int(index) < streams.count ? streams[Int(index)]
                    : streams.first { !stills.contains(Int($0.pointee.index)) && $0.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO }
                let named = stream.map { StreamReader.codecNamed($0, kind: "video") } ?? "the video codec"
                throw .videoDecodeFailed(path: input.path, reason: "there is no decoder for \(named)")
            }
            throw .noVideoStream(path: input.path)
        }
        return (streams[Int(index)], codec)
    }

    /// Slots whose frame never came out borrow the nearest decoded one.
    private static func assemble(plan: SamplePlan, decoded: [Int64: VideoFrame], stats: VideoDecodeStats,
                                 packets: borrowing VideoPackets, rotation: Int,
                                 path: String) throws(MediaError) -> SampledVideo {
        var frames: [VideoFrame?] = plan.slotPacket.map { decoded[plan.infos[$0].pts] }
        var times = plan.slotPacket.map { Double(plan.infos[$0].pts &- plan.start) * plan.secondsPerTick }
        var substituted = [Bool](repeating: false, count: frames.count)
        let decodedSlots = frames.indices.filter { frames[$0] != nil }
        guard !decodedSlots.isEmpty else {
            throw .videoDecodeFailed(path: path, reason: "none of the sampled frames could be decoded")
        }
        for k in frames.indices where frames[k] == nil {
            guard let donor = decodedSlots.min(by: { abs($0 - k) < abs($1 - k) }) else { continue }
            frames[k] = frames[donor]
            times[k] = times[donor]
            substituted[k] = true
        }
        return SampledVideo(frames: frames.compactMap { $0 }, times: times, substituted: substituted,
                            rotation: rotation, durationSeconds: plan.span * plan.secondsPerTick,
                            truncated: packets.truncated, stats: stats)
    }
}

/// The video stream's packets, read once; freed when the value goes away.
struct VideoPackets: ~Copyable {
    /// What one packet costs in resident memory beyond its data (AVPacket, buffer reference and padding,
    /// allocator overhead, the demuxer's index entry), counted against the bound: measured at about 620
    /// bytes on a stream of 1.8 million 16x16 frames (23 MB of data, 1.2 GB resident when 256 was counted).
    static let bytesPerPacket = 640

    let list: [UnsafeMutablePointer<AVPacket>]
    /// Reading stopped on an error, or fewer packets came than the container's index lists.
    let truncated: Bool
    let codecParameters: UnsafeMutablePointer<AVCodecParameters>

    deinit {
        for p in list { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
    }

    static func read(_ input: borrowing LibavInput, stream: UnsafeMutablePointer<AVStream>,
                     stop: StopCheck = .never, maximumBytes: Int) throws(MediaError) -> VideoPackets {
        guard let parameters = stream.pointee.codecpar else {
            throw .videoDecodeFailed(path: input.path, reason: "the video stream has no codec parameters")
        }
        var list: [UnsafeMutablePointer<AVPacket>] = []
        var held = 0
        var readFailed = false
        var scratch = av_packet_alloc()
        defer { av_packet_free(&scratch) }
        guard let scratch else { throw .videoDecodeFailed(path: input.path, reason: "out of memory") }
        while true {
            if stop.isRequested {
                for p in list { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
                throw .stopped(path: input.path)
            }
            let r = av_read_frame(input.context, scratch)
            if r < 0 {
                if r != AVCode.eof { readFailed = true }
                break
            }
            if scratch.pointee.stream_index == stream.pointee.index && scratch.pointee.size > 0,
               let kept = av_packet_alloc() {
                av_packet_move_ref(kept, scratch)
                list.append(kept)
                held += Int(kept.pointee.size) + bytesPerPacket
                if held > maximumBytes {
                    for p in list { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
                    throw .videoTooLarge(path: input.path, maximumBytes: maximumBytes)
                }
            } else {
                av_packet_unref(scratch)
            }
        }
        let indexed = Int(avformat_index_get_entries_count(stream))
        let packets = VideoPackets(list: list, truncated: readFailed || (indexed > 0 && list.count < indexed),
                                   codecParameters: parameters)
        guard !packets.list.isEmpty else {
            // Usually a file cut short inside its header: the probe says so precisely.
            _ = try MediaProbe.probe(path: input.path)
            throw .videoDecodeFailed(path: input.path, reason: "the video stream has no readable packets")
        }
        return packets
    }
}

/// What one packet is: when it is presented, whether decoding can start there, whether others refer to it.
struct PacketInfo {
    var pts: Int64
    var key: Bool
    var reference: Bool
    /// Side data the decoder keeps for the packets after it (a palette, new extradata, changed parameters): such a
    /// packet is fed whenever a later one is, or a skipping strategy would decode those with the wrong state.
    var carriesState: Bool = false
    /// Not presented: an edit list cuts it (AV_PKT_FLAG_DISCARD, a clip trimmed without re-encoding). It may
    /// still be decoded as a reference, but no slot shows it and it adds nothing to the clip's duration.
    var cut: Bool = false
}

/// Which packet each of the K slots shows, and which packets the decoder must see for them.
struct SamplePlan {
    let infos: [PacketInfo]
    /// Decode-order packet index per slot.
    let slotPacket: [Int]
    let selected: Set<Int>
    /// Packets handed to the decoder, by decode-order index.
    let feed: [Bool]
    /// First presentation time, and the presented span (both in stream ticks).
    let start: Int64
    let span: Double
    let secondsPerTick: Double
    /// Every packet is cut by the edit list: each is fed as a copy without its discard flag.
    let showsCutPackets: Bool
    /// Every packet had one and the same time, or one decode time (a zeroed time-to-sample table, a media timescale
    /// of 0), which put every slot on one picture: each is placed by its decode order instead, the stream's duration spread evenly
    /// over them (the frame rate libav then guesses is no better), and fed as a copy stamped with that place.
    let restamped: Bool

    /// `streamSeconds`: the duration the container gives the stream, if any.
    init(packets: borrowing VideoPackets, count: Int, strategy: VideoDecodeStrategy, timeBase: AVRational,
         streamSeconds: Double? = nil) {
        var infos = Self.packetInfos(packets)
        // With B-frames the composition offsets still part a few pictures' times when every decode time is one.
        let firstDecodeTime = packets.list.first?.pointee.dts ?? Int64.min
        restamped = infos.count > 1 && (infos.allSatisfy { $0.pts == infos[0].pts }
                                        || (firstDecodeTime != Int64.min && packets.list.allSatisfy { $0.pointee.dts == firstDecodeTime }))
        if restamped { for i in infos.indices { infos[i].pts = Int64(i) } }
        // K slots, evenly spread in time; each takes the frame presented nearest to its time. A stream whose
        // every packet is cut (trimmed past its pictures, or one frame copied out after its cut) is taken whole
        // rather than not at all: the decoder is then told to show them.
        let presented = infos.indices.filter { !infos[$0].cut }
        showsCutPackets = presented.isEmpty
        let order = (presented.isEmpty ? Array(infos.indices) : presented).sorted { (infos[$0].pts, $0) < (infos[$1].pts, $1) }
        let first = order.first ?? 0, last = order.last ?? 0
        let start = infos[first].pts
        let lastPacket = packets.list[last].pointee
        let lastDuration = restamped ? 1 : lastPacket.duration > 0 ? lastPacket.duration
            : (order.count > 1 ? infos[last].pts &- infos[order[order.count - 2]].pts : 1)
        // Wrapping arithmetic: a hostile file's timestamps near Int64's limits give a meaningless span
        // (its frames are still decoded in order), never a trap; real timestamps never come near.
        let end = infos[last].pts &+ max(lastDuration, 1)
        let span = Double(end &- start)
        var slots: [Int] = []
        for k in 0..<count {
            let target = Double(start) + (Double(k) + 0.5) * span / Double(count)
            slots.append(Self.nearest(order: order, infos: infos, target: target))
        }
        let selected = Set(slots)
        self.infos = infos
        self.start = start
        self.span = span
        if restamped {
            let perPacket = (streamSeconds ?? 0) / Double(infos.count)
            secondsPerTick = perPacket.isFinite && perPacket > 0 ? perPacket : 1.0 / 30
        } else {
            secondsPerTick = av_q2d(timeBase) > 0 ? av_q2d(timeBase) : 1.0 / 30
        }
        slotPacket = slots
        self.selected = selected
        feed = Self.feed(infos: infos, selected: selected, strategy: strategy)
    }

    /// Presentation time (dts, then decode order, when missing), keyframe flag and reference picture.
    private static func packetInfos(_ packets: borrowing VideoPackets) -> [PacketInfo] {
        let lengthSize = packets.codecParameters.pointee.codec_id == AV_CODEC_ID_H264
            ? H264NAL.avccLengthSize(packets.codecParameters) : nil
        var infos: [PacketInfo] = []
        infos.reserveCapacity(packets.list.count)
        let noTime = Int64.min  // AV_NOPTS_VALUE
        for (i, p) in packets.list.enumerated() {
            let pk = p.pointee
            // A packet with neither time (a raw H.264 or HEVC stream) is placed by its order, its duration apart.
            let pts = pk.pts != noTime ? pk.pts : (pk.dts != noTime ? pk.dts : Int64(i) &* max(pk.duration, 1))
            var reference = (pk.flags & AV_PKT_FLAG_DISPOSABLE) == 0
            if let lengthSize, reference {
                reference = H264NAL.isReference(pk.data, size: Int(pk.size), lengthSize: lengthSize)
            }
            let carriesState = [AV_PKT_DATA_PALETTE, AV_PKT_DATA_NEW_EXTRADATA, AV_PKT_DATA_PARAM_CHANGE].contains {
                av_packet_get_side_data(p, $0, nil) != nil
            }
            infos.append(PacketInfo(pts: pts, key: (pk.flags & AV_PKT_FLAG_KEY) != 0, reference: reference, carriesState: carriesState,
                                    cut: (pk.flags & AV_PKT_FLAG_DISCARD) != 0))
        }
        return infos
    }

    private static func feed(infos: [PacketInfo], selected: Set<Int>, strategy: VideoDecodeStrategy) -> [Bool] {
        if strategy == .everyFrame { return [Bool](repeating: true, count: infos.count) }
        var feed = [Bool](repeating: false, count: infos.count)
        if strategy == .keyframeSeek || strategy == .minimal {
            for j in selected {
                var k = j
                while k > 0 && !infos[k].key { k -= 1 }
                for i in k...j { feed[i] = true }
            }
        } else if let last = selected.max() {
            for i in 0...last { feed[i] = true }
        }
        if strategy == .skipNonReference || strategy == .minimal {
            for i in feed.indices where feed[i] && !infos[i].reference && !selected.contains(i) { feed[i] = false }
        }
        if let lastFed = feed.lastIndex(of: true) {
            for i in 0..<lastFed where infos[i].carriesState { feed[i] = true }
        }
        return feed
    }

    /// The decode-order index of the packet presented nearest to `target` (the earlier one on a tie).
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
}

/// An opened video decoder; freed when the value goes away.
struct VideoCodec: ~Copyable {
    let context: UnsafeMutablePointer<AVCodecContext>
    let path: String
    /// The stream's pixel aspect ratio as the container states it (0/1: not stated), which players prefer to the
    /// bitstream's.
    let containerAspect: AVRational

    /// The largest picture decoded, 8K (8192 × 4320): a few such pictures are held at once, so a stream
    /// claiming 16000 × 16000 would take gigabytes (RAVDESS's are 1280 × 720).
    static let maximumPixels = 8192 * 4320
    /// Either side, so a portrait 8K picture is one too, and a 64 × 30000 strip is not.
    static let maximumSide = 8192
    static let maximumPixelsSaid = "8192 × 4320 pixels (8K, either way up)"
    /// What the decoder may allocate: its buffers are padded to aligned sizes (a 4320-wide picture is
    /// decoded into 4352 columns), so the bound on pictures leaves that much room.
    static let maximumDecodedPixels = (maximumSide + 128) * (4320 + 128)
    /// The largest picture in bytes: 8K at 8 bits and 4:2:0 (50 MiB). The decoder holds up to 16 reference
    /// pictures besides the one it decodes, so an 8K picture at 10 bits and 4:4:4 (202 MiB) would take 3.4 GiB
    /// per clip decoded, where this bound keeps it under 1 GiB (4K at 10 bits 4:4:4 is 47 MiB: decoded; 8K at
    /// 10 bits 4:2:0, 101 MiB, is not).
    static let maximumPictureBytes = maximumPixels * 3 / 2
    /// What the sampled pictures of one clip may hold together (the decoder's own aside): each is kept as decoded
    /// while it fits its share (512 MB over the pictures sampled; a RAVDESS picture is 1.4 MB), else as a
    /// smaller 8-bit RGB copy that does, so sampling 256 pictures of an 8K clip takes no more than sampling 8.
    static let sampledPicturesBytes = 512 << 20

    /// Bytes of one `width` × `height` picture in `format` (its planes packed tight), nil when libav cannot say.
    static func pictureBytes(format: Int32, width: Int32, height: Int32) -> Int? {
        let bytes = av_image_get_buffer_size(AVPixelFormat(rawValue: format), width, height, 1)
        return bytes > 0 ? Int(bytes) : nil
    }

    /// Why pictures of this size and format are not decoded here, or nil when they are.
    static func refusal(format: Int32, width: Int, height: Int) -> String? {
        if width * height > maximumPixels || width > maximumSide || height > maximumSide {
            return "pictures of \(width) × \(height) pixels are larger than the \(maximumPixelsSaid) decoded here"
        }
        guard let bytes = pictureBytes(format: format, width: Int32(width), height: Int32(height)), bytes > maximumPictureBytes else { return nil }
        let name = av_get_pix_fmt_name(AVPixelFormat(rawValue: format)).map { String(cString: $0) } ?? "format \(format)"
        return "pictures of \(width) × \(height) pixels in \(name) take \(bytes >> 20) MB each, more than the "
            + "\(maximumPictureBytes >> 20) MB (8K at 8 bits and 4:2:0) decoded here"
    }

    static func open(_ codec: UnsafePointer<AVCodec>, stream: UnsafeMutablePointer<AVStream>, threads: Int,
                     path: String) throws(MediaError) -> VideoCodec {
        guard let context = avcodec_alloc_context3(codec) else {
            throw .videoDecodeFailed(path: path, reason: "out of memory")
        }
        let decoder = VideoCodec(context: context, path: path, containerAspect: stream.pointee.sample_aspect_ratio)
        guard let parameters = stream.pointee.codecpar, avcodec_parameters_to_context(context, parameters) >= 0 else {
            throw .videoDecodeFailed(path: path, reason: "the video stream's codec parameters are unusable")
        }
        let (width, height) = (Int(parameters.pointee.width), Int(parameters.pointee.height))
        if let reason = refusal(format: parameters.pointee.format, width: width, height: height) {
            throw .videoDecodeFailed(path: path, reason: reason)
        }
        // Pictures of another size than the container says (the bitstream decides) are held to the same bound.
        context.pointee.max_pixels = Int64(maximumDecodedPixels)
        context.pointee.pkt_timebase = stream.pointee.time_base
        context.pointee.thread_count = Int32(clamping: threads)
        context.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE
        let opened = avcodec_open2(context, codec, nil)
        guard opened >= 0 else {
            let name = String(cString: codec.pointee.name)
            throw .videoDecodeFailed(path: path, reason: "the \(name) decoder does not open (\(LibavLog.describe(opened)))")
        }
        return decoder
    }

    deinit {
        var owned: UnsafeMutablePointer<AVCodecContext>? = context
        avcodec_free_context(&owned)
    }

    /// Feeds the planned packets until every sampled frame came out (then drains), keeping the sampled
    /// frames by presentation time. A packet the decoder rejects is counted and skipped.
    func decode(_ packets: borrowing VideoPackets, plan: SamplePlan,
                stop: StopCheck = .never) throws(MediaError) -> ([Int64: VideoFrame], VideoDecodeStats) {
        let context = self.context, path = self.path, aspect = containerAspect  // the local function below captures these, not self
        var wanted = Set(plan.selected.map { plan.infos[$0].pts })
        var kept: [Int64: VideoFrame] = [:]
        var stats = VideoDecodeStats(packets: packets.list.count, distinctFrames: plan.selected.count)
        var scratch = av_frame_alloc()
        defer { av_frame_free(&scratch) }
        guard let frame = scratch else { throw .videoDecodeFailed(path: path, reason: "out of memory") }
        var refused: String?
        func refuseOversized() throws(MediaError) {
            if let refused { throw .videoDecodeFailed(path: path, reason: refused) }
        }
        let share = Self.sampledPicturesBytes / max(1, plan.selected.count)

        func receive() {
            while avcodec_receive_frame(context, frame) >= 0 {
                let f = frame.pointee
                let pts = f.pts != Int64.min ? f.pts : f.best_effort_timestamp
                // The bitstream may say another size or format than the container: held to the same bounds
                // (max_pixels bounds only the area).
                if let reason = Self.refusal(format: f.format, width: Int(f.width), height: Int(f.height)) {
                    refused = reason
                    av_frame_unref(frame)
                } else if wanted.contains(pts), let owned = av_frame_alloc() {
                    av_frame_move_ref(owned, frame)
                    let damaged = owned.pointee.decode_error_flags != 0 || (owned.pointee.flags & AV_FRAME_FLAG_CORRUPT) != 0
                    guard let held = Self.within(share, owned) else {
                        refused = "a sampled picture of \(f.width) × \(f.height) pixels could not be made smaller to keep "
                            + "(no memory, or libswscale cannot convert its pixel format)"
                        continue
                    }
                    kept[pts] = VideoFrame(frame: held, path: path, damaged: damaged, containerAspect: aspect)
                    wanted.remove(pts)
                } else {
                    av_frame_unref(frame)
                }
            }
        }
        // The packets stay as they were read: a clip shown whole is fed references to them, flags cleared,
        // and a packet with no presentation time (a raw H.264 or HEVC stream) is stamped with the time the
        // plan gave it, so that the picture it holds comes out with the stamp the plan looks for.
        var copy = av_packet_alloc()
        defer { av_packet_free(&copy) }
        for (i, packet) in packets.list.enumerated() where plan.feed[i] {
            if wanted.isEmpty { break }
            if stop.isRequested { throw .stopped(path: path) }
            stats.packetsDecoded += 1
            let unstamped = packet.pointee.pts == Int64.min || plan.restamped
            let fed = (plan.showsCutPackets || unstamped) ? copy.flatMap { av_packet_ref($0, packet) >= 0 ? $0 : nil } ?? packet : packet
            if fed != packet {
                if plan.showsCutPackets { fed.pointee.flags &= ~AV_PKT_FLAG_DISCARD }
                if unstamped { fed.pointee.pts = plan.infos[i].pts }
                if plan.restamped { fed.pointee.dts = plan.infos[i].pts }
            }
            defer { if fed != packet { av_packet_unref(fed) } }
            var sent = avcodec_send_packet(context, fed)
            while sent == AVCode.again {
                receive()
                sent = avcodec_send_packet(context, fed)
            }
            if sent < 0 { stats.packetsRejected += 1 }  // damaged packet: go on with the next one
            receive()
            try refuseOversized()
        }
        if !wanted.isEmpty {
            _ = avcodec_send_packet(context, nil)
            receive()
            try refuseOversized()
        }
        return (kept, stats)
    }
}

extension VideoCodec {
    /// `picture` when it fits `share` bytes with the RGB copy crops need of a format they cannot read in place, else a
    /// smaller copy in planar 8-bit RGB that fits, with its shape, pixel aspect and times (freeing `picture`); nil when
    /// no memory is left for it.
    static func within(_ share: Int, _ picture: UnsafeMutablePointer<AVFrame>) -> UnsafeMutablePointer<AVFrame>? {
        let f = picture.pointee
        let area = Int(f.width) * Int(f.height)
        let copy = VideoFrame.planar8Layout(format: f.format) == nil ? 3 * area : 0
        let held = (pictureBytes(format: f.format, width: f.width, height: f.height) ?? 3 * area) + copy
        guard held > share, area > 0 else { return picture }
        // 3 bytes a pixel, with no RGB copy made of it: the same factor on both sides keeps the shape.
        let factor = (Double(share) / Double(3 * area)).squareRoot()
        let width = max(2, Int(Double(f.width) * factor)), height = max(2, Int(Double(f.height) * factor))
        var source: UnsafeMutablePointer<AVFrame>? = picture
        defer { av_frame_free(&source) }
        guard let smaller = av_frame_alloc() else { return nil }
        smaller.pointee.format = AV_PIX_FMT_GBRP.rawValue
        smaller.pointee.width = Int32(width)
        smaller.pointee.height = Int32(height)
        guard av_frame_get_buffer(smaller, 64) >= 0, av_frame_copy_props(smaller, picture) >= 0,
              let sws = VideoFrame.converter(picture, outWidth: Int32(width), outHeight: Int32(height), outFormat: AV_PIX_FMT_GBRP) else {
            var owned: UnsafeMutablePointer<AVFrame>? = smaller
            av_frame_free(&owned)
            return nil
        }
        defer { sws_freeContext(sws) }
        let planes: [UnsafePointer<UInt8>?] = [f.data.0, f.data.1, f.data.2, f.data.3].map { $0.map { UnsafePointer($0) } }
        let strides = [f.linesize.0, f.linesize.1, f.linesize.2, f.linesize.3]
        var outPlanes: [UnsafeMutablePointer<UInt8>?] = [smaller.pointee.data.0, smaller.pointee.data.1, smaller.pointee.data.2, nil]
        var outStrides = [smaller.pointee.linesize.0, smaller.pointee.linesize.1, smaller.pointee.linesize.2, 0]
        guard sws_scale(sws, planes, strides, 0, f.height, &outPlanes, &outStrides) == Int32(height) else {
            var owned: UnsafeMutablePointer<AVFrame>? = smaller
            av_frame_free(&owned)
            return nil
        }
        // One factor on both sides kept the shape (up to rounding): the stored pixel aspect still holds.
        smaller.pointee.color_range = AVCOL_RANGE_JPEG
        smaller.pointee.colorspace = AVCOL_SPC_RGB
        return smaller
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

    /// NAL length size of avcC extradata (mp4), or 0 for Annex B start codes.
    static func avccLengthSize(_ par: UnsafeMutablePointer<AVCodecParameters>) -> Int {
        let p = par.pointee
        guard p.extradata_size >= 7, let e = p.extradata, e[0] == 1 else { return 0 }
        return Int(e[4] & 3) + 1
    }
}
