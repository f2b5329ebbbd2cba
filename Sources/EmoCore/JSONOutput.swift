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
