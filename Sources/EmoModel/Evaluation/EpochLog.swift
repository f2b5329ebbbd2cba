import Foundation

/// One line of the training log: the numbers of one epoch. JSON keys are snake_case
/// (`train_loss`, `val_weighted_f1`, `learning_rate`, ...).
public struct EpochLog: Codable, Equatable, Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double
    public var valAccuracy: Double
    public var valWeightedF1: Double
    /// The learning rate used during the epoch (for a per-step schedule: the one at its last step).
    public var learningRate: Double
    /// Wall-clock seconds the epoch took (training and validation).
    public var seconds: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, valLoss: Double, valAccuracy: Double,
                valWeightedF1: Double, learningRate: Double, seconds: Double) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.valLoss = valLoss; self.valAccuracy = valAccuracy; self.valWeightedF1 = valWeightedF1
        self.learningRate = learningRate; self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case epoch, seconds
        case trainLoss = "train_loss"
        case trainAccuracy = "train_accuracy"
        case valLoss = "val_loss"
        case valAccuracy = "val_accuracy"
        case valWeightedF1 = "val_weighted_f1"
        case learningRate = "learning_rate"
    }

    /// An epoch without validation (no validation actors) has NaN figures in memory and nulls in JSON: a
    /// number field holds a number or null, and "NaN" stays the mark of a diverged run.
    public var validated: Bool { !valAccuracy.isNaN }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(trainLoss, forKey: .trainLoss)
        try c.encode(trainAccuracy, forKey: .trainAccuracy)
        for (value, key) in [(valLoss, CodingKeys.valLoss), (valAccuracy, .valAccuracy), (valWeightedF1, .valWeightedF1)] {
            if validated { try c.encode(value, forKey: key) } else { try c.encodeNil(forKey: key) }
        }
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(seconds, forKey: .seconds)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func figure(_ key: CodingKeys) throws -> Double { try c.decodeIfPresent(Double.self, forKey: key) ?? .nan }
        self.init(epoch: try c.decode(Int.self, forKey: .epoch), trainLoss: try c.decode(Double.self, forKey: .trainLoss),
                  trainAccuracy: try c.decode(Double.self, forKey: .trainAccuracy), valLoss: try figure(.valLoss),
                  valAccuracy: try figure(.valAccuracy), valWeightedF1: try figure(.valWeightedF1),
                  learningRate: try c.decode(Double.self, forKey: .learningRate), seconds: try c.decode(Double.self, forKey: .seconds))
    }

    /// The epoch with the highest validation weighted F1 (the earliest on a tie; NaN never wins), or
    /// nil when no epoch has a finite validation weighted F1.
    public static func best(_ epochs: [EpochLog]) -> EpochLog? {
        epochs.reduce(nil) { best, e in
            guard e.valWeightedF1.isFinite else { return best }
            guard let b = best else { return e }
            return e.valWeightedF1 > b.valWeightedF1 ? e : b
        }
    }

    /// One compact JSON object per line (JSON Lines), keys sorted: a log that can be appended to.
    /// NaN and infinite values (a diverged run) are written as "NaN", "Infinity", "-Infinity".
    public static func jsonLines(_ epochs: [EpochLog]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = EvaluationJSON.nonFinite
        var out = Data()
        for e in epochs {
            out.append(try encoder.encode(e))
            out.append(0x0A)
        }
        return out
    }

    /// Reads JSON Lines written by `jsonLines` (blank lines are skipped).
    public static func parseJSONLines(_ data: Data) throws -> [EpochLog] {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = EvaluationJSON.nonFiniteDecoding
        return try data.split(separator: 0x0A).compactMap { line in
            let trimmed = line.drop { $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }
            return trimmed.isEmpty ? nil : try decoder.decode(EpochLog.self, from: Data(trimmed))
        }
    }
}
