// Long work (decoding hours of audio, analysing a clip at an extreme hop) polls this between chunks and
// frames, so an interrupted run stops within a moment instead of after the file it is on.

/// Whether the caller wants the work stopped (a run interrupted by SIGINT or SIGTERM).
public struct StopCheck: Sendable {
    private let requested: @Sendable () -> Bool

    public init(_ requested: @escaping @Sendable () -> Bool) { self.requested = requested }

    /// Never asks to stop: work that cannot be interrupted.
    public static let never = StopCheck { false }

    public var isRequested: Bool { requested() }
}
