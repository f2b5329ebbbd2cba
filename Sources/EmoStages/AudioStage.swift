import EmoCore
import EmoFeatures
import EmoMedia
import EmoPipeline
import EmoStore
import Foundation

/// Audio: one log-mel tensor per speech source, cached as `[n_mels, frames]` float32 with the number
/// of real (unpadded) frames and the duration.
///
/// A clip's speech comes from its wav when there is one (libsndfile), else from its AV mp4's audio
/// track (libavformat/libavcodec); either is resampled to `sample_rate` with libswresample (soxr).
/// Units are keyed by (source SHA-256, parameters fingerprint): new sources cost one unit each, a
/// changed parameter recomputes the stage. Bad audio becomes a failure row, never a tensor.
public struct AudioStage: Stage {
    public let name = "audio"
    /// 2: resampling at soxr's 20-bit precision, librosa's soxr_hq.
    public let codeVersion = "2"
    /// Records per shard: about 20 MB at the default 64 × 300 float32.
    public let recordsPerShard: Int

    public init(recordsPerShard: Int = 256) { self.recordsPerShard = recordsPerShard }

    public func resolve(params: [String: ParamValue]) throws -> [String: ParamValue] {
        let parameters = try Self.logMelParameters(params)
        return try ParamValue.fromJSON(JSONEncoder().encode(parameters)).objectValue ?? [:]
    }

    public func run(_ context: StageContext) throws -> StageOutcome {
        let parameters = try Self.logMelParameters(context.params)
        let extractor = try LogMelExtractor(parameters)
        let cache = TensorCache(workDirectory: context.workDirectory.root, store: context.store)
        let fingerprint = context.fingerprint.parameters
        let units = try speechUnits(context)
        let pending = try pendingUnits(units, cache: cache, context: context)
        context.logger.info("\(units.count) speech sources: \(pending.count) to compute, \(units.count - pending.count) cached")

        let progress = context.progress(total: pending.count, unit: "files")
        var batch = PublishBatch(maxRecords: recordsPerShard)
        for start in stride(from: 0, to: pending.count, by: context.threads * 8) {
            try context.cancellation.check()
            let chunk = Array(pending[start..<min(start + context.threads * 8, pending.count)])
            let results = ParallelMap.map(chunk, threads: context.threads) { unit -> Result<TensorRecord, Error> in
                let result = Result { try Self.compute(unit, parameters: parameters, extractor: extractor) }
                progress.advance(failed: (try? result.get()) == nil ? 1 : 0)
                return result
            }
            for (unit, result) in zip(chunk, results) {
                switch result {
                case .success(let record): batch.records.append(record)
                case .failure(let error):
                    let reason = SourceExaminer.reason(error, path: unit.path)
                    batch.failures.append(FailureRecord(stage: name, fingerprint: fingerprint, subject: unit.path,
                                                        sha256: unit.sha256, reason: reason, runId: context.runId))
                    context.logger.error("\(unit.path): \(reason)")
                }
            }
            if batch.isDue { try batch.publish(to: cache, stage: name, fingerprint: fingerprint, runId: context.runId) }
        }
        try batch.publish(to: cache, stage: name, fingerprint: fingerprint, runId: context.runId)
        if !pending.isEmpty { progress.finish() }
        return try outcome(units: units, computed: pending.count, cache: cache, fingerprint: fingerprint)
    }

    public func externalChanges(_ context: StageContext) throws -> String? {
        let cache = TensorCache(workDirectory: context.workDirectory.root, store: context.store)
        let units = try speechUnits(context)
        let missing = try pendingUnits(units, cache: cache, context: context).count
        return missing == 0 ? nil : "\(missing) speech source(s) have no cached log-mel (new, or dropped by `cache verify`)"
    }

    // MARK: Work

    /// Each clip's speech source, one unit per distinct content.
    private func speechUnits(_ context: StageContext) throws -> [SpeechUnit] {
        let catalog = ClipCatalog(sources: try context.store.sources(status: .ok, under: context.dataRoot))
        return ClipCatalog.units(catalog.clips.compactMap(\.speech)).map {
            SpeechUnit(path: $0.path, sha256: $0.sha256!, kind: $0.kind ?? "")
        }
    }

    static func compute(_ unit: SpeechUnit, parameters: LogMelParameters, extractor: LogMelExtractor) throws -> TensorRecord {
        let audio = try AudioDecoder.decodeMono(path: unit.path, sampleRate: parameters.sampleRate)
        let mel = try extractor.compute(samples: audio.samples, sampleRate: audio.sampleRate)
        let metadata = ParamValue.object([
            "real_frames": .int(mel.realFrames), "duration_seconds": .double(mel.durationSeconds),
            "source_kind": .string(unit.kind), "source_sample_rate": .int(audio.sourceSampleRate),
            "source_channels": .int(audio.sourceChannels), "pad_value": .double(Double(mel.padValue)),
        ]).canonicalJSON
        return TensorRecord(key: unit.sha256, float32: mel.values, shape: [mel.nMels, mel.frames], metadata: metadata)
    }

    /// Units with neither a cached record nor a recorded failure under these parameters.
    private func pendingUnits(_ units: [SpeechUnit], cache: TensorCache, context: StageContext) throws -> [SpeechUnit] {
        let fingerprint = context.fingerprint.parameters
        if context.forced { return units }
        let done = try cache.keys(stage: name, fingerprint: fingerprint)
        let failed = Set(try context.store.failures(stage: name).filter { $0.fingerprint == fingerprint }.map(\.sha256))
        return units.filter { !done.contains($0.sha256) && !failed.contains($0.sha256) }
    }

    private func outcome(units: [SpeechUnit], computed: Int, cache: TensorCache, fingerprint: String) throws -> StageOutcome {
        let rows = Dictionary(try cache.rows(stage: name, fingerprint: fingerprint).map { ($0.key, $0.crc32c) },
                              uniquingKeysWith: { a, _ in a })
        let failures = try cache.store.failures(stage: name).filter { $0.fingerprint == fingerprint }
        let failedKeys = Set(failures.map(\.sha256))
        let inUse = Set(units.map(\.sha256))
        let lines = inUse.sorted().map { key -> String in
            rows[key].map { "\(key)\tcrc \($0)" } ?? (failedKeys.contains(key) ? "\(key)\tfailed" : "\(key)\tmissing")
        }
        let failedInUse = inUse.intersection(failedKeys).count
        return StageOutcome(outputDigest: SHA256Hex.of(lines.joined(separator: "\n")), unitsDone: computed,
                            unitsSkipped: units.count - computed, unitsFailed: failedInUse,
                            summary: "\(inUse.count - failedInUse) log-mel tensors, \(failedInUse) failed; \(computed) computed now")
    }

    static func logMelParameters(_ params: [String: ParamValue]) throws -> LogMelParameters {
        // `preset` marks a parameter the preset decides; the decoder starts from the preset.
        let explicit = params.filter { $0.value != .string("preset") }
        let json = Data(ParamValue.object(explicit).canonicalJSON.utf8)
        do {
            let parameters = try JSONDecoder().decode(LogMelParameters.self, from: json)
            try parameters.validate()
            return parameters
        } catch let error as FeatureError {
            throw PipelineError.invalidFile("audio parameters: \(error)")
        } catch {
            throw PipelineError.invalidFile("audio parameters: \(error)")
        }
    }
}

/// Finished units waiting to be published as one shard: when it holds `maxRecords`, or a few
/// seconds of work (so a crash loses little), whichever comes first.
struct PublishBatch {
    let maxRecords: Int
    var maxAge: TimeInterval = 3
    var records: [TensorRecord] = []
    var failures: [FailureRecord] = []
    private var started = Date()

    init(maxRecords: Int) { self.maxRecords = maxRecords }

    var isDue: Bool { records.count >= maxRecords || Date().timeIntervalSince(started) >= maxAge }

    mutating func publish(to cache: TensorCache, stage: String, fingerprint: String, runId: String) throws {
        guard !records.isEmpty || !failures.isEmpty else { return }
        try cache.publish(stage: stage, fingerprint: fingerprint, runId: runId, records: records, failures: failures)
        records.removeAll(keepingCapacity: true)
        failures.removeAll()
        started = Date()
    }
}

/// One speech source to turn into a log-mel.
struct SpeechUnit: Equatable, Sendable {
    var path: String
    var sha256: String
    var kind: String
}
