import EmoCore
import Foundation

/// Decodes a `Decodable` straight from a `ParamValue`, strictly: an integer field takes only a whole
/// number, a number field a finite number, a flag only true or false, text only a string, a choice only
/// one of its values. A mismatch is an `InvalidParameter` naming the key path, the value given and
/// what is allowed, so no bad value is ever replaced by a default.
///
///     let train = try ParamValueDecoder.decode(TrainParameters.self, from: .object(["epochs": .int(3)]))
public enum ParamValueDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from value: ParamValue) throws -> T {
        do {
            return try T(from: ValueDecoder(value: value, codingPath: []))
        } catch let error as DecodingError {
            throw invalidParameter(from: error, in: value, expected: T.self)
        }
    }

    /// DecodingErrors from types with their own `init(from:)` (a String-backed enum, say) carry only
    /// a path: the value is looked up, and the allowed values come from the type where it says.
    static func invalidParameter(from error: DecodingError, in root: ParamValue, expected: Any.Type) -> InvalidParameter {
        let (path, message): ([CodingKey], String) = {
            switch error {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): return (c.codingPath, c.debugDescription)
            case .keyNotFound(let key, let c): return (c.codingPath + [key], "a value is required")
            @unknown default: return ([], "\(error)")
            }
        }()
        let key = path.map(\.stringValue).joined(separator: ".")
        return InvalidParameter(key: key, value: root.at(path)?.shown ?? "nothing", allowed: message)
    }
}

/// A String-backed choice whose allowed values an error can list.
public protocol ParameterChoice: CaseIterable, RawRepresentable where RawValue == String {}

extension ParameterChoice {
    static var allowedValues: String { "one of " + allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ") }
}

extension ParamValue {
    /// The value at a coding path (object keys and array indices), or nil.
    func at(_ path: [CodingKey]) -> ParamValue? {
        var current: ParamValue? = self
        for key in path {
            switch current {
            case .object(let fields)?: current = fields[key.stringValue]
            case .array(let items)?:
                guard let i = key.intValue, items.indices.contains(i) else { return nil }
                current = items[i]
            default: return nil
            }
        }
        return current
    }

    /// The value as a message shows it: its canonical JSON, except that a non-finite number, which
    /// JSON writes as null, reads as what it is (inf, -inf, nan), at any depth; echoed (`String.echoedJSON`).
    public var shown: String { fullyShown.echoedJSON }

    private var fullyShown: String {
        switch self {
        case .double(let d) where !d.isFinite: return "\(d)"
        case .array(let items) where holdsNonFinite: return "[" + items.map(\.fullyShown).joined(separator: ",") + "]"
        case .object(let fields) where holdsNonFinite:
            return "{" + fields.keys.sorted().map { ParamValue.string($0).canonicalJSON + ":" + fields[$0]!.fullyShown }.joined(separator: ",") + "}"
        default: return canonicalJSON
        }
    }

    private var holdsNonFinite: Bool {
        switch self {
        case .double(let d): return !d.isFinite
        case .array(let items): return items.contains { $0.holdsNonFinite }
        case .object(let fields): return fields.values.contains { $0.holdsNonFinite }
        default: return false
        }
    }

    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "true/false"
        case .int: return "an integer"
        // YAML reads 1e400 as infinity: say so, not "expected a number, got a number".
        case .double(let d) where d.isNaN: return "nan (.nan, not a number)"
        case .double(let d) where !d.isFinite: return "\(d) (a number too large for a double, or .inf)"
        // A whole number past 2^53 read as a float (1e16, or digits past the 64-bit range) is not exact.
        case .double(let d) where d == d.rounded() && abs(d) >= 9e15:
            return abs(d) >= 9.2e18 ? "a number beyond the 64-bit integer range (±9223372036854775807)"
                : "a whole number written as a float past 2^53, which a float does not hold exactly (write its digits)"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "a mapping"
        }
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ index: Int) { stringValue = String(index); intValue = index }
    init?(stringValue: String) { self.stringValue = stringValue; intValue = Int(stringValue) }
    init?(intValue: Int) { self.init(intValue) }
}

/// Primitive decoding shared by the three container kinds.
private struct Primitives {
    let codingPath: [CodingKey]

    func mismatch(_ value: ParamValue, expected: String) -> InvalidParameter {
        invalid(value, allowed: "expected \(expected), got \(value.kindDescription)")
    }

    func invalid(_ value: ParamValue, allowed: String) -> InvalidParameter {
        InvalidParameter(key: codingPath.map(\.stringValue).joined(separator: "."), value: value.shown, allowed: allowed)
    }

    func bool(_ v: ParamValue) throws -> Bool {
        guard case .bool(let b) = v else { throw mismatch(v, expected: "true or false") }
        return b
    }

    func string(_ v: ParamValue) throws -> String {
        guard case .string(let s) = v else { throw mismatch(v, expected: "a string") }
        return s
    }

    func double(_ v: ParamValue) throws -> Double {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d) where d.isFinite: return d
        default: throw mismatch(v, expected: "a number")
        }
    }

    func integer<I: FixedWidthInteger>(_ v: ParamValue, _: I.Type) throws -> I {
        let whole: Int? = {
            switch v {
            case .int(let i): return i
            case .double(let d) where d.isFinite && d.rounded() == d && abs(d) < 9e15: return Int(d)
            default: return nil
            }
        }()
        guard let whole, let exact = I(exactly: whole) else { throw mismatch(v, expected: "a whole number") }
        return exact
    }

    func decode<T: Decodable>(_ v: ParamValue, as type: T.Type) throws -> T {
        if let primitive = try primitive(v, as: type) { return primitive }
        if let choice = type as? any ParameterChoice.Type {
            guard case .string(let text) = v else { throw mismatch(v, expected: choice.allowedValues) }
            guard let value = T(choiceRawValue: text, choice) else {
                // A string, just not one of the choices: name them, not the value's type.
                throw invalid(v, allowed: "expected \(choice.allowedValues)")
            }
            return value
        }
        return try T(from: ValueDecoder(value: v, codingPath: codingPath))
    }
}

extension Primitives {
    /// The value as a Swift primitive when `T` is one, else nil.
    func primitive<T>(_ v: ParamValue, as type: T.Type) throws -> T? {
        switch type {
        case is Bool.Type: return try bool(v) as? T
        case is String.Type: return try string(v) as? T
        case is Double.Type: return try double(v) as? T
        case is Float.Type: return Float(try double(v)) as? T
        case is Int.Type: return try integer(v, Int.self) as? T
        case is Int32.Type: return try integer(v, Int32.self) as? T
        case is Int64.Type: return try integer(v, Int64.self) as? T
        case is UInt32.Type: return try integer(v, UInt32.self) as? T
        case is UInt64.Type: return try integer(v, UInt64.self) as? T
        default: return nil
        }
    }
}

private extension Decodable {
    /// `type(rawValue:)` for a choice type opened from an existential.
    init?(choiceRawValue text: String, _ choice: any ParameterChoice.Type) {
        func make<C: ParameterChoice>(_ c: C.Type) -> Any? { C(rawValue: text) }
        guard let value = make(choice) as? Self else { return nil }
        self = value
    }
}

private struct ValueDecoder: Decoder {
    let value: ParamValue
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let fields) = value else {
            throw Primitives(codingPath: codingPath).mismatch(value, expected: "a mapping")
        }
        return KeyedDecodingContainer(Keyed<Key>(fields: fields, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw Primitives(codingPath: codingPath).mismatch(value, expected: "a list")
        }
        return Unkeyed(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { Single(value: value, codingPath: codingPath) }
}

private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: ParamValue]
    let codingPath: [CodingKey]
    var allKeys: [Key] { fields.keys.sorted().compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    private func value(_ key: Key) throws -> ParamValue {
        guard let v = fields[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "a value is required"))
        }
        return v
    }

    func decodeNil(forKey key: Key) throws -> Bool { (fields[key.stringValue] ?? .null) == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try Primitives(codingPath: codingPath + [key]).decode(try value(key), as: type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try ValueDecoder(value: try value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> Decoder { ValueDecoder(value: .object(fields), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> Decoder {
        ValueDecoder(value: fields[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

private struct Unkeyed: UnkeyedDecodingContainer {
    let items: [ParamValue]
    let codingPath: [CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> (ParamValue, [CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "the list is too short"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next()
        return try Primitives(codingPath: path).decode(value, as: type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try next()
        return try ValueDecoder(value: value, codingPath: path).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (value, path) = try next()
        return try ValueDecoder(value: value, codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> Decoder {
        let (value, path) = try next()
        return ValueDecoder(value: value, codingPath: path)
    }
}

private struct Single: SingleValueDecodingContainer {
    let value: ParamValue
    let codingPath: [CodingKey]
    func decodeNil() -> Bool { value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try Primitives(codingPath: codingPath).decode(value, as: type) }
}
