// WAV files through libsndfile: it walks RIFF chunks properly (RAVDESS data chunks sit after
// FLLR/LIST/bext chunks, not at byte 44) and reads PCM exactly.
import CSndFile
import Foundation

/// An open libsndfile handle; closed when the value goes away.
struct SndFileInput: ~Copyable {
    let path: String
    let handle: OpaquePointer
    let info: SF_INFO

    /// sf_open reports failures through a process-wide error slot, so opening is serialised to keep
    /// each file's reason its own. Opening only parses the header, so the lock is held briefly.
    private static let openLock = NSLock()

    /// What opening a WAV gives: libsndfile's reader, or, for a header libsndfile gives up on although its
    /// layout holds together (thousands of chunks before `data`), its refusal, for libavformat to read the
    /// file instead (the refusal stands when libav cannot).
    enum Opening: ~Copyable {
        case sndfile(SndFileInput)
        case libav(refusal: MediaError)
    }

    static func open(_ path: String) throws(MediaError) -> Opening {
        let size = try FileChecks.requireNonEmptyFile(path)
        var info = SF_INFO()
        // Opened here because libsndfile's own open refuses paths over 1024 bytes. The descriptor is
        // libsndfile's from here on, whatever happens: sf_close closes it, and so does a failed open,
        // even when asked not to (1.2.0) — closing it here too once closed another thread's file.
        let descriptor = Foundation.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        openLock.lock()
        let handle = sf_open_fd(descriptor, Int32(SFM_READ), &info, Int32(SF_TRUE))
        let reason = handle == nil ? String(cString: sf_strerror(nil)) : ""
        openLock.unlock()
        guard let handle else {
            // A RIFF header that libsndfile cannot parse is a damaged WAV; anything else is not a WAV at all.
            let head = FileChecks.head(path, count: 12)
            if let other = Self.otherContainer(head) { throw .notMedia(path: path, reason: "\(other), not a WAV as its name says") }
            guard RiffLayout.hasRiffMagic(head) else {
                // libsndfile only says "Format not recognised.": libavformat may know what the content is (AAC in ADTS).
                if let other = LibavInput.recognisedFormatDescription(path) {
                    throw .notMedia(path: path, reason: "its content is \(other), not a WAV as its name says")
                }
                throw .notMedia(path: path, reason: "not a WAV (it has no RIFF header), nor content that libsndfile or libavformat recognises")
            }
            let chunks = RiffLayout.walk(path)
            // libsndfile's words for a field it refuses ("SF_INFO struct incomplete") name no field.
            let refusal = MediaError.truncated(path: path, reason: chunks?.chunkLimitProblem ?? chunks?.formatProblem ?? chunks?.orderProblem
                                               ?? chunks?.cutShort(fileSize: size) ?? chunks?.blockLayoutProblem ?? reason)
            // A damaged header, or fields no reader takes, stays refused: libav would read it leniently, as garbage.
            guard chunks?.formatProblem == nil else { throw refusal }
            // A coding libsndfile does not know (G.726) is no damage: libav decodes it, or says it cannot, by the coding's name.
            if let coding = chunks?.codingOnlyLibavReads(fileSize: size) {
                return .libav(refusal: .unsupportedCodec(path: path, codec: String(format: "WAV format tag 0x%04X", coding)))
            }
            guard chunks?.isSoundPlainLayout(fileSize: size) == true else { throw refusal }
            return .libav(refusal: refusal)
        }
        let input = SndFileInput(path: path, handle: handle, info: info)
        // libsndfile also reads FLAC, Ogg, MP3, AIFF, ...: a file named .wav holding one of those is not what
        // its name says, as an MP4 named .wav is not.
        guard input.isWaveFamily else {
            throw .notMedia(path: path, reason: "its content is \(input.majorName()), not a WAV as its name says")
        }
        let chunks = RiffLayout.walk(path)
        if let cut = chunks?.cutShort(fileSize: size) { throw .truncated(path: path, reason: cut) }
        // A data chunk of size 0 with bytes after it: libsndfile takes the 0 and reads nothing. A streamed WAV leaves its
        // RIFF size unfilled too, and its samples run to the end of the file: libav reads them, as ffmpeg does. With the
        // RIFF size filled in, other chunks (LIST, bext) may follow the samples, and where they start is not known.
        if info.frames == 0, let chunks, chunks.formatBeforeData, chunks.formatProblem == nil, chunks.dataEnd == nil,
           let start = chunks.dataOffset, Int64(clamping: start) + 8 < size {
            let following = size - Int64(clamping: start) - 8
            guard chunks.riffSizeIsPlaceholder else {
                throw .truncated(path: path, reason: "its data chunk declares 0 bytes although \(following) bytes follow it, and its RIFF "
                                 + "header's size is filled in: where the samples end is not known (other chunks may follow them)")
            }
            return .libav(refusal: .truncated(path: path, reason: "its data chunk declares 0 bytes, and no reader takes the \(following) bytes after it"))
        }
        return .sndfile(input)
    }

    /// The container a file's first bytes announce, among those libsndfile does not read (it only says it
    /// does not know the format), or nil.
    static func otherContainer(_ head: [UInt8]) -> String? {
        if head.count >= 8, String(decoding: head[4..<8], as: UTF8.self) == "ftyp" { return "an MP4/MOV file (it starts with an ftyp box)" }
        if head.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) { return "a Matroska/WebM file (it starts with an EBML header)" }
        if head.count >= 12, head.starts(with: Array("RIFF".utf8)), String(decoding: head[8..<12], as: UTF8.self) == "AVI " { return "an AVI file" }
        return nil
    }

    deinit { sf_close(handle) }

    var subtype: Int32 { info.format & Int32(SF_FORMAT_SUBMASK) }
    var isBigEndian: Bool { info.format & Int32(SF_FORMAT_ENDMASK) == Int32(SF_ENDIAN_BIG) }

    func facts() -> MediaFacts {
        let rate = Int(info.samplerate), channels = Int(info.channels)
        let duration = rate > 0 ? Double(info.frames) / Double(rate) : nil
        let pcm = PcmNames.lookup(subtype: subtype, bigEndian: isBigEndian)
        let stream = StreamFacts(index: 0, kind: .audio, codec: pcm?.codec ?? subtypeName(),
                                 sampleRate: rate, channels: channels, sampleFormat: pcm?.sampleFormat,
                                 durationSeconds: duration)
        let bitRate = pcm.map { rate * channels * $0.bits }
        return MediaFacts(container: containerName(), durationSeconds: duration, bitRate: bitRate, streams: [stream])
    }

    /// Every frame, as interleaved floats in chunks of up to `chunkFrames` frames; integer PCM is scaled
    /// by 1/2^(bits-1), so 16-bit samples map back to their exact integers when multiplied by 32768.
    /// A read error is thrown after the last chunk.
    func readChunks(chunkFrames: Int = 16_384, stop: StopCheck = .never,
                    _ body: (UnsafeBufferPointer<Float>) -> Void) throws(MediaError) {
        let channels = Int(info.channels)
        guard channels > 0 else { throw .notMedia(path: path, reason: "WAV declares 0 channels") }
        var chunk = [Float](repeating: 0, count: max(chunkFrames, 1) * channels)
        while true {
            if stop.isRequested { throw .stopped(path: path) }
            let got = Int(sf_readf_float(handle, &chunk, sf_count_t(max(chunkFrames, 1))))
            if got <= 0 { break }
            chunk.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[0..<(got * channels)])) }
        }
        if sf_error(handle) != 0 {
            throw .decodeFailed(path: path, reason: String(cString: sf_strerror(handle)))
        }
    }

    /// RIFF WAV and its relatives (WAVEX, RF64, Sony Wave64): what a `.wav` name promises.
    var isWaveFamily: Bool {
        [SF_FORMAT_WAV, SF_FORMAT_WAVEX, SF_FORMAT_RF64, SF_FORMAT_W64].map(Int32.init).contains(info.format & Int32(SF_FORMAT_TYPEMASK))
    }

    private func containerName() -> String {
        switch info.format & Int32(SF_FORMAT_TYPEMASK) {
        case Int32(SF_FORMAT_WAV), Int32(SF_FORMAT_WAVEX): "wav"
        case Int32(SF_FORMAT_RF64): "rf64"
        default: majorName().lowercased()
        }
    }

    fileprivate func majorName() -> String {
        formatInfoName(Int32(info.format & Int32(SF_FORMAT_TYPEMASK)), command: Int32(SFC_GET_FORMAT_INFO))
    }

    private func subtypeName() -> String {
        formatInfoName(subtype, command: Int32(SFC_GET_FORMAT_INFO)).lowercased()
    }

    private func formatInfoName(_ format: Int32, command: Int32) -> String {
        var query = SF_FORMAT_INFO()
        query.format = format
        guard sf_command(nil, command, &query, Int32(MemoryLayout<SF_FORMAT_INFO>.size)) == 0,
              let name = query.name else { return "unknown" }
        return String(cString: name)
    }
}

/// libsndfile PCM subtypes under the names libav uses, so WAV and MP4 facts read alike.
enum PcmNames {
    struct Entry { let codec: String; let sampleFormat: String; let bits: Int }

    static func lookup(subtype: Int32, bigEndian: Bool) -> Entry? {
        let e = bigEndian ? "be" : "le"
        switch subtype {
        case Int32(SF_FORMAT_PCM_U8): return Entry(codec: "pcm_u8", sampleFormat: "u8", bits: 8)
        case Int32(SF_FORMAT_PCM_S8): return Entry(codec: "pcm_s8", sampleFormat: "u8", bits: 8)
        case Int32(SF_FORMAT_PCM_16): return Entry(codec: "pcm_s16\(e)", sampleFormat: "s16", bits: 16)
        case Int32(SF_FORMAT_PCM_24): return Entry(codec: "pcm_s24\(e)", sampleFormat: "s32", bits: 24)
        case Int32(SF_FORMAT_PCM_32): return Entry(codec: "pcm_s32\(e)", sampleFormat: "s32", bits: 32)
        case Int32(SF_FORMAT_FLOAT): return Entry(codec: "pcm_f32\(e)", sampleFormat: "flt", bits: 32)
        case Int32(SF_FORMAT_DOUBLE): return Entry(codec: "pcm_f64\(e)", sampleFormat: "dbl", bits: 64)
        case Int32(SF_FORMAT_ULAW): return Entry(codec: "pcm_mulaw", sampleFormat: "s16", bits: 8)
        case Int32(SF_FORMAT_ALAW): return Entry(codec: "pcm_alaw", sampleFormat: "s16", bits: 8)
        default: return nil
        }
    }
}
