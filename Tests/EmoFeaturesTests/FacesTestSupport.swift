// Shared by the face tests: the shared clips, the Haar fixture, ffmpeg-made clips in temp folders.
import EmoFeatures
import EmoTestSupport
import Foundation

enum Faces {
    static var data: String { TestSupport.sharedData }
    static var original: String { data + "/av-original/Actor_01/01-01-01-01-01-01-01.mp4" }
    static var hasData: Bool { FileManager.default.fileExists(atPath: original) }

    static func derived() -> [String] {
        ["Actor_01", "Actor_02"].flatMap { actor -> [String] in
            let dir = data + "/av-derived/" + actor
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.filter { $0.hasSuffix(".mp4") }.sorted().map { dir + "/" + $0 }
        }
    }

    static func odd() -> [String] {
        let dir = data + "/odd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".mp4") }
            .sorted().map { dir + "/" + $0 }
    }

    /// OpenCV Haar cascade boxes for the sampled frames (scripts/haar_boxes.py), by clip file name.
    static let haar: [String: [(t: Double, box: [Double]?)]] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/haar-boxes.json")
        guard let data = try? Data(contentsOf: url),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let clips = json["clips"] as? [String: [[String: Any]]] else { return [:] }
        return clips.mapValues { entries in
            entries.map { e in (t: (e["t"] as? Double) ?? -1, box: (e["box"] as? [NSNumber])?.map(\.doubleValue)) }
        }
    }()

    static func iou(_ a: [Double], _ b: [Double]) -> Double {
        let inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
        let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return union > 0 ? inter / union : 0
    }

    /// IoU of each of our frames against the Haar box sampled at the same time (nil: no Haar box there).
    static func haarIoUs(_ clip: FaceClip, name: String) -> [Double?] {
        guard let entries = haar[name] else { return [] }
        return clip.frames.map { f in
            guard let e = entries.min(by: { abs($0.t - f.time) < abs($1.t - f.time) }),
                  abs(e.t - f.time) < 0.05, let box = e.box else { return nil }
            return iou(f.box, box)
        }
    }

    static func ffmpeg(_ args: String) throws {
        try TestSupport.shell("ffmpeg -nostdin -v error -y \(args)")
    }

    static func meanAbsDiff(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Double {
        var s = 0
        for (x, y) in zip(a, b) { s += abs(Int(x) - Int(y)) }
        return Double(s) / Double(a.count)
    }

    /// Turns a size x size RGB crop by 90° steps clockwise.
    static func rotate(_ c: ArraySlice<UInt8>, size n: Int, clockwise: Int) -> [UInt8] {
        let src = Array(c)
        var out = [UInt8](repeating: 0, count: src.count)
        for y in 0..<n {
            for x in 0..<n {
                let (sx, sy): (Int, Int) = clockwise == 90 ? (y, n - 1 - x) : clockwise == 180 ? (n - 1 - x, n - 1 - y) : (n - 1 - y, x)
                for k in 0..<3 { out[(y * n + x) * 3 + k] = src[(sy * n + sx) * 3 + k] }
            }
        }
        return out
    }

    /// Runs `body` over `items` on `threads` threads; results in order.
    static func parallel<T, R>(_ items: [T], threads: Int = 2, _ body: @escaping (T) -> R) -> [R] {
        var results = [R?](repeating: nil, count: items.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: threads) { w in
            for i in stride(from: w, to: items.count, by: threads) {
                let r = body(items[i])
                lock.lock(); results[i] = r; lock.unlock()
            }
        }
        return results.map { $0! }
    }
}
