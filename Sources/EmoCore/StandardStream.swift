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
        guard self == .error else {
            do { try FileHandle.standardOutput.write(contentsOf: data) } catch {
                Self.failOutput(reason: FileError.reason(of: error), code: FileError.posixCode(of: error))
            }
            return
        }
        // A progress line left open on the terminal is cleared first: a log line would run on after it.
        Self.errorStream.write { lineIsOpen in
            (lineIsOpen ? Data(Self.clearLine.utf8) + data : data, false)
        }
    }

    /// What `print` wrote goes through the C library's buffer: checked once, as the process ends.
    public static func checkBufferedOutputAtExit() {
        atexit {
            if fflush(stdout) != 0 || ferror(stdout) != 0 {
                StandardStream.failOutput(reason: String(cString: strerror(errno)), code: errno)
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
        errorStream.write { _ in (Data((clearLine + text + (final ? "\n" : "")).utf8), !final) }
    }

    private static let errorStream = ErrorStream()

    /// Stderr's writes, one at a time, and whether a progress line is drawn there and not ended: the
    /// test and the write are one step, so no other thread's text lands between a line and its flag.
    private final class ErrorStream: @unchecked Sendable {
        private let lock = NSLock()
        private var open = false
        /// `make` is given whether a progress line is open, and says what to write and whether one is open after it.
        /// A diagnostic that cannot be written is dropped.
        func write(_ make: (Bool) -> (Data, Bool)) {
            lock.lock(); defer { lock.unlock() }
            let (data, openAfter) = make(open)
            open = openAfter
            try? FileHandle.standardError.write(contentsOf: data)
        }
    }

    /// A reader that went away on purpose (`| head`) needs no message, as with other tools; the status still tells.
    private static func failOutput(reason: String, code: Int32?) {
        if code != EPIPE {
            try? FileHandle.standardError.write(contentsOf: Data("emopipe: cannot write to standard output: \(reason)\n".utf8))
        }
        _exit(1)
    }

}
