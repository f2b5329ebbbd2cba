@testable import EmoStages
import EmoCore
import EmoModel
import EmoPipeline
import EmoTestSupport
import Foundation
import Testing

/// Which files `predict` reads for a file it is given: the clip's files beside it, ranked as the
/// split stage ranks a clip's sources (speech: wav, then audio-video mp4; pictures: audio-video mp4,
/// then video-only mp4).
@Suite("a clip's files for predict")
struct ClipFilesTests {
    static func folder(holding names: [String]) throws -> String {
        let folder = try TestSupport.temporaryFolder("clip-files")
        for name in names { try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/" + name)) }
        return folder
    }

    @Test func aClipsFilesArePairedByRank() throws {
        let wav = "03-01-05-01-01-01-03.wav", av = "01-01-05-01-01-01-03.mp4", videoOnly = "02-01-05-01-01-01-03.mp4"
        let all = try Self.folder(holding: [wav, av, videoOnly])
        for given in [wav, av, videoOnly] {
            let files = ClipFiles(given: all + "/" + given) { _ in nil }
            #expect(files.speech == all + "/" + wav && files.video == all + "/" + av, "\(given): \(files)")
        }
        let noAV = try Self.folder(holding: [wav, videoOnly])
        #expect(ClipFiles(given: noAV + "/" + wav) { _ in nil } == ClipFiles(speech: noAV + "/" + wav, video: noAV + "/" + videoOnly))
        let noWav = try Self.folder(holding: [av, videoOnly])
        #expect(ClipFiles(given: noWav + "/" + videoOnly) { _ in nil } == ClipFiles(speech: noWav + "/" + av, video: noWav + "/" + av))
    }

    /// A companion that does not probe is passed over for the next in rank, per modality, as the split
    /// stage passes over a source ingest failed; an uppercase extension is a companion too.
    @Test func anUnusableCompanionIsPassedOverForTheNextInRank() throws {
        let wav = "03-01-05-01-01-01-03.wav", av = "01-01-05-01-01-01-03.mp4", videoOnly = "02-01-05-01-01-01-03.MP4"
        let folder = try Self.folder(holding: [wav, av, videoOnly])
        let damaged = folder + "/" + av
        var asked: [String] = []
        for given in [wav, videoOnly] {
            let files = ClipFiles(given: folder + "/" + given) { asked.append($0); return $0 == damaged ? "\($0): damaged" : nil }
            // The video-only file is read for the pictures; the damaged mp4 it stands in for is named.
            #expect(files == ClipFiles(speech: folder + "/" + wav, video: folder + "/" + videoOnly, videoPassedOver: damaged + ": damaged"),
                    "\(given): \(files)")
        }
        #expect(asked.filter { $0 == damaged }.count == 2, "each call asks once about a file: \(asked)")
        let noWav = ClipFiles(given: folder + "/" + videoOnly) { $0 == folder + "/" + wav ? "damaged" : nil }
        var speechFromTheMP4 = ClipFiles(speech: folder + "/" + av, video: folder + "/" + av)
        speechFromTheMP4.speechPassedOver = "damaged"
        #expect(noWav == speechFromTheMP4, "a passed-over wav is no video problem, but is named for the speech")
        // Nothing readable for the pictures but the given wav: the damaged mp4s are named, best first.
        let onlyWav = ClipFiles(given: folder + "/" + wav) { $0 == folder + "/" + wav ? nil : "\($0): damaged" }
        #expect(onlyWav == ClipFiles(speech: folder + "/" + wav, video: folder + "/" + wav,
                                     videoPassedOver: "\(damaged): damaged; \(folder)/\(videoOnly): damaged"), "\(onlyWav)")
    }

    /// A given file that does not probe is passed over like a companion: each modality takes the best
    /// readable file of its clip, one none serves takes the other's, and with none readable both are
    /// the given file (whose error is then the answer).
    @Test func anUnreadableGivenFileIsPassedOverForItsClipsOthers() throws {
        let wav = "03-01-05-01-01-01-03.wav", av = "01-01-05-01-01-01-03.mp4", videoOnly = "02-01-05-01-01-01-03.mp4"
        let folder = try Self.folder(holding: [wav, av, videoOnly])
        let given = folder + "/" + wav
        let fromTheMP4 = ClipFiles(given: given, givenProblem: "\(given): damaged") { _ in nil }
        var expected = ClipFiles(speech: folder + "/" + av, video: folder + "/" + av)
        expected.speechPassedOver = "\(given): damaged"
        #expect(fromTheMP4 == expected && fromTheMP4.readsBeyond(given), "\(fromTheMP4)")
        // No speech anywhere in the clip: the video-only file serves both, and every speech file passed over is named.
        let picturesOnly = ClipFiles(given: given, givenProblem: "\(given): damaged") { $0 == folder + "/" + av ? "\($0): cut short" : nil }
        #expect(picturesOnly.speech == folder + "/" + videoOnly && picturesOnly.video == folder + "/" + videoOnly
                && picturesOnly.speechPassedOver == "\(given): damaged; \(folder)/\(av): cut short", "\(picturesOnly)")
        // A speech-only model with no other speech file reads nothing beyond the given file.
        let nothing = ClipFiles(given: given, video: false, givenProblem: "\(given): damaged") { _ in "damaged" }
        #expect(nothing.speech == given && nothing.video == given && !nothing.readsBeyond(given), "\(nothing)")
        let alone = try Self.folder(holding: [wav]) + "/" + wav
        #expect(!ClipFiles(given: alone, givenProblem: "damaged") { _ in nil }.readsBeyond(alone))
        // Its other-case namesake (`.WAV` beside the `.wav` given) is its clip's speech file too, ranked first.
        let cases = try Self.folder(holding: [wav, wav.uppercased(), av])
        let upper = ClipFiles(given: cases + "/" + wav, givenProblem: "\(cases)/\(wav): damaged") { _ in nil }
        #expect(upper.speech == cases + "/" + wav.uppercased() && upper.video == cases + "/" + av
                && upper.speechPassedOver == "\(cases)/\(wav): damaged", "\(upper)")
    }

    /// A model without a face branch seeks no video (nothing is probed for it), and a clip's wav and mp4
    /// still pair alike; a model without a speech branch likewise.
    @Test func onlyTheModalitiesAModelReadsAreSought() throws {
        let wav = "03-01-05-01-01-01-03.wav", av = "01-01-05-01-01-01-03.mp4"
        let folder = try Self.folder(holding: [wav, av])
        var probed: [String] = []
        let speechOnly = [wav, av].map { ClipFiles(given: folder + "/" + $0, video: false) { probed.append($0); return nil } }
        #expect(speechOnly.allSatisfy { $0 == ClipFiles(speech: folder + "/" + wav, video: folder + "/" + wav) }, "\(speechOnly)")
        #expect(probed == [folder + "/" + wav], "only the mp4 given seeks its wav: \(probed)")
        let facesOnly = [wav, av].map { ClipFiles(given: folder + "/" + $0, speech: false) { _ in nil } }
        #expect(facesOnly.allSatisfy { $0 == ClipFiles(speech: folder + "/" + av, video: folder + "/" + av) }, "\(facesOnly)")
    }

    @Test func aFileWithoutCompanionsOrARavdessNameIsReadAlone() throws {
        let folder = try Self.folder(holding: ["03-01-05-01-01-01-03.wav", "01-01-05-01-01-02-03.mp4", "take.mp4",
                                               "01-01-05-01-01-01-04.mp4"])
        // Another repetition and another actor are other clips.
        for given in ["03-01-05-01-01-01-03.wav", "take.mp4", "01-01-05-01-01-01-04.mp4", "no-such-03-01.wav"] {
            let path = folder + "/" + given
            #expect(ClipFiles(given: path) { _ in nil } == ClipFiles(alone: path), "\(given)")
        }
        // A bare name (no folder) looks in the current folder, as opening it would.
        #expect(ClipFiles(given: "03-01-05-01-01-01-99.wav") { _ in nil } == ClipFiles(alone: "03-01-05-01-01-01-99.wav"))
    }

    /// Something named like a companion that is no file (a folder, a FIFO, a link to nothing) is no file
    /// to read, and is named as passed over, as a companion that does not probe is; it is never opened
    /// (a FIFO would block).
    @Test func aCompanionThatIsNoFileIsPassedOverSayingWhat() throws {
        let wav = "03-01-05-01-01-01-03.wav", av = "01-01-05-01-01-01-03.mp4"
        for (what, make) in [("a folder, not a media file", { (path: String) in try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }),
                             ("a FIFO, not a media file", { (path: String) in try #require(mkfifo(path, 0o644) == 0) }),
                             ("a link to nothing (or a loop of links)", { (path: String) in try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: path + ".gone") })] {
            let folder = try Self.folder(holding: [wav])
            try make(folder + "/" + av)
            var probed: [String] = []
            let files = ClipFiles(given: folder + "/" + wav) { probed.append($0); return nil }
            #expect(files == ClipFiles(speech: folder + "/" + wav, video: folder + "/" + wav, videoPassedOver: "\(folder)/\(av): \(what)"), "\(files)")
            #expect(!probed.contains(folder + "/" + av), "\(what) is not probed")
        }
    }
}

/// A run folder's features.json is checked for the faces as for the audio, when the model looks at faces:
/// out of range, it is refused naming the file and key, not met as every file's "pictures could not be read".
@Suite("a run's feature parameters")
struct RecordedFeatureParametersTests {
    @Test func facesValuesOutOfRangeAreRefusedForAModelThatLooksAtFaces() throws {
        let path = try TestSupport.temporaryFolder("features") + "/features.json"
        let faces = ModelConfig(modalities: [.audio, .faces], classes: 8, nMels: 64, frames: 300, recurrent: true)
        let speech = ModelConfig(modalities: [.audio], classes: 8, nMels: 64, frames: 300, recurrent: true)
        func write(_ facesSection: String) throws {
            try "{\"audio\": {\"n_mels\": 64}, \"faces\": \(facesSection)}".write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write("{\"frames\": 8, \"size\": 112}")
        let (_, read) = try Predictor.featureParameters(path, config: faces)
        #expect(read?.frames == 8 && read?.size == 112)
        for (section, key) in [("{\"frames\": 0}", "frames"), ("{\"frames\": 100000}", "frames"), ("{\"size\": 100000}", "size"),
                               ("{\"detect_width\": 1000000000}", "detect_width"), ("{\"upsample\": 50}", "upsample")] {
            try write(section)
            let refused = try #require(throws: TrainedModelError.self) { try Predictor.featureParameters(path, config: faces) }
            #expect(refused.path == path && refused.reason.hasPrefix("faces.\(key): "), "\(section): \(refused)")
            // A model without a face branch never reads them.
            #expect(throws: Never.self) { try Predictor.featureParameters(path, config: speech) }
        }
        // Crops of another size than the model's (model.json edited, or another run's) are refused by both numbers:
        // read as the model's size, they were read past their end.
        try write("{\"frames\": 8, \"size\": 128}")
        let otherSize = try #require(throws: TrainedModelError.self) { try Predictor.featureParameters(path, config: faces) }
        #expect(otherSize.reason == "faces.size 128 but the model takes 112-pixel face crops (face_size in model.json)", "\(otherSize)")
        #expect(throws: Never.self) { try Predictor.featureParameters(path, config: speech) }
        // A section of the wrong kind is named by its section (it was refused with an empty key name).
        for section in ["\"x\"", "[1]", "3"] {
            try write(section)
            let refused = try #require(throws: TrainedModelError.self) { try Predictor.featureParameters(path, config: faces) }
            #expect(refused.reason.hasPrefix("faces: \(section) is not allowed (expected a mapping"), "\(section): \(refused)")
        }
        // A number past a 64-bit float or text that is not Unicode is named as that, at its place (Foundation
        // called either "found a number/string instead" of a dictionary).
        for (text, place) in [(Data("{\"audio\": {\"hop_length\": 1e400}}".utf8), "audio.hop_length"),
                              (Data("{\"audio\": {\"window\": \"a".utf8) + Data([0xFF]) + Data("b\"}}".utf8), "audio.window"),
                              (Data("{\"audio\": {\"frames\": [1, 2, 1e400]}}".utf8), "audio.frames[2]")] {
            try text.write(to: URL(fileURLWithPath: path))
            let refused = try #require(throws: TrainedModelError.self) { try Predictor.featureParameters(path, config: faces) }
            #expect(refused.reason.contains(place) && refused.reason.contains("a number beyond a 64-bit float's range, or text that is not valid Unicode"),
                    "\(refused)")
        }
        // The digest model.json records decides whether these are the features it was exported with.
        try write("{\"frames\": 8, \"size\": 112}")
        let exported = try #require(try ParamValue.fromJSON(Data(contentsOf: URL(fileURLWithPath: path))).objectValue)
        let digest = Predictor.featuresDigest(exported)
        #expect(digest == SHA256Hex.of(ParamValue.object(exported).canonicalJSON), "no key here is left out of it")
        #expect(throws: Never.self) { try Predictor.featureParameters(path, config: faces, digest: digest) }
        try write("{\"size\": 112, \"frames\": 8}")   // the same values in another order
        #expect(throws: Never.self) { try Predictor.featureParameters(path, config: faces, digest: digest) }
        // The landmark model's path and how frames are decoded leave the features as they are: a copied run
        // folder may point the path elsewhere.
        try write("{\"frames\": 8, \"size\": 112, \"landmark_model\": \"/elsewhere/shape_predictor.dat\", \"decode_threads\": 2}")
        #expect(throws: Never.self) { try Predictor.featureParameters(path, config: speech, digest: digest) }
        try write("{\"frames\": 9, \"size\": 112}")
        let changed = try #require(throws: TrainedModelError.self) { try Predictor.featureParameters(path, config: faces, digest: digest) }
        #expect(changed.reason.hasPrefix("not the feature parameters this model was exported with"), "\(changed)")
        try write("null")
        let missing = try #require(throws: TrainedModelError.self) { try Predictor.featureParameters(path, config: faces) }
        #expect(missing.reason.contains("no faces parameters, but the model looks at faces"), "\(missing)")
    }
}
