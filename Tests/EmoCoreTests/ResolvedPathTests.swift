import EmoCore
import EmoTestSupport
import Foundation
import Testing

/// `ResolvedPath` follows a path as the kernel does, so a check on where a folder will be made agrees
/// with where `mkdir` and every write then put it.
@Suite("resolved path")
struct ResolvedPathTests {
    @Test func aLinkIsFollowedBeforeTheDotDotAfterIt() throws {
        let root = URL(fileURLWithPath: try TestSupport.temporaryFolder("resolved")).resolvingSymlinksInPath().path
        try FileManager.default.createDirectory(atPath: root + "/deep/inner", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/side", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/side/link", withDestinationPath: root + "/deep/inner")
        // Text would drop `link/..` and land in side/; the kernel lands in deep/.
        #expect(ResolvedPath.of(root + "/side/link/../new/x") == root + "/deep/new/x")
        #expect(mkdir(root + "/side/link/../made", 0o755) == 0 && FileManager.default.fileExists(atPath: root + "/deep/made"))
        // A relative link, and a missing tail whose `..` is taken as written.
        try FileManager.default.createSymbolicLink(atPath: root + "/side/up", withDestinationPath: "../deep")
        #expect(ResolvedPath.of(root + "/side/up/inner/missing/../other") == root + "/deep/inner/other")
        #expect(ResolvedPath.isWithin(root + "/side/link/../inner", root + "/deep"))
        #expect(!ResolvedPath.isWithin(root + "/deeper", root + "/deep"))
        // A name that does not exist yet is a folder `mkdir -p` makes: `..` comes back from it, and a link
        // after that is followed again.
        #expect(ResolvedPath.of(root + "/side/nx/../link/y") == root + "/deep/inner/y")
        #expect(ResolvedPath.of(root + "/nx/ny/../../side/link") == root + "/deep/inner")
    }

    /// A manifest's `pipeline: link/../p.yaml` names what `ls` finds: the `..` after a link is the filesystem's;
    /// links without a `..` after them stay as written (a data root behind a link keeps its own name).
    @Test func tidiedTakesDotDotAfterALinkAsTheFilesystemDoes() throws {
        let root = URL(fileURLWithPath: try TestSupport.temporaryFolder("tidied")).resolvingSymlinksInPath().path
        try FileManager.default.createDirectory(atPath: root + "/real/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/x", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/x/lnk", withDestinationPath: "../real/sub")
        #expect(ResolvedPath.tidied(root + "/x/lnk/../p.yaml") == root + "/real/p.yaml")
        #expect(ResolvedPath.tidied(root + "/x/./lnk//q.yaml") == root + "/x/lnk/q.yaml")
        #expect(ResolvedPath.tidied(root + "/x/missing/../y") == root + "/x/y")
        #expect(ResolvedPath.tidied(root + "/x/lnk/../../x/lnk/q") == root + "/x/lnk/q")
        // A link earlier in the path, whose `..` both readings take to the same folder, is kept as written:
        // a manifest reached through a linked folder keeps its data root's name (and its recorded sources).
        try FileManager.default.createSymbolicLink(atPath: root + "/L", withDestinationPath: root + "/real")
        #expect(ResolvedPath.tidied(root + "/L/sub/../demo-data") == root + "/L/demo-data")
    }

    /// Only a link on /proc or /sys, or an end there, is "through the kernel's": a name passed by `..` is not.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/root"), "needs /proc"))
    func aLinkOnProcIsThroughTheKernelAndPassingByNameIsNot() throws {
        let root = URL(fileURLWithPath: try TestSupport.temporaryFolder("through")).resolvingSymlinksInPath().path
        #expect(KernelFilesystem.resolve("/proc/../" + root) == (root, false))
        #expect(KernelFilesystem.resolve("/proc/self/root" + root) == (root, true))
        #expect(KernelFilesystem.resolve("/proc/self/status").throughKernel)
    }

    @Test func aLoopOfLinksEnds() throws {
        let root = URL(fileURLWithPath: try TestSupport.temporaryFolder("loop")).resolvingSymlinksInPath().path
        try FileManager.default.createSymbolicLink(atPath: root + "/a", withDestinationPath: root + "/b")
        try FileManager.default.createSymbolicLink(atPath: root + "/b", withDestinationPath: root + "/a")
        var links = 0
        _ = ResolvedPath.resolve(root + "/a/x") { _, info in if info.st_mode & S_IFMT == S_IFLNK { links += 1 } }
        #expect(links == 41, "gives up after 40 links followed, as the kernel does: \(links) seen")
    }
}

/// The folder part of a path, as Foundation's `deletingLastPathComponent` says it, without its trap.
@Suite("path text")
struct PathTextTests {
    @Test(arguments: [("x", ""), ("x/", ""), ("x//", ""), ("é", ""), ("ab", ""), ("", ""), ("/", "/"), ("//", "/"),
                      ("/a", "/"), ("/a//", "/"), ("a/b", "a"), ("a/b/", "a"), ("a//b", "a"), ("./x", "."), ("../x", ".."),
                      ("/a/b/c.wav", "/a/b")])
    func theFolderOfAPathIsWhatFoundationWouldSay(path: String, folder: String) {
        #expect(PathText.folder(of: path) == folder, "\(path)")
        // Foundation agrees where it does not trap (a last name of two characters or more; it says "" of "//").
        if path.split(separator: "/").last.map({ $0.count > 1 }) ?? false {
            #expect((path as NSString).deletingLastPathComponent == folder, "\(path)")
        }
    }

    @Test(arguments: [("f", [String]()), ("/f", []), ("a/f", ["a"]), ("a/b/c/f", ["a", "a/b", "a/b/c"]),
                      ("/x/y/f", ["/x", "/x/y"]), ("x//y/f/", ["x", "x//y"]), ("./a/f", ["./a"])])
    func theFoldersAboveAFileAreListedOutermostFirst(path: String, folders: [String]) {
        #expect(PathText.enclosingFolders(of: path) == folders, "\(path)")
    }

    @Test func makingEachEnclosingFolderInTurnMakesTheWholeChain() throws {
        let root = try TestSupport.temporaryFolder("chain")
        let file = root + "/one/two/three/input.wav"
        for folder in PathText.enclosingFolders(of: file) { _ = mkdir(folder, 0o755) }
        #expect(FileManager.default.createFile(atPath: file, contents: Data([1])), "every folder above \(file) was made")
    }
}

