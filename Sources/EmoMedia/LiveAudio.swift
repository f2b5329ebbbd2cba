// Audio from an input that is read once, as it arrives: standard input, an http(s)/rtsp/... URL, or a
// capture device opened through an FFmpeg input format (v4l2, alsa, pulse, lavfi, ...). Decoded,
// mixed to mono and resampled as files are (MonoSink), and handed on packet by packet.
import CFFmpeg
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where live audio comes from.
public struct LiveSource: Sendable, Equatable {
    /// What the user named: "-" for standard input, a URL, or a device name.
    public var name: String
    /// `name` as messages show it: a lavfi graph or a URL can be kilobytes long.
    public var shownName: String { name.echoed }
    /// An FFmpeg input format (demuxer or device) to open `name` with, e.g. "alsa"; nil to let FFmpeg guess.
    public var format: String?
    /// How long opening may wait for the first bytes and the stream's parameters.
    public var openTimeoutSeconds: Double
    /// How long a network read may wait for data before the stream counts as broken.
    public var readTimeoutSeconds: Double

    public init(name: String, format: String? = nil, openTimeoutSeconds: Double = 15, readTimeoutSeconds: Double = 15) {
        self.name = name; self.format = format
        self.openTimeoutSeconds = openTimeoutSeconds; self.readTimeoutSeconds = readTimeoutSeconds
    }

    /// Why FFmpeg cannot open an input with the format or device `name`, or nil when it can: asked before
    /// anything is opened, so a mistyped `--format` is a usage error, not a failure of the input.
    public static func formatProblem(_ name: String) -> String? {
        inputFormat(named: name) == nil ? unknownFormat(name) : nil
    }

    static func inputFormat(named name: String) -> UnsafePointer<AVInputFormat>? {
        guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
        CaptureDevices.register()
        return av_find_input_format(name)
    }

    static func unknownFormat(_ name: String) -> String {
        let devices = CaptureDevices.available ? "" : "; capture devices need libavdevice\(LIBAVFORMAT_VERSION_MAJOR), which is not installed"
        return "FFmpeg has no input format or device named \"\(name.echoed)\" (`ffmpeg -formats` and `ffmpeg -devices` list them)\(devices)"
    }

    /// Whether an input given on the command line is a stream rather than a file: "-", a pipe, or a URL.
    /// A name that is there as a file (a recording called `pipe:0.wav`, a folder `http:`) is that file:
    /// the user named it, and reading standard input instead would wait for a writer that never comes.
    public static func isStream(_ input: String) -> Bool {
        if input == "-" { return true }
        let looksLikeStream = input.hasPrefix("pipe:") || input.range(of: "^[A-Za-z][A-Za-z0-9+.-]*://", options: .regularExpression) != nil
        guard looksLikeStream else { return false }
        var facts = stat()
        return lstat(input, &facts) != 0
    }

    /// The URL FFmpeg opens: standard input is its `pipe:0`, unless it is redirected from a regular file
    /// (`- < clip.mp4`, as predict advises for a recording too long to read whole): that is opened as the
    /// file, so FFmpeg may seek, which an mp4 with its index at the end (ffmpeg's default) needs.
    /// Only when it is read from its start and this process may open it by that name again (not when
    /// another user's file was handed over, or there is no /dev/stdin): else `pipe:0`, as before.
    var url: String {
        guard name == "-" else { return name }
        var facts = stat()
        guard fstat(0, &facts) == 0, facts.st_mode & S_IFMT == S_IFREG, lseek(0, 0, SEEK_CUR) == 0 else { return "pipe:0" }
        let again = Glibc.open("/dev/stdin", O_RDONLY | O_CLOEXEC)
        guard again >= 0 else { return "pipe:0" }
        close(again)
        return "file:/dev/stdin"
    }
    /// Network protocols take a read timeout; pipes and devices wait as long as their writer does.
    var isNetwork: Bool { name.contains("://") }
}

/// How live reading ended.
public enum LiveEnd: Sendable, Equatable {
    /// The stream ended (EOF).
    case endOfStream
    /// `stop` said so (SIGINT).
    case stopped
    /// Reading failed after audio had arrived (a server closing a stream of unknown length, a network
    /// timeout): what arrived is whole, and the reason is kept.
    case brokenOff(reason: String)
}

/// Which of a live input's streams are decoded (found once the input's parameters are known).
public struct LiveStreams: Sendable, Equatable {
    public var audio: Bool
    public var video: Bool
    /// Clockwise quarter turns a player applies to the video (0, 90, 180, 270).
    public var rotation: Int
    /// Why a wanted video stream is not read although the input has one (its decoder does not open):
    /// the audio is read alone then.
    public var videoProblem: String?

    public init(audio: Bool, video: Bool, rotation: Int = 0, videoProblem: String? = nil) {
        self.audio = audio; self.video = video; self.rotation = rotation; self.videoProblem = videoProblem
    }
}

/// One decoded picture of a live video stream.
public struct LiveVideoFrame: Sendable {
    public var frame: VideoFrame
    /// Presentation time in seconds on the stream's clock: 0 is the first audio sample delivered, or,
    /// without audio, the first picture.
    public var time: Double
}

public enum LiveAudio {
    /// Reads `source` until it ends or `stop()` returns true, handing `deliver` mono samples at
    /// `sampleRate` as they are decoded. `stop` is also polled while FFmpeg waits for data.
    public static func read(_ source: LiveSource, sampleRate: Int, stop: @escaping @Sendable () -> Bool,
                            deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) -> LiveEnd {
        try read(source, sampleRate: sampleRate, wanted: LiveStreams(audio: true, video: false), stop: stop,
                 started: { _ in }, deliver: deliver, picture: { _ in })
    }

    /// Reads the audio and/or video `wanted` from one demuxer: samples go to `deliver` as above, pictures
    /// to `picture` in presentation order. `started` learns which streams are read before any data; a
    /// wanted stream the input lacks is left out, and an input with none of them is refused
    /// (`.noAudioStream` when audio was wanted, `.noVideoStream` otherwise).
    public static func read(_ source: LiveSource, sampleRate: Int, wanted: LiveStreams,
                            stop: @escaping @Sendable () -> Bool, started: (LiveStreams) -> Void,
                            deliver: (UnsafeBufferPointer<Float>) -> Void,
                            picture: (LiveVideoFrame) -> Void) throws(MediaError) -> LiveEnd {
        guard (1...768_000).contains(sampleRate) else {
            throw .invalidArgument(path: source.shownName, reason: "sample rate \(sampleRate) Hz is out of range")
        }
        return try LibavLog.capturing { (log) throws(MediaError) -> LiveEnd in
            let watch = InterruptWatch(stop: stop)
            defer { withExtendedLifetime(watch) {} }  // FFmpeg holds it unretained until the input is closed
            let input: UnsafeMutablePointer<AVFormatContext>
            do throws(MediaError) { input = try open(source, watch: watch, log: log) } catch {
                if watch.stop() { return .stopped }  // SIGINT while waiting for the first bytes
                throw error
            }
            defer { var owned: UnsafeMutablePointer<AVFormatContext>? = input; avformat_close_input(&owned) }
            let chosen: ChosenStreams
            do throws(MediaError) { chosen = try findStreams(input, wanted: wanted, source: source, watch: watch, log: log) } catch {
                if watch.stop() { return .stopped }
                throw error
            }
            watch.deadline = nil  // open and probe done; reads now wait as long as the source needs
            let kept = [chosen.audio, chosen.video].compactMap { $0 }
            for other in streams(input) where !kept.contains(other) { other.pointee.discard = AVDISCARD_ALL }
            var audio: LiveAudioDecoder?
            if let stream = chosen.audio { audio = LiveAudioDecoder(codec: try AudioCodec.open(stream, path: source.shownName, log: log), stream: stream) }
            var video: LiveVideoDecoder?
            var videoProblem: String?
            if let stream = chosen.video {
                // A video that cannot be decoded leaves the audio to be read, as a file's does.
                do throws(MediaError) { video = try LiveVideoDecoder(stream, source: source) } catch {
                    guard audio != nil else { throw error }
                    let said = "\(error)", named = source.shownName + ": "
                    videoProblem = said.hasPrefix(named) ? String(said.dropFirst(named.count)) : said
                    stream.pointee.discard = AVDISCARD_ALL
                }
            }
            started(LiveStreams(audio: audio != nil, video: video != nil, rotation: video?.rotation ?? 0, videoProblem: videoProblem))
            var sink = MonoSink(path: source.shownName, outRate: Int32(sampleRate))
            var clock = LiveClock(audioStream: chosen.audio)
            let end = try pump(input, audio: audio, video: video, sink: &sink, clock: &clock, source: source, watch: watch,
                               log: log, deliver, picture)
            if audio != nil { try sink.finish(deliver) }
            return end
        }
    }

    /// Opens the input, with small probing (the first window should not wait for seconds of probe
    /// data), a read timeout for network protocols, and the interrupt callback.
    private static func open(_ source: LiveSource, watch: InterruptWatch,
                             log: LogCapture) throws(MediaError) -> UnsafeMutablePointer<AVFormatContext> {
        var format: UnsafePointer<AVInputFormat>?
        if let name = source.format {
            format = LiveSource.inputFormat(named: name)
            guard format != nil else { throw .invalidArgument(path: source.shownName, reason: LiveSource.unknownFormat(name)) }
        }
        guard let context = avformat_alloc_context() else { throw .unreadable(path: source.shownName, reason: "out of memory") }
        context.pointee.probesize = 32 * 1024
        context.pointee.max_analyze_duration = Int64(AV_TIME_BASE) / 2
        context.pointee.interrupt_callback = watch.callback
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        if source.isNetwork {
            av_dict_set(&options, "rw_timeout", String(Int64(source.readTimeoutSeconds * 1_000_000)), 0)
        }
        // A pipe or a device waits as long as its writer does (Ctrl-C ends the wait); a network input
        // that sends nothing within the timeout is refused.
        watch.deadline = source.isNetwork ? Date().addingTimeInterval(source.openTimeoutSeconds) : nil
        var maybe: UnsafeMutablePointer<AVFormatContext>? = context
        let opened = avformat_open_input(&maybe, source.url, format, &options)  // frees the context on failure
        guard opened >= 0, let ready = maybe else { throw openFailure(source, code: opened, watch: watch, log: log) }
        return ready
    }

    private static func openFailure(_ source: LiveSource, code: Int32, watch: InterruptWatch, log: LogCapture) -> MediaError {
        if watch.timedOut {
            return .unreadable(path: source.shownName, reason: "nothing readable arrived within \(Int(source.openTimeoutSeconds)) s")
        }
        let reason = LibavLog.reason(code, log)
        if code == AVCode.invalidData { return .notMedia(path: source.shownName, reason: reason) }
        if code == -ENOENT { return .fileNotFound(path: source.shownName) }
        return .unreadable(path: source.shownName, reason: reason)
    }

    private static func streams(_ input: UnsafeMutablePointer<AVFormatContext>) -> [UnsafeMutablePointer<AVStream>] {
        let count = Int(input.pointee.nb_streams)
        guard count > 0, let list = input.pointee.streams else { return [] }
        return (0..<count).compactMap { list[$0] }
    }

    struct ChosenStreams {
        var audio: UnsafeMutablePointer<AVStream>?
        var video: UnsafeMutablePointer<AVStream>?
    }

    /// The audio (`LibavAudio.preferredAudio`) and/or the first video stream wanted, once their parameters are known (a stream's header
    /// may not carry them; then FFmpeg probes the first packets).
    private static func findStreams(_ input: UnsafeMutablePointer<AVFormatContext>, wanted: LiveStreams, source: LiveSource,
                                    watch: InterruptWatch, log: LogCapture) throws(MediaError) -> ChosenStreams {
        func first() -> ChosenStreams {
            let all = streams(input)
            return ChosenStreams(
                audio: wanted.audio ? LibavAudio.preferredAudio(all) : nil,
                video: wanted.video ? all.first { isPicture($0) } : nil)
        }
        func ready(_ c: ChosenStreams) -> Bool {
            let audioReady = c.audio.map { $0.pointee.codecpar.pointee.sample_rate > 0 && $0.pointee.codecpar.pointee.ch_layout.nb_channels > 0 }
            let videoReady = c.video.map { $0.pointee.codecpar.pointee.width > 0 && $0.pointee.codecpar.pointee.height > 0 }
            // A header that lists every stream (no AVFMTCTX_NOHEADER) needs no probing for the ones it lacks.
            let complete = input.pointee.ctx_flags & Int32(AVFMTCTX_NOHEADER) == 0
            let wantedFound = (!wanted.audio || audioReady != nil) && (!wanted.video || videoReady != nil)
            return audioReady != false && videoReady != false && (audioReady != nil || videoReady != nil) && (complete || wantedFound)
        }
        let header = first()
        if ready(header) { return header }
        let found = LibavInput.findStreamInfo(input)
        if found < 0 {
            if watch.timedOut {
                throw .unreadable(path: source.shownName, reason: "its stream parameters did not arrive within \(Int(source.openTimeoutSeconds)) s")
            }
            throw .notMedia(path: source.shownName, reason: LibavLog.reason(found, log))
        }
        let probed = first()
        guard probed.audio != nil || probed.video != nil else {
            throw wanted.audio ? .noAudioStream(path: source.shownName) : .noVideoStream(path: source.shownName)
        }
        return probed
    }

    /// A video stream of moving pictures (an mp3's cover art is a video stream too, of one picture).
    private static func isPicture(_ stream: UnsafeMutablePointer<AVStream>) -> Bool {
        stream.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
            && stream.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC == 0
    }

    /// Demux → decode → deliver until the end of the stream or a stop.
    private static func pump(_ input: UnsafeMutablePointer<AVFormatContext>, audio: LiveAudioDecoder?,
                             video: LiveVideoDecoder?, sink: inout MonoSink, clock: inout LiveClock, source: LiveSource,
                             watch: InterruptWatch, log: LogCapture, _ deliver: (UnsafeBufferPointer<Float>) -> Void,
                             _ picture: (LiveVideoFrame) -> Void) throws(MediaError) -> LiveEnd {
        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer { av_packet_free(&packet); av_frame_free(&frame) }
        guard let packet, let frame else { throw .decodeFailed(path: source.shownName, reason: "out of memory") }
        let audioIndex = audio?.stream.pointee.index ?? -1
        var end = LiveEnd.endOfStream
        var anythingDecoded = false
        while true {
            if watch.stop() { return .stopped }
            let read = av_read_frame(input, packet)
            if read == AVCode.eof { break }
            if read == AVCode.exit, watch.stop() { return .stopped }
            if read < 0 {
                // A live source ends by breaking off; before any data it is broken.
                guard sink.sourceRate != 0 || anythingDecoded else {
                    throw .truncated(path: source.shownName, reason: LibavLog.reason(read, log) + pipedMP4Hint(input, source))
                }
                end = .brokenOff(reason: LibavLog.reason(read, log))
                break
            }
            defer { av_packet_unref(packet) }
            if let audio, packet.pointee.stream_index == audioIndex {
                if avcodec_send_packet(audio.codec.context, packet) < 0 { continue }  // a damaged packet of a live stream is skipped
                try receiveFrames(audio, frame: frame, sink: &sink, clock: &clock, source: source, log: log, deliver)
            } else if let video, packet.pointee.stream_index == video.index {
                if video.decode(packet, clock: &clock, picture) { anythingDecoded = true }
            }
        }
        if let audio {
            _ = avcodec_send_packet(audio.codec.context, nil)  // enter draining mode
            try receiveFrames(audio, frame: frame, sink: &sink, clock: &clock, source: source, log: log, deliver)
        }
        if let video {
            _ = video.decode(nil, clock: &clock, picture)
        }
        return end
    }

    /// An mp4 whose index follows its data is read by seeking back, which a pipe cannot do: the cure.
    private static func pipedMP4Hint(_ input: UnsafeMutablePointer<AVFormatContext>, _ source: LiveSource) -> String {
        // The URL the input was opened with: standard input's is decided once, when it is opened.
        guard let opened = input.pointee.url, String(cString: opened) == "pipe:0", let demuxer = input.pointee.iformat?.pointee.name,
              String(cString: demuxer).contains("mp4") else { return "" }
        // Said as a possibility: a damaged index at the front fails here the same way.
        return "; if its index comes after its data (ffmpeg's default), an mp4 cannot be read through a pipe: redirect the file instead "
            + "(- < FILE), or give it as a file, or rewrite it with ffmpeg -movflags +faststart"
    }

    private static func receiveFrames(_ decoder: LiveAudioDecoder, frame: UnsafeMutablePointer<AVFrame>,
                                      sink: inout MonoSink, clock: inout LiveClock, source: LiveSource, log: LogCapture,
                                      _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        while true {
            let got = avcodec_receive_frame(decoder.codec.context, frame)
            if got == AVCode.again || got == AVCode.eof { return }
            // A damaged packet (a PCM stream cut inside its last sample, say) is skipped, as one the decoder refuses.
            if got == AVCode.invalidData { return }
            if got < 0 { throw .decodeFailed(path: source.shownName, reason: LibavLog.reason(got, log)) }
            defer { av_frame_unref(frame) }
            clock.sawAudio(frame, timeBase: decoder.stream.pointee.time_base)
            try sink.consume(frame, deliver)
        }
    }
}

/// A live audio stream's decoder and its stream.
final class LiveAudioDecoder {
    let codec: AudioCodec
    let stream: UnsafeMutablePointer<AVStream>

    init(codec: consuming AudioCodec, stream: UnsafeMutablePointer<AVStream>) {
        self.codec = codec; self.stream = stream
    }
}

/// Where time 0 of a live input is: the first audio sample's presentation time when audio is read
/// (the samples are counted from it), else the first picture's.
struct LiveClock {
    private(set) var origin: Double?
    let hasAudio: Bool

    init(audioStream: UnsafeMutablePointer<AVStream>?) {
        hasAudio = audioStream != nil
        // The stream's start time, when the header gives it, is where its first sample plays.
        if let stream = audioStream, stream.pointee.start_time != Int64.min {
            origin = Double(stream.pointee.start_time) * av_q2d(stream.pointee.time_base)
        }
    }

    mutating func sawAudio(_ frame: UnsafeMutablePointer<AVFrame>, timeBase: AVRational) {
        guard origin == nil else { return }
        let pts = frame.pointee.pts != Int64.min ? frame.pointee.pts : frame.pointee.best_effort_timestamp
        origin = pts != Int64.min ? Double(pts) * av_q2d(timeBase) : 0
    }

    /// A picture's time on the clock; nil while audio is read but has not started (the picture is early).
    mutating func pictureTime(_ seconds: Double) -> Double? {
        if origin == nil, !hasAudio { origin = seconds }
        return origin.map { seconds - $0 }
    }
}

/// A live video stream's decoder: pictures come out in presentation order, each moved into its own
/// reference-counted frame.
final class LiveVideoDecoder {
    let codec: VideoCodec
    let index: Int32
    let rotation: Int
    let timeBase: AVRational
    private let scratch: UnsafeMutablePointer<AVFrame>

    init(_ stream: UnsafeMutablePointer<AVStream>, source: LiveSource) throws(MediaError) {
        guard let decoder = avcodec_find_decoder(stream.pointee.codecpar.pointee.codec_id) else {
            throw .videoDecodeFailed(path: source.shownName, reason: "there is no decoder for \(StreamReader.codecNamed(stream, kind: "video"))")
        }
        codec = try VideoCodec.open(decoder, stream: stream, threads: 1, path: source.shownName)
        guard let frame = av_frame_alloc() else { throw .videoDecodeFailed(path: source.shownName, reason: "out of memory") }
        scratch = frame
        index = stream.pointee.index
        rotation = StreamReader.quarterTurnRotation(stream)
        timeBase = stream.pointee.time_base
    }

    deinit { var f: UnsafeMutablePointer<AVFrame>? = scratch; av_frame_free(&f) }

    /// Hands a packet (nil: drain) to the decoder and the pictures it gives to `picture`; false when the
    /// decoder refused the packet (a damaged packet of a live stream is skipped).
    func decode(_ packet: UnsafeMutablePointer<AVPacket>?, clock: inout LiveClock, _ picture: (LiveVideoFrame) -> Void) -> Bool {
        var sent = avcodec_send_packet(codec.context, packet)
        if sent == AVCode.again {  // its output must be taken first
            receive(clock: &clock, picture)
            sent = avcodec_send_packet(codec.context, packet)
        }
        receive(clock: &clock, picture)
        return sent >= 0
    }

    private func receive(clock: inout LiveClock, _ picture: (LiveVideoFrame) -> Void) {
        while avcodec_receive_frame(codec.context, scratch) >= 0 {
            let pts = scratch.pointee.pts != Int64.min ? scratch.pointee.pts : scratch.pointee.best_effort_timestamp
            guard pts != Int64.min, let time = clock.pictureTime(Double(pts) * av_q2d(timeBase)),
                  let owned = av_frame_alloc() else {
                av_frame_unref(scratch)
                continue
            }
            av_frame_move_ref(owned, scratch)
            let damaged = owned.pointee.decode_error_flags != 0 || (owned.pointee.flags & AV_FRAME_FLAG_CORRUPT) != 0
            picture(LiveVideoFrame(frame: VideoFrame(frame: owned, path: codec.path, damaged: damaged, containerAspect: codec.containerAspect), time: time))
        }
    }
}

extension AVCode {
    static let exit: Int32 = -0x5449_5845          // AVERROR_EXIT = -MKTAG('E','X','I','T'): the interrupt callback said stop
    static let invalidData: Int32 = -0x4144_4E49   // AVERROR_INVALIDDATA = -MKTAG('I','N','D','A')
}

/// What FFmpeg's interrupt callback asks while it blocks: stop now (SIGINT), or has opening taken too long.
final class InterruptWatch: @unchecked Sendable {
    let stop: @Sendable () -> Bool
    /// Set while opening; nil while reading.
    var deadline: Date?
    private(set) var timedOut = false

    init(stop: @escaping @Sendable () -> Bool) { self.stop = stop }

    /// For AVFormatContext.interrupt_callback; the context never outlives the watch (both live in `read`).
    var callback: AVIOInterruptCB {
        AVIOInterruptCB(callback: { opaque in
            guard let opaque else { return 0 }
            return Unmanaged<InterruptWatch>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt() ? 1 : 0
        }, opaque: Unmanaged.passUnretained(self).toOpaque())
    }

    func shouldInterrupt() -> Bool {
        if stop() { return true }
        if let deadline, Date() > deadline { timedOut = true; return true }
        return false
    }
}

/// Capture devices (v4l2, alsa, pulse, lavfi, ...) live in libavdevice, which this package does not
/// link (no -dev package needed to build): it is loaded when a format is named, and registers them.
enum CaptureDevices {
    static func register() { _ = registered }
    static var available: Bool { registered }

    private static let registered: Bool = {
        // libavdevice's major version moves with libavformat's; another one would bring a second libavformat.
        let name = "libavdevice.so.\(LIBAVFORMAT_VERSION_MAJOR)"
        guard let library = dlopen(name, RTLD_NOW | RTLD_GLOBAL), let symbol = dlsym(library, "avdevice_register_all") else { return false }
        typealias RegisterAll = @convention(c) () -> Void
        unsafeBitCast(symbol, to: RegisterAll.self)()
        return true
    }()
}
