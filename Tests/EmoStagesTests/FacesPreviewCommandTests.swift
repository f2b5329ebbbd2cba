import EmoTestSupport
import Foundation
import Testing

/// `emopipe faces preview CLIP.mp4 --out sheet.png`, the form `--help` and the README show.
@Suite("faces preview", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasSharedData))
struct FacesPreviewCommandTests {
    static let clip = TestSupport.sharedData + "/av-original/Actor_01/01-01-01-01-01-01-01.mp4"

    @Test func writesAContactSheetForTheClipsGiven() throws {
        let out = try TestSupport.temporaryFolder("preview") + "/sheet.png"
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", Self.clip, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let bytes = try #require(FileManager.default.contents(atPath: out))
        #expect(bytes.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a PNG file")
        #expect(result.stdout == "wrote \(out) (1 clip)\n", "\(result.stdout)")
    }

    /// A sheet narrower than a row's label (one small crop) cuts the label at its edge: drawing it past the edge trapped.
    @Test(arguments: [["faces.frames=1", "faces.size=32"], ["faces.frames=1", "faces.size=16"]])
    func aLabelWiderThanTheSheetIsCutAtItsEdge(settings: [String]) throws {
        let folder = try TestSupport.temporaryFolder("preview-narrow")
        let long = folder + "/" + String(repeating: "A", count: 150) + ".mp4"
        try FileManager.default.copyItem(atPath: Self.clip, toPath: long)
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", Self.clip, long, "--out", folder + "/sheet.png"]
                                                              + settings.flatMap { ["--set", $0] })
        #expect(result.status == 0 && result.stdout.hasSuffix("(2 clips)\n"), "exit \(result.status): \(result.stderr.prefix(600))")
        let bytes = try #require(FileManager.default.contents(atPath: folder + "/sheet.png"))
        #expect(bytes.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a PNG file")
    }

    /// `--out -` writes the PNG to stdout, as `cache get --npy -` writes its file (it wrote a file named "-").
    @Test func outDashWritesThePNGToStandardOutput() throws {
        let folder = try TestSupport.temporaryFolder("preview-stdout")
        // stderr to the captured pipe, stdout to the file.
        let stderr = try TestSupport.shell("cd '\(folder)' && '\(TestSupport.emopipe)' faces preview '\(Self.clip)' --manifest "
                                           + "'\(TestSupport.repositoryRoot)/manifests/default.yaml' --out - 2>&1 > sheet.png")
        let bytes = try #require(FileManager.default.contents(atPath: folder + "/sheet.png"))
        #expect(bytes.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a PNG on stdout")
        #expect(stderr.contains("wrote a PNG to stdout (1 clip)") && !FileManager.default.fileExists(atPath: folder + "/-"), "\(stderr)")
    }

    /// File names are named escaped, on stdout and stderr: a terminal escape in one was printed raw (and obeyed).
    @Test func oddFileNamesAreNamedEscaped() throws {
        let folder = try TestSupport.temporaryFolder("preview-odd")
        let clip = folder + "/clip\u{1B}[7m.mp4", missing = folder + "/gone\u{1B}[2m.mp4", out = folder + "/sheet\u{1B}[1m.png"
        try FileManager.default.copyItem(atPath: Self.clip, toPath: clip)
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", clip, missing, "--out", out])
        #expect(result.status == 3 && result.stdout == "wrote \(out.escaped) (1 clip)\n", "\(result.stdout)")
        #expect(result.stderr.contains("emopipe: \(missing.escaped): no such file") && !result.stderr.contains("\u{1B}"), "\(result.stderr)")
        let hop = try TestSupport.run(TestSupport.emopipe, ["predict", "--run", "r", "--hop", "1\u{1B}[7m", "x.wav"])
        #expect(hop.status == 64 && hop.stderr.contains("--hop 1\\u{1B}[7m: expected") && !hop.stderr.contains("\u{1B}"), "\(hop.stderr)")
    }

    /// A truncated clip is previewed from the part that exists (its row marked TRUNCATED), and said so on stderr:
    /// ingest fails such a file and predict refuses it, so a sheet alone (exit 0, no word) read as a file that is fine.
    @Test func aTruncatedClipIsPreviewedAndSaidToBeTruncated() throws {
        let folder = try TestSupport.temporaryFolder("preview-truncated")
        let cut = folder + "/cut.mp4"
        try TestSupport.shell("head -c 1500000 '\(Self.clip)' > '\(cut)'")
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", cut, "--out", folder + "/sheet.png"])
        #expect(result.status == 0 && result.stderr.contains("emopipe: note: \(cut): truncated (it ends before its index says)"), "\(result.stderr)")
    }

    /// A file that cannot be previewed is named once, in the tool's words (a clause after the path),
    /// and the sheet holds the others (exit 3).
    @Test func aFileThatCannotBePreviewedIsNamedOnce() throws {
        let folder = try TestSupport.temporaryFolder("preview-bad")
        let speech = folder + "/speech.wav", absent = folder + "/absent.mp4"
        try TestSupport.shell("ffmpeg -v error -f lavfi -i sine=frequency=440:duration=1 -ar 16000 '\(speech)'")
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", speech, absent, Self.clip, "--out", folder + "/sheet.png"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("emopipe: \(speech): the file has no video stream\n"), "\(result.stderr)")
        let absentLine = result.stderr.split(separator: "\n").first { $0.contains(absent) }.map(String.init) ?? ""
        #expect(absentLine.components(separatedBy: absent).count == 2, "named once: \(absentLine)")
        // An empty argument is no file to fail on but a usage error, as in predict.
        let empty = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", Self.clip, "", "--out", folder + "/sheet.png"])
        #expect(empty.status == 64 && empty.stderr.contains("an empty argument names no file"), "\(empty.stderr)")
    }

    /// Pictures a few pixels wide: libswscale's vector code wrote past the end of such a row when the grey copy for
    /// the detector was tight, corrupting the heap (the process aborted). Now each is a file without a face, and the
    /// sheet holds the good clip; glibc's checking allocator, where installed, watches for any overrun.
    @Test func picturesAFewPixelsWideAreFilesWithoutAFaceNotHeapDamage() throws {
        let folder = try TestSupport.temporaryFolder("preview-narrow")
        var clips: [String] = []
        for (size, format) in [("2:256", "yuv420p"), ("4:1024", "yuv420p"), ("1:64", "yuv444p"), ("3:40", "yuv444p")] {
            let clip = folder + "/narrow-\(size.replacingOccurrences(of: ":", with: "x")).mp4"
            try TestSupport.shell("ffmpeg -v error -i '\(Self.clip)' -t 1 -vf scale=\(size),format=\(format) -c:v libx264 -preset ultrafast -an '\(clip)'")
            clips.append(clip)
        }
        // glibc 2.34 and later check only with its debugging allocator preloaded; found under the machine's own triplet.
        let lib = "/usr/lib"
        let checking = ((try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []).sorted()
            .map { "\(lib)/\($0)/libc_malloc_debug.so.0" }.first { FileManager.default.fileExists(atPath: $0) }
        let environment = checking.map { ["LD_PRELOAD": $0, "MALLOC_CHECK_": "3"] } ?? ["MALLOC_CHECK_": "3"]
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview"] + clips + [Self.clip, "--out", folder + "/sheet.png"],
                                         environment: environment)
        #expect(result.status == 3, "\(result.status) \(result.stderr)")
        for clip in clips {
            #expect(result.stderr.contains("emopipe: \(clip): no face was found in any sampled frame of the clip"), "\(clip): \(result.stderr)")
        }
        #expect(result.stdout == "wrote \(folder)/sheet.png (1 clip)\n", "\(result.stdout)")
    }

    /// The landmark model is checked as a run checks it: a pipe (which blocked dlib's read for ever) or a
    /// folder is named and refused before any clip is read.
    @Test func aLandmarkModelThatIsNoFileIsRefusedAsARunRefusesIt() throws {
        let folder = try TestSupport.temporaryFolder("preview-model")
        #expect(mkfifo(folder + "/pipe", 0o644) == 0)
        for model in [folder + "/pipe", folder] {
            let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", Self.clip, "--out", folder + "/sheet.png",
                                                                   "--set", "faces.align=true", "--set", "faces.landmark_model=\(model)"])
            #expect(result.status == 64 && result.stderr.contains("faces.landmark_model = \(model): a readable model file")
                    && result.stderr.contains("not a regular file"), "\(model): \(result.status) \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/sheet.png"))
    }
}

/// `--out` and `--npy` name a file to write by replacing what is there: anything that is not a file
/// name in an existing folder, or names something other than a regular file, is refused before any work.
@Suite("output files", .enabled(if: TestSupport.hasEmopipe))
struct OutputFileTests {
    @Test func outputPathsThatAreNotAFileInAFolderAreRefusedAndLeftAlone() throws {
        let folder = try TestSupport.temporaryFolder("output-files")
        #expect(mkfifo(folder + "/pipe", 0o644) == 0)
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/target"))
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: folder + "/target")
        let cases: [(String, String)] = [
            (folder + "/not-there/p.png", "no such folder to write into"), (folder + "/", "names a folder"),
            ("x/", "names a folder"), (folder, "exists and is not a regular file"), (".", "exists and is not a regular file"),
            (folder + "/pipe", "exists and is not a regular file"), (folder + "/link", "exists and is not a regular file"),
            ("/dev/full", "exists and is not a regular file"), ("", "expected a file name"),
        ]
        for (path, why) in cases {
            let preview = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", folder + "/clip.mp4", "--out", path])
            #expect(preview.status == 64 && preview.stderr.hasPrefix("emopipe: --out \(path.isEmpty ? "\"\"" : path)") && preview.stderr.contains(why),
                    "\(path): \(preview.status) \(preview.stderr)")
            let get = try TestSupport.run(TestSupport.emopipe, ["cache", "get", "--stage", "audio", "--source", "x", "--npy", path,
                                                                "--workdir", folder + "/work"])
            #expect(get.status == 64 && get.stderr.contains(why), "\(path): \(get.status) \(get.stderr)")
        }
        // A name that promises another format is refused too (a PNG named .jpg, a .npy named .png).
        let preview = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", folder + "/clip.mp4", "--out", folder + "/sheet.JPG"])
        #expect(preview.status == 64 && preview.stderr.contains("sheet.JPG: EmoPipe writes PNG here, not JPG; name the file .png"), "\(preview.stderr)")
        let get = try TestSupport.run(TestSupport.emopipe, ["cache", "get", "--stage", "audio", "--source", "x", "--npy", folder + "/a.png",
                                                            "--workdir", folder + "/work"])
        #expect(get.status == 64 && get.stderr.contains("a.png: EmoPipe writes NPY here, not png; name the file .npy"), "\(get.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/sheet.JPG") && !FileManager.default.fileExists(atPath: folder + "/a.png"))
        // A dot before a version or a number is no format: the name passes the check (and the command goes
        // on to fail on the missing work directory, not on the name).
        for name in ["out.v2", "clip.01"] {
            let numbered = try TestSupport.run(TestSupport.emopipe, ["cache", "get", "--stage", "audio", "--source", "x", "--npy", folder + "/" + name,
                                                                     "--workdir", folder + "/work"])
            #expect(!numbered.stderr.contains("EmoPipe writes NPY here"), "\(name): \(numbered.stderr)")
        }
        // A file already there that holds something else (a clip named .mp4, a name without an extension) is kept;
        // one of the format written, or an empty one, may be replaced (the check passes, as for a name not there).
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0]).write(to: URL(fileURLWithPath: folder + "/old-png"))
        try Data([0x93] + Array("NUMPY".utf8) + [1, 0]).write(to: URL(fileURLWithPath: folder + "/old-npy"))
        try Data().write(to: URL(fileURLWithPath: folder + "/empty"))
        for (name, replaceable) in [("target", false), ("old-png", true), ("old-npy", true), ("empty", true)] {
            let path = folder + "/" + name
            try FileManager.default.copyItem(atPath: folder + "/target", toPath: folder + "/clip.mp4")
            defer { try? FileManager.default.removeItem(atPath: folder + "/clip.mp4") }
            for target in name == "target" ? [path, folder + "/clip.mp4"] : [path] {
                let preview = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", folder + "/never-read.mp4", "--out", target])
                let get = try TestSupport.run(TestSupport.emopipe, ["cache", "get", "--stage", "audio", "--source", "x", "--npy", target,
                                                                    "--workdir", folder + "/work"])
                let refusedPNG = preview.status == 64 && preview.stderr.contains("exists and is not a PNG file")
                let refusedNPY = get.status == 64 && get.stderr.contains("exists and is not a NPY file")
                #expect(refusedPNG == !(replaceable && name != "old-npy") && refusedNPY == !(replaceable && name != "old-png"),
                        "\(target): \(preview.stderr) \(get.stderr)")
            }
            #expect(try String(contentsOfFile: folder + "/clip.mp4", encoding: .utf8) == "x")
        }
        #expect(try String(contentsOfFile: folder + "/target", encoding: .utf8) == "x")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/link") == folder + "/target")
        var facts = stat()
        #expect(lstat("/dev/full", &facts) == 0 && facts.st_mode & S_IFMT == S_IFCHR, "the device is still a device")
    }

    /// Face settings inside their ranges can still make a sheet larger than a PNG can be: refused before
    /// any clip is read (it took 18 s and 1.7 GB to fail at the end), with the size it would have.
    @Test func aSheetTooLargeForOnePNGIsRefusedBeforeAnyClipIsRead() throws {
        let folder = try TestSupport.temporaryFolder("large-sheet")
        // The largest crops a record may hold (256 frames of 295 px), for 20 clips.
        let clips = (1...20).map { folder + "/never-read-\($0).mp4" }
        let result = try TestSupport.run(TestSupport.emopipe, ["faces", "preview", "--manifest", TestSupport.repositoryRoot + "/manifests/demo.yaml",
                                                               "--set", "faces.size=295", "--set", "faces.frames=256",
                                                               "--out", folder + "/sheet.png"] + clips)
        #expect(result.status == 64 && result.stderr == "emopipe: a contact sheet of 20 clip(s) with faces.frames = 256 and faces.size = 295 "
                + "would be 76290x6426 pixels, more than the PNG encoder takes: lower them, or give fewer clips\n", "\(result.stderr)")
    }
}
