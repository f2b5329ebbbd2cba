import Foundation

/// Starts `body` on a thread of its own, saying whether it started. Foundation's `Thread.start()` says
/// nothing when the thread cannot be made (a low `ulimit -u`), and a caller that then waited for it
/// waited for ever (a run hung in the faces stage, deaf to SIGTERM).
public enum DetachedThread {
    /// True when the thread runs `body`; false when it could not be created (and `body` never runs).
    @discardableResult
    public static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { raw in
            raw.map { Unmanaged<Job>.fromOpaque($0).takeRetainedValue().body() }
            return nil
        }, job)
        guard code == 0 else {
            Unmanaged<Job>.fromOpaque(job).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    private final class Job: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
