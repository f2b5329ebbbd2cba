import Foundation

/// The one JSON convention for everything EmoPipe prints or writes: snake_case keys, sorted, and
/// slashes left as they are (paths stay readable). Types keep Swift's camelCase property names;
/// the encoder turns them into snake_case. Dictionary keys (paths, labels, stage names) are data
/// and are never converted.
///
///     let data = try JSONOutput.encoder().encode(report)        // {"run_id":…}
///     let report = try JSONOutput.decoder().decode(NightlyReport.self, from: data)
public enum JSONOutput {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// Reads what `encoder()` writes, and the camelCase files EmoPipe wrote before this convention
    /// (`bestEpoch`, `executableSHA256`): every key is mapped to snake_case and back to camelCase,
    /// so both spellings meet the same property. A property name must survive that round trip
    /// (`executableSha256`, not `executableSHA256`).
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in
            let key = path.last?.stringValue ?? ""
            return NormalizedKey(camelCase(snakeCase(key)))
        }
        return decoder
    }

    /// `problem(_:in:)` for a document decoded as `type`. Foundation names no place for a number that
    /// does not fit its field (1.5 or 2^70 for an Int, 1e39 for a Float); the value is found and named
    /// with its place. Only fractions and numbers past Int32 or Float range can be it: the fewest of
    /// them, in document order, that set to 0 let the document decode past the misfit are found by
    /// bisection (a few decodes, however large the document), and the last of them is the one named.
    /// `using` is the decoder that failed (this convention's, unless the type spells its own keys).
    public static func problem<T: Decodable>(_ error: Error, in data: Data, decoding type: T.Type,
                                             using failed: JSONDecoder = decoder()) -> String {
        let general = problem(error, in: data)
        guard isPlacelessMisfit(error), let root = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) else {
            return general
        }
        let numbers = numberPlaces(in: root, at: [])
        let suspects = numbers.indices.filter { isSuspicious(numbers[$0].1) }
        // Whether the document decodes past the misfit with the first `count` suspects set to 0 (it may
        // then fail otherwise: that is another fault, named once this one is fixed).
        func passes(zeroingFirst count: Int) -> Bool {
            var counter = 0
            let patched = rebuilt(root, zeroing: Set(suspects.prefix(count)), counter: &counter)
            guard let text = try? JSONSerialization.data(withJSONObject: patched, options: .fragmentsAllowed) else { return false }
            do { _ = try failed.decode(T.self, from: text); return true } catch { return !isPlacelessMisfit(error) }
        }
        guard !suspects.isEmpty, passes(zeroingFirst: suspects.count) else { return general }
        var (failing, passing) = (0, suspects.count)
        while passing - failing > 1 {
            let middle = (failing + passing) / 2
            if passes(zeroingFirst: middle) { passing = middle } else { failing = middle }
        }
        let (path, value) = numbers[suspects[passing - 1]]
        let spelled: String = path.map { (key: Place) -> String in key.intValue.map { "[\($0)]" } ?? "." + key.stringValue }.joined()
        return "`\(String(spelled.drop { $0 == "." }))` = \(value) does not fit its field (a fraction where a whole number belongs, or a number out of range)"
    }

    private static func isPlacelessMisfit(_ error: Error) -> Bool {
        if case DecodingError.dataCorrupted(let context)? = error as? DecodingError { return context.codingPath.isEmpty }
        return false
    }

    /// A fraction, or a number past what an Int32 or a finite Float holds.
    private static func isSuspicious(_ value: NSNumber) -> Bool {
        let d = value.doubleValue
        return d != d.rounded() || !(abs(d) <= Double(Int32.max))
    }

    private struct Place: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) { self.stringValue = "\(intValue)"; self.intValue = intValue }
    }

    /// Every number in the document with its place, in document order (keys sorted, arrays in order).
    private static func numberPlaces(in value: Any, at path: [Place]) -> [([Place], NSNumber)] {
        switch value {
        case let object as [String: Any]:
            return object.keys.sorted().flatMap { numberPlaces(in: object[$0]!, at: path + [Place(stringValue: $0)]) }
        case let array as [Any]:
            return array.indices.flatMap { numberPlaces(in: array[$0], at: path + [Place(intValue: $0)]) }
        case let number as NSNumber:
            return [(path, number)]
        default:
            return []
        }
    }

    /// The document with the numbers at the given positions (in `numberPlaces`' order) set to 0.
    private static func rebuilt(_ value: Any, zeroing: Set<Int>, counter: inout Int) -> Any {
        switch value {
        case let object as [String: Any]:
            var copy: [String: Any] = [:]
            for key in object.keys.sorted() { copy[key] = rebuilt(object[key]!, zeroing: zeroing, counter: &counter) }
            return copy
        case let array as [Any]:
            var copy: [Any] = []
            copy.reserveCapacity(array.count)
            for element in array { copy.append(rebuilt(element, zeroing: zeroing, counter: &counter)) }
            return copy
        case let number as NSNumber:
            defer { counter += 1 }
            return zeroing.contains(counter) ? NSNumber(value: 0) : number
        default:
            return value
        }
    }

    /// Why `data` did not decode, in one line: where in the document (snake_case keys, as the file spells
    /// them) and what is wrong, without Swift's debug dump of coding keys.
    public static func problem(_ error: Error, in data: Data) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func place(_ path: [CodingKey]) -> String {
            let spelled = path.map { $0.intValue.map { "[\($0)]" } ?? "." + snakeCase($0.stringValue) }.joined()
            return spelled.isEmpty ? "the document" : "`" + String(spelled.drop { $0 == "." }) + "`"
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(place(context.codingPath + [key])) is missing"
        case .valueNotFound(let type, let context): return "\(place(context.codingPath)) is null where \(kind(type)) belongs"
        case .typeMismatch(let type, let context): return "\(place(context.codingPath)): expected \(kind(type))"
        case .dataCorrupted(let context):
            // Foundation says "not valid JSON" for a valid document holding, say, 16.5 where an integer belongs.
            if context.codingPath.isEmpty, (try? JSONSerialization.jsonObject(with: data)) != nil {
                return "a value does not fit its field (a fraction where a whole number belongs, or a number out of range)"
            }
            if context.codingPath.isEmpty, let depth = nestingDepth(data), depth > 512 {
                return "lists or mappings nested \(depth) deep, past the 512 levels a JSON reader takes (no file EmoPipe writes nests past 5)"
            }
            if context.codingPath.isEmpty { return "not valid JSON (or a number past a 64-bit float's range, such as 1e999)" }
            // An enum's "Cannot initialize X from invalid String value y" is Swift's wording of a value outside its choices.
            if let range = context.debugDescription.range(of: "from invalid String value ") {
                return "\(place(context.codingPath)): \"\(context.debugDescription[range.upperBound...])\" is not one of the values it takes"
            }
            return "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// How deep lists and mappings nest in `data` (brackets inside strings not counted), or nil when its brackets
    /// do not pair up: a measure of valid-looking JSON that a decoder refused for its depth alone.
    static func nestingDepth(_ data: Data) -> Int? {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in data {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1; deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1; if depth < 0 { return nil }
            default: break
            }
        }
        return depth == 0 ? deepest : nil
    }

    /// What a decoded type is, in the document's words rather than Swift's (`Array<Any>` is "a list").
    static func kind(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Array") || (name.hasPrefix("[") && !name.contains(":")) { return "a list" }
        if name.hasPrefix("Dictionary") || name.hasPrefix("[") { return "a mapping" }
        switch name {
        case "String", "Substring": return "text"
        case "Bool": return "true or false"
        case "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64": return "a whole number"
        case "Double", "Float", "Decimal": return "a number"
        default: return "a value of another kind"
        }
    }

    /// The encoded text of one value.
    public static func text<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
    }

    /// `executableSHA256` → `executable_sha256`, `nMels` → `n_mels`, `best_epoch` unchanged: words
    /// start at a capital after a lowercase letter or digit, and at the last capital of a run of
    /// capitals followed by a lowercase letter (as Foundation's `convertToSnakeCase` splits them).
    public static func snakeCase(_ key: String) -> String {
        let characters = Array(key)
        var out = ""
        for (i, c) in characters.enumerated() {
            if c.isUppercase, i > 0 {
                let previous = characters[i - 1]
                let next: Character? = i + 1 < characters.count ? characters[i + 1] : nil
                let startsWord = previous.isLowercase || previous.isNumber
                    || (previous.isUppercase && (next?.isLowercase ?? false))
                if startsWord && previous != "_" { out.append("_") }
            }
            out += c.lowercased()
        }
        return out
    }

    /// `n_mels` → `nMels`; leading and trailing underscores are kept, as Foundation keeps them.
    public static func camelCase(_ key: String) -> String {
        let core = key.drop { $0 == "_" }
        let leading = key.prefix(key.count - core.count)
        let trimmed = core.reversed().drop { $0 == "_" }
        let trailing = String(repeating: "_", count: core.count - trimmed.count)
        let words = String(trimmed.reversed()).split(separator: "_", omittingEmptySubsequences: true)
        guard let first = words.first else { return key }
        return leading + first + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + trailing
    }

    private struct NormalizedKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
