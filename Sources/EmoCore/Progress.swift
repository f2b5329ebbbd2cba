import Foundation
import Logging

/// Progress of a long piece of work: items done, rate and ETA.
///
/// On a terminal it redraws one status line on stderr (at most 10 times a second); otherwise it
/// logs a line (`HH:mm:ss info    label: …`) every `logInterval` seconds and at the end, so CI logs stay readable.
///
///     let progress = ProgressReporter(label: "ingest", total: files.count, unit: "files")
///     for f in files { work(f); progress.advance() }
///     progress.finish()
public final class ProgressReporter: @unchecked Sendable {
    public let label: String
    public let total: Int
    public let unit: String
    private let isTerminal: Bool
    private let logInterval: TimeInterval
    private let started = Date()
    private let lock = NSLock()
    private var done = 0
    private var failed = 0
    private var lastDraw = Date.distantPast
    private var finished = false
    /// Work that ends within this many seconds prints no line at all (a command that is usually quick).
    private let quietFor: TimeInterval
    private var emitted = false
    private let write: ((String) -> Void)?
    private var heartbeat: DispatchSourceTimer?

    /// With `heartbeat`, the line is also drawn (logged) when no item ends for a while: one item that
    /// takes minutes (a huge clip) still shows the work is alive, and for how long.
    /// `write` nil draws on stderr: on a terminal, one line cut to its width and cleared before other text.
    public init(label: String, total: Int, unit: String = "items",
                isTerminal: Bool = ProgressReporter.stderrIsATerminal, logInterval: TimeInterval = 5, quietFor: TimeInterval = 0,
                heartbeat: Bool = false, write: ((String) -> Void)? = nil) {
        self.label = label; self.total = total; self.unit = unit
        self.isTerminal = isTerminal; self.logInterval = logInterval; self.quietFor = quietFor; self.write = write
        if heartbeat { startHeartbeat(every: isTerminal ? 1 : logInterval) }
    }

    deinit { heartbeat?.cancel() }

    private func startHeartbeat(every interval: TimeInterval) {
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(100))
        timer.setEventHandler { [weak self] in self?.beat(interval: interval) }
        heartbeat = timer
        timer.resume()
    }

    private func beat(interval: TimeInterval) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard !finished, done < total, now.timeIntervalSince(lastDraw) >= interval * 0.9,
              now.timeIntervalSince(started) >= quietFor else { return }
        lastDraw = now
        emit(final: false, now: now)
    }

    public func advance(by n: Int = 1, failed newFailures: Int = 0) {
        lock.lock(); defer { lock.unlock() }
        done += n; failed += newFailures
        let now = Date()
        let due = isTerminal ? now.timeIntervalSince(lastDraw) >= 0.1 : now.timeIntervalSince(lastDraw) >= logInterval
        if due && done < total && now.timeIntervalSince(started) >= quietFor {
            lastDraw = now
            emit(final: false, now: now)
        }
    }

    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        heartbeat?.cancel()
        let now = Date()
        if emitted || now.timeIntervalSince(started) >= quietFor { emit(final: true, now: now) }
    }

    /// The status text, e.g. `ingest 512/960 (53%) 412.3 files/s ETA 1s, 2 failed`.
    public func line(now: Date = Date()) -> String { "\(label) " + figures(now: now) }

    /// The line without its label: `512/960 (53%) 412.3 files/s ETA 1s, 2 failed`.
    func figures(now: Date) -> String {
        let elapsed = max(now.timeIntervalSince(started), 1e-6)
        let rate = Double(done) / elapsed
        var text = "\(done)/\(total)"
        if total > 0 { text += " (\(Int(Double(done) * 100 / Double(total)))%)" }
        text += String(format: " %.1f %@/s", rate, unit)
        if done < total, rate > 0 { text += " ETA " + Self.duration(Double(total - done) / rate) }
        else if done < total { text += ", " + Self.duration(elapsed) + " so far" }
        else { text += " in " + Self.duration(elapsed) }
        if failed > 0 { text += ", \(failed) failed" }
        return text
    }

    private func emit(final: Bool, now: Date) {
        emitted = true
        let text = line(now: now)
        switch (isTerminal, write) {
        case (true, let write?): write("\r\u{1B}[K" + text + (final ? "\n" : ""))
        // The last line ends with a line break and is never redrawn: it may wrap, and keeps its end (time, failures).
        case (true, nil): StandardStream.drawProgressLine(final ? text : Self.cut(text, to: Self.terminalColumns()), final: final)
        // Off a terminal (a CI or Slurm log) it is a log line, with the time it was written.
        case (false, let write):
            let logged = Log.plainLine(level: .info, label: label, message: figures(now: now))
            if let write { write(logged) } else { StandardStream.error.write(Data(logged.utf8)) }
        }
    }

    /// Whether stderr is a terminal that takes the redrawn line (TERM=dumb does not move the cursor back).
    public static var stderrIsATerminal: Bool {
        isatty(STDERR_FILENO) != 0 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// The terminal's width in columns, or nil when it does not say.
    static func terminalColumns() -> Int? {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// `text` cut to fit in `columns` (one column left, so the cursor does not wrap): a line wider than the
    /// terminal wraps, and the next redraw then clears only its last part, stacking lines.
    static func cut(_ text: String, to columns: Int?) -> String {
        guard let columns, text.count >= columns else { return text }
        return String(text.prefix(max(1, columns - 1)))
    }

    /// `seconds` as people read it (4.2s, 3m07s, 2h05m). Values come from records too, where a damaged
    /// row may hold anything: one that is not finite, or past a thousand years, is printed as a number.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 3.2e10 else { return String(format: "%gs", seconds) }
        if seconds < 10 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }
}
