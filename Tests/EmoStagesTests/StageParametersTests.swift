import EmoCore
import EmoFeatures
import EmoModel
@testable import EmoPipeline
@testable import EmoStages
import EmoStore
import EmoTestSupport
import Foundation
import Testing

/// The stages' typed parameters: one authority for defaults, strict decoding, provenance of the
/// decoded values.
@Suite("stage parameters")
struct StageParametersTests {
    static let pipelinePath = TestSupport.repositoryRoot + "/pipelines/ravdess.yaml"

    func runner(_ manifestFields: String = "", settings: [String] = []) throws -> PipelineRunner {
        let folder = try TestSupport.temporaryFolder("params")
        let path = folder + "/m.yaml"
        try "pipeline: \(Self.pipelinePath)\ndata: \(folder)\n\(manifestFields)".write(toFile: path, atomically: true, encoding: .utf8)
        var manifest = try Manifest.load(path: path)
        manifest.commandLine = try settings.map(ParameterOverride.init(parsing:))
        return try PipelineRunner(manifest: manifest, workspace: Workspace(root: folder + "/work"), stages: StageCatalog.all())
    }

    @Test func thePipelineFileDocumentsExactlyTheBuiltInDefaults() throws {
        let pipeline = try PipelineDefinition.load(path: Self.pipelinePath)
        let r = try runner()
        for declared in pipeline.stages {
            let resolved = try #require(r.parameters[declared.name])
            // Every key the stage accepts is documented in the file …
            let accepted = type(of: resolved.value).acceptedKeys
            #expect(Set(declared.params.keys) == accepted, "\(declared.name): the YAML lists \(declared.params.keys.sorted()), the stage accepts \(accepted.sorted())")
            // … with the value the Swift defaults give.
            let mismatched = resolved.origins.filter { $0.value != .defaultValue }.keys.sorted()
            #expect(mismatched.isEmpty, "\(declared.name): the YAML and the Swift defaults differ at \(mismatched)")
        }
        #expect(r.parameters["train"]?.value as? TrainParameters == TrainParameters())
        #expect(r.parameters["audio"]?.value as? LogMelParameters == LogMelParameters.speech)
        #expect(r.parameters["faces"]?.value as? FaceParameters == FaceParameters())
        #expect(r.parameters["split"]?.value as? SplitParameters == SplitParameters())
    }

    /// A pipeline file that gives a stage no parameters leaves every stage its built-in defaults.
    @Test func everyStageDecodesFromNoLayersToItsDefaults() throws {
        let pipeline = try PipelineDefinition.load(path: Self.pipelinePath)
        let r = try runner()
        for declared in pipeline.stages {
            let type = try #require(r.parameters[declared.name].map { Swift.type(of: $0.value) })
            let resolved = try ParameterResolver.resolve(type, stage: declared.name, layers: [])
            #expect(resolved.encoded == r.parameters[declared.name]?.encoded, "\(declared.name)")
            #expect(resolved.origins.values.allSatisfy { $0 == .defaultValue }, "\(declared.name)")
        }
        #expect(throws: PipelineError.invalidParameter(file: "--set", key: "evaluate.x", value: "1", allowed: "evaluate takes no parameters")) {
            try ParameterResolver.resolve(NoParameters.self, stage: "evaluate",
                                          layers: [.init(origin: .commandLine, values: ["x": .int(1)])])
        }
    }

    /// Unknown keys are named in sorted order, the same every time (a dictionary's order changed from one process
    /// to the next), with the others counted; a manifest-wide setting `params` lists is said to be a top-level key;
    /// a path holding a NUL byte is refused as such (it became "%00", a file nobody named, and was read if there).
    @Test func unknownKeysGlobalsAndNULPathsAreNamedPlainly() throws {
        let keys = ["zeta", "dropuot", "lerning_rate", "batchsize"] + (1...9).map { "k\($0)" }
        #expect(throws: PipelineError.invalidParameter(file: "--set", key: "train.batchsize", value: "1",
                                                       allowed: "not a parameter of train (did you mean batch_size?) (nor are dropuot, k1, k2, k3, k4 and 7 more); known: "
                                                           + TrainParameters.acceptedKeys.sorted().joined(separator: ", "))) {
            try ParameterResolver.resolve(TrainParameters.self, stage: "train",
                                          layers: [.init(origin: .commandLine, values: Dictionary(uniqueKeysWithValues: keys.map { ($0, ParamValue.int(1)) }))])
        }
        #expect(throws: PipelineError.invalidParameter(file: "--set", key: "split.label_map", value: "\"ravdess7\"",
                                                       allowed: "not a parameter of split; it is the manifest's own `label_map:` (a top-level key, one value "
                                                           + "for every stage that reads it); known: " + SplitParameters.acceptedKeys.sorted().joined(separator: ", "))) {
            try ParameterResolver.resolve(SplitParameters.self, stage: "split", layers: [.init(origin: .commandLine, values: ["label_map": .string("ravdess7")])])
        }
        #expect(throws: PipelineError.invalidParameter(file: "--set", key: "faces.landmark_model", value: "\"a\\u0000b\"",
                                                       allowed: "a file path, and the path holds a NUL byte, which no file name can")) {
            try ParameterResolver.resolve(FaceParameters.self, stage: "faces", layers: [.init(origin: .commandLine, values: ["landmark_model": .string("a\u{0}b")])])
        }
    }

    @Test func layersApplyInOrderAndSayWhereEachValueCameFrom() throws {
        let r = try runner("params: {train: {epochs: 7, dropout: 0.1}, audio: {preset: reference}}\n",
                           settings: ["train.epochs=3", "audio.fmax=null"])
        let train = try #require(r.parameters["train"]?.value as? TrainParameters)
        #expect(train.epochs == 3 && train.dropout == 0.1 && train.batchSize == 16)
        #expect(r.parameters["train"]?.origins["epochs"] == .commandLine)
        #expect(r.parameters["train"]?.origins["dropout"] == .manifest(path: r.manifest.path))
        #expect(r.parameters["train"]?.origins["batch_size"] == .defaultValue)
        let audio = try #require(r.parameters["audio"]?.value as? LogMelParameters)
        #expect(audio.nFFT == 2048 && audio.fmax == nil)
        // What the preset set comes from where the preset was named; what it left alone stays the default.
        let origins = try #require(r.parameters["audio"]?.origins)
        let fromPreset = LogMelParameters.reference.encoded.filter { $0.value != LogMelParameters.speech.encoded[$0.key] }.keys
        #expect(!fromPreset.isEmpty)
        for key in fromPreset where key != "fmax" {
            #expect(origins[key] == .manifest(path: r.manifest.path), "\(key): \(String(describing: origins[key]))")
        }
        #expect(origins["fmax"] == .commandLine && origins["sample_rate"] == .defaultValue && origins["n_mels"] == .defaultValue)
    }

    /// A rule that ties two keys names where the other value came from: lowering epochs on the
    /// command line breaks the pipeline file's warmup_epochs, and the refusal says both.
    @Test func aRefusalBetweenTwoKeysSaysWhereEachCameFrom() throws {
        func refusal(_ manifestFields: String = "", settings: [String] = []) throws -> String {
            do { _ = try runner(manifestFields, settings: settings) } catch { return "\(error)" }
            Issue.record("accepted: \(manifestFields) \(settings)")
            return ""
        }
        let warmup = try refusal(settings: ["train.epochs=1"])
        #expect(warmup.contains("pipelines/ravdess.yaml: train.warmup_epochs = 2: an integer from 0 to epochs (1); train.epochs is from --set "
                                + "(give `--set train.warmup_epochs=…` beside it)"), "\(warmup)")
        let window = try refusal("params: {audio: {n_fft: 256}}\n")
        #expect(window.contains("audio.win_length = 400: an integer from 1 to n_fft (256); audio.n_fft is from ") && window.contains("m.yaml"), "\(window)")
        let both = try refusal("params: {split: {test_actors: [1, 2]}}\n", settings: ["split.val_actors=[2, 3]"])
        #expect(both.contains("--set: split.val_actors = [2, 3]: actors that are not also test actors (2 is both); split.test_actors is from ") && both.contains("m.yaml"), "\(both)")
        // Emptying the manifest's test actors on the command line leaves its val_actors alone: both places said.
        let emptied = try refusal("params: {split: {test_actors: [1], val_actors: [2]}}\n", settings: ["split.test_actors=[]"])
        #expect(emptied.contains("m.yaml: split.val_actors = [2]: actors named together with test_actors") && emptied.hasSuffix("; split.test_actors is from --set (give `--set split.val_actors=…` beside it)"),
                "\(emptied)")
        let bands = try refusal(settings: ["audio.sample_rate=96000"])
        #expect(bands.contains("audio.n_mels = 64: at most as many mel bands") && bands.hasSuffix("; audio.sample_rate is from --set (give `--set audio.n_mels=…` beside it)"),
                "of the four keys the rule ties n_mels to, only the one given elsewhere is named: \(bands)")
        // A value the preset set is the preset's, named where the preset was chosen (it was "the built-in defaults").
        let preset = try refusal("params: {audio: {preset: reference}}\n", settings: ["audio.n_fft=512"])
        #expect(preset.hasPrefix("the \"reference\" preset (") && preset.contains("m.yaml): audio.win_length = 2048: an integer from 1 to n_fft (512); audio.n_fft is from --set"),
                "\(preset)")
        let together = try refusal(settings: ["train.epochs=1", "train.warmup_epochs=3"])
        #expect(together.hasSuffix("an integer from 0 to epochs (1)"), "both from --set: nothing more to say: \(together)")
    }

    /// A model description is checked on load against the same bounds the stages' parameters have,
    /// so every model the pipeline can train loads, and nothing larger is built from a model.json.
    @Test func modelLimitsAreTheFeatureStagesBounds() throws {
        #expect(ModelConfig.Limits.mels == LogMelParameters.maxMels)
        #expect(ModelConfig.Limits.faceFrames == FaceParameters.maxFrames)
        #expect(ModelConfig.Limits.faceSizes == FaceParameters.sizes)
        #expect(TrainParameters.maxBlocks == ModelConfig.Limits.blocks && TrainParameters.maxWindowFrames == ModelConfig.Limits.frames)
        var largest = ModelConfig(nMels: LogMelParameters.maxMels, frames: TrainParameters.maxWindowFrames,
                                  faceFrames: FaceParameters.maxFrames, faceSize: FaceParameters.sizes.upperBound,
                                  audioChannels: Array(repeating: TrainParameters.maxChannels, count: TrainParameters.maxBlocks),
                                  faceChannels: Array(repeating: TrainParameters.maxChannels, count: TrainParameters.maxBlocks),
                                  embedding: ModelConfig.Limits.embedding, dropout: 0.9)
        #expect(largest.shapeProblem == nil)
        largest.faceSize = FaceParameters.sizes.lowerBound
        largest.faceChannels = [4, 4, 4]
        largest.nMels = 8; largest.frames = 8; largest.audioChannels = [4, 4, 4]
        #expect(largest.shapeProblem == nil)
    }

    @Test func aRunShorterThanTheSelectionWindowSelectsOverAllItsEpochs() throws {
        let short = try #require(try runner("params: {train: {epochs: 3}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(short.selectionWindow > short.epochs)
        #expect(short.trainingConfig.selectionWindow == 3)
        let single = try #require(try runner("params: {train: {epochs: 1, warmup_epochs: 0}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(single.trainingConfig.selectionWindow == nil)
        let long = try #require(try runner("params: {train: {epochs: 40, selection_window: 7}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(long.trainingConfig.selectionWindow == 7)
        // `selection: last` reads no window: the model's training settings carry none, as its fingerprint hashes none.
        let last = try #require(try runner("params: {train: {epochs: 40, selection_window: 7, selection: last}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(last.trainingConfig.selectionWindow == nil && last.unreadKeys.contains("selection_window"))
    }

    @Test func provenanceRecordsTheDecodedValuesNotTheText() throws {
        // 512.0 decodes to the integer 512: what is hashed and recorded is the typed value.
        let spelled = try runner("params: {audio: {n_fft: 512.0}}\n")
        let plain = try runner()
        #expect(spelled.resolvedParams("audio")["n_fft"] == .int(512))
        #expect(try spelled.parametersFingerprint("audio") == plain.parametersFingerprint("audio"))
        // The audio stage's canonical form is the one it always had, so cached records keep their keys.
        #expect(plain.resolvedParams("audio") == LogMelParameters.speech.encoded)
    }

    /// fmax null means the Nyquist frequency: written out, it is the same setting, with the same cache key
    /// (and a sweep grid of both is two spellings of one trial); another fmax is another setting.
    @Test func fmaxAtNyquistIsNullsSpelling() throws {
        let plain = try runner()
        for spelled in [try runner("params: {audio: {fmax: 8000}}\n"), try runner(settings: ["audio.fmax=8000.0"]),
                        try runner("params: {audio: {sample_rate: 22050, fmax: 11025}}\n", settings: ["audio.sample_rate=16000", "audio.fmax=8000"])] {
            #expect(try spelled.parametersFingerprint("audio") == plain.parametersFingerprint("audio"))
            #expect(try spelled.parametersFingerprint("train") == plain.parametersFingerprint("train"))
        }
        #expect(try runner("params: {audio: {fmax: 7999}}\n").parametersFingerprint("audio") != plain.parametersFingerprint("audio"))
        #expect(try runner("params: {audio: {sample_rate: 22050, fmax: 8000}}\n").resolvedParams("audio")["fmax"]?.doubleValue == 8000)
    }

    /// The decoder's threads and strategy change how the faces stage works, not its crops: the cache key
    /// is the defaults' (so the cached crops are reused), while the stage still receives what was asked for.
    @Test func faceDecodingSettingsKeepTheFacesCacheKey() throws {
        let plain = try runner()
        let tuned = try runner("params: {faces: {decode_threads: 3}}\n", settings: ["faces.decode_strategy=every_frame"])
        #expect(try tuned.parametersFingerprint("faces") == plain.parametersFingerprint("faces"))
        let faces = try #require(tuned.parameters["faces"]?.value as? FaceParameters)
        #expect(faces.decodeThreads == 3 && faces.decodeStrategy == .everyFrame)
        #expect(tuned.parameters["faces"]?.encoded["decode_threads"] == .int(3))
        // A run's record keeps what was asked for (reproduce replays it); the fingerprint and stage state, the default.
        #expect(tuned.recordedParams("faces")["decode_threads"] == .int(3) && tuned.resolvedParams("faces")["decode_threads"] == .int(1))
        #expect(try runner(settings: ["faces.frames=4"]).parametersFingerprint("faces") != plain.parametersFingerprint("faces"))
    }

    /// `augment: false` turns the augmentations off, those with settings of their own too: their values then
    /// keep the train cache key (they change no weight), and with augmentation on they count.
    @Test func augmentationSettingsCountOnlyWithAugmentationOn() throws {
        let off = try runner(settings: ["train.augment=false"])
        for setting in ["train.mixup=0.4", "train.time_stretch=0.2", "train.frequency_warp=0.1"] {
            #expect(try runner(settings: ["train.augment=false", setting]).parametersFingerprint("train") == off.parametersFingerprint("train"), "\(setting)")
            #expect(try runner(settings: [setting]).parametersFingerprint("train") != runner().parametersFingerprint("train"), "\(setting)")
        }
        #expect(try off.parametersFingerprint("train") != runner().parametersFingerprint("train"))
    }

    /// A branch `modalities` leaves out is not built, so its channels change no weight; how often checkpoints
    /// are written changes none either (a resumed training continues exactly): all keep the train cache key.
    @Test func settingsNoWeightDependsOnKeepTheTrainCacheKey() throws {
        let speech = try runner(settings: ["train.modalities=[audio]"])
        let faces = try runner(settings: ["train.modalities=[faces]"])
        let both = try runner(settings: ["train.modalities=[audio, faces]"])
        let cases: [(settings: [String], base: PipelineRunner, same: Bool)] = [
            (["train.modalities=[audio]", "train.face_channels=[8]"], speech, true),
            (["train.modalities=[faces]", "train.audio_channels=[8]"], faces, true),
            (["train.modalities=[audio, faces]", "train.face_channels=[8]"], both, false),
            (["train.modalities=[audio]", "train.audio_channels=[8]"], speech, false),
            (["train.modalities=[audio]", "train.checkpoint_every=7"], speech, true),
        ]
        for (settings, base, same) in cases {
            #expect(try (runner(settings: settings).parametersFingerprint("train") == base.parametersFingerprint("train")) == same, "\(settings)")
        }
        let model = try #require(try runner(settings: ["train.modalities=[audio]", "train.face_channels=[8]"]).parameters["train"]?.value as? TrainParameters).modelConfig
        #expect(model.faceChannels == TrainParameters().faceChannels, "model.json holds what the cache key says")
    }

    /// Status names the parameters that changed; one the other values now leave unread is hashed at its default,
    /// which nobody gave: said to be unread instead.
    @Test func statusSaysAKeyLeftUnreadIsNotRead() throws {
        let both = try runner(settings: ["train.modalities=[audio, faces]", "train.face_channels=[4, 8]"])
        let recorded = ParamValue.object(both.resolvedParams("train")).canonicalJSON
        let speech = try runner(settings: ["train.modalities=[audio]", "train.face_channels=[4, 8]"])
        let unread = try #require(speech.parameters["train"]).value.unreadKeys
        let said = PipelineRunner.describeChanges(from: recorded, to: speech.resolvedParams("train"), unread: unread)
        #expect(said == #"face_channels [4,8] → not read, modalities ["audio","faces"] → ["audio"]"#, "\(said)")
        // And back: what was recorded unread is said so, not shown as the default it was hashed at.
        let recordedSpeech = ParamValue.object(speech.resolvedParams("train")).canonicalJSON
        let trainStage = try #require(speech.stages["train"])
        let unreadThen = try #require(trainStage.unreadKeys(recordedJSON: recordedSpeech))
        #expect(unreadThen.contains("face_channels"))
        let back = PipelineRunner.describeChanges(from: recordedSpeech, to: both.resolvedParams("train"),
                                                  unread: try #require(both.parameters["train"]).value.unreadKeys, unreadBefore: unreadThen)
        #expect(back == #"face_channels not read → [4,8], modalities ["audio"] → ["audio","faces"]"#, "\(back)")
        // Unread before and after, a key is no change at all: only what did change is named.
        let longer = try runner(settings: ["train.modalities=[audio]", "train.face_channels=[8, 8]", "train.epochs=7"])
        let onlyEpochs = PipelineRunner.describeChanges(from: recordedSpeech, to: longer.resolvedParams("train"),
                                                        unread: try #require(longer.parameters["train"]).value.unreadKeys, unreadBefore: unreadThen)
        #expect(onlyEpochs.hasPrefix("epochs ") && onlyEpochs.hasSuffix(" → 7") && !onlyEpochs.contains(","), "\(onlyEpochs)")
        // Hashed at its own value by an earlier version (which read it), and unread now under the same settings: the
        // fingerprint changed with nothing given differently. Named (it said "parameter types changed").
        var older = try #require(try JSONSerialization.jsonObject(with: Data(recordedSpeech.utf8)) as? [String: Any])
        older["face_channels"] = [4, 8]
        let olderJSON = String(decoding: try JSONSerialization.data(withJSONObject: older, options: [.sortedKeys]), as: UTF8.self)
        let upgraded = PipelineRunner.describeChanges(from: olderJSON, to: speech.resolvedParams("train"), unread: unread,
                                                      unreadBefore: try #require(trainStage.unreadKeys(recordedJSON: olderJSON)))
        #expect(upgraded == "face_channels [4,8] → not read (it changes nothing under these settings, and is no longer hashed)", "\(upgraded)")
    }

    /// A relative landmark model path is the giving file's: the manifest's folder, not wherever emopipe was started.
    @Test func aRelativeLandmarkModelIsReadFromTheManifestsFolder() throws {
        let r = try runner("params: {faces: {landmark_model: models/lm.dat}}\n")
        let folder = URL(fileURLWithPath: r.manifest.path).deletingLastPathComponent().standardizedFileURL.path
        let faces = try #require(r.parameters["faces"]?.value as? FaceParameters)
        #expect(faces.landmarkModel == folder + "/models/lm.dat")
        let given = try runner(settings: ["faces.landmark_model=../lm.dat"])
        let current = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).deletingLastPathComponent().standardizedFileURL.path
        #expect((given.parameters["faces"]?.value as? FaceParameters)?.landmarkModel == current + "/lm.dat")
        #expect((try runner().parameters["faces"]?.value as? FaceParameters)?.landmarkModel == FaceParameters().landmarkModel)
        // Two spellings of one absolute path are one setting; a model nothing reads (align off) changes no cache key.
        let plain = try runner(settings: ["faces.align=true"])
        let spelled = try runner(settings: ["faces.align=true", "faces.landmark_model=/usr/share/./dlib//../dlib/shape_predictor_68_face_landmarks.dat"])
        #expect(try spelled.parametersFingerprint("faces") == plain.parametersFingerprint("faces"))
        #expect(try runner(settings: ["faces.landmark_model=/elsewhere/model.dat"]).parametersFingerprint("faces") == runner().parametersFingerprint("faces"))
        // Read, the model is fingerprinted by its bytes too: the same path with other bytes is another setting.
        let model = try TestSupport.temporaryFolder("landmark-bytes") + "/lm.dat"
        try Data("one".utf8).write(to: URL(fileURLWithPath: model))
        let first = try runner(settings: ["faces.align=true", "faces.landmark_model=\(model)"]).parametersFingerprint("faces")
        #expect(try runner(settings: ["faces.align=true", "faces.landmark_model=\(model)"]).parametersFingerprint("faces") == first)
        try Data("two".utf8).write(to: URL(fileURLWithPath: model))
        #expect(try runner(settings: ["faces.align=true", "faces.landmark_model=\(model)"]).parametersFingerprint("faces") != first)
        // Stages that name no such file keep the fingerprints they had (no `files` in what is hashed).
        let audio = try runner()
        let recorded = Fingerprint(stage: "audio", codeVersion: try #require(audio.stages["audio"]).codeVersion,
                                   params: audio.resolvedParams("audio"), inputs: [:])
        #expect(try audio.parametersFingerprint("audio") == recorded.parameters)
    }

    @Test func wrongTypesAreNeverReplacedByDefaults() throws {
        for (text, key) in [("learning_rate: fast", "train.learning_rate"), ("epochs: many", "train.epochs"),
                            ("augment: 7", "train.augment"), ("recurrent: 'yes'", "train.recurrent"),
                            ("audio_channels: wide", "train.audio_channels")] {
            do {
                _ = try runner("params: {train: {\(text)}}\n")
                Issue.record("\(text) was accepted")
            } catch let PipelineError.invalidParameter(_, k, _, _) {
                #expect(k == key)
            }
        }
        // A string that is not one of a choice's values is named with the values allowed, not its type.
        let choice = try #require(throws: PipelineError.self) { try runner("params: {train: {class_weights: inverse}}\n") }
        #expect(choice.description.contains("train.class_weights = \"inverse\": expected one of 'balanced', 'none'")
                && !choice.description.contains("got a string"), "\(choice)")
        #expect(try #require(throws: PipelineError.self) { try runner("params: {train: {class_weights: 3}}\n") }
            .description.contains("expected one of 'balanced', 'none', got an integer"))
        // YAML reads 1e400 as infinity; the message must not read "expected a number, got a number".
        let error = try #require(throws: PipelineError.self) { try runner("params: {train: {learning_rate: 1e400}}\n") }
        #expect(error.description.contains("got inf (a number too large"), "\(error)")
        // Numbers beyond what a type holds are named as numbers, shown as numbers (never JSON's null),
        // in a file or on the command line alike.
        let shown: [(String, String)] = [
            ("epochs: 99999999999999999999", "train.epochs = 1e+20: expected a whole number, got a number beyond the 64-bit integer range"),
            ("epochs: 1.0e16", "train.epochs = 1e+16: expected a whole number, got a whole number written as a float past 2^53"),
            ("learning_rate: 1e400", "train.learning_rate = inf:"), ("learning_rate: .inf", "train.learning_rate = inf:"),
            ("learning_rate: -.Inf", "train.learning_rate = -inf:"), ("mixup: .NaN", "train.mixup = nan: expected a number, got nan (.nan, not a number)"),
            // Read as 0, it would be echoed and used as a value nobody wrote.
            ("learning_rate: 1e-400", "1e-400 is too small for a 64-bit float (it would be read as 0"),
            ("learning_rate: !!float -2.5e-999", "-2.5e-999 is too small for a 64-bit float"),
        ]
        let tolerance = try #require(throws: PipelineError.self) { try runner("nightly: {tolerance: .inf}\n") }
        #expect(tolerance.description.contains("nightly.tolerance = inf: expected a finite number"), "\(tolerance)")
        #expect(throws: PipelineError.self) { try runner("nightly: {metrics: [accuracy, 12]}\n") }
        let empty = try #require(throws: PipelineError.self) { try runner("nightly: {metrics: []}\n") }
        #expect(empty.description.contains("nightly.metrics = []: expected a non-empty list of metric names"), "\(empty)")
        let twice = try #require(throws: PipelineError.self) { try runner("nightly: {metrics: [accuracy, uar, accuracy]}\n") }
        #expect(twice.description.contains("nightly.metrics: \"accuracy\" is listed twice"), "\(twice)")
        // A hexadecimal float is no YAML 1.2 float, however small (0x1p-1080 was read as 0) or large.
        for hexadecimal in ["0x0p1", "0x1p-1080", "-0x1.8p3", "0x10"] {
            let refused = try #require(throws: PipelineError.self) { try runner("params: {train: {learning_rate: !!float \(hexadecimal)}}\n") }
            #expect(refused.description.contains("!!float \"\(hexadecimal)\" is not a decimal number"), "\(refused)")
        }
        for (text, message) in shown {
            let inFile = try #require(throws: PipelineError.self) { try runner("params: {train: {\(text)}}\n") }
            #expect(inFile.description.contains(message), "\(inFile)")
            let setting = text.replacingOccurrences(of: ": ", with: "=")
            let onCommandLine = try #require(throws: PipelineError.self) { try runner(settings: ["train." + setting]) }
            #expect(onCommandLine.description.contains(message), "\(onCommandLine)")
        }
        // Manifest-wide integers and strings name the value and what it is.
        let seed = try #require(throws: PipelineError.self) { try runner("seed: 99999999999999999999\n") }
        #expect(seed.description.contains("seed = 1e+20: expected an integer, got a number beyond the 64-bit integer range"), "\(seed)")
        let name = try #require(throws: PipelineError.self) { try runner("name: [a, b]\n") }
        #expect(name.description.contains("name = [\"a\",\"b\"]: expected a string, got a list"), "\(name)")
    }

    /// A value echoed in a message is cut short and says how long it was: a 120 KB `--set` value does
    /// not come back whole, on the command line or in a file.
    @Test func aLongValueIsEchoedShort() throws {
        let long = String(repeating: "x", count: 120_000)
        for error in [try #require(throws: PipelineError.self) { try runner(settings: ["train.dropout=" + long]) },
                      try #require(throws: PipelineError.self) { try runner("params: {train: {dropout: \(long)}}\n") }] {
            #expect(error.description.contains("train.dropout = \"xxxx") && error.description.contains("… (120002 bytes)"), "\(error.description.prefix(300))")
            #expect(error.description.count < 400, "\(error.description.count) characters")
        }
    }

    /// A --set value YAML cannot read, of control characters: its message is cut once, between escapes (cut a
    /// second time, the already-escaped text ended in half an escape, `\u{… (210 characters)`).
    @Test func anUnreadableSetValueIsCutBetweenEscapes() throws {
        let error = try #require(throws: PipelineError.self) { try runner(settings: ["train.epochs=" + String(repeating: "\u{1}", count: 100)]) }
        let text = error.description
        #expect(text.contains("\\u{1}") && text.range(of: #"\\u\{[0-9A-F]*([^0-9A-F}]|$)"#, options: .regularExpression) == nil, "\(text)")
        #expect(text.count < 400, "\(text.count) characters")
    }

    /// Joiners and soft hyphens are text (Persian words, emoji sequences): a name holding them is accepted.
    @Test func aNameWithJoinersIsText() throws {
        for name in ["\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}", "team-\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", "soft\u{00AD}hyphen"] {
            #expect(try runner("name: \"\(name)\"\n").manifest.name == name)
        }
    }

    /// Actor lists are sets: written in another order they are the same split, with the same fingerprint
    /// (so the same cached training), and duplicates are still refused.
    @Test func actorListsInAnyOrderAreTheSameSplit() throws {
        let ordered = try runner(settings: ["split.test_actors=[1, 2]", "split.val_actors=[3, 4]", "split.actors=[1, 2, 3, 4, 5]"])
        let shuffled = try runner(settings: ["split.test_actors=[2, 1]", "split.val_actors=[4, 3]", "split.actors=[5, 3, 1, 4, 2]"])
        #expect(try ordered.parametersFingerprint("split") == shuffled.parametersFingerprint("split"))
        #expect(try ordered.parametersFingerprint("train") == shuffled.parametersFingerprint("train"))
        #expect(shuffled.resolvedParams("split")["test_actors"] == .array([.int(1), .int(2)]))
        #expect(throws: PipelineError.self) { try runner(settings: ["split.test_actors=[2, 1, 2]"]) }
    }

    @Test func trainingOptionsOutsideTheirRangesAreRefusedByName() throws {
        let refused: [(String, String)] = [
            ("mixup: -0.1", "train.mixup"), ("mixup: 10.5", "train.mixup"), ("mixup: .nan", "train.mixup"),
            ("mixup: 0.001", "train.mixup"), ("mixup: strong", "train.mixup"),
            ("weight_average_epochs: -1", "train.weight_average_epochs"), ("weight_average_epochs: 10001", "train.weight_average_epochs"),
            ("weight_average_epochs: .inf", "train.weight_average_epochs"), ("time_stretch: 0.6", "train.time_stretch"),
            ("selection_window: 0", "train.selection_window"), ("frequency_warp: 0.31", "train.frequency_warp"),
            ("frequency_warp: -0.05", "train.frequency_warp"), ("class_weights: inverse", "train.class_weights"), ("frequency_warp: .nan", "train.frequency_warp"),
            // Below 1 as a Double, 1 as the model's Float: the model would be refused on load.
            ("dropout: 0.99999999", "train.dropout"), ("label_smoothing: 0.9999999999", "train.label_smoothing"),
            // Positive as a Double, 0 as the training's Float: nothing would be learnt.
            ("learning_rate: 1.0e-50", "train.learning_rate"), ("clip_norm: 1.0e-50", "train.clip_norm"),
            ("weight_decay: .nan", "train.weight_decay")]
        // Below 1 as written, 1 as the training's Float: the refusal says so.
        let rounded = try #require(throws: PipelineError.self) { try runner("params: {train: {label_smoothing: 0.9999999999}}\n") }
        #expect(rounded.description.contains("as a 32-bit float (at most 0.99999994)"), "\(rounded)")
        for (text, key) in refused {
            do {
                _ = try runner("params: {train: {\(text)}}\n")
                Issue.record("\(text) was accepted")
            } catch let PipelineError.invalidParameter(_, k, _, _) {
                #expect(k == key, "\(text)")
            }
        }
        // Zero is off: the training sees no option at all, exactly as before the options existed.
        let off = try #require(try runner("params: {train: {mixup: 0, weight_average_epochs: 0}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(off.trainingConfig.augmentation.mixup == nil && off.trainingConfig.weightAverageEpochs == nil)
        let on = try #require(try runner("params: {train: {mixup: 0.4, weight_average_epochs: 2.5}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(on.trainingConfig.augmentation.mixup == 0.4 && on.trainingConfig.weightAverageEpochs == 2.5)
        // Without augmentation there is no mixup either (it is an augmentation).
        let plain = try #require(try runner("params: {train: {mixup: 0.4, augment: false}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(plain.trainingConfig.augmentation.mixup == nil)
        let warped = try #require(try runner("params: {train: {frequency_warp: 0.1}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(warped.trainingConfig.augmentation.frequencyWarp == 0.1 && off.trainingConfig.augmentation.frequencyWarp == nil)
        let unwarped = try #require(try runner("params: {train: {frequency_warp: 0.1, augment: false}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(unwarped.trainingConfig.augmentation.frequencyWarp == nil)
        // Balanced weights count the half-size class twice; none counts every clip once.
        let labels = [0, 1, 1, 2, 2]
        #expect(off.classWeights.weights(labels: labels, classes: 3) == Trainer.classWeights(labels: labels, classes: 3))
        #expect(Trainer.classWeights(labels: labels, classes: 3)[0] == 2 * Trainer.classWeights(labels: labels, classes: 3)[1])
        let flat = try #require(try runner("params: {train: {class_weights: none}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(flat.classWeights.weights(labels: labels, classes: 3) == [1, 1, 1])
        // The default selection leaves the recorded training config as it was before the option existed.
        #expect(off.trainingConfig.selection == nil)
        let byLoss = try #require(try runner("params: {train: {selection: validation_loss}}\n").parameters["train"]?.value as? TrainParameters)
        #expect(byLoss.trainingConfig.selection == .validationLoss)
        let selection = try #require(throws: PipelineError.self) { try runner("params: {train: {selection: best}}\n") }
        #expect(selection.description.contains("train.selection = \"best\": expected one of 'weighted_f1', 'validation_loss', 'last'"), "\(selection)")
    }

    @Test func foldsWithoutValidationActorsNeedTheLastEpochBeforeAnythingRuns() throws {
        // Refused by the runner's parameters, so `--dry-run`, `params` and a sweep's trials see it too,
        // naming the split key that removed the validation actors and where the selection came from.
        let byCount = try #require(throws: PipelineError.self) { try runner(settings: ["split.val_count=0"]) }
        #expect(byCount.description.contains("--set: split.val_count = 0: the folds have no validation actors to select an epoch on")
                && byCount.description.contains("train.selection must be last (it is \"weighted_f1\", from "), "\(byCount)")
        let byList = try #require(throws: PipelineError.self) {
            try runner("params: {split: {test_actors: [1]}, train: {selection: validation_loss}}\n")
        }
        #expect(byList.description.contains("split.test_actors = [1]: named without split.val_actors")
                && byList.description.contains("(it is \"validation_loss\", from ") && byList.description.contains("/m.yaml)"), "\(byList)")
        // An empty val_actors given beside the test actors is named as the cause, with where it was given.
        let emptied = try #require(throws: PipelineError.self) { try runner("params: {split: {test_actors: [1]}}\n", settings: ["split.val_actors=[]"]) }
        #expect(emptied.description.contains("--set: split.val_actors = []: with split.test_actors [1], the fold has no validation actors"), "\(emptied)")
        for accepted in [["split.val_count=0", "train.selection=last"], ["split.test_actors=[1]", "train.selection=last"],
                         ["split.test_actors=[1]", "split.val_actors=[2]"], ["split.val_count=1"]] {
            #expect(throws: Never.self, "\(accepted)") { _ = try runner(settings: accepted) }
        }
    }
}
