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
    /// does not fit its field (1.5 or 2^70 for an Int, 1e39 for a Float); the value is found by decoding
    /// again with one number at a time set to 0, and named with its place.
    public static func problem<T: Decodable>(_ error: Error, in data: Data, decoding type: T.Type) -> String {
        let general = problem(error, in: data)
        guard isPlacelessMisfit(error), let root = try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) else {
            return general
        }
        // Only fractions and numbers out of Int32 or Float range can be it: a legitimate number set to 0
        // could fail the document in another way and be named wrongly. Bounded: a document with more
        // such numbers than a model description holds is named as a whole.
        let suspects = numberPlaces(in: root, at: []).filter { isSuspicious($0.1) }
        guard suspects.count <= 10_000 else { return general }
        for (path, value) in suspects {
            guard let patched = try? JSONSerialization.data(withJSONObject: replacing(path, in: root, with: 0), options: .fragmentsAllowed)
            else { continue }
            do { _ = try decoder().decode(T.self, from: patched) } catch where isPlacelessMisfit(error) { continue } catch {}
            let spelled: String = path.map { (key: Place) -> String in key.intValue.map { "[\($0)]" } ?? "." + key.stringValue }.joined()
            let place = String(spelled.drop { $0 == "." })
            return "`\(place)` = \(value) does not fit its field (a fraction where a whole number belongs, or a number out of range)"
        }
        return general
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

    private static func replacing(_ path: [Place], in value: Any, with replacement: Any) -> Any {
        guard let first = path.first else { return replacement }
        let rest = Array(path.dropFirst())
        if var object = value as? [String: Any], let child = object[first.stringValue] {
            object[first.stringValue] = replacing(rest, in: child, with: replacement)
            return object
        }
        if var array = value as? [Any], let index = first.intValue, array.indices.contains(index) {
            array[index] = replacing(rest, in: array[index], with: replacement)
            return array
        }
        return value
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
        case .valueNotFound(let type, let context): return "\(place(context.codingPath)) is null where a \(type) belongs"
        case .typeMismatch(_, let context): return "\(place(context.codingPath)): \(context.debugDescription)"
        case .dataCorrupted(let context):
            // Foundation says "not valid JSON" for a valid document holding, say, 16.5 where an integer belongs.
            if context.codingPath.isEmpty, (try? JSONSerialization.jsonObject(with: data)) != nil {
                return "a value does not fit its field (a fraction where a whole number belongs, or a number out of range)"
            }
            return "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
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
