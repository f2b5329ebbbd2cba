import Foundation

/// Standard output and standard error, written without trapping: Foundation's `FileHandle.write(_:)`
/// stops the process on a failed write (a full disk, a closed pipe with SIGPIPE ignored).
///
///     StandardStream.output.write(Data(json.utf8))
public enum StandardStream {
    case output, error

    /// Writes all of `data`. A diagnostic that cannot be written is dropped; output that cannot be
    /// written ends the process with status 1, saying why on stderr: what the command computed is lost
    /// to the reader, and the exit status must tell.
    public func write(_ data: Data) {
        let handle = self == .output ? FileHandle.standardOutput : FileHandle.standardError
        // A progress line left open on the terminal is cleared first: a log line would run on after it.
        let data = self == .error && Self.progressLine.closeIfOpen() ? Data(Self.clearLine.utf8) + data : data
        do { try handle.write(contentsOf: data) } catch {
            guard self == .output else { return }
            Self.failOutput(reason: FileError.reason(of: error))
        }
    }

    /// What `print` wrote goes through the C library's buffer: checked once, as the process ends.
    public static func checkBufferedOutputAtExit() {
        atexit {
            if fflush(stdout) != 0 || ferror(stdout) != 0 {
                StandardStream.failOutput(reason: String(cString: strerror(errno)))
            }
        }
    }

    /// Whether standard input was closed when the process started (`<&-`): its descriptor is then given
    /// /dev/null (`holdClosedInput`), so that no file opened later (SQLite's) takes descriptor 0 and is
    /// read as the input.
    nonisolated(unsafe) public private(set) static var inputClosedAtStart = false

    /// Called first, before anything opens a file.
    public static func holdClosedInput() {
        guard fcntl(STDIN_FILENO, F_GETFD) == -1 && errno == EBADF else { return }
        inputClosedAtStart = true
        _ = open("/dev/null", O_RDONLY)   // the lowest free descriptor: 0
    }

    /// Carriage return and erase-to-end-of-line.
    static let clearLine = "\r\u{1B}[K"

    /// Draws a progress line on the terminal over the one before; `final` ends it with a line break.
    /// Until then, other text written to stderr clears it first.
    public static func drawProgressLine(_ text: String, final: Bool) {
        progressLine.set(open: false)
        StandardStream.error.write(Data((clearLine + text + (final ? "\n" : "")).utf8))
        progressLine.set(open: !final)
    }

    private static let progressLine = OpenLine()

    /// Whether a progress line is drawn and not ended.
    private final class OpenLine: @unchecked Sendable {
        private let lock = NSLock()
        private var open = false
        func set(open: Bool) { lock.lock(); self.open = open; lock.unlock() }
        /// True (and now closed) when it was open.
        func closeIfOpen() -> Bool { lock.lock(); defer { lock.unlock() }; let was = open; open = false; return was }
    }

    private static func failOutput(reason: String) {
        try? FileHandle.standardError.write(contentsOf: Data("emopipe: cannot write to standard output: \(reason)\n".utf8))
        _exit(1)
    }

}
