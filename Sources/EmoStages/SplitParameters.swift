import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// The split stage's parameters.
public struct SplitParameters: StageParameters {
    /// Which fold to test on, or every one (cross-validation).
    public enum TestFold: Codable, Equatable, Sendable {
        case index(Int)
        case all

        var index: Int? { if case .index(let k) = self { return k } else { return nil } }

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let k = try? c.decode(Int.self) { self = .index(k); return }
            guard (try? c.decode(String.self)) == "all" else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                        debugDescription: "expected a fold number or 'all'"))
            }
            self = .all
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .index(let k): try c.encode(k)
            case .all: try c.encode("all")
            }
        }
    }

    /// Actors sorted, cut into this many contiguous blocks.
    public var folds = 4
    public var testFold = TestFold.index(0)
    /// Validation actors: the first ones of the next block (0: none, for `train.selection: last`).
    public var valCount = 2
    /// Or name the test actors (one fold) and the validation actors (none: `train.selection: last`).
    public var testActors: [Int] = []
    public var valActors: [Int] = []
    /// Only these actors take part (empty: every actor present). The others are neither trained,
    /// validated nor tested on: how settings are chosen while some actors stay untouched.
    public var actors: [Int] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case folds, testFold = "test_fold", valCount = "val_count", testActors = "test_actors", valActors = "val_actors"
        case actors
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.overwrite(&folds, forKey: .folds)
        try c.overwrite(&testFold, forKey: .testFold)
        try c.overwrite(&valCount, forKey: .valCount)
        try c.overwrite(&testActors, forKey: .testActors)
        try c.overwrite(&valActors, forKey: .valActors)
        try c.overwrite(&actors, forKey: .actors)
        // Sets of actors, whatever order they are written in: [2, 1] is the split [1, 2] is, with its fingerprint.
        testActors.sort(); valActors.sort(); actors.sort()
    }

    public func validate() throws {
        func bad(_ key: String, _ value: Any, _ allowed: String, bounds: [String] = []) -> InvalidParameter {
            InvalidParameter(key: key, value: "\(value)", allowed: allowed, bounds: bounds)
        }
        let ravdess = RavdessName.actorRange
        guard (2...ravdess.count).contains(folds) else { throw bad("folds", folds, "an integer from 2 to \(ravdess.count)") }
        if let k = testFold.index, !(0..<folds).contains(k) {
            throw bad("test_fold", k, "a fold number from 0 to \(folds - 1), or all")
        }
        // 0: no validation actors, for a training that keeps its last epoch (train.selection: last).
        guard (0...ravdess.count - 2).contains(valCount) else { throw bad("val_count", valCount, "an integer from 0 to \(ravdess.count - 2)") }
        for (key, list) in [("test_actors", testActors), ("val_actors", valActors), ("actors", self.actors)] {
            if let outside = list.first(where: { !ravdess.contains($0) }) {
                throw bad(key, list, "RAVDESS actor numbers from \(ravdess.lowerBound) to \(ravdess.upperBound); \(outside) is not one")
            }
            guard Set(list).count == list.count else { throw bad(key, list, "each actor at most once") }
        }
        if let both = testActors.first(where: valActors.contains) {
            throw bad("val_actors", valActors, "actors that are not also test actors (\(both) is both)", bounds: ["test_actors"])
        }
        if !actors.isEmpty, let outside = (testActors + valActors).first(where: { !actors.contains($0) }) {
            throw bad(testActors.contains(outside) ? "test_actors" : "val_actors", testActors.contains(outside) ? testActors : valActors,
                      "actors among split.actors \(actors) (\(outside) is not)", bounds: ["actors"])
        }
        // Held out from split.actors, they would leave no one to train on (decided here, not at the run).
        if !actors.isEmpty, !testActors.isEmpty, Set(actors).subtracting(testActors + valActors).isEmpty {
            throw bad("actors", actors, "at least one actor besides the test and validation actors \((testActors + valActors).sorted()), "
                      + "to train on", bounds: ["test_actors", "val_actors"])
        }
        // Named test actors make the one fold: fold settings beside them would be silently ignored.
        if !testActors.isEmpty {
            let defaults = SplitParameters()
            let ignored: [(String, String)] = [("folds", folds != defaults.folds ? "\(folds)" : nil),
                                               ("test_fold", testFold != defaults.testFold ? (testFold.index.map(String.init) ?? "all") : nil),
                                               ("val_count", valCount != defaults.valCount ? "\(valCount)" : nil)]
                .compactMap { key, value in value.map { (key, $0) } }
            if let (key, value) = ignored.first {
                throw bad(key, value, "has no effect: split.test_actors \(testActors) names the one fold, so folds, test_fold and val_count "
                          + "are not used; leave \(key) out, or drop test_actors/val_actors", bounds: ["test_actors"])
            }
        }
        // Cut into folds, split.actors must hold one actor per fold at least (known here, not at the run).
        if testActors.isEmpty, !actors.isEmpty, actors.count < folds {
            throw bad("folds", folds, "at most the \(actors.count) actor(s) split.actors keeps (\(actors.sorted()))", bounds: ["actors"])
        }
        // ... and leave every fold an actor to train on once its test and validation actors are held out.
        if testActors.isEmpty, !actors.isEmpty {
            do { _ = try FoldPlanner(self).plan(actors: actors.sorted()) } catch PipelineError.missingData(let why) {
                throw bad("folds", folds, String(why.dropFirst("split: ".count)) + " (of split.actors \(actors.sorted()))",
                          bounds: ["actors", "val_count"])
            }
        }
        // Test actors alone: one fold without validation actors (train.selection: last).
        if testActors.isEmpty && !valActors.isEmpty {
            throw bad("val_actors", valActors, "actors named together with test_actors (val_actors alone names no fold)", bounds: ["test_actors"])
        }
    }
}

extension SplitParameters {
    /// The key that leaves the folds without validation actors, its value and what it does, or nil.
    /// With test actors named, an empty val_actors given somewhere is what to blame; absent, the test actors.
    func withoutValidation(valActorsGiven: Bool) -> (key: String, value: String, effect: String)? {
        if !testActors.isEmpty {
            guard valActors.isEmpty else { return nil }
            return valActorsGiven ? ("val_actors", "[]", "with split.test_actors \(testActors), the fold has")
                                  : ("test_actors", "\(testActors)", "named without split.val_actors, the fold has")
        }
        return valCount == 0 ? ("val_count", "0", "the folds have") : nil
    }

    /// The keys that name any of `actors` among the held-out ones, with their verb, as a message says them.
    /// `split.<key>`, and where its value came from when that is known (a refusal that depends on the data
    /// names the file or `--set` to change, as a refusal of the value alone does).
    static func named(_ key: CodingKeys, _ origins: [String: ParameterOrigin]) -> String {
        origins[key.rawValue].map { "split.\(key.rawValue) (from \($0.place))" } ?? "split.\(key.rawValue)"
    }

    /// Several keys joined with "and"; when they all come from one place (the manifest, say) it is named once.
    static func named(_ keys: [CodingKeys], _ origins: [String: ParameterOrigin]) -> String {
        let places = Set(keys.map { origins[$0.rawValue]?.place })
        guard places.count == 1, keys.count > 1 else { return keys.map { named($0, origins) }.joined(separator: " and ") }
        return keys.map { "split.\($0.rawValue)" }.joined(separator: " and ") + (places.first.flatMap { $0 }.map { " (from \($0))" } ?? "")
    }

    func holdingOut(_ actors: [Int], origins: [String: ParameterOrigin] = [:]) -> String {
        let keys = [(CodingKeys.testActors, testActors), (.valActors, valActors)]
            .filter { !Set($0.1).isDisjoint(with: actors) }.map(\.0)
        return Self.named(keys, origins) + (keys.count == 1 ? " holds out" : " hold out")
    }
}
