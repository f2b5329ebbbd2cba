import EmoCore
import EmoFeatures
import EmoMedia
import EmoPipeline
import EmoStore
import Foundation

/// One source a per-source stage turns into one cached record.
struct SourceUnit: Equatable, Sendable {
    var path: String
    var sha256: String
    var kind: String
    /// The size ingest recorded: a file of another size has changed without being hashed again.
    var size: Int64

    init(_ source: SourceRecord) {
        path = source.path; sha256 = source.sha256 ?? ""; kind = source.kind ?? ""
        size = source.size
    }

    /// How the file on disk differs from what ingest recorded, or nil when its bytes still hash to
    /// ingest's SHA-256. The bytes are hashed, not only stat'ed: a file rewritten to the same size
    /// with its mtime put back would otherwise have its new features cached under the old content's
    /// hash, and every later run would read them.
    func changeSinceIngest() -> (change: String?, seen: FileState?) {
        guard let before = FileState(path) else { return ("no longer readable (\(String(cString: strerror(errno))))", nil) }
        if before.size != size { return ("now \(before.size) bytes where ingest recorded \(size)", before) }
        do {
            return (try SHA256Hex.file(atPath: path).hex == sha256 ? nil : "its bytes changed after ingest hashed them", before)
        } catch {
            return ("no longer readable (\(EmoError.reason(of: error)))", before)
        }
    }
}

/// A source whose file changed after ingest hashed it: its features would be cached under a hash that
/// is not theirs, so it is left for the next ingest, neither computed nor recorded as failed.
struct SourceChangedSinceIngest: Error {
    let path: String
    let change: String
}

/// The machinery per-source stages (audio, faces) share: which units still need work (no cached
/// record and no recorded failure under the stage's parameters fingerprint), computing them on
/// the manifest's threads, publishing finished batches as shards with their failure rows, and the
/// output digest of the records in use.
struct PerSourceWork {
    let context: StageContext
    let noun: String
    var recordsPerShard = 256

    var stage: String { context.fingerprint.stage }
    var fingerprint: String { context.fingerprint.parameters }
    var cache: TensorCache { TensorCache(workspace: context.workspace, store: context.store) }

    /// Units with neither a cached record nor a recorded failure under these parameters. A record
    /// whose shard file is gone counts as missing: computed again, its new row replaces the old.
    /// `unsound`: `recordsInUnsoundShards` when the caller has it already.
    func pending(_ units: [SourceUnit], unsound: [String: Set<String>]? = nil, failed: Set<String>? = nil) throws -> [SourceUnit] {
        if context.forced { return units }
        let cache = self.cache
        let done = try cache.keys(stage: stage, fingerprint: fingerprint)
            .subtracting(try (unsound ?? cache.recordsInUnsoundShards(stage: stage, fingerprint: fingerprint)).values.joined())
        let failed = try failed ?? failedKeys()
        return units.filter { !done.contains($0.sha256) && !failed.contains($0.sha256) }
    }

    /// Why the stage is stale although its fingerprint is unchanged, or nil.
    /// Units a run would compute: the missing ones, or all when the stage is forced.
    func plannedCount(_ units: [SourceUnit]) throws -> Int {
        context.forced ? units.count : try pending(units).count
    }

    func missingReason(_ units: [SourceUnit]) throws -> String? {
        let missing = try pending(units).count
        return missing == 0 ? nil : "\(missing) source(s) have no cached \(noun) (new, dropped by `cache verify`, or their shard file is gone or of another size than written)"
    }

    func run(_ units: [SourceUnit], compute: @escaping (SourceUnit) throws -> TensorRecord) throws -> StageOutcome {
        let unsound = context.forced ? [:] : try cache.recordsInUnsoundShards(stage: stage, fingerprint: fingerprint)
        let failed = context.forced ? [] : try failedKeys()
        let pending = try self.pending(units, unsound: unsound, failed: failed)
        for (shard, keys) in unsound.sorted(by: { $0.key < $1.key }) {
            context.logger.warning("\(shard): gone or not of the size it was written at: its \(keys.count) record(s) are not trusted; those this run needs are computed again")
        }
        // A unit left out for its recorded failure is not one with a cached record.
        let pendingKeys = Set(pending.map(\.sha256))
        let failedBefore = units.filter { !pendingKeys.contains($0.sha256) && failed.contains($0.sha256) }.count
        // Units are contents: files with the same bytes are computed once.
        let plan = "\(units.count) distinct source contents: \(pending.count) to compute, \(units.count - pending.count - failedBefore) cached"
            + (failedBefore > 0 ? ", \(failedBefore) failed before (not tried again: --force \(stage) tries them)" : "")
        context.logger.info("\(plan)")
        let progress = context.progress(total: pending.count, unit: "files")
        var limit = InFlightLimit(budget: context.memoryBudget, threads: context.threads)
        var batch = PublishBatch(maxRecords: recordsPerShard)
        batch.maxBytes = limit.maxHeldBytes
        batch.maxAge = context.manifest.resources.publishAfterSeconds
        let collector = FinishedUnits(batch: batch, work: self)
        var start = 0
        // The open files running out ends the loop like a stop; what finished is published below.
        while start < pending.count && !context.cancellation.isCancelled && collector.ranOut == nil {
            let resident = ProcessMemory.residentBytes() ?? 0
            let workers = limit.workers(resident: resident)
            let end = min(start + limit.batchSize(workers: workers), pending.count)
            let chunk = Array(pending[start..<end])
            start = end
            // Sampled only under a budget: VmHWM belongs to the stage's own measurement.
            let sampler = limit.budget == nil ? nil : RSSSampler()
            // Each unit is taken as it finishes, and published once due, also while a slow one is still
            // being computed: a kill then loses at most a few seconds of finished work.
            // (The computing stays on this thread: libdispatch runs a parallel map started from one of its
            // own busy pool threads one item at a time.)
            let flusher = Repeating(every: min(0.5, batch.maxAge / 2)) { collector.publishIfDue() }
            _ = ParallelMap.map(chunk, threads: workers) { unit in
                guard !collector.hasFailed else { return }   // a publish failed (disk full), or the open files ran out: the stage ends after this chunk
                let result = Result { try Self.computeIfUnchanged(unit, compute) }
                switch result {
                case .success: progress.advance()
                case .failure(let error) where Self.wasStopped(error) || Self.ranOutOfFiles(error): break  // not done, not failed
                case .failure(is SourceChangedSinceIngest): progress.advance()
                case .failure: progress.advance(failed: 1)
                }
                collector.take(unit, result)
            }
            flusher.stop()
            limit.learn(peak: sampler?.stop(), resident: resident, workers: min(workers, chunk.count))
            try collector.rethrowPublishError()
            // Under a budget, what the batch freed goes back to the kernel before the next one is planned.
            if limit.budget != nil { ProcessMemory.releaseFreedMemory() }
        }
        // What was computed before an interrupt is kept, and the progress line ends before the run says why it stopped.
        try collector.publishAll()
        if !pending.isEmpty { progress.finish() }
        if let ranOut = collector.ranOut { throw ranOut }
        try context.cancellation.check()
        let changed = collector.changed.sorted { $0.path < $1.path }   // finishing order is timing's
        if let first = changed.first {
            // A change that kept size and mtime would pass the next ingest unseen: it is told to read these.
            // The run goes on without them (their clips are left out downstream), and its exit status says so.
            try context.store.requireRereading(paths: changed.map(\.path))
            let message = "\(changed.count) source(s) changed on disk after ingest hashed them, so "
                + "their \(noun) were not computed (\(first.path): \(first.change)); the next `emopipe run` "
                + "(without --only) reads them again"
            context.logger.warning("\(message)")
        }
        if let perUnit = limit.perUnit, let budget = limit.budget {
            let line = String(format: "memory budget %.0f MB: about %.1f MB per unit in flight",
                              ProcessMemory.megabytes(budget), ProcessMemory.megabytes(perUnit))
            context.logger.info("\(line)")
        }
        if let overrun = limit.overrun { context.logger.warning("\(overrun)") }
        return try outcome(units: units, computed: pending.count, changed: changed.count)
    }

    /// A finished unit's record, failure row or change notice, into `batch` (under the collector's lock).
    fileprivate func file(_ unit: SourceUnit, _ result: Result<TensorRecord, Error>, into batch: inout PublishBatch,
                          changed: inout [SourceChangedSinceIngest], ranOut: inout OpenFilesRanOut?) {
        switch result {
        case .success(let record): batch.append(record)
        case .failure(let error) where Self.wasStopped(error):
            return  // interrupted, not failed: computed again by the next run
        case .failure(let error) where Self.ranOutOfFiles(error):
            let reason = (error as? SourceChangedSinceIngest)?.change ?? SourceExaminer.reason(error, path: unit.path)
            ranOut = ranOut ?? OpenFilesRanOut(path: unit.path, reason: reason)
        case .failure(let error as SourceChangedSinceIngest):
            changed.append(error)
            context.logger.error("\(error.path): \(error.change); not computed (run ingest again)")
        case .failure(let error):
            let reason = SourceExaminer.reason(error, path: unit.path)
            batch.append(FailureRecord(stage: stage, fingerprint: fingerprint, subject: unit.path,
                                       sha256: unit.sha256, reason: reason, runId: context.runId))
            context.logger.error("\(unit.path): \(reason)")
        }
    }

    /// One cache for the whole run: it numbers the run's shards.
    fileprivate func publish(_ batch: inout PublishBatch, to cache: TensorCache) throws {
        try batch.publish(to: cache, stage: stage, fingerprint: fingerprint, runId: context.runId)
    }

    /// Computes a unit only from the file ingest hashed: checked before decoding and again after, so
    /// a file replaced meanwhile is caught too.
    static func computeIfUnchanged(_ unit: SourceUnit, _ compute: (SourceUnit) throws -> TensorRecord) throws -> TensorRecord {
        let (change, seen) = unit.changeSinceIngest()
        if let change { throw SourceChangedSinceIngest(path: unit.path, change: change) }
        let result = Result { try compute(unit) }
        // Touched while it was read, its result (a record or a failure) is not the ingested content's
        // for certain, even when the bytes are the ingested ones again by now: what was decoded may have
        // been other bytes. Left for the next run, as a file changed before.
        if FileState(unit.path) != seen {
            throw SourceChangedSinceIngest(path: unit.path, change: unit.changeSinceIngest().change ?? Self.touchedWhileRead)
        }
        return try result.get()
    }

    static let touchedWhileRead = "it changed on disk while it was being read (written, replaced, or its metadata changed; "
        + "its bytes hash as ingest recorded again, but those read may have been others)"

    /// Whether a unit's error says its work was stopped on request (the run's `StopCheck`).
    static func wasStopped(_ error: Error) -> Bool { StopCheck.endedWork(error) }

    /// Whether a unit's file could not be read because the open files ran out (not the file's fault).
    static func ranOutOfFiles(_ error: Error) -> Bool {
        OpenFileLimit.ranOut((error as? SourceChangedSinceIngest)?.change ?? "\(error)")
    }

    /// Asks a unit's long work to stop when the run is interrupted.
    var stopCheck: StopCheck {
        let cancellation = context.cancellation
        return StopCheck { cancellation.isCancelled }
    }

    /// Failures for lack of open files (recorded by an emopipe before 2026-12-03) are the machine's: not trusted.
    /// A unit with a record under these parameters is not failed, whatever older rows say (a work
    /// directory from before failures were dropped on success, or a merged worker's rows).
    private func failedKeys() throws -> Set<String> {
        Set(try context.store.failures(stage: stage).filter { $0.fingerprint == fingerprint && !OpenFileLimit.ranOut($0.reason) }.map(\.sha256))
            .subtracting(try cache.keys(stage: stage, fingerprint: fingerprint))
    }

    /// The digest of what downstream stages read: each unit's record CRC, or that it failed.
    /// `changed`: units left out because their file changed after ingest; counted as failed in this
    /// run's status, though not recorded as the old content's failure.
    private func outcome(units: [SourceUnit], computed: Int, changed: Int = 0) throws -> StageOutcome {
        let crcs = Dictionary(try cache.rows(stage: stage, fingerprint: fingerprint).map { ($0.key, $0.crc32c) },
                              uniquingKeysWith: { a, _ in a })
        let failed = try failedKeys()
        let inUse = Set(units.map(\.sha256))
        let lines = inUse.sorted().map { key -> String in
            crcs[key].map { "\(key)\tcrc \($0)" } ?? (failed.contains(key) ? "\(key)\tfailed" : "\(key)\tmissing")
        }
        let failedInUse = inUse.intersection(failed).count
        return StageOutcome(outputDigest: SHA256Hex.of(lines.joined(separator: "\n")), unitsDone: computed,
                            unitsSkipped: units.count - computed, unitsFailed: failedInUse + changed,
                            summary: "\(inUse.filter { crcs[$0] != nil }.count) \(noun), \(failedInUse) failed"
                                + (changed > 0 ? ", \(changed) changed on disk since ingest (read again next run)" : "")
                                + "; \(computed - changed) computed now")
    }
}

/// The finished units of a stage's run, taken from any worker thread as each finishes, and published
/// as shards when due: by a finishing unit, or by the waiting thread when a slow unit holds up the rest.
/// Records are the same whatever the timing; only how they are cut into shards may differ.
private final class FinishedUnits: @unchecked Sendable {
    private let lock = NSLock()
    private var batch: PublishBatch
    private var changedSources: [SourceChangedSinceIngest] = []
    private var publishError: Error?
    private var firstRanOut: OpenFilesRanOut?
    private let work: PerSourceWork
    private let cache: TensorCache

    init(batch: PublishBatch, work: PerSourceWork) { self.batch = batch; self.work = work; cache = work.cache }

    var changed: [SourceChangedSinceIngest] { locked { changedSources } }

    /// The first unit the open-file limit kept unread.
    var ranOut: OpenFilesRanOut? { locked { firstRanOut } }

    func take(_ unit: SourceUnit, _ result: Result<TensorRecord, Error>) {
        locked {
            work.file(unit, result, into: &batch, changed: &changedSources, ranOut: &firstRanOut)
            publishLocked(onlyIfDue: true)
        }
    }

    func publishIfDue() { locked { publishLocked(onlyIfDue: true) } }

    /// Publishes what is left; throws the first publishing error met on the way.
    func publishAll() throws {
        try locked {
            if let publishError { throw publishError }
            try work.publish(&batch, to: cache)
        }
    }

    func rethrowPublishError() throws { try locked { if let publishError { throw publishError } } }

    var hasFailed: Bool { locked { publishError != nil || firstRanOut != nil } }

    /// A failed publish (disk full) stops further publishing; the error ends the stage after the chunk.
    private func publishLocked(onlyIfDue: Bool) {
        guard publishError == nil, !onlyIfDue || batch.isDue else { return }
        do { try work.publish(&batch, to: cache) } catch { publishError = error }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// Calls `body` every `interval` seconds on a thread of its own until `stop()`, which waits for a call
/// under way to end. When no thread can be made (`ulimit -u`), nothing repeats: what is due is then
/// published as each batch ends, as without the timer.
private final class Repeating: @unchecked Sendable {
    private let stopRequest = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let started: Bool

    init(every interval: TimeInterval, _ body: @escaping @Sendable () -> Void) {
        started = NativeThread.start { [stopRequest, stopped] in
            while stopRequest.wait(timeout: .now() + interval) == .timedOut { body() }
            stopped.signal()
        }
    }

    func stop() {
        guard started else { return }
        stopRequest.signal()
        stopped.wait()
    }
}

/// Finished units waiting to be published as one shard: when it holds `maxRecords`, or `maxBytes`
/// of tensors (under a memory budget), or when its oldest unit finished `maxAge` seconds ago
/// (`resources.publish_after_seconds`, so a crash loses little), whichever comes first.
struct PublishBatch {
    let maxRecords: Int
    var maxAge = ResourceSettings.defaultPublishAfterSeconds
    var maxBytes: Int?
    private(set) var records: [TensorRecord] = []
    private(set) var failures: [FailureRecord] = []
    /// Tensor bytes held in `records`.
    private(set) var bytes = 0
    /// When the oldest unit waiting here finished; nil when nothing waits.
    private var oldest: Date?

    init(maxRecords: Int) { self.maxRecords = maxRecords }

    mutating func append(_ record: TensorRecord) {
        oldest = oldest ?? Date()
        records.append(record)
        bytes += record.data.count
    }

    mutating func append(_ failure: FailureRecord) {
        oldest = oldest ?? Date()
        failures.append(failure)
    }

    var isDue: Bool {
        guard let oldest else { return false }
        return records.count >= maxRecords || Date().timeIntervalSince(oldest) >= maxAge || maxBytes.map { bytes >= $0 } == true
    }

    mutating func publish(to cache: TensorCache, stage: String, fingerprint: String, runId: String) throws {
        guard !records.isEmpty || !failures.isEmpty else { return }
        // Units arrive in finishing order; sorted, a shard's bytes depend only on which units it holds.
        records.sort { $0.key < $1.key }
        failures.sort { ($0.subject, $0.sha256) < ($1.subject, $1.sha256) }
        try cache.publish(stage: stage, fingerprint: fingerprint, runId: runId, records: records, failures: failures)
        records.removeAll(keepingCapacity: true)
        bytes = 0
        failures.removeAll()
        oldest = nil
    }
}
