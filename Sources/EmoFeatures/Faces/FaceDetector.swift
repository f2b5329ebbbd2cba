// dlib through CDlibShim: HOG detectors (one per concurrent caller, pooled) and the shared landmark model.
import CDlibShim
import EmoCore
import EmoMedia
import Foundation

struct Detection {
    var box: Rect
    var score: Double
}

/// One dlib HOG frontal face detector (not thread-safe; the pool hands it to one thread at a time).
final class HOGDetector {
    private let handle: OpaquePointer

    init() throws {
        guard let h = dlibshim_detector_create() else { throw FaceError.detectorFailed("dlib's detector could not be created") }
        handle = h
    }

    deinit { dlibshim_detector_destroy(handle) }

    func detect(_ gray: Raster, upsample: Int, threshold: Double) throws -> [Detection] {
        precondition(gray.channels == 1)
        let capacity = 32
        var boxes = [Double](repeating: 0, count: capacity * 4)
        var scores = [Double](repeating: 0, count: capacity)
        var error = [CChar](repeating: 0, count: 256)
        let n = gray.pixels.withUnsafeBufferPointer { p in
            dlibshim_detect(handle, p.baseAddress, Int32(gray.width), Int32(gray.height), Int32(gray.width),
                            Int32(upsample), threshold, &boxes, &scores, Int32(capacity), &error, Int32(error.count))
        }
        guard n >= 0 else { throw FaceError.detectorFailed(String(cString: error)) }
        return (0..<Int(n)).map { i in
            Detection(box: Rect(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]), score: scores[i])
        }
    }
}

/// A pool of detectors: `extract` may run on several threads at once, each borrowing its own.
final class DetectorPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [HOGDetector] = []

    func withDetector<T>(_ body: (HOGDetector) throws -> T) throws -> T {
        lock.lock()
        let detector = free.popLast()
        lock.unlock()
        let d = try detector ?? HOGDetector()
        defer { lock.lock(); free.append(d); lock.unlock() }
        return try body(d)
    }
}

/// dlib's 68-point shape predictor; evaluation only reads the model, so one serves every thread.
final class LandmarkModel: @unchecked Sendable {
    private let handle: OpaquePointer

    init(path: String) throws {
        var error = [CChar](repeating: 0, count: 256)
        // Only a regular file reaches dlib: a pipe would block its read for ever, a folder gives a stream error.
        if let problem = FaceParameters.unreadableFile(path) {
            throw FaceError.landmarkModelUnavailable("\(path): \(problem) (dlib's model is in Debian's libdlib-data)")
        }
        guard let h = dlibshim_shape_predictor_load(path, &error, Int32(error.count)) else {
            throw FaceError.landmarkModelUnavailable("\(path): \(String(cString: error))")
        }
        handle = h
    }

    deinit { dlibshim_shape_predictor_destroy(handle) }

    private static let cacheLock = NSLock()
    private static var cache: [String: (identity: [Int64], model: LandmarkModel)] = [:]

    /// The model at `path`, loaded once per process while the file there stays the same (same device,
    /// inode, size and modification time): loading checks and parses about 100 MB, over a second, and
    /// the run's check, the faces stage and predict (per video file) each ask for it.
    static func shared(path: String) throws -> LandmarkModel {
        var facts = stat()
        guard stat(path, &facts) == 0 else { return try LandmarkModel(path: path) }   // which names the problem
        let identity = [Int64(facts.st_dev), Int64(facts.st_ino), Int64(facts.st_size), facts.mtimeNanos]
        cacheLock.lock()
        defer { cacheLock.unlock() }
        if let kept = cache[path], kept.identity == identity { return kept.model }
        let model = try LandmarkModel(path: path)
        cache[path] = (identity, model)
        return model
    }

    /// 68 (x, y) points in the gray raster's pixels.
    func landmarks(_ gray: Raster, box: Rect) throws -> [(Double, Double)] {
        var points = [Double](repeating: 0, count: 136)
        var error = [CChar](repeating: 0, count: 256)
        let n = gray.pixels.withUnsafeBufferPointer { p in
            dlibshim_landmarks(handle, p.baseAddress, Int32(gray.width), Int32(gray.height), Int32(gray.width),
                               box.x0, box.y0, box.x1, box.y1, &points, &error, Int32(error.count))
        }
        guard n == 68 else { throw FaceError.detectorFailed("landmarks: \(String(cString: error))") }
        return (0..<68).map { (points[2 * $0], points[2 * $0 + 1]) }
    }

    /// Degrees the eye line tilts (positive: the image-right eye is lower), from the eye landmarks.
    static func eyeAngle(_ pts: [(Double, Double)]) -> Double {
        func mean(_ r: Range<Int>) -> (Double, Double) {
            let s = r.reduce((0.0, 0.0)) { ($0.0 + pts[$1].0, $0.1 + pts[$1].1) }
            return (s.0 / Double(r.count), s.1 / Double(r.count))
        }
        let left = mean(36..<42), right = mean(42..<48)
        return atan2(right.1 - left.1, right.0 - left.0) * 180 / .pi
    }
}
