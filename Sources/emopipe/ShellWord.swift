import EmoCore
import Foundation

/// Text as one word of a shell command a message suggests, for a user to paste.
enum ShellWord {
    /// Quoted when it holds anything but plain characters; control characters escaped (a message must not
    /// steer the terminal).
    static func of(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_./-:=@%+,".unicodeScalars.contains($0)) }
        return plain && !text.isEmpty ? text : ("'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'").escaped
    }

    /// Words joined into a command line.
    static func command(_ words: [String]) -> String { words.map(of).joined(separator: " ") }

    /// A relative path as an argument: one starting with `-` gets `./`, or it would read as an option.
    static func path(_ path: String) -> String { path.hasPrefix("-") ? "./" + path : path }
}
