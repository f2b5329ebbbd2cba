import EmoCore

/// Errors of the pipeline layer; each description says what is wrong and where.
public enum PipelineError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidFile(String)
    /// A parameter the stage cannot use: the file it came from, `stage.key`, the value, what is allowed.
    case invalidParameter(file: String, key: String, value: String, allowed: String)
    case unknownStage(String, known: [String])
    case cycle([String])
    case upstreamNotReady(stage: String, upstream: String)
    case locked(holder: String)
    case missingData(String)
    /// A cached record a stage read is damaged (fails its CRC-32C, or its shard is not a valid one):
    /// the run drops `stage`'s damaged records, as `cache verify` does, and computes them again.
    case damagedCache(stage: String, detail: String)
    /// A recorded run cannot be repeated: its record holds what no run could have written, or what this
    /// emopipe no longer takes.
    case unrepeatable(run: String, why: String)

    public var description: String {
        switch self {
        case .invalidFile(let why): return why
        case .invalidParameter(let file, let key, let value, let allowed):
            return "\(file): \(key.echoed) = \(value.echoed): \(allowed)"
        case .unknownStage(let name, let known):
            return "unknown stage '\(name.echoed)'\(NearestName.among(known, to: name).map { "; did you mean \($0)?" } ?? "") (stages: \(known.joined(separator: ", ")))"
        case .cycle(let stages): return "the pipeline has a cycle through \(stages.joined(separator: " → "))"
        case .upstreamNotReady(let stage, let upstream):
            return "cannot run '\(stage)' alone: its upstream stage '\(upstream)' has never completed (run it first, or drop --only)"
        case .locked(let holder): return "the work directory is locked by \(holder)"
        case .missingData(let why): return why
        case .damagedCache(_, let detail): return "\(detail); `emopipe cache verify` drops damaged records and the next run computes them again"
        case .unrepeatable(let run, let why): return "run \(run) cannot be repeated: \(why)"
        }
    }
}
