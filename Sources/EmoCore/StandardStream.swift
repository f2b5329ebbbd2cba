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

    private static func failOutput(reason: String) {
        try? FileHandle.standardError.write(contentsOf: Data("emopipe: cannot write to standard output: \(reason)\n".utf8))
        _exit(1)
    }

}
