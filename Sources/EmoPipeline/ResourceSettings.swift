import EmoCore
import Foundation

/// The manifest's `resources:` block: `{max_memory_mb: 256, publish_after_seconds: 3}`. The thread
/// count stays the top-level `threads`. Both change how work is scheduled and stored, never what it
/// computes: they join no fingerprint, and records are the same with or without them.
public struct ResourceSettings: Equatable, Sendable {
    /// The peak resident memory (MiB) the per-source stages keep under, and that a training batch
    /// must fit in; nil: no budget.
    public var maxMemoryMB: Int?
    /// How long a finished source's record or failure row of the per-source stages (audio, faces) may
    /// wait before it is published in a shard: at most this much finished work is lost to a kill.
    /// Shorter makes more, smaller shards.
    public var publishAfterSeconds = Self.defaultPublishAfterSeconds

    public static let knownKeys = ["max_memory_mb", "publish_after_seconds"]
    /// Below this the process's own code and libraries alone would not fit.
    public static let memoryRange = 64...1_048_576
    public static let defaultPublishAfterSeconds = 3.0
    /// Below a tenth of a second a shard would hold a file or two; above an hour a kill loses too much.
    public static let publishAfterRange = 0.1...3600.0

    public init(maxMemoryMB: Int? = nil, publishAfterSeconds: Double = Self.defaultPublishAfterSeconds) {
        self.maxMemoryMB = maxMemoryMB
        self.publishAfterSeconds = publishAfterSeconds
    }

    /// The budget in bytes, if one is set.
    public var maxMemoryBytes: Int? { maxMemoryMB.map { $0 * 1_048_576 } }

    init(_ value: ParamValue?, fail: (String) -> PipelineError) throws {
        guard let value else { return }
        guard let fields = value.objectValue else { throw fail("'resources' must be a mapping {max_memory_mb, publish_after_seconds}") }
        if let unknown = fields.keys.sorted().first(where: { !Self.knownKeys.contains($0) }) {
            throw fail("resources: unknown field '\(unknown.shownKey)' (known: \(Self.knownKeys.joined(separator: ", ")))")
        }
        if let field = fields["max_memory_mb"] {
            guard let megabytes = field.intValue, Self.memoryRange.contains(megabytes) else {
                throw fail("resources.max_memory_mb = \(field.shown): expected an integer from "
                           + "\(Self.memoryRange.lowerBound) to \(Self.memoryRange.upperBound) (MiB)")
            }
            maxMemoryMB = megabytes
        }
        if let field = fields["publish_after_seconds"] {
            guard let seconds = field.doubleValue, Self.publishAfterRange.contains(seconds) else {
                throw fail("resources.publish_after_seconds = \(field.shown): expected a number of seconds from "
                           + "\(Self.publishAfterRange.lowerBound) to \(Int(Self.publishAfterRange.upperBound))")
            }
            publishAfterSeconds = seconds
        }
    }
}
