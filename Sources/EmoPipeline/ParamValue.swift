import Foundation
import Yams

/// A parameter value from a pipeline or manifest file, with one canonical JSON form so that
/// equal parameters always hash equally (keys sorted, numbers in shortest round-trip form).
public enum ParamValue: Equatable, Hashable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ParamValue])
    case object([String: ParamValue])

    public var description: String { canonicalJSON }

    public var canonicalJSON: String { rendered(nonFinite: { _ in "null" }) }

    /// The canonical JSON text with `nonFinite` spelling NaN and the infinities (JSON has no word for them).
    func rendered(nonFinite: (Double) -> String) -> String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            // Integral doubles print as 2.0 so they never collide with the int 2 by accident.
            return d.isFinite ? "\(d)" : nonFinite(d)
        case .string(let s): return Self.quote(s)
        case .array(let items): return "[" + items.map { $0.rendered(nonFinite: nonFinite) }.joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.keys.sorted().map { Self.quote($0) + ":" + fields[$0]!.rendered(nonFinite: nonFinite) }
                .joined(separator: ",") + "}"
        }
    }

    /// A JSON string that is also one line of valid YAML: besides JSON's own escapes, DEL and the C1
    /// controls (which YAML refuses), NEL, U+2028 and U+2029 (which YAML reads as line breaks, even in
    /// a comment) and the BOM are written as \u escapes, so a recorded manifest reads back as written.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20 || (0x7F...0x9F).contains(c.value)
                || [0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF].contains(c.value):
                out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    // MARK: Typed access

    public var objectValue: [String: ParamValue]? { if case .object(let o) = self { return o } else { return nil } }

    /// An object whose dotted keys (`train.dropout`, `cv.weighted_f1.mean`: names as `--set` and
    /// `sweep.metric` spell them) are written as nested objects, for printed JSON, whose keys are plain
    /// snake_case names. Only the object's own keys are split: values (a parameter holding a map keyed by
    /// data) are left as they are. A dotted key whose place is taken (by a plain value, or the same nested
    /// key) stays as it is: nothing is overwritten. Anything but an object is returned unchanged.
    public var nestingDottedKeys: ParamValue {
        guard case .object(let fields) = self else { return self }
        var result = fields.filter { !$0.key.contains(".") }
        var tree: [String: ParamValue] = [:], flat: [String: ParamValue] = [:]
        for key in fields.keys.filter({ $0.contains(".") }).sorted() {
            let value = fields[key]!
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if !path.contains(where: \.isEmpty), result[path[0]] == nil, let placed = Self.placing(value, at: path, in: tree) {
                tree = placed
            } else {
                flat[key] = value
            }
        }
        result.merge(tree) { plain, _ in plain }
        result.merge(flat) { plain, _ in plain }
        return .object(result)
    }

    /// `tree` with `value` at `path`, or nil when something is there already.
    private static func placing(_ value: ParamValue, at path: [String], in tree: [String: ParamValue]) -> [String: ParamValue]? {
        var tree = tree
        guard let head = path.first else { return nil }
        if path.count == 1 {
            guard tree[head] == nil else { return nil }
            tree[head] = value
            return tree
        }
        let inner: [String: ParamValue]
        switch tree[head] {
        case nil: inner = [:]
        case .object(let existing)?: inner = existing
        default: return nil
        }
        guard let placed = placing(value, at: Array(path.dropFirst()), in: inner) else { return nil }
        tree[head] = .object(placed)
        return tree
    }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.isFinite && d.rounded() == d && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
    public var arrayValue: [ParamValue]? { if case .array(let a) = self { return a } else { return nil } }

    /// `base` with `overrides` laid over it, recursively for nested objects.
    public static func merge(_ base: [String: ParamValue], _ overrides: [String: ParamValue]) -> [String: ParamValue] {
        var result = base
        for (key, value) in overrides {
            if case .object(let inner) = value, case .object(let existing)? = result[key] {
                result[key] = .object(merge(existing, inner))
            } else {
                result[key] = value
            }
        }
        return result
    }

    // MARK: From YAML

    /// `origin` (a file, `--set`) prefixes what is refused.
    public init(yaml node: Node, origin: String? = nil) throws {
        switch node {
        case .scalar(let scalar):
            self = try Self.fromTagged(scalar, origin: origin)
        case .sequence(let seq):
            try Self.requireKnownTag(seq.tag, allowed: .seq, mark: seq.mark, origin: origin)
            self = .array(try seq.map { try ParamValue(yaml: $0, origin: origin) })
        case .mapping(let map):
            try Self.requireKnownTag(map.tag, allowed: .map, mark: map.mark, origin: origin)
            var fields: [String: ParamValue] = [:]
            for (key, value) in map {
                guard case .scalar(let scalar) = key, let name = key.string else { throw PipelineError.invalidFile("a mapping key is not a string") }
                // A key is a name, read as written: `01: neutral` is the key "01", though YAML resolves it as a number.
                if ![Tag.Name.int, .float, .bool, .null, .timestamp].contains(Tag.Name(rawValue: scalar.tag.description)) {
                    try Self.requireKnownTag(scalar.tag, allowed: .str, mark: scalar.mark, origin: origin)
                }
                guard !name.isEmpty, name != "~" else { throw Self.refusal("an empty key (or ~) names nothing", at: scalar.mark, origin: origin) }
                fields[name] = try ParamValue(yaml: value, origin: origin)
            }
            self = .object(fields)
        case .alias:
            throw PipelineError.invalidFile("YAML aliases are not supported in parameters")
        }
    }

    /// A refusal naming where the YAML is: `origin: line N: why`.
    private static func refusal(_ why: String, at mark: Mark?, origin: String?) -> PipelineError {
        PipelineError.invalidFile((origin.map { "\($0): " } ?? "") + "line \(mark.map { "\($0.line)" } ?? "?"): \(why)")
    }

    /// A tag as written: `!!int` for the core schema's, else its own name.
    private static func spelled(_ tag: String) -> String {
        let core = "tag:yaml.org,2002:"
        return tag.hasPrefix(core) ? "!!" + tag.dropFirst(core.count) : tag
    }

    /// A list, a mapping or a key may carry only its own kind's tag (`!!seq`, `!!map`, `!!str`), or none.
    private static func requireKnownTag(_ tag: Tag, allowed: Tag.Name, mark: Mark?, origin: String?) throws {
        switch Tag.Name(rawValue: tag.description) {
        case .implicit, .nonSpecific, allowed: return
        case .merge: throw refusal("YAML merge keys (<<) are not supported: write the keys out", at: mark, origin: origin)
        default:
            throw refusal("the YAML tag \(spelled(tag.description).echoed) is not one EmoPipe reads here "
                          + "(\(spelled(allowed.rawValue)) or none)", at: mark, origin: origin)
        }
    }

    /// A scalar with an explicit YAML tag is read as the tag says (`!!str 0.3` is the text "0.3"); a
    /// tag EmoPipe does not know (`!weird 3`) is refused rather than ignored.
    private static func fromTagged(_ scalar: Node.Scalar, origin: String?) throws -> ParamValue {
        let text = scalar.string
        func refuse(_ why: String) -> PipelineError { refusal(why, at: scalar.mark, origin: origin) }
        // Yams keeps a tag's name internal; its description is the name as written.
        switch Tag.Name(rawValue: scalar.tag.description) {
        case .implicit:
            guard scalar.style == .plain else { return .string(text) }
            let value = fromPlain(text)
            if let number = value.doubleValue, let why = underflow(text, to: number) { throw refuse(why) }
            return value
        case .nonSpecific, .str: return .string(text)
        case .int:
            guard let value = Int(text) else {
                throw refuse("!!int \"\(text.echoed)\" is " + (text.isWholeNumberText ? "beyond the 64-bit integer range" : "not an integer"))
            }
            return .int(value)
        case .float:
            // YAML 1.2's floats, as plain numbers are read: decimal, .inf or .nan. Double alone would also
            // take hexadecimal (0x1p-1080 read as 0, with no digit of it written as 0), "inf" and "nan".
            guard let number = fromPlain(text).doubleValue else {
                throw refuse("!!float \"\(text.escaped)\" is not a decimal number (YAML 1.2 floats: 2.5, -1e-3, .inf, .nan)")
            }
            if let why = underflow(text, to: number) { throw refuse(why) }
            return .double(number)
        case .bool:
            guard case .bool(let value) = fromPlain(text) else { throw refuse("!!bool \"\(text.escaped)\" is not true or false") }
            return .bool(value)
        case .null:
            guard fromPlain(text) == .null else { throw refuse("!!null \"\(text.escaped)\" is not null") }
            return .null
        default:
            throw refuse("the YAML tag \(spelled(scalar.tag.description).echoed) is not one EmoPipe reads (plain values, or !!str, !!int, !!float, !!bool, !!null)")
        }
    }

    /// Why a number written with a non-zero digit that reads as 0 (1e-400) is refused, nil for any other:
    /// taken as 0, it would be echoed and used as 0, which the user never wrote.
    /// `number` is `fromPlain`'s reading of `text`, so `text` is in decimal notation.
    private static func underflow(_ text: String, to number: Double) -> String? {
        guard number == 0, text.prefix(while: { $0 != "e" && $0 != "E" }).contains(where: { ("1"..."9").contains($0) }) else { return nil }
        return "\(text.echoed) is too small for a 64-bit float (it would be read as 0; the smallest is about 4.9e-324): write 0 if 0 is meant"
    }

    /// An untagged plain scalar: null, a boolean, a number, else text.
    private static func fromPlain(_ text: String) -> ParamValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if let i = Int(text) { return .int(i) }
        // YAML's infinities and NaN, spelt as YAML spells them (Double would also take "inf", "nan").
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        default: break
        }
        // Decimal notation only: Double would also read hexadecimal ("0xe" as 14, "0x0.8p-1" as 0.25).
        // Digits only but too large for Int: still a number, which a range check can name as such.
        let decimal = text.allSatisfy { "0123456789+-.eE".contains($0) }
        if decimal, let d = Double(text), text.isWholeNumberText || text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return .double(d) }
        return .string(text)
    }
}

extension ParamValue: Decodable {
    /// Converts a JSON document (as JSONEncoder writes it) to a value.
    public static func fromJSON(_ data: Data) throws -> ParamValue { try fromJSON(data, atMost: jsonLimit) }

    /// `fromJSON` up to `limit` bytes: JSON this process made itself from values it holds is taken whatever its length.
    static func fromJSON(_ data: Data, atMost limit: Int) throws -> ParamValue {
        // Decoding takes about 1.5 s and 65 bytes of memory per byte of text: a database column or a result
        // file edited to hundreds of megabytes took minutes and gigabytes (and trapped under a memory limit).
        guard data.count <= limit else { throw SizeError(bytes: data.count, limit: limit) }
        // Decoding time grows with the cube of the nesting (a 510-deep list took 1.7 s): a file of
        // megabytes of brackets would take hours. Parameters nest a few levels; YAML's bound holds here too.
        if let place = nestingPast(SafeYAML.maxDepth, in: data) { throw NestingError(limit: SafeYAML.maxDepth, byte: place) }
        return try JSONDecoder().decode(ParamValue.self, from: data)
    }

    /// The most JSON text `fromJSON` reads: far more than EmoPipe records of a run's parameters (a manifest is at
    /// most 256 KiB) or writes as its results (a metrics.json of 1,440 clips is tens of KB).
    public static let jsonLimit = 4 << 20

    /// What a record's JSON column should hold, a JSON object, or what it is instead ("not a JSON object", or
    /// its length past the bound), for a message that goes on "its recorded parameters are …".
    public static func recordedObject(_ json: String) -> Result<[String: ParamValue], RecordedJSONProblem> {
        recordedObject(Data(json.utf8))
    }

    public static func recordedObject(_ json: Data) -> Result<[String: ParamValue], RecordedJSONProblem> {
        do {
            guard let object = try fromJSON(json).objectValue else { return .failure(.notAnObject) }
            return .success(object)
        } catch let large as SizeError {
            return .failure(.tooLarge(large))
        } catch let deep as NestingError {
            return .failure(.tooDeep(deep))
        } catch {
            return .failure(.notJSON)
        }
    }

    public enum RecordedJSONProblem: Error, Equatable, CustomStringConvertible {
        /// Valid JSON of another kind: a list, a string, a number, null.
        case notAnObject
        /// No JSON at all (cut short, typed over).
        case notJSON
        /// JSON nested deeper than EmoPipe ever writes it, not decoded.
        case tooDeep(NestingError)
        case tooLarge(SizeError)
        public var description: String {
            switch self {
            case .notAnObject: return "not a JSON object"
            case .notJSON: return "not valid JSON"
            case .tooDeep(let deep): return "JSON of \(deep), deeper than EmoPipe writes"
            case .tooLarge(let large): return "\(large)"
            }
        }
    }

    /// JSON text longer than `fromJSON` reads, refused before decoding.
    public struct SizeError: Error, Equatable, CustomStringConvertible {
        public var bytes: Int
        public var limit: Int
        public init(bytes: Int, limit: Int) { self.bytes = bytes; self.limit = limit }
        public var description: String { "\(bytes) bytes of JSON, more than the \(limit) read of what EmoPipe records" }
    }

    /// JSON nested past the bound `fromJSON` reads, refused before decoding.
    public struct NestingError: Error, Equatable, CustomStringConvertible {
        public var limit: Int
        public var byte: Int
        public var description: String { "lists and mappings nested more than \(limit) deep (at byte \(byte))" }
    }

    /// Where JSON text first nests lists and mappings deeper than `limit` (brackets inside strings do
    /// not count), or nil: one pass over the bytes.
    static func nestingPast(_ limit: Int, in data: Data) -> Int? {
        var (depth, inString, escaped) = (0, false, false)
        for (offset, byte) in data.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return offset }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return nil
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let i = try? container.decode(Int.self) { self = .int(i) }
        else if let d = try? container.decode(Double.self) { self = .double(d) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else {
            // A list or a mapping; a fault inside one is its element's, and said at its place.
            do { self = .array(try container.decode([ParamValue].self)); return } catch where !Self.isMismatch(error, at: decoder) {
                throw error
            } catch {}   // not a list
            do { self = .object(try container.decode([String: ParamValue].self)) } catch where Self.isMismatch(error, at: decoder) {
                // Nothing above took it: a number past a 64-bit float (1e400) or text that is not valid Unicode,
                // which Foundation would call "found a number/string instead" of a dictionary.
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "not a value EmoPipe reads: a number beyond a 64-bit float's range, or text that is not valid Unicode"))
            }
        }
    }

    /// Whether `error` says the value at `decoder`'s own place is of another kind (not one inside it).
    private static func isMismatch(_ error: Error, at decoder: Decoder) -> Bool {
        guard case DecodingError.typeMismatch(_, let context)? = error as? DecodingError else { return false }
        return context.codingPath.count == decoder.codingPath.count
    }
}
