// emoface-bench: face extraction throughput over a folder of clips, against the decode floor
// (ffmpeg -threads N -an -i CLIP -f null -) and a Python OpenCV pipeline (bench/opencv_faces.py).
//
//   emoface-bench [--workers 2] [--decode-threads 1] [--frames 8] [--size 112] [--detect-width 480]
//                 [--strategy minimal|every_frame|skip_non_reference|keyframe_seek|all] [--align]
//                 [--ffmpeg-threads 2] [--floor] [--python VENV/bin/python] [--sheet OUT.png] [--sheet-rows 12]
//                 [--json OUT.json] [--fixture haar-boxes.json] CLIP_OR_FOLDER...
import EmoFeatures
import Foundation
#if canImport(Glibc)
import Glibc
#endif

var args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    let v = args[i + 1]; args.removeSubrange(i...(i + 1)); return v
}
func flag(_ name: String) -> Bool {
    guard let i = args.firstIndex(of: name) else { return false }
    args.remove(at: i); return true
}
let workers = Int(option("--workers") ?? "2")!
var params = FaceParameters()
params.decodeThreads = Int(option("--decode-threads") ?? "1")!
params.frames = Int(option("--frames") ?? "8")!
params.size = Int(option("--size") ?? "112")!
params.detectWidth = Int(option("--detect-width") ?? "400")!
params.upsample = Int(option("--upsample") ?? "0")!
params.align = flag("--align")
let strategyArg = option("--strategy") ?? "minimal"
let ffmpegThreads = Int(option("--ffmpeg-threads") ?? "2")!
let runFloor = flag("--floor")
let python = option("--python")
let sheetPath = option("--sheet")
let sheetRows = Int(option("--sheet-rows") ?? "12")!
let jsonPath = option("--json")
let fixturePath = option("--fixture")
let quiet = flag("--quiet")

var clips: [String] = []
for a in args {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: a, isDirectory: &isDir) else { fatalError("no such path: \(a)") }
    if isDir.boolValue {
        let e = FileManager.default.enumerator(atPath: a)!
        while let f = e.nextObject() as? String {
            guard f.hasSuffix(".mp4") else { continue }
            let name = (f as NSString).lastPathComponent
            if name.hasPrefix("01-") || name.hasPrefix("02-") { clips.append(a + "/" + f) }
        }
    } else {
        clips.append(a)
    }
}
clips.sort()
guard !clips.isEmpty else { fatalError("no clips (01-*/02-* mp4)") }

func now() -> Double { Date().timeIntervalSince1970 }
func peakRSSMB() -> Double {
    var u = rusage(); getrusage(RUSAGE_SELF.rawValue, &u); return Double(u.ru_maxrss) / 1024
}

struct Result: @unchecked Sendable {
    var clip: FaceClip?
    var error: String?
}

/// Runs the extractor over all clips with `workers` threads; returns results in clip order and seconds.
func runExtraction(_ p: FaceParameters, thumbnails: Bool) throws -> ([Result], Double) {
    let extractor = try FaceExtractor(p)
    final class Shared: @unchecked Sendable {
        var results: [Result]
        var next = 0
        let lock = NSLock()
        init(_ n: Int) { results = [Result](repeating: Result(), count: n) }
    }
    let shared = Shared(clips.count)
    let t0 = now()
    let group = DispatchGroup()
    for _ in 0..<workers {
        let thread = Thread {
            while true {
                shared.lock.lock(); let i = shared.next; shared.next += 1; shared.lock.unlock()
                guard i < clips.count else { break }
                var r = Result()
                do { r.clip = try extractor.extract(path: clips[i], thumbnailWidth: thumbnails ? 240 : 0) }
                catch { r.error = "\(error)" }
                shared.lock.lock(); shared.results[i] = r; shared.lock.unlock()
            }
            group.leave()
        }
        thread.stackSize = 8 << 20
        group.enter()
        thread.start()
    }
    group.wait()
    return (shared.results, now() - t0)
}

var report: [String: Any] = ["clips": clips.count, "workers": workers, "decode_threads": params.decodeThreads,
                             "frames": params.frames, "size": params.size, "detect_width": params.detectWidth]
let strategies: [FaceDecodeStrategy] = strategyArg == "all" ? FaceDecodeStrategy.allCases
    : [FaceDecodeStrategy(rawValue: strategyArg)!]
var mainResults: [Result] = []
var oursRate = 0.0
for s in strategies {
    var p = params
    p.decodeStrategy = s
    let (results, seconds) = try runExtraction(p, thumbnails: false)
    let ok = results.compactMap(\.clip)
    let sampled = ok.reduce(0) { $0 + $1.frames.count }
    let found = ok.reduce(0) { $0 + $1.frames.filter(\.found).count }
    let packets = ok.reduce(0) { $0 + $1.decode.packets }
    let decoded = ok.reduce(0) { $0 + $1.decode.packetsDecoded }
    let rate = Double(clips.count) / seconds
    print(String(format: "ours[%@]: %d clips in %.2f s = %.2f clips/s; decoded %d of %d packets (%.1f%%); faces in %d/%d sampled frames (%.2f%%); errors %d; peak RSS %.0f MB",
                 s.rawValue, clips.count, seconds, rate, decoded, packets, 100 * Double(decoded) / Double(max(1, packets)),
                 found, sampled, 100 * Double(found) / Double(max(1, sampled)), results.count - ok.count, peakRSSMB()))
    for (i, r) in results.enumerated() where r.error != nil { print("  error \(clips[i]): \(r.error!)") }
    report["ours_\(s.rawValue)"] = ["seconds": seconds, "clips_per_s": rate, "packets": packets,
                                    "packets_decoded": decoded, "found": found, "sampled": sampled]
    if s == strategies.first || s == .minimal { mainResults = results; oursRate = rate }
}
report["peak_rss_mb"] = peakRSSMB()

// Agreement with the Haar cascade fixture (boxes at matching times).
if let fixturePath {
    let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath))
    let fixture = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let table = fixture["clips"] as! [String: [[String: Any]]]
    var ious: [Double] = []
    var unmatched = 0
    for (i, r) in mainResults.enumerated() {
        guard let clip = r.clip, let entries = table[(clips[i] as NSString).lastPathComponent] else { continue }
        for f in clip.frames {
            guard let e = entries.min(by: { abs(($0["t"] as! Double) - f.time) < abs(($1["t"] as! Double) - f.time) }),
                  abs((e["t"] as! Double) - f.time) < 0.05, let hb = e["box"] as? [Double] else { unmatched += 1; continue }
            let a = f.box, b = hb
            let inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
            let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            ious.append(inter / union)
        }
    }
    ious.sort()
    if !ious.isEmpty {
        let mean = ious.reduce(0, +) / Double(ious.count)
        print(String(format: "IoU vs Haar: n=%d, min %.3f, p5 %.3f, median %.3f, mean %.3f; below 0.5: %d; unmatched %d",
                     ious.count, ious[0], ious[ious.count / 20], ious[ious.count / 2], mean,
                     ious.filter { $0 < 0.5 }.count, unmatched))
        report["iou"] = ["n": ious.count, "min": ious[0], "median": ious[ious.count / 2], "mean": mean,
                         "below_0_5": ious.filter { $0 < 0.5 }.count]
    }
}

func runProcess(_ exe: String, _ a: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = a
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try! p.run(); p.waitUntilExit()
    return p.terminationStatus
}

if runFloor {
    let t0 = now()
    for c in clips { _ = runProcess("/usr/bin/ffmpeg", ["-nostdin", "-threads", "\(ffmpegThreads)", "-an", "-i", c, "-f", "null", "-"]) }
    let rate = Double(clips.count) / (now() - t0)
    print(String(format: "decode floor (ffmpeg -threads %d -an -i CLIP -f null -): %.2f clips/s; ours/floor = %.2f",
                 ffmpegThreads, rate, oursRate / rate))
    report["floor_clips_per_s"] = rate
    report["speedup_vs_floor"] = oursRate / rate
    // What skip_frame alone saves a decoder that still decodes every reference picture.
    let t1 = now()
    for c in clips {
        _ = runProcess("/usr/bin/ffmpeg", ["-nostdin", "-threads", "\(ffmpegThreads)", "-skip_frame", "nonref", "-an", "-i", c, "-f", "null", "-"])
    }
    let skipRate = Double(clips.count) / (now() - t1)
    print(String(format: "decode with -skip_frame nonref (same ffmpeg): %.2f clips/s (%.2fx the floor)", skipRate, skipRate / rate))
    report["floor_skip_nonref_clips_per_s"] = skipRate
}
if let python {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/bench/opencv_faces.py"
    let list = NSTemporaryDirectory() + "/emoface-bench-clips-\(getpid()).txt"
    try clips.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
    let t0 = now()
    let status = runProcess(python, [script, "--frames", "\(params.frames)", "--size", "\(params.size)", "--list", list])
    let rate = Double(clips.count) / (now() - t0)
    print(String(format: "OpenCV pipeline (%@, exit %d): %.2f clips/s; ours/OpenCV = %.2f",
                 (script as NSString).lastPathComponent, status, rate, oursRate / rate))
    report["opencv_clips_per_s"] = rate
    report["speedup_vs_opencv"] = oursRate / rate
}
if let sheetPath {
    let (results, _) = try runExtraction(params, thumbnails: true)
    var rows: [(label: String, clip: FaceClip)] = []
    let step = max(1, results.count / sheetRows)
    for i in stride(from: 0, to: results.count, by: step) where rows.count < sheetRows {
        if let c = results[i].clip { rows.append(((clips[i] as NSString).lastPathComponent, c)) }
    }
    let png = try FaceContactSheet.render(clips: rows.map { ($0.label, $0.clip, $0.clip.thumbnail) })
    try png.write(to: URL(fileURLWithPath: sheetPath))
    print("contact sheet: \(sheetPath) (\(rows.count) rows, \(png.count) bytes)")
}
if !quiet, let first = mainResults.first?.clip {
    let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
    print("first clip frames: " + String(data: try e.encode(first.frames), encoding: .utf8)!)
}
if let jsonPath {
    try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        .write(to: URL(fileURLWithPath: jsonPath))
}
