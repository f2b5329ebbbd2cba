import Foundation

/// Running out of open files (EMFILE: the process's `ulimit -n`; ENFILE: the whole system's) is the
/// machine's limit, not a file's fault. A read that fails that way must not become the file's
/// recorded failure, which later runs would trust and never read it again: the stage stops instead,
/// keeping what it finished, and the next run reads the file.
public enum OpenFileLimit {
    /// The messages of ENFILE and EMFILE as every library here spells them (strerror's text; FFmpeg's
    /// av_strerror and libsndfile pass it on).
    static let messages = [ENFILE, EMFILE].map { String(cString: strerror($0)) }

    /// Whether a failure's text says the open files ran out.
    public static func ranOut(_ text: String) -> Bool { messages.contains { text.contains($0) } }

    /// The process's soft limit on open files, when it has one.
    public static var softLimit: UInt64? { SoftLimit.of(RLIMIT_NOFILE) }

    /// Below this emopipe does not start: libdispatch, SQLite, the cache and the decoders would fail
    /// part way (libdispatch by trapping, which no caller can catch).
    public static let minimum: UInt64 = 64

    /// Why this process cannot run with its open-file limit, or nil.
    public static var tooLowToRun: String? {
        guard let soft = softLimit, soft < minimum else { return nil }
        return "the open-file limit (ulimit -n) is \(soft), below the \(minimum) emopipe needs to run "
            + "(the database, the cache, decoders and worker threads hold files open): raise it"
    }

    /// Fewer open files than this make failures likely (the database alone keeps several open).
    public static let comfortable: UInt64 = 256

    /// Raises the soft limit to the hard one (at most 65,536) when it is below `comfortable`, as the
    /// administrator allows: a shell's default of 1,024 is plenty, a soft limit set lower is not.
    public static func raiseSoftLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < comfortable else { return }
        limit.rlim_cur = min(limit.rlim_max, 65_536)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// A note for a failure when the limit is so low that it may be the cause, else nil.
    public static var lowLimitNote: String? {
        guard let soft = softLimit, soft < comfortable else { return nil }
        return "the open-file limit (ulimit -n) is \(soft), below the \(comfortable) emopipe may need: raise it"
    }

    /// Why no file can be opened right now, when that is the open-file limit: for messages of
    /// libraries that report only "cannot open" (SQLite). Nil when a file opens.
    public static func exhaustedNow() -> String? {
        let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if descriptor >= 0 { close(descriptor); return nil }
        let code = errno
        return code == EMFILE || code == ENFILE ? String(cString: strerror(code)) : nil
    }

    /// What the user can do about it.
    public static var advice: String {
        "the process ran out of open files" + (softLimit.map { " (ulimit -n is \($0))" } ?? "")
            + ": raise the limit and run again"
    }
}

/// A source could not be read because the open files ran out: nothing was recorded for it, and the
/// stage stopped after keeping what it had finished.
public struct OpenFilesRanOut: Error, CustomStringConvertible {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) { self.path = path; self.reason = reason }

    public var description: String {
        "\(path.shownPath): \(reason); not recorded as the file's failure, \(OpenFileLimit.advice)"
    }
}
