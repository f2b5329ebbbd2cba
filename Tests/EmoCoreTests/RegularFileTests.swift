import EmoCore
import Foundation
import Testing

/// Files EmoPipe reads whole (manifests, lists, marker files) must be regular files of the disk.
struct RegularFileTests {
    @Test func aFileIsReadWholeAndOthersAreRefusedByTheirKind() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("regular-file-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/worker.txt"
        try Data("1/2\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect(try RegularFile.text(file) == "1/2\n")
        #expect(throws: EmoError.io(path: folder, reason: RegularFile.notRegular)) { try RegularFile.read(folder) }
        #expect(throws: EmoError.io(path: file, reason: "it is 4 bytes, more than the 3 read of such a file: not one EmoPipe wrote")) {
            try RegularFile.read(file, atMost: 3)
        }
    }

    /// /proc's files say 0 bytes and are made as they are read: such a file (or a link to one) was called
    /// empty, and /proc/self/environ would be read as a user's list.
    @Test func aFileOfProcOrSysIsRefusedAsTheKernelsThroughALinkToo() throws {
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("regular-file-link-\(getpid())").path
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/proc/self/environ")
        defer { try? FileManager.default.removeItem(atPath: link) }
        for path in ["/proc/self/environ", link, "/sys/kernel/mm/transparent_hugepage/enabled"] where FileManager.default.fileExists(atPath: path) {
            #expect(throws: EmoError.io(path: path, reason: RegularFile.kernelFile)) { try RegularFile.read(path) }
        }
        // A descriptor's link under /proc to a file of the disk is that file.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("regular-file-fd-\(getpid())").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let handle = try #require(FileHandle(forReadingAtPath: file))
        defer { try? handle.close() }
        #expect(try RegularFile.text("/proc/self/fd/\(handle.fileDescriptor)") == "x")
    }
}
