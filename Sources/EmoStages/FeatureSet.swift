import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// The split's clips, whole: each modality's tensor read from the cache of the stage that computed
/// it, under the parameters that stage last completed with. The model's window (`base.frames`)
/// is the train stage's choice, not the cache's.
struct FeatureSet {
    let plan: SplitPlan
    let samples: [ClipFeatures]
    let config: ModelConfig
    /// Each clip's actor, looked up by every fold's selection and by the speaker statistics.
    let actorByClip: [String: Int]

    init(plan: SplitPlan, samples: [ClipFeatures], config: ModelConfig) {
        self.plan = plan; self.samples = samples; self.config = config
        actorByClip = Dictionary(plan.clips.map { ($0.clip, $0.actor) }, uniquingKeysWith: { a, _ in a })
    }

    static func load(context: StageContext, modalities: [ModelConfig.Modality], base: ModelConfig) throws -> FeatureSet {
        let store = context.store
        guard let split = try store.stageState(.split) else {
            throw PipelineError.upstreamNotReady(stage: context.fingerprint.stage, upstream: StageName.split.rawValue)
        }
        let plan = try SplitPlan.load(path: SplitPlan.path(workspace: context.workspace, fingerprint: split.fingerprint),
                                      recordedSHA256: split.outputDigest)
        let cache = TensorCache(workspace: context.workspace, store: store)
        var config = base
        config.classes = plan.labels.count
        config.modalities = modalities
        let audioFingerprint = try modalities.contains(.audio) ? store.stageState(.audio)?.parametersFingerprint : nil
        let facesFingerprint = try modalities.contains(.faces) ? store.stageState(.faces)?.parametersFingerprint : nil
        try checkFitsMemory(plan: plan, cache: cache, audio: audioFingerprint, faces: facesFingerprint, context: context)
        var samples: [ClipFeatures] = []
        // Every record read is checked against its CRC: a flipped bit would otherwise train and score
        // silently on wrong features (CRC-32C with SSE 4.2: about 0.1 s for all of RAVDESS's 570 MB of features).
        var firstShape: [StageName: [Int]] = [:]
        var uncached: [StageName: [SplitPlan.Source]] = [:]
        /// What `read` takes from a source's record, CRC-checked, or nil when the record is not cached.
        func checkedRecord<Value>(_ stage: StageName, _ fingerprint: String, _ source: SplitPlan.Source,
                                  _ read: (CachedTensor) throws -> Value) throws -> Value? {
            do {
                guard let tensor = try cache.tensor(stage: stage, fingerprint: fingerprint, key: source.sha256, verify: true) else {
                    uncached[stage, default: []].append(source)
                    return nil
                }
                try Self.checkLayout(tensor, stage: stage, like: &firstShape[stage])
                return try read(tensor)
            } catch let error as CacheError {
                // Damage a run repairs (the record's stage recomputes it); the error says what to do otherwise.
                guard error.repair != nil else { throw error }
                throw PipelineError.damagedCache(stage: stage.rawValue, detail: "\(error) (the \(stage.rawValue) record of \(source.path))")
            }
        }
        for clip in plan.clips {
            var sample = ClipFeatures(id: clip.clip, logmel: nil, melFrames: 0, faces: nil,
                                      faceMask: [Float](repeating: 0, count: config.faceFrames), label: clip.label)
            if let fp = audioFingerprint, let speech = clip.speech,
               let logmel = try checkedRecord(.audio, fp, speech, { tensor in
                   (values: try tensor.floats(), shape: tensor.shape, real: Self.int(try tensor.metadata, "real_frames"))
               }) {
                config.nMels = logmel.shape[0]
                sample = ClipFeatures(id: clip.clip, logmel: logmel.values, stride: logmel.shape[1],
                                      real: logmel.real ?? logmel.shape[1], nMels: logmel.shape[0],
                                      faces: nil, faceMask: sample.faceMask, label: clip.label)
            }
            if let fp = facesFingerprint, let video = clip.video,
               let faces = try checkedRecord(.faces, fp, video, { tensor in
                   (pixels: [UInt8](try tensor.bytes), shape: tensor.shape, mask: Self.faceMask(try tensor.metadata, count: tensor.shape[0]))
               }) {
                config.faceFrames = faces.shape[0]
                config.faceSize = faces.shape[1]
                sample.faces = faces.pixels
                sample.faceMask = faces.mask
            }
            if sample.hasInput { samples.append(sample) }
        }
        // A source without a record whose stage recorded no failure for it is work that stage has not done (a run
        // with --only after `cache verify`): its clip is left out, and that is said, not done silently.
        for (stage, sources) in uncached.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let fingerprint = stage == .audio ? audioFingerprint : facesFingerprint
            let failed = Set(try store.failures(stage: stage.rawValue).filter { $0.fingerprint == fingerprint }.map(\.sha256))
            let pending = sources.filter { !failed.contains($0.sha256) }
            guard let first = pending.first else { continue }
            let said = "\(pending.count) clip source(s) have no cached \(stage.rawValue) record and no recorded failure "
                + "(\(first.path)\(pending.count > 1 ? ", ..." : "")): the \(stage.rawValue) stage is not up to date "
                + "(`emopipe status` says why); their \(stage == .audio ? "speech is" : "pictures are") left out"
            context.logger.warning("\(said)")
        }
        // A shard's pages count in resident memory while it is mapped: let go of them before anything more is held.
        cache.closeShards()
        for i in samples.indices where samples[i].faces == nil {
            samples[i].faceMask = [Float](repeating: 0, count: config.faceFrames)
        }
        // A model trained on speaker-normalised features is trained, validated and evaluated on them: normalised in
        // place, so the raw log-mels are not held beside the normalised ones.
        if base.speakerNorm == true {
            let actorByClip = Dictionary(plan.clips.map { ($0.clip, $0.actor) }, uniquingKeysWith: { a, _ in a })
            SpeakerNormalizer.normalizeInPlace(&samples, speakers: samples.map { actorByClip[$0.id] ?? -1 }, nMels: config.nMels)
        }
        return FeatureSet(plan: plan, samples: samples, config: config)
    }

    /// A log-mel is float32 `[n_mels, frames]` and face crops uint8 `[K, size, size, 3]`, with the same
    /// bands (crops, size) as the stage's first record: the model is built from those figures, so a record
    /// of another layout (an edited database row beside an edited shard) is refused, not indexed past.
    /// Refuses, before any record is read, features that would not fit the memory budget
    /// (`resources.max_memory_mb`) or the machine: reading them first would hold gigabytes (or be killed)
    /// only to refuse then, naming a batch size that cannot help. Records are held twice while they are
    /// read: their shards' mapped pages and the copies made of them (speaker statistics are applied in place).
    static func checkFitsMemory(plan: SplitPlan, cache: TensorCache, audio: String?, faces: String?,
                                context: StageContext) throws {
        var bytes = 0, held = 0, mapped = 0, records = 0
        var sizedBy: [String] = []
        for (fingerprint, source, keys) in [(audio, \SplitPlan.Clip.speech, "audio.hop_length, audio.n_mels, audio.frames"),
                                            (faces, \SplitPlan.Clip.video, "faces.frames, faces.size")] {
            guard let fingerprint else { continue }
            let stage: StageName = source == \SplitPlan.Clip.speech ? .audio : .faces
            let sizes = try cache.recordBytes(stage: stage.rawValue, fingerprint: fingerprint)
            let readKeys = plan.clips.compactMap { clip in clip[keyPath: source]?.sha256 }.filter { sizes[$0] != nil }
            let read = readKeys.compactMap { sizes[$0] }
            // Clamped: the sizes are the database's, which a user can edit.
            let total = read.clampedSum()
            bytes = bytes.clampedAdding(total)
            held = held.clampedAdding(total.clampedMultiplied(by: 2))
            // Address space holds the copies and every shard read from, whole: one holding other fingerprints' or sources'
            // records too maps them as well (resident memory counts only the pages read).
            mapped = mapped.clampedAdding(total).clampedAdding(try cache.shardBytes(stage: stage.rawValue, fingerprint: fingerprint, holding: Set(readKeys)))
            records += read.count
            if !read.isEmpty { sizedBy.append(keys) }
        }
        let needed = held.clampedAdding(ProcessMemory.residentBytesInUse() ?? 0)
        let machine = ProcessMemory.machineLimitBytes()
        let addressSpace = addressSpaceShortfall(held: max(held, mapped), mapped: ProcessMemory.addressSpaceBytes(), limit: ProcessMemory.addressSpaceLimitBytes())
        guard needed > min(context.memoryBudget ?? Int.max, machine ?? Int.max) || addressSpace != nil else { return }
        // A refusal rests on the index's lengths: an edited row is damage a run repairs, not features too large.
        try requireIndexAgreesWithShards(plan: plan, cache: cache, audio: audio, faces: faces)
        let what = String(format: "the %d cached feature records %@ reads are %.0f MB%@: with what is resident about %.0f MB",
                          records, context.fingerprint.stage, ProcessMemory.megabytes(bytes),
                          held > bytes ? ", held twice while they are read (the shards mapped, and the copies)" : "", ProcessMemory.megabytes(needed))
        if let budget = context.memoryBudget, let budgetMB = context.manifest.resources.maxMemoryMB, needed > budget {
            throw PipelineError.invalidParameter(file: context.manifest.path, key: "resources.max_memory_mb", value: "\(budgetMB)",
                                                 allowed: what + ", before any training memory; raise the budget, or use coarser features (\(sizedBy.joined(separator: "; ")))")
        }
        if let machine, needed > machine {
            throw PipelineError.missingData(what + String(format: ", over this machine's %.0f MB: use coarser features (%@)",
                                                          ProcessMemory.megabytes(machine), sizedBy.joined(separator: "; ")))
        }
        if let addressSpace {
            throw PipelineError.missingData(String(format: "the %d cached feature records %@ reads are %.0f MB, held twice while they are read "
                                                   + "(copied, and mapped with the rest of their shards: %.0f MB in all): ",
                                                   records, context.fingerprint.stage, ProcessMemory.megabytes(bytes), ProcessMemory.megabytes(max(held, mapped)))
                                            + addressSpace + ": raise it, or use coarser features (\(sizedBy.joined(separator: "; ")))")
        }
    }

    /// What an address-space limit (`ulimit -v`) refuses of features held `held` bytes (the shards mapped and the
    /// copies) on top of the `mapped` bytes mapped now, or nil when they fit or there is no limit: reading them
    /// failed at a shard's mmap, naming neither the limit nor the settings.
    static func addressSpaceShortfall(held: Int, mapped: Int?, limit: Int?) -> String? {
        guard let limit, let mapped, mapped.clampedAdding(held) > limit else { return nil }
        return String(format: "with the %.0f MB of address space mapped now that is about %.0f MB, over the address-space limit (ulimit -v) of %.0f MB",
                      ProcessMemory.megabytes(mapped), ProcessMemory.megabytes(mapped.clampedAdding(held)), ProcessMemory.megabytes(limit))
    }

    /// Opens each record the plan reads (its shard's own index, not its bytes) and refuses, as damage a run
    /// repairs, a record whose database row disagrees with its shard.
    static func requireIndexAgreesWithShards(plan: SplitPlan, cache: TensorCache, audio: String?, faces: String?) throws {
        for (stage, fingerprint) in [(StageName.audio, audio), (.faces, faces)] {
            guard let fingerprint else { continue }
            let read = Set(plan.clips.compactMap { stage == .audio ? $0.speech?.sha256 : $0.video?.sha256 })
            var shard: Int64?
            for row in try cache.rows(stage: stage.rawValue, fingerprint: fingerprint).sorted(by: { $0.shardId < $1.shardId })
                where read.contains(row.key) {
                // One shard mapped at a time: features refused as too large for the address space would not all map.
                if row.shardId != shard { cache.closeShards(); shard = row.shardId }
                do { _ = try cache.tensor(row) } catch let error as CacheError where error.repair != nil {
                    throw PipelineError.damagedCache(stage: stage.rawValue, detail: "\(error)")
                }
            }
        }
        cache.closeShards()
    }

    static func checkLayout(_ tensor: CachedTensor, stage: StageName, like first: inout [Int]?) throws {
        let shape = tensor.shape
        let fits: Bool
        switch stage {
        case .faces: fits = tensor.dtype == .uint8 && shape.count == 4 && shape[1] == shape[2] && shape[3] == 3 && shape[0] > 0 && shape[1] > 0
        default: fits = tensor.dtype == .float32 && shape.count == 2 && shape[0] > 0 && shape[1] > 0
        }
        let fixed = stage == .faces ? shape : Array(shape.prefix(1))
        guard fits, first.map({ $0 == fixed }) ?? true else {
            let expected = stage == .faces ? "uint8 [K, size, size, 3]" : "float32 [n_mels, frames]"
            let same = first.map { " with \(stage == .faces ? "shape" : "n_mels") \($0) as the stage's other records" } ?? ""
            // The database and the shard agree on it, so `cache verify` finds nothing to drop: computing the stage again does.
            throw PipelineError.missingData("\(tensor.shard.path.shownPath): its \(stage.rawValue) record for source \(tensor.entry.key.escaped) is "
                                            + "\(tensor.dtype.name) \(shape), not \(expected)\(same); `emopipe run --force \(stage.rawValue)` computes the stage's records again")
        }
        first = fixed
    }

    /// What the clips' features hold in memory: log-mels (float32) and face crops (uint8).
    var bytes: Int { samples.map { ($0.logmel?.count ?? 0).clampedMultiplied(by: 4).clampedAdding($0.faces?.count ?? 0) }.clampedSum() }

    /// The feature settings that size them, as advice names them.
    static let sizingKeys = "audio.hop_length, audio.n_mels, faces.frames, faces.size"

    /// Said when a stage that read the features went over the memory budget (`peak` past it), naming what they
    /// held; nil when it kept to it or there is no budget.
    static func overrun(peak: Int?, resources: ResourceSettings, featureBytes: Int) -> String? {
        guard let budget = resources.maxMemoryBytes, let budgetMB = resources.maxMemoryMB, let peak, peak > budget else { return nil }
        return String(format: "resident memory reached %.0f MB, over resources.max_memory_mb = %d; the features it read are %.0f MB, "
                      + "held twice while read: use coarser features (%@) or raise the budget",
                      ProcessMemory.megabytes(peak), budgetMB, ProcessMemory.megabytes(featureBytes), sizingKeys)
    }

    /// The modalities that some of `samples` has data for (all asked for when none has any, for
    /// the caller to refuse).
    static func fed(_ modalities: [ModelConfig.Modality], samples: [ClipFeatures]) -> [ModelConfig.Modality] {
        let present = modalities.filter { modality in samples.contains { $0.has(modality) } }
        return present.isEmpty ? modalities : present
    }

    /// The same clips for a model built with only `modalities`.
    func building(_ modalities: [ModelConfig.Modality]) -> FeatureSet {
        var built = config
        built.modalities = modalities
        return FeatureSet(plan: plan, samples: samples, config: built)
    }

    /// The statistics speaker normalisation gives each actor (read off a set loaded without it: the same clips,
    /// in the same order), and the speech sources (by SHA-256) whose log-mels they were computed from: what
    /// `emopipe predict` reuses for a run's own files (`speakers.json`).
    func recordedSpeakers() -> RecordedSpeakers {
        let actors = samples.map { actorByClip[$0.id] ?? -1 }
        let statistics = SpeakerNormalizer.statisticsBySpeaker(samples, speakers: actors, nMels: config.nMels)
        let speech = Dictionary(plan.clips.compactMap { clip in clip.speech.map { (clip.clip, $0.sha256) } }, uniquingKeysWith: { a, _ in a })
        let sources = Dictionary(grouping: samples.filter { $0.logmel != nil }, by: { actorByClip[$0.id] ?? -1 })
            .mapValues { $0.compactMap { speech[$0.id] } }
        return RecordedSpeakers(speakers: statistics.keys.sorted().map { actor in
            RecordedSpeakers.Speaker(actor: actor, speechSha256: sources[actor] ?? [], mean: statistics[actor]?.mean ?? [], std: statistics[actor]?.std ?? [])
        })
    }

    /// The inputs of a two-input model that none of a fold's training clips has: their branch never learns.
    func untrained(_ modalities: [ModelConfig.Modality], fold: ActorFold) -> [ModelConfig.Modality] {
        guard modalities.count > 1 else { return [] }
        let training = samples(actors: fold.train)
        return modalities.filter { modality in !training.contains { $0.has(modality) } }
    }

    func samples(actors: [Int]) -> [ClipFeatures] {
        let wanted = Set(actors)
        return samples.filter { wanted.contains(actorByClip[$0.id] ?? -1) }
    }

    static func int(_ json: String, _ key: String) -> Int? {
        (try? ParamValue.fromJSON(Data(json.utf8)).objectValue?[key]?.intValue) ?? nil
    }

    /// 1 for each crop whose face was found or borrowed (the faces stage's per-frame facts).
    static func faceMask(_ json: String, count: Int) -> [Float] {
        guard let frames = (try? ParamValue.fromJSON(Data(json.utf8)).objectValue?["frames"]?.arrayValue) ?? nil else {
            return [Float](repeating: 1, count: count)
        }
        return (0..<count).map { i in
            guard i < frames.count, let f = frames[i].objectValue else { return 0 }
            return (f["found"]?.boolValue == true || f["borrowed"]?.boolValue == true) ? 1 : 0
        }
    }
}

extension ModelConfig.Modality {
    /// The stage whose cache holds this modality's features.
    var featureStage: StageName {
        switch self {
        case .audio: .audio
        case .faces: .faces
        }
    }

    /// Its place in the canonical order (`allCases`).
    var rank: Int { Self.allCases.firstIndex(of: self) ?? Self.allCases.count }
}

extension ModelConfig {
    /// The stages a model trained with this configuration was made from, in pipeline order: what its
    /// evaluation and export name as their provenance.
    var upstreamStages: [StageName] {
        [.ingest] + ModelConfig.Modality.allCases.filter(modalities.contains).map(\.featureStage) + [.split, .train]
    }
}
