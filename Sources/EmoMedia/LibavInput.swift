// Containers through libavformat: opening, classifying failures, and reading stream facts. The one input
// type behind probing, audio decoding (LibavAudio) and video frame sampling (LibavVideo).
import CFFmpeg
import Foundation

/// How a container is opened.
enum LibavOpenMode {
    /// Probing and audio: probing is capped (RAVDESS mp4s carry everything in the moov header, so a later
    /// `findStreamInfo` stays cheap) and a sample index that runs past the end of the file is refused as
    /// truncated.
    case complete
    /// Video sampling: libav's default probing, and a file cut short after its header still opens, so
    /// frames can be sampled from the part that exists (the sampler reports it as truncated).
    case salvage
}

/// An open AVFormatContext; closed when the value goes away.
struct LibavInput: ~Copyable {
    let path: String
    let context: UnsafeMutablePointer<AVFormatContext>
    let fileSize: Int64

    /// Opens the container (header only).
    static func open(_ path: String, log: LogCapture, mode: LibavOpenMode = .complete) throws(MediaError) -> LibavInput {
        let size = try FileChecks.requireNonEmptyFile(path)
        guard var context = avformat_alloc_context() else {
            throw .unreadable(path: path, reason: "out of memory")
        }
        if mode == .complete {
            context.pointee.probesize = 1 << 20
            context.pointee.max_analyze_duration = Int64(AV_TIME_BASE) / 2
        }
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        av_dict_set(&options, "format_whitelist", permittedDemuxers, 0)
        av_dict_set(&options, "protocol_whitelist", "file", 0)
        var maybeContext: UnsafeMutablePointer<AVFormatContext>? = context
        // "file:" so that a name with a colon ("take:2.mp4") is not read as a protocol.
        let opened = avformat_open_input(&maybeContext, "file:" + path, nil, &options)  // frees the context on failure
        guard opened >= 0, let ready = maybeContext else {
            throw classifyOpenFailure(path, code: opened, log: log)
        }
        context = ready
        let input = LibavInput(path: path, context: context, fileSize: size)
        if mode == .complete { try input.checkIndexFitsFile() }
        return input
    }

    /// Demuxers whose "file" is a list of other files or addresses (playlists, concat lists, session
    /// descriptions, image sequences) or a script. A recording is one self-contained file: through these, a
    /// 60-byte file would read files no hash covers (cached work going stale unseen), reach outside the data
    /// root, or wait for ever on a live playlist or a FIFO. They are not on the whitelist every open gives libavformat.
    /// (mlv reads its siblings `.m00`…`.m99`, vobsub its `.sub`; dvdvideo is FFmpeg 7's.)
    static let referencingDemuxers: Set<String> = ["hls", "applehttp", "concat", "dash", "imf", "sdp", "rtsp", "rtp", "sap",
                                                   "image2", "mlv", "vobsub", "dvdvideo", "avisynth", "vapoursynth"]

    /// Every demuxer this libavformat has but the referencing ones, as `format_whitelist` spells a list.
    static let permittedDemuxers: String = {
        var names: [String] = []
        var state: UnsafeMutableRawPointer?
        while let format = av_demuxer_iterate(&state) {
            let name = String(cString: format.pointee.name)
            if !isReferencing(name) { names.append(name) }
        }
        return names.joined(separator: ",")
    }()

    /// Whether a demuxer's name (libav lists aliases with commas: "mov,mp4,…") names a referencing one.
    static func isReferencing(_ demuxer: String) -> Bool {
        demuxer.split(separator: ",").contains { referencingDemuxers.contains(String($0)) }
    }

    /// Reads the first packets (within the limits set at open) to complete codec parameters.
    func findStreamInfo(log: LogCapture) throws(MediaError) {
        let found = Self.findStreamInfo(context)
        if found < 0 { throw .truncated(path: path, reason: LibavLog.reason(found, log)) }
    }

    /// avformat_find_stream_info with each stream's decoder held to the pictures `VideoCodec` decodes: probing
    /// decodes a first picture, and a 2 MB PNG of 16000 × 16000 under a clip's name took 2 GB there, before any
    /// check of its size. (Streams the probe itself discovers get libav's own bound.)
    static func findStreamInfo(_ context: UnsafeMutablePointer<AVFormatContext>) -> Int32 {
        let count = Int(context.pointee.nb_streams)
        guard count > 0 else { return avformat_find_stream_info(context, nil) }
        let options = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: count)
        options.initialize(repeating: nil, count: count)
        defer {
            for index in 0..<count { av_dict_free(options + index) }
            options.deallocate()
        }
        for index in 0..<count { av_dict_set(options + index, "max_pixels", String(VideoCodec.maximumDecodedPixels), 0) }
        return avformat_find_stream_info(context, options)
    }

    deinit {
        var owned: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&owned)
    }

    var streams: [UnsafeMutablePointer<AVStream>] {
        let count = Int(context.pointee.nb_streams)
        guard count > 0, let list = context.pointee.streams else { return [] }
        return (0..<count).compactMap { list[$0] }
    }

    /// Makes the demuxer skip the data of every stream but `kept`.
    func discardStreams(except kept: UnsafeMutablePointer<AVStream>) {
        for other in streams where other != kept { other.pointee.discard = AVDISCARD_ALL }
    }

    func facts() -> MediaFacts {
        let c = context.pointee
        let duration = c.duration > 0 ? Double(c.duration) / Double(AV_TIME_BASE) : nil
        let container = c.iformat.map { String(cString: $0.pointee.name) } ?? "unknown"
        return MediaFacts(container: container, durationSeconds: duration,
                          bitRate: c.bit_rate > 0 ? Int(c.bit_rate) : nil,
                          streams: streams.map(StreamReader.facts))
    }

    /// Demuxers with a full sample index (mov/mp4) know where every packet lives. A packet past the end
    /// of the file means the file was cut short: the header survived, the media data did not.
    private func checkIndexFitsFile() throws(MediaError) {
        var furthest: Int64 = 0
        for stream in streams {
            let count = avformat_index_get_entries_count(stream)
            guard count > 0 else { continue }
            for i in 0..<count {
                guard let entry = avformat_index_get_entry(stream, i)?.pointee else { continue }
                furthest = max(furthest, entry.pos + Int64(entry.size))
            }
        }
        if furthest > fileSize {
            throw .truncated(path: path,
                             reason: "media data runs to byte \(furthest) but the file has \(fileSize) bytes")
        }
    }

    /// A file whose first bytes a demuxer recognises but cannot open is damaged; otherwise it is not media.
    private static func classifyOpenFailure(_ path: String, code: Int32, log: LogCapture) -> MediaError {
        let reason = LibavLog.reason(code, log)
        if code == -ENOENT { return .fileNotFound(path: path) }
        if code == -EACCES || code == -EIO { return .unreadable(path: path, reason: reason) }
        // A header whose counts ask for gigabytes (an mp4's stco or stts of 2^31 entries) fails libavformat's allocation:
        // most often the file's fault, though a tight memory limit (`ulimit -v`) can be the cause too.
        if code == -ENOMEM {
            return .truncated(path: path, reason: "libavformat could not allocate what its header declares: a count or size in it is damaged, "
                              + "or this process's memory limit is too low: \(reason)")
        }
        let guessed = recognisedFormat(path)
        if let format = refusedDemuxer(path, guessed: guessed, code: code, log: log) {
            let kinds = "(a playlist, concat list, image sequence or session description)"
            guard let format else {
                // Chosen by the whole probe (more bytes, the extension weighed in) where ours could not name it:
                // most often a recording under another format's extension (an mp3 named .jpg).
                let suffix = (path as NSString).pathExtension
                return .notMedia(path: path, reason: "libavformat took it, by its content or its extension\(suffix.isEmpty ? "" : " (.\(suffix.echoed))"), "
                                 + "for a format that reads other files or addresses \(kinds): if it is a recording, give it its format's extension")
            }
            return .notMedia(path: path, reason: "libavformat reads it as \(format), which reads other files or addresses \(kinds), "
                             + "not a self-contained recording: give emopipe the media file itself")
        }
        return guessed != nil
            ? .truncated(path: path, reason: reason)
            : .notMedia(path: path, reason: reason)
    }

    /// The referencing demuxer libavformat chose for the file and the whitelist refused, if it did: guessed
    /// from the content, else (libavformat weighs the name's extension too, as image2 does) with the name.
    /// Nil when no referencing demuxer was refused; `.some(nil)` when one was but the probe cannot name it.
    private static func refusedDemuxer(_ path: String, guessed: String?, code: Int32, log: LogCapture) -> String?? {
        if let guessed, isReferencing(guessed) { return .some(guessed) }
        guard code == AVCode.invalidArgument, log.lastError?.contains("not on whitelist") == true else { return nil }
        return .some(recognisedFormat(path, byName: true).flatMap { isReferencing($0) ? $0 : nil })
    }

    /// The format libavformat guesses from content alone (no file name, so ".mp4" on random bytes does not
    /// count), or with `byName` from the name's extension as well.
    static func recognisedFormat(_ path: String, byName: Bool = false) -> String? {
        recognisedInputFormat(path, byName: byName).map { String(cString: $0.pointee.name) }
    }

    /// The format libavformat guesses from content alone, by its long name ("ADTS AAC (Advanced Audio Coding)").
    static func recognisedFormatDescription(_ path: String) -> String? {
        recognisedInputFormat(path).map { String(cString: $0.pointee.long_name ?? $0.pointee.name) }
    }

    private static func recognisedInputFormat(_ path: String, byName: Bool = false) -> UnsafePointer<AVInputFormat>? {
        let head = FileChecks.head(path, count: 4096)
        guard !head.isEmpty else { return nil }
        var padded = head + [UInt8](repeating: 0, count: Int(AVPROBE_PADDING_SIZE))
        var score: Int32 = 0
        let format: UnsafePointer<AVInputFormat>? = padded.withUnsafeMutableBufferPointer { buffer in
            (byName ? path : "").withCString { name in
                var probe = AVProbeData()
                probe.filename = name
                probe.buf = buffer.baseAddress
                probe.buf_size = Int32(head.count)
                return av_probe_input_format3(&probe, 1, &score)
            }
        }
        let retryScore: Int32 = 25  // AVPROBE_SCORE_RETRY: below it libav itself calls a guess unreliable
        guard let format, score > retryScore else { return nil }
        return format
    }
}

/// Facts for one AVStream, read from codec parameters and side data only (no decoding).
enum StreamReader {
    static func facts(_ stream: UnsafeMutablePointer<AVStream>) -> StreamFacts {
        let st = stream.pointee
        let par = st.codecpar.pointee
        // Cover art is a video stream of one picture to libav: no video to the pipeline.
        let attachedPicture = par.codec_type == AVMEDIA_TYPE_VIDEO && st.disposition & AV_DISPOSITION_ATTACHED_PIC != 0
        var facts = StreamFacts(index: Int(st.index), kind: attachedPicture ? .picture : kind(par.codec_type),
                                codec: String(cString: avcodec_get_name(par.codec_id)),
                                durationSeconds: seconds(st.duration, st.time_base))
        if par.codec_id == AV_CODEC_ID_NONE { facts.codecTag = fourCC(par.codec_tag) }
        switch facts.kind {
        case .video:
            facts.width = par.width > 0 ? Int(par.width) : nil
            facts.height = par.height > 0 ? Int(par.height) : nil
            facts.frameRate = rate(st.avg_frame_rate) ?? rate(st.r_frame_rate)
            facts.rotationDegrees = rotation(stream)
        case .audio:
            facts.sampleRate = par.sample_rate > 0 ? Int(par.sample_rate) : nil
            // FFmpeg 5.1: the channel count lives in ch_layout; `channels` is deprecated.
            facts.channels = par.ch_layout.nb_channels > 0 ? Int(par.ch_layout.nb_channels) : nil
            facts.sampleFormat = av_get_sample_fmt_name(AVSampleFormat(rawValue: par.format)).map { String(cString: $0) }
        default:
            break
        }
        return facts
    }

    static func kind(_ type: AVMediaType) -> MediaKind {
        switch type {
        case AVMEDIA_TYPE_AUDIO: .audio
        case AVMEDIA_TYPE_VIDEO: .video
        case AVMEDIA_TYPE_SUBTITLE: .subtitle
        case AVMEDIA_TYPE_DATA: .data
        default: .other
        }
    }

    /// The container's four-character code for a codec, when it is printable (mp4's sample entry, AVI's FourCC).
    static func fourCC(_ tag: UInt32) -> String? {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: tag >> (8 * $0)) }
        guard tag != 0, bytes.allSatisfy({ (0x20...0x7e).contains($0) }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// "the video codec h264", or for one libavcodec cannot tell, the container's name for it.
    static func codecNamed(_ stream: UnsafeMutablePointer<AVStream>, kind: String) -> String {
        let par = stream.pointee.codecpar.pointee
        if par.codec_id != AV_CODEC_ID_NONE { return "the \(kind) codec \(String(cString: avcodec_get_name(par.codec_id)))" }
        return fourCC(par.codec_tag).map { "the \(kind) codec '\($0)' (the container's name; not one this FFmpeg knows)" } ?? "the \(kind) codec"
    }

    static func seconds(_ value: Int64, _ base: AVRational) -> Double? {
        guard value != Int64.min, value > 0, base.den != 0 else { return nil }  // Int64.min is AV_NOPTS_VALUE
        return Double(value) * av_q2d(base)
    }

    static func rate(_ r: AVRational) -> Double? {
        r.num > 0 && r.den > 0 ? av_q2d(r) : nil
    }

    /// The display matrix stores a counter-clockwise angle; report the clockwise turn a player applies,
    /// normalised into 0..<360 (so a phone clip shot upright reads 90).
    static func rotation(_ stream: UnsafeMutablePointer<AVStream>) -> Int? {
        guard let angle = displayMatrixAngle(stream) else { return nil }
        return normalisedDegrees(Int((-angle).rounded()))
    }

    /// The clockwise turn snapped to quarter turns (0, 90, 180, 270), 0 without a display matrix: the
    /// exact pixel moves the video frame sampler's callers apply.
    static func quarterTurnRotation(_ stream: UnsafeMutablePointer<AVStream>) -> Int {
        guard let angle = displayMatrixAngle(stream) else { return 0 }
        return normalisedDegrees(Int((-angle / 90).rounded()) * 90)
    }

    /// libav's counter-clockwise angle in degrees (-180...180) from the stream's display matrix, if any.
    private static func displayMatrixAngle(_ stream: UnsafeMutablePointer<AVStream>) -> Double? {
        var size: Int = 0
        guard let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size),
              size >= 9 * MemoryLayout<Int32>.size else { return nil }
        var matrix = data.withMemoryRebound(to: Int32.self, capacity: 9) { Array(UnsafeBufferPointer(start: $0, count: 9)) }
        // A mirroring matrix (negative determinant: a front camera's) read as a rotation is half a turn
        // off: [-1 0; 0 1] reads as 180°, which turns the face upside down. Its mirror is taken out first,
        // as players do; the picture stays mirrored, which faces and their flip augmentation do not mind.
        let determinant = Double(matrix[0]) * Double(matrix[4]) - Double(matrix[1]) * Double(matrix[3])
        if determinant < 0 { av_display_matrix_flip(&matrix, 1, 0) }
        let angle = av_display_rotation_get(matrix)
        return angle.isFinite ? angle : nil
    }

    private static func normalisedDegrees(_ degrees: Int) -> Int { ((degrees % 360) + 360) % 360 }
}
