import EmoCore
import Foundation

/// The manifest's `resources:` block: `{max_memory_mb: 256}`. The thread count stays the top-level
/// `threads`. A budget changes how work is scheduled, never what it computes: it joins no
/// fingerprint, and records are the same with or without it.
public struct ResourceSettings: Equatable, Sendable {
    /// The peak resident memory (MiB) the per-source stages keep under, and that a training batch
    /// must fit in; nil: no budget.
    public var maxMemoryMB: Int?

    public static let knownKeys = ["max_memory_mb"]
    /// Below this the process's own code and libraries alone would not fit.
    public static let memoryRange = 64...1_048_576

    public init(maxMemoryMB: Int? = nil) { self.maxMemoryMB = maxMemoryMB }

    /// The budget in bytes, if one is set.
    public var maxMemoryBytes: Int? { maxMemoryMB.map { $0 * 1_048_576 } }

    init(_ value: ParamValue?, fail: (String) -> PipelineError) throws {
        guard let value else { return }
        guard let fields = value.objectValue else { throw fail("'resources' must be a mapping {max_memory_mb}") }
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
    }
}
