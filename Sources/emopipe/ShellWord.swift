import EmoCore
import Foundation

/// Text as one word of a shell command a message suggests, for a user to paste.
enum ShellWord {
    /// Quoted when it holds anything but plain characters: in single quotes, or, when it holds a control
    /// character (which a message must not print raw), in bash's `$'…'` with that character as an escape, so
    /// the pasted word still names the same file.
    static func of(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_./-:=@%+,".unicodeScalars.contains($0)) }
        if plain && !text.isEmpty { return text }
        guard text.escaped != text else { return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return "$'" + text.unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\\": return "\\\\"
            case "'": return "\\'"
            default:
                guard String(scalar).escaped != String(scalar) else { return String(scalar) }
                return scalar.value < 0x80 ? String(format: "\\x%02x", scalar.value)
                    : scalar.value <= 0xFFFF ? String(format: "\\u%04x", scalar.value) : String(format: "\\U%08x", scalar.value)
            }
        }.joined() + "'"
    }

    /// Words joined into a command line.
    static func command(_ words: [String]) -> String { words.map(of).joined(separator: " ") }

    /// A relative path as an argument: one starting with `-` gets `./`, or it would read as an option.
    static func path(_ path: String) -> String { path.hasPrefix("-") ? "./" + path : path }
}
