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

    /// Whether an input given on the command line is a stream rather than a file: "-", a pipe, or a URL.
    public static func isStream(_ input: String) -> Bool {
        input == "-" || input.hasPrefix("pipe:") || input.range(of: "^[A-Za-z][A-Za-z0-9+.-]*://", options: .regularExpression) != nil
    }

    /// The URL FFmpeg opens: standard input is its `pipe:0`.
    var url: String { name == "-" ? "pipe:0" : name }
    /// Network protocols take a read timeout; pipes and devices wait as long as their writer does.
    var isNetwork: Bool { url.contains("://") }
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

public enum LiveAudio {
    /// Reads `source` until it ends or `stop()` returns true, handing `deliver` mono samples at
    /// `sampleRate` as they are decoded. `stop` is also polled while FFmpeg waits for data.
    public static func read(_ source: LiveSource, sampleRate: Int, stop: @escaping @Sendable () -> Bool,
                            deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) -> LiveEnd {
        guard (1...768_000).contains(sampleRate) else {
            throw .invalidArgument(path: source.name, reason: "sample rate \(sampleRate) Hz is out of range")
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
            let stream: UnsafeMutablePointer<AVStream>
            do throws(MediaError) { stream = try audioStream(input, source: source, watch: watch, log: log) } catch {
                if watch.stop() { return .stopped }
                throw error
            }
            watch.deadline = nil  // open and probe done; reads now wait as long as the source needs
            for other in streams(input) where other != stream { other.pointee.discard = AVDISCARD_ALL }
            let decoder = try AudioCodec.open(stream, path: source.name, log: log)
            var sink = MonoSink(path: source.name, outRate: Int32(sampleRate))
            let end = try pump(input, stream: stream, decoder: decoder, sink: &sink, source: source, watch: watch, log: log, deliver)
            try sink.finish(deliver)
            return end
        }
    }

    /// Opens the input, with small probing (the first window should not wait for seconds of probe
    /// data), a read timeout for network protocols, and the interrupt callback.
    private static func open(_ source: LiveSource, watch: InterruptWatch,
                             log: LogCapture) throws(MediaError) -> UnsafeMutablePointer<AVFormatContext> {
        var format: UnsafePointer<AVInputFormat>?
        if let name = source.format {
            CaptureDevices.register()
            format = av_find_input_format(name)
            guard format != nil else {
                let devices = CaptureDevices.available ? "" : "; capture devices need libavdevice\(LIBAVFORMAT_VERSION_MAJOR), which is not installed"
                throw .invalidArgument(path: source.name, reason: "FFmpeg has no input format or device named \"\(name)\" (`ffmpeg -formats` and `ffmpeg -devices` list them)\(devices)")
            }
        }
        guard let context = avformat_alloc_context() else { throw .unreadable(path: source.name, reason: "out of memory") }
        context.pointee.probesize = 32 * 1024
        context.pointee.max_analyze_duration = Int64(AV_TIME_BASE) / 2
        context.pointee.interrupt_callback = watch.callback
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        if source.isNetwork {
            av_dict_set(&options, "rw_timeout", String(Int64(source.readTimeoutSeconds * 1_000_000)), 0)
        }
        watch.deadline = Date().addingTimeInterval(source.openTimeoutSeconds)
        var maybe: UnsafeMutablePointer<AVFormatContext>? = context
        let opened = avformat_open_input(&maybe, source.url, format, &options)  // frees the context on failure
        guard opened >= 0, let ready = maybe else { throw openFailure(source, code: opened, watch: watch, log: log) }
        return ready
    }

    private static func openFailure(_ source: LiveSource, code: Int32, watch: InterruptWatch, log: LogCapture) -> MediaError {
        if watch.timedOut {
            return .unreadable(path: source.name, reason: "nothing readable arrived within \(Int(source.openTimeoutSeconds)) s")
        }
        let reason = LibavLog.reason(code, log)
        if code == AVCode.invalidData { return .notMedia(path: source.name, reason: reason) }
        if code == -ENOENT { return .fileNotFound(path: source.name) }
        return .unreadable(path: source.name, reason: reason)
    }

    private static func streams(_ input: UnsafeMutablePointer<AVFormatContext>) -> [UnsafeMutablePointer<AVStream>] {
        let count = Int(input.pointee.nb_streams)
        guard count > 0, let list = input.pointee.streams else { return [] }
        return (0..<count).compactMap { list[$0] }
    }

    /// The first audio stream, once its parameters are known (a stream's header may not carry them).
    private static func audioStream(_ input: UnsafeMutablePointer<AVFormatContext>, source: LiveSource,
                                    watch: InterruptWatch, log: LogCapture) throws(MediaError) -> UnsafeMutablePointer<AVStream> {
        func first() -> UnsafeMutablePointer<AVStream>? {
            streams(input).first { $0.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO }
        }
        if let stream = first(), stream.pointee.codecpar.pointee.sample_rate > 0,
           stream.pointee.codecpar.pointee.ch_layout.nb_channels > 0 {
            return stream
        }
        let found = avformat_find_stream_info(input, nil)
        if found < 0 {
            if watch.timedOut {
                throw .unreadable(path: source.name, reason: "its stream parameters did not arrive within \(Int(source.openTimeoutSeconds)) s")
            }
            throw .notMedia(path: source.name, reason: LibavLog.reason(found, log))
        }
        guard let stream = first() else { throw .noAudioStream(path: source.name) }
        return stream
    }

    /// Demux → decode → sink until the end of the stream or a stop.
    private static func pump(_ input: UnsafeMutablePointer<AVFormatContext>, stream: UnsafeMutablePointer<AVStream>,
                             decoder: borrowing AudioCodec, sink: inout MonoSink, source: LiveSource, watch: InterruptWatch,
                             log: LogCapture, _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) -> LiveEnd {
        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer { av_packet_free(&packet); av_frame_free(&frame) }
        guard let packet, let frame else { throw .decodeFailed(path: source.name, reason: "out of memory") }
        var end = LiveEnd.endOfStream
        while true {
            if watch.stop() { return .stopped }
            let read = av_read_frame(input, packet)
            if read == AVCode.eof { break }
            if read == AVCode.exit, watch.stop() { return .stopped }
            if read < 0 {
                // A live source ends by breaking off; before any audio it is broken.
                guard sink.sourceRate != 0 else { throw .truncated(path: source.name, reason: LibavLog.reason(read, log)) }
                end = .brokenOff(reason: LibavLog.reason(read, log))
                break
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == stream.pointee.index else { continue }
            if avcodec_send_packet(decoder.context, packet) < 0 { continue }  // a damaged packet of a live stream is skipped
            try receiveFrames(decoder, frame: frame, sink: &sink, source: source, log: log, deliver)
        }
        _ = avcodec_send_packet(decoder.context, nil)  // enter draining mode
        try receiveFrames(decoder, frame: frame, sink: &sink, source: source, log: log, deliver)
        return end
    }

    private static func receiveFrames(_ decoder: borrowing AudioCodec, frame: UnsafeMutablePointer<AVFrame>,
                                      sink: inout MonoSink, source: LiveSource, log: LogCapture,
                                      _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        while true {
            let got = avcodec_receive_frame(decoder.context, frame)
            if got == AVCode.again || got == AVCode.eof { return }
            if got < 0 { throw .decodeFailed(path: source.name, reason: LibavLog.reason(got, log)) }
            defer { av_frame_unref(frame) }
            try sink.consume(frame, deliver)
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
