import Foundation
import Logging

/// One place that sets up swift-log: plain lines on stderr, so stdout stays free for `--json`.
public enum Log {
    private static let bootstrapOnce: Void = {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["EMOPIPE_LOG_LEVEL"]
                .flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
    }()

    public static func logger(_ label: String) -> Logger {
        _ = bootstrapOnce
        return Logger(label: "emopipe.\(label)")
    }
}
