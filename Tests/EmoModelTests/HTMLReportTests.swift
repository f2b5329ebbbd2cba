import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import EmoModel

/// Checks that markup is well-formed: every element closed in order (a small scanner that needs no
/// XML library), and, where Foundation has XMLParser, that it parses as XML after the doctype.
enum Markup {
    /// The open/close balance of every element; returns the problems found (empty when fine).
    static func balanceProblems(_ html: String) -> [String] {
        var problems: [String] = []
        var stack: [String] = []
        var rest = Substring(html)
        while let lt = rest.firstIndex(of: "<") {
            guard let gt = rest[lt...].firstIndex(of: ">") else { problems.append("unterminated tag"); break }
            let tag = rest[rest.index(after: lt)..<gt]
            rest = rest[rest.index(after: gt)...]
            if tag.hasPrefix("!") || tag.hasPrefix("?") { continue }
            if tag.hasPrefix("/") {
                let name = String(tag.dropFirst()).trimmingCharacters(in: .whitespaces)
                if stack.last == name { stack.removeLast() } else { problems.append("</\(name)> closes \(stack.last ?? "nothing")") }
                continue
            }
            let name = String(tag.prefix { !$0.isWhitespace && $0 != "/" })
            if tag.hasSuffix("/") { continue }
            if name == "style" || name == "pre" || name == "title" {
                // Raw-ish text: skip to the matching close tag (these never nest here).
                guard let close = rest.range(of: "</\(name)>") else { problems.append("unclosed <\(name)>"); break }
                if rest[..<close.lowerBound].contains("<") { problems.append("'<' inside <\(name)>") }
                rest = rest[close.upperBound...]
                continue
            }
            stack.append(name)
        }
        if !stack.isEmpty { problems.append("unclosed: \(stack)") }
        return problems
    }

    static func count(_ needle: String, in haystack: String) -> Int {
        haystack.components(separatedBy: needle).count - 1
    }

    #if canImport(FoundationXML)
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String] = []
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) { elements.append(name) }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    }

    /// Parses the page as XML (after removing the doctype); returns the error, or nil and the elements seen.
    static func parseXML(_ html: String) -> (error: String?, collector: Collector) {
        let body = html.replacingOccurrences(of: "<!DOCTYPE html>", with: "")
        let parser = XMLParser(data: Data(body.utf8))
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        return (ok ? nil : "\(parser.parserError.map { "\($0)" } ?? "unknown") at line \(parser.lineNumber)", collector)
    }
    #endif
}

@Suite struct HTMLReportTests {
    @Test func sampleReportIsWellFormed() throws {
        let html = HTMLReport.render(try SampleReport.input())
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
        #expect(html.hasSuffix("</html>\n"))
        #expect(Markup.balanceProblems(html) == [])
        #expect(Markup.count("<svg", in: html) == Markup.count("</svg>", in: html))
        // Test-fold heat map, per-class bars, three training charts, CV heat map.
        #expect(Markup.count("<svg", in: html) == 6)
        #if canImport(FoundationXML)
        let (error, collector) = Markup.parseXML(html)
        #expect(error == nil, "not well-formed XML: \(error ?? "")")
        #expect(collector.elements.filter { $0 == "svg" }.count == 6)
        #expect(collector.elements.contains("table"))
        #endif
    }

    @Test func sampleReportShowsEverything() throws {
        let input = try SampleReport.input()
        let html = HTMLReport.render(input)
        for label in SampleReport.labels {
            // On both heat-map axes (twice per heat map), in the bars and in the per-class table.
            #expect(Markup.count(">\(label)</text>", in: html) >= 5, "label \(label)")
            #expect(html.contains("<td>\(label)</td>"))
        }
        for id in ["cm-test", "cm-cv", "per-class-bars", "chart-loss", "chart-accuracy", "chart-lr",
                   "summary-table", "ablation-table", "per-class-table", "cv-table", "epoch-table", "provenance"] {
            #expect(html.contains("id=\"\(id)\""), "missing \(id)")
        }
        for (name, _) in input.ablations { #expect(html.contains("<td>\(HTMLReport.esc(name))</td>")) }
        for (key, value) in input.provenance {
            #expect(html.contains("<th>\(HTMLReport.esc(key))</th><td>\(HTMLReport.esc(value))</td>"))
        }
        #expect(html.contains(HTMLReport.esc(input.manifestText)))
        #expect(html.contains(HTMLReport.fmt(input.metrics.weightedF1, 3)))
        #expect(html.contains("Mean ± std"))
        let cv = try #require(input.crossValidation)
        #expect(html.contains("\(HTMLReport.fmt(cv.accuracy.mean, 3)) ± \(HTMLReport.fmt(cv.accuracy.std!, 3))"))
        #expect(Markup.count("<tr><td>", in: html) >= 8 + 4 + 30)
    }

    @Test func ablationTableStartsWithTheFullModel() throws {
        let input = try SampleReport.input()
        #expect(input.ablations.map(\.name) == ["audio only", "faces only"])
        let html = HTMLReport.render(input)
        let table = try #require(html.components(separatedBy: "id=\"ablation-table\"").last?.components(separatedBy: "</table>").first)
        let names = table.components(separatedBy: "<tr><td>").dropFirst().map { $0.prefix { $0 != "<" } }
        #expect(names == ["audio + faces", "audio only", "faces only"])
        // A row already named like the full model is not repeated.
        var named = input
        named.ablations.insert(("audio + faces", input.metrics), at: 0)
        #expect(HTMLReport.render(named) == html)
    }

    @Test func selfContained() throws {
        let html = HTMLReport.render(try SampleReport.input())
        #expect(!html.lowercased().contains("http"))
        for forbidden in ["<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "@font-face", "xlink"] {
            #expect(!html.lowercased().contains(forbidden), "contains \(forbidden)")
        }
        #expect(html.contains("<style>") && html.contains("sans-serif"))
    }

    @Test func deterministicBytes() throws {
        let a = HTMLReport.render(try SampleReport.input())
        let b = HTMLReport.render(try SampleReport.input())
        #expect(Data(a.utf8) == Data(b.utf8))
        let m1 = try SampleReport.input().metrics, m2 = try SampleReport.input().metrics
        #expect(try MetricsDocument(metrics: m1).jsonData() == MetricsDocument(metrics: m2).jsonData())
    }

    @Test func escapesEverythingItIsGiven() throws {
        let m = try ClassificationMetrics.compute(labels: ["<b>", "a&b", "\"q\""], truth: [0, 1, 2], predicted: [0, 2, 2])
        let input = ReportInput(title: "T <script>alert('x')</script>", runId: "r&d",
                                metrics: m, ablations: [("audio <only>", m)],
                                provenance: [("k<", "v>\u{1}")], manifestText: "a: <b> & \"c\"\n  d: 'e'")
        let html = HTMLReport.render(input)
        #expect(!html.contains("<script"))
        #expect(!html.contains("<b>"))
        #expect(html.contains("&lt;b&gt;") && html.contains("a&amp;b") && html.contains("&quot;q&quot;"))
        #expect(html.contains("a: &lt;b&gt; &amp; &quot;c&quot;\n  d: &#39;e&#39;"))
        #expect(!html.contains("\u{1}"))
        #expect(Markup.balanceProblems(html) == [])
        #if canImport(FoundationXML)
        #expect(Markup.parseXML(html).error == nil)
        #endif
    }

    @Test func minimalInputRenders() throws {
        let m = try ClassificationMetrics.compute(labels: ["only"], truth: [0], predicted: [0])
        let html = HTMLReport.render(ReportInput(title: "min", runId: "r", metrics: m))
        #expect(html.contains("No training log."))
        #expect(html.contains("No ablations: a single-modality model, or no test clip with both inputs."))
        #expect(!html.contains("id=\"cross-validation\""))
        #expect(Markup.count("<svg", in: html) == 2)
        #expect(Markup.balanceProblems(html) == [])
        #if canImport(FoundationXML)
        #expect(Markup.parseXML(html).error == nil)
        #endif
    }

    /// A class no test clip has is named, with what the averages do with it: its 0 counts in macro F1 only
    /// when some clip was predicted as it.
    @Test func classesWithoutATestClipAreNamed() throws {
        let missing = try ClassificationMetrics.compute(labels: ["a", "b", "c"], truth: [0, 0, 2], predicted: [0, 1, 2])
        #expect(abs(missing.macroF1 - (1.0 / 3) * (2.0 / 3 + 0 + 1)) < 1e-12, "b was predicted: its 0 counts, as scikit-learn's default labels")
        #expect(abs(missing.uar - 0.75) < 1e-12, "UAR over a and c")
        let note = try #require(HTMLReport.absentClassesNote(missing))
        #expect(note == "No scored test clip is b: UAR and weighted F1 leave it out; b was predicted for some clips, so its F1 and precision of 0 "
                + "count in macro F1 and macro precision (over the 3 classes true or predicted, as scikit-learn's default labels).", "\(note)")
        let unguessed = try ClassificationMetrics.compute(labels: ["a", "b", "c"], truth: [0, 0, 2], predicted: [0, 0, 2])
        #expect(unguessed.macroF1 == 1 && unguessed.uar == 1)
        #expect(HTMLReport.absentClassesNote(unguessed) == "No scored test clip is b: UAR and weighted F1 leave it out, and so do macro F1 and macro "
                + "precision (over the 2 classes true or predicted, as scikit-learn's default labels).")
        #expect(HTMLReport.render(ReportInput(title: "t", runId: "r", metrics: missing)).contains(HTMLReport.esc(note)))
        let all = try ClassificationMetrics.compute(labels: ["a", "b"], truth: [0, 1], predicted: [0, 0])
        #expect(HTMLReport.absentClassesNote(all) == nil)
        #expect(!HTMLReport.render(ReportInput(title: "t", runId: "r", metrics: all)).contains("test clip is"))
    }

    @Test func oddTrainingLogsRender() throws {
        let m = try ClassificationMetrics.compute(labels: ["a", "b"], truth: [0, 1], predicted: [0, 0])
        var epochs = SampleReport.epochs(count: 3)
        epochs[1].valLoss = .nan
        epochs[2].trainLoss = .infinity
        for log in [epochs, Array(epochs.prefix(1))] {
            let html = HTMLReport.render(ReportInput(title: "t", runId: "r", metrics: m, epochs: log))
            for bad in ["nan", "NaN", "inf", "Inf"] {
                // Not as a cell, an attribute value or a coordinate ("Provenance" contains "nan").
                for context in [">\(bad)", "\"\(bad)", ",\(bad)", " \(bad)<", "-\(bad)"] {
                    #expect(!html.contains(context), "\(context) in the page")
                }
            }
            #expect(Markup.balanceProblems(html) == [])
            #if canImport(FoundationXML)
            #expect(Markup.parseXML(html).error == nil)
            #endif
        }
        // One fold: std shown as a dash.
        let cv = try CrossValidationSummary.summarize([FoldResult(fold: 1, metrics: m)])
        let html = HTMLReport.render(ReportInput(title: "t", runId: "r", metrics: m, crossValidation: cv))
        #expect(html.contains("± —"))
    }

    @Test func numberFormatting() {
        #expect(HTMLReport.fmt(0.12345, 3) == "0.123")
        #expect(HTMLReport.fmt(-0.0001, 3) == "0.000")
        #expect(HTMLReport.fmt(.nan, 3) == "—")
        #expect(HTMLReport.sci(1e-3, 2) == "1.0e-3")
        #expect(HTMLReport.sci(0.00025, 2) == "2.5e-4")
        #expect(HTMLReport.sci(9.99e-4, 2) == "1.0e-3")
        #expect(HTMLReport.sci(0, 2) == "0")
        #expect(HTMLReport.n(12.5) == "12.5" && HTMLReport.n(3) == "3" && HTMLReport.n(-0.001) == "0")
        #expect(HTMLReport.blues(0) == "#f7fbff" && HTMLReport.blues(1) == "#08306b")
        // Durations: an epoch's seconds come from state.json, which a user can edit into anything.
        #expect(HTMLReport.duration(3725) == "1 h 2 min" && HTMLReport.duration(65) == "1 min 5 s")
        #expect([1e19, -1, .infinity, .nan].allSatisfy { HTMLReport.duration($0) == "—" })
        let t = HTMLReport.niceTicks(0, 2.07, target: 5)
        #expect(t.ticks == [0, 0.5, 1, 1.5, 2, 2.5] && t.decimals == 1)
    }

    /// Writes the sample report, metrics.json and cv.json to $EMOPIPE_REPORT_SAMPLE_DIR when it is set
    /// (to look at the page in a browser); otherwise does nothing.
    @Test func writeSampleWhenAsked() throws {
        guard let dir = ProcessInfo.processInfo.environment["EMOPIPE_REPORT_SAMPLE_DIR"], !dir.isEmpty else { return }
        let input = try SampleReport.input()
        let url = URL(fileURLWithPath: dir, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try Data(HTMLReport.render(input).utf8).write(to: url.appendingPathComponent("report.html"))
        try MetricsDocument(metrics: input.metrics, ablations: input.ablations.map { AblationResult(name: $0.name, metrics: $0.metrics) })
            .jsonData().write(to: url.appendingPathComponent("metrics.json"))
        try #require(input.crossValidation).jsonData().write(to: url.appendingPathComponent("cv.json"))
    }
}
