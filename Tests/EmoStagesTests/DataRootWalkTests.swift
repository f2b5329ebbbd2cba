import EmoCore
import EmoPipeline
import EmoStore
import EmoTestSupport
import Foundation
import GRDB
import Testing

/// How ingest walks a data root: links, second paths to one file, actor folders, and a root with
/// nothing to ingest.
@Suite("data-root walk", .serialized, .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"))
struct DataRootWalkTests {
    /// A data root holding the first `count` speech wavs of actor 01 (hard links), and their paths. Linking
    /// moves the shared files' change time; no test ingests `IngestFixture.materialized` itself (data roots
    /// are copies of it), so none sees that as a change.
    static func smallRoot(count: Int = 4) throws -> (root: String, wavs: [String]) {
        let source = try IngestFixture.materialized.get() + "/Actor_01"
        let names = try FileManager.default.contentsOfDirectory(atPath: source)
            .filter { $0.hasPrefix("03-") && $0.hasSuffix(".wav") }.sorted().prefix(count)
        let root = try TestSupport.temporaryFolder("data") + "/ravdess"
        try FileManager.default.createDirectory(atPath: root + "/Actor_01", withIntermediateDirectories: true)
        for name in names { try FileManager.default.linkItem(atPath: source + "/" + name, toPath: root + "/Actor_01/" + name) }
        return (root, names.map { root + "/Actor_01/" + $0 })
    }

    static func ingest(_ root: String) throws -> (result: TestSupport.ProcessResult, sources: [String: [String: Any]]) {
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        return (result, try IngestFixture.sources(workdir: workdir))
    }

    /// A work directory kept inside the data root (this run's, reached by a link too, or another's) is not
    /// walked: its database, shards and runs are no recordings, and would show as changed after every run.
    @Test func aWorkDirectoryInsideTheDataRootIsNotWalked() throws {
        let (root, wavs) = try Self.smallRoot()
        let workdir = root + "/work"
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_01/work-link", withDestinationPath: workdir)
        let other = root + "/Actor_01/old-work"
        try FileManager.default.createDirectory(atPath: other + "/cache", withIntermediateDirectories: true)
        try Data(Array("SQLite format 3".utf8) + [0] + [UInt8](repeating: 0, count: 84)).write(to: URL(fileURLWithPath: other + "/emopipe.sqlite"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: other + "/cache/shard.bin"))
        // A file of that name that is no SQLite database (empty here) makes no work directory: the recordings beside it are read.
        try Data().write(to: URL(fileURLWithPath: root + "/Actor_01/emopipe.sqlite"))
        for attempt in 0..<2 {
            let run = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
            #expect(run.status == 0, "\(run.stderr)")
            // Said when ingest walks; the second run finds ingest up to date (nothing it reads changed).
            #expect(attempt == 1 ? run.stderr.contains("ingest: up to date")
                    : run.stderr.contains("/work: not walked, it is the work directory")
                      && run.stderr.contains("/old-work: not walked, it holds an EmoPipe database"), "\(run.stderr)")
            let sources = try IngestFixture.sources(workdir: workdir)
            let found = Set(sources.filter { $0.value["status"] as? String == "ok" }.keys)
            #expect(found == Set(wavs), "only the recordings, every one: \(sources.keys.sorted())")
            #expect(!sources.keys.contains { $0.contains("/work/") || $0.contains("/old-work/") }, "\(sources.keys.sorted())")
        }
        // The data root itself as the work directory is refused before anything is written there: its own files would be read as data.
        let fresh = try TestSupport.temporaryFolder("data-and-work") + "/d"
        try FileManager.default.createDirectory(atPath: fresh + "/Actor_01", withIntermediateDirectories: true)
        try FileManager.default.linkItem(atPath: wavs[0], toPath: fresh + "/Actor_01/" + (wavs[0] as NSString).lastPathComponent)
        let same = try IngestFixture.emopipe(["run", "--until", "ingest"], data: fresh, workdir: fresh)
        #expect(same.status == 64 && same.stderr.contains("the data root is also the work directory"), "\(same.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fresh) == ["Actor_01"], "nothing written into the data root")
    }

    /// `diff` names the files two runs' data differ by (the first few of each kind), on the second run's side.
    @Test func diffNamesTheSourcesAddedRemovedAndChanged() throws {
        let (root, wavs) = try Self.smallRoot(count: 4)
        let workdir = try TestSupport.temporaryFolder("work")
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let name = { (path: String) in "Actor_01/" + (path as NSString).lastPathComponent }
        try FileManager.default.removeItem(atPath: wavs[0])
        try FileManager.default.removeItem(atPath: wavs[1])
        try FileManager.default.copyItem(atPath: wavs[2], toPath: wavs[1])   // other bytes under that name
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir).status == 0)
        let runs = try IngestFixture.emopipe(["runs", "--json"], workdir: workdir)
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]]).compactMap { $0["id"] as? String }
        let diff = try IngestFixture.emopipe(["diff", ids[1], ids[0], "--json"], workdir: workdir)
        let fields = try #require((try JSONSerialization.jsonObject(with: Data(diff.stdout.utf8)) as? [String: Any])?["fields"] as? [[String: Any]])
        let data = Dictionary(uniqueKeysWithValues: fields.filter { $0["section"] as? String == "data" }.map { ($0["name"] as! String, $0) })
        #expect(data["sources removed"]?["b"] as? String == "1: \(name(wavs[0]))" && data["sources removed"]?["a"] is NSNull, "\(data)")
        #expect(data["sources changed"]?["b"] as? String == "1: \(name(wavs[1]))" && data["sources added"] == nil, "\(data)")
    }

    @Test func aLinkBackIntoAFolderTheWalkIsInsideIsNotFollowed() throws {
        let (root, wavs) = try Self.smallRoot()
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_01/loop", withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_01/here", withDestinationPath: ".")
        try FileManager.default.createDirectory(atPath: root + "/Actor_01/deeper", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_01/deeper/up", withDestinationPath: root)
        // A link to a folder holding the root reads files outside it (here a recording beside the root), and the
        // root again: one to `/` walked the whole machine.
        let beside = PathText.folder(of: root) + "/elsewhere/Actor_05"
        try FileManager.default.createDirectory(atPath: beside, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: wavs[0], toPath: beside + "/03-01-01-01-01-01-05.wav")
        try FileManager.default.createSymbolicLink(atPath: root + "/parent", withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_01/machine", withDestinationPath: "/")

        let (result, sources) = try Self.ingest(root)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Set(sources.keys) == Set(wavs), "each wav once, under its own path: \(sources.keys.sorted())")
        #expect(sources.values.allSatisfy { $0["status"] as? String == "ok" })
        for link in ["Actor_01/loop", "Actor_01/here", "Actor_01/deeper/up"] {
            #expect(result.stderr.contains("\(root)/\(link): not followed, it leads back into a folder it is inside"), "\(link): \(result.stderr)")
        }
        for link in ["parent", "Actor_01/machine"] {
            #expect(result.stderr.contains("\(root)/\(link): not followed, it leads to a folder that holds the data root"), "\(link): \(result.stderr)")
        }
    }

    /// /proc and /sys hold no recordings, and /proc's links (`<pid>/cwd`, `<pid>/root`) lead over the
    /// whole machine: a link to them is not walked, and a root on them is refused (exit 64).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/cwd"), "needs /proc"))
    func theKernelsFilesystemsAreNeverWalked() throws {
        let (root, wavs) = try Self.smallRoot()
        try FileManager.default.createSymbolicLink(atPath: root + "/Actor_01/proc", withDestinationPath: "/proc")
        try FileManager.default.createSymbolicLink(atPath: root + "/sys", withDestinationPath: "/sys/kernel")
        // A mount of its own below /sys (cgroups): refused by its path.
        try FileManager.default.createSymbolicLink(atPath: root + "/cgroup", withDestinationPath: "/sys/fs/cgroup")
        // A file there named like a clip is a failure row, never read.
        let environ = root + "/Actor_01/03-01-08-01-01-01-01.wav"
        try FileManager.default.createSymbolicLink(atPath: environ, withDestinationPath: "/proc/self/environ")
        // Links that only pass through /proc end at real files and folders, but other ones for every process
        // (the whole machine for /proc/self/root): not walked, not read.
        try FileManager.default.createSymbolicLink(atPath: root + "/machine", withDestinationPath: "/proc/self/root")
        let throughFile = root + "/Actor_01/03-01-08-02-02-02-01.wav"
        try FileManager.default.createSymbolicLink(atPath: throughFile, withDestinationPath: "/proc/self/root" + wavs[0])
        let (result, sources) = try Self.ingest(root)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        #expect(Set(sources.keys) == Set(wavs + [environ, throughFile]), "\(sources.keys.sorted())")
        #expect(sources[throughFile]?["status"] as? String == "failed" && result.stderr.contains("\(root)/machine: not walked"), "\(result.stderr)")
        #expect(sources[environ]?["status"] as? String == "failed"
                && sources[environ]?["reason"] as? String == "a link into the kernel's /proc or /sys filesystem: not read", "\(sources[environ] ?? [:])")
        for link in ["Actor_01/proc", "sys", "cgroup"] {
            #expect(result.stderr.contains("\(root)/\(link): not walked, it is on the kernel's /proc or /sys filesystem"), "\(link): \(result.stderr)")
        }
        for kernel in ["/proc", "/proc/self", "/sys", "/sys/fs/cgroup"] where FileManager.default.fileExists(atPath: kernel) {
            let refused = try IngestFixture.emopipe(["run", "--until", "ingest"], data: kernel, workdir: try TestSupport.temporaryFolder("work"))
            #expect(refused.status == ExitStatus.usage && refused.stderr.contains("\(kernel): the data root is on the kernel's /proc or /sys filesystem"),
                    "\(kernel): \(refused.status) \(refused.stderr)")
        }
        // A real folder reached through /proc, by name or by a link: the name would reach another folder
        // from another process.
        let link = try TestSupport.temporaryFolder("through-proc") + "/data"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/proc/self/root" + root)
        for throughProc in ["/proc/self/root" + root, link] {
            let named = try IngestFixture.emopipe(["run", "--until", "ingest"], data: throughProc, workdir: try TestSupport.temporaryFolder("work"))
            #expect(named.status == ExitStatus.usage
                    && named.stderr.contains("\(throughProc): the data root is reached through the kernel's /proc or /sys filesystem")
                    && named.stderr.contains("give the folder's own path (\(URL(fileURLWithPath: root).resolvingSymlinksInPath().path))"),
                    "\(named.status) \(named.stderr)")
        }
    }

    @Test func aFileReachedByTwoPathsIsOneSourceUnderItsFirstPath() throws {
        let (root, wavs) = try Self.smallRoot()
        let fm = FileManager.default
        // A link to the whole actor folder, a link to one file and a hard link to another, each under
        // a path that sorts after the original.
        try fm.createSymbolicLink(atPath: root + "/Mirror", withDestinationPath: "Actor_01")
        try fm.createDirectory(atPath: root + "/Backup", withIntermediateDirectories: true)
        let linked = (wavs[0] as NSString).lastPathComponent, hardLinked = (wavs[1] as NSString).lastPathComponent
        try fm.createSymbolicLink(atPath: root + "/Backup/" + linked, withDestinationPath: wavs[0])
        try fm.linkItem(atPath: wavs[1], toPath: root + "/Backup/" + hardLinked)
        // A hard link that sorts first: it becomes the one path, and the original is the second.
        try fm.createDirectory(atPath: root + "/A_first", withIntermediateDirectories: true)
        let third = (wavs[2] as NSString).lastPathComponent
        try fm.linkItem(atPath: wavs[2], toPath: root + "/A_first/" + third)
        // A hard link of another name that sorts first does not take the file out of the dataset as
        // ignored: the RAVDESS name is the one path.
        let fourth = (wavs[3] as NSString).lastPathComponent
        try fm.linkItem(atPath: wavs[3], toPath: root + "/Actor_01/" + fourth.replacingOccurrences(of: ".wav", with: ".hard.wav").replacingOccurrences(of: "03-", with: "00-take-"))
        // The same bytes in a file of its own under a second RAVDESS name stay two sources.
        let copy = root + "/Actor_01/03-01-08-02-02-02-01.wav"
        try fm.copyItem(atPath: wavs[3], toPath: copy)

        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        let sources = try IngestFixture.sources(workdir: workdir)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = [wavs[0], wavs[1], root + "/A_first/" + third, wavs[3], copy]
        #expect(Set(sources.keys) == Set(expected), "\(sources.keys.sorted())")
        #expect(sources.values.allSatisfy { $0["status"] as? String == "ok" })
        // A link added later that reaches a source first takes its place; the old path is still there,
        // and its row says so rather than "gone from disk".
        try fm.createSymbolicLink(atPath: root + "/" + linked, withDestinationPath: wavs[0])
        _ = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        let after = try IngestFixture.sources(workdir: workdir)
        #expect(after[root + "/" + linked]?["status"] as? String == "ok")
        #expect(after[wavs[0]]?["status"] as? String == "removed")
        #expect((after[wavs[0]]?["reason"] as? String)?.hasPrefix("still on disk, but now read as \(root)/\(linked) (noticed by run") == true,
                "\(after[wavs[0]] ?? [:])")
        #expect(sources[wavs[3]]?["sha256"] as? String == sources[copy]?["sha256"] as? String)
        #expect(result.stderr.contains("identical content under 2 names"), "\(result.stderr)")
        #expect(result.stderr.contains("used once"), "the second paths are reported: \(result.stderr)")
    }

    /// A file reached by several paths is read under the one whose name places it (a valid RAVDESS name in its
    /// actor's folder), not the first: a stray link `Actor_00 -> Actor_01` sorts first and failed every file of
    /// the actor. Two valid names that disagree on what the recording is are said to, naming the one read.
    @Test func aFileReachedByManyPathsIsReadUnderTheOneItsNamePlaces() throws {
        let (root, wavs) = try Self.smallRoot()
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: root + "/Actor_00", withDestinationPath: "Actor_01")
        // A hard link in another actor's folder, sorting first.
        try fm.createDirectory(atPath: root + "/A_misfiled/Actor_02", withIntermediateDirectories: true)
        let second = (wavs[1] as NSString).lastPathComponent
        try fm.linkItem(atPath: wavs[1], toPath: root + "/A_misfiled/Actor_02/" + second)
        // A link whose name says another emotion, sorting after the original.
        let relabelled = root + "/Actor_01/03-01-08-02-02-02-01.wav"
        try fm.createSymbolicLink(atPath: relabelled, withDestinationPath: wavs[2])

        let (result, sources) = try Self.ingest(root)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Set(sources.keys) == Set(wavs), "\(sources.keys.sorted())")
        #expect(sources.values.allSatisfy { $0["status"] as? String == "ok" }, "\(sources)")
        #expect(result.stderr.contains("\(wavs[2]) is also reached as \(relabelled) (a link or a linked folder), and the two names disagree, "
                                       + "so at least one is mislabelled: read as \(wavs[2])"), "\(result.stderr)")
        #expect(result.stderr.components(separatedBy: "is also reached").count == 2, "paths of one name disagree on nothing: \(result.stderr)")
    }

    /// A work directory keeps an earlier data root's rows: a second root with the same files is not
    /// reported as duplicating them, only its own names are compared.
    @Test func duplicatesAreLookedForWithinTheDataRootOnly() throws {
        let (first, wavs) = try Self.smallRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        #expect(try IngestFixture.emopipe(["run", "--until", "ingest"], data: first, workdir: workdir).status == 0)
        let second = try TestSupport.temporaryFolder("second") + "/ravdess"
        try TestSupport.shell("cp -r '\(first)' '\(second)'")
        let moved = try IngestFixture.emopipe(["run", "--until", "ingest"], data: second, workdir: workdir)
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(!moved.stderr.contains("identical content"), "\(moved.stderr)")
        let copy = second + "/Actor_01/03-01-08-02-02-02-01.wav"
        try FileManager.default.copyItem(atPath: wavs[3], toPath: copy)
        let doubled = try IngestFixture.emopipe(["run", "--until", "ingest"], data: second, workdir: workdir)
        let warnings = doubled.stderr.split(separator: "\n").filter { $0.contains("identical content") }
        #expect(warnings.count == 1 && warnings[0].contains("under 2 names") && !warnings[0].contains(first + "/"), "\(doubled.stderr)")
    }

    @Test func aFileWhoseActorCodeDisagreesWithItsActorFolderIsAFailure() throws {
        let (root, wavs) = try Self.smallRoot()
        let misfiled = root + "/Actor_01/03-01-02-01-01-01-05.wav"
        try FileManager.default.copyItem(atPath: wavs[0], toPath: misfiled)
        // Folders not named Actor_XX say nothing about the actor.
        try FileManager.default.createDirectory(atPath: root + "/extra", withIntermediateDirectories: true)
        let elsewhere = root + "/extra/03-01-02-01-01-01-07.wav"
        try FileManager.default.copyItem(atPath: wavs[1], toPath: elsewhere)
        // A folder's name in another case names its actor as surely.
        let otherCase = ["actor_02", "ACTOR_03"].map { root + "/" + $0 + "/03-01-02-01-01-02-01.wav" }
        for path in otherCase {
            try FileManager.default.createDirectory(atPath: PathText.folder(of: path), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: wavs[0], toPath: path)
        }

        let (result, sources) = try Self.ingest(root)
        for (path, folder) in zip(otherCase, ["actor_02 (actor 02)", "ACTOR_03 (actor 03)"]) {
            #expect(sources[path]?["status"] as? String == "failed"
                    && (sources[path]?["reason"] as? String)?.contains("actor 01 in the file name but the file is in folder \(folder)") == true,
                    "\(path): \(sources[path] ?? [:])")
        }
        // Recorded ok by an emopipe that read only `Actor_XX`, and unchanged since: judged again, as a fresh work
        // directory judges it (the two would hold other sources).
        let workdir = try TestSupport.temporaryFolder("work")
        _ = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        try ProvenanceStore(path: workdir + "/emopipe.sqlite").write {
            try $0.execute(sql: "UPDATE source SET status = 'ok', reason = NULL WHERE path = ?", arguments: [otherCase[0]])
        }
        _ = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        let judgedAgain = try IngestFixture.sources(workdir: workdir)[otherCase[0]]
        #expect(judgedAgain?["status"] as? String == "failed", "\(judgedAgain ?? [:])")
        #expect(result.status == ExitStatus.partial, "a failed source makes a partial run: \(result.stderr)")
        let row = try #require(sources[misfiled])
        #expect(row["status"] as? String == "failed")
        let reason = try #require(row["reason"] as? String)
        #expect(reason.contains("actor 05") && reason.contains("Actor_01") && reason.contains("actor 01"), "\(reason)")
        #expect(result.stderr.contains(misfiled), "the failure names the file")
        #expect(sources[elsewhere]?["status"] as? String == "ok")
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" })
    }

    /// A link whose target is gone is data that cannot be read: a failure row naming it, the run
    /// going on with the rest; once the link leads to a file again, that file is read.
    @Test func aDanglingLinkIsAFailureRowNotASilentGap() throws {
        let (root, wavs) = try Self.smallRoot()
        let dangling = root + "/Actor_01/03-01-03-02-02-02-01.wav"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: root + "/gone.wav")
        let looping = root + "/Actor_01/03-01-04-02-02-02-01.wav"
        try FileManager.default.createSymbolicLink(atPath: looping, withDestinationPath: looping)
        // A link to a link to nothing: the first hop exists, the chain leads nowhere.
        let chained = root + "/Actor_01/03-01-05-02-02-02-01.wav"
        try FileManager.default.createSymbolicLink(atPath: root + "/hop.wav", withDestinationPath: root + "/gone-too.wav")
        try FileManager.default.createSymbolicLink(atPath: chained, withDestinationPath: "../hop.wav")
        let workdir = try TestSupport.temporaryFolder("work")
        let first = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(first.status == ExitStatus.partial, "\(first.stderr)")
        var sources = try IngestFixture.sources(workdir: workdir)
        #expect(sources[dangling]?["status"] as? String == "failed")
        // The reason says it is the link's target that is missing (it said "cannot open: No such file" of a listed name).
        #expect(sources[dangling]?["reason"] as? String == "a link to \(root)/gone.wav, which does not exist: not read", "\(sources[dangling] ?? [:])")
        #expect(sources[looping]?["reason"] as? String == "a link to \(looping), which cannot be followed (Too many levels of symbolic links): not read",
                "\(sources[looping] ?? [:])")
        #expect(sources[chained]?["reason"] as? String == "a link to ../hop.wav, itself a link that leads to no file: not read", "\(sources[chained] ?? [:])")
        #expect(first.stderr.contains(dangling), "the failure names the link")
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" })
        try FileManager.default.copyItem(atPath: wavs[0], toPath: root + "/gone.wav")
        try FileManager.default.removeItem(atPath: looping)
        try FileManager.default.removeItem(atPath: chained)
        let second = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        sources = try IngestFixture.sources(workdir: workdir)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(sources[dangling]?["status"] as? String == "ok", "the mended link is read again")
    }

    /// A named pipe or a device under a RAVDESS name is recorded as a failure without being opened:
    /// opening a pipe blocks and /dev/zero never ends, and neither may hang or grow the run.
    @Test func aPipeOrADeviceIsAFailureRowAndIsNeverOpened() throws {
        let (root, wavs) = try Self.smallRoot()
        let pipe = root + "/Actor_01/03-01-03-02-02-02-01.wav"
        try #require(mkfifo(pipe, 0o644) == 0)
        let device = root + "/Actor_01/03-01-04-02-02-02-01.wav"
        try FileManager.default.createSymbolicLink(atPath: device, withDestinationPath: "/dev/zero")
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        let sources = try IngestFixture.sources(workdir: workdir)
        for (path, kind) in [(pipe, "a named pipe"), (device, "a character device")] {
            #expect(sources[path]?["status"] as? String == "failed", "\(path)")
            let pathReason = sources[path]?["reason"] as? String ?? ""
            #expect(pathReason.contains(kind), "\(sources[path] ?? [:])")
            #expect(result.stderr.contains(path), "the failure names \(path)")
        }
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" })
    }

    /// A folder named as a recording is (`03-01-…wav/`, a copy gone wrong) is a failure row saying so,
    /// and the recording inside it is read as any folder's. Before, it was walked without a word.
    @Test func aFolderNamedLikeARecordingIsAFailureRowAndItsFilesAreRead() throws {
        let (root, wavs) = try Self.smallRoot()
        let folder = root + "/Actor_01/03-01-03-02-02-02-01.wav"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let inside = folder + "/03-01-03-02-02-02-01.wav"
        try FileManager.default.copyItem(atPath: wavs[0], toPath: inside)
        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        let sources = try IngestFixture.sources(workdir: workdir)
        #expect(sources[folder]?["status"] as? String == "failed", "\(sources[folder] ?? [:])")
        let folderReason = sources[folder]?["reason"] as? String ?? ""
        #expect(folderReason.contains("a folder named as a RAVDESS recording is, not a file"),
                "\(sources[folder] ?? [:])")
        #expect(sources[inside]?["status"] as? String == "ok", "the recording inside is read: \(sources[inside] ?? [:])")
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" })
    }

    /// Runs emopipe unable to list a folder whose mode forbids it: as root, without the capabilities
    /// that let root read any folder (inherited ones dropped too, as some container runtimes pass them).
    static func emopipeWithoutOverrides(_ arguments: [String]) throws -> TestSupport.ProcessResult {
        getuid() == 0
            ? try TestSupport.run("/usr/bin/setpriv", ["--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search",
                                                       TestSupport.emopipe] + arguments)
            : try TestSupport.run(TestSupport.emopipe, arguments)
    }

    /// Whether a folder with mode 0 is unlistable here for emopipeWithoutOverrides (not on file systems
    /// that ignore modes, or without setpriv).
    static let foldersCanBeLocked: Bool = {
        guard let folder = try? TestSupport.temporaryFolder("lock-probe"), chmod(folder, 0) == 0 else { return false }
        defer { chmod(folder, 0o755) }
        let probe = getuid() == 0
            ? try? TestSupport.run("/usr/bin/setpriv", ["--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "/bin/ls", folder])
            : try? TestSupport.run("/bin/ls", [folder])
        return probe.map { $0.status != 0 } ?? false
    }()

    /// A folder below the root that cannot be listed is one failure row naming it; the other folders
    /// are read and the run ends partial, not failed. What was recorded below it stays as it was (a
    /// passing permission problem must not remove an actor); once it lists again its row goes.
    @Test(.enabled(if: foldersCanBeLocked, "a folder with mode 0 stays listable here (file system or capabilities)"))
    func aFolderThatCannotBeListedIsOneFailureRowAndTheRestIsRead() throws {
        let (root, wavs) = try Self.smallRoot()
        let locked = root + "/Actor_02"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
        let inside = locked + "/03-01-01-01-01-01-02.wav"
        try FileManager.default.copyItem(atPath: wavs[0], toPath: inside)
        let workdir = try TestSupport.temporaryFolder("work")
        let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--until", "ingest",
                         "--data", root, "--workdir", workdir]
        #expect(try Self.emopipeWithoutOverrides(arguments).status == 0)

        try #require(chmod(locked, 0) == 0)
        defer { chmod(locked, 0o755) }
        let result = try Self.emopipeWithoutOverrides(arguments)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        var sources = try IngestFixture.sources(workdir: workdir)
        #expect(sources[locked]?["status"] as? String == "failed", "\(sources.keys.sorted())")
        let lockedReason = sources[locked]?["reason"] as? String ?? ""
        #expect(lockedReason.contains("cannot list the folder"), "\(sources[locked] ?? [:])")
        #expect(result.stderr.contains(locked), "the failure names the folder")
        #expect(sources[inside]?["status"] as? String == "ok", "what was recorded below it is kept: \(sources[inside] ?? [:])")
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" })
        // The forecast of a split naming its actor does not call them absent (the kept records are split's), and one
        // naming an actor absent says which folder it could not look in.
        let forecast = { (actors: String, validation: String) in
            try Self.emopipeWithoutOverrides(["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--data", root, "--workdir", workdir, "--dry-run",
                                              "--set", "split.test_actors=\(actors)", "--set", "split.val_actors=\(validation)", "--set", "train.selection=last"])
        }
        let named = try forecast("[2]", "[]")
        #expect(named.status == 0 && named.stderr.contains("split.test_actors (from --set) names actor 02, of which the data root \(root) holds no RAVDESS file it can list "
                                                           + "(it cannot list \(locked)): split will refuse the run when its turn comes, unless ingest kept "
                                                           + "records of the files in \(locked), which cannot be listed now"), "\(named.stderr)")
        let absent = try forecast("[2, 5]", "[1]")
        #expect(absent.stderr.contains("split.test_actors (from --set) names actor 05, of which the data root \(root) holds no RAVDESS file it can list (it cannot list \(locked)): "
                                       + "split will refuse the run when its turn comes (all 24 RAVDESS actors")
                && !absent.stderr.contains("unless ingest kept"),
                "\(absent.stderr)")

        chmod(locked, 0o755)
        let again = try Self.emopipeWithoutOverrides(arguments)
        #expect(again.status == 0, "\(again.stderr)")
        sources = try IngestFixture.sources(workdir: workdir)
        #expect(sources[locked] == nil && sources[inside]?["status"] as? String == "ok", "\(sources.keys.sorted())")
    }

    /// A file that could not be read (mode 0) is a failure row; made readable again, with its size and
    /// mtime as they were (chmod changes neither), it is read by the next run, not kept as failed.
    @Test(.enabled(if: foldersCanBeLocked, "a file with mode 0 stays readable here (file system or capabilities)"))
    func aFileThatCouldNotBeReadIsReadAgainOnceItCanBe() throws {
        let (root, wavs) = try Self.smallRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        let arguments = ["run", TestSupport.repositoryRoot + "/manifests/demo.yaml", "--until", "ingest",
                         "--data", root, "--workdir", workdir]
        try #require(chmod(wavs[0], 0) == 0)
        defer { chmod(wavs[0], 0o644) }
        let denied = try Self.emopipeWithoutOverrides(arguments)
        #expect(denied.status == ExitStatus.partial, "\(denied.stderr)")
        var sources = try IngestFixture.sources(workdir: workdir)
        #expect(sources[wavs[0]]?["status"] as? String == "failed"
                && (sources[wavs[0]]?["reason"] as? String ?? "").contains("Permission denied"), "\(sources[wavs[0]] ?? [:])")
        // Still unreadable: tried again, and still failed (exit 3 each time, nothing else read again).
        let still = try Self.emopipeWithoutOverrides(arguments)
        #expect(still.status == ExitStatus.partial && still.stderr.contains("0 new, 0 changed, 0 removed; 1 that could not be read last time tried again"), "\(still.stderr)")
        chmod(wavs[0], 0o644)
        let readable = try Self.emopipeWithoutOverrides(arguments)
        #expect(readable.status == 0, "\(readable.stderr)")
        sources = try IngestFixture.sources(workdir: workdir)
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" }, "\(sources[wavs[0]] ?? [:])")
        let settled = try Self.emopipeWithoutOverrides(arguments)
        #expect(settled.status == 0 && settled.stderr.contains("up to date"), "\(settled.stderr)")
        // A dangling link did not fail for the moment: it is not tried again by every run (once its
        // target is there, its size and mtime change).
        let folder = (wavs[0] as NSString).deletingLastPathComponent
        try FileManager.default.createSymbolicLink(atPath: folder + "/03-01-08-02-02-02-01.wav", withDestinationPath: root + "/nowhere.wav")
        #expect(try Self.emopipeWithoutOverrides(arguments).status == ExitStatus.partial)
        let dangling = try Self.emopipeWithoutOverrides(arguments)
        #expect(dangling.status == ExitStatus.partial && dangling.stderr.contains("ingest: up to date"), "\(dangling.stderr)")
    }

    /// A shard this process may not read is the environment's problem, not damage: `cache verify`
    /// stops naming it (exit 1) and keeps every record, where it used to drop them all.
    @Test(.enabled(if: foldersCanBeLocked, "a file with mode 0 stays readable here (file system or capabilities)"))
    func cacheVerifyKeepsTheRecordsOfAShardItMayNotRead() throws {
        let (root, _) = try Self.smallRoot()
        let workdir = try TestSupport.temporaryFolder("work")
        #expect(try IngestFixture.emopipe(["run", "--until", "audio"], data: root, workdir: workdir).status == 0)
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let shard = try #require(try store.read { try CacheShardRow.fetchOne($0) })
        let records = try store.read { try CacheRecordRow.fetchCount($0) }
        try #require(chmod(workdir + "/" + shard.file, 0) == 0)
        defer { chmod(workdir + "/" + shard.file, 0o644) }
        let verify = try Self.emopipeWithoutOverrides(["cache", "verify", "--workdir", workdir])
        #expect(verify.status == ExitStatus.failure && verify.stderr.contains("Permission denied"), "\(verify.status) \(verify.stderr)")
        #expect(try store.read { try CacheRecordRow.fetchCount($0) } == records, "no record dropped")
        #expect(try store.failures(stage: "cache").isEmpty, "no failure rows")
    }

    /// Names that are not UTF-8, paths `stat` refuses (longer than PATH_MAX) and files that yield more
    /// bytes than their size (a /proc file says 0 bytes) are failure rows naming them, never silent
    /// gaps or endless reads.
    @Test func unusableNamesAndFilesOfNoFixedSizeAreFailureRows() throws {
        let (root, wavs) = try Self.smallRoot()
        let actor = root + "/Actor_01"
        // A stray 0xff in a name that is otherwise RAVDESS's; 0xe9 is Latin-1 "é" in a folder name.
        try #require(link(wavs[0], Array(actor.utf8CString.dropLast()) + Array("/03-01-02-01-02-01-01".utf8CString.dropLast()) + [CChar(bitPattern: 0xff)] + Array(".wav".utf8CString)) == 0)
        // Junk that is no RAVDESS name with or without its bad byte is ignored, as its UTF-8 namesakes are.
        try #require(link(wavs[2], Array(actor.utf8CString.dropLast()) + Array("/caf".utf8CString.dropLast()) + [CChar(bitPattern: 0xe9), 0]) == 0)
        let latin1Folder = Array((root + "/Actor_").utf8CString.dropLast()) + [CChar(bitPattern: 0xe9), 0]
        try #require(mkdir(latin1Folder, 0o755) == 0)
        try #require(link(wavs[1], Array(latin1Folder.dropLast()) + Array("/03-01-03-01-01-01-01.wav".utf8CString)) == 0)
        // A folder chain deeper than PATH_MAX, made relative to open folders.
        var folder = open(root, O_RDONLY | O_DIRECTORY)
        let segment = String(repeating: "d", count: 200)
        for _ in 0..<25 {
            try #require(mkdirat(folder, segment, 0o755) == 0)
            let next = openat(folder, segment, O_RDONLY | O_DIRECTORY)
            close(folder)
            folder = next
        }
        close(folder)
        let proc = actor + "/03-01-04-02-02-02-01.wav"
        try FileManager.default.createSymbolicLink(atPath: proc, withDestinationPath: "/proc/self/status")

        let workdir = try TestSupport.temporaryFolder("work")
        let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(result.status == ExitStatus.partial, "\(result.stderr)")
        let sources = try IngestFixture.sources(workdir: workdir)
        let expected = [
            (actor + "/03-01-02-01-02-01-01\\xff.wav", "not valid UTF-8"),
            (root + "/Actor_\\xe9", "not valid UTF-8"),
            // (A link is judged by where it leads before anything is opened, as in the /proc test above.)
            (proc, "a link into the kernel's /proc or /sys filesystem: not read"),
        ]
        for (path, reason) in expected {
            #expect(sources[path]?["status"] as? String == "failed", "\(path): \(sources.keys.sorted())")
            let recorded = sources[path]?["reason"] as? String ?? ""
            #expect(recorded.contains(reason), "\(sources[path] ?? [:])")
            #expect(result.stderr.contains(path), "the failure names \(path)")
        }
        #expect(sources[actor + "/caf\\xe9"]?["status"] as? String == "ignored", "\(sources.keys.sorted())")
        let tooLong = sources.filter { $0.key.hasPrefix(root + "/" + segment) }
        #expect(tooLong.count == 1, "one row where the chain passes PATH_MAX: \(tooLong.keys.map(\.count))")
        #expect(tooLong.values.allSatisfy { ($0["reason"] as? String ?? "").contains("File name too long") }, "\(tooLong.values.map { $0["reason"] ?? "" })")
        #expect(wavs.allSatisfy { sources[$0]?["status"] as? String == "ok" })
    }

    /// Names that differ only in Unicode normalisation (é as one code point, or e and a combining accent, as
    /// macOS spells it) are equal as Swift strings: the first spelling by byte order is read, the other is a row
    /// under its \u-escaped name (ignored when no recording, a failure for a folder); a link from one spelling to
    /// the other is the same file, read once. Both were recorded raw, and every later run and `status` trapped.
    @Test func namesSpeltTwoWaysInUnicodeAreReadOnceAndTheOtherIsARowOfItsOwn() throws {
        let (root, wavs) = try Self.smallRoot(count: 2)
        let (composed, decomposed) = ("caf\u{E9}", "cafe\u{301}")
        #expect(Array(composed.utf8) != Array(decomposed.utf8) && composed == decomposed)
        // The decomposed spelling is first by byte order ("e" is 0x65, é's first byte 0xC3).
        for name in [composed, decomposed] {
            try Data("notes \(name)".utf8).write(to: URL(fileURLWithPath: root + "/Actor_01/" + name + ".txt"))
        }
        try FileManager.default.createDirectory(atPath: root + "/" + decomposed, withIntermediateDirectories: true)
        try Data("notes".utf8).write(to: URL(fileURLWithPath: root + "/" + decomposed + "/notes.txt"))
        try FileManager.default.createSymbolicLink(atPath: root + "/" + composed, withDestinationPath: decomposed)
        let workdir = try TestSupport.temporaryFolder("work")
        func rows() throws -> [[String: Any]] {
            let listed = try IngestFixture.emopipe(["sources", "--json"], workdir: workdir)
            return try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed.stderr)")
        }
        func row(_ path: String, in rows: [[String: Any]]) -> [String: Any]? {
            rows.first { ($0["path"] as? String).map { Array($0.utf8) == Array(path.utf8) } ?? false }
        }
        for arguments in [["run", "--until", "ingest"], ["run", "--until", "ingest", "--force", "ingest"], ["status"]] {
            let result = try IngestFixture.emopipe(arguments, data: root, workdir: workdir)
            #expect(result.status == 0, "\(arguments): \(result.status) \(result.stderr.suffix(2000))")
        }
        var listed = try rows()
        #expect(row(root + "/Actor_01/" + decomposed + ".txt", in: listed)?["status"] as? String == "ignored", "\(listed.map { $0["path"] ?? "" })")
        let other = row(root + "/Actor_01/caf\\u{E9}.txt", in: listed)
        #expect(other?["status"] as? String == "ignored" && (other?["reason"] as? String ?? "").contains("not a RAVDESS file name, and spelt as"),
                "\(other ?? [:])")
        #expect(row(root + "/Actor_01/" + composed + ".txt", in: listed) == nil, "not recorded raw")
        // show of the spelling not read says so (it answered with the other file's record).
        let shown = try IngestFixture.emopipe(["show", root + "/Actor_01/" + composed + ".txt"], workdir: workdir)
        #expect(shown.status == 1 && shown.stderr.contains("not read: its name is") && !shown.stdout.contains("sha256"), "\(shown.stdout) \(shown.stderr)")
        // The linked folder is the same folder: read once, under its first spelling, with no row for the link.
        #expect(row(root + "/" + decomposed + "/notes.txt", in: listed)?["status"] as? String == "ignored")
        #expect(!listed.contains { ($0["path"] as? String ?? "").contains("caf\\u{E9}/") || ($0["path"] as? String ?? "").hasSuffix("caf\\u{E9}") })
        #expect(wavs.allSatisfy { row($0, in: listed)?["status"] as? String == "ok" })

        // Two folders so spelt (no link) are two folders: the second is a failure row, and the run is partial.
        try FileManager.default.removeItem(atPath: root + "/" + composed)
        try FileManager.default.createDirectory(atPath: root + "/" + composed, withIntermediateDirectories: true)
        let partial = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(partial.status == ExitStatus.partial, "\(partial.stderr.suffix(2000))")
        listed = try rows()
        let folder = row(root + "/caf\\u{E9}", in: listed)
        #expect(folder?["status"] as? String == "failed" && (folder?["reason"] as? String ?? "").contains("rename one"), "\(folder ?? [:])")

        // A database of an emopipe that recorded both spellings raw: the later one's row is marked removed, not a trap.
        let database = try DatabaseQueue(path: workdir + "/emopipe.sqlite")
        try database.write { db in
            try db.execute(sql: "CREATE TEMP TABLE copied AS SELECT * FROM source WHERE path = ?", arguments: [root + "/Actor_01/" + decomposed + ".txt"])
            try db.execute(sql: "UPDATE copied SET path = ?", arguments: [root + "/Actor_01/" + composed + ".txt"])
            try db.execute(sql: "INSERT INTO source SELECT * FROM copied")
        }
        for arguments in [["status"], ["run", "--until", "ingest"]] {
            let result = try IngestFixture.emopipe(arguments, data: root, workdir: workdir)
            #expect(result.status == (arguments[0] == "status" ? 0 : ExitStatus.partial), "\(arguments): \(result.status) \(result.stderr.suffix(2000))")
        }
        listed = try rows()
        #expect(row(root + "/Actor_01/" + composed + ".txt", in: listed)?["status"] as? String == "removed", "\(listed.map { $0["path"] ?? "" })")
        #expect(row(root + "/Actor_01/" + decomposed + ".txt", in: listed)?["status"] as? String == "ignored")

        // One spelling gone: the other is read under its own name, and the rows of the gone one are marked removed
        // (compared as Strings, the file left was taken for the gone one, whose row stayed).
        try FileManager.default.removeItem(atPath: root + "/Actor_01/" + decomposed + ".txt")
        let renamed = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
        #expect(renamed.status == ExitStatus.partial, "\(renamed.stderr.suffix(2000))")
        listed = try rows()
        #expect(row(root + "/Actor_01/" + composed + ".txt", in: listed)?["status"] as? String == "ignored", "\(listed.map { $0["path"] ?? "" })")
        #expect(row(root + "/Actor_01/" + decomposed + ".txt", in: listed)?["status"] as? String == "removed")
        #expect(row(root + "/Actor_01/caf\\u{E9}.txt", in: listed)?["status"] as? String == "removed")
    }

    /// A worker names its work directory escaped: a terminal escape and a line break in the path were printed raw.
    @Test func aWorkersWorkDirectoryIsNamedEscaped() throws {
        let (root, _) = try Self.smallRoot(count: 2)
        let workdir = try TestSupport.temporaryFolder("work") + "/w\u{1B}[31m\nX"
        let result = try IngestFixture.emopipe(["run", "--until", "ingest", "--worker", "0/2"], data: root, workdir: workdir)
        let shown = (workdir + "/workers/0-of-2").escaped
        #expect(result.status == 0 && result.stderr.contains("worker 0/2: work directory \(shown)\n") && !result.stderr.contains("\u{1B}"),
                "\(result.stderr)")
    }

    @Test func aDataRootWithoutARavdessFileIsAnErrorNamingIt() throws {
        let empty = try TestSupport.temporaryFolder("data") + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let other = try TestSupport.temporaryFolder("data") + "/other"
        try FileManager.default.createDirectory(atPath: other + "/Actor_01", withIntermediateDirectories: true)
        try "notes\n".write(toFile: other + "/Actor_01/notes.txt", atomically: true, encoding: .utf8)
        try "x".write(toFile: other + "/03-01-01-01-01-01-01.flac", atomically: true, encoding: .utf8)

        // Only an empty folder named as a recording is: no recording either.
        let folderOnly = try TestSupport.temporaryFolder("data") + "/folder-only"
        try FileManager.default.createDirectory(atPath: folderOnly + "/Actor_01/03-01-01-01-01-01-01.wav", withIntermediateDirectories: true)

        for root in [empty, other, folderOnly] {
            let workdir = try TestSupport.temporaryFolder("work")
            let result = try IngestFixture.emopipe(["run", "--until", "ingest"], data: root, workdir: workdir)
            #expect(result.status == ExitStatus.failure, "\(root): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("\(root): the data root holds no RAVDESS file"), "\(result.stderr)")
        }
    }
}
