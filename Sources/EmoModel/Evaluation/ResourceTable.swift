import Foundation

/// What one stage execution behind a report cost: the run that executed it, wall time, process CPU
/// time and peak resident memory (nil where it was not measured).
public struct StageResources: Equatable, Sendable {
    public var stage: String
    public var runId: String
    public var seconds: Double?
    public var cpuSeconds: Double?
    public var peakRSSMB: Double?

    public init(stage: String, runId: String, seconds: Double?, cpuSeconds: Double?, peakRSSMB: Double?) {
        self.stage = stage; self.runId = runId; self.seconds = seconds; self.cpuSeconds = cpuSeconds; self.peakRSSMB = peakRSSMB
    }
}

extension HTMLReport {
    /// The "Resources" card: one row per stage execution that produced what the report evaluates.
    static func resourcesSection(_ rows: [StageResources], budgetMB: Int?) -> String {
        guard !rows.isEmpty else { return "" }
        var h = "<section class=\"card\" id=\"resources\">\n<h2>Resources</h2>\n"
        h += "<p class=\"note\">The executions that produced this evaluation's inputs: wall time, CPU time of the whole "
        h += "process (user + system, every thread) and peak resident memory while each ran"
        h += budgetMB.map { "; memory budget \($0) MB" } ?? "; no memory budget"
        h += ".</p>\n<div class=\"scroll\"><table class=\"metrics\" id=\"resources-table\">\n<thead><tr><th>Stage</th>"
        h += "<th class=\"text\">Run</th><th>Seconds</th><th>CPU seconds</th><th>Peak RSS (MB)</th></tr></thead>\n<tbody>\n"
        for row in rows {
            h += "<tr><td>\(esc(row.stage))</td><td class=\"text\"><code>\(esc(row.runId))</code></td>"
            h += "<td>\(row.seconds.map { fmt($0, 1) } ?? "—")</td><td>\(row.cpuSeconds.map { fmt($0, 1) } ?? "—")</td>"
            h += "<td>\(row.peakRSSMB.map { fmt($0, 0) } ?? "—")</td></tr>\n"
        }
        h += "</tbody>\n</table></div>\n</section>\n"
        return h
    }
}
