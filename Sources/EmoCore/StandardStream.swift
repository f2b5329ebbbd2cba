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
    /// /dev/null (`holdClosedDescriptors`), so that no file opened later (SQLite's) takes descriptor 0 and is
    /// read as the input.
    nonisolated(unsafe) public private(set) static var inputClosedAtStart = false
    /// Likewise for standard output (`>&-`): held by /dev/null opened for reading, so output fails at its
    /// first write, saying why, rather than landing in whatever file took descriptor 1.
    nonisolated(unsafe) public private(set) static var outputClosedAtStart = false

    /// What standard input is when it holds nothing to read at all, known without reading it: "/dev/null", or "an
    /// empty file" (one read to its end); nil otherwise (a pipe is not known to be empty until it ends).
    public static var emptyInput: String? {
        var facts = stat(), null = stat()
        guard fstat(STDIN_FILENO, &facts) == 0 else { return nil }
        switch facts.st_mode & S_IFMT {
        case S_IFREG:
            let position = lseek(STDIN_FILENO, 0, SEEK_CUR)
            return position >= 0 && position >= facts.st_size ? "an empty file" : nil
        case S_IFCHR:
            return stat("/dev/null", &null) == 0 && null.st_rdev == facts.st_rdev ? "/dev/null" : nil
        default:
            return nil
        }
    }

    /// Called first, before anything opens a file: each standard descriptor closed at start is given
    /// /dev/null, so that no file opened later (the database, a shard) takes it, to be read as the input or
    /// written into as the output or the log. Diagnostics to a closed stderr go nowhere, as they would have.
    public static func holdClosedDescriptors() {
        // In order: `open` takes the lowest free descriptor, which is then the one being held.
        for (descriptor, flags) in [(STDIN_FILENO, O_RDONLY), (STDOUT_FILENO, O_RDONLY), (STDERR_FILENO, O_WRONLY)] {
            guard fcntl(descriptor, F_GETFD) == -1 && errno == EBADF else { continue }
            let held = open("/dev/null", flags)
            if held != descriptor, held >= 0 { _ = dup2(held, descriptor); close(held) }
            if descriptor == STDIN_FILENO { inputClosedAtStart = true }
            if descriptor == STDOUT_FILENO { outputClosedAtStart = true }
        }
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
        if outputClosedAtStart {
            try? FileHandle.standardError.write(contentsOf: Data("emopipe: cannot write to standard output: it was closed when emopipe started (>&-)\n".utf8))
        } else if code != EPIPE {
            try? FileHandle.standardError.write(contentsOf: Data("emopipe: cannot write to standard output: \(reason)\n".utf8))
        }
        _exit(1)
    }

}
