// Cheap checks on the raw file before any library sees it, so the common failures get precise errors.
import EmoCore
import Foundation

enum FileChecks {
    /// The file's size in bytes, after making sure it is a readable, non-empty regular file.
    static func requireNonEmptyFile(_ path: String) throws(MediaError) -> Int64 {
        // The C calls below would stop at the NUL and open another file than the one named.
        guard !path.utf8.contains(0) else {
            throw .unreadable(path: path.replacingOccurrences(of: "\0", with: "\\0"), reason: "the path holds a NUL byte, which no file name can")
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        guard access(path, R_OK) == 0 else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        // /proc/self/environ and the like report 0 bytes and /sys's files 4096, and are made as they are read: whatever
        // size they report, they are no recordings (a /sys file had been read as "not a media file").
        if KernelFilesystem.holds(path: path, info) {
            throw .unreadable(path: path, reason: "a file of the kernel's /proc or /sys filesystem, which holds no recordings")
        }
        guard info.st_size > 0 else { throw .emptyFile(path: path) }
        return Int64(info.st_size)
    }

    /// Up to `count` bytes from the start of the file (fewer when the file is shorter).
    static func head(_ path: String, count: Int) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        return [UInt8]((try? handle.read(upToCount: count)) ?? Data())
    }

    static func isWavPath(_ path: String) -> Bool {
        (path as NSString).pathExtension.lowercased() == "wav"
    }
}

/// Just enough RIFF parsing to tell whether a WAV's data chunk extends past the end of the file
/// (libsndfile silently reads what is there, which would hide a truncated download), to name a `fmt `
/// field libsndfile refuses, and to tell a plain PCM layout libsndfile gives up on (thousands of chunks
/// before `data`) from a damaged one. RIFX is RIFF with big-endian sizes; RF64 keeps a large data
/// chunk's size in its `ds64` chunk.
enum RiffLayout {
    static let magics: Set<String> = ["RIFF", "RIFX", "RF64"]

    static func hasRiffMagic(_ head: [UInt8]) -> Bool {
        head.count >= 4 && magics.contains(String(decoding: head[0..<4], as: UTF8.self))
    }

    /// The first `fmt ` chunk's fields (those a 16-byte chunk holds), and for WAVE_FORMAT_EXTENSIBLE
    /// the tag its sub-format GUID starts with, when the chunk holds it.
    struct Format {
        var tag: UInt16, channels: UInt16, sampleRate: UInt32, blockAlign: UInt16, bitsPerSample: UInt16
        var subformat: UInt16?

        static let pcm: UInt16 = 1, ieeeFloat: UInt16 = 3, extensible: UInt16 = 0xFFFE
        /// Codings read in blocks of several samples: Microsoft ADPCM, IMA ADPCM.
        static let adpcm: [UInt16: String] = [2: "Microsoft ADPCM", 0x11: "IMA ADPCM"]

        /// How the samples are coded: the tag, or an extensible format's sub-format.
        var coding: UInt16? { tag == Self.extensible ? subformat : tag }

        /// The sample sizes each plain coding comes in.
        static let bitsByCoding: [UInt16: Set<Int>] = [pcm: [8, 16, 24, 32, 64], ieeeFloat: [32, 64]]

        /// The codings libsndfile decodes in a WAV: PCM, Microsoft ADPCM, float, A-law, µ-law, IMA ADPCM, GSM 6.10,
        /// G.721 ADPCM, MPEG layer III. Of these, a file libsndfile refuses is damaged; another coding (G.726, G.722)
        /// is one it does not know, not damage.
        static let libsndfileCodings: Set<UInt16> = [pcm, 2, ieeeFloat, 6, 7, 0x11, 0x31, 0x40, 0x55]
    }

    /// What the walk over the chunks found, up to the first `data` chunk.
    struct Chunks {
        /// The first `fmt ` chunk's declared size, and its fields when they fit in it.
        var formatSize: UInt64?
        /// Where the `fmt ` chunk's fields start, when the file ends before them.
        var formatCutAt: UInt64?
        var format: Format?
        /// Whether a `data` chunk was reached after the `fmt ` chunk.
        var formatBeforeData = false
        /// Where the first `data` chunk starts, when one was reached.
        var dataOffset: UInt64?
        /// Where the data chunk claims to end (Int64.max when past any file); nil for a placeholder size
        /// (a streamed WAV writes 0 or 0xFFFFFFFF).
        var dataEnd: Int64?

        /// Why the data chunk does not fit in the file's `fileSize` bytes, or nil when it does (or is not found).
        func cutShort(fileSize: Int64) -> String? {
            guard let end = dataEnd, end > fileSize else { return nil }
            let claim = end == Int64.max ? "data chunk claims more bytes than any file holds" : "data chunk ends at byte \(end)"
            return "\(claim) but the file has \(fileSize) bytes"
        }

        /// What is wrong with the `fmt ` chunk's size, channel count or sample rate, in words naming the
        /// field; nil when they are sound or the chunk was not found.
        var formatProblem: String? {
            guard let size = formatSize else { return nil }
            if let start = formatCutAt { return "the file ends inside the WAV's fmt chunk, whose 16 bytes of fields start at byte \(start)" }
            guard let format else { return "the WAV's fmt chunk is \(size) bytes, fewer than the 16 its fields take" }
            if format.channels == 0 { return "the WAV's fmt chunk declares 0 channels" }
            // libsndfile refuses more ("Too many channels specified").
            if format.channels > RiffLayout.maximumChannels {
                return "the WAV's fmt chunk declares \(format.channels) channels, more than the \(RiffLayout.maximumChannels) a WAV is read with (libsndfile's limit)"
            }
            if format.sampleRate == 0 { return "the WAV's fmt chunk declares a sample rate of 0 Hz" }
            // libsndfile holds the rate in a signed 32-bit int: above that it is a damaged field, not a rate.
            if format.sampleRate > UInt32(Int32.max) { return "the WAV's fmt chunk declares a sample rate of \(format.sampleRate) Hz, past any real one" }
            // libsndfile says only "Unspecified internal error" of float samples of 16 bits.
            if format.coding == Format.ieeeFloat, let sizes = Format.bitsByCoding[Format.ieeeFloat], !sizes.contains(Int(format.bitsPerSample)) {
                return "the WAV's fmt chunk declares IEEE float samples of \(format.bitsPerSample) bits; float samples are 32 or 64 bits"
            }
            return nil
        }

        /// For a WAV libsndfile refused with no word of why ("Unspecified internal error"): a block align of 0, or an
        /// ADPCM layout, whose block size and samples per block (the fmt chunk's extra fields) must fit each other.
        var blockLayoutProblem: String? {
            guard let format else { return nil }
            if format.blockAlign == 0 { return "the WAV's fmt chunk declares a block align of 0 bytes (the size of one block of samples)" }
            guard let coding = format.coding, let name = Format.adpcm[coding] else { return nil }
            return "the WAV's fmt chunk declares \(name) in blocks of \(format.blockAlign) bytes for \(format.channels) channel(s), "
                + "whose block layout (block size and samples per block) libsndfile refuses"
        }

        /// Whether the RIFF header's size is 0 or 0xFFFFFFFF, as a writer that streams leaves it (RF64 always says
        /// 0xFFFFFFFF there): with a data chunk of size 0 too, the samples run to the end of the file.
        var riffSizeIsPlaceholder = false

        /// Set when the walk stopped at `maximumChunks` headers without reaching `data`.
        var gaveUp = false

        /// Why the file is refused when the walk gave up: libsndfile's own words ("no 'data' chunk") would be wrong.
        var chunkLimitProblem: String? {
            gaveUp ? "no data chunk within its first \(RiffLayout.maximumChunks) chunks, the most emopipe reads past" : nil
        }

        /// Why the chunks are out of order: a `data` chunk before any `fmt ` chunk, whose fields say how
        /// to read the samples; nil when they are in order or no data chunk was reached.
        var orderProblem: String? {
            guard let dataOffset, formatSize == nil else { return nil }
            return "the WAV's data chunk (at byte \(dataOffset)) comes before any fmt chunk, which must come first to say how its samples are laid out"
        }

        /// The coding of a WAV whose chunks hold together but whose samples are coded in a way libsndfile does not
        /// decode (G.726, G.722): libav's decoder for it reads it, and checks the coded stream as it goes. Nil otherwise.
        func codingOnlyLibavReads(fileSize: Int64) -> UInt16? {
            guard formatBeforeData, let format, let end = dataEnd, end <= fileSize, let coding = format.coding,
                  !Format.libsndfileCodings.contains(coding), coding != Format.extensible,
                  format.channels > 0, format.sampleRate > 0, format.blockAlign > 0 else { return nil }
            return coding
        }

        /// Whether this is a plain PCM or float WAV whose every part holds together, so that another
        /// reader may take it where libsndfile gave up: a `fmt ` chunk of at least 16 bytes with a known
        /// sample layout (block align = channels × bytes per sample), before a `data` chunk that ends within
        /// the file's `fileSize` bytes.
        func isSoundPlainLayout(fileSize: Int64) -> Bool {
            guard formatBeforeData, let format, let end = dataEnd, end <= fileSize else { return false }
            let bits = Int(format.bitsPerSample)
            // An extensible format whose sub-format is not read stays unknown: libav would guess at it.
            guard let coding = format.coding, Format.bitsByCoding[coding]?.contains(bits) == true else { return false }
            return format.channels > 0 && format.sampleRate > 0 && Int(format.blockAlign) == Int(format.channels) * bits / 8
        }
    }

    /// The most channels libsndfile reads a WAV with (its SF_MAX_CHANNELS).
    static let maximumChannels: UInt16 = 1024

    /// The most chunk headers read before giving up: a file of millions of tiny chunks must not cost
    /// millions of reads (libsndfile itself gives up far sooner).
    static let maximumChunks = 100_000

    /// The chunks of a RIFF/RIFX/RF64 WAVE file up to its first `data` chunk; nil when the file is not one.
    static func walk(_ path: String) -> Chunks? {
        // Non-blocking: a fifo swapped in for the file must not hold the open (reads of a regular file never wait).
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        guard let header = try? handle.read(upToCount: 12), header.count == 12,
              String(decoding: header.suffix(4), as: UTF8.self) == "WAVE" else { return nil }
        let magic = String(decoding: header.prefix(4), as: UTF8.self)
        guard magics.contains(magic) else { return nil }
        let bigEndian = magic == "RIFX"
        var found = Chunks()
        let riffSize = integer(header[4..<8], bigEndian: magic == "RIFX")
        found.riffSizeIsPlaceholder = riffSize == 0 || riffSize == 0xFFFF_FFFF
        var ds64DataSize: UInt64?
        var offset: UInt64 = 12
        for _ in 0..<maximumChunks {
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let chunk = try? handle.read(upToCount: 8), chunk.count == 8 else { return found }
            let id = String(decoding: chunk.prefix(4), as: UTF8.self)
            let size = integer(chunk.suffix(4), bigEndian: bigEndian)
            if magic == "RF64", id == "ds64" {
                // riffSize (8 bytes), then dataSize (8 bytes), little-endian.
                guard let sizes = try? handle.read(upToCount: 16), sizes.count == 16 else { return found }
                ds64DataSize = integer(sizes.suffix(8), bigEndian: false)
            }
            if id == "fmt ", found.formatSize == nil {
                found.formatSize = size
                if size >= 16 {
                    guard let fields = try? handle.read(upToCount: 16), fields.count == 16 else {
                        found.formatCutAt = offset + 8
                        return found
                    }
                    func field(_ at: Int, _ width: Int) -> UInt64 { integer(fields.dropFirst(at).prefix(width), bigEndian: bigEndian) }
                    found.format = Format(tag: UInt16(field(0, 2)), channels: UInt16(field(2, 2)), sampleRate: UInt32(field(4, 4)),
                                          blockAlign: UInt16(field(12, 2)), bitsPerSample: UInt16(field(14, 2)))
                    // Extensible: cbSize, valid bits and channel mask (8 bytes), then the sub-format GUID,
                    // whose first two bytes are the coding's tag.
                    if found.format?.tag == Format.extensible, size >= 40, let extra = try? handle.read(upToCount: 10), extra.count == 10 {
                        found.format?.subformat = UInt16(integer(extra.suffix(2), bigEndian: bigEndian))
                    }
                }
            }
            if id == "data" {
                found.formatBeforeData = found.formatSize != nil
                found.dataOffset = offset
                let claimed = size == 0xFFFF_FFFF ? (ds64DataSize ?? size) : size
                guard claimed != 0, claimed != 0xFFFF_FFFF else { return found }
                let (end, overflow) = (offset + 8).addingReportingOverflow(claimed)
                found.dataEnd = overflow || end > UInt64(Int64.max) ? Int64.max : Int64(end)
                return found
            }
            let (next, overflow) = offset.addingReportingOverflow(8 + size + (size & 1))  // chunks are padded to even sizes
            guard !overflow else { return found }
            offset = next
        }
        found.gaveUp = true
        return found
    }

    private static func integer<Bytes: Collection>(_ bytes: Bytes, bigEndian: Bool) -> UInt64 where Bytes.Element == UInt8 {
        let ordered = bigEndian ? Array(bytes) : bytes.reversed()
        return ordered.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
