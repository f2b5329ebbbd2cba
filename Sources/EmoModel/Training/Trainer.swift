import EmoCore
import EmoNN
import Foundation

/// How to train: AdamW, cosine schedule with warm-up, gradient clipping, class weights, label
/// smoothing, early stopping on a validation score (`selection`), a checkpoint every few epochs.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// The largest batch accepted, in a manifest and in a recorded model.json alike.
    public static let maxBatchSize = 4096
    /// Batch norm needs two samples: a batch of one is skipped.
    public static let minBatchSize = 2

    public var epochs: Int = 60
    public var batchSize: Int = 16
    public var learningRate: Double = 1e-3
    public var weightDecay: Double = 0.01
    public var warmupEpochs: Int = 2
    public var clipNorm: Double = 1.0
    public var labelSmoothing: Double = 0.1
    public var patience: Int = 15
    public var checkpointEvery: Int = 5
    public var augmentation = Augmentation()
    /// The best epoch is the one whose trailing mean of the validation score (`selection`) over this
    /// many epochs is best (nil or 1: that epoch's own score). Optional so older records still load.
    public var selectionWindow: Int?
    /// When set, validation scores, and the fold keeps, an exponential moving average of the weights
    /// (batch-norm statistics included) spanning about this many epochs, instead of the latest weights.
    /// Optional so older records still load (nil: off).
    public var weightAverageEpochs: Double?
    /// What picks the kept epoch (nil: validation weighted F1). Optional so older records still load.
    public var selection: EpochSelection?

    public init() {}
}

/// What the kept epoch is chosen by. Patience counts epochs since the kept one.
public enum EpochSelection: String, Codable, CaseIterable, Equatable, Sendable {
    /// The best trailing mean of validation weighted F1.
    case weightedF1 = "weighted_f1"
    /// The lowest trailing mean of validation loss: smoother than F1 on a few validation actors.
    case validationLoss = "validation_loss"
    /// The last epoch: no early stopping, the schedule runs to its end.
    case last

    /// What the kept epoch's score means, briefly, for the stage's summary line.
    public func describe(window: Int) -> String {
        switch self {
        case .weightedF1: return window > 1 ? "best mean val wF1 over \(window) epochs" : "best val wF1"
        case .validationLoss: return window > 1 ? "lowest mean val loss over \(window) epochs" : "lowest val loss"
        case .last: return "last epoch"
        }
    }

    /// Why the kept epoch was kept, in words, for the report.
    public func explain(window: Int) -> String {
        switch self {
        case .weightedF1: return window > 1 ? "the best mean validation weighted F1 over \(window) epochs ending there" : "the best validation weighted F1"
        case .validationLoss: return window > 1 ? "the lowest mean validation loss over \(window) epochs ending there" : "the lowest validation loss"
        case .last: return "the last epoch"
        }
    }
}

/// What `Trainer.fit` leaves in its folder besides the weights, so a killed run resumes.
public struct TrainingState: Codable, Equatable, Sendable {
    /// The file in a fold folder that says which checkpoint is complete.
    public static let fileName = "state.json"
    public var epochs: [EpochLog] = []
    public var bestEpoch: Int = -1
    /// The kept epoch's selection score, higher is better (nil: none over a whole window yet).
    public var bestScore: Double?
    public var finished = false
    /// The SHA-256 of the checkpoint this state goes with, checked before resuming from it: a damaged
    /// checkpoint would otherwise train on silently to another model (nil in states written before).
    public var checkpointSHA256: String?

    public init() {}

    // snake_case, as every JSON document EmoPipe writes; checkpoints written before spelt two keys in
    // camelCase, and are still resumed.
    enum CodingKeys: String, CodingKey {
        case epochs, bestEpoch = "best_epoch", bestScore = "best_score", finished, checkpointSHA256 = "checkpoint_sha256"
    }
    enum EarlierKeys: String, CodingKey { case bestEpoch, bestScore }

    public init(from decoder: Decoder) throws {
        let fields = try decoder.container(keyedBy: CodingKeys.self), earlier = try decoder.container(keyedBy: EarlierKeys.self)
        epochs = try fields.decodeIfPresent([EpochLog].self, forKey: .epochs) ?? []
        bestEpoch = try fields.decodeIfPresent(Int.self, forKey: .bestEpoch) ?? earlier.decodeIfPresent(Int.self, forKey: .bestEpoch) ?? -1
        bestScore = try fields.decodeIfPresent(Double.self, forKey: .bestScore) ?? earlier.decodeIfPresent(Double.self, forKey: .bestScore)
        finished = try fields.decodeIfPresent(Bool.self, forKey: .finished) ?? false
        checkpointSHA256 = try fields.decodeIfPresent(String.self, forKey: .checkpointSHA256)
        // A state edited by hand is taken only when it could have been written: its epochs numbered 1, 2, …
        // and the kept one among them (resuming does arithmetic on these).
        if let stray = epochs.indices.first(where: { epochs[$0].epoch != $0 + 1 }) {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.epochs], debugDescription:
                "epoch \(stray + 1) is numbered \(epochs[stray].epoch): epochs are numbered 1, 2, … in order"))
        }
        guard bestEpoch == -1 || (bestEpoch >= 1 && bestEpoch <= epochs.count) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.bestEpoch], debugDescription:
                "best_epoch \(bestEpoch) is not one of its \(epochs.count) epochs (nor -1, none kept)"))
        }
        // The score is kept with its epoch: none kept, no score.
        guard bestEpoch != -1 || bestScore == nil else {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.bestScore], debugDescription:
                "best_score \(bestScore ?? 0) beside best_epoch -1 (none kept)"))
        }
    }

    /// A fold folder's `state.json`, or nil when it is missing or unreadable.
    public static func read(inFolder folder: URL) -> TrainingState? {
        (try? RegularFile.read(folder.appendingPathComponent(fileName).path)).flatMap { try? decode($0) }
    }

    /// Reads `state.json` (non-finite losses are written as "NaN"/"Infinity").
    public static func decode(_ data: Data) throws -> TrainingState {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try decoder.decode(TrainingState.self, from: data)
    }
}

/// Thrown by `Trainer.fit` when `stopRequested` said so; the folder holds a checkpoint to resume from.
public struct TrainingStopped: Error, Equatable, Sendable {}

/// Trains one model on one fold. Every random choice (shuffle, augmentation, dropout) is drawn
/// from generators reseeded from (seed, epoch) at the start of each epoch, so a run resumed from
/// an epoch-boundary checkpoint continues exactly as an uninterrupted one.
public final class Trainer {
    public let model: EmotionModel
    public let config: TrainingConfig
    public let standardizer: Standardizer
    public let seed: UInt64
    let classWeights: Tensor
    let optimizer: AdamW
    /// Validation's forward passes, the same code evaluation and predict use.
    var inference: Inference
    /// The moving average of the weights, when `weightAverageEpochs` asks for one.
    var average: WeightAverage?
    public var log: (String) -> Void = { _ in }
    /// The epochs the last `fit` trained (0 for a fold it found finished).
    public private(set) var epochsTrained = 0
    /// Asked before every batch; when it answers true, `fit` writes its last epoch boundary as the
    /// checkpoint and throws `TrainingStopped`. Validation asks it too, before each of its batches.
    public var stopRequested: () -> Bool = { false } {
        didSet { inference.stopRequested = stopRequested }
    }

    public init(model: EmotionModel, config: TrainingConfig, standardizer: Standardizer, classWeights: [Float], seed: UInt64) {
        self.model = model; self.config = config; self.standardizer = standardizer; self.seed = seed
        self.classWeights = Tensor(classWeights)
        inference = Inference(model: model, standardizer: standardizer, batchSize: config.batchSize)
        optimizer = AdamW(model.parameters(), learningRate: Float(config.learningRate),
                          weightDecay: Float(config.weightDecay))
    }

    /// Inverse-frequency class weights, normalised to mean 1 over the classes present.
    public static func classWeights(labels: [Int], classes: Int) -> [Float] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels { counts[label] += 1 }
        let present = counts.filter { $0 > 0 }.count
        let raw = counts.map { $0 > 0 ? Float(labels.count) / Float(present * $0) : 0 }
        return raw
    }

    // MARK: Fitting

    /// Trains until `epochs` or early stopping; resumes from `folder` when it holds a checkpoint.
    /// Each epoch sees one window of every training clip (its start drawn from the epoch's generator);
    /// validation scores whole clips under `policy`, as evaluation will.
    ///
    /// Each epoch's line ends with the time the fold's remaining epochs would take at the mean rate so
    /// far: at most, since early stopping may end it sooner.
    static func remaining(_ epochs: [EpochLog], of total: Int) -> String {
        let left = total - (epochs.last?.epoch ?? 0)
        guard left > 0, !epochs.isEmpty else { return "" }
        let mean = epochs.map(\.seconds).reduce(0, +) / Double(epochs.count)
        return "  ETA ≤ " + ProgressReporter.duration(mean * Double(left))
    }

    @discardableResult
    public func fit(train: [ClipFeatures], validation: [ClipFeatures], policy: WindowPolicy, folder: URL,
                    evaluate: ([Int], [Int]) -> (accuracy: Double, weightedF1: Double)) throws -> TrainingState {
        try Folder.create(folder.path)
        let stepsPerEpoch = (train.count + config.batchSize - 1) / config.batchSize
        average = config.weightAverageEpochs.map { WeightAverage(model: model, epochs: $0, stepsPerEpoch: stepsPerEpoch) }
        var state = try resume(from: folder)
        epochsTrained = 0
        let validating = !validation.isEmpty
        // Without validation clips there is no score to select on: the last epoch is the only choice.
        let selection = validating ? config.selection ?? .weightedF1 : .last
        let schedule = CosineWarmupSchedule(baseLR: Float(config.learningRate), warmupSteps: config.warmupEpochs * stepsPerEpoch,
                                            totalSteps: max(1, config.epochs * stepsPerEpoch))
        var epoch = state.epochs.count
        while epoch < config.epochs && !state.finished {
            let started = Date()
            // Stopped mid-epoch, the trainer goes back to this boundary: every random draw is reseeded
            // per epoch, so a run resumed from it redoes the epoch exactly as an uninterrupted one.
            // Released once the epoch is validated: held with the checkpoint written after it, a large model's
            // weights and moments would be in memory three times.
            var boundary: SafeTensorsFile? = snapshot(step: epoch)
            let rng = RandomGenerator(seed: seed &* 1_000_003 &+ UInt64(epoch))
            model.reseedDropout(seed &+ UInt64(epoch) &* 7_919)
            // A stop in a batch of training or of validation: the epoch is not done until it is validated,
            // so its boundary is the checkpoint and a resumed run does it again.
            func stop(_ doing: String) throws -> TrainingStopped {
                if let boundary { try publish(boundary, state: state, folder: folder) }
                log("stopped \(doing) epoch \(epoch + 1); " + (epoch == 0 ? "the next run starts it again"
                                                               : "checkpoint at the end of epoch \(epoch) written"))
                return TrainingStopped()
            }
            let trained: (loss: Double, accuracy: Double)
            do {
                trained = try trainEpoch(Self.windows(of: train, policy: policy, nMels: model.config.nMels,
                                                      stretch: config.augmentation.timeStretch ?? 0, rng: rng),
                                         rng: rng, schedule: schedule, firstStep: epoch * stepsPerEpoch)
            } catch is TrainingStopped {
                throw try stop("in")
            }
            let (loss, accuracy) = trained
            // Without validation clips the validation figures are NaN.
            let valLoss: Double, predicted: [Int]
            do {
                (valLoss, predicted) = validating ? try withKeptWeights { try predict(validation, policy: policy) } : (.nan, [])
            } catch is InferenceStopped {
                throw try stop("while validating")
            }
            boundary = nil
            let scores = validating ? evaluate(validation.map(\.label), predicted) : (accuracy: .nan, weightedF1: .nan)
            let record = EpochLog(epoch: epoch + 1, trainLoss: loss, trainAccuracy: accuracy, valLoss: valLoss,
                                     valAccuracy: scores.accuracy, valWeightedF1: scores.weightedF1,
                                     learningRate: Double(optimizer.learningRate), seconds: Date().timeIntervalSince(started))
            state.epochs.append(record)
            epochsTrained += 1
            let validated = validating
                ? String(format: "  val loss %.4f  val acc %.3f  val wF1 %.3f", valLoss, scores.accuracy, scores.weightedF1) : ""
            log(String(format: "epoch %d/%d  loss %.4f  acc %.3f%@  lr %.2e  %.1fs%@", record.epoch, config.epochs, loss, accuracy,
                       validated, record.learningRate, record.seconds, Self.remaining(state.epochs, of: config.epochs)))
            let score = Self.selectionScore(state.epochs, window: config.selectionWindow ?? 1, by: selection)
            // Weights holding a NaN or an infinity are never kept: they score nothing.
            let diverged = validating && !valLoss.isFinite
            var finite = true
            let kept = try withKeptWeights { () throws -> Bool in
                finite = Self.allFinite(model)
                guard finite, Self.keeps(score, over: state.bestScore, diverged: diverged, keptAny: state.bestEpoch >= 0) else { return false }
                try Checkpoint.save(to: folder.appendingPathComponent(TrainedModel.Weights.foldBest.rawValue), model: model, step: record.epoch)
                return true
            }
            if kept {
                state.bestScore = score
                state.bestEpoch = record.epoch
            } else if diverged || !finite {
                log("epoch \(record.epoch): its \(finite ? "validation loss is" : "weights are") not finite (training diverged): not kept; "
                    + "lower train.learning_rate (or train.clip_norm)")
            }
            epoch += 1
            // While no epoch is kept (bestEpoch -1), patience counts from epoch 0, not from -1.
            if record.epoch - max(state.bestEpoch, 0) >= config.patience {
                state.finished = true
                log("early stop: no better \(selection.rawValue) for \(config.patience) epochs")
            }
            if epoch >= config.epochs { state.finished = true }
            if state.finished || epoch % config.checkpointEvery == 0 { try checkpoint(state, folder: folder, epoch: epoch) }
        }
        // A state that has every epoch but does not say so (edited by hand) is completed, not left to look partway for ever.
        if !state.finished, epoch >= config.epochs {
            state.finished = true
            try checkpoint(state, folder: folder, epoch: epoch)
        }
        // No epoch left finite weights: a failure, not a trained fold that every later step refuses.
        guard state.bestEpoch >= 0 else {
            throw NNError.diverged("training diverged: no epoch of the \(state.epochs.count) left weights without NaN or infinity "
                + "(train loss \(state.epochs.last.map { String($0.trainLoss) } ?? "?")); lower train.learning_rate (or train.clip_norm)")
        }
        return state
    }

    /// Whether every weight and buffer (batch norm's running statistics) is a finite number.
    static func allFinite(_ model: EmotionModel) -> Bool {
        (model.namedParameters() + model.namedBuffers()).allSatisfy { $0.1.data.allSatisfy(\.isFinite) }
    }

    /// The latest epoch's selection score, higher is better: the mean validation weighted F1 (or minus
    /// the mean validation loss) of the last `window` epochs; nil before `window` epochs. One epoch's
    /// score on a few validation actors is noisy, a short run of good epochs less so. A non-finite
    /// score (a diverged loss) is -infinity: never better than a finite one.
    static func selectionScore(_ epochs: [EpochLog], window: Int, by selection: EpochSelection = .weightedF1) -> Double? {
        let window = max(1, window)
        guard let latest = epochs.last else { return nil }
        if selection == .last { return Double(latest.epoch) }
        guard epochs.count >= window else { return nil }
        let recent = epochs.suffix(window)
        let mean = selection == .weightedF1
            ? recent.reduce(0) { $0 + $1.valWeightedF1 } / Double(window)
            : -recent.reduce(0) { $0 + $1.valLoss } / Double(window)
        return mean.isFinite ? mean : -.infinity
    }

    /// Whether the latest epoch replaces the kept one. Weights whose validation loss diverged are kept
    /// only when nothing else was. Until a whole window has been seen (score nil) the latest epoch is
    /// kept; after that only a better score replaces it.
    static func keeps(_ score: Double?, over best: Double?, diverged: Bool = false, keptAny: Bool = true) -> Bool {
        if diverged { return !keptAny }
        guard let best else { return true }
        guard let score else { return false }
        return score > best
    }

    private func checkpoint(_ state: TrainingState, folder: URL, epoch: Int) throws {
        try publish(snapshot(step: epoch), state: state, folder: folder)
    }

    /// The model, the optimizer and the weight average, held in memory.
    private func snapshot(step: Int) -> SafeTensorsFile {
        var file = Checkpoint.snapshot(model: model, optimizer: optimizer, step: step)
        average?.store(in: &file)
        return file
    }

    /// Runs `body` with the weights the fold keeps in the model: the average when there is one.
    private func withKeptWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let average else { return try body() }
        let latest = average.swapIn()
        defer { average.restore(latest) }
        return try body()
    }

    /// The weights file a checkpoint's state describes, named by its epoch count: a kill while the next
    /// checkpoint is written leaves the previous weights and state together.
    public static func checkpointName(afterEpochs epochs: Int) -> String { "checkpoint-\(epochs).safetensors" }

    /// Writes the weights, then the state that goes with it, then removes older checkpoints.
    private func publish(_ checkpoint: SafeTensorsFile, state: TrainingState, folder: URL) throws {
        let name = Self.checkpointName(afterEpochs: state.epochs.count)
        let weights = folder.appendingPathComponent(name)
        try checkpoint.write(to: weights)
        var state = state
        state.checkpointSHA256 = try SHA256Hex.file(atPath: weights.path).hex
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        // The state file is written after the weights (durably, as they are): it is what says the checkpoint is complete.
        try DurableWrite.write(try encoder.encode(state), to: folder.appendingPathComponent(TrainingState.fileName))
        let stale = (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?
            .filter { $0.hasPrefix("checkpoint-") && $0.hasSuffix(".safetensors") && $0 != name } ?? []
        for file in stale { try? FileManager.default.removeItem(at: folder.appendingPathComponent(file)) }
    }

    private func resume(from folder: URL) throws -> TrainingState {
        guard let state = TrainingState.read(inFolder: folder) else {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent(TrainingState.fileName).path) {
                log("\(folder.appendingPathComponent(TrainingState.fileName).path) cannot be read as a training state: training starts over from epoch 1")
            }
            return TrainingState()
        }
        let weightsURL = folder.appendingPathComponent(Self.checkpointName(afterEpochs: state.epochs.count))
        // Weights the state does not describe (missing or damaged): start over rather than load them
        // (the model must keep its initial values), and say so.
        func startOver(_ why: String) -> TrainingState {
            log("\(weightsURL.lastPathComponent) \(why): training starts over from epoch 1")
            return TrainingState()
        }
        if let recorded = state.checkpointSHA256 {
            guard let actual = try? SHA256Hex.file(atPath: weightsURL.path).hex else {
                return startOver(FileManager.default.fileExists(atPath: weightsURL.path) ? "cannot be read" : "is missing")
            }
            guard actual == recorded else { return startOver("is not the checkpoint state.json recorded (its SHA-256 differs: damaged since)") }
        }
        guard let written = try? SafeTensorsFile.read(from: weightsURL, atMost: Checkpoint.maximumBytes(model: model, trainingState: true)) else {
            return startOver(FileManager.default.fileExists(atPath: weightsURL.path) ? "is damaged or cut short" : "is missing")
        }
        guard written.integers["train.step"]?.first == Int64(state.epochs.count) else {
            return startOver("is not of the epoch state.json says (\(state.epochs.count))")
        }
        // Checked before any weight is loaded: a refusal halfway would leave the model neither initial nor resumed.
        guard let steps = written.integers["optimizer.step"]?.first, (0...Int64(AdamW.maximumStepCount)).contains(steps) else {
            return startOver("has no optimizer step count from 0 to 2^24 (damaged or edited)")
        }
        let step = try Checkpoint.load(from: weightsURL, model: model, optimizer: optimizer)
        if let average {
            // A checkpoint written without the average (it was off) restarts it from these weights.
            if !average.load(from: written) { average.reset() }
        }
        // Finished before its last epoch only by an early stop: a state that says otherwise (edited) goes on training.
        var resumed = state
        if resumed.finished, resumed.epochs.count < config.epochs, resumed.epochs.count - max(resumed.bestEpoch, 0) < config.patience {
            log("state.json says finished after \(resumed.epochs.count) of \(config.epochs) epochs, with no early stop "
                + "(patience \(config.patience), kept epoch \(resumed.bestEpoch)): training goes on")
            resumed.finished = false
        }
        if resumed.finished {
            log(resumed.bestEpoch >= 0 ? "trained before under these settings (\(step) epochs, epoch \(resumed.bestEpoch) kept): nothing to train"
                : "trained before under these settings (\(step) epochs), with no epoch kept: nothing to train")
        } else {
            // Stopped in its first epoch, a fold kept only its starting weights: it starts over, from the same state.
            log(step == 0 ? "resuming from its start (stopped before epoch 1 finished)" : "resuming after epoch \(step)")
        }
        return resumed
    }

    // MARK: Epochs

    func trainEpoch(_ samples: [Sample], rng: RandomGenerator, schedule: CosineWarmupSchedule, firstStep: Int) throws -> (Double, Double) {
        model.train()
        var order = Array(samples.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var totalLoss = 0.0, correct = 0, step = firstStep
        for start in stride(from: 0, to: order.count, by: config.batchSize) {
            if stopRequested() { throw TrainingStopped() }
            let batch = order[start..<min(start + config.batchSize, order.count)].map { samples[$0] }
            guard batch.count > 1 else { continue }   // batch norm needs two samples
            var (input, labels) = try makeInput(batch, augmentWith: rng)
            // Drawn only when asked for, so runs without mixup keep their draws.
            let mixup = config.augmentation.mixup.flatMap { $0 > 0 ? Mixup(alpha: $0, count: batch.count, rng: rng) : nil }
            if let mixup { input = try mixup.mix(input) }
            optimizer.learningRate = schedule.learningRate(at: step)
            model.zeroGrad()
            let logits = try model(input)
            let smoothing = Float(config.labelSmoothing)
            let loss = try mixup?.loss(logits, targets: labels, weight: classWeights, labelSmoothing: smoothing)
                ?? Losses.crossEntropy(logits, targets: labels, weight: classWeights, labelSmoothing: smoothing)
            try loss.backward()
            _ = clipGradNorm(model.parameters(), maxNorm: Float(config.clipNorm))
            optimizer.step()
            average?.update(step: step)
            totalLoss += Double(loss.item) * Double(batch.count)
            correct += zip(try logits.argmaxLastAxis(), labels).filter { $0 == $1 }.count
            step += 1
        }
        // No batch of two: nothing was learnt, which must not pass for a trained epoch.
        guard step > firstStep else {
            throw NNError.invalidArgument("\(samples.count) training sample(s) make no batch of two, which batch norm needs: nothing would be learnt")
        }
        return (totalLoss / Double(samples.count), Double(correct) / Double(samples.count))
    }

    /// Mean loss and the predicted class of each clip, by the same inference as after training.
    func predict(_ clips: [ClipFeatures], policy: WindowPolicy) throws -> (loss: Double, predicted: [Int]) {
        let (loss, probabilities) = try inference.evaluateClips(clips, policy: policy)
        return (loss, probabilities.map(Inference.argmax))
    }

    /// One window of each clip, at a start drawn from `rng` (in clip order, before the shuffle); with
    /// `stretch` > 0, read from a stretch of the clip (1 ± stretch) × the window's length.
    static func windows(of clips: [ClipFeatures], policy: WindowPolicy, nMels: Int, stretch: Double = 0,
                        rng: RandomGenerator) -> [Sample] {
        clips.map { clip in
            // The stretch factor is drawn only when asked for, so runs without it keep their draws.
            let source = stretch > 0
                ? max(1, Int((Double(policy.frames) * (1 + (Double(rng.uniform()) * 2 - 1) * stretch)).rounded()))
                : policy.frames
            let start = WindowPolicy.randomStart(of: source, realFrames: clip.melFrames, draw: rng.next())
            return clip.stretchedWindow(start: start, source: source, frames: policy.frames, nMels: nMels)
        }
    }

    /// Standardised, augmented tensors for a training batch, with its labels.
    func makeInput(_ batch: [Sample], augmentWith rng: RandomGenerator) throws -> (ModelInput, [Int]) {
        (try inference.encoder.encode(batch, augmentation: config.augmentation, rng: rng), batch.map(\.label))
    }
}

