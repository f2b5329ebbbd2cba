import EmoCore
import Foundation

/// A manifest's `sweep:` block: which metric to optimise, in which direction, and the trials to run
/// (a grid, random draws, or random draws thinned by successive halving).
///
///     sweep:
///       metric: weighted_f1
///       direction: maximize
///       strategy: grid
///       grid: {train.learning_rate: [0.001, 0.003], train.dropout: [0.1, 0.3]}
public struct SweepSpec: Equatable, Sendable {
    public enum Direction: String, CaseIterable, Sendable { case maximize, minimize }
    public enum Strategy: String, CaseIterable, Sendable { case grid, random, halving }

    public var metric: String
    public var direction: Direction
    public var strategy: Strategy
    /// Grid axes, sorted by key; the first varies slowest.
    public var grid: [GridAxis]
    public var random: RandomSearch?
    public var halving: Halving?

    /// The most trials one sweep may plan: a typo in a grid must not plan a billion runs.
    public static let maxTrials = 10_000

    /// One `stage.key` of the grid and the values it takes.
    public struct GridAxis: Equatable, Sendable {
        public var key: SweepKey
        public var values: [ParamValue]
    }

    /// `random: {n_trials, seed, params: {stage.key: {distribution, ...}}}`.
    public struct RandomSearch: Equatable, Sendable {
        public var trials: Int
        public var seed: UInt64
        /// Sorted by key, so the draws do not depend on the file's order.
        public var params: [(key: SweepKey, distribution: Distribution)]

        public static func == (a: RandomSearch, b: RandomSearch) -> Bool {
            a.trials == b.trials && a.seed == b.seed && a.params.map(\.key) == b.params.map(\.key)
                && a.params.map(\.distribution) == b.params.map(\.distribution)
        }
    }

    /// `halving: {budgets: [2, 4, 8]}`: every candidate trains for the first budget of epochs, the
    /// better half goes on to the next budget, and so on; the last budget is the full training.
    public struct Halving: Equatable, Sendable {
        public var budgets: [Int]
    }

    public enum Distribution: Equatable, Sendable {
        case uniform(low: Double, high: Double)
        case logUniform(low: Double, high: Double)
        case intUniform(low: Int, high: Int)
        case choice([ParamValue])
    }
}

/// A `stage.key` name, as `--set` takes it.
public struct SweepKey: Equatable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var stage: String
    public var key: String

    public init(parsing text: String, fail: (String) -> PipelineError) throws {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty }) else {
            throw fail("sweep key '\(text.shownKey)': expected stage.key, as --set takes it (e.g. train.learning_rate)")
        }
        stage = String(parts[0]); key = String(parts[1])
    }

    public var description: String { "\(stage).\(key)" }
    public static func < (a: SweepKey, b: SweepKey) -> Bool { a.description < b.description }
}

// MARK: Reading the block

extension SweepSpec {
    static let knownFields = ["direction", "grid", "halving", "metric", "random", "strategy"]

    /// How a refusal of a required field begins: its value when one was given, else that it is missing.
    static func stated(_ field: String, _ value: ParamValue?) -> String {
        value.map { "\(field) = \($0.shown)" } ?? "\(field) is missing"
    }

    /// Reads the block; `fail` names the manifest in the message.
    init(_ value: ParamValue, fail: (String) -> PipelineError) throws {
        guard let fields = value.objectValue else { throw fail("'sweep' must be a mapping {metric, direction, strategy, grid, random, halving}") }
        if let unknown = fields.keys.sorted().first(where: { !Self.knownFields.contains($0) }) {
            throw fail("sweep: unknown field '\(unknown.shownKey)' (known: \(Self.knownFields.joined(separator: ", ")))")
        }
        guard let metric = fields["metric"]?.stringValue, !metric.isEmpty else {
            throw fail("\(SweepSpec.stated("sweep.metric", fields["metric"])): expected the name of a scalar of metrics.json (e.g. weighted_f1)")
        }
        // A count or a setting (`count`, `confidence_interval.level`) is the same for every trial: ranking on it picks at random.
        guard NightlyReport.Direction(metric: metric) != .neither else {
            throw fail("sweep.metric = \(ParamValue.string(metric).shown) is a count or a setting of metrics.json, the same for every trial, "
                       + "not a score to rank them on (e.g. weighted_f1, uar, macro_f1)")
        }
        self.metric = metric
        direction = try Self.choice(fields["direction"], default: .maximize, field: "sweep.direction", fail: fail)
        strategy = try Self.choice(fields["strategy"], default: .grid, field: "sweep.strategy", fail: fail)
        grid = try fields["grid"].map { try Self.gridAxes($0, fail: fail) } ?? []
        random = try fields["random"].map { try RandomSearch($0, fail: fail) }
        halving = try fields["halving"].map { try Halving($0, fail: fail) }
        try checkStrategyHasWhatItNeeds(fail: fail)
        // Trials are compared on their metrics, which only means something on the same test clips.
        let testSet = ["folds", "test_fold", "test_actors", "actors"]
        if let split = sweptKeys.first(where: { $0.key.stage == StageName.split.rawValue && testSet.contains($0.key.key) }) {
            throw fail("\(split.block) sweeps \(split.key): each trial would be scored on other clips, so their metrics do not compare; "
                       + "keep the split fixed in the sweep (cross-validate with split.test_fold: all)")
        }
    }

    private static func choice<T: RawRepresentable & CaseIterable>(_ value: ParamValue?, default fallback: T, field: String,
                                                                   fail: (String) -> PipelineError) throws -> T where T.RawValue == String {
        guard let value else { return fallback }
        guard let text = value.stringValue, let chosen = T(rawValue: text) else {
            throw fail("\(field) = \(value): expected one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return chosen
    }

    private static func gridAxes(_ value: ParamValue, fail: (String) -> PipelineError) throws -> [GridAxis] {
        guard let fields = value.objectValue, !fields.isEmpty else { throw fail("sweep.grid must map stage.key to a list of values") }
        let axes = try fields.keys.sorted().map { name in
            guard let values = fields[name]?.arrayValue, !values.isEmpty else {
                throw fail("sweep.grid.\(name) must be a non-empty list of values")
            }
            // The same value twice (0.1 and 1.0e-1 too) would plan a trial that only repeats another.
            var seen = Set<String>()
            func identity(_ value: ParamValue) -> String {
                if let whole = value.intValue { return "whole \(whole)" }
                return value.doubleValue.map { "number \($0)" } ?? value.canonicalJSON
            }
            for value in values where !seen.insert(identity(value)).inserted {
                throw fail("sweep.grid.\(name) lists \(value.shown) more than once")
            }
            return GridAxis(key: try SweepKey(parsing: name, fail: fail), values: values)
        }
        // Refused here, where the message can name the manifest; counted in Double so it cannot overflow.
        guard axes.reduce(1.0, { $0 * Double($1.values.count) }) <= Double(maxTrials) else {
            throw fail("sweep.grid has \(axes.map { String($0.values.count) }.joined(separator: " × ")) trials; at most \(maxTrials)")
        }
        return axes
    }

    /// The keys every trial sets, and the block that sets each.
    public var sweptKeys: [(key: SweepKey, block: String)] {
        switch strategy {
        case .grid: return grid.map { ($0.key, "sweep.grid") }
        case .random: return (random?.params ?? []).map { ($0.key, "sweep.random.params") }
        case .halving:
            let candidates = random.map { $0.params.map { ($0.key, "sweep.random.params") } } ?? grid.map { ($0.key, "sweep.grid") }
            return candidates + [(SweepKey.epochs, "sweep.halving.budgets")]
        }
    }

    private func checkStrategyHasWhatItNeeds(fail: (String) -> PipelineError) throws {
        // A block the strategy does not read would look like part of the sweep and change nothing.
        let unused: [String]
        switch strategy {
        case .grid: unused = (random == nil ? [] : ["random"]) + (halving == nil ? [] : ["halving"])
        case .random: unused = (grid.isEmpty ? [] : ["grid"]) + (halving == nil ? [] : ["halving"])
        case .halving: unused = random != nil && !grid.isEmpty ? ["grid"] : []
        }
        if let block = unused.first {
            let reads = strategy == .halving ? "draws its candidates from sweep.random, so sweep.grid beside it would change nothing"
                : "does not read sweep.\(block), so it would change nothing"
            throw fail("sweep.strategy = \(strategy.rawValue) \(reads): remove it (or change the strategy)")
        }
        switch strategy {
        case .grid where grid.isEmpty: throw fail("sweep.strategy = grid needs a sweep.grid block")
        case .random where random == nil: throw fail("sweep.strategy = random needs a sweep.random block")
        case .halving:
            guard let halving else { throw fail("sweep.strategy = halving needs a sweep.halving block {budgets: [epochs, ...]}") }
            guard random != nil || !grid.isEmpty else { throw fail("sweep.strategy = halving draws its candidates from sweep.random (or sweep.grid): give one") }
            let keys = random.map { $0.params.map(\.key) } ?? grid.map(\.key)
            if keys.contains(SweepKey.epochs) {
                throw fail("sweep: train.epochs is what halving.budgets \(halving.budgets) set; it cannot be swept as well")
            }
        default: break
        }
    }
}

extension SweepKey {
    static let epochs = SweepKey(stage: StageName.train.rawValue, key: "epochs")
    init(stage: String, key: String) { self.stage = stage; self.key = key }
}

extension SweepSpec.RandomSearch {
    static let knownFields = ["n_trials", "params", "seed"]

    init(_ value: ParamValue, fail: (String) -> PipelineError) throws {
        guard let fields = value.objectValue else { throw fail("sweep.random must be a mapping {n_trials, seed, params}") }
        if let unknown = fields.keys.sorted().first(where: { !Self.knownFields.contains($0) }) {
            throw fail("sweep.random: unknown field '\(unknown.shownKey)' (known: \(Self.knownFields.joined(separator: ", ")))")
        }
        guard let trials = fields["n_trials"]?.intValue, (1...SweepSpec.maxTrials).contains(trials) else {
            throw fail("\(SweepSpec.stated("sweep.random.n_trials", fields["n_trials"])): expected an integer from 1 to \(SweepSpec.maxTrials)")
        }
        // A seed of the wrong type is refused, not read as 0: the draws would silently be another seed's.
        let seed = fields["seed"].map { $0.intValue ?? -1 } ?? 0
        guard seed >= 0 else { throw fail("sweep.random.seed = \(fields["seed"]?.shown ?? "?"): expected an integer from 0 to \(Int.max)") }
        guard let params = fields["params"]?.objectValue, !params.isEmpty else {
            throw fail("sweep.random.params must map stage.key to {distribution: ...}")
        }
        self.trials = trials
        self.seed = UInt64(seed)
        self.params = try params.keys.sorted().map { name in
            let field = "sweep.random.params.\(name)"
            return (try SweepKey(parsing: name, fail: fail), try SweepSpec.Distribution(params[name] ?? .null, field: field, fail: fail))
        }
        // Trials are distinct: more than the distributions can tell apart would repeat some.
        let distinct = self.params.reduce(1.0) { $0 * $1.distribution.distinctValues }
        guard Double(trials) <= distinct else {
            throw fail("sweep.random.n_trials = \(trials): the distributions hold only \(Int(distinct)) distinct setting\(distinct == 1 ? "" : "s"); "
                       + "ask for at most \(Int(distinct)) (or list them with strategy: grid)")
        }
    }
}

extension SweepSpec.Halving {
    /// More rungs than this is no longer "a few epoch budgets".
    static let maxBudgets = 8

    init(_ value: ParamValue, fail: (String) -> PipelineError) throws {
        guard let fields = value.objectValue else {
            throw fail("sweep.halving must be {budgets: [epochs, ...]} (e.g. {budgets: [2, 4, 8]})")
        }
        if let unknown = fields.keys.sorted().first(where: { $0 != "budgets" }) {
            throw fail("sweep.halving: unknown field '\(unknown.shownKey)' (known: budgets)")
        }
        let budgets = fields["budgets"]?.arrayValue?.compactMap(\.intValue) ?? []
        guard (2...Self.maxBudgets).contains(budgets.count), budgets.count == fields["budgets"]?.arrayValue?.count,
              budgets.allSatisfy({ (1...10_000).contains($0) }), zip(budgets, budgets.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw fail("\(SweepSpec.stated("sweep.halving.budgets", fields["budgets"])): expected 2 to \(Self.maxBudgets) rising epoch counts from 1 to 10000")
        }
        self.budgets = budgets
    }
}

extension SweepSpec.Distribution {
    static let names = ["choice", "int_uniform", "log_uniform", "uniform"]

    init(_ value: ParamValue, field: String, fail: (String) -> PipelineError) throws {
        guard let fields = value.objectValue, let name = fields["distribution"]?.stringValue, Self.names.contains(name) else {
            throw fail("\(field) must be {distribution: \(Self.names.joined(separator: "|")), ...}")
        }
        let allowed: Set<String> = name == "choice" ? ["distribution", "values"] : ["distribution", "low", "high"]
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail("\(field): unknown field '\(unknown.shownKey)' for \(name) (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        switch name {
        case "choice":
            guard let values = fields["values"]?.arrayValue, !values.isEmpty else { throw fail("\(field).values must be a non-empty list") }
            self = .choice(values)
        case "int_uniform":
            func bound(_ end: String) throws -> Int {
                guard let given = fields[end] else { throw fail("\(field): int_uniform needs '\(end)'") }
                guard let value = given.intValue else { throw fail("\(field).\(end) = \(given.shown): int_uniform needs a whole number") }
                return value
            }
            let (low, high) = (try bound("low"), try bound("high"))
            guard low <= high else { throw fail("\(field): int_uniform needs low ≤ high (got \(low) > \(high))") }
            guard high.subtractingReportingOverflow(low).overflow == false else {
                throw fail("\(field): int_uniform from \(low) to \(high) spans more than a 64-bit integer holds; narrow it")
            }
            self = .intUniform(low: low, high: high)
        default:
            func bound(_ end: String) throws -> Double {
                guard let given = fields[end] else { throw fail("\(field): \(name) needs '\(end)'") }
                guard let value = given.doubleValue, value.isFinite else { throw fail("\(field).\(end) = \(given.shown): \(name) needs a finite number") }
                return value
            }
            let (low, high) = (try bound("low"), try bound("high"))
            guard low <= high else { throw fail("\(field): \(name) needs low ≤ high (got \(low) > \(high))") }
            guard (high - low).isFinite else {
                throw fail("\(field): \(name) from \(low) to \(high) spans more than a 64-bit float holds (\(Double.greatestFiniteMagnitude)); narrow it")
            }
            if name == "log_uniform" {
                guard low > 0 else { throw fail("\(field): log_uniform needs low > 0 (got \(low))") }
                self = .logUniform(low: low, high: high)
            } else {
                self = .uniform(low: low, high: high)
            }
        }
    }
}

// MARK: The trials

/// One point of the search: its number (from 0) and the `stage.key` values it sets.
public struct SweepTrial: Equatable, Sendable {
    public var index: Int
    public var settings: [(key: SweepKey, value: ParamValue)]

    public static func == (a: SweepTrial, b: SweepTrial) -> Bool {
        a.index == b.index && a.settings.map(\.key) == b.settings.map(\.key) && a.settings.map(\.value) == b.settings.map(\.value)
    }

    /// The settings as `--set` overrides.
    public var overrides: [ParameterOverride] {
        settings.map { ParameterOverride(stage: $0.key.stage, key: $0.key.key, value: $0.value) }
    }

    /// `{"stage.key": value}`: how JSON output and the leaderboard show the trial.
    public var params: ParamValue {
        .object(Dictionary(settings.map { ($0.key.description, $0.value) }, uniquingKeysWith: { _, last in last }))
    }
}

extension SweepSpec {
    /// The trials the strategy runs (halving: its candidates), in order; the same block always gives
    /// the same trials.
    public func trials() throws -> [SweepTrial] {
        switch strategy {
        case .grid: return try gridTrials()
        case .random: return randomTrials()
        case .halving: return random != nil ? randomTrials() : try gridTrials()
        }
    }

    func gridTrials() throws -> [SweepTrial] {
        let count = grid.reduce(1) { total, axis in total.multipliedReportingOverflow(by: axis.values.count).partialValue }
        guard grid.allSatisfy({ !$0.values.isEmpty }),
              grid.reduce(1.0, { $0 * Double($1.values.count) }) <= Double(Self.maxTrials) else {
            throw PipelineError.invalidFile("sweep.grid has \(grid.map { String($0.values.count) }.joined(separator: " × ")) trials; at most \(Self.maxTrials)")
        }
        return (0..<count).map { index in
            var remainder = index, settings: [(key: SweepKey, value: ParamValue)] = []
            // The last axis varies fastest, like nested loops in key order.
            for axis in grid.reversed() {
                settings.insert((axis.key, axis.values[remainder % axis.values.count]), at: 0)
                remainder /= axis.values.count
            }
            return SweepTrial(index: index, settings: settings)
        }
    }

    /// `n_trials` distinct draws: a draw equal to an earlier trial is drawn again (a trial run twice
    /// measures nothing new). The draws are bounded: a continuous range so narrow that rounding makes
    /// its values repeat ends the list early rather than never.
    func randomTrials() -> [SweepTrial] {
        guard let random else { return [] }
        var generator = SplitMix64(seed: random.seed)
        var trials: [SweepTrial] = [], seen: Set<String> = []
        var draws = 0
        let maximumDraws = max(10_000, random.trials * 100)
        while trials.count < random.trials && draws < maximumDraws {
            draws += 1
            let settings = random.params.map { ($0.key, $0.distribution.draw(&generator)) }
            guard seen.insert(settings.map(\.1.settingIdentity).joined(separator: "\t")).inserted else { continue }
            trials.append(SweepTrial(index: trials.count, settings: settings))
        }
        return trials
    }
}

extension SweepSpec.Distribution {
    /// The values that bound what draws give (both ends of a range, which rounding can reach; every
    /// choice): each must be a valid setting, not only those one seed happens to draw.
    var extremes: [ParamValue] {
        switch self {
        case .uniform(let low, let high), .logUniform(let low, let high): return low == high ? [.double(low)] : [.double(low), .double(high)]
        case .intUniform(let low, let high): return low == high ? [.int(low)] : [.int(low), .int(high)]
        case .choice(let values): return values
        }
    }

    /// How many different values a draw can give (as a Double: an integer range may exceed Int); a
    /// continuous range counts as unbounded unless it is one point.
    var distinctValues: Double {
        switch self {
        case .uniform(let low, let high), .logUniform(let low, let high): return Self.roundedValues(from: low, to: high)
        case .intUniform(let low, let high): return Double(high) - Double(low) + 1
        case .choice(let values): return Double(Set(values.map(\.settingIdentity)).count)
        }
    }

    func draw(_ generator: inout SplitMix64) -> ParamValue {
        switch self {
        case .uniform(let low, let high): return .double(Self.rounded(low + generator.unit() * (high - low), within: low...high))
        case .logUniform(let low, let high):
            return .double(Self.rounded(exp(log(low) + generator.unit() * (log(high) - log(low))), within: low...high))
        case .intUniform(let low, let high):
            let span = UInt64(bitPattern: Int64(high &- low)) &+ 1
            // span 0 means the whole 64-bit range; the checked span keeps the modulo from dividing by zero.
            let offset = span == 0 ? generator.next() : generator.next() % span
            return .int(low &+ Int(truncatingIfNeeded: offset))
        case .choice(let values): return values[Int(generator.next() % UInt64(values.count))]
        }
    }

    /// How many values draws rounded to 4 significant digits can take in [low, high]: those of 4 digits
    /// in the range, unbounded when an end is not one of them (a draw that rounds out of the range is kept
    /// as drawn) or when none is.
    static func roundedValues(from low: Double, to high: Double) -> Double {
        guard low < high else { return 1 }
        guard rounded(low) == low, rounded(high) == high else { return .infinity }
        /// Values m × 10^e (m of 4 digits) in [a, b], 0 < a.
        func positive(_ a: Double, _ b: Double) -> Double {
            guard b >= a, b > 0 else { return 0 }
            var total = 0.0
            for e in Int(floor(log10(a)))...Int(floor(log10(b))) {
                let step = pow(10, Double(e - 3))
                let first = max(1000, (a / step * (1 - 1e-12)).rounded(.up)), last = min(9999, (b / step * (1 + 1e-12)).rounded(.down))
                if last >= first { total += last - first + 1 }
            }
            return total
        }
        // A range reaching 0 holds every small magnitude: unbounded.
        if low <= 0 && high >= 0 { return .infinity }
        let count = low > 0 ? positive(low, high) : positive(-high, -low)
        return count > 0 ? count : .infinity
    }

    /// Four significant digits: readable in a leaderboard and a manifest, and finer than any
    /// difference a sweep can measure.
    static func rounded(_ x: Double) -> Double {
        guard x.isFinite, let value = Double(String(format: "%.4g", x)), value.isFinite else { return x }
        return value
    }

    /// `rounded(x)` unless rounding leaves the range (a range narrower than 4 digits, e.g. 0.99991 to
    /// 0.99999): then `x` itself, clamped, as exp/log may miss an end by an ulp.
    static func rounded(_ x: Double, within range: ClosedRange<Double>) -> Double {
        let value = rounded(x)
        return range.contains(value) ? value : min(max(x, range.lowerBound), range.upperBound)
    }
}

extension ParamValue {
    /// What tells one drawn setting from another: its canonical JSON, but for the infinities, which JSON spells
    /// as null (.inf and -.inf were one setting, and a sweep of the two was refused for holding too few).
    var settingIdentity: String { rendered(nonFinite: { "\($0)" }) }
}
