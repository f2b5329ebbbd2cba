import EmoCore
import EmoFeatures
import EmoMedia
import EmoModel
import EmoNN
import EmoPipeline
import EmoStore
import Foundation

/// Predictions for new media files with an exported run's model (`runs/<run>/model.safetensors`,
/// `model.json`, `features.json`): the features the pipeline computes, then the model, each file
/// scored whole under the model's window policy exactly as the evaluate stage scores a test clip.
/// A model trained on speaker-normalised features gets each speaker's statistics from the files it
/// is given: files are grouped by the RAVDESS actor in their names, and files without one form one
/// group of their own.
public final class Predictor {
    public struct Window: Codable, Equatable, Sendable {
        public var start: Double
        public var end: Double
        public var label: String
        public var probabilities: [String: Double]
    }

    /// Whose statistics normalised a file's log-mel (speaker-normalised models only).
    public struct SpeakerGroup: Codable, Equatable, Sendable {
        /// "actor 13", or "unnamed" for the files whose names carry no RAVDESS actor.
        public var name: String
        /// The actor `name` stands for (not written: the name says it).
        public var actor: Int? = nil
        /// How many files the statistics came from: those given of the group, or the run's clips of the actor.
        public var files: Int
        public var statistics: Statistics = .given

        /// `recorded`: every file given of the actor is one of the run's own, so the run's statistics of the
        /// actor (recorded by export, as evaluate takes them) normalised them; `blended`: the files given together did, blended with
        /// the training actors' statistics (`SpeakerPrior`); `given`: the files given together alone (a run
        /// folder without `speakers.json`).
        public enum Statistics: String, Codable, Sendable { case given, blended, recorded }

        enum CodingKeys: String, CodingKey { case name, files, statistics }

        init(actor: Int?, files: Int, statistics: Statistics = .given) {
            self.name = actor.map { "actor \($0)" } ?? "unnamed"
            self.actor = actor; self.files = files; self.statistics = statistics
        }
    }

    public struct Prediction: Codable, Equatable, Sendable {
        public var path: String
        public var label: String
        public var probabilities: [String: Double]
        public var timeline: [Window]
        public var speaker: SpeakerGroup?
        /// What the answer was computed from: audio, faces, or both.
        public var modalities: [ModelConfig.Modality]
        /// The files the audio and the faces were read from: the given file, or its clip's other file
        /// beside it (`ClipFiles`); nil for a modality the answer did not use.
        public var speechFile: String? = nil
        public var videoFile: String? = nil
        /// Why the speech could not be read, when the answer comes from the pictures alone for that
        /// reason (the audio stage fails such a source, and evaluate scores its clip on the pictures).
        public var audioError: String? = nil
        /// Why the pictures could not be read, when a model with a face branch answered from the speech
        /// alone for that reason (the clip's video file does not open or decode; evaluate, whose faces
        /// stage fails such a source, scores the clip on its speech too).
        public var videoError: String? = nil
        /// Why the clip's files that rank above `speechFile` could not be read (its wav, when the mp4's audio
        /// was read instead, as the split stage passes over a wav ingest failed); nil when none was passed over.
        public var speechPassedOver: String? = nil
    }

    let classifier: EmotionClassifier
    var trained: TrainedModel { classifier.trained }
    /// The model's configuration as predict reads a file for it: only the inputs its training fed (a branch
    /// no training clip of its fold had is given nothing, so its file is not read).
    var inputs: ModelConfig {
        var c = trained.config
        c.modalities = trained.learntModalities
        return c
    }
    /// Whether model.json records the SHA-256 of features.json, so that an edited one is refused.
    public var checksFeatures: Bool { classifier.trained.featuresSha256 != nil }
    /// The fold the model is, and the actors it learnt from (its training and validation actors).
    public var learntFrom: (fold: Int, actors: [Int]) { (trained.fold.index, trained.fold.train + trained.fold.validation) }
    let logMel: LogMelParameters?
    let faces: FaceParameters?
    /// The statistics the run normalised each actor with (`speakers.json`), by actor; empty for a model
    /// that does not normalise speakers, or an export from before the file was written.
    let recordedSpeakers: [Int: RecordedSpeakers.Speaker]
    /// Each recorded actor's sources, as a set (what a file's digest is looked up in).
    let recordedSources: [Int: Set<String>]
    /// A speaker-normalised model's run folder without `speakers.json` (exported before it was written).
    public let lacksRecordedSpeakers: Bool
    /// The recorded statistics of the model's training actors, which files not all the run's own are blended
    /// with (`SpeakerPrior`); nil without recorded statistics of any of them.
    public let speakerPrior: SpeakerPrior?
    /// The model's policy, with the hop a caller chose instead of the model's, if any.
    public let policy: WindowPolicy

    /// What a run folder without an export is told when nothing more is known of its run.
    public static let exportAdvice = "run the export stage: `emopipe run MANIFEST --until export`, MANIFEST the run's own"

    /// `run` is a run folder holding an export; `hopSeconds` nil keeps the model's hop (the one
    /// that reproduces the evaluate stage). `exportAdvice` says how to export it when it holds no model.
    /// `threads`: how many threads score; the run's own count gives evaluate's bits (products split over
    /// another count may round differently). Nil: one per core.
    public init(run: String, hopSeconds: Double? = nil, exportAdvice: String = Predictor.exportAdvice, threads: Int? = nil) throws {
        let folder = URL(fileURLWithPath: run)
        let weights = folder.appendingPathComponent(TrainedModel.Weights.exported.rawValue).path
        var facts = stat()
        guard lstat(weights, &facts) == 0 else {
            // An ONNX file alone (copied out for onnxruntime) is not what predict reads: said so, not "run export".
            // Only a regular file (through links) is one to give onnxruntime: a dangling link or a folder so named is no model.
            if let onnx = [RunFile.onnx, .int8Onnx].first(where: { stat($0.path(in: folder.path), &facts) == 0 && facts.st_mode & S_IFMT == S_IFREG }) {
                throw PipelineError.missingData("\(run.shownPath): holds \(onnx.rawValue) but not \(TrainedModel.Weights.exported.rawValue): predict reads "
                                                + "the run folder the export stage wrote (\(TrainedModel.Weights.exported.rawValue), model.json, features.json beside "
                                                + "\(RunFile.onnx.rawValue)); copy the whole folder, or give onnxruntime \(onnx.rawValue)")
            }
            throw PipelineError.missingData("\(run.shownPath): no exported model here (\(exportAdvice))")
        }
        // Something is there: a link that leads nowhere (or round in a loop) is named as such, not as no model.
        guard stat(weights, &facts) == 0 else {
            throw PipelineError.missingData("\(weights.shownPath): cannot read the exported weights: \(String(cString: strerror(errno)))")
        }
        // The export writes model.json after the weights: without it, the export stopped in this run's folder, and the
        // run that finished it holds the model (a missing file said as "cannot read model.json" named no way out).
        let description = folder.appendingPathComponent(TrainedModel.fileName).path
        if lstat(description, &facts) != 0 && errno == ENOENT {
            throw PipelineError.missingData("\(run.shownPath): holds \(TrainedModel.Weights.exported.rawValue) but not \(TrainedModel.fileName): "
                                            + "its export did not finish here (stopped part way); the run that finished it holds the whole model "
                                            + "(`emopipe runs` lists it), or export again: `emopipe run --until export`")
        }
        classifier = try TrainedModel.load(folder: folder, weights: .exported)
        (logMel, faces) = try Self.featureParameters(RunFile.features.path(in: folder.path),
                                                     config: classifier.trained.config,
                                                     digest: classifier.trained.featuresSha256)
        let speakersPath = RunFile.speakers.path(in: folder.path)
        var speakerFacts = stat()
        let trained = classifier.trained
        let normalisesSpeakers = Self.groupsSpeakers(trained.config)
        let present = lstat(speakersPath, &speakerFacts) == 0
        if normalisesSpeakers, !present, trained.speakersSha256 != nil {
            throw TrainedModelError(path: speakersPath, reason: "missing: export wrote it beside model.json (which records its SHA-256); "
                                    + "restore it, or export the model again")
        }
        let descriptionPath = folder.appendingPathComponent(TrainedModel.fileName).path
        // Export writes speakers.json and its digest together (since 2026-12-05): the file without the digest
        // means model.json was edited, and statistics edited beside it would be used unchecked.
        if normalisesSpeakers, present, trained.speakersSha256 == nil {
            throw TrainedModelError(path: descriptionPath,
                                    reason: "records no speakers_sha256, yet speakers.json is beside it: export writes the two together, "
                                    + "so this file was edited; export the model again (or restore its speakers_sha256)")
        }
        // Nor is speakers.json written for a model that does not normalise by speaker: beside one, model.json's
        // config.speaker_norm was turned off (and its digest taken out), and answers would skip what the model learnt with.
        if !normalisesSpeakers, present {
            throw TrainedModelError(path: descriptionPath,
                                    reason: "says the model does not normalise by speaker (config.speaker_norm off, or no audio input), yet "
                                    + "speakers.json is beside it: export writes that file only for a speaker-normalised model, so one of the two "
                                    + "was edited or copied in; export the model again (or remove speakers.json if it came from another run)")
        }
        if normalisesSpeakers, present {
            let recorded = try RecordedSpeakers.read(speakersPath, nMels: trained.config.nMels, expectedSha256: trained.speakersSha256)
            recordedSpeakers = Dictionary(recorded.speakers.map { ($0.actor, $0) }, uniquingKeysWith: { a, _ in a })
        } else {
            recordedSpeakers = [:]
        }
        recordedSources = recordedSpeakers.mapValues { Set($0.speechSha256) }
        lacksRecordedSpeakers = normalisesSpeakers && !present
        let recordedByActor = recordedSpeakers
        speakerPrior = SpeakerPrior(speakers: trained.fold.train.compactMap { recordedByActor[$0] },
                                    frames: (SpeakerPrior.seconds / Self.secondsPerFrame(logMel)).rounded())
        var policy = classifier.trained.windowPolicy
        if let hopSeconds, hopSeconds.isFinite, hopSeconds > 0 {
            let frames = (hopSeconds / Self.secondsPerFrame(logMel)).rounded()
            policy.hopFrames = frames < Double(Int32.max) ? max(1, Int(frames)) : Int(Int32.max)
        }
        self.policy = policy
        try Engine.configureWithinLimits(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The most of features.json read: export writes about 1 KB, and decoding megabytes of nested lists
    /// (each within the nesting bound) took minutes.
    static let featuresLimit = 64 << 10

    /// Containers that hold sound alone, as libsndfile and libavformat name them.
    static let soundContainers: Set<String> = ["wav", "rf64", "w64", "flac", "mp3", "aac", "aiff", "caf", "au", "wv"]

    /// The feature parameters a run recorded, checked against its model: a damaged features.json
    /// is named, and never reaches the frame arithmetic or the extractors.
    /// `digest` is the SHA-256 model.json records for them: other values (an edit, another run's file)
    /// would compute features the model never learnt on, and its answers would still look confident.
    static func featureParameters(_ path: String, config: ModelConfig, digest: String? = nil) throws -> (LogMelParameters?, FaceParameters?) {
        func bad(_ reason: String) -> TrainedModelError { TrainedModelError(path: path, reason: reason) }
        let data: Data
        do { data = try RegularFile.read(path, atMost: Self.featuresLimit) } catch {
            var facts = stat()   // lstat: a link looping or leading nowhere is there, and its error says so
            guard lstat(path, &facts) == 0 else { throw bad("missing: the export stage writes it beside model.json") }
            throw bad(EmoError.reason(of: error))
        }
        let features: [String: ParamValue]
        do { features = try ParamValue.fromJSON(data).objectValue ?? [:] } catch {
            throw bad("not the run's feature parameters: \(JSONOutput.problem(error, in: data))")
        }
        func section(_ stage: StageName) -> ParamValue? {
            features[stage.rawValue].flatMap { $0 == .null ? nil : $0 }
        }
        // A refusal names its key from the file's top (`faces.size`), and the section when that is no mapping.
        func within<T>(_ stage: StageName, _ body: () throws -> T) throws -> T {
            do { return try body() } catch var invalid as InvalidParameter {
                invalid.key = invalid.key.isEmpty ? stage.rawValue : stage.rawValue + "." + invalid.key
                throw invalid
            }
        }
        let logMel: LogMelParameters?, faces: FaceParameters?
        do {
            logMel = try within(.audio) { try section(.audio).map { try ParamValueDecoder.decode(LogMelParameters.self, from: $0) } }
            faces = try within(.faces) { try section(.faces).map { try ParamValueDecoder.decode(FaceParameters.self, from: $0) } }
            try within(.audio) { try logMel?.validate() }
            // As the audio's: a value out of range would otherwise surface as every file's "pictures could not be read".
            if config.uses(.faces) { try within(.faces) { try faces?.validate() } }
        } catch { throw bad("\(error)") }
        if config.uses(.faces), faces == nil {
            throw bad("no faces parameters, but the model looks at faces (the export writes them)")
        }
        if config.uses(.audio), logMel == nil {
            throw bad("no audio parameters, but the model listens to speech (the export writes them)")
        }
        if config.uses(.audio), let logMel, logMel.nMels != config.nMels {
            throw bad("n_mels \(logMel.nMels) but the model takes \(config.nMels) mel bands")
        }
        if config.uses(.faces), let faces, faces.size != config.faceSize {
            throw bad("faces.size \(faces.size) but the model takes \(config.faceSize)-pixel face crops (face_size in \(TrainedModel.fileName))")
        }
        // Last, so that a damaged value is named by what is wrong with it rather than as a changed file.
        if let digest {
            let actual = featuresDigest(features)
            guard actual == digest else {
                throw bad("not the feature parameters this model was exported with (their SHA-256 is \(actual.prefix(16))…, "
                          + "model.json records \(digest.prefix(16))…): restore the file export wrote, or export the model again")
            }
        }
        return (logMel, faces)
    }

    /// The digest model.json records of a run's feature parameters (`features_sha256`): their canonical
    /// JSON without the keys that leave the features as they are, the files named (`faces.landmark_model`,
    /// which a copied run folder may have to point elsewhere) and how the work is done (`decode_threads`).
    static func featuresDigest(_ features: [String: ParamValue]) -> String {
        var hashed = features
        let ignored = [(StageName.faces, FaceParameters.pathKeys.union(FaceParameters.executionOnlyKeys)),
                       (.audio, LogMelParameters.pathKeys.union(LogMelParameters.executionOnlyKeys))]
        for (stage, keys) in ignored {
            guard case .object(var section)? = hashed[stage.rawValue] else { continue }
            for key in keys { section.removeValue(forKey: key) }
            hashed[stage.rawValue] = .object(section)
        }
        return SHA256Hex.of(ParamValue.object(hashed).canonicalJSON)
    }

    /// Whether files are normalised with their speaker's statistics (and so depend on each other): a
    /// model that hears no speech has no log-mels to normalise, whatever `speaker_norm` says.
    public var groupsSpeakers: Bool { Self.groupsSpeakers(trained.config) }

    static func groupsSpeakers(_ config: ModelConfig) -> Bool { config.speakerNorm == true && config.uses(.audio) }

    /// A pass over the files, shown as its own progress line: speaker-normalised files take three (each
    /// file's pairing is settled, its speaker's statistics summed, then it is scored), others one.
    public enum Pass: Int, Sendable, CaseIterable {
        case only, pairing, speakerStatistics, scoring

        public var label: String {
            switch self {
            case .only: "predict"
            case .pairing: "predict, pass 1/3 (pairing files)"
            case .speakerStatistics: "predict, pass 2/3 (speaker statistics)"
            case .scoring: "predict, pass 3/3 (scoring)"
            }
        }
    }

    /// Each file's prediction, or why it has none, in the order given. `progress` makes each pass's
    /// reporter, which advances file by file and is finished when the pass ends (or is stopped).
    /// Speaker-normalised files keep up to `heldFeatureBytes` of features between the two passes (others are read again).
    ///
    /// Once `cancellation` is cancelled no further file is started: the results are those of the first
    /// files, fewer than `paths`. With speaker statistics that is none until every file was read once
    /// (an answer from part of a speaker's statistics would not be the one a whole run gives), and at
    /// least one after.
    public func predict(paths: [String], progress: ((Pass) -> ProgressReporter)? = nil,
                        heldFeatureBytes: Int = Predictor.heldFeatureBytes,
                        cancellation: Cancellation? = nil) -> [Result<Prediction, Error>] {
        let stopped = { cancellation?.isCancelled == true }
        // Without speaker statistics the files do not depend on each other: each is read, scored
        // and let go, so many files never hold their features at once.
        guard groupsSpeakers else {
            let progress = progress?(.only)
            defer { progress?.finish() }
            var results: [Result<Prediction, Error>] = []
            for path in paths {
                if stopped() { break }
                defer { progress?.advance() }
                results.append(Result {
                    let read = try features(path: path, files: pairing(path))
                    return try score(read.features, read: read, path: path)
                })
            }
            return results
        }
        // A file given twice (or by two paths) is read and counted once, as the ingest stage counts it:
        // repeating a file must not weigh it more in its speaker's statistics.
        // Each file's pairing is settled once, so that counting a clip once and reading it agree.
        var pairings: [Result<ClipFiles, Error>] = []
        pairings.reserveCapacity(paths.count)
        // The SHA-256 of each RAVDESS-named file's speech, when the run recorded statistics to compare it with.
        var digests: [String?] = []
        var digestBySpeech: [String: String] = [:]
        do {
            let progress = progress?(.pairing)
            defer { progress?.finish() }
            for path in paths {
                // Probing a long list takes a while: a stop asked for here answers none, as in the next pass.
                if stopped() { return [] }
                defer { progress?.advance() }
                let paired = Result { try pairing(path) }
                pairings.append(paired)
                var digest: String?
                if !recordedSpeakers.isEmpty, Self.speakerKey(path) != nil, let speech = try? paired.get().speech {
                    digest = digestBySpeech[speech] ?? (try? SHA256Hex.file(atPath: speech).hex)
                    digestBySpeech[speech] = digest
                }
                digests.append(digest)
            }
        }
        let first = Self.firstOccurrences(paths, pairings: pairings)
        // A file given by several paths belongs to the actor any of its RAVDESS names gives, whichever comes
        // first; but one of the run's own sources belongs to the actor the run had it under, when a name says so.
        var keys = paths.map(Self.speakerKey)
        let named = Dictionary(grouping: paths.indices.compactMap { i in keys[i].map { (first[i], $0) } }, by: \.0).mapValues { $0.map(\.1) }
        let digestOf = Dictionary(paths.indices.compactMap { i in digests[i].map { (first[i], $0) } }, uniquingKeysWith: { a, _ in a })
        for i in paths.indices where first[i] == i {
            let candidates = named[i] ?? []
            keys[i] = ownActor(among: candidates, digest: digestOf[i]) ?? candidates.first
        }
        for i in paths.indices { keys[i] = keys[first[i]] }
        // First pass: each speaker's statistics, added file by file in the order given (the same sums
        // as over all of them at once). Features are kept for the second pass up to a budget; a file
        // past it is read again there, so many long recordings never sit in memory together.
        var clips: [Int: Result<ReadClip, Error>] = [:]
        var statistics: [Int?: SpeakerNormalizer.Accumulator] = [:]
        var counts: [Int?: Int] = [:]
        var withLogMel = Set<Int>()
        var held = 0
        let statisticsProgress = progress?(.speakerStatistics)
        for i in paths.indices {
            if stopped() { statisticsProgress?.finish(); return [] }
            defer { statisticsProgress?.advance() }
            guard first[i] == i else { continue }
            let read = Result { try features(path: paths[i], files: pairings[i].get()) }
            guard case .success(let clip) = read.map(\.features) else { clips[i] = read; continue }
            statistics[keys[i], default: SpeakerNormalizer.Accumulator(nMels: trained.config.nMels)].add(clip)
            // A file without speech (an mp4 with no audio track, answered from its faces) adds nothing to the statistics.
            if clip.logmel != nil {
                withLogMel.insert(i)
                counts[keys[i], default: 0] += 1
            }
            let bytes = 4 * (clip.logmel?.count ?? 0) + (clip.faces?.count ?? 0)
            if held + bytes <= heldFeatureBytes { clips[i] = read; held += bytes }
        }
        statisticsProgress?.finish()
        // Files given, not all the run's own: their statistics blended with the training actors' (or their own alone, without those).
        var normalizers: [Int?: (mean: [Float], std: [Float])] = statistics.mapValues { $0.statistics(blendedWith: speakerPrior) }
        // Files that are all the run's own sources of their actor are normalised as the run normalised them.
        let recorded = recordedGroups(withLogMel.sorted(), keys: keys, digests: digestOf)
        for (actor, speaker) in recorded { normalizers[actor] = (speaker.mean, speaker.std) }
        // A file given again is answered from its first occurrence's score, under its own path.
        let scoringProgress = progress?(.scoring)
        defer { scoringProgress?.finish() }
        var results: [Result<Prediction, Error>] = []
        for (i, path) in paths.enumerated() {
            // Once every file was read, at least one answer is given: none then means the reading was cut short.
            if stopped() && !results.isEmpty { break }
            defer { scoringProgress?.advance() }
            if first[i] != i {
                results.append(results[first[i]].map { earlier in var again = earlier; again.path = path; return again })
                continue
            }
            results.append(Result {
                let read = try (clips.removeValue(forKey: i) ?? Result { try features(path: path, files: pairings[i].get()) }).get()
                let clip = read.features
                let (mean, std) = normalizers[keys[i]] ?? SpeakerNormalizer.Accumulator(nMels: trained.config.nMels).statistics
                let normalized = SpeakerNormalizer.normalize(clip, mean: mean, std: std, nMels: trained.config.nMels)
                var prediction = try score(normalized, read: read, path: path)
                // Only a log-mel is normalised: an answer from the faces alone used no speaker's statistics.
                if clip.logmel != nil {
                    prediction.speaker = keys[i].flatMap { recorded[$0] }.map { SpeakerGroup(actor: keys[i], files: $0.speechSha256.count, statistics: .recorded) }
                        ?? SpeakerGroup(actor: keys[i], files: counts[keys[i]] ?? 1, statistics: speakerPrior == nil ? .given : .blended)
                }
                return prediction
            })
        }
        return results
    }

    /// Why a group's files were normalised with statistics of their own (blended, or alone) rather than the run's.
    public func whyNotRecorded(_ group: SpeakerGroup) -> String {
        if lacksRecordedSpeakers { return "the run folder has no speakers.json, an export from before it was written" }
        let why: String
        if let actor = group.actor {
            why = recordedSpeakers[actor] == nil ? "the run had no actor \(actor)" : "not all are the run's own sources of actor \(actor)"
        } else {
            why = "no RAVDESS actor in their names"
        }
        // Export records every actor of the run: a speakers.json without the training actors is another's.
        let trainActors = classifier.trained.fold.train.map(String.init).joined(separator: ", ")
        return group.statistics == .given ? why + "; speakers.json holds none of the training actors model.json lists (\(trainActors)) to blend them with" : why
    }

    /// Of the actors a file's names give, the one whose recorded sources hold the file's speech, if any.
    func ownActor(among candidates: [Int], digest: String?) -> Int? {
        guard candidates.count > 1, let digest else { return nil }
        return candidates.first { recordedSources[$0]?.contains(digest) == true }
    }

    /// The actors whose files given are all among the run's recorded sources of that actor (by the SHA-256
    /// of the speech each is read from), with the run's statistics of them. A group with any other file (a
    /// new recording, an edited copy) keeps the statistics of the files given.
    /// Decided on the files that added a log-mel to their group's statistics (`contributing`, first occurrences):
    /// one that could not be read is answered with its error and weighs nothing either way.
    func recordedGroups(_ contributing: [Int], keys: [Int?], digests: [Int: String]) -> [Int: RecordedSpeakers.Speaker] {
        var qualifies: [Int: Bool] = [:]
        for i in contributing {
            guard let actor = keys[i], let sources = recordedSources[actor] else { continue }
            qualifies[actor] = (qualifies[actor] ?? true) && digests[i].map(sources.contains) == true
        }
        return Dictionary(uniqueKeysWithValues: qualifies.filter(\.value).compactMap { actor, _ in recordedSpeakers[actor].map { (actor, $0) } })
    }

    /// The feature bytes (log-mels and face crops) `predict` keeps between its two passes over
    /// speaker-normalised files; past it, a file is read again for scoring (a RAVDESS clip's log-mel
    /// takes about 80 KB, its 8 crops of 112 pixels 300 KB).
    public static let heldFeatureBytes = 256 << 20

    /// For each path, the index of the first path naming the same file (by device and inode; by the
    /// path itself when it cannot be examined, and then reading it reports why).
    /// A clip's wav and its mp4 are read as one clip (`ClipFiles`), so given together they count once too;
    /// a file whose pairing failed (it does not probe) is known by itself.
    static func firstOccurrences(_ paths: [String], pairings: [Result<ClipFiles, Error>]) -> [Int] {
        enum Identity: Hashable { case file(FileIdentity), path(String) }
        func identity(_ path: String) -> Identity {
            var facts = stat()
            // A path holding a NUL byte names no file (stat would stop there and see another): reading it says so.
            return !path.utf8.contains(0) && stat(path, &facts) == 0 ? .file(FileIdentity(facts)) : .path(path)
        }
        struct Pair: Hashable { var speech: Identity, video: Identity }
        var seen: [Pair: Int] = [:]
        return paths.indices.map { i in
            let files = (try? pairings[i].get()) ?? ClipFiles(alone: paths[i])
            let pair = Pair(speech: identity(files.speech), video: identity(files.video))
            if let earlier = seen[pair] { return earlier }
            seen[pair] = i
            return i
        }
    }

    /// The RAVDESS actor a file's name gives, if any.
    static func speakerKey(_ path: String) -> Int? {
        if case let .source(codes) = RavdessName.parse(fileName: (path as NSString).lastPathComponent) { return codes.actor }
        return nil
    }

    /// A window's time as answers give it: to the microsecond, so 201 frames of 10 ms read 2.01, not 2.0100000000000002.
    static func timestamp(_ seconds: Double) -> Double {
        seconds.isFinite ? (seconds * 1e6).rounded() / 1e6 : seconds
    }

    static func secondsPerFrame(_ logMel: LogMelParameters?) -> Double {
        logMel.map { Double($0.hopLength) / Double($0.sampleRate) } ?? 0.01
    }

    /// The files a given file is read with: a file that does not probe is passed over for the next in
    /// rank, the given one too, as the split stage passes over a source ingest failed, so a clip's
    /// unreadable wav is answered from its mp4 as evaluate scored it; with none of its clip's files
    /// readable, the given file's error is its answer. Only the modalities the model reads are sought:
    /// a speech-only model never probes a wav's mp4.
    func pairing(_ path: String) throws -> ClipFiles {
        var givenError: Error?
        do { _ = try MediaProbe.probe(path: path) } catch {
            // Only a file there whose contents fail is passed over: a path to nothing, or open files running out, stays the answer.
            var facts = stat()
            guard stat(path, &facts) == 0, facts.st_mode & S_IFMT == S_IFREG, !PerSourceWork.ranOutOfFiles(error) else { throw error }
            givenError = error
        }
        let c = inputs
        let files = ClipFiles(given: path, speech: c.uses(.audio), video: c.uses(.faces), givenProblem: givenError.map { "\($0)" }) { file in
            do { _ = try MediaProbe.probe(path: file); return nil } catch { return "\(error)" }
        }
        if let givenError, !files.readsBeyond(path) { throw givenError }
        return files
    }

    /// A given file's clip as read: its features, its length, the files read and, when one modality
    /// could not be read but the other could, why.
    struct ReadClip {
        var features: ClipFeatures
        var duration: Double
        var files: ClipFiles
        var audioError: String?
        var videoError: String?
    }

    /// A file as the pipeline's stages would cache its clip: every log-mel frame of its speech, K crops
    /// over its video, each from the file its pairing names.
    private func features(path: String, files: ClipFiles) throws -> ReadClip {
        let c = inputs
        let speechFacts = try MediaProbe.probe(path: files.speech)
        let videoFacts = files.video == files.speech ? speechFacts : try MediaProbe.probe(path: files.video)
        var clip = ClipFeatures(id: path, logmel: nil, melFrames: 0, faces: nil,
                                faceMask: [Float](repeating: 0, count: c.faceFrames), label: 0)
        var duration = speechFacts.durationSeconds ?? 0
        var audioError: Error?
        // A video-only clip's (modality 02) sound is never speech to the pipeline: ingest fails such a file.
        let videoOnly = Self.modality(of: files.speech) == 2
        if c.uses(.audio), let logMel, speechFacts.audioStreamCount > 0, !videoOnly {
            do {
                let mel = try LogMelExtractor(logMel).compute(signal: MonoAudioFile(path: files.speech, sampleRate: logMel.sampleRate))
                clip = ClipFeatures(id: path, logmel: mel.values, stride: mel.frames, real: mel.realFrames, nMels: mel.nMels,
                                    faces: nil, faceMask: clip.faceMask, label: 0)
                duration = mel.durationSeconds
            } catch {
                // The audio stage fails such a speech source, and evaluate scores its clip on the pictures
                // alone: so does predict when the model has a face branch, saying why. Open files running
                // out is the machine's fault, not the file's: that stays an error, as it stays unfailed there.
                guard c.uses(.faces), videoFacts.videoStreamCount > 0, !PerSourceWork.ranOutOfFiles(error) else { throw error }
                audioError = error
            }
        }
        // Better-ranked files passed over explain missing pictures only when the file used holds no video; one
        // that was read but shows no face is an answer from the speech for that reason, not for theirs.
        // A recording of sound alone (a wav, RAVDESS's 03) lacks nothing: only a file meant to hold pictures is said to have none.
        // Named as one, or, whatever its name (none, a trailing space), in a container made for sound alone.
        let soundOnly = Self.modality(of: files.video).map { $0 == 3 }
            ?? (["wav", "flac", "mp3", "ogg", "opus", "m4a", "aac"].contains((files.video as NSString).pathExtension.lowercased())
                || Self.soundContainers.contains(videoFacts.container))
        var videoProblems = videoFacts.videoStreamCount > 0 ? [] : [files.videoPassedOver ?? (soundOnly ? nil : "\(files.video): no video track" + (videoFacts.pictureCount > 0 ? ", " + MediaFacts.onlyStillPicture : ""))].compactMap { $0 }
        if c.uses(.faces), videoFacts.videoStreamCount > 0 {
            let (crops, problem) = try faceCrops(path: files.video)
            if let crops {
                clip.faces = crops.crops
                clip.faceMask = crops.frames.map { $0.found || $0.borrowed ? 1 : 0 }
            }
            // The file the pictures were sought in is named, as in every other video_error (its clip's audio-video mp4
            // for a video-only one given).
            videoProblems += [problem].compactMap { $0 }.map { "\(files.video): \($0)" }
        }
        // No stream at all in a container that should hold some: most often a file cut short in its index.
        let noStreams = speechFacts.audioStreamCount == 0 && speechFacts.videoStreamCount == 0 && videoFacts.videoStreamCount == 0
            && videoFacts.pictureCount == 0
        let videoError = c.uses(.faces) && clip.faces == nil && !videoProblems.isEmpty && !noStreams ? videoProblems.joined(separator: "; ") : nil
        if let audioError, clip.faces == nil {
            // Both modalities failed: each one's reason is named, not only the speech's.
            guard let videoError else { throw audioError }
            throw PipelineError.missingData("\(path): nothing to predict from: its speech: \("\(audioError)".withoutLead(path)); "
                                            + "its pictures: \(videoError.withoutLead(path))")
        }
        guard clip.hasInput else {
            let audio = videoOnly ? "a video-only clip (modality 02), from which the pipeline reads no speech" : speechFacts.audioStreamCount > 0 ? nil
                : noStreams ? "no audio or video stream FFmpeg can find (a file cut short?)" : "no audio track"
            let video = c.uses(.faces) && !noStreams ? (videoFacts.videoStreamCount > 0 ? "no face found" : "no video track") : nil
            let listens = c.uses(.faces) ? (c.uses(.audio) ? "" : ", and the model looks at faces only") : ", and the model hears speech only"
            // The line names the file: its own video error is not prefixed with it again.
            let videoReason = videoError.map { $0.withoutLead(path) }
            throw PipelineError.missingData("\(path): nothing to predict from: " + [audio, videoReason ?? video].compactMap { $0 }.joined(separator: ", ") + listens)
        }
        // A model with both branches answering from the faces of a file without sound says so, as for a failed decode.
        // A video-only file read because its clip's speech files could not be says why those could not.
        let noAudio = !c.uses(.audio) || clip.logmel != nil ? nil
            : videoOnly ? files.speechPassedOver ?? "\(files.speech): a video-only clip (modality 02), from which the pipeline reads no speech"
            : speechFacts.audioStreamCount == 0 ? "\(files.speech): no audio track" : nil
        return ReadClip(features: clip, duration: duration, files: files, audioError: audioError.map { "\($0)" } ?? noAudio, videoError: videoError)
    }

    /// The RAVDESS modality a file's name gives (01 audio-video, 02 video-only, 03 audio-only), or nil.
    static func modality(of path: String) -> Int? {
        guard case .source(let codes) = RavdessName.parse(fileName: (path as NSString).lastPathComponent) else { return nil }
        return codes.modality
    }

    /// The faces stage's crops of the file, or nil when none were taken (the answer then comes from the
    /// audio) with why, if the video could not be read: a video too large to sample in memory too, as
    /// evaluate scores such a clip (its faces record failed) from its speech.
    private func faceCrops(path: String) throws -> (crops: FaceClip?, problem: String?) {
        // A face branch the model's training never fed is given no input: the video is not read.
        guard var p = faces, inputs.uses(.faces) else { return (nil, nil) }
        p.frames = trained.config.faceFrames
        do {
            let clip = try FaceExtractor(p).extract(path: path)
            return (clip.frames.count == trained.config.faceFrames ? clip : nil, nil)
        } catch FaceError.media(let media) {
            return (nil, media.reason)
        } catch {
            // Open files running out is the machine's fault, not the file's: an error, as for the speech.
            if PerSourceWork.ranOutOfFiles(error) { throw error }
            return (nil, Self.clause("\(error)"))
        }
    }

    /// A face error's sentence ("The video could not be decoded: ….") as a clause of another message
    /// ("nothing to predict from: no audio track, the video could not be decoded: …").
    public static func clause(_ sentence: String) -> String {
        var text = sentence.hasSuffix(".") ? String(sentence.dropLast()) : sentence
        let start = text.prefix(2)
        if start.count == 2, start.first!.isUppercase, start.last!.isLowercase { text = start.first!.lowercased() + text.dropFirst() }
        return text
    }

    private func score(_ clip: ClipFeatures, read: ReadClip, path: String) throws -> Prediction {
        let (duration, files) = (read.duration, read.files)
        let windows = try classifier.windowProbabilities(clip, policy: policy)
        let mean = Inference.mean(windows)
        let secondsPerFrame = Self.secondsPerFrame(logMel)
        let starts = policy.starts(realFrames: clip.melFrames)
        let timeline = zip(starts, windows).map { start, p in
            Window(start: Self.timestamp(Double(start) * secondsPerFrame),
                   end: Self.timestamp(min(duration, Double(start + policy.frames) * secondsPerFrame)),
                   label: trained.labels[Inference.argmax(p)], probabilities: named(p))
        }
        let used: [ModelConfig.Modality] = (clip.logmel != nil ? [.audio] : []) + (clip.faces != nil ? [.faces] : [])
        return Prediction(path: path, label: trained.labels[Inference.argmax(mean)], probabilities: named(mean),
                          timeline: timeline.count > 1 ? timeline : [], speaker: nil, modalities: used,
                          speechFile: clip.logmel != nil ? files.speech : nil, videoFile: clip.faces != nil ? files.video : nil,
                          audioError: read.audioError, videoError: read.videoError,
                          speechPassedOver: clip.logmel != nil ? files.speechPassedOver : nil)
    }

    func named(_ p: [Float]) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(trained.labels, p.map(PredictionTable.rounded)))
    }
}
