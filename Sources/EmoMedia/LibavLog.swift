// libav's logging: never printed (our CLI owns stderr); instead the last error-level message of the
// current thread is kept so it can go into a MediaError's reason.
import CFFmpeg
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Process-wide libav logging policy, for other layers that call FFmpeg directly (e.g. video decoding).
public enum MediaLogging {
    /// Routes libav's log output away from stderr (idempotent; EmoMedia calls it itself before any libav use).
    /// Messages at error level are kept per thread only while EmoMedia is working on a file.
    public static func silenceLibav() { LibavLog.install() }
}

/// Receives libav messages logged on the thread that installed it.
final class LogCapture {
    private(set) var lastError: String?
    fileprivate func record(_ message: String) { lastError = message }
}

enum LibavLog {
    /// Installs the silent callback once per process (Swift runs global initialisers exactly once).
    static func install() { _ = installed }

    /// Runs `body` with a capture attached to this thread. Calls are synchronous, so every libav call
    /// made for one file logs on the same thread; concurrent files on other threads do not mix.
    static func capturing<T, E: Error>(_ body: (LogCapture) throws(E) -> T) throws(E) -> T {
        install()
        let capture = LogCapture()
        let previous = pthread_getspecific(captureKey)
        pthread_setspecific(captureKey, Unmanaged.passUnretained(capture).toOpaque())
        defer { pthread_setspecific(captureKey, previous) }
        return try withExtendedLifetime(capture) { () throws(E) -> T in try body(capture) }
    }

    /// libav's text for an error code, e.g. "Invalid data found when processing input".
    static func describe(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        av_strerror(code, &buffer, buffer.count)
        return String(cString: buffer)
    }

    /// "<libav text for code>" plus the last logged message when it adds something.
    static func reason(_ code: Int32, _ capture: LogCapture) -> String {
        let text = describe(code)
        guard let logged = capture.lastError, !logged.isEmpty, logged != text else { return text }
        // FFmpeg's message may quote the input (a lavfi graph, a URL): escaped and cut as any echoed value.
        return "\(text) (\(logged.echoed))"
    }
}

private let captureKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

private let installed: Void = {
    av_log_set_level(AV_LOG_ERROR)
    av_log_set_callback(logCallback)
}()

private func logCallback(_ avcl: UnsafeMutableRawPointer?, _ level: Int32,
                         _ format: UnsafePointer<CChar>?, _ args: CVaListPointer?) {
    guard level <= AV_LOG_ERROR, let format, let args, let slot = pthread_getspecific(captureKey) else { return }
    var line = [CChar](repeating: 0, count: 1024)
    var printPrefix: Int32 = 0  // no "[ctx @ 0x...]" prefix: addresses would make reasons non-deterministic
    av_log_format_line2(avcl, level, format, args, &line, Int32(line.count), &printPrefix)
    let message = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
    guard !message.isEmpty else { return }
    Unmanaged<LogCapture>.fromOpaque(slot).takeUnretainedValue().record(message)
}
