import EmoCore
import EmoStore
import Foundation

/// One run at a time per work directory.
///
/// The lock is an advisory `flock` on `emopipe.lock`, which the kernel releases when its holder
/// dies (even by SIGKILL), so a dead holder's lock is simply taken over; the file's text names
/// the holder for the message a second run prints. A hidden guard file beside it
/// (`.emopipe.lock.guard`) is locked too, taken after it and let go before it: removing a lock file
/// someone holds (as one does with a lock file believed stale) would otherwise let a second run in
/// beside the first. (The folder itself is not locked: `flock DIR command` is a common way to run
/// a job, and would then turn every run away.)
///
///     let lock = try workspace.lock(holder: "emopipe run (pid 42)")
///     defer { lock.release() }
public final class WorkDirectoryLock {
    private var fd: Int32
    /// The guard file's lock.
    private var guardFD: Int32
    public let path: String
    /// The holder text found in the file when the lock was free: a run that died holding it.
    public let previousHolder: String?

    public static func acquire(path: String, holder: String) throws -> WorkDirectoryLock {
        // Not followed if a link, and only a regular file: the lock is emptied and written, and a link
        // planted in a work directory (a worker's, say) must not empty a file elsewhere.
        let fd = try openRegularFile(path, what: "the lock file")
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            // The winner writes its name just after taking the lock (and empties it just before letting go):
            // a loser by microseconds waits a moment for the name, or for the lock.
            var current = readText(fd), taken = false
            let deadline = Date().addingTimeInterval(0.25)
            while current.isEmpty && Date() < deadline {
                usleep(5_000)
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { taken = true; break }
                current = readText(fd)
            }
            if !taken {
                close(fd)
                throw PipelineError.locked(holder: current.isEmpty ? "another process" : current)
            }
        }
        // Refused as the lock file is when it is no regular file: a folder or FIFO planted there would
        // otherwise leave the file's lock alone, and a removed lock file would let a second run in.
        let guardFD: Int32
        do { guardFD = try openRegularFile(guardPath(of: path), what: "the lock's guard file") } catch {
            close(fd)
            throw error
        }
        if flock(guardFD, LOCK_EX | LOCK_NB) != 0 {
            close(guardFD)
            // Ours is a new file: the holder's was removed under it, and its name with it.
            flock(fd, LOCK_UN)
            close(fd)
            throw PipelineError.locked(holder: "another process, holding \((guardPath(of: path) as NSString).lastPathComponent) "
                                       + "(an emopipe whose \((path as NSString).lastPathComponent) was removed while it ran, or a process holding the guard itself)")
        }
        let stale = readText(fd)
        ftruncate(fd, 0)
        let line = holder + "\n"
        _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
        fsync(fd)
        return WorkDirectoryLock(fd: fd, guardFD: guardFD, path: path, previousHolder: stale.isEmpty ? nil : stale)
    }

    private init(fd: Int32, guardFD: Int32, path: String, previousHolder: String?) {
        self.fd = fd; self.guardFD = guardFD; self.path = path; self.previousHolder = previousHolder
    }

    /// `.NAME.guard` beside the lock file NAME.
    static func guardPath(of path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".guard").path
    }

    /// `path` opened to read and write, created if missing; not followed if a link, and only a regular
    /// file (`what` names it in the refusal).
    private static func openRegularFile(_ path: String, what: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
        guard fd >= 0 else {
            let number = errno
            throw EmoError.io(path: path, reason: "cannot open \(what): \(String(cString: strerror(number)))"
                              + (number == ELOOP ? " (it is a link; remove it)" : number == EISDIR ? " (it is a folder; remove it)" : ""))
        }
        var facts = stat()
        guard fstat(fd, &facts) == 0, facts.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw EmoError.io(path: path, reason: "\(what) is not a regular file; remove it")
        }
        return fd
    }

    /// Clears the holder text, then unlocks.
    /// The guard goes first: a run that takes the file the moment it is let go finds the guard free.
    public func release() {
        guard fd >= 0 else { return }
        if guardFD >= 0 {
            flock(guardFD, LOCK_UN)
            close(guardFD)
            guardFD = -1
        }
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }

    /// Whether some process holds the lock on `path`, judged from the kernel's table of locks
    /// (`/proc/locks`) without taking it (a probe that took it would turn a run starting that instant
    /// away); nil where that table cannot be read. Holders in other PID namespaces count too.
    /// The guard is locked with the file, so a holder whose file was removed still counts.
    public static func isHeld(path: String) -> Bool? {
        let files = [path, guardPath(of: path)].compactMap { candidate -> (major: UInt64, minor: UInt64, inode: UInt64)? in
            var facts = stat()
            guard stat(candidate, &facts) == 0 else { return nil }
            let device = UInt64(facts.st_dev)
            return (((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff), (device & 0xff) | ((device >> 12) & ~0xff), UInt64(facts.st_ino))
        }
        // Where neither file nor guard exists, nothing can be held.
        guard !files.isEmpty else { return false }
        guard let data = try? FileHandle(forReadingAtPath: "/proc/locks")?.readToEnd() else { return nil }
        // "1: FLOCK  ADVISORY  WRITE 23043 fe:00:16227285 0 EOF" (a waiter's line has "->" second).
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK" else { continue }
            let id = fields[5].split(separator: ":")
            guard id.count == 3, let major = UInt64(id[0], radix: 16), let minor = UInt64(id[1], radix: 16), let inode = UInt64(id[2]) else { continue }
            if files.contains(where: { $0.major == major && $0.minor == minor && $0.inode == inode }) { return true }
        }
        return false
    }

    /// What `acquire` refuses at `path` whoever holds it (anything but a regular file), or nil.
    public static func obstruction(path: String) -> String? {
        var facts = stat()
        guard lstat(path, &facts) == 0 else { return nil }
        switch facts.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFLNK: return "a symbolic link"
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        default: return "a device"
        }
    }

    /// Who holds the lock on `path` now, as it wrote itself there, or nil when nobody does (or the
    /// kernel's table of locks cannot be read).
    public static func currentHolder(path: String) -> String? {
        guard isHeld(path: path) == true else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return "another process" }
        defer { close(fd) }
        let text = readText(fd)
        return text.isEmpty ? "another process" : text
    }

    /// The holder text as messages show it: whatever else wrote the file (zeros, an escape sequence, a
    /// screenful) is shown escaped and cut, and a file of zeros names no holder.
    private static func readText(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return "" }
        // Ours is one line of text: bytes that are no UTF-8 text (written over it) are described, not echoed;
        // text is echoed with its control characters spelt out.
        // (A read that filled the buffer may end inside a character: up to three bytes are let go.)
        let ends = n == buffer.count ? Array((n - 3)...n).reversed() : [n]
        guard let text = ends.lazy.compactMap({ String(validating: buffer[0..<$0], as: UTF8.self) }).first else {
            return "unknown (the lock file holds \(n == buffer.count ? "at least " : "")\(n) bytes that are not its text)"
        }
        return text
            .trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "\u{0}"))).echoed
    }
}

extension Workspace {
    /// Takes the work directory's lock (`emopipe.lock`), or says who holds it.
    public func lock(holder: String) throws -> WorkDirectoryLock {
        try WorkDirectoryLock.acquire(path: lockPath, holder: holder)
    }
}
