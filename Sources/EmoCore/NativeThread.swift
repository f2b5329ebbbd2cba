import Foundation

/// Threads made with pthread_create, which says when one cannot be made. Foundation's `Thread.start()` says
/// nothing then (a low `ulimit -u`), and a caller that waited for it waited for ever (a run hung in the
/// faces stage, deaf to SIGTERM).
public enum NativeThread {
    /// `body` started on a new thread of `stackBytes` (the default when nil), to be joined; or the error
    /// number pthread_create gave, when it could not be made (and `body` never runs).
    public static func spawn(stackBytes: Int? = nil, _ body: @escaping () -> Void) -> Result<pthread_t, CannotStart> {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if let stackBytes { pthread_attr_setstacksize(&attributes, stackBytes) }
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, &attributes, { raw in
            raw.map { Unmanaged<Job>.fromOpaque($0).takeRetainedValue().body() }
            return nil
        }, job)
        guard code == 0 else {
            Unmanaged<Job>.fromOpaque(job).release()
            return .failure(CannotStart(code: code))
        }
        return .success(thread)
    }

    /// `body` on a thread of its own that nobody joins; false when it could not be made.
    @discardableResult
    public static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        guard case .success(let thread) = spawn(body) else { return false }
        pthread_detach(thread)
        return true
    }

    /// pthread_create's error number.
    public struct CannotStart: Error {
        public let code: Int32
        public var reason: String { String(cString: strerror(code)) }
    }

    private final class Job: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
}
