import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStore
import EmoStages
import Foundation

struct ParamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "params",
        abstract: "Print every stage parameter as a run would use it, and where its value came from.",
        discussion: Help.reflow("""
        Values are the built-in defaults (which pipelines/ravdess.yaml documents), laid over by the
        pipeline file, the manifest's params and --set, in that order; every value is decoded and
        checked as a run checks it, so a bad one is refused here too (exit 64). The manifest-wide settings a
        stage also reads (split: label_map, include_song; train and evaluate: seed, threads; ingest: data,
        listed as data_root) are listed under it as the manifest gives them; they are set by the manifest's
        own keys, not by params or --set. A run's thread count option overrides threads for that run; its data
        root option overrides the data root and is remembered by the work directory, which later runs then
        use (params shows the manifest's).

        With --json: an array of {stage, key, value, origin, file}; origin is default, pipeline, manifest
        or command line; file names the pipeline file or manifest (null otherwise).

        Examples:
          emopipe params manifests/demo.yaml
          emopipe params --set train.epochs=3 --set audio.n_mels=80 --json
        """))

    @OptionGroup var manifestArguments: ManifestArguments

    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    func run() throws {
        do {
            let runner = try PipelineRunner(manifest: try manifestArguments.load(),
                                            workspace: Workspace(root: FileManager.default.currentDirectoryPath),
                                            stages: StageCatalog.all())
            try runner.checkBeforeRunning(try runner.stagesOfAWholeRun())
            let manifest = runner.manifest
            let rows = runner.pipeline.stageNames.flatMap { stage -> [Row] in
                guard let resolved = runner.parameters[stage] else { return [] }
                let preset = resolved.preset.map { [Row(stage: stage, key: $0.key, value: $0.name, origin: $0.origin)] } ?? []
                let manifestWide = (runner.stages[stage]?.manifestFields ?? []).sorted().map { key in
                    Row(stage: stage, key: key, value: manifest.globals[key] ?? .null,
                        origin: manifest.givenGlobals.contains(key) ? .manifest(path: manifest.path) : .defaultValue)
                }
                return preset + manifestWide + resolved.encoded.keys.sorted().map { key in
                    Row(stage: stage, key: key, value: resolved.encoded[key] ?? .null,
                        origin: resolved.origins[key] ?? .defaultValue)
                }
            }
            json ? printJSON(rows) : printTable(rows)
        } catch {
            throw Failure.exit(for: error)
        }
    }

    struct Row {
        var stage: String
        var key: String
        var value: ParamValue
        var origin: ParameterOrigin

        var file: String? {
            switch origin {
            case .pipeline(let path), .manifest(let path), .sweep(let path): return path
            case .defaultValue, .commandLine: return nil
            }
        }
    }

    private func printJSON(_ rows: [Row]) {
        JSONOutput.print(.array(rows.map {
            .object(["stage": .string($0.stage), "key": .string($0.key), "value": $0.value,
                     "origin": .string($0.origin.label), "file": JSONOutput.optional($0.file)])
        }))
    }

    private func printTable(_ rows: [Row]) {
        let names = rows.map { "\($0.stage).\($0.key)" }
        let values = rows.map(\.value.canonicalJSON)
        let nameWidth = names.map(\.count).max() ?? 0, valueWidth = min(40, values.map(\.count).max() ?? 0)
        for (i, row) in rows.enumerated() {
            let origin = row.file.map { "\(row.origin.label) (\($0.escaped))" } ?? row.origin.label
            print(names[i].padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                  + values[i].padding(toLength: max(valueWidth, values[i].count), withPad: " ", startingAt: 0) + "  " + origin)
        }
    }
}
