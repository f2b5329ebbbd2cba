// Audio from containers (AAC, MP3 in mp4, ...) through libavcodec, mixed to mono and resampled.
import CFFmpeg

/// libav error codes that are function-like macros in C and so not imported into Swift.
enum AVCode {
    static let eof: Int32 = -0x2046_4F45            // AVERROR_EOF = -MKTAG('E','O','F',' ')
    static let again: Int32 = -Int32(EAGAIN)         // AVERROR(EAGAIN)
    static let streamNotFound: Int32 = -0x5254_53F8  // AVERROR_STREAM_NOT_FOUND = -MKTAG(0xF8,'S','T','R')
    static let decoderNotFound: Int32 = -0x4345_44F8 // AVERROR_DECODER_NOT_FOUND = -MKTAG(0xF8,'D','E','C')
    static let invalidArgument: Int32 = -Int32(EINVAL)  // AVERROR(EINVAL)
}

/// An opened decoder for one stream; freed when the value goes away.
struct AudioCodec: ~Copyable {
    let context: UnsafeMutablePointer<AVCodecContext>

    static func open(_ stream: UnsafeMutablePointer<AVStream>, path: String,
                     log: LogCapture) throws(MediaError) -> AudioCodec {
        let parameters = stream.pointee.codecpar!
        let name = String(cString: avcodec_get_name(parameters.pointee.codec_id))
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw .unsupportedCodec(path: path, codec: name)
        }
        guard let context = avcodec_alloc_context3(codec) else {
            throw .decodeFailed(path: path, reason: "out of memory")
        }
        let decoder = AudioCodec(context: context)
        var status = avcodec_parameters_to_context(context, parameters)
        if status < 0 { throw .decodeFailed(path: path, reason: LibavLog.reason(status, log)) }
        context.pointee.pkt_timebase = stream.pointee.time_base
        context.pointee.thread_count = 1  // deterministic, and callers already run files in parallel
        status = avcodec_open2(context, codec, nil)
        if status < 0 { throw .decodeFailed(path: path, reason: "\(name): \(LibavLog.reason(status, log))") }
        return decoder
    }

    deinit {
        var owned: UnsafeMutablePointer<AVCodecContext>? = context
        avcodec_free_context(&owned)
    }
}

enum LibavAudio {
    /// Decodes the audio stream (`preferredAudio`), handing `deliver` the mono samples of each decoded frame.
    static func decode(path: String, sampleRate: Int, stop: StopCheck = .never,
                       _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) -> MonoAudioFormat {
        try LibavLog.capturing { (log) throws(MediaError) -> MonoAudioFormat in
            let input = try LibavInput.open(path, log: log)
            let stream = try audioStream(input, log: log)
            input.discardStreams(except: stream)
            let decoder = try AudioCodec.open(stream, path: path, log: log)
            var sink = MonoSink(path: path, outRate: Int32(sampleRate))
            try pump(input, stream: stream, decoder: decoder, sink: &sink, log: log, stop: stop, deliver)
            try sink.finish(deliver)
            return MonoAudioFormat(sourceSampleRate: Int(sink.sourceRate), sourceChannels: Int(sink.sourceChannels), samples: 0)
        }
    }

    /// The audio stream a file's audio is read from when it has several (a second language, a commentary):
    /// the one marked default, else the first. The same rule for files and streams.
    static func preferredAudio(_ streams: [UnsafeMutablePointer<AVStream>]) -> UnsafeMutablePointer<AVStream>? {
        let audio = streams.filter { $0.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO }
        return audio.first { $0.pointee.disposition & AV_DISPOSITION_DEFAULT != 0 } ?? audio.first
    }

    /// The audio stream (`preferredAudio`). Header-only opening is enough for mp4 (skipping avformat_find_stream_info
    /// avoids decoding video); formats whose headers lack audio parameters get the full look.
    private static func audioStream(_ input: borrowing LibavInput,
                                    log: LogCapture) throws(MediaError) -> UnsafeMutablePointer<AVStream> {
        func chosen() -> UnsafeMutablePointer<AVStream>? { preferredAudio(input.streams) }
        if let stream = chosen(), stream.pointee.codecpar.pointee.sample_rate > 0,
           stream.pointee.codecpar.pointee.ch_layout.nb_channels > 0 {
            return stream
        }
        try input.findStreamInfo(log: log)
        guard let stream = chosen() else { throw .noAudioStream(path: input.path) }
        return stream
    }

    /// Demux → decode → sink, then drain the decoder. Any damaged packet fails the file: a dataset
    /// pipeline should drop a damaged clip with a reason rather than learn from a glitch.
    private static func pump(_ input: borrowing LibavInput, stream: UnsafeMutablePointer<AVStream>,
                             decoder: borrowing AudioCodec, sink: inout MonoSink, log: LogCapture, stop: StopCheck,
                             _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        var packet = av_packet_alloc()
        var frame = av_frame_alloc()
        defer { av_packet_free(&packet); av_frame_free(&frame) }
        guard let packet, let frame else { throw .decodeFailed(path: input.path, reason: "out of memory") }
        while true {
            if stop.isRequested { throw .stopped(path: input.path) }
            let read = av_read_frame(input.context, packet)
            if read == AVCode.eof { break }
            if read < 0 { throw .truncated(path: input.path, reason: LibavLog.reason(read, log)) }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == stream.pointee.index else { continue }
            let sent = avcodec_send_packet(decoder.context, packet)
            if sent < 0 { throw .decodeFailed(path: input.path, reason: LibavLog.reason(sent, log)) }
            try drain(decoder, frame: frame, sink: &sink, path: input.path, log: log, deliver)
        }
        _ = avcodec_send_packet(decoder.context, nil)  // enter draining mode
        try drain(decoder, frame: frame, sink: &sink, path: input.path, log: log, deliver)
    }

    private static func drain(_ decoder: borrowing AudioCodec, frame: UnsafeMutablePointer<AVFrame>,
                              sink: inout MonoSink, path: String, log: LogCapture,
                              _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        while true {
            let got = avcodec_receive_frame(decoder.context, frame)
            if got == AVCode.again || got == AVCode.eof { return }
            if got < 0 { throw .decodeFailed(path: path, reason: LibavLog.reason(got, log)) }
            defer { av_frame_unref(frame) }
            try sink.consume(frame, deliver)
        }
    }
}

/// Turns decoded frames into mono Float at the target rate, handed on frame by frame, (re)building the
/// resampler when the stream's format changes (e.g. an AAC stream that switches layout mid-file).
struct MonoSink {
    let path: String
    let outRate: Int32
    /// One frame's output, reused.
    private var samples: [Float] = []
    private(set) var sourceRate: Int32 = 0
    private(set) var sourceChannels: Int32 = 0
    private var sourceFormat: Int32 = -1
    private var resampler: MonoResampler?

    init(path: String, outRate: Int32) { self.path = path; self.outRate = outRate }

    mutating func consume(_ frame: UnsafeMutablePointer<AVFrame>,
                          _ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        let f = frame.pointee
        if resampler == nil || f.sample_rate != sourceRate || f.ch_layout.nb_channels != sourceChannels
            || f.format != sourceFormat {
            try finish(deliver)
            do {
                resampler = try MonoResampler(inLayout: f.ch_layout, inFormat: AVSampleFormat(rawValue: f.format),
                                              inRate: f.sample_rate, outRate: outRate)
            } catch {
                throw .decodeFailed(path: path, reason: error.reason)
            }
            (sourceRate, sourceChannels, sourceFormat) = (f.sample_rate, f.ch_layout.nb_channels, f.format)
        }
        let planes = UnsafeMutableRawPointer(f.extended_data).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
        samples.removeAll(keepingCapacity: true)
        let status = resampler!.convert(planes, count: f.nb_samples, into: &samples)
        if status < 0 { throw .decodeFailed(path: path, reason: LibavLog.describe(status)) }
        samples.withUnsafeBufferPointer { if !$0.isEmpty { deliver($0) } }
    }

    /// Flushes the filter tail of the current resampler.
    mutating func finish(_ deliver: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        guard let resampler else { return }
        samples.removeAll(keepingCapacity: true)
        let status = resampler.flush(into: &samples)
        if status < 0 { throw .decodeFailed(path: path, reason: LibavLog.describe(status)) }
        samples.withUnsafeBufferPointer { if !$0.isEmpty { deliver($0) } }
        self.resampler = nil
    }
}
