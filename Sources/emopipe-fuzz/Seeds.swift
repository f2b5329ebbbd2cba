// Seed inputs: WAVs written here byte by byte, small MP4s made by ffmpeg, real RAVDESS recordings
// from the shared data when it is there (cut short, never copied into the repository), and shards
// written by the cache's own writer.
import EmoCore
import EmoStore
import Foundation

/// A seed file for the media targets.
struct MediaSeed {
    var label: String
    var bytes: [UInt8]
    var fileExtension: String
}

// MARK: - WAV files written by hand

/// Enough of the WAV format to write every layout the decoder meets: PCM of 8-32 bits, float,
/// A-law/µ-law, WAVE_FORMAT_EXTENSIBLE, big-endian RIFX, RF64 with its ds64 chunk, extra chunks
/// (odd-sized ones too) before and after the data.
struct WavSpec {
    var label: String
    var tag: UInt16 = 1
    var channels = 1
    var rate = 16_000
    var bits = 16
    var frames = 800
    var container = "RIFF"
    var extensible = false
    var silent = false
    var before: [(String, [UInt8])] = []
    var after: [(String, [UInt8])] = []

    func bytes() -> [UInt8] {
        let bigEndian = container == "RIFX"
        func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
            let size = MemoryLayout<T>.size
            for i in 0..<size {
                out.append(UInt8(truncatingIfNeeded: v >> (8 * (bigEndian ? size - 1 - i : i))))
            }
        }
        func chunk(_ id: String, _ body: [UInt8], size: UInt32? = nil) -> [UInt8] {
            var c = Array(id.utf8)
            put(size ?? UInt32(body.count), &c)
            c += body
            if body.count % 2 == 1 { c.append(0) }
            return c
        }
        let bytesPerSample = max(1, bits / 8)
        var fmt: [UInt8] = []
        put(extensible ? UInt16(0xFFFE) : tag, &fmt)
        put(UInt16(channels), &fmt)
        put(UInt32(rate), &fmt)
        put(UInt32(rate * channels * bytesPerSample), &fmt)
        put(UInt16(channels * bytesPerSample), &fmt)
        put(UInt16(bits), &fmt)
        if extensible {
            put(UInt16(22), &fmt)
            put(UInt16(bits), &fmt)
            put(UInt32(channels == 2 ? 3 : 4), &fmt)
            put(tag, &fmt)  // the sub-format GUID starts with the format tag
            fmt += [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        }
        var data: [UInt8] = []
        data.reserveCapacity(frames * channels * bytesPerSample)
        for frame in 0..<frames {
            for channel in 0..<channels {
                let x = silent ? 0 : sin(Double(frame) * (0.07 + 0.03 * Double(channel))) * 0.5
                switch (tag, bits) {
                case (3, 32): put(Float(x).bitPattern, &data)
                case (3, 64): put(x.bitPattern, &data)
                case (1, 8): data.append(UInt8(128 + Int(x * 127)))
                case (1, 24):
                    let v = Int32(x * 8_388_607)
                    if bigEndian { data += [UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
                    else { data += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v >> 16)] }
                case (1, 32): put(Int32(x * 2_147_483_000), &data)
                case (6, _), (7, _): data.append(silent ? (tag == 6 ? 0xD5 : 0xFF) : UInt8(truncatingIfNeeded: frame &* 37 &+ channel))
                default: put(Int16(x * 32_767), &data)
                }
            }
        }
        var body = Array("WAVE".utf8)
        let rf64 = container == "RF64"
        if rf64 {
            var ds64: [UInt8] = []
            put(UInt64(0), &ds64)  // RIFF size, filled in below
            put(UInt64(data.count), &ds64)
            put(UInt64(frames), &ds64)
            put(UInt32(0), &ds64)
            body += chunk("ds64", ds64)
        }
        for (id, content) in before { body += chunk(id, content) }
        body += chunk("fmt ", fmt)
        if tag != 1 && !extensible { var fact: [UInt8] = []; put(UInt32(frames), &fact); body += chunk("fact", fact) }
        body += chunk("data", data, size: rf64 ? 0xFFFF_FFFF : nil)
        for (id, content) in after { body += chunk(id, content) }
        var file = Array(container.utf8)
        put(rf64 ? UInt32(0xFFFF_FFFF) : UInt32(body.count), &file)
        file += body
        if rf64 { file.writeLE(UInt64(file.count - 8), at: 20) }
        return file
    }

    /// The layouts the built-in corpus covers.
    static let corpus: [WavSpec] = {
        let fllr = [UInt8](repeating: 0, count: 36)
        let list = Array("INFOISFT\u{0e}\u{0}\u{0}\u{0}Lavf58.76.100\u{0}".utf8)
        return [
            WavSpec(label: "pcm16-mono-16k"),
            WavSpec(label: "pcm16-stereo-48k", channels: 2, rate: 48_000, frames: 2_400),
            WavSpec(label: "float32-mono-22k", tag: 3, rate: 22_050, bits: 32, frames: 1_100),
            WavSpec(label: "float64-mono-8k", tag: 3, rate: 8_000, bits: 64, frames: 400),
            WavSpec(label: "pcm24-mono-44k", rate: 44_100, bits: 24, frames: 2_205),
            WavSpec(label: "pcm32-mono-16k", bits: 32),
            WavSpec(label: "pcm8-mono-8k", rate: 8_000, bits: 8, frames: 400),
            WavSpec(label: "alaw-mono-8k", tag: 6, rate: 8_000, bits: 8, frames: 400),
            WavSpec(label: "ulaw-stereo-8k", tag: 7, channels: 2, rate: 8_000, bits: 8, frames: 400),
            WavSpec(label: "extensible-stereo-48k", channels: 2, rate: 48_000, frames: 2_400, extensible: true),
            WavSpec(label: "rifx-pcm16-mono-16k", container: "RIFX"),
            WavSpec(label: "rf64-pcm16-mono-16k", container: "RF64"),
            WavSpec(label: "silent-pcm16-mono-16k", silent: true),
            WavSpec(label: "one-frame-pcm16", frames: 1),
            WavSpec(label: "ravdess-layout-48k", rate: 48_000, frames: 4_800,
                    before: [("FLLR", fllr), ("LIST", list)],
                    after: [("bext", [UInt8](repeating: 0x20, count: 602)), ("_PMX", Array("<x:xmpmeta/>".utf8))]),
            WavSpec(label: "odd-chunk-before-data", before: [("JUNK", [1, 2, 3])]),
        ]
    }()
}

/// The chunks of a RIFF file: where each header starts, its id and its declared size.
struct RiffChunk { var offset: Int; var id: String; var size: UInt32 }

enum RiffWalker {
    static func bigEndian(_ b: [UInt8]) -> Bool { b.count >= 4 && Array(b[0..<4]) == Array("RIFX".utf8) }

    static func chunks(_ b: [UInt8]) -> [RiffChunk] {
        let be = bigEndian(b)
        var out: [RiffChunk] = []
        var at = 12
        while at + 8 <= b.count, out.count < 64 {
            let raw = b.readLE(UInt32.self, at: at + 4)!
            let size = be ? raw.byteSwapped : raw
            out.append(RiffChunk(offset: at, id: String(decoding: b[at..<(at + 4)], as: UTF8.self), size: size))
            at += 8 + Int(size) + Int(size & 1)
        }
        return out
    }

    /// The same file with its data chunk cut to at most `maxData` bytes (other chunks kept as they are),
    /// so real recordings make quick seeds. Nil when the layout is not a plain RIFF one.
    static func shrink(_ b: [UInt8], maxData: Int) -> [UInt8]? {
        guard b.count >= 12, Array(b[0..<4]) == Array("RIFF".utf8) else { return nil }
        var out = Array(b[0..<12])
        for chunk in chunks(b) {
            let start = chunk.offset + 8
            guard start + Int(chunk.size) <= b.count else { return nil }
            var body = Array(b[start..<(start + Int(chunk.size))])
            if chunk.id == "data" && body.count > maxData { body.removeSubrange(maxData...) }
            out += Array(chunk.id.utf8)
            var size: [UInt8] = [0, 0, 0, 0]
            size.writeLE(UInt32(body.count), at: 0)
            out += size + body
            if body.count % 2 == 1 { out.append(0) }
        }
        out.writeLE(UInt32(out.count - 8), at: 4)
        return out
    }
}

/// The boxes of an ISO BMFF (mp4/mov) file, containers walked into.
struct Mp4Box { var offset: Int; var type: String; var size: Int; var headerSize: Int }

enum Mp4Walker {
    /// Where a box's children start, for the container boxes worth walking into.
    static let childStart: [String: Int] = [
        "moov": 8, "trak": 8, "mdia": 8, "minf": 8, "stbl": 8, "edts": 8, "udta": 8, "dinf": 8, "mvex": 8,
        "moof": 8, "traf": 8, "stsd": 16, "mp4a": 36, "avc1": 86, "mp4v": 86, "meta": 12,
    ]

    static func boxes(_ b: [UInt8]) -> [Mp4Box] {
        var out: [Mp4Box] = []
        func walk(_ start: Int, _ end: Int, depth: Int) {
            var at = start
            while at + 8 <= end, out.count < 512 {
                var size = Int(UInt32(bigEndian: b.readLE(UInt32.self, at: at)!))
                let type = String(decoding: b[(at + 4)..<(at + 8)], as: UTF8.self)
                var header = 8
                if size == 1, let large = b.readLE(UInt64.self, at: at + 8) {
                    size = Int(truncatingIfNeeded: UInt64(bigEndian: large)); header = 16
                } else if size == 0 {
                    size = end - at
                }
                guard size >= header, size <= end - at else { return }
                out.append(Mp4Box(offset: at, type: type, size: size, headerSize: header))
                if let child = childStart[type], depth < 8 { walk(at + child, at + size, depth: depth + 1) }
                at += size
            }
        }
        walk(0, b.count, depth: 0)
        return out
    }
}

// MARK: - Media seed corpus

enum MediaSeeds {
    /// The built-in WAVs, the ffmpeg-made MP4s and, when there, the shared RAVDESS recordings.
    static func corpus(extraFolders: [String], useShared: Bool, log: (String) -> Void) -> [MediaSeed] {
        var seeds = WavSpec.corpus.map { MediaSeed(label: $0.label, bytes: $0.bytes(), fileExtension: "wav") }
        let cache = NSTemporaryDirectory() + "/emopipe-fuzz-seeds-v1"
        try? FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        if Tool.exists("ffmpeg") {
            seeds += synthesisedMp4s(cache: cache, log: log)
        } else {
            log("ffmpeg not found: no MP4 seeds made")
        }
        if useShared, let shared = sharedData() {
            seeds += sharedSeeds(shared, cache: cache, log: log)
        }
        for folder in extraFolders { seeds += filesIn(folder, log: log) }
        return seeds
    }

    /// `$EMOPIPE_RAVDESS`, or ../shared/data/ravdess beside the repository.
    static func sharedData() -> String? {
        let path = ProcessInfo.processInfo.environment["EMOPIPE_RAVDESS"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("../shared/data/ravdess").standardizedFileURL.path
        return FileManager.default.fileExists(atPath: path + "/README.md") ? path : nil
    }

    /// Small MP4s of every shape the audio path meets: AAC alone, H.264 + AAC (moov first and last),
    /// fragmented, MP3, ALAC and PCM audio, video only; and other containers named .mp4.
    static func synthesisedMp4s(cache: String, log: (String) -> Void) -> [MediaSeed] {
        let tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.25"]
        let picture = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=15:duration=0.25"]
        let exact = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-threads", "1"]
        let h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "4"]
        let recipes: [(String, [String])] = [
            ("aac-48k", tone + ["-c:a", "aac", "-b:a", "48k"]),
            ("aac-16k-mono-faststart", tone + ["-ar", "16000", "-ac", "1", "-c:a", "aac", "-movflags", "+faststart"]),
            ("h264-aac", picture + tone + h264 + ["-c:a", "aac", "-shortest"]),
            ("h264-aac-faststart", picture + tone + h264 + ["-c:a", "aac", "-ac", "2", "-shortest", "-movflags", "+faststart"]),
            ("aac-fragmented", tone + ["-c:a", "aac", "-movflags", "frag_keyframe+empty_moov"]),
            ("mp3-in-mp4", tone + ["-c:a", "libmp3lame", "-b:a", "64k"]),
            ("alac-in-mp4", tone + ["-c:a", "alac"]),
            ("mpeg4-video-only", picture + ["-c:v", "mpeg4", "-an"]),
            ("pcm-in-mov", tone + ["-c:a", "pcm_s16le", "-f", "mov"]),
            // Other containers under an .mp4 name: libavformat goes by content, so ingest meets these
            // whenever someone renames a file.
            ("matroska-h264-aac", picture + tone + h264 + ["-c:a", "aac", "-shortest", "-f", "matroska"]),
            ("avi-mpeg4-pcm", picture + tone + ["-c:v", "mpeg4", "-c:a", "pcm_s16le", "-shortest", "-f", "avi"]),
            ("mpegts-mp2", tone + ["-c:a", "mp2", "-f", "mpegts"]),
            ("ogg-vorbis", tone + ["-c:a", "libvorbis", "-f", "ogg"]),
            ("flac-native", tone + ["-c:a", "flac", "-f", "flac"]),
            ("wav-named-mp4", tone + ["-c:a", "pcm_s16le", "-f", "wav"]),
        ]
        var seeds: [MediaSeed] = []
        for (label, args) in recipes {
            let out = "\(cache)/\(label).mp4"
            if !FileManager.default.fileExists(atPath: out) {
                let part = "\(out).part-\(getpid()).mp4"
                let status = Tool.run("ffmpeg", ["-v", "error", "-nostdin", "-y"] + args + exact + [part])
                guard status == 0, rename(part, out) == 0 else {
                    unlink(part)
                    log("ffmpeg could not make the \(label) seed (status \(status)); skipped")
                    continue
                }
            }
            if let bytes = FileManager.default.contents(atPath: out) {
                seeds.append(MediaSeed(label: label, bytes: [UInt8](bytes), fileExtension: "mp4"))
            }
        }
        return seeds
    }

    /// Real recordings, laid out into the seed cache (the shared folder is read-only): two Actor_01 WAVs
    /// with their original chunks (one stereo), data cut to 0.1 s; the first 0.4 s of the untouched AV
    /// clip and of the re-encoded odd clips, stream-copied; and the untouched AV clip itself.
    static func sharedSeeds(_ shared: String, cache: String, log: (String) -> Void) -> [MediaSeed] {
        var seeds: [MediaSeed] = []
        if Tool.exists("flac") {
            for name in ["03-01-01-01-01-01-01", "03-01-02-01-01-02-01"] {
                let flac = "\(shared)/speech-flac/Actor_01/\(name).flac", wav = "\(cache)/\(name).wav"
                guard FileManager.default.fileExists(atPath: flac) else { continue }
                if !FileManager.default.fileExists(atPath: wav) {
                    let part = "\(cache)/\(name).part-\(getpid()).wav"
                    guard Tool.run("flac", ["-s", "-d", "--keep-foreign-metadata", "-f", "-o", part, flac]) == 0,
                          rename(part, wav) == 0 else { unlink(part); continue }
                }
                guard let bytes = FileManager.default.contents(atPath: wav) else { continue }
                let full = [UInt8](bytes)
                seeds.append(MediaSeed(label: "ravdess-\(name)", bytes: RiffWalker.shrink(full, maxData: 19_200) ?? full,
                                       fileExtension: "wav"))
            }
        } else {
            log("flac not found: no seeds from the shared RAVDESS WAVs")
        }
        var clips = ["\(shared)/av-original/Actor_01/01-01-01-01-01-01-01.mp4"]
        let odd = (try? FileManager.default.contentsOfDirectory(atPath: "\(shared)/odd")) ?? []
        clips += odd.filter { $0.hasSuffix(".mp4") }.sorted().map { "\(shared)/odd/\($0)" }
        if Tool.exists("ffmpeg") {
            for clip in clips where FileManager.default.fileExists(atPath: clip) {
                let label = "cut-" + (clip as NSString).lastPathComponent
                let out = "\(cache)/\(label)"
                if !FileManager.default.fileExists(atPath: out) {
                    let part = "\(out).part-\(getpid()).mp4"
                    guard Tool.run("ffmpeg", ["-v", "error", "-nostdin", "-y", "-i", clip, "-t", "0.4", "-c", "copy",
                                              "-fflags", "+bitexact", part]) == 0,
                          rename(part, out) == 0 else { unlink(part); continue }
                }
                if let bytes = FileManager.default.contents(atPath: out) {
                    seeds.append(MediaSeed(label: label, bytes: [UInt8](bytes), fileExtension: "mp4"))
                }
            }
        }
        if let clip = clips.first, let bytes = FileManager.default.contents(atPath: clip) {
            seeds.append(MediaSeed(label: "ravdess-av-clip", bytes: [UInt8](bytes), fileExtension: "mp4"))
        }
        return seeds
    }

    /// A seed is mutated thousands of times a second: one of megabytes would make a slow, memory-hungry run.
    static let maxSeedBytes = 4 << 20

    /// Every .wav and .mp4 under a folder given with --seed-dir, up to `maxSeedBytes` each; a larger one is
    /// left out and said (cut with ffmpeg -t 0.5 -c copy, it seeds as well).
    static func filesIn(_ folder: String, log: (String) -> Void) -> [MediaSeed] {
        let names = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).sorted()
        let seeds = names.compactMap { name -> MediaSeed? in
            let ext = (name as NSString).pathExtension.lowercased()
            guard ext == "wav" || ext == "mp4" else { return nil }
            let path = "\(folder)/\(name)"
            var facts = stat()
            if stat(path, &facts) == 0, facts.st_size > maxSeedBytes {
                log("--seed-dir: \(path.echoed) left out: \(facts.st_size) bytes, over the \(maxSeedBytes) a seed may have (cut it: ffmpeg -i IN -t 0.5 -c copy OUT)")
                return nil
            }
            do {
                return MediaSeed(label: name, bytes: [UInt8](try RegularFile.read(path, atMost: maxSeedBytes)), fileExtension: ext)
            } catch {
                log("--seed-dir: \(path.echoed) left out: \(EmoError.reason(of: error))")
                return nil
            }
        }
        if seeds.isEmpty { log("--seed-dir \(folder.echoed): no .wav or .mp4 file to seed from") }
        return seeds
    }
}

// MARK: - Shards

enum ShardSeeds {
    /// Shards written through `TensorCache.publish` (so by the real writer) into a scratch work
    /// directory: every dtype, ranks 0 to 6, an empty tensor, empty and long metadata.
    static func corpus() throws -> [[UInt8]] {
        let folder = NSTemporaryDirectory() + "/emopipe-fuzz-shards-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let workspace = Workspace(root: folder)
        let store = try workspace.openStore(.readWrite)
        try store.insert(RunRecord(id: "fuzz", command: "fuzz", manifestJSON: "", manifestSHA256: "", dataRoot: "/",
                                   threads: 1, codeVersion: "fuzz", host: "fuzz", pid: Int(getpid()), startedAt: Date()))
        let cache = TensorCache(workspace: workspace, store: store)
        func record(_ name: String, _ dtype: DType, _ shape: [Int], _ metadata: String) -> TensorRecord {
            let count = shape.reduce(1, *) * dtype.byteSize
            let data = Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ name.count) })
            return TensorRecord(key: SHA256Hex.of(name), dtype: dtype, shape: shape, data: data, metadata: metadata)
        }
        let batches: [[TensorRecord]] = [
            [record("a", .float32, [4, 10], "{\"real_frames\":10}"), record("b", .uint8, [2, 3, 5], "{\"i\":1}"),
             record("c", .int32, [7], "{}")],
            [record("d", .float64, [], "{\"scalar\":true}"), record("e", .float32, [0], ""),
             record("f", .uint8, [1, 2, 1, 3, 1, 2], "{\"rank\":6}")],
            [record("g", .float32, [64, 30], "{\"duration_seconds\":3.5,\"pad_value\":-100,\"real_frames\":30}")],
            [record("h", .uint8, [3, 8, 8, 3], "{\"frames\":[" + String(repeating: "{\"found\":true},", count: 20) + "{}]}")],
        ]
        for batch in batches {
            try cache.publish(stage: "fuzz", fingerprint: "seeds", runId: "fuzz", records: batch, failures: [])
        }
        let files = (FileManager.default.enumerator(atPath: workspace.cacheRoot)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".shard") }.sorted()
        return files.compactMap { FileManager.default.contents(atPath: workspace.cacheRoot + "/" + $0).map { [UInt8]($0) } }
    }
}

// MARK: - External tools

enum Tool {
    static func exists(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Runs a program found on PATH with its output discarded; its exit status (-1 when it cannot start).
    static func run(_ name: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [name] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
