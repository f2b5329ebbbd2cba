import Foundation

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

/// Foundation's file errors (`Data(contentsOf:)`, `FileManager`) print as NSError dumps; these say
/// which file and why, as the rest of emopipe's messages do.
public enum FileError {
    /// Why a Foundation file operation failed: the POSIX reason under it when there is one.
    public static func reason(of error: Error) -> String {
        posixCode(of: error).map { String(cString: strerror($0)) } ?? error.localizedDescription
    }

    /// The POSIX error under a Foundation file error (errno's value), when there is one.
    public static func posixCode(of error: Error) -> Int32? {
        let bridged = error as NSError
        if bridged.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: bridged.code) }
        let underlying = bridged.userInfo[NSUnderlyingErrorKey] as? NSError
        if let code = underlying?.code, underlying?.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: code) }
        // Foundation on Linux leaves some errors without the POSIX one under them: said as the system says it.
        let posix: [CocoaError.Code: Int32] = [.fileNoSuchFile: ENOENT, .fileReadNoSuchFile: ENOENT, .fileReadNoPermission: EACCES,
                                               .fileWriteNoPermission: EACCES, .fileWriteOutOfSpace: ENOSPC, .fileWriteVolumeReadOnly: EROFS]
        return (error as? CocoaError).flatMap { posix[$0.code] }
    }

    /// `path: reason` for a Foundation file error; any other error as it describes itself.
    public static func describe(_ error: Error) -> String {
        let bridged = error as NSError
        // Decoding errors share the domain on Linux: only an error that names a file is reworded.
        guard bridged.domain == NSCocoaErrorDomain,
              let path = bridged.userInfo[NSFilePathErrorKey] as? String ?? (bridged.userInfo[NSURLErrorKey] as? URL)?.path
        else { return "\(error)" }
        return "\(path.shownPath): \(reason(of: error))"
    }
}

extension String {
    /// This message without the "`subject`: " it starts with, for a line that names the subject already.
    public func withoutLead(_ subject: String) -> String {
        hasPrefix(subject + ": ") ? String(dropFirst(subject.count + 2)) : self
    }
}
