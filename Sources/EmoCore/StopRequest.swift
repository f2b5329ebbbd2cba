import Foundation

/// Whether the user asked this process to stop (the first SIGINT or SIGTERM). A run's cancellation
/// reaches its stages; this reaches the waits below them that no cancellation token is passed to, such
/// as a write waiting for another process to release the provenance database.
public enum StopRequest {
    private final class Flag: @unchecked Sendable {
        let lock = NSLock()
        var isSet = false
    }
    private static let flag = Flag()

    public static func set() { _ = setFirst() }

    /// Sets the request; true when this call was the first to (two signals handled at once agree which one was).
    public static func setFirst() -> Bool {
        flag.lock.lock(); defer { flag.lock.unlock() }
        defer { flag.isSet = true }
        return !flag.isSet
    }

    public static var isSet: Bool { flag.lock.lock(); defer { flag.lock.unlock() }; return flag.isSet }
}
