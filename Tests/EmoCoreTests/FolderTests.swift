import EmoCore
import Foundation
import XCTest

final class FolderTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "folder-tests-" + UUID().uuidString
        try Folder.create(root)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func testCreatesEveryMissingLevelAndLeavesAnExistingFolderAlone() throws {
        let nested = root + "/a/b/c"
        try Folder.create(nested)
        XCTAssertTrue(FileManager.default.createFile(atPath: nested + "/kept", contents: Data("x".utf8)))
        try Folder.create(nested)
        try Folder.create(nested + "/")
        XCTAssertEqual(try String(contentsOfFile: nested + "/kept", encoding: .utf8), "x")
    }

    func testALinkToAFolderServesAsTheFolder() throws {
        try Folder.create(root + "/real")
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: root + "/real")
        try Folder.create(root + "/link/inside")
        var isFolder: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/real/inside", isDirectory: &isFolder))
        XCTAssertTrue(isFolder.boolValue)
    }

    func testAFileInTheWayIsNamedWhateverLevelItIsAt() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/cache", contents: Data()))
        for target in [root + "/cache", root + "/cache/train/fold-0"] {
            XCTAssertThrowsError(try Folder.create(target)) { error in
                XCTAssertEqual(error as? EmoError,
                               .io(path: root + "/cache", reason: "is a file where a folder should be: move or remove it"))
            }
        }
    }

    /// A dry run asks whether a work directory could be made, making nothing: as `create` would answer.
    func testWhetherAFolderCouldBeMadeIsToldWithoutMakingIt() throws {
        XCTAssertNil(Folder.creationProblem(root + "/new/deeper"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/new"), "nothing made")
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/cache", contents: Data()))
        XCTAssertEqual(Folder.creationProblem(root + "/cache/train"), .io(path: root + "/cache", reason: "is a file where a folder should be: move or remove it"))
        XCTAssertThrowsError(try Folder.create(root + "/cache/train")) { XCTAssertEqual($0 as? EmoError, Folder.creationProblem(root + "/cache/train")) }
        try FileManager.default.createSymbolicLink(atPath: root + "/gone", withDestinationPath: root + "/nowhere")
        for target in [root + "/gone/w", root + "/gone/", root + "/gone"] {
            XCTAssertEqual(Folder.creationProblem(target),
                           .io(path: root + "/gone", reason: "is a link to a folder that does not exist: remove it or create its target"), target)
            XCTAssertThrowsError(try Folder.create(target), target)
        }
        XCTAssertEqual(Folder.creationProblem("/proc/self/x"),
                       .io(path: "/proc/self/x", reason: "cannot create the folder: /proc/self is on the kernel's /proc or /sys filesystem"))
        XCTAssertThrowsError(try Folder.create("/proc/self/x"))
        XCTAssertNil(Folder.creationProblem("relative-\(UUID().uuidString)/w"), "a relative path is judged from the current folder")
    }

    func testAFolderThatCannotBeMadeSaysWhy() throws {
        try XCTSkipIf(getuid() == 0, "root may write into a read-only folder")
        try Folder.create(root + "/locked")
        chmod(root + "/locked", 0o500)
        defer { chmod(root + "/locked", 0o700) }
        XCTAssertThrowsError(try Folder.create(root + "/locked/new")) { error in
            XCTAssertEqual(error as? EmoError,
                           .io(path: root + "/locked/new", reason: "cannot create the folder: Permission denied"))
        }
    }

    func testItReturnsTheLevelsItMadeAndCanRemoveThemWhenALaterOneCannotBeMade() throws {
        XCTAssertEqual(try Folder.create(root + "/made/here"), [root + "/made", root + "/made/here"])
        XCTAssertEqual(try Folder.create(root + "/made/here"), [])
        // A name longer than a file system allows (255 bytes): the two levels made before it are removed.
        let tooLong = root + "/new/deeper/" + String(repeating: "x", count: 300)
        XCTAssertThrowsError(try Folder.create(tooLong, undoingOnFailure: true)) { error in
            XCTAssertEqual(error as? EmoError, .io(path: tooLong, reason: "cannot create the folder: File name too long"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/new"))
        // By default what was made stays: another process may be writing into it already.
        XCTAssertThrowsError(try Folder.create(tooLong))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/new/deeper"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/made/here"))
    }

    func testALinkToNowhereIsNamedAsSuch() throws {
        try FileManager.default.createSymbolicLink(atPath: root + "/gone", withDestinationPath: root + "/never-made")
        for target in [root + "/gone", root + "/gone/inside"] {
            XCTAssertThrowsError(try Folder.create(target)) { error in
                XCTAssertEqual(error as? EmoError,
                               .io(path: root + "/gone", reason: "is a link to a folder that does not exist: remove it or create its target"))
            }
        }
    }

    func testAnEmptyNameIsRefused() {
        XCTAssertThrowsError(try Folder.create(""))
    }

    /// A relative name of one character, missing, is judged from the current folder (Foundation's own
    /// deletingLastPathComponent trapped on "f").
    func testAOneCharacterRelativeNameIsJudgedFromTheCurrentFolder() throws {
        let root = NSTemporaryDirectory() + "folder-one-char-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let previous = FileManager.default.currentDirectoryPath
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(root))
        XCTAssertNil(Folder.creationProblem("f"))
        XCTAssertNil(Folder.creationProblem("g/f"))
        try Data().write(to: URL(fileURLWithPath: root + "/h"))
        XCTAssertEqual(Folder.creationProblem("h/f"), .io(path: "h", reason: "is a file where a folder should be: move or remove it"))
    }
}
