/// A parameter value a stage cannot use: which key, the value given, and what is allowed.
/// Every layer's `validate()` throws this one type, so the runner can name the file the value came from.
///
///     throw InvalidParameter(key: "dropout", value: "3", allowed: "a number with 0 <= dropout < 1")
public struct InvalidParameter: Error, Equatable, Sendable, CustomStringConvertible {
    public var key: String
    /// The value as the user wrote it (canonical JSON where it came from a file).
    public var value: String
    public var allowed: String
    /// The other keys whose values `allowed` depends on (`epochs` for `warmup_epochs`), so the refusal
    /// can say where those values came from too: the change that broke the rule may have been to one.
    public var bounds: [String]

    public init(key: String, value: String, allowed: String, bounds: [String] = []) {
        self.key = key; self.value = value; self.allowed = allowed; self.bounds = bounds
    }

    public init<T>(key: String, _ value: T, allowed: String) {
        self.init(key: key, value: Self.shown(value), allowed: allowed)
    }

    public var description: String { "\(key): \(value) is not allowed (\(allowed))" }
}

extension InvalidParameter {
    /// Throws unless `ok`: the one-line form every `validate()` uses.
    ///
    ///     try InvalidParameter.require(epochs >= 1, "epochs", epochs, "an integer from 1 to 10000")
    public static func require(_ ok: Bool, _ key: String, _ value: Any, _ allowed: String, bounds: [String] = []) throws {
        if !ok { throw InvalidParameter(key: key, value: shown(value), allowed: allowed, bounds: bounds) }
    }

    /// A value as the user is likely to have written it: a whole number read into a Double is shown
    /// whole (`top_db: 0` is `0`, not `0.0`).
    public static func shown(_ value: Any) -> String {
        if let number = value as? Double, number.isFinite, number == number.rounded(), abs(number) < 1e15 { return String(Int64(number)) }
        return "\(value)"
    }
}

extension KeyedDecodingContainer {
    /// Replaces `value` with the key's value when the key is present. Parameter types decode this way:
    /// an absent key keeps its default, a present one must hold a value of its type (null is not
    /// "the default").
    public func overwrite<T: Decodable>(_ value: inout T, forKey key: Key) throws {
        if contains(key) { value = try decode(T.self, forKey: key) }
    }
}
