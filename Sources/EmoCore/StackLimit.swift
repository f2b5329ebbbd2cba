import Foundation

/// glibc gives every new thread a stack of the process's `ulimit -s`: set very low, libdispatch's worker
/// threads overflow theirs (a crash in ingest at 64 KB) or corrupt what they were doing (SQLite then
/// reported a sound database as malformed at 96 KB). Below `minimum` emopipe does not start.
public enum StackLimit {
    /// The soft stack limit in bytes, when there is one.
    public static var softLimit: UInt64? { SoftLimit.of(RLIMIT_STACK) }

    /// 1 MiB: 128 KB ran the tiny pipeline, and a default is 8 MiB; what is set below this is a mistake.
    public static let minimum: UInt64 = 1 << 20

    /// Why this process cannot run with its stack limit, or nil.
    public static var tooLowToRun: String? {
        guard let soft = softLimit, soft < minimum else { return nil }
        return "the stack limit (ulimit -s) is \(soft >> 10) KB, below the \(minimum >> 10) KB emopipe needs "
            + "(each thread gets a stack of that size; theirs would overflow): raise it (ulimit -s 8192)"
    }
}

/// A process's soft resource limit (`getrlimit`), as the limits' own checks read it.
public enum SoftLimit {
    /// The soft limit of `resource`, or nil when it has none (unlimited) or cannot be read.
    public static func of(_ resource: __rlimit_resource) -> UInt64? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return UInt64(limit.rlim_cur)
    }
}
