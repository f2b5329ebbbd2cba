/// Errors shared across layers. Each description is a sentence a user can act on.
public enum EmoError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidConfiguration(String)
    case io(path: String, reason: String)
    case interrupted

    public var description: String {
        switch self {
        case .invalidConfiguration(let why): return why
        case .io(let path, let reason): return "\(path.shownPath): \(reason)"
        case .interrupted: return "interrupted"
        }
    }
}
