import EmoCore
import EmoStore
import Foundation

/// A sweep's results per trial, and the best one: what `emopipe sweep` prints (text, `--json`) and
/// writes (`leaderboard.json`, `report.html`, `best.yaml`).
public struct SweepLeaderboard: Sendable {
    public struct Entry: Sendable {
        public var trial: SweepTrial
        public var status: SweepStatus
        /// The metric at the trial's last budget (for halving: the last one it reached).
        public var metric: Double?
        /// Wall time of every run of the trial.
        public var seconds: Double
        /// The trial's last run.
        public var run: String?
        /// The epoch budget it last ran at (halving only).
        public var epochs: Int?
        public var reason: String?

        /// A trial that has not run yet: its 0 seconds would read as a trial that took no time.
        var notTimed: Bool { [.pending, .running].contains(status) && seconds == 0 }

        /// Seconds as shown, none for a trial not timed yet.
        var secondsText: String? {
            notTimed ? nil : seconds.fixedText(places: 1)
        }
    }

    public var sweep: String
    public var metric: String
    public var direction: SweepSpec.Direction
    public var entries: [Entry]
    /// The best finished trial's number.
    public var best: Int?

    public var bestEntry: Entry? { best.flatMap { index in entries.first { $0.trial.index == index } } }

    /// `{"trials": [{trial, params, metric, seconds, status, run, epochs}], "best": trial}`.
    public var json: ParamValue {
        .object([
            "sweep": .string(sweep), "metric": .string(metric), "direction": .string(direction.rawValue),
            "best": best.map(ParamValue.int) ?? .null,
            "trials": .array(entries.map { entry in
                .object(["trial": .int(entry.trial.index), "params": entry.trial.params.nestingDottedKeys,
                         "metric": entry.metric.map(ParamValue.double) ?? .null, "seconds": entry.notTimed ? .null : .double(Self.centiseconds(entry.seconds)),
                         "status": .string(entry.status.rawValue), "run": entry.run.map(ParamValue.string) ?? .null,
                         "epochs": entry.epochs.map(ParamValue.int) ?? .null, "reason": entry.reason.map(ParamValue.string) ?? .null])
            }),
        ])
    }

    static func centiseconds(_ seconds: Double) -> Double { (seconds * 100).rounded() / 100 }

    /// Best first; unfinished and failed trials last, in trial order.
    public var ranked: [Entry] {
        let sign = direction == .maximize ? -1.0 : 1.0
        return entries.sorted { a, b in
            let ka = (a.status == .done ? 0 : a.status == .stopped ? 1 : 2, (a.metric ?? 0) * sign, a.trial.index)
            let kb = (b.status == .done ? 0 : b.status == .stopped ? 1 : 2, (b.metric ?? 0) * sign, b.trial.index)
            return ka < kb
        }
    }

    /// A fixed-width table, best first.
    public var text: String {
        func row(_ cells: [String]) -> String {
            zip(cells, [5, 6, 12, max(11, metric.count + 1), 9, 23]).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined()
                + (cells.last ?? "")
        }
        var lines = ["sweep \(sweep): \(direction.rawValue) \(metric)",
                     row(["rank", "trial", "status", metric, "seconds", "run", "params"])]
        for (rank, entry) in ranked.enumerated() {
            let score = entry.metric.map { $0.fixedText(places: 4) } ?? "-"
            let status = entry.status.rawValue + (entry.epochs.map { "@\($0)" } ?? "")
            lines.append(row(["\(rank + 1)", "\(entry.trial.index)", status, score, entry.secondsText ?? "-",
                              entry.run ?? "-", Self.settingsText(entry.trial)]))
        }
        if let best = bestEntry {
            lines.append("best: trial \(best.trial.index) (\(metric) \((best.metric ?? .nan).fixedText(places: 4)))")
        } else {
            lines.append("best: none yet (no trial finished)")
        }
        return lines.joined(separator: "\n")
    }

    static func settingsText(_ trial: SweepTrial) -> String {
        trial.settings.map { "\($0.key)=\($0.value.canonicalJSON)" }.joined(separator: " ")
    }
}

extension SweepRunner {
    /// What the state file says of every trial.
    func leaderboard(_ state: SweepState) -> SweepLeaderboard {
        let stopped = halvingStopped(state)
        // The trial in hand: running while a sweep holds the lock; left by a sweep that was killed, interrupted.
        let inHand = (try? RegularFile.read(files.running)).flatMap { try? JSONOutput.decoder().decode(RunningTrial.self, from: $0) }
        let inHandStatus: SweepStatus = WorkDirectoryLock.isHeld(path: files.lock) == true ? .running : .interrupted
        let entries = trials.map { trial -> SweepLeaderboard.Entry in
            let attempts = state.attempts.filter { $0.trial == trial.index }
            let last = attempts.max { ($0.epochs ?? 0) < ($1.epochs ?? 0) }
            var status = last?.status ?? .pending
            if spec.strategy == .halving, status == .done, let finalBudget = spec.halving?.budgets.last, last?.epochs != finalBudget {
                status = stopped.contains(trial.index) ? .stopped : .pending
            }
            if let inHand, inHand.trial == trial.index, state.attempt(trial: trial.index, epochs: inHand.epochs)?.status != .done {
                return .init(trial: trial, status: inHandStatus, metric: nil, seconds: attempts.reduce(0) { $0 + $1.seconds },
                             run: nil, epochs: inHand.epochs, reason: nil)
            }
            return .init(trial: trial, status: status, metric: last?.metric, seconds: attempts.reduce(0) { $0 + $1.seconds },
                         run: last?.run, epochs: last?.epochs, reason: last?.reason)
        }
        let best = entries.filter { $0.status == .done && $0.metric != nil }
            .map { ($0.trial.index, $0.metric ?? 0) }
            .sorted { isBetter($0, than: $1) }.first?.0
        return SweepLeaderboard(sweep: id, metric: spec.metric, direction: spec.direction, entries: entries, best: best)
    }

    /// For halving: the trials dropped at a budget whose every candidate has finished.
    private func halvingStopped(_ state: SweepState) -> Set<Int> {
        guard spec.strategy == .halving, let budgets = spec.halving?.budgets else { return [] }
        var candidates = trials.map(\.index), stopped = Set<Int>()
        for budget in budgets.dropLast() {
            let settled = candidates.allSatisfy { index in
                guard let attempt = state.attempt(trial: index, epochs: budget) else { return false }
                return attempt.status == .done || attempt.status == .failed
            }
            guard settled else { break }
            let next = survivors(of: candidates, epochs: budget, state: state)
            stopped.formUnion(Set(candidates).subtracting(next))
            candidates = next
        }
        return stopped
    }

    // MARK: Files

    func writeOutputs(_ board: SweepLeaderboard) throws {
        try DurableFile.write(Data((board.json.canonicalJSON + "\n").utf8), to: files.leaderboard)
        try DurableFile.write(Data(htmlReport(board).utf8), to: files.report)
        if let best = board.bestEntry {
            try DurableFile.write(Data(bestManifestText(best).utf8), to: files.bestManifest)
        }
    }

    /// The best trial's full manifest: the sweep's settings with the trial's laid over them, paths
    /// made absolute, no `sweep:` block; `emopipe run` on it trains the best trial's model again.
    func bestManifestText(_ best: SweepLeaderboard.Entry) -> String {
        let trialManifest = manifest(for: best.trial, epochs: best.epochs)
        var params = trialManifest.overrides
        for override in trialManifest.commandLine {
            params[override.stage, default: [:]] = ParamValue.merge(params[override.stage] ?? [:], [override.key: override.value])
        }
        var lines = [
            "# The best trial (\(best.trial.index)) of sweep \(id): \(spec.metric) \(best.metric.map { $0.fixedText(places: 4) } ?? "?"),",
            "# run \(best.run ?? "?"). `emopipe run` on this file trains and evaluates it again.",
            "name: \(Self.yamlFlow(.string(manifest.name + "-best")))",
            "pipeline: \(Self.yamlFlow(.string(manifest.pipelinePath)))",
            "data: \(Self.yamlFlow(.string(manifest.dataRoot)))",
            "label_map: \(Self.yamlFlow(.string(manifest.labelMap)))",
            "include_song: \(manifest.includeSong)",
            "seed: \(manifest.seed)",
            "threads: \(manifest.threads)",
        ]
        // How the sweep ran (memory, publishing), though no fingerprint holds them: the same run, not only the same result.
        var resources: [String: ParamValue] = [:]
        if let megabytes = manifest.resources.maxMemoryMB { resources["max_memory_mb"] = .int(megabytes) }
        if manifest.resources.publishAfterSeconds != ResourceSettings.defaultPublishAfterSeconds {
            resources["publish_after_seconds"] = .double(manifest.resources.publishAfterSeconds)
        }
        if !resources.isEmpty { lines.append("resources: \(Self.yamlFlow(.object(resources)))") }
        lines.append("params:")
        for stage in params.keys.sorted() {
            lines.append("  \(Self.yamlFlow(.string(stage))): \(Self.yamlFlow(.object(params[stage] ?? [:])))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// YAML flow style with a space after every colon and comma (JSON's `{"a":1}` is not YAML 1.1).
    static func yamlFlow(_ value: ParamValue) -> String {
        switch value {
        case .object(let fields):
            return "{" + fields.keys.sorted().map { ParamValue.quote($0) + ": " + yamlFlow(fields[$0] ?? .null) }.joined(separator: ", ") + "}"
        case .array(let items): return "[" + items.map(yamlFlow).joined(separator: ", ") + "]"
        default: return value.canonicalJSON
        }
    }

    func htmlReport(_ board: SweepLeaderboard) -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let rows = board.ranked.enumerated().map { rank, entry in
            let cells = ["\(rank + 1)", "\(entry.trial.index)", entry.status.rawValue + (entry.epochs.map { " (\($0) epochs)" } ?? ""),
                         entry.metric.map { $0.fixedText(places: 4) } ?? "—", entry.secondsText ?? "—",
                         entry.run ?? "—", SweepLeaderboard.settingsText(entry.trial)]
            let style = entry.trial.index == board.best ? " class=\"best\"" : ""
            return "<tr\(style)>" + cells.map { "<td>\(escape($0))</td>" }.joined() + "</tr>"
        }
        let bestLine = board.bestEntry.map { "Best: trial \($0.trial.index); its manifest is <code>best.yaml</code> beside this report." }
            ?? "No trial has finished yet."
        return """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>sweep \(escape(id))</title>
        <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}tr.best{background:#e6f4e6}</style>
        </head><body>
        <h1>Sweep \(escape(id))</h1>
        <p>\(escape(spec.strategy.rawValue)) search over \(board.entries.count) trial(s), \(escape(spec.direction.rawValue)) <code>\(escape(spec.metric))</code> of metrics.json. \(bestLine)</p>
        <table><tr><th>rank</th><th>trial</th><th>status</th><th>\(escape(spec.metric))</th><th>seconds</th><th>run</th><th>params</th></tr>
        \(rows.joined(separator: "\n"))
        </table></body></html>

        """
    }
}
