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
        guard let resolved = ResolvedPath.existing(path) else { return false }
        return isBelowKernelMount(resolved)
    }

    /// Whether `path` (followed through links) is on /proc or /sys.
    public static func holds(path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && holds(path: path, info)
    }

    public static let refusal = "is on the kernel's /proc or /sys filesystem, which holds no recordings"

    /// The folders a command roots its work in, as messages name them.
    public enum RootUse: Sendable {
        case dataRoot, workDirectory
        var name: String { self == .dataRoot ? "the data root" : "the work directory" }
    }

    /// What is wrong with `root` as a data root (or as the work directory), or nil. A root on /proc or /sys holds no recordings;
    /// one reached through them (`/proc/self/cwd/data`, `/proc/1/root/srv`, or a link to such a path) may
    /// reach a real folder, but another process (the next run, from another folder) reaches another one
    /// by the same name, and the work directory remembers the name.
    public static func rootRefusal(_ root: String, as use: RootUse = .dataRoot) -> String? {
        var info = stat()
        let folder = use.name
        if stat(root, &info) == 0 && holds(path: root, info) {
            return use == .dataRoot ? "\(folder) \(refusal)" : "\(folder) is on the kernel's /proc or /sys filesystem: give a folder of your own"
        }
        let (own, throughKernel) = resolve(root)
        guard throughKernel else { return nil }
        return "\(folder) is reached through the kernel's /proc or /sys filesystem, whose links lead elsewhere "
            + "for every process: give the folder's own path (\(own.echoed))"
    }

    /// `path` resolved (`ResolvedPath`; the path as given when it leads nowhere), and whether it ends on
    /// /proc or /sys or follows a link there (`/proc/self`, `/proc/<pid>/cwd`): passing through by name
    /// and leaving by `..` (`/proc/../srv`) is not.
    public static func resolve(_ path: String) -> (resolved: String, throughKernel: Bool) {
        var throughKernel = false
        let resolved = ResolvedPath.resolve(path) { place, info in
            let onKernel = isBelowKernelMount(place) || devices.contains(UInt64(info.st_dev))
            if onKernel && info.st_mode & S_IFMT == S_IFLNK { throughKernel = true }
        } ?? path
        return (resolved, throughKernel || isBelowKernelMount(resolved))
    }

    /// Whether the absolute, link-free `path` (see `ResolvedPath`) is /proc, /sys or below them.
    public static func isBelowKernelMount(_ path: String) -> Bool {
        ["/proc", "/sys"].contains { path == $0 || path.hasPrefix($0 + "/") }
    }
}
