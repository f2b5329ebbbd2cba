// Format conversion, down-mixing to mono and sample-rate conversion in one libswresample context.
import CFFmpeg

/// How many channels a recording may have: libswresample mixes at most 64 (its SWR_CH_MAX) to mono.
public enum MonoMix {
    public static let maximumChannels = 64
    public static let limitSaid = "the \(maximumChannels) mixed to mono here (libswresample's limit)"
}

/// Converts any channel layout / sample format / rate to mono Float at `outRate`.
/// Channels are averaged with equal weights (a custom matrix), not libswresample's default
/// stereo→mono mix, which for float output keeps a 1/√2 gain per channel.
final class MonoResampler {
    private var swr: OpaquePointer?
    let inRate: Int32
    let outRate: Int32

    /// Which engine resamples. Debian 12's libswresample is built with libsoxr, so this is "soxr";
    /// on builds without it we fall back to libswresample's own filter with long, finely phased taps.
    static let engine: String = {
        var mono = AVChannelLayout()
        av_channel_layout_default(&mono, 1)
        defer { av_channel_layout_uninit(&mono) }
        let probe = try? MonoResampler(inLayout: mono, inFormat: AV_SAMPLE_FMT_FLT, inRate: 48_000, outRate: 16_000)
        return probe?.usedSoxr == true ? "soxr" : "swr"
    }()

    private(set) var usedSoxr = false

    /// The lowest source rate accepted. Upsampling multiplies the sample count by outRate / inRate, so
    /// a damaged header claiming a few hertz would turn a small file into gigabytes of output: 9,600
    /// bytes of 16-bit WAV whose header says 1 Hz became 77 million samples at 16 kHz (`make fuzz`).
    static let minimumInputRate: Int32 = 1_000

    init(inLayout: AVChannelLayout, inFormat: AVSampleFormat, inRate: Int32, outRate: Int32) throws(ResamplerError) {
        LibavLog.install()  // the WAV path reaches libswresample without going through LibavLog.capturing
        guard inRate >= Self.minimumInputRate else {
            throw ResamplerError(reason: "source sample rate \(inRate) Hz is below \(Self.minimumInputRate) Hz")
        }
        self.inRate = inRate
        self.outRate = outRate
        var layout = inLayout
        var ownedDefault = AVChannelLayout()
        defer { av_channel_layout_uninit(&ownedDefault) }
        if layout.order == AV_CHANNEL_ORDER_UNSPEC {  // e.g. raw PCM: give libswresample a concrete layout
            av_channel_layout_default(&ownedDefault, layout.nb_channels)
            layout = ownedDefault
        }
        for soxr in [true, false] {
            if let ready = Self.makeContext(layout: layout, format: inFormat, inRate: inRate,
                                            outRate: outRate, soxr: soxr) {
                swr = ready
                usedSoxr = soxr
                return
            }
        }
        if layout.nb_channels > MonoMix.maximumChannels {
            throw ResamplerError(reason: "\(layout.nb_channels) channels, more than \(MonoMix.limitSaid)")
        }
        throw ResamplerError(reason: "libswresample rejected \(layout.nb_channels) channel(s) at \(inRate) Hz")
    }

    deinit { swr_free(&swr) }

    private static func makeContext(layout: AVChannelLayout, format: AVSampleFormat,
                                    inRate: Int32, outRate: Int32, soxr: Bool) -> OpaquePointer? {
        var context: OpaquePointer?
        var inLayout = layout
        var mono = AVChannelLayout()
        av_channel_layout_default(&mono, 1)
        defer { av_channel_layout_uninit(&mono) }
        guard swr_alloc_set_opts2(&context, &mono, AV_SAMPLE_FMT_FLT, outRate,
                                  &inLayout, format, inRate, 0, nil) >= 0, context != nil else {
            swr_free(&context)
            return nil
        }
        let raw = UnsafeMutableRawPointer(context)
        if soxr {
            av_opt_set(raw, "resampler", "soxr", 0)
            // 20 bits is soxr "high quality", what librosa.load(sr=…) uses (res_type soxr_hq): the
            // whole audio stage then matches librosa from the 48 kHz originals, not only from 16 kHz files.
            av_opt_set_double(raw, "precision", 20, 0)
        } else {
            av_opt_set_int(raw, "filter_size", 128, 0)   // default 32
            av_opt_set_int(raw, "phase_shift", 14, 0)    // default 10
            av_opt_set_double(raw, "cutoff", 0.97, 0)
        }
        let channels = Int(layout.nb_channels)
        let weights = [Double](repeating: 1.0 / Double(channels), count: channels)
        guard swr_set_matrix(context, weights, Int32(channels)) >= 0, swr_init(context) >= 0 else {
            swr_free(&context)
            return nil
        }
        return context
    }

    /// Converts `count` input samples per channel (plane pointers, or one pointer for packed data) and
    /// appends the output. Returns a negative libav error code on failure, else 0.
    func convert(_ input: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, count: Int32,
                 into out: inout [Float]) -> Int32 {
        let capacity = Int(swr_get_out_samples(swr, count))
        guard capacity > 0 else { return input == nil ? 0 : swr_convert(swr, nil, 0, input, count) }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: capacity))
        let produced = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var target: UnsafeMutablePointer<UInt8>? = UnsafeMutableRawPointer(buffer.baseAddress! + start)
                .assumingMemoryBound(to: UInt8.self)
            return swr_convert(swr, &target, Int32(capacity), input, count)
        }
        out.removeLast(capacity - max(Int(produced), 0))
        return min(produced, 0)
    }

    /// Drains the samples the filter still holds.
    func flush(into out: inout [Float]) -> Int32 {
        while true {
            let before = out.count
            let status = convert(nil, count: 0, into: &out)
            if status < 0 { return status }
            if out.count == before { return 0 }
        }
    }
}

struct ResamplerError: Error { let reason: String }
