import EmoCore
import Foundation

/// How many units a per-source stage computes at once, and how many finished bytes it may hold
/// before publishing them, so that resident memory stays under the manifest's budget
/// (`resources.max_memory_mb`).
///
/// What one unit needs is learnt as the stage runs, never guessed from the file: the first batch
/// runs one unit alone, and every batch's peak (`RSSSampler`) above the resident memory it started
/// from, divided by the units that ran at once, updates the estimate (the largest seen: one long
/// clip must not be forgotten). Without a budget: the manifest's threads, as before.
///
///     var limit = InFlightLimit(budget: 256 << 20, threads: 4)
///     let workers = limit.workers(resident: ProcessMemory.residentBytes() ?? 0)
struct InFlightLimit {
    /// Bytes; nil: no budget.
    let budget: Int?
    let threads: Int
    /// The largest memory one running unit has needed so far (its working set and its result), bytes.
    private(set) var perUnit: Int?
    /// The highest resident memory sampled during a batch, and what was resident when that batch began, bytes.
    private(set) var highestPeak: Int?
    private(set) var residentBeforePeak = 0

    /// The part of the budget planned for; the rest absorbs what the estimate misses (allocator slack).
    static let plannedFraction = 0.85
    /// Units per worker in a batch without a budget (as before budgets existed).
    static let unitsPerWorker = 4

    init(budget: Int?, threads: Int) {
        self.budget = budget
        self.threads = max(1, threads)
    }

    /// Units to run at once, given the resident memory now.
    func workers(resident: Int) -> Int {
        guard let budget else { return threads }
        guard let perUnit, perUnit > 0 else { return 1 }
        let headroom = Double(budget) * Self.plannedFraction - Double(resident)
        guard headroom > Double(perUnit) else { return 1 }
        return max(1, min(threads, Int(headroom / Double(perUnit))))
    }

    /// Units in the next batch: a budget learns from one unit first, then runs two waves of
    /// `workers` units per batch (each batch's peak refreshes the estimate).
    func batchSize(workers: Int) -> Int {
        guard budget != nil else { return threads * Self.unitsPerWorker }
        return perUnit == nil ? 1 : workers * 2
    }

    /// Learns from a batch: `peak` and `resident` are bytes before and during it, `workers` the units that ran at once.
    mutating func learn(peak: Int?, resident: Int, workers: Int) {
        guard budget != nil, let peak else { return }
        if peak > highestPeak ?? 0 { (highestPeak, residentBeforePeak) = (peak, resident) }
        guard peak > resident else { return }
        let each = (peak - resident) / max(1, workers)
        perUnit = max(perUnit ?? 0, each)
    }

    /// How far the stage went over the budget, in words, or nil when it kept to it. Units run one at a
    /// time when the headroom is short: beyond that nothing can be done but say so.
    var overrun: String? {
        guard let budget, let highestPeak, highestPeak > budget else { return nil }
        return String(format: "resident memory reached %.0f MB, over the memory budget of %.0f MB, with units run one at a time "
                      + "when they did not fit (about %.1f MB per unit; %.0f MB were resident before that batch): raise resources.max_memory_mb",
                      ProcessMemory.megabytes(highestPeak), ProcessMemory.megabytes(budget),
                      ProcessMemory.megabytes(perUnit ?? 0), ProcessMemory.megabytes(residentBeforePeak))
    }

    /// Finished bytes that may wait unpublished. Publishing builds the shard in memory (about twice these
    /// bytes for a moment) while other units compute, so under a budget they stay a small part of the
    /// slack `workers` leaves: a twenty-fourth of it. Without one, 64 MiB: a long
    /// `resources.publish_after_seconds` would otherwise hold up to a shard's 256 records (2 GB peak
    /// measured for 180 large log-mels waiting an hour, against 213 MB publishing every 0.1 s).
    var maxHeldBytes: Int { budget.map { max(1 << 20, $0 / 24) } ?? Self.heldBytesWithoutBudget }
    static let heldBytesWithoutBudget = 64 << 20
}
