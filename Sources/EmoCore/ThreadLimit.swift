import Foundation

/// A low limit on a user's processes and threads (`ulimit -u`, counted over every process of the user) left
/// libdispatch waiting for ever for a worker thread: a run hung at start-up, deaf to SIGTERM and SIGINT. emopipe
/// starts only with room for `minimumSpare` more threads (a run's workers above that are made as room allows: a
/// worker that cannot be made is said, and its work done on the threads there are).
public enum ThreadLimit {
    /// Threads emopipe starts beside its workers: libdispatch's, SQLite's queue, the progress and signal threads.
    public static let minimumSpare = 8

    /// Why emopipe cannot start under its limit, or nil (no limit, or room for `minimumSpare` more threads).
    public static var tooLowToRun: String? {
        guard let soft = SoftLimit.of(__RLIMIT_NPROC) else { return nil }
        let started = startable(upTo: minimumSpare)
        guard started < minimumSpare else { return nil }
        return "the limit on this user's processes and threads (ulimit -u) is \(soft), which leaves room for \(started) more "
            + "thread\(started == 1 ? "" : "s") (every process and thread of the user counts; a container's process limit may leave "
            + "less), not the \(minimumSpare) emopipe needs to run: raise it (ulimit -u 4096), or end other processes of this user"
    }

    /// How many threads, up to `count`, can be running at once: each waits on a pipe until all are made (or one
    /// cannot be), then all end and are joined. Only EAGAIN (the limit) counts as no room: another refusal
    /// (no memory for a stack) is not the limit's, and is left to the command to meet and say.
    static func startable(upTo count: Int) -> Int {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return count }   // cannot tell: let the command say what fails
        let (readEnd, writeEnd) = (ends[0], ends[1])
        for end in [readEnd, writeEnd] { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }   // closed soon, and never inherited
        var threads: [pthread_t] = []
        var refusal: Int32 = 0
        while threads.count < count && refusal == 0 {
            // Small stacks: glibc keeps a joined thread's stack mapped for reuse, and what stays mapped counts
            // against an address-space limit (train's batch-size check reads it).
            switch NativeThread.spawn(stackBytes: 256 << 10, {
                var byte: UInt8 = 0
                _ = read(readEnd, &byte, 1)   // returns 0 once the write end is closed
            }) {
            case .success(let thread): threads.append(thread)
            case .failure(let cannot): refusal = cannot.code
            }
        }
        close(writeEnd)
        for thread in threads { pthread_join(thread, nil) }
        close(readEnd)
        return refusal == EAGAIN ? threads.count : count
    }
}
