import EmoPipeline
import Testing

@Suite("pipeline files, manifests and parameters")
struct DefinitionTests {
    @Test func canonicalJSONIgnoresKeyOrderAndKeepsNumberKinds() throws {
        let a = try PipelineDefinition.parse(yaml: """
            stages:
              s: {params: {b: 2, a: 0.5, c: [1, "x"], d: true, e: null, f: "2"}}
            """, origin: "a.yaml")
        let b = try PipelineDefinition.parse(yaml: """
            stages:
              s:
                params:
                  f: "2"
                  e: ~
                  d: true
                  c: [1, x]
                  a: 0.5
                  b: 2
            """, origin: "b.yaml")
        let json = ParamValue.object(a.stages[0].params).canonicalJSON
        #expect(json == ParamValue.object(b.stages[0].params).canonicalJSON)
        #expect(json == #"{"a":0.5,"b":2,"c":[1,"x"],"d":true,"e":null,"f":"2"}"#)
        #expect(ParamValue.int(2).canonicalJSON != ParamValue.double(2).canonicalJSON)
    }

    @Test func stagesComeInDependencyOrder() throws {
        let p = try PipelineDefinition.parse(yaml: """
            stages:
              train: {needs: [audio, split]}
              audio: {needs: [ingest]}
              split: {needs: [ingest]}
              ingest: {}
            """, origin: "p.yaml")
        #expect(p.stageNames == ["ingest", "audio", "split", "train"])
        #expect(p.closure(of: "audio") == ["audio", "ingest"])
    }

    @Test func cyclesAndUnknownNeedsAreRejected() {
        #expect(throws: PipelineError.cycle(["a", "b"])) {
            try PipelineDefinition.parse(yaml: "stages:\n  a: {needs: [b]}\n  b: {needs: [a]}\n", origin: "c.yaml")
        }
        #expect(throws: PipelineError.self) {
            try PipelineDefinition.parse(yaml: "stages:\n  a: {needs: [nothing]}\n", origin: "c.yaml")
        }
    }

    @Test func manifestResolvesPathsAgainstItsOwnFolder() throws {
        let m = try Manifest.parse(yaml: """
            pipeline: ../pipelines/ravdess.yaml
            data: ../data/here
            label_map: ravdess7
            seed: 9
            threads: 3
            params: {audio: {n_fft: 1024}}
            """, path: "/repo/manifests/x.yaml")
        #expect(m.pipelinePath == "/repo/pipelines/ravdess.yaml")
        #expect(m.dataRoot == "/repo/data/here")
        #expect(m.labelMap == "ravdess7")
        #expect(m.seed == 9 && m.threads == 3)
        #expect(m.overrides["audio"]?["n_fft"] == .int(1024))
        #expect(m.name == "x")
    }

    @Test func manifestMistakesNameTheFieldAndTheFile() {
        do {
            _ = try Manifest.parse(yaml: "labelmap: ravdess8\n", path: "/m/typo.yaml")
            Issue.record("an unknown field was accepted")
        } catch let error as PipelineError {
            #expect(error.description.contains("/m/typo.yaml"))
            #expect(error.description.contains("labelmap"))
        } catch { Issue.record("unexpected \(error)") }
        #expect(throws: PipelineError.self) { try Manifest.parse(yaml: "label_map: ravdess9\n", path: "m.yaml") }
        #expect(throws: PipelineError.self) { try Manifest.parse(yaml: "threads: 0\n", path: "m.yaml") }
    }
}
