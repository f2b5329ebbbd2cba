// `manifest`: experiment manifests nobody wrote — the shipped ones with values swapped for odd ones of every
// type, keys added, dropped or misplaced, YAML's own features (anchors, tags, documents) and raw byte edits —
// through what `emopipe params`, `run --dry-run` and `sweep --dry-run` do before any work: Manifest.parse,
// `--set` lines, every stage's parameters resolved and checked, a sweep's trials each validated. Each must be
// accepted, or refused with a usage error (exit 64) that says something; an accepted one's resolved values,
// written back as a manifest, must resolve to themselves.
import EmoCore
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

final class ManifestTarget: FuzzTarget {
    let name = "manifest"
    /// Where a manifest is taken to be (never written): the shipped ones name their pipeline relative to it.
    let manifestPath: String
    let seeds: [String]
    /// Every stage key with its value in the first shipped manifest (a model of each key's type and scale).
    let knownKeys: [(stage: String, key: String, value: ParamValue)]
    private let workspace: Workspace

    /// A trailing comment line of the input that stands for one `--set` argument (one file replays a case).
    static let setPrefix = "# --set "

    init(repositoryRoot: String) throws {
        manifestPath = repositoryRoot + "/manifests/fuzz-input.yaml"
        let folder = repositoryRoot + "/manifests"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()) ?? []
        // As large as a manifest may be: a larger one is refused by the pipeline, and read whole it was held in memory.
        let files = names.compactMap { name -> (name: String, text: String)? in
            do {
                guard let text = try RegularFile.text(folder + "/" + name, atMost: SafeYAML.maxBytes) else {
                    throw EmoError.io(path: folder + "/" + name, reason: "not UTF-8 text")
                }
                return (name, text)
            } catch {
                StandardStream.error.write(Data("emopipe-fuzz: manifest seed \((folder + "/" + name).echoed) left out: \(EmoError.reason(of: error).escaped)\n".utf8))
                return nil
            }
        }
        guard let model = files.first else {
            throw FuzzSetupError("no manifests in \(folder.echoed) (*.yaml, UTF-8, at most \(SafeYAML.maxBytes) bytes): pass --repository with the checkout's folder")
        }
        seeds = files.map(\.text)
        // Never created: resolution and validation read no work directory.
        workspace = Workspace(root: NSTemporaryDirectory() + "/emopipe-fuzz-manifest-\(getpid())/work")
        // The first manifest models every key's type: it must be one the pipeline takes, named if not.
        let plain: Manifest
        do { plain = try Manifest.parse(yaml: model.text, path: folder + "/" + model.name) } catch {
            throw FuzzSetupError("\(error) (the first manifest models every key's type: pass --repository with a checkout's folder)")
        }
        let runner = try PipelineRunner(manifest: plain, workspace: workspace, stages: StageCatalog.all())
        knownKeys = runner.pipeline.stageNames.flatMap { stage in
            (runner.parameters[stage]?.encoded ?? [:]).sorted { $0.key < $1.key }.map { (stage, $0.key, $0.value) }
        }
    }

    var seedCount: Int { seeds.count }

    func seed(_ index: Int) -> FuzzInput { FuzzInput(bytes: Array(seeds[index].utf8), fileExtension: "yaml") }

    func generate(_ rng: inout FuzzRandom) -> FuzzInput {
        var text: String
        switch rng.below(10) {
        case 0...5: text = structured(&rng)
        case 6, 7: text = yamlFeature(rng.pick(seeds), &rng)
        default:
            var bytes = Array(rng.pick(seeds).utf8)
            Mutator.mutate(&bytes, rng: &rng, other: Array(rng.pick(seeds).utf8), maxSize: 1 << 14)
            text = String(decoding: bytes, as: UTF8.self)
        }
        if rng.chance(0.2) {
            for _ in 0..<rng.stackDepth(max: 3) {
                let known = rng.pick(knownKeys)
                text += "\n" + Self.setPrefix + "\(known.stage).\(known.key)=" + flowYAML(oddValue(like: known.value, &rng))
            }
        }
        return FuzzInput(bytes: Array(text.utf8), fileExtension: "yaml")
    }

    // MARK: Generation

    /// A shipped manifest as a value tree, edited, written back as flow YAML.
    private func structured(_ rng: inout FuzzRandom) -> String {
        guard case .object(var fields)? = try? document(rng.pick(seeds)) else { return rng.pick(seeds) }
        for _ in 0..<rng.stackDepth(max: 6) {
            switch rng.below(8) {
            case 0...3:  // a stage key set to an odd value
                let known = rng.pick(knownKeys)
                var params = fields["params"]?.objectValue ?? [:]
                var stage = params[known.stage]?.objectValue ?? [:]
                stage[rng.chance(0.95) ? known.key : known.key.uppercased()] = oddValue(like: known.value, &rng)
                params[rng.chance(0.97) ? known.stage : known.stage + "." + known.key] = .object(stage)
                fields["params"] = .object(params)
            case 4:  // a manifest field set to an odd value
                let key = rng.pick(["name", "pipeline", "data", "label_map", "include_song", "seed", "threads", "workers",
                                    "description", "nightly", "resources", "sweep", "params", "unknown_field"])
                fields[key] = oddValue(like: fields[key] ?? .string("x"), &rng)
            case 5:  // a sweep over known keys
                fields["sweep"] = sweep(&rng)
            case 6:  // a field dropped
                if let key = fields.keys.sorted().randomElement(using: &rng) { fields[key] = nil }
            default:  // nightly and resources blocks with odd members
                fields[rng.chance(0.5) ? "nightly" : "resources"] = .object([
                    rng.pick(["tolerance", "metrics", "max_memory_mb", "publish_after_seconds", "extra"]): oddValue(like: .double(0.02), &rng),
                ])
            }
        }
        return flowYAML(.object(fields))
    }

    /// A sweep block as the README describes it (grid, random or halving over known keys), with odd values mixed in.
    private func sweep(_ rng: inout FuzzRandom) -> ParamValue {
        func key() -> (name: String, value: ParamValue) { let k = rng.pick(knownKeys); return ("\(k.stage).\(k.key)", k.value) }
        func odd(_ model: ParamValue) -> ParamValue { oddValue(like: model, &rng) }
        var block: [String: ParamValue] = [
            "metric": rng.chance(0.9) ? .string(rng.pick(["weighted_f1", "accuracy", "macro_f1", "cv.weighted_f1.mean", "int8.agreement", "clips"])) : odd(.string("x")),
            "direction": rng.chance(0.9) ? .string(rng.pick(["maximize", "minimize"])) : odd(.string("x")),
        ]
        let strategy = rng.pick(["grid", "random", "halving"])
        block["strategy"] = rng.chance(0.95) ? .string(strategy) : odd(.string(strategy))
        var grid: [String: ParamValue] = [:]
        for _ in 0..<(1 + rng.below(3)) {
            let (name, value) = key()
            grid[name] = rng.chance(0.9) ? .array((0..<rng.below(5)).map { _ in rng.chance(0.5) ? value : odd(value) }) : odd(value)
        }
        var distributions: [String: ParamValue] = [:]
        for _ in 0..<(1 + rng.below(2)) {
            let (name, value) = key()
            distributions[name] = rng.pick([
                .object(["distribution": .string("log_uniform"), "low": odd(.double(1e-4)), "high": odd(.double(1e-2))]),
                .object(["distribution": .string("uniform"), "low": odd(.double(0.1)), "high": odd(.double(0.5))]),
                .object(["distribution": .string("int_uniform"), "low": odd(.int(1)), "high": odd(.int(8))]),
                .object(["distribution": .string("choice"), "values": .array([value, odd(value)])]),
                odd(value),
            ])
        }
        // Few trials, or a count refused outright: every trial is validated, and thousands take seconds (18 s for
        // 10,000 in a debug build), which the slow-input limit would call a failure.
        let badCounts: [ParamValue] = [.int(0), .int(-1), .int(SweepSpec.maxTrials + 1), .int(Int.max), .double(2.5), .string("8"), .null, .array([])]
        let random = ParamValue.object(["n_trials": rng.chance(0.8) ? .int(1 + rng.below(8)) : rng.pick(badCounts),
                                        "seed": rng.chance(0.8) ? .int(1) : odd(.int(1)), "params": .object(distributions)])
        switch strategy {
        case "grid": block["grid"] = .object(grid)
        case "random": block["random"] = random
        default:
            block["halving"] = .object(["budgets": rng.chance(0.7) ? .array([.int(2), .int(4), .int(8)]) : odd(.array([.int(2), .int(4)]))])
            block[rng.chance(0.7) ? "random" : "grid"] = rng.chance(0.7) ? random : .object(grid)
        }
        if rng.chance(0.1) { block[rng.pick(["grid", "random", "halving", "extra"])] = odd(.object([:])) }
        return .object(block)
    }

    /// A value of the same type as `model` at an edge, or one of another type.
    private func oddValue(like model: ParamValue, _ rng: inout FuzzRandom) -> ParamValue {
        let edges: [ParamValue] = [.int(0), .int(-1), .int(1), .int(2), .int(3), .int(7), .int(255), .int(65_536), .int(1 << 31),
                                   .int(Int(Int32.max)), .int(Int.max), .int(Int.min), .double(0.5), .double(-0.0), .double(.leastNonzeroMagnitude),
                                   .double(1e308), .double(.nan), .double(.infinity), .double(-.infinity), .string(""), .string("x"),
                                   .string("é\u{0301}🙂"), .string(String(repeating: "a", count: 5000)), .string("/dev/zero"), .string("~"),
                                   .string("../../.."), .string("-1"), .string("1e5"), .bool(true), .bool(false), .null, .array([]),
                                   .array([.int(1), .int(1)]), .array([.array([.int(1)])]), .object([:]), .object(["a": .int(1)])]
        switch (model, rng.below(3)) {
        case (.int(let i), 0): return .int(rng.chance(0.5) ? i &+ Int(rng.below(5)) - 2 : i &* (1 << rng.below(40)))
        case (.double(let d), 0): return .double(rng.chance(0.5) ? d * Double(rng.below(2001)) / 1000 : -d)
        case (.string(let s), 0): return .string(rng.chance(0.5) ? s.uppercased() : s + rng.pick([" ", "\u{0}", "x", "\n"]))
        case (.array(let items), 0):
            var changed = items
            if !changed.isEmpty, rng.chance(0.5) { changed.remove(at: rng.below(changed.count)) } else { changed += items.prefix(1) }
            if !changed.isEmpty, rng.chance(0.5) { changed[rng.below(changed.count)] = rng.pick(edges) }
            return .array(changed)
        default: return rng.pick(edges)
        }
    }

    /// A shipped manifest with one of YAML's own features worked into a line.
    private func yamlFeature(_ text: String, _ rng: inout FuzzRandom) -> String {
        var lines = text.components(separatedBy: "\n")
        let features = ["&a ", "*a", "!!binary ", "!!str ", "!!float ", "!custom ", "<<: *a", "? ", "--- ", "...", "%YAML 1.1",
                        "\t", "\u{FEFF}", "|", ">-", "{", "[", "\"", "'", "#", ": ", "- ", "~", ".nan", "-.inf", "0o17", "0x1F",
                        "1_000", "+12", "1:20", "2026-12-07", "yes", "Off", "null", "!!set", "&a [*a]",
                        String(repeating: "[", count: 200), String(repeating: "- ", count: 60)]
        for _ in 0..<rng.stackDepth(max: 4) {
            let at = rng.below(lines.count)
            var line = lines[at]
            let feature = rng.pick(features)
            if let colon = line.firstIndex(of: ":"), rng.chance(0.6) {
                line.insert(contentsOf: " " + feature, at: line.index(after: colon))
            } else if rng.chance(0.5) {
                line = feature + line
            } else {
                lines.insert(feature, at: at)
                continue
            }
            lines[at] = line
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Execution

    func execute(_ input: FuzzInput) -> Outcome {
        let text = String(decoding: input.bytes, as: UTF8.self)
        let settings = text.components(separatedBy: "\n").filter { $0.hasPrefix(Self.setPrefix) }.map { String($0.dropFirst(Self.setPrefix.count)) }
        let resolved: [String: [String: ParamValue]]
        var swept = false, pipeline = ""
        do {
            var manifest = try Manifest.parse(yaml: text, path: manifestPath)
            manifest.commandLine = try settings.map(ParameterOverride.init(parsing:))
            let runner = try PipelineRunner(manifest: manifest, workspace: workspace, stages: StageCatalog.all())
            pipeline = manifest.pipelinePath
            try runner.checkBeforeRunning(try runner.stagesOfAWholeRun())
            if manifest.sweep != nil {
                let sweep = try SweepRunner(manifest: manifest, workspace: workspace, stages: StageCatalog.all())
                guard !sweep.trials.isEmpty else { return .failure("a sweep with no trials was accepted") }
                swept = true
            }
            resolved = runner.parameters.mapValues(\.encoded)
        } catch let error as PipelineError {
            let message = error.description
            guard !message.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return .failure("refused with an empty message: \(error)") }
            guard ExitStatus.of(error) == ExitStatus.usage else {
                return .failure("a manifest's text refused as exit \(ExitStatus.of(error)), not a usage error: \(message)")
            }
            return .rejected("PipelineError: " + String(normalised(message, path: manifestPath).prefix(160)))
        } catch {
            return .failure("refused with an error of type \(type(of: error)), not a PipelineError: \(error)")
        }
        return roundTrip(resolved, pipeline: pipeline, label: swept ? "manifest with a sweep" : "manifest")
    }

    /// The resolved values, written as a manifest's params, resolve to themselves: nothing is lost or
    /// changed by being read (a float's digits, an integer's range, a list's order).
    private func roundTrip(_ resolved: [String: [String: ParamValue]], pipeline: String, label: String) -> Outcome {
        let params = ParamValue.object(resolved.mapValues(ParamValue.object))
        let again = "pipeline: " + ParamValue.string(pipeline).canonicalJSON + "\nparams: " + flowYAML(params) + "\n"
        do {
            let runner = try PipelineRunner(manifest: try Manifest.parse(yaml: again, path: manifestPath), workspace: workspace,
                                            stages: StageCatalog.all())
            let second = runner.parameters.mapValues(\.encoded)
            for stage in resolved.keys.sorted() where second[stage] != resolved[stage] {
                let keys = Set(resolved[stage]?.keys ?? [:].keys).union(second[stage]?.keys ?? [:].keys).sorted()
                let differing = keys.filter { resolved[stage]?[$0] != second[stage]?[$0] }
                return .failure("\(stage): resolved values read back differently: "
                                + differing.prefix(3).map { "\($0) \(resolved[stage]?[$0]?.description ?? "-") → \(second[stage]?[$0]?.description ?? "-")" }.joined(separator: ", "))
            }
        } catch {
            return .failure("resolved values, written back, are refused: \(error)")
        }
        return .accepted(label)
    }

    private func document(_ text: String) throws -> ParamValue? {
        try SafeYAML.compose(text, origin: "seed").map { try ParamValue(yaml: $0, origin: nil) }
    }

    /// YAML in flow style: JSON's syntax, with YAML's spellings for the floats JSON lacks.
    private func flowYAML(_ value: ParamValue) -> String {
        switch value {
        case .double(let d) where d.isNaN: return ".nan"
        case .double(let d) where d.isInfinite: return d > 0 ? ".inf" : "-.inf"
        case .array(let items): return "[" + items.map(flowYAML).joined(separator: ", ") + "]"
        case .object(let fields):
            return "{" + fields.keys.sorted().map { ParamValue.string($0).canonicalJSON + ": " + flowYAML(fields[$0]!) }.joined(separator: ", ") + "}"
        default: return value.canonicalJSON
        }
    }
}

struct FuzzSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
