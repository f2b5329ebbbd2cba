import Foundation
import Logging

/// One place that sets up swift-log: plain `HH:mm:ss level label: message` lines on stderr,
/// so stdout stays free for `--json`. `EMOPIPE_LOG_LEVEL` (trace … critical) sets the level.
public enum Log {
    private static let bootstrapOnce: Void = {
        let given = ProcessInfo.processInfo.environment["EMOPIPE_LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 }
        let named = given.flatMap { Logger.Level(rawValue: $0.lowercased()) }
        LoggingSystem.bootstrap { label in PlainLogHandler(label: label, logLevel: named ?? .info) }
        if let given, named == nil {
            // Said once, not ignored: a mistyped level would otherwise look like a quiet run.
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            StandardStream.error.write(Data("emopipe: EMOPIPE_LOG_LEVEL = \"\(given.escaped)\" is not a level (\(levels)); using info\n".utf8))
        }
    }()

    public static func logger(_ label: String) -> Logger {
        _ = bootstrapOnce
        return Logger(label: label)
    }
}

struct PlainLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    private static let lock = NSLock()

    init(label: String, logLevel: Logger.Level) { self.label = label; self.logLevel = logLevel }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = Log.plainLine(level: event.level, label: label, message: "\(event.message)")
        Self.lock.lock()
        StandardStream.error.write(Data(text.utf8))
        Self.lock.unlock()
    }
}

extension Log {
    /// `HH:mm:ss level label: message` and a line break, the one shape of a logged line (progress logged
    /// off a terminal takes it too, so a job's log reads in one order of time). A label or message with a line
    /// break or an escape sequence in it (a path: `merge <folder>`) is shown escaped: one line per message.
    public static func plainLine(level: Logger.Level, label: String, message: String) -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        let clock = String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
        return "\(clock) \(level.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(label.escaped): \(message.escaped)\n"
    }
}
