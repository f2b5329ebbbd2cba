import Foundation

/// The kernel's own filesystems, /proc and /sys: they hold no recordings, and their links
/// (`/proc/<pid>/cwd`, `/proc/<pid>/root`) lead out over the whole machine, so a data root walk
/// never enters them.
public enum KernelFilesystem {
    /// The devices /proc and /sys are mounted from; one that is not a mount of its own (the root
    /// filesystem's device) is left out, or everything would count as the kernel's.
    static let devices: Set<UInt64> = {
        var root = stat()
        guard stat("/", &root) == 0 else { return [] }
        return Set(["/proc", "/sys"].compactMap { path -> UInt64? in
            var info = stat()
            guard stat(path, &info) == 0, info.st_dev != root.st_dev else { return nil }
            return UInt64(info.st_dev)
        })
    }()

    /// Whether the folder at `path` (followed through links), whose `stat` is `info`, is on /proc or /sys:
    /// their own devices, or a path below them (/sys/fs/cgroup and the like are mounts of their own).
    public static func holds(path: String, _ info: stat) -> Bool {
        if devices.contains(UInt64(info.st_dev)) { return true }
        guard let resolved = realpath(path, nil) else { return false }
        defer { free(resolved) }
        let real = String(cString: resolved)
        return ["/proc", "/sys"].contains { real == $0 || real.hasPrefix($0 + "/") }
    }

    /// Whether `path` (followed through links) is on /proc or /sys.
    public static func holds(path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && holds(path: path, info)
    }

    public static let refusal = "is on the kernel's /proc or /sys filesystem, which holds no recordings"
}
