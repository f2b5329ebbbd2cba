/// RAVDESS's eight emotions, by their code in the file name.
public enum Emotion: Int, CaseIterable, Codable, Sendable {
    case neutral = 1, calm, happy, sad, angry, fearful, disgust, surprised

    public var name: String { String(describing: self) }
}

/// Which classes the model predicts, chosen by the manifest's `label_map`.
///
///     let map = try LabelMap(named: "ravdess7")
///     map.classIndex(emotion: 2)   // calm merges into neutral: 0
public struct LabelMap: Equatable, Sendable {
    public let name: String
    public let labels: [String]
    private let indexByEmotion: [Int: Int]

    public static let ravdess8 = LabelMap(
        name: "ravdess8", labels: Emotion.allCases.map(\.name),
        indexByEmotion: Dictionary(uniqueKeysWithValues: Emotion.allCases.enumerated().map { ($1.rawValue, $0) }))

    /// The reference design's seven classes: calm is merged into neutral.
    public static let ravdess7: LabelMap = {
        let kept = Emotion.allCases.filter { $0 != .calm }
        var index = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1.rawValue, $0) })
        index[Emotion.calm.rawValue] = index[Emotion.neutral.rawValue]
        return LabelMap(name: "ravdess7", labels: kept.map(\.name), indexByEmotion: index)
    }()

    public static let all = [ravdess8, ravdess7]

    public init(named name: String) throws {
        guard let map = Self.all.first(where: { $0.name == name }) else {
            throw EmoError.invalidConfiguration(
                "unknown label_map '\(name.echoed)' (known: \(Self.all.map(\.name).joined(separator: ", ")))")
        }
        self = map
    }

    private init(name: String, labels: [String], indexByEmotion: [Int: Int]) {
        self.name = name; self.labels = labels; self.indexByEmotion = indexByEmotion
    }

    public func classIndex(emotion: Int) -> Int? { indexByEmotion[emotion] }
    public var count: Int { labels.count }
}
