/// Errors shared across layers. Each description is a sentence a user can act on.
public enum EmoError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidConfiguration(String)
    case io(path: String, reason: String)
    case interrupted

    /// What is wrong with the file an `.io` error names, without the path (for a message that names
    /// the file its own way); for another error, its description.
    public static func reason(of error: Error) -> String {
        if case .io(_, let reason)? = error as? EmoError { return reason }
        return "\(error)"
    }

    public var description: String {
        switch self {
        case .invalidConfiguration(let why): return why
        case .io(let path, let reason): return "\(path.shownPath): \(reason)"
        case .interrupted: return "interrupted"
        }
    }
}
