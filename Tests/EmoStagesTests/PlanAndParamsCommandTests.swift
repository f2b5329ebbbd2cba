import EmoPipeline
import EmoTestSupport
import Foundation
import Testing

/// `emopipe run --dry-run` and `emopipe params`, as a user runs them, on real speech of two actors.
@Suite("run --dry-run and params", .enabled(if: TestSupport.hasEmopipe && TestSupport.hasSharedData))
struct PlanAndParamsCommandTests {
    struct PlannedRow: Decodable, Equatable {
        var stage: String
        var action: String
        var reason: String
        var units: Int?
    }

    struct ParamRow: Decodable {
        var stage: String
        var key: String
        var origin: String
        var file: String?
    }

    let data: String
    let work: String
    let manifest: String

    init() throws {
        data = try TestSupport.materialize(actors: 1...2, extra: ["--no-av"])
        let folder = try TestSupport.temporaryFolder("plan")
        work = folder + "/work"
        manifest = try TestSupport.writeManifest(at: folder + "/m.yaml", data: data, "params: {train: {epochs: 3}}\n")
    }

    func emopipe(_ arguments: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(TestSupport.emopipe, arguments + ["--workdir", work])
    }

    func plan(_ extra: [String] = []) throws -> [String: PlannedRow] {
        let result = try emopipe(["run", manifest, "--until", "audio", "--dry-run", "--json"] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try JSONDecoder().decode([PlannedRow].self, from: Data(result.stdout.utf8))
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.stage, $0) })
    }

    @Test func theDryRunSaysWhatWouldRunAndHowMuchAndChangesNothing() throws {
        let wavs = try FileManager.default.subpathsOfDirectory(atPath: data).filter { $0.hasSuffix(".wav") }.count
        #expect(wavs == 120)

        let fresh = try plan()
        #expect(fresh["ingest"]?.action == "run" && fresh["audio"]?.action == "run")
        #expect(!FileManager.default.fileExists(atPath: work + "/emopipe.sqlite"), "a dry run creates nothing")

        #expect(try emopipe(["run", manifest, "--until", "ingest"]).status == 0)
        let ingested = try plan()
        #expect(ingested["ingest"] == PlannedRow(stage: "ingest", action: "up-to-date", reason: ingested["ingest"]?.reason ?? "", units: 0))
        #expect(ingested["audio"]?.units == wavs, "every wav still needs its log-mel tensor")

        #expect(try emopipe(["run", manifest, "--until", "audio"]).status == 0)
        let done = try plan()
        #expect(done.values.allSatisfy { $0.action == "up-to-date" && $0.units == 0 })

        let changed = try plan(["--set", "audio.n_mels=80"])
        #expect(changed["audio"]?.action == "run")
        #expect(changed["audio"]?.reason.contains("n_mels 64 → 80") == true, "\(String(describing: changed["audio"]))")
        #expect(changed["audio"]?.units == wavs)
        let forced = try plan(["--force", "ingest"])
        #expect(forced["audio"]?.action == "run" && forced["audio"]?.reason == "downstream of a forced stage")
        #expect(forced["audio"]?.units == wavs, "a forced stage's dependents recompute from scratch too")
    }

    @Test func paramsSaysWhereEachValueCameFrom() throws {
        let result = try TestSupport.run(TestSupport.emopipe, ["params", manifest, "--set", "train.batch_size=8", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try JSONDecoder().decode([ParamRow].self, from: Data(result.stdout.utf8))
        func row(_ stage: String, _ key: String) -> ParamRow? { rows.first { $0.stage == stage && $0.key == key } }
        #expect(row("train", "epochs")?.origin == "manifest")
        #expect(row("train", "epochs")?.file == URL(fileURLWithPath: manifest).standardizedFileURL.path)
        #expect(row("train", "batch_size")?.origin == "command line")
        #expect(row("audio", "n_mels")?.origin == "default")
        #expect(row("export", "quantize")?.origin == "default", "int8 export is off by default")
        #expect(Set(rows.map(\.stage)) == ["ingest", "audio", "faces", "split", "train", "evaluate", "export"])
        // The manifest-wide settings a stage reads are listed under it: given by the file (data), or defaults (seed).
        #expect(row("ingest", "data_root")?.origin == "manifest" && row("ingest", "data_root")?.file == row("train", "epochs")?.file)
        #expect(row("train", "seed")?.origin == "default" && row("evaluate", "threads")?.origin == "default")
        #expect(row("split", "label_map") != nil && row("split", "include_song") != nil)
        let seeded = try TestSupport.writeManifest(at: (manifest as NSString).deletingLastPathComponent + "/seeded.yaml", data: data, "seed: 7\nthreads: 1\n")
        let seededRows = try JSONDecoder().decode([ParamRow].self, from: Data(try TestSupport.run(TestSupport.emopipe, ["params", seeded, "--json"]).stdout.utf8))
        #expect(seededRows.contains { $0.stage == "train" && $0.key == "seed" && $0.origin == "manifest" })
        #expect(seededRows.contains { $0.stage == "evaluate" && $0.key == "threads" && $0.origin == "manifest" })
        #expect(row("audio", "preset")?.origin == "default", "the preset the audio values start from is listed")

        // A preset named on the command line is listed with its origin, and the values it set come from there too.
        let reference = try TestSupport.run(TestSupport.emopipe, ["params", manifest, "--set", "audio.preset=reference", "--json"])
        #expect(reference.status == 0, "\(reference.stderr)")
        let referenceRows = try JSONDecoder().decode([ParamRow].self, from: Data(reference.stdout.utf8))
        let preset = referenceRows.first { $0.stage == "audio" && $0.key == "preset" }
        #expect(preset?.origin == "command line" && reference.stdout.contains("\"reference\""), "\(String(describing: preset))")
        #expect(referenceRows.filter { $0.stage == "audio" && $0.key == "preset" }.count == 1)

        // A preset the pipeline file names is the pipeline file's, and so are the values it set.
        let folder = (manifest as NSString).deletingLastPathComponent
        let pipeline = try String(contentsOfFile: TestSupport.repositoryRoot + "/pipelines/ravdess.yaml", encoding: .utf8)
            .replacingOccurrences(of: "      preset: speech\n", with: "      preset: reference\n")
        try pipeline.write(toFile: folder + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let referenceManifest = folder + "/m-reference.yaml"
        try (try String(contentsOfFile: manifest, encoding: .utf8))
            .replacingOccurrences(of: TestSupport.repositoryRoot + "/pipelines/ravdess.yaml", with: folder + "/pipeline.yaml")
            .write(toFile: referenceManifest, atomically: true, encoding: .utf8)
        let fromPipeline = try TestSupport.run(TestSupport.emopipe, ["params", referenceManifest, "--json"])
        #expect(fromPipeline.status == 0, "\(fromPipeline.stderr)")
        let pipelineRows = try JSONDecoder().decode([ParamRow].self, from: Data(fromPipeline.stdout.utf8))
        for key in ["preset", "hop_length"] {
            #expect(pipelineRows.first { $0.stage == "audio" && $0.key == key }?.origin == "pipeline", "audio.\(key)")
        }

        let bad = try TestSupport.run(TestSupport.emopipe, ["params", manifest, "--set", "train.batch_size=0"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--set: train.batch_size = 0: an integer from 2 to 4096"), "\(bad.stderr)")
    }
}
