/// How a clip of any length meets a model that takes a fixed window of log-mel frames. One policy
/// for training's validation, `evaluate`, `predict` and the exported model's metadata, so that all
/// of them give a clip the same answer:
/// - the clip is cut into windows of `frames` frames every `hopFrames` frames from its start, and one
///   more window ending at its last frame when the stride leaves a tail (so every frame is seen);
///   a clip no longer than one window is one window, zero-padded (masked);
/// - each window is scored, and the clip's probabilities are the mean of its windows' softmax.
/// Training sees one window per clip per epoch, its start drawn from the epoch's seeded generator.
public struct WindowPolicy: Codable, Equatable, Sendable {
    public var frames: Int
    public var hopFrames: Int

    public init(frames: Int, hopFrames: Int) {
        self.frames = max(1, frames); self.hopFrames = max(1, hopFrames)
    }

    /// The first frame of each window over a clip of `realFrames` frames.
    public func starts(realFrames: Int) -> [Int] {
        guard realFrames > frames else { return [0] }
        let last = realFrames - frames
        var starts = Array(stride(from: 0, through: last, by: hopFrames))
        if starts.last != last { starts.append(last) }
        return starts
    }

    /// A random window start for training: any frame from which a whole window fits.
    public func randomStart(realFrames: Int, draw: UInt64) -> Int {
        Self.randomStart(of: frames, realFrames: realFrames, draw: draw)
    }

    /// Any frame from which `length` frames fit in a clip of `realFrames` (0 when none does).
    public static func randomStart(of length: Int, realFrames: Int, draw: UInt64) -> Int {
        guard realFrames > length else { return 0 }
        return Int(draw % UInt64(realFrames - length + 1))
    }

    /// The policy in words, for the exported model's metadata and `--help`.
    public var summary: String {
        "windows of \(frames) frames every \(hopFrames) frames from the clip's start, plus one ending at its last frame when the stride leaves a tail; a shorter clip is one zero-padded window; the clip's probabilities are the mean of its windows' softmax"
    }
}
