import Foundation

/// Everything the HTML report shows. Nothing in the report is generated from the clock or the
/// environment: a date or host belongs in `provenance`, where the caller puts it.
public struct ReportInput {
    public var title: String
    public var runId: String
    /// Metrics on the test fold (of the model with all its modalities).
    public var metrics: ClassificationMetrics
    /// Metrics per modality ablation, in the order to show (for example "audio + faces",
    /// "audio only", "faces only"); empty for a single-modality model.
    public var ablations: [(name: String, metrics: ClassificationMetrics)]
    /// The training log, one entry per epoch.
    public var epochs: [EpochLog]
    /// Key/value lines: ingest output digest, code version, stage fingerprints, ...; shown in this order.
    public var provenance: [(String, String)]
    /// The run's manifest as text (shown verbatim).
    public var manifestText: String
    public var crossValidation: CrossValidationSummary?
    /// The name of the full model's row in the ablation table. That row (with `metrics`) heads the
    /// table unless `ablations` already has a row of this name.
    public var fullModelName: String
    /// The folds evaluated: their test, validation and training actors.
    public var folds: [ActorFold] = []
    /// One row per test clip; the report lists the misclassified ones.
    public var predictions: PredictionTable?
    /// 95% intervals over test actors.
    public var interval: ActorBootstrap?
    /// The same answers on seven classes (calm counted as neutral).
    public var sevenClass: ClassificationMetrics?
    /// The int8 export's figures beside the float model's.
    public var int8: Int8Comparison?
    /// Test clips left out of every figure: their files failed ingest or feature extraction.
    public var unscored: [UnscoredClip] = []
    /// Test clips with the bytes of a training clip's file: the actors card says so instead of
    /// calling the split speaker-independent.
    public var seenInTraining: [SeenInTraining] = []
    /// The epoch whose weights were kept, the epochs its selection score averaged and what chose it
    /// (nil: the epoch with the best validation weighted F1).
    public var keptEpoch: (epoch: Int, window: Int, selection: EpochSelection)?
    /// What the stage executions behind this evaluation cost, in pipeline order (empty: no card).
    public var resources: [StageResources] = []
    /// The manifest's memory budget (MiB), shown with `resources`.
    public var memoryBudgetMB: Int?

    public init(title: String, runId: String, metrics: ClassificationMetrics,
                ablations: [(name: String, metrics: ClassificationMetrics)] = [], epochs: [EpochLog] = [],
                provenance: [(String, String)] = [], manifestText: String = "",
                crossValidation: CrossValidationSummary? = nil, fullModelName: String = "audio + faces") {
        self.title = title; self.runId = runId; self.metrics = metrics; self.ablations = ablations
        self.epochs = epochs; self.provenance = provenance; self.manifestText = manifestText
        self.crossValidation = crossValidation; self.fullModelName = fullModelName
    }

    /// The same input with the ablations of a `metrics.json` document.
    public init(title: String, runId: String, document: MetricsDocument, epochs: [EpochLog] = [],
                provenance: [(String, String)] = [], manifestText: String = "",
                crossValidation: CrossValidationSummary? = nil, fullModelName: String = "audio + faces") {
        self.init(title: title, runId: runId, metrics: document.metrics,
                  ablations: document.ablations.map { ($0.name, $0.metrics) }, epochs: epochs,
                  provenance: provenance, manifestText: manifestText, crossValidation: crossValidation,
                  fullModelName: fullModelName)
        interval = document.interval
        sevenClass = document.sevenClass
        int8 = document.int8
        unscored = document.unscored
        seenInTraining = document.seenInTraining
    }
}

/// Renders `report.html`: one self-contained page (inline CSS and SVG; no script, no font, no image,
/// no link to anything outside the file). The markup is also well-formed XML after the doctype
/// (every element closed, attributes quoted, text escaped), and the output is a pure function of the
/// input: equal inputs give equal bytes (fixed-precision number formatting, no dates, no randomness).
public enum HTMLReport {
    public static func render(_ input: ReportInput) -> String {
        var h = ""
        h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
        h += "<title>\(esc(input.title))</title>\n<style>\(css)</style>\n</head>\n<body>\n<main>\n"
        h += header(input)
        h += summarySection(input)
        h += actorsSection(input.folds, seenInTraining: input.seenInTraining)
        h += perClassSection(input.metrics)
        if let table = input.predictions { h += misclassifiedSection(table) }
        if !input.unscored.isEmpty { h += unscoredSection(input.unscored) }
        h += trainingSection(input.epochs, kept: input.keptEpoch)
        if let cv = input.crossValidation { h += crossValidationSection(cv) }
        h += resourcesSection(input.resources, budgetMB: input.memoryBudgetMB)
        h += provenanceSection(input)
        h += "<footer>EmoPipe evaluation report · run <code>\(esc(input.runId))</code></footer>\n"
        h += "</main>\n</body>\n</html>\n"
        return h
    }

    // MARK: Sections

    static func header(_ input: ReportInput) -> String {
        let m = input.metrics
        var h = "<header>\n<h1>\(esc(input.title))</h1>\n"
        h += "<p class=\"sub\">Run <code>\(esc(input.runId))</code> · \(m.count) test samples · \(m.labels.count) classes"
        if !input.epochs.isEmpty { h += " · \(input.epochs.count) epochs" }
        if let cv = input.crossValidation { h += " · \(cv.folds.count)-fold cross-validation" }
        if !input.unscored.isEmpty { h += " · <a href=\"#unscored\">\(input.unscored.count) test clip\(input.unscored.count == 1 ? "" : "s") not scored</a>" }
        h += "</p>\n</header>\n"
        return h
    }

    static func summarySection(_ input: ReportInput) -> String {
        let m = input.metrics
        var h = "<section class=\"card\" id=\"summary\">\n<h2>Test results</h2>\n<div class=\"kpis\">\n"
        for (label, value) in [("Accuracy", m.accuracy), ("Weighted F1", m.weightedF1),
                               ("Macro F1", m.macroF1), ("UAR", m.uar)] {
            h += "<div class=\"kpi\"><div class=\"l\">\(label)</div><div class=\"v\">\(fmt(value, 3))</div></div>\n"
        }
        h += "</div>\n"
        if let ci = input.interval {
            h += "<p class=\"note\" id=\"interval\">95% intervals (\(esc(ci.method)), \(ci.resamples) resamples of "
            h += "\(ci.actors) actors): accuracy \(range(ci.accuracy)), weighted F1 \(range(ci.weightedF1)), "
            h += "macro F1 \(range(ci.macroF1)).</p>\n"
        }
        if let seven = input.sevenClass {
            h += "<p class=\"note\" id=\"seven-class\">Seven classes (calm counted as neutral): accuracy "
            h += "\(fmt(seven.accuracy, 3)), weighted F1 \(fmt(seven.weightedF1, 3)), macro F1 \(fmt(seven.macroF1, 3)).</p>\n"
        }
        if let q = input.int8 {
            h += "<p class=\"note\" id=\"int8\">int8 model (model.int8.onnx): accuracy \(fmt(q.accuracy, 3)) "
            h += "(float \(fmt(m.accuracy, 3))), weighted F1 \(fmt(q.weightedF1, 3)) (float \(fmt(m.weightedF1, 3))); "
            h += "same class as the float model on \(fmt(100 * q.agreement, 1))% of \(q.clips) clips.</p>\n"
        }
        h += "<div class=\"grid2\">\n<div>\n<h3>Confusion matrix</h3>\n"
        h += confusionMatrixSVG(labels: m.labels, counts: m.confusionMatrix, normalized: m.confusionMatrixNormalized,
                                id: "cm-test")
        h += "<p class=\"note\">Rows: true class; columns: predicted class. Cells show counts; colour and "
        h += "percentage are row-normalised (the diagonal is each class's recall).</p>\n</div>\n<div>\n"
        h += "<h3>Summary</h3>\n<div class=\"scroll\"><table class=\"metrics\" id=\"summary-table\">\n"
        h += "<thead><tr><th>Metric</th><th>Value</th></tr></thead>\n<tbody>\n"
        let rows: [(String, String)] = [
            ("Accuracy", fmt(m.accuracy, 4)), ("Weighted F1", fmt(m.weightedF1, 4)), ("Macro F1", fmt(m.macroF1, 4)),
            ("Unweighted average recall (UAR)", fmt(m.uar, 4)), ("Macro precision", fmt(m.macroPrecision, 4)),
            ("Test samples", "\(m.count)"), ("Classes", "\(m.labels.count)"),
        ]
        for (k, v) in rows { h += "<tr><td>\(k)</td><td>\(v)</td></tr>\n" }
        h += "</tbody>\n</table></div>\n<h3>Modality ablations</h3>\n"
        if input.ablations.isEmpty {
            h += "<p class=\"note\">No ablations: a single-modality model, or no test clip with both inputs.</p>\n"
        } else {
            var rows = input.ablations
            // The full model's own row, when there is one, was scored on the same clips as the others.
            let full = rows.first { $0.name == input.fullModelName }?.metrics
            if full == nil { rows.insert((input.fullModelName, m), at: 0) }
            h += ablationTable(rows, reference: full ?? m, of: m.count)
        }
        h += "</div>\n</div>\n</section>\n"
        return h
    }

    /// `testClips`: every test clip, of which the ablations may score only those with both inputs.
    static func ablationTable(_ ablations: [(name: String, metrics: ClassificationMetrics)],
                              reference: ClassificationMetrics, of testClips: Int) -> String {
        let columns: [(String, (ClassificationMetrics) -> Double)] = [
            ("Accuracy", { $0.accuracy }), ("W-F1", { $0.weightedF1 }), ("M-F1", { $0.macroF1 }), ("UAR", { $0.uar }),
        ]
        let best = columns.map { col in ablations.map { col.1($0.metrics) }.max() ?? 0 }
        var h = "<div class=\"scroll\"><table class=\"metrics\" id=\"ablation-table\">\n<thead><tr><th>Inputs</th>"
        for c in columns { h += "<th>\(c.0)</th>" }
        h += "<th>Δ W-F1</th></tr></thead>\n<tbody>\n"
        for a in ablations {
            h += "<tr><td>\(esc(a.name))</td>"
            for (i, c) in columns.enumerated() {
                let v = c.1(a.metrics)
                h += v == best[i] && ablations.count > 1 ? "<td><strong>\(fmt(v, 3))</strong></td>" : "<td>\(fmt(v, 3))</td>"
            }
            let delta = a.metrics.weightedF1 - reference.weightedF1
            h += "<td class=\"\(delta < -0.0005 ? "neg" : "")\">\(signed(delta, 3))</td></tr>\n"
        }
        let scored = reference.count == testClips ? "The same test clips" : "The \(reference.count) of the \(testClips) test clips that have both inputs"
        h += "</tbody>\n</table></div>\n<p class=\"note\">\(scored), with inputs withheld at evaluation time. "
        h += "W-F1: weighted F1; M-F1: macro F1; Δ W-F1: change from the full model's weighted F1 (\(fmt(reference.weightedF1, 3))).</p>\n"
        return h
    }

    static func range(_ bounds: [Double]) -> String {
        bounds.count == 2 ? "\(fmt(bounds[0], 3))–\(fmt(bounds[1], 3))" : "—"
    }

    static func actorList(_ actors: [Int]) -> String {
        actors.isEmpty ? "—" : actors.map { String(format: "%02d", $0) }.joined(separator: ", ")
    }

    static func actorsSection(_ folds: [ActorFold], seenInTraining: [SeenInTraining] = []) -> String {
        guard !folds.isEmpty else { return "" }
        var h = "<section class=\"card\" id=\"actors\">\n<h2>Actors</h2>\n"
        h += table(id: "actors-table", columns: [("Fold", false), ("Test actors", true), ("Validation actors", true), ("Training actors", true)],
                   rows: folds.map { ["\($0.index)", actorList($0.test), actorList($0.validation), actorList($0.train)] })
        if let first = seenInTraining.first {
            h += "<p class=\"note\"><strong>Not speaker-independent for \(seenInTraining.count) test clip\(seenInTraining.count == 1 ? "" : "s"): "
            h += "\(seenInTraining.count == 1 ? "its file has" : "their files have") the bytes of a training clip's file "
            h += "(first: \(esc(first.path)), the same as \(esc(first.trainingPath))); metrics.json's "
            h += "test_clips_seen_in_training lists \(seenInTraining.count == 1 ? "it" : "them").</strong></p>\n</section>\n"
        } else {
            h += "<p class=\"note\">Speaker-independent: whole actors are held out, and no test clip's file has the bytes "
            h += "of a file trained on.</p>\n</section>\n"
        }
        return h
    }

    static func unscoredSection(_ clips: [UnscoredClip]) -> String {
        var h = "<section class=\"card\" id=\"unscored\">\n<h2>Test clips not scored (\(clips.count))</h2>\n"
        h += "<p class=\"note\">These clips of the test actors count in no figure above: a file that would feed the model "
        h += "failed at the stage named, or (stage evaluate) the clip has no file of an input the model learnt from.</p>\n"
        h += table(id: "unscored-table", compact: true,
                   columns: [("Clip", true), ("Actor", false), ("Fold", false), ("File", true), ("Stage", true), ("Reason", true)],
                   rows: clips.map { [esc($0.clip), "\($0.actor)", "\($0.fold)", esc($0.path), esc($0.stage), esc($0.reason)] })
        return h + "</section>\n"
    }

    /// A scrolling table: `columns` (title, whether it holds text rather than numbers), `rows` of cells
    /// already escaped.
    static func table(id: String, compact: Bool = false, columns: [(title: String, text: Bool)], rows: [[String]]) -> String {
        func cell(_ tag: String, _ content: String, _ text: Bool) -> String { "<\(tag)\(text ? " class=\"text\"" : "")>\(content)</\(tag)>" }
        var h = "<div class=\"scroll\"><table class=\"metrics\(compact ? " compact" : "")\" id=\"\(id)\">\n<thead><tr>"
        h += columns.map { cell("th", $0.title, $0.text) }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows { h += "<tr>" + zip(row, columns).map { cell("td", $0, $1.text) }.joined() + "</tr>\n" }
        return h + "</tbody>\n</table></div>\n"
    }

    static func misclassifiedSection(_ table: PredictionTable) -> String {
        let wrong = table.misclassified
        var h = "<section class=\"card\" id=\"misclassified\">\n<h2>Misclassified clips (\(wrong.count) of \(table.rows.count))</h2>\n"
        guard !wrong.isEmpty else { return h + "<p class=\"note\">Every test clip was classified correctly.</p>\n</section>\n" }
        h += "<details>\n<summary>List</summary>\n<div class=\"scroll\"><table class=\"metrics compact\" id=\"misclassified-table\">\n"
        h += "<thead><tr><th class=\"text\">Clip</th><th>Actor</th><th>Fold</th><th class=\"text\">True</th>"
        h += "<th class=\"text\">Top 1</th><th>p</th><th class=\"text\">Top 2</th><th>p</th></tr></thead>\n<tbody>\n"
        for (row, top) in wrong {
            h += "<tr><td class=\"text\">\(esc(row.clip))</td><td>\(row.actor)</td><td>\(row.fold)</td>"
            h += "<td class=\"text\">\(esc(table.labels.indices.contains(row.truth) ? table.labels[row.truth] : "?"))</td>"
            for k in 0..<2 {
                if k < top.count { h += "<td class=\"text\">\(esc(top[k].label))</td><td>\(fmt(Double(top[k].probability), 3))</td>" }
                else { h += "<td class=\"text\"></td><td></td>" }
            }
            h += "</tr>\n"
        }
        h += "</tbody>\n</table></div>\n</details>\n<p class=\"note\">Every clip with its probabilities: "
        h += "<code>predictions.csv</code> and <code>predictions.jsonl</code> beside this report.</p>\n</section>\n"
        return h
    }

    static func perClassSection(_ m: ClassificationMetrics) -> String {
        var h = "<section class=\"card\" id=\"per-class\">\n<h2>Per class</h2>\n<div class=\"grid2 wide-right\">\n<div>\n"
        h += perClassBarsSVG(m)
        h += "</div>\n<div>\n<div class=\"scroll\"><table class=\"metrics\" id=\"per-class-table\">\n<thead><tr><th>Class</th><th>Precision</th>"
        h += "<th>Recall</th><th>F1</th><th>Accuracy</th><th>Support</th><th>Predicted</th></tr></thead>\n<tbody>\n"
        let predicted = m.predictedCounts
        for (i, c) in m.perClass.enumerated() {
            h += "<tr><td>\(esc(c.label))</td><td>\(fmt(c.precision, 3))</td><td>\(fmt(c.recall, 3))</td>"
            h += "<td>\(fmt(c.f1, 3))</td><td>\(fmt(c.accuracy, 3))</td><td>\(c.support)</td><td>\(predicted[i])</td></tr>\n"
        }
        h += "<tr class=\"total\"><td>Macro average</td><td>\(fmt(m.macroPrecision, 3))</td><td>\(fmt(m.uar, 3))</td>"
        h += "<td>\(fmt(m.macroF1, 3))</td><td>\(fmt(m.uar, 3))</td><td>\(m.count)</td><td>\(m.count)</td></tr>\n"
        h += "</tbody>\n</table></div>\n<p class=\"note\">Per-class accuracy is the class's recall (the share of its samples "
        h += "classified correctly), as RAVDESS papers report it. Precision, recall and F1 are 0 where undefined "
        h += "(no prediction or no sample of the class).</p>\n"
        if let absent = absentClassesNote(m) { h += "<p class=\"note\"><strong>\(esc(absent))</strong></p>\n" }
        h += "</div>\n</div>\n</section>\n"
        return h
    }

    /// Classes no test clip has, and how the averages treat them: UAR and weighted F1 leave them out; macro F1
    /// and macro precision count one with F1 0 only when some clip was predicted as it (scikit-learn's default
    /// labels: the classes true or predicted). A reader would otherwise take such a class for one always missed. Nil when none.
    public static func absentClassesNote(_ m: ClassificationMetrics) -> String? {
        let predicted = m.predictedCounts
        let absent = m.perClass.indices.filter { m.perClass[$0].support == 0 }
        guard !absent.isEmpty else { return nil }
        let named = absent.map { m.perClass[$0].label }, guessed = absent.filter { predicted[$0] > 0 }.map { m.perClass[$0].label }
        let counted = m.perClass.indices.filter { m.perClass[$0].support > 0 || predicted[$0] > 0 }.count
        let over = "(over the \(counted) classes true or predicted, as scikit-learn's default labels)"
        var note = "No scored test clip is \(named.joined(separator: ", ")): UAR and weighted F1 leave \(named.count == 1 ? "it" : "them") out"
        if guessed.isEmpty {
            note += ", and so do macro F1 and macro precision \(over)."
        } else {
            let one = guessed.count == 1
            note += "; \(guessed.joined(separator: ", ")) \(one ? "was" : "were") predicted for some clips, so \(one ? "its" : "their") F1 and "
                + "precision of 0 count in macro F1 and macro precision \(over)."
        }
        return note
    }

    static func trainingSection(_ epochs: [EpochLog], kept: (epoch: Int, window: Int, selection: EpochSelection)? = nil) -> String {
        var h = "<section class=\"card\" id=\"training\">\n<h2>Training</h2>\n"
        guard !epochs.isEmpty else {
            return h + "<p class=\"note\">No training log.</p>\n</section>\n"
        }
        let xs = epochs.map { Double($0.epoch) }
        let best = kept.flatMap { k in epochs.first { $0.epoch == k.epoch } } ?? EpochLog.best(epochs)
        let window = kept?.window ?? 1
        let selection = kept?.selection ?? .weightedF1
        // A training without validation actors logs no validation figures (NaN): nothing to chart.
        let validated = epochs.contains { $0.valLoss.isFinite || $0.valWeightedF1.isFinite }
        h += "<div class=\"grid3\">\n"
        h += lineChartSVG(title: "Loss", xs: xs, series: [
            Series(name: "train", color: palette[0], values: epochs.map(\.trainLoss)),
        ] + (validated ? [Series(name: "validation", color: palette[1], values: epochs.map(\.valLoss))] : []),
            yFormat: .fixed, yFromZero: true, bestX: best.map { Double($0.epoch) }, id: "chart-loss")
        h += lineChartSVG(title: validated ? "Accuracy and F1" : "Accuracy", xs: xs, series: [
            Series(name: "train acc", color: palette[0], values: epochs.map(\.trainAccuracy)),
        ] + (validated ? [Series(name: "val acc", color: palette[1], values: epochs.map(\.valAccuracy)),
                          Series(name: "val W-F1", color: palette[2], values: epochs.map(\.valWeightedF1), dashed: true)] : []),
            yFormat: .fixed, yFromZero: true, yMaxAtLeast: 1, bestX: best.map { Double($0.epoch) }, id: "chart-accuracy")
        h += lineChartSVG(title: "Learning rate", xs: xs, series: [
            Series(name: "learning rate", color: palette[4], values: epochs.map(\.learningRate)),
        ], yFormat: .scientific, yFromZero: true, bestX: best.map { Double($0.epoch) }, id: "chart-lr")
        h += "</div>\n"
        if let b = best {
            h += "<p class=\"note\">Dashed vertical line: epoch \(b.epoch), the weights kept: \(selection.explain(window: window))"
            h += validated ? " (that epoch: validation weighted F1 \(fmt(b.valWeightedF1, 3)), loss \(fmt(b.valLoss, 4)))."
                           : ", without validation actors."
            h += " Total training time \(duration(epochs.reduce(0) { $0 + $1.seconds })).</p>\n"
        }
        h += "<details>\n<summary>Epoch log (\(epochs.count) epochs)</summary>\n<div class=\"scroll\"><table class=\"metrics compact\" id=\"epoch-table\">\n"
        h += "<thead><tr><th>Epoch</th><th>Train loss</th><th>Train acc</th>"
        h += validated ? "<th>Val loss</th><th>Val acc</th><th>Val W-F1</th>" : ""
        h += "<th>Learning rate</th><th>Seconds</th></tr></thead>\n<tbody>\n"
        for e in epochs {
            h += "<tr\(e.epoch == best?.epoch ? " class=\"best\"" : "")><td>\(e.epoch)</td><td>\(fmt(e.trainLoss, 4))</td>"
            h += "<td>\(fmt(e.trainAccuracy, 4))</td>"
            h += validated ? "<td>\(fmt(e.valLoss, 4))</td><td>\(fmt(e.valAccuracy, 4))</td><td>\(fmt(e.valWeightedF1, 4))</td>" : ""
            h += "<td>\(sci(e.learningRate, 3))</td><td>\(fmt(e.seconds, 1))</td></tr>\n"
        }
        h += "</tbody>\n</table></div>\n</details>\n</section>\n"
        return h
    }

    static func crossValidationSection(_ cv: CrossValidationSummary) -> String {
        var h = "<section class=\"card\" id=\"cross-validation\">\n<h2>Cross-validation (\(cv.folds.count) folds)</h2>\n"
        h += "<div class=\"scroll\"><table class=\"metrics\" id=\"cv-table\">\n<thead><tr><th>Fold</th><th class=\"text\">Held out</th><th>Test samples</th>"
        h += "<th>Accuracy</th><th>Weighted F1</th><th>Macro F1</th><th>UAR</th></tr></thead>\n<tbody>\n"
        for f in cv.folds {
            let m = f.metrics
            h += "<tr><td>\(f.fold)</td><td class=\"text\">\(esc(f.note))</td><td>\(m.count)</td><td>\(fmt(m.accuracy, 3))</td>"
            h += "<td>\(fmt(m.weightedF1, 3))</td><td>\(fmt(m.macroF1, 3))</td><td>\(fmt(m.uar, 3))</td></tr>\n"
        }
        h += "<tr class=\"total\"><td>Mean ± std</td><td class=\"text\"></td><td>\(cv.pooled.count)</td>"
        for s in [cv.accuracy, cv.weightedF1, cv.macroF1, cv.uar] { h += "<td>\(meanStd(s))</td>" }
        h += "</tr>\n<tr class=\"pooled\"><td>Pooled</td><td class=\"text\">summed confusion matrix</td><td>\(cv.pooled.count)</td>"
        for v in [cv.pooled.accuracy, cv.pooled.weightedF1, cv.pooled.macroF1, cv.pooled.uar] { h += "<td>\(fmt(v, 3))</td>" }
        h += "</tr>\n</tbody>\n</table></div>\n<p class=\"note\">Std is the sample standard deviation over folds (n − 1). "
        h += "Pooled: the metrics of the confusion matrix summed over all folds.</p>\n"
        h += "<div class=\"grid2\">\n<div>\n<h3>Confusion matrix summed over folds</h3>\n"
        h += confusionMatrixSVG(labels: cv.labels, counts: cv.summedConfusionMatrix,
                                normalized: cv.pooled.confusionMatrixNormalized, id: "cm-cv")
        h += "</div>\n<div>\n<h3>Pooled per class</h3>\n<div class=\"scroll\"><table class=\"metrics\" id=\"cv-per-class-table\">\n"
        h += "<thead><tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr></thead>\n<tbody>\n"
        for c in cv.pooled.perClass {
            h += "<tr><td>\(esc(c.label))</td><td>\(fmt(c.precision, 3))</td><td>\(fmt(c.recall, 3))</td>"
            h += "<td>\(fmt(c.f1, 3))</td><td>\(c.support)</td></tr>\n"
        }
        h += "</tbody>\n</table></div>\n</div>\n</div>\n</section>\n"
        return h
    }

    static func provenanceSection(_ input: ReportInput) -> String {
        var h = "<section class=\"card\" id=\"provenance\">\n<h2>Provenance</h2>\n<table class=\"kv\">\n<tbody>\n"
        h += "<tr><th>run id</th><td>\(esc(input.runId))</td></tr>\n"
        for (k, v) in input.provenance { h += "<tr><th>\(esc(k))</th><td>\(esc(v))</td></tr>\n" }
        h += "</tbody>\n</table>\n<h3>Manifest</h3>\n"
        if input.manifestText.isEmpty {
            h += "<p class=\"note\">No manifest text.</p>\n"
        } else {
            h += "<pre class=\"manifest\">\(esc(input.manifestText))</pre>\n"
        }
        h += "</section>\n"
        return h
    }

    // MARK: SVG: confusion matrix

    static func confusionMatrixSVG(labels: [String], counts: [[Int]], normalized: [[Double]], id: String) -> String {
        let k = labels.count
        let cell: Double = k <= 8 ? 54 : k <= 12 ? 40 : 28
        let maxLabel = Double(labels.map(\.count).max() ?? 1)
        let left = min(170, 34 + 7.2 * maxLabel)
        let top: Double = 12
        let bottom = min(150, 40 + 5.4 * maxLabel)
        let legendGap: Double = 22, legendWidth: Double = 12, legendLabels: Double = 44
        let gridW = cell * Double(k)
        let width = left + gridW + legendGap + legendWidth + legendLabels
        let height = top + gridW + bottom
        var s = svgOpen(width: width, height: height, id: id, label: "Confusion matrix")
        for t in 0..<k {
            for p in 0..<k {
                let v = normalized[t][p], c = counts[t][p]
                let x = left + Double(p) * cell, y = top + Double(t) * cell
                s += "<g><title>true \(esc(labels[t])), predicted \(esc(labels[p])): \(c) (\(fmt(v * 100, 1))% of row)</title>"
                s += "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(cell))\" height=\"\(n(cell))\" fill=\"\(blues(v))\""
                s += t == p ? " stroke=\"#1f2937\" stroke-width=\"1.2\"/>" : " stroke=\"#ffffff\" stroke-width=\"1\"/>"
                let ink = v > 0.5 ? "#ffffff" : (c == 0 ? "#9ca3af" : "#1f2937")
                let cx = x + cell / 2
                if cell >= 40 && c > 0 {
                    s += "<text x=\"\(n(cx))\" y=\"\(n(y + cell / 2 - 1))\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\" fill=\"\(ink)\">\(c)</text>"
                    s += "<text x=\"\(n(cx))\" y=\"\(n(y + cell / 2 + 13))\" text-anchor=\"middle\" font-size=\"10\" fill=\"\(ink)\" fill-opacity=\"0.85\">\(fmt((v * 100).rounded(), 0))%</text>"
                } else {
                    s += "<text x=\"\(n(cx))\" y=\"\(n(y + cell / 2 + 4))\" text-anchor=\"middle\" font-size=\"\(cell >= 40 ? 13 : 10)\" fill=\"\(ink)\">\(c)</text>"
                }
                s += "</g>\n"
            }
        }
        // Axis labels: true classes on the left, predicted classes below (rotated).
        for (i, l) in labels.enumerated() {
            let cy = top + Double(i) * cell + cell / 2
            s += "<text x=\"\(n(left - 8))\" y=\"\(n(cy + 4))\" text-anchor=\"end\" font-size=\"12\">\(esc(l))</text>\n"
            let cx = left + Double(i) * cell + cell / 2
            let ly = top + gridW + 12
            s += "<text x=\"\(n(cx))\" y=\"\(n(ly))\" text-anchor=\"end\" font-size=\"12\" transform=\"rotate(-40 \(n(cx)) \(n(ly)))\" dy=\"0.6em\">\(esc(l))</text>\n"
        }
        s += "<text x=\"14\" y=\"\(n(top + gridW / 2))\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"600\" transform=\"rotate(-90 14 \(n(top + gridW / 2)))\">True class</text>\n"
        s += "<text x=\"\(n(left + gridW / 2))\" y=\"\(n(height - 8))\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"600\">Predicted class</text>\n"
        // Colour legend: 0% at the bottom, 100% at the top.
        let lx = left + gridW + legendGap
        // Thin overlapping bands drawn with crisp edges (no gradient: no url() references at all).
        let steps = 48
        s += "<g shape-rendering=\"crispEdges\">"
        for i in 0..<steps {
            let v0 = Double(i) / Double(steps)
            let y = top + gridW * (1 - Double(i + 1) / Double(steps))
            let h = i == steps - 1 ? gridW / Double(steps) : gridW / Double(steps) + 1
            s += "<rect x=\"\(n(lx))\" y=\"\(n(y))\" width=\"\(n(legendWidth))\" height=\"\(n(h))\" fill=\"\(blues(v0 + 0.5 / Double(steps)))\"/>"
        }
        s += "</g>"
        s += "\n<rect x=\"\(n(lx))\" y=\"\(n(top))\" width=\"\(n(legendWidth))\" height=\"\(n(gridW))\" fill=\"none\" stroke=\"#d1d5db\"/>\n"
        for q in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let y = top + gridW * (1 - q)
            s += "<line x1=\"\(n(lx + legendWidth))\" y1=\"\(n(y))\" x2=\"\(n(lx + legendWidth + 4))\" y2=\"\(n(y))\" stroke=\"#6b7280\"/>"
            s += "<text x=\"\(n(lx + legendWidth + 7))\" y=\"\(n(y + 4))\" font-size=\"10\" fill=\"#6b7280\">\(fmt(q * 100, 0))%</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    // MARK: SVG: per-class grouped bars

    static func perClassBarsSVG(_ m: ClassificationMetrics) -> String {
        let k = m.labels.count
        let width: Double = 480, height: Double = 290
        let left: Double = 36, right: Double = 8, top: Double = 34
        let maxLabel = Double(m.labels.map(\.count).max() ?? 1)
        let rotate = maxLabel * 6.6 > (width - left - right) / Double(k) - 4
        let bottom: Double = rotate ? min(110, 24 + 5.2 * maxLabel) : 30
        let plotW = width - left - right, plotH = height - top - bottom
        var s = svgOpen(width: width, height: height, id: "per-class-bars", label: "Per-class precision, recall and F1")
        let series: [(String, String, (PerClassMetrics) -> Double)] = [
            ("precision", palette[0], { $0.precision }), ("recall", palette[1], { $0.recall }), ("F1", palette[2], { $0.f1 }),
        ]
        // Grid and y axis.
        for i in 0...5 {
            let v = Double(i) / 5, y = top + plotH * (1 - v)
            s += "<line x1=\"\(n(left))\" y1=\"\(n(y))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y))\" stroke=\"\(i == 0 ? "#9ca3af" : "#e5e7eb")\"/>"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#6b7280\">\(fmt(v, 1))</text>\n"
        }
        let group = plotW / Double(k)
        let barW = min(18, group * 0.8 / Double(series.count))
        for (c, pc) in m.perClass.enumerated() {
            let gx = left + group * Double(c) + (group - barW * Double(series.count)) / 2
            for (j, se) in series.enumerated() {
                let v = max(0, min(1, se.2(pc)))
                let bh = plotH * v
                s += "<rect x=\"\(n(gx + barW * Double(j)))\" y=\"\(n(top + plotH - bh))\" width=\"\(n(barW - 1))\" height=\"\(n(bh))\" fill=\"\(se.1)\">"
                s += "<title>\(esc(pc.label)) \(se.0): \(fmt(se.2(pc), 3))</title></rect>"
            }
            let cx = left + group * (Double(c) + 0.5), ly = top + plotH + 16
            if rotate {
                s += "\n<text x=\"\(n(cx))\" y=\"\(n(ly - 4))\" text-anchor=\"end\" font-size=\"11.5\" transform=\"rotate(-35 \(n(cx)) \(n(ly - 4)))\" dy=\"0.6em\">\(esc(pc.label))</text>\n"
            } else {
                s += "\n<text x=\"\(n(cx))\" y=\"\(n(ly))\" text-anchor=\"middle\" font-size=\"11.5\">\(esc(pc.label))</text>\n"
            }
        }
        s += legend(series.map { ($0.0, $0.1, false) }, x: left, y: 14, swatch: .box)
        s += "</svg>\n"
        return s
    }

    // MARK: SVG: line charts

    struct Series {
        var name: String
        var color: String
        var values: [Double]
        var dashed = false
    }

    enum AxisFormat { case fixed, scientific }

    static func lineChartSVG(title: String, xs: [Double], series: [Series], yFormat: AxisFormat,
                             yFromZero: Bool, yMaxAtLeast: Double? = nil, bestX: Double?, id: String) -> String {
        let width: Double = 360, height: Double = 250
        let left: Double = 52, right: Double = 12, top: Double = 50, bottom: Double = 38
        let plotW = width - left - right, plotH = height - top - bottom
        var s = svgOpen(width: width, height: height, id: id, label: title)
        s += "<text x=\"\(n(left))\" y=\"16\" font-size=\"13\" font-weight=\"600\" fill=\"#1f2937\">\(esc(title))</text>\n"
        s += legend(series.map { ($0.name, $0.color, $0.dashed) }, x: left, y: 34, swatch: .line)

        let finite = series.flatMap(\.values).filter(\.isFinite)
        var lo = yFromZero ? min(0, finite.min() ?? 0) : (finite.min() ?? 0)
        var hi = finite.max() ?? 1
        if let m = yMaxAtLeast { hi = max(hi, m) }
        if hi <= lo { hi = lo + (lo == 0 ? 1 : abs(lo) * 0.1) }
        let yt = niceTicks(lo, hi, target: 5)
        lo = yt.lo; hi = yt.hi
        let xLo = xs.min() ?? 0, xHi0 = xs.max() ?? 1
        let xHi = xHi0 > xLo ? xHi0 : xLo + 1
        func px(_ x: Double) -> Double { left + (x - xLo) / (xHi - xLo) * plotW }
        func py(_ y: Double) -> Double { top + plotH * (1 - (y - lo) / (hi - lo)) }

        // Grid, y ticks.
        for t in yt.ticks {
            let y = py(t)
            s += "<line x1=\"\(n(left))\" y1=\"\(n(y))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y))\" stroke=\"#e5e7eb\"/>"
            let label = yFormat == .scientific ? sci(t, 2) : fmt(t, yt.decimals)
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\" font-size=\"10.5\" fill=\"#6b7280\">\(label)</text>\n"
        }
        // X ticks (integer epochs).
        let xStep = max(1, niceStep(xHi - xLo, target: 6).rounded(.up))
        var xTicks: [Double] = []
        var t = (xLo / xStep).rounded(.up) * xStep
        while t <= xHi + 1e-9 { xTicks.append(t); t += xStep }
        if xTicks.first.map({ $0 - xLo >= xStep / 2 }) ?? true { xTicks.insert(xLo, at: 0) }
        for t in xTicks {
            let x = px(t)
            s += "<line x1=\"\(n(x))\" y1=\"\(n(top + plotH))\" x2=\"\(n(x))\" y2=\"\(n(top + plotH + 4))\" stroke=\"#9ca3af\"/>"
            s += "<text x=\"\(n(x))\" y=\"\(n(top + plotH + 16))\" text-anchor=\"middle\" font-size=\"10.5\" fill=\"#6b7280\">\(fmt(t, 0))</text>\n"
        }
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top + plotH))\" x2=\"\(n(left + plotW))\" y2=\"\(n(top + plotH))\" stroke=\"#9ca3af\"/>\n"
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotH))\" stroke=\"#9ca3af\"/>\n"
        s += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 4))\" text-anchor=\"middle\" font-size=\"11\" fill=\"#4b5563\">Epoch</text>\n"
        if let b = bestX, b >= xLo, b <= xHi {
            s += "<line x1=\"\(n(px(b)))\" y1=\"\(n(top))\" x2=\"\(n(px(b)))\" y2=\"\(n(top + plotH))\" stroke=\"#6b7280\" stroke-dasharray=\"3 3\"/>\n"
        }
        // Series: polylines broken at non-finite values, with small point markers.
        for se in series {
            var segments: [[String]] = [[]]
            var dots = ""
            for (x, y) in zip(xs, se.values) {
                guard y.isFinite else { if !(segments.last?.isEmpty ?? true) { segments.append([]) }; continue }
                let p = "\(n(px(x))),\(n(py(y)))"
                segments[segments.count - 1].append(p)
                if xs.count <= 60 {
                    dots += "<circle cx=\"\(n(px(x)))\" cy=\"\(n(py(y)))\" r=\"1.8\" fill=\"\(se.color)\"/>"
                }
            }
            for seg in segments where !seg.isEmpty {
                s += "<polyline points=\"\(seg.joined(separator: " "))\" fill=\"none\" stroke=\"\(se.color)\" stroke-width=\"2\""
                s += se.dashed ? " stroke-dasharray=\"5 3\"" : ""
                s += " stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n"
            }
            if !dots.isEmpty { s += dots + "\n" }
        }
        s += "</svg>\n"
        return s
    }

    enum Swatch { case box, line }

    static func legend(_ items: [(String, String, Bool)], x: Double, y: Double, swatch: Swatch) -> String {
        var s = "<g class=\"legend\">"
        var cx = x
        for (name, color, dashed) in items {
            switch swatch {
            case .box:
                s += "<rect x=\"\(n(cx))\" y=\"\(n(y - 9))\" width=\"11\" height=\"11\" rx=\"2\" fill=\"\(color)\"/>"
            case .line:
                s += "<line x1=\"\(n(cx))\" y1=\"\(n(y - 4))\" x2=\"\(n(cx + 16))\" y2=\"\(n(y - 4))\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
            }
            let sw: Double = swatch == .box ? 15 : 20
            s += "<text x=\"\(n(cx + sw))\" y=\"\(n(y))\" font-size=\"11\" fill=\"#374151\">\(esc(name))</text>"
            cx += sw + 6.4 * Double(name.count) + 16
        }
        return s + "</g>\n"
    }

    static func svgOpen(width: Double, height: Double, id: String, label: String) -> String {
        "<svg id=\"\(id)\" fill=\"#374151\" role=\"img\" aria-label=\"\(esc(label))\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\">\n"
    }

    // MARK: Scales and ticks

    /// Categorical colours (Tableau 10): blue, orange, green, red, teal.
    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"]

    /// ColorBrewer's sequential "Blues" (9 classes), interpolated in RGB; `v` in 0...1.
    static func blues(_ v: Double) -> String {
        let stops: [(Int, Int, Int)] = [
            (0xf7, 0xfb, 0xff), (0xde, 0xeb, 0xf7), (0xc6, 0xdb, 0xef), (0x9e, 0xca, 0xe1), (0x6b, 0xae, 0xd6),
            (0x42, 0x92, 0xc6), (0x21, 0x71, 0xb5), (0x08, 0x51, 0x9c), (0x08, 0x30, 0x6b),
        ]
        let x = (v.isFinite ? max(0, min(1, v)) : 0) * Double(stops.count - 1)
        let i = min(stops.count - 2, Int(x.rounded(.down)))
        let f = x - Double(i)
        let a = stops[i], b = stops[i + 1]
        func mix(_ p: Int, _ q: Int) -> Int { Int((Double(p) + (Double(q) - Double(p)) * f).rounded()) }
        return hex(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    static func hex(_ r: Int, _ g: Int, _ b: Int) -> String {
        let digits = Array("0123456789abcdef")
        return "#" + [r, g, b].map { String([digits[$0 >> 4], digits[$0 & 15]]) }.joined()
    }

    static func niceStep(_ range: Double, target: Int) -> Double {
        let raw = max(range, 1e-300) / Double(max(target, 1))
        let mag = pow(10, (log10(raw)).rounded(.down))
        let f = raw / mag
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
        return nice * mag
    }

    /// Round tick values covering `lo...hi`, and the decimals their labels need.
    static func niceTicks(_ lo: Double, _ hi: Double, target: Int) -> (lo: Double, hi: Double, ticks: [Double], decimals: Int) {
        let step = niceStep(hi - lo, target: target)
        let first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
        let count = Int(last - first)
        let ticks = (0...max(count, 1)).map { (first + Double($0)) * step }
        var decimals = 0
        while decimals < 10 {
            let scaled = step * pow(10, Double(decimals))
            if abs(scaled - scaled.rounded()) < 1e-6 * max(1, scaled) { break }
            decimals += 1
        }
        return (ticks.first!, ticks.last!, ticks, decimals)
    }

    // MARK: Formatting (fixed, locale-free)

    /// `v` with `digits` decimals ("—" for NaN or infinity; never "-0.000").
    static func fmt(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "—" }
        let s = String(format: "%.\(digits)f", v)
        if s.hasPrefix("-"), s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(s.dropFirst()) }
        return s
    }

    static func signed(_ v: Double, _ digits: Int) -> String {
        let s = fmt(v, digits)
        if s == "—" || s.hasPrefix("-") { return s.hasPrefix("-") ? "−" + s.dropFirst() : s }
        return s.allSatisfy({ $0 == "0" || $0 == "." }) ? s : "+" + s
    }

    /// Scientific notation with `significant` digits: 1.0e-3, 2.5e-4; 0 as "0".
    static func sci(_ v: Double, _ significant: Int) -> String {
        guard v.isFinite else { return "—" }
        if v == 0 { return "0" }
        var e = Int(log10(abs(v)).rounded(.down))
        var mant = v / pow(10, Double(e))
        var ms = fmt(mant, max(0, significant - 1))
        if abs(Double(ms) ?? 0) >= 10 { e += 1; mant = v / pow(10, Double(e)); ms = fmt(mant, max(0, significant - 1)) }
        return "\(ms)e\(e)"
    }

    static func meanStd(_ m: MeanStd) -> String {
        "\(fmt(m.mean, 3)) ± \(m.std.map { fmt($0, 3) } ?? "—")"
    }

    static func duration(_ seconds: Double) -> String {
        // Beyond a thousand years (a state.json edited by hand) is no duration, and would not fit an Int.
        guard seconds.isFinite, seconds >= 0, seconds < 3.2e10 else { return "—" }
        let total = Int(seconds.rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        return h > 0 ? "\(h) h \(m) min" : m > 0 ? "\(m) min \(s) s" : "\(s) s"
    }

    /// SVG coordinates: 2 decimals, trailing zeros dropped.
    static func n(_ v: Double) -> String {
        var s = fmt(v, 2)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    /// Escapes text and attribute values for HTML and XML; control characters XML forbids become U+FFFD.
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0xFFFE || u.value == 0xFFFF {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    // MARK: Style

    static let css = """

:root { --fg: #1f2937; --muted: #6b7280; --border: #e5e7eb; --bg: #f4f6f9; --card: #ffffff; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 24px 40px; }
header h1 { font-size: 24px; line-height: 1.25; margin: 0 0 4px; letter-spacing: -0.01em; }
.sub { color: var(--muted); margin: 0; }
code, .kv td, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace; }
code { font-size: 0.92em; }
section.card { background: var(--card); border: 1px solid var(--border); border-radius: 10px; padding: 18px 22px 20px;
  margin-top: 18px; box-shadow: 0 1px 2px rgba(15, 23, 42, 0.05); }
h2 { font-size: 17px; margin: 0 0 14px; }
h3 { font-size: 13px; margin: 18px 0 8px; color: #374151; text-transform: uppercase; letter-spacing: 0.04em; }
.kpis { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; }
.kpi { border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; background: #fafbfc; }
.kpi .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
.kpi .v { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; color: #0f172a; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 28px; align-items: start; }
.grid2.wide-right { grid-template-columns: minmax(0, 0.8fr) minmax(0, 1.2fr); }
.grid3 { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 16px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: inherit; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--border); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td.text { white-space: normal; color: #4b5563; }
thead th { font-size: 11.5px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em;
  border-bottom: 2px solid var(--border); }
tbody tr:hover { background: #f9fafb; }
tr.total td { font-weight: 650; border-top: 2px solid var(--border); }
tr.pooled td { color: #4b5563; }
tr.best td { background: #eef4fb; }
td.neg { color: #b42318; }
table.compact th, table.compact td { padding: 3px 8px; font-size: 12.5px; }
.kv th { text-align: left; width: 210px; color: #374151; font-weight: 600; vertical-align: top; white-space: nowrap; }
.kv td { text-align: left; font-size: 12.5px; word-break: break-all; white-space: normal; }
pre.manifest { background: #f8fafc; border: 1px solid var(--border); border-radius: 8px; padding: 12px 14px; margin: 0;
  font-size: 12px; line-height: 1.45; overflow: auto; max-height: 420px; white-space: pre; }
details { margin-top: 12px; }
summary { cursor: pointer; color: #374151; font-weight: 600; font-size: 13px; margin-bottom: 6px; }
.note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 22px; }
@media (max-width: 960px) { .grid2, .grid2.wide-right, .grid3 { grid-template-columns: minmax(0, 1fr); }
  .kpis { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media (max-width: 600px) { main { padding: 16px 10px 28px; } section.card { padding: 14px 12px; }
  th, td { padding: 4px 5px; white-space: normal; } .kv th { width: auto; white-space: normal; } }
@media print { body { background: #ffffff; } section.card { box-shadow: none; break-inside: avoid; } pre.manifest { max-height: none; } }

"""
}
