import Foundation

/// What `stat` says of a file that changes whenever its bytes do (the kernel sets the change time;
/// no user can put it back), so that comparing two of them tells whether the file was touched between.
public struct FileState: Hashable, Sendable {
    public var device: UInt64, inode: UInt64, size: Int64, mtimeNanos: Int64, ctimeNanos: Int64

    public init(_ info: stat) {
        device = UInt64(info.st_dev); inode = UInt64(info.st_ino); size = Int64(info.st_size)
        mtimeNanos = info.mtimeNanos
        ctimeNanos = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    /// The state of the file `path` leads to (links followed), or nil when `stat` refuses it.
    public init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    /// `inode:ctime-nanoseconds`, as a source row keeps it: without the device number, which an NFS client
    /// picks at mount time (another on each host of a cluster, or after a remount); a rename or a rewrite
    /// moves the inode or the change time anyway.
    public var inodeState: String { "\(inode):\(ctimeNanos)" }
}
