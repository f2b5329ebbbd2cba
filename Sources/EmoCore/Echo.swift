import Foundation

extension String {
    /// The text as a message quotes it: `escaped`, and cut to its first 160 characters, saying its
    /// length, when longer than 200.
    public var echoed: String {
        // Megabytes of text (a blob read as a name) are not escaped nor counted in characters whole: that takes seconds.
        if utf8.count > 1 << 16 {
            return String(String.UnicodeScalarView(unicodeScalars.prefix(400))).escapedPrefix(characters: 160) + "… (\(utf8.count) bytes)"
        }
        // Counted in scalars: one character of thousands of combining marks is long text too.
        let escaped = self.escaped
        guard escaped.unicodeScalars.count > 200 else { return escaped }
        return escapedPrefix(characters: 160) + "… (\(count) characters)"
    }

    /// A recorded message as a listing shows it: `escaped` whole up to 4 KB (EmoPipe's own reasons are shorter),
    /// else its first 2,000 characters and its length (an edited database can hold megabytes in one).
    public var escapedRecorded: String {
        guard utf8.count > 4096 else { return escaped }
        return String(String.UnicodeScalarView(unicodeScalars.prefix(4000))).escapedPrefix(characters: 2000) + "… (\(utf8.count) bytes)"
    }

    /// `escaped`, cut to at most `characters` scalars between escapes, never inside one (`\u{1` is no escape).
    /// Counted in scalars, each once: a character of thousands of combining marks is cut like any long text,
    /// in time linear in what is kept.
    func escapedPrefix(characters limit: Int) -> String {
        Self.joined(unicodeScalars.lazy.map(Self.escape), upTo: limit)
    }

    /// JSON text as a message quotes it: `echoed`, but a long one is cut between JSON's own escapes too
    /// (`\u0001`, `\"`), never inside one.
    public var echoedJSON: String {
        guard utf8.count <= 1 << 16, escaped.unicodeScalars.count > 200 else { return echoed }
        var pieces: [String] = [], scalars = unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "\\", let next = scalars.next() else { pieces.append(Self.escape(scalar)); continue }
            // \uXXXX is six characters; any other escape two.
            let tail = next == "u" ? (0..<4).compactMap { _ in scalars.next() }.map(Self.escape).joined() : ""
            pieces.append("\\" + Self.escape(next) + tail)
        }
        return Self.joined(pieces, upTo: 160) + "… (\(count) characters)"
    }

    /// `pieces` joined while the total stays within `limit` scalars, a whole piece or none; each piece is
    /// counted once.
    private static func joined(_ pieces: some Sequence<String>, upTo limit: Int) -> String {
        var shown = "", count = 0
        for piece in pieces {
            let length = piece.unicodeScalars.count
            guard count + length <= limit else { break }
            shown += piece
            count += length
        }
        return shown
    }

    /// A key (of a manifest, a pipeline file, `--set`) as a message names it: keys are printable ASCII, so
    /// anything else is spelt out (`\u{20}`, `\u{200B}`, `\u{212A}` for a Kelvin sign that looks like K), and
    /// `epochs ` or a lookalike is told from the key it looks like. Cut as `echoed` cuts.
    public var shownKey: String {
        func spelt(_ scalar: Unicode.Scalar) -> String {
            (0x21...0x7E).contains(scalar.value) ? String(scalar) : "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        }
        let pieces = unicodeScalars.prefix(400).map(spelt)
        guard pieces.reduce(0, { $0 + $1.count }) > 200 else { return pieces.joined() }
        return Self.joined(pieces, upTo: 160) + "… (\(utf8.count) bytes)"
    }

    /// A path as a message names it: `escaped`, and an empty one said to be empty rather than shown
    /// as nothing (`emopipe: : cannot read`).
    public var shownPath: String { isEmpty ? "(an empty path)" : escaped }

    /// `escaped`, but keeping line breaks and tabs: for messages that are several lines on purpose, whose
    /// echoed parts (a file name, an argument) must still not move the cursor or clear the terminal. A
    /// backstop: a value put into a message is `echoed` there, line breaks included.
    public var terminalSafe: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.split(separator: "\t", omittingEmptySubsequences: false).map { String($0).escaped }.joined(separator: "\t")
        }.joined(separator: "\n")
    }

    /// Control and bidirectional-override characters escaped (`\n`, `\u{1B}`), so that a name or a
    /// path cannot break a one-line message or steer a terminal. Paths are shown this way, whole.
    public var escaped: String {
        var escaped = ""
        for scalar in unicodeScalars { escaped += Self.escape(scalar) }
        return escaped
    }

    /// One scalar as `escaped` shows it: every control character, and of the format characters those that
    /// steer text direction, spelt out; any other as it is.
    private static func escape(_ scalar: Unicode.Scalar) -> String {
        let category = scalar.properties.generalCategory
        guard category == .control || (category == .format && scalar.properties.isBidiControl) else { return String(scalar) }
        return scalar == "\n" ? "\\n" : scalar == "\t" ? "\\t" : "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
    }
}

extension String {
    /// An optional sign and ASCII digits: what `Int(_:)` reads unless the number does not fit, so a
    /// refusal can say "out of range" of `99999999999999999999` instead of "not an integer".
    public var isWholeNumberText: Bool {
        let digits = first == "-" || first == "+" ? dropFirst() : Substring(self)
        return !digits.isEmpty && digits.unicodeScalars.allSatisfy { ("0"..."9").contains($0) }
    }
}

/// Bytes meant as text that may not be UTF-8 (a file name, a command-line argument): Swift would read each
/// bad byte as U+FFFD, so they are shown instead as `\xff` escapes, every valid character kept and each
/// backslash doubled (a name's own `\x41` stays apart from an escape).
public enum InvalidUTF8 {
    /// A C string (an argument, an environment variable) shown with `\x` escapes when it is not valid
    /// UTF-8; nil when it is.
    public static func shown(ifInvalid text: UnsafePointer<CChar>) -> String? {
        let bytes = Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
        return String(validating: bytes, as: UTF8.self) == nil ? shown(bytes) : nil
    }

    public static func shown(_ bytes: [UInt8]) -> String {
        var shown = "", start = 0
        while start < bytes.count {
            // A character is 1 to 4 bytes; a byte no valid character starts with is escaped alone.
            let character = (1...min(4, bytes.count - start)).lazy.compactMap { length in
                String(validating: bytes[start..<(start + length)], as: UTF8.self).map { ($0, length) }
            }.first
            if let (text, length) = character {
                shown += text == "\\" ? "\\\\" : text
                start += length
            } else {
                shown += "\\x" + String(bytes[start], radix: 16).leftPadded(to: 2)
                start += 1
            }
        }
        return shown
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
