import EmoCore
import EmoFeatures
import EmoModel
import EmoNN
import EmoPipeline
import EmoStore
import Foundation

/// The train stage's parameters: the model's shape and how it is trained. These defaults are the
/// ones `pipelines/ravdess.yaml` documents (a test keeps the two equal).
public struct TrainParameters: StageParameters {
    public var modalities: [ModelConfig.Modality] = [.audio, .faces]
    /// Output channels of each conv block (3x3 conv, batch norm, ReLU, 2x2 max pool).
    public var audioChannels = [16, 32, 64, 128]
    public var faceChannels = [16, 32, 64, 64]
    public var embedding = 128
    /// A bidirectional GRU over the audio steps (cv4: 0.553 against 0.538 without).
    public var recurrent = true
    /// Subtract each clip's mean per mel band after standardising.
    public var utteranceNorm = false
    /// Standardise each clip per mel band with its speaker's own statistics first.
    public var speakerNorm = true
    /// The log-mel's delta and delta-delta over time as two more input channels.
    public var deltas = false
    /// Pick the best epoch by the trailing mean of the validation score (`selection`) over this many
    /// epochs (at most `epochs`): one epoch's score on two validation actors is noisy (select-01-12: 0.629 against 0.602).
    public var selectionWindow = 5
    /// What the kept epoch is chosen by (`EpochSelection`).
    public var selection = EpochSelection.weightedF1
    /// Validate and keep an exponential moving average of the weights spanning about this many epochs
    /// (0: the latest weights).
    public var weightAverageEpochs = 0.0
    /// Whether training keeps a moving average of the weights (its memory counts two more parameter copies).
    var averagesWeights: Bool { weightAverageEpochs > 0 }
    /// The model's input: windows of this many log-mel frames (300: 3 s at the speech preset's hop).
    public var windowFrames = 300
    /// Frames between the windows a clip is scored over (`WindowPolicy`).
    public var windowHopFrames = 100
    public var dropout = 0.2
    /// 45, not 60: the holdout-17-24 run must train in at most twice the time of the run issue #12
    /// reports (the defaults of then, stopped early at epoch 32); 60 epochs cost 2.1x (README, sixth round).
    public var epochs = 45
    public var batchSize = 16
    public var learningRate = 0.001
    public var weightDecay = 0.01
    public var warmupEpochs = 2
    public var clipNorm = 1.0
    public var labelSmoothing = 0.05
    public var patience = 15
    public var checkpointEvery = 5
    public var augment = true
    /// Speed perturbation: each training window is read from (1 ± time_stretch) × its length of the clip.
    public var timeStretch = 0.0
    /// Mixup within each batch, λ ~ Beta(mixup, mixup) (0: off).
    public var mixup = 0.0
    /// Vocal-tract-length perturbation: each training window's mel axis warped by a factor from 1 ± this.
    public var frequencyWarp = 0.0
    /// How the loss weighs the classes.
    public var classWeights = ClassWeighting.balanced

    /// `augment: false` turns every augmentation off, these three too; a branch `modalities` leaves out is not
    /// built, so its channels are not read, nor is `selection_window` under `selection: last`: their values then change nothing (no retraining for them, and a
    /// sweep axis over one is refused as unread).
    public var unreadKeys: Set<String> {
        var unread: [CodingKeys] = augment ? [] : [.timeStretch, .mixup, .frequencyWarp]
        if !modalities.contains(.audio) { unread.append(.audioChannels) }
        if !modalities.contains(.faces) { unread.append(.faceChannels) }
        // The last epoch is kept whatever a window of scores says. (Patience is still read: epochs that diverge are not kept.)
        if selection == .last { unread.append(.selectionWindow) }
        return Set(unread.map(\.rawValue))
    }

    /// How often a checkpoint is written: a resumed training continues exactly as an unbroken one, so the
    /// weights do not depend on it.
    public static var executionOnlyKeys: Set<String> { [CodingKeys.checkpointEvery.rawValue] }

    public static let maxBlocks = ModelConfig.Limits.blocks
    public static let maxChannels = ModelConfig.Limits.channels
    public static let maxWindowFrames = ModelConfig.Limits.frames

    public init() {}

    enum CodingKeys: String, CodingKey {
        case modalities, audioChannels = "audio_channels", faceChannels = "face_channels", embedding, recurrent
        case utteranceNorm = "utterance_norm", dropout, epochs, batchSize = "batch_size", learningRate = "learning_rate"
        case weightDecay = "weight_decay", warmupEpochs = "warmup_epochs", clipNorm = "clip_norm"
        case labelSmoothing = "label_smoothing", patience, checkpointEvery = "checkpoint_every", augment
        case speakerNorm = "speaker_norm", selectionWindow = "selection_window", selection, weightAverageEpochs = "weight_average_epochs"
        case windowFrames = "window_frames", windowHopFrames = "window_hop_frames", timeStretch = "time_stretch", mixup
        case frequencyWarp = "frequency_warp", deltas, classWeights = "class_weights"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(&modalities, forKey: .modalities)
        // A set in effect: [faces, audio] is the same model and the same cache key as [audio, faces].
        modalities.sort { $0.rank < $1.rank }
        try c.overwrite(&audioChannels, forKey: .audioChannels)
        try c.overwrite(&faceChannels, forKey: .faceChannels)
        try c.overwrite(&embedding, forKey: .embedding)
        try c.overwrite(&recurrent, forKey: .recurrent)
        try c.overwrite(&utteranceNorm, forKey: .utteranceNorm)
        try c.overwrite(&dropout, forKey: .dropout)
        try c.overwrite(&epochs, forKey: .epochs)
        try c.overwrite(&batchSize, forKey: .batchSize)
        try c.overwrite(&learningRate, forKey: .learningRate)
        try c.overwrite(&weightDecay, forKey: .weightDecay)
        try c.overwrite(&warmupEpochs, forKey: .warmupEpochs)
        try c.overwrite(&clipNorm, forKey: .clipNorm)
        try c.overwrite(&labelSmoothing, forKey: .labelSmoothing)
        try c.overwrite(&patience, forKey: .patience)
        try c.overwrite(&checkpointEvery, forKey: .checkpointEvery)
        try c.overwrite(&augment, forKey: .augment)
        try c.overwrite(&speakerNorm, forKey: .speakerNorm)
        try c.overwrite(&selectionWindow, forKey: .selectionWindow)
        try c.overwrite(&selection, forKey: .selection)
        try c.overwrite(&weightAverageEpochs, forKey: .weightAverageEpochs)
        try c.overwrite(&windowFrames, forKey: .windowFrames)
        try c.overwrite(&windowHopFrames, forKey: .windowHopFrames)
        try c.overwrite(&timeStretch, forKey: .timeStretch)
        try c.overwrite(&mixup, forKey: .mixup)
        try c.overwrite(&frequencyWarp, forKey: .frequencyWarp)
        try c.overwrite(&deltas, forKey: .deltas)
        try c.overwrite(&classWeights, forKey: .classWeights)
    }

    public func validate() throws {
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ allowed: String, bounds: [CodingKeys] = []) throws {
            try InvalidParameter.require(ok, key.rawValue, value, allowed, bounds: bounds.map(\.rawValue))
        }
        try check(!modalities.isEmpty && Set(modalities).count == modalities.count, .modalities,
                  modalities.map(\.rawValue), "a list of audio and/or faces, each once")
        for (key, channels) in [(CodingKeys.audioChannels, audioChannels), (.faceChannels, faceChannels)] {
            try check((1...Self.maxBlocks).contains(channels.count) && channels.allSatisfy { (1...Self.maxChannels).contains($0) },
                      key, channels, "1 to \(Self.maxBlocks) conv blocks, each of 1 to \(Self.maxChannels) channels")
        }
        try check((2...ModelConfig.Limits.embedding).contains(embedding) && embedding % 2 == 0, .embedding, embedding,
                  "an even integer from 2 to \(ModelConfig.Limits.embedding) (the GRU's two directions share it)")
        // The model keeps it as a Float: 0.99999999 would round to 1.
        try check(dropout.isFinite && dropout >= 0 && Float(dropout) < 1, .dropout, dropout, "a number with 0 <= dropout < 1")
        try check((1...10_000).contains(epochs), .epochs, epochs, "an integer from 1 to 10000")
        // A batch of one is skipped (batch norm needs two samples): batch_size 1 would train nothing.
        try check((TrainingConfig.minBatchSize...TrainingConfig.maxBatchSize).contains(batchSize), .batchSize, batchSize,
                  "an integer from \(TrainingConfig.minBatchSize) to \(TrainingConfig.maxBatchSize) (batch norm needs two samples a batch)")
        // Training keeps these as 32-bit floats: 1e-50 would round to 0 and nothing would be learnt.
        try check(learningRate >= 1e-10 && learningRate <= 10, .learningRate, learningRate, "a number from 1e-10 to 10")
        try check(weightDecay.isFinite && weightDecay >= 0 && weightDecay <= 10, .weightDecay, weightDecay, "a number from 0 to 10")
        try check((0...epochs).contains(warmupEpochs), .warmupEpochs, warmupEpochs, "an integer from 0 to epochs (\(epochs))",
                  bounds: [.epochs])
        try check(clipNorm >= 1e-6 && clipNorm <= 1e6, .clipNorm, clipNorm, "a number from 1e-6 to 1e6")
        try check(labelSmoothing >= 0 && Float(labelSmoothing) < 1, .labelSmoothing, labelSmoothing, "a number with 0 <= label_smoothing < 1 as a 32-bit float (at most 0.99999994)")
        try check((1...10_000).contains(patience), .patience, patience, "an integer from 1 to 10000")
        try check((1...10_000).contains(checkpointEvery), .checkpointEvery, checkpointEvery, "an integer from 1 to 10000")
        try check((1...10_000).contains(selectionWindow), .selectionWindow, selectionWindow, "an integer from 1 to 10000")
        try check(weightAverageEpochs.isFinite && weightAverageEpochs >= 0 && weightAverageEpochs <= 10_000, .weightAverageEpochs,
                  weightAverageEpochs, "a number of epochs from 0 (off) to 10000")
        try check((1...Self.maxWindowFrames).contains(windowFrames), .windowFrames, windowFrames, "an integer from 1 to \(Self.maxWindowFrames)")
        try check((1...windowFrames).contains(windowHopFrames), .windowHopFrames, windowHopFrames,
                  "an integer from 1 to window_frames (\(windowFrames)): a longer hop would skip frames", bounds: [.windowFrames])
        try check(timeStretch.isFinite && timeStretch >= 0 && timeStretch <= 0.5, .timeStretch, timeStretch, "a number from 0 to 0.5")
        // Below 0.01 the Gamma draws underflow and Beta(α, α) would not be drawn faithfully.
        try check(mixup.isFinite && (mixup == 0 || (0.01...10).contains(mixup)), .mixup, mixup,
                  "0 (off) or a number from 0.01 to 10 (Beta(α, α)'s α)")
        try check(frequencyWarp.isFinite && frequencyWarp >= 0 && frequencyWarp <= 0.3, .frequencyWarp, frequencyWarp,
                  "a number from 0 (off) to 0.3")
    }

    /// The model's shape before the features fix the input sizes.
    var modelConfig: ModelConfig {
        var config = ModelConfig()
        // A branch that is not built keeps the default channels, as its fingerprint does (`unreadKeys`).
        let defaults = Self()
        config.audioChannels = modalities.contains(.audio) ? audioChannels : defaults.audioChannels
        config.faceChannels = modalities.contains(.faces) ? faceChannels : defaults.faceChannels
        config.embedding = embedding
        config.recurrent = recurrent
        config.dropout = Float(dropout)
        config.frames = windowFrames
        if utteranceNorm { config.utteranceNorm = true }
        if speakerNorm { config.speakerNorm = true }
        if deltas { config.deltas = true }
        return config
    }

    var windowPolicy: WindowPolicy { WindowPolicy(frames: windowFrames, hopFrames: windowHopFrames) }

    var trainingConfig: TrainingConfig {
        var t = TrainingConfig()
        t.epochs = epochs
        t.batchSize = batchSize
        t.learningRate = learningRate
        t.weightDecay = weightDecay
        t.warmupEpochs = warmupEpochs
        t.clipNorm = clipNorm
        t.labelSmoothing = labelSmoothing
        t.patience = patience
        t.checkpointEvery = checkpointEvery
        // A run shorter than the window selects over all of its epochs; `selection: last` reads no window (`unreadKeys`).
        if selection != .last, min(selectionWindow, epochs) > 1 { t.selectionWindow = min(selectionWindow, epochs) }
        if selection != .weightedF1 { t.selection = selection }
        if weightAverageEpochs > 0 { t.weightAverageEpochs = weightAverageEpochs }
        if augment && timeStretch > 0 { t.augmentation.timeStretch = timeStretch }
        if augment && mixup > 0 { t.augmentation.mixup = mixup }
        if augment && frequencyWarp > 0 { t.augmentation.frequencyWarp = frequencyWarp }
        if !augment {
            t.augmentation.noiseProbability = 0; t.augmentation.maxShiftFrames = 0
            t.augmentation.frequencyMasks = 0; t.augmentation.timeMasks = 0
            t.augmentation.faceFlip = false; t.augmentation.brightness = 0; t.augmentation.contrast = 0
            t.augmentation.cropPixels = 0
        }
        return t
    }

    /// Rules across stages, known once the features are read: each 2x2 pool halves the input, so
    /// the conv blocks must leave at least one mel band, one time step and one face pixel.
    func checkFits(_ config: ModelConfig, manifest: String) throws {
        let audioShrink = 1 << audioChannels.count, faceShrink = 1 << faceChannels.count
        if config.uses(.audio), config.nMels < audioShrink || config.frames < audioShrink {
            throw PipelineError.invalidParameter(
                file: manifest, key: "train.audio_channels", value: "\(audioChannels)",
                allowed: "\(Self.blocksText(fitting: min(config.nMels, config.frames))) for \(config.nMels) mel bands × \(config.frames) frames")
        }
        if config.uses(.faces), config.faceSize < faceShrink {
            throw PipelineError.invalidParameter(
                file: manifest, key: "train.face_channels", value: "\(faceChannels)",
                allowed: "\(Self.blocksText(fitting: config.faceSize)) for \(config.faceSize)-pixel crops")
        }
    }

    /// Under a memory budget (`resources.max_memory_mb`), refuses a batch size whose estimated
    /// training memory, on top of what is resident once the features are loaded, exceeds it, and
    /// names the largest batch size that fits.
    /// `config` is the model as built: without a branch that no training clip can feed.
    /// Without a budget, the machine's memory is the budget: a model whose estimate exceeds it would
    /// make the process die allocating, so it is refused as a parameter error instead.
    /// `trainingClips`: the most clips a fold trains on; no batch is larger.
    /// Returns the estimate and the resident memory it was added to.
    @discardableResult
    func checkMemory(_ config: ModelConfig, context: StageContext, trainingClips: Int) throws -> (needed: Int, resident: Int) {
        let resident = ProcessMemory.residentBytesInUse() ?? 0
        let weights = TrainingMemory.parameterCount(config)   // counting builds the model: once for every estimate here
        let needed = TrainingMemory.bytes(config, batchSize: min(batchSize, max(1, trainingClips)), threads: context.threads,
                                          averagingWeights: averagesWeights, weights: weights)
        guard let budget = context.memoryBudget, let budgetMB = context.manifest.resources.maxMemoryMB else {
            try checkMachineMemory(config, context: context, resident: resident, needed: needed, weights: weights)
            return (needed, resident)
        }
        guard resident + needed > budget else {
            let capped = trainingClips < batchSize ? String(format: " (at most %d clips, the largest fold's)", trainingClips) : ""
            let line = String(format: "batch size %d%@: about %.0f MB estimated for training on %.0f MB resident (budget %d MB)",
                              batchSize, capped, ProcessMemory.megabytes(needed), ProcessMemory.megabytes(resident), budgetMB)
            context.logger.info("\(line)")
            // A budget above what the machine has does not make the machine larger.
            try checkMachineMemory(config, context: context, resident: resident, needed: needed, weights: weights)
            return (needed, resident)
        }
        // A budget above what the machine has does not make the machine larger: the size named must fit both.
        let limit = min(budget, ProcessMemory.machineLimitBytes() ?? budget)
        let largest = TrainingMemory.largestBatch(config, threads: context.threads, available: limit - resident, upTo: batchSize,
                                                  averagingWeights: averagesWeights, weights: weights)
        let why = String(format: "about %.0f MB estimated for training plus %.0f MB already resident (features, code) exceeds resources.max_memory_mb = %d (%@); ",
                         ProcessMemory.megabytes(needed), ProcessMemory.megabytes(resident), budgetMB, context.manifest.path)
        let origin = context.parameterOrigins[CodingKeys.batchSize.rawValue] ?? .defaultValue
        throw PipelineError.invalidParameter(
            file: origin.place, key: "train.batch_size", value: "\(batchSize)",
            allowed: why + (largest.map { "the largest batch size that fits is \($0)" }
                            ?? "not even batch size \(TrainingConfig.minBatchSize) fits: raise the budget, or use fewer threads, smaller conv blocks"
                               + (config.uses(.faces) ? ", smaller face crops (faces.frames, faces.size)" : "") + " or a smaller train.embedding"))
    }

    /// Under an address-space limit (`ulimit -v`), refuses a batch size whose estimated training memory, on top of
    /// the address space mapped now, the limit would refuse: an allocation it refuses ends the process (a Swift
    /// trap), where a parameter error names the largest batch size that fits.
    private func checkAddressSpace(_ config: ModelConfig, context: StageContext, needed: Int, weights: Int) throws {
        // The count without its margin: the limit refuses only what is mapped, and with the margin sizes that run were refused.
        let counted = Int(Double(needed) / TrainingMemory.calibration)
        guard let limit = ProcessMemory.addressSpaceLimitBytes(), let mapped = ProcessMemory.addressSpaceBytes(),
              mapped.clampedAdding(counted) > limit else { return }
        let why = String(format: "about %.0f MB counted for training plus the %.0f MB of address space mapped now exceeds the address-space "
                         + "limit (ulimit -v) of %.0f MB; ", ProcessMemory.megabytes(counted), ProcessMemory.megabytes(mapped), ProcessMemory.megabytes(limit))
        // The size named is judged with the margin: what is mapped varies by tens of MB from run to run, and the
        // size named must be accepted by the next one.
        // Less 128 MB: libdispatch's worker threads come and go, each mapping a stack of `ulimit -s`, and a thread may
        // reserve a malloc arena of 64 MB (glibc), so the next run may map more when it checks: measured, 855 to 919 MB
        // from run to run of the same settings, and a size named with 64 MB to spare was refused by the next run.
        let largest = TrainingMemory.largestBatch(config, threads: context.threads, available: limit - mapped - (128 << 20), upTo: batchSize,
                                                  averagingWeights: averagesWeights, weights: weights)
        let origin = context.parameterOrigins[CodingKeys.batchSize.rawValue] ?? .defaultValue
        throw PipelineError.invalidParameter(file: origin.place, key: "train.batch_size", value: "\(batchSize)",
                                             allowed: why + (largest.map { "the largest batch size that fits is \($0)" }
                                                             ?? "not even batch size \(TrainingConfig.minBatchSize) fits: raise the limit"))
    }

    /// Said when training's peak went over the budget all the same (the estimate is a model of the
    /// engine, not a measurement), as the per-source stages say theirs; nil when it kept to it.
    /// The features' bytes are named too: they are held twice while read, before the estimate is made.
    static func overrun(peak: Int?, resources: ResourceSettings, estimated: (needed: Int, resident: Int), batchSize: Int,
                        featureBytes: Int) -> String? {
        guard let budget = resources.maxMemoryBytes, let budgetMB = resources.maxMemoryMB, let peak, peak > budget else { return nil }
        return String(format: "resident memory reached %.0f MB, over resources.max_memory_mb = %d, though batch size %d was estimated at "
                      + "%.0f MB on %.0f MB resident; the features it read are %.0f MB, held twice while read: lower train.batch_size, "
                      + "use coarser features (%@) or raise the budget",
                      ProcessMemory.megabytes(peak), budgetMB, batchSize, ProcessMemory.megabytes(estimated.needed),
                      ProcessMemory.megabytes(estimated.resident), ProcessMemory.megabytes(featureBytes), FeatureSet.sizingKeys)
    }

    private func checkMachineMemory(_ config: ModelConfig, context: StageContext, resident: Int, needed: Int, weights: Int) throws {
        try checkAddressSpace(config, context: context, needed: needed, weights: weights)
        guard let machine = ProcessMemory.machineLimitBytes(), resident + needed > machine else { return }
        let why = String(format: "about %.0f MB estimated for training plus %.0f MB already resident exceeds this machine's %.0f MB; ",
                         ProcessMemory.megabytes(needed), ProcessMemory.megabytes(resident), ProcessMemory.megabytes(machine))
        if let largest = TrainingMemory.largestBatch(config, threads: context.threads, available: machine - resident, upTo: batchSize,
                                                       averagingWeights: averagesWeights, weights: weights) {
            let origin = context.parameterOrigins[CodingKeys.batchSize.rawValue] ?? .defaultValue
            throw PipelineError.invalidParameter(file: origin.place, key: "train.batch_size", value: "\(batchSize)",
                                                 allowed: why + "the largest batch size that fits is \(largest)")
        }
        // The parameters alone (no sample, one thread) do not fit: the model is too wide, whatever its input.
        if resident + TrainingMemory.bytes(config, batchSize: 0, threads: 1, averagingWeights: averagesWeights, weights: weights) > machine {
            let origin = context.parameterOrigins[CodingKeys.embedding.rawValue] ?? .defaultValue
            throw PipelineError.invalidParameter(file: origin.place, key: "train.embedding", value: "\(embedding)",
                                                 allowed: why + "the model's parameters alone do not fit: use a smaller embedding, or a narrower "
                                                     + "last conv block (train.audio_channels, train.face_channels: the GRU and the projections read its width)")
        }
        let key = config.uses(.audio) ? CodingKeys.audioChannels : CodingKeys.faceChannels
        let value = config.uses(.audio) ? "\(audioChannels)" : "\(faceChannels)"
        let origin = context.parameterOrigins[key.rawValue] ?? .defaultValue
        throw PipelineError.invalidParameter(file: origin.place, key: "train.\(key.rawValue)", value: value,
                                             allowed: why + "not even batch size \(TrainingConfig.minBatchSize) fits: use fewer or narrower conv blocks, "
                                                 + "or a shorter train.window_frames (now \(windowFrames))"
                                                 + (config.uses(.faces) ? ", or smaller face crops (faces.frames, faces.size)" : ""))
    }

    private static func blocks(fitting size: Int) -> Int { max(0, Int.bitWidth - 1 - size.leadingZeroBitCount) }

    static func blocksText(fitting size: Int) -> String {
        let count = blocks(fitting: size)
        // The model needs at least one block, which needs at least 2: "at most 0 blocks" would suggest emptying the list.
        return count == 0 ? "no block at all (one needs at least 2)" : "at most \(count) block\(count == 1 ? "" : "s")"
    }
}

extension ModelConfig.Modality: ParameterChoice {}
extension EpochSelection: ParameterChoice {}

/// How the training loss weighs the classes (`train.class_weights`).
public enum ClassWeighting: String, Codable, CaseIterable, Equatable, Sendable, ParameterChoice {
    /// Inverse class frequency in the fold's training clips: RAVDESS has half as many neutral clips,
    /// so each counts twice.
    case balanced
    /// Every clip counts the same.
    case none

    func weights(labels: [Int], classes: Int) -> [Float] {
        switch self {
        case .balanced: return Trainer.classWeights(labels: labels, classes: classes)
        case .none: return [Float](repeating: 1, count: classes)
        }
    }
}

extension TrainedModel {
    /// `model.json` in a fold folder or a run folder, durably; returns the SHA-256 of the bytes written.
    @discardableResult
    func write(to url: URL) throws -> String {
        let data = try jsonData()
        try DurableFile.write(data, to: url.path)
        return SHA256Hex.of(data)
    }
}
