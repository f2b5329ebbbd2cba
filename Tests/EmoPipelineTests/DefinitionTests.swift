import EmoCore
import EmoPipeline
import EmoTestSupport
import Foundation
import Testing

@Suite("pipeline files, manifests and parameters")
struct DefinitionTests {
    /// An explicit YAML tag is obeyed (`!!str 0.3` is text, `!!float 3` a number), not dropped.
    @Test func explicitYAMLTagsAreObeyed() throws {
        let manifest = try Manifest.parse(yaml: "params: {train: {a: !!str 0.3, b: !!float 3, c: ! 3, d: 0.3, e: !!null '', f: !!bool true}}\n",
                                          path: "/m/tags.yaml")
        let train = try #require(manifest.overrides["train"])
        #expect(train["a"] == .string("0.3") && train["b"] == .double(3) && train["c"] == .string("3"))
        #expect(train["d"] == .double(0.3) && train["e"] == .null && train["f"] == .bool(true))
    }

    /// Numbers are decimal: hexadecimal-looking text stays text (a type error names it), whether or
    /// not it happens to hold an "e" or a "." that Double would read as hex digits or a hex fraction.
    @Test func onlyDecimalTextIsANumber() throws {
        let manifest = try Manifest.parse(yaml: "params: {train: {a: 0xe, b: 0x1e, c: 0x10, d: 0x0.8p-1, e: 1e3, f: -2.5, g: 12}}\n",
                                          path: "/m/numbers.yaml")
        let train = try #require(manifest.overrides["train"])
        #expect(["a", "b", "c", "d"].allSatisfy { train[$0]?.stringValue != nil }, "\(train)")
        #expect(train["e"] == .double(1000) && train["f"] == .double(-2.5) && train["g"] == .int(12))
    }

    /// A manifest is named by the file that was read: `link/../m.yaml` is beside the link's target (where the
    /// kernel goes), not beside the link; control characters in its path are spelt out.
    @Test func aManifestIsNamedByTheFileRead() throws {
        let root = try TestSupport.temporaryFolder("manifest-name")
        try FileManager.default.createDirectory(atPath: root + "/far/deep", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: "far/deep")
        try "name: near\nbogus: 1\n".write(toFile: root + "/m.yaml", atomically: true, encoding: .utf8)
        try "name: far\nbogus: 2\n".write(toFile: root + "/far/m.yaml", atomically: true, encoding: .utf8)
        let refused = try #require(throws: PipelineError.self) { try Manifest.load(path: root + "/link/../m.yaml") }
        #expect("\(refused)".contains(root + "/far/m.yaml: unknown field 'bogus'"), "\(refused)")
        try FileManager.default.createDirectory(atPath: root + "/line\nbreak", withIntermediateDirectories: true)
        try "name: x\nbogus: 1\n".write(toFile: root + "/line\nbreak/m.yaml", atomically: true, encoding: .utf8)
        let escaped = try #require(throws: PipelineError.self) { try Manifest.load(path: root + "/line\nbreak/m.yaml") }
        #expect("\(escaped)".contains(root + "/line\\nbreak/m.yaml: unknown field"), "\(escaped)")
    }

    /// A leading `~/` in a manifest's paths is the home folder, as `--data ~/x` is read: it was a folder named `~`
    /// beside the manifest. `~user` and a `~` inside a path stay as written.
    @Test func aManifestPathStartingWithTildeIsInTheHomeFolder() throws {
        let home = try #require(ProcessInfo.processInfo.environment["HOME"])
        let manifest = try Manifest.parse(yaml: "name: t\ndata: ~/RAVDESS\npipeline: ~other/p.yaml\n", path: "/srv/m/manifest.yaml")
        #expect(manifest.dataRoot == ResolvedPath.tidied(home + "/RAVDESS"))
        #expect(manifest.pipelinePath == "/srv/m/~other/p.yaml")
        #expect(PathText.withHome("a/~/b") == "a/~/b" && PathText.withHome("~") == home)
    }

    /// JSON nested past YAML's bound is refused before decoding, whose time grows with the cube of the
    /// depth (a file of megabytes of brackets would have taken hours); brackets inside strings do not count.
    @Test func deeplyNestedJSONIsRefusedBeforeDecoding() throws {
        func nested(_ depth: Int) -> Data { Data((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8) }
        #expect(try ParamValue.fromJSON(nested(SafeYAML.maxDepth)).arrayValue?.count == 1)
        for data in [nested(SafeYAML.maxDepth + 1), Data(String(repeating: "{\"a\":", count: 100_000).utf8),
                     Data(String(repeating: "[", count: 4 << 20).utf8)] {
            let refused = try #require(throws: ParamValue.NestingError.self) { try ParamValue.fromJSON(data) }
            #expect("\(refused)".contains("nested more than \(SafeYAML.maxDepth) deep"), "\(refused)")
        }
        let inText = try ParamValue.fromJSON(Data("{\"a\": \"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}".utf8))
        #expect(inText.objectValue?["a"]?.stringValue?.count == 47, "\(inText)")
        // A recorded column names each kind of problem as what it is: too deep (valid JSON), no JSON, JSON of another kind.
        let deep = String(decoding: nested(SafeYAML.maxDepth + 1), as: UTF8.self)
        for (json, says) in [(deep, "JSON of lists and mappings nested more than \(SafeYAML.maxDepth) deep"), ("{\"a\": 1", "not valid JSON"),
                             ("[1, 2]", "not a JSON object")] {
            guard case .failure(let problem) = ParamValue.recordedObject(json) else { Issue.record("\(json) read as an object"); continue }
            #expect("\(problem)".hasPrefix(says), "\(json.prefix(20)): \(problem)")
        }
    }

    /// JSON text past the bound is refused by its length, unread: a database column or result file edited to many
    /// megabytes took about 1.5 s and 65 bytes of memory per byte (minutes and gigabytes; a trap under a memory limit).
    @Test func jsonLongerThanEmoPipeRecordsIsRefusedBeforeDecoding() throws {
        // Padded with spaces, which decode fast: the bound is on the text's length, whatever it holds.
        let padded = { (bytes: Int) in Data("[0]".utf8) + Data(repeating: UInt8(ascii: " "), count: bytes - 3) }
        #expect(try ParamValue.fromJSON(padded(ParamValue.jsonLimit)).arrayValue == [.int(0)])
        let past = padded(ParamValue.jsonLimit + 1)
        let refused = try #require(throws: ParamValue.SizeError.self) { try ParamValue.fromJSON(past) }
        #expect(refused == ParamValue.SizeError(bytes: past.count, limit: ParamValue.jsonLimit))
        #expect("\(refused)" == "\(past.count) bytes of JSON, more than the \(ParamValue.jsonLimit) read of what EmoPipe records")
    }

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

    /// A `%YAML 1.2` directive is YAML's own reading and is taken, with any line ends; another version is refused.
    @Test func onlyTheYAMLVersionReadIsAcceptedAsADirective() throws {
        for ending in ["\n", "\r\n"] {
            let text = ["%YAML 1.2", "---", "stages:", "  a: {}", ""].joined(separator: ending)
            #expect(try PipelineDefinition.parse(yaml: text, origin: "p.yaml").stageNames == ["a"])
            #expect(throws: PipelineError.self) { try PipelineDefinition.parse(yaml: text.replacingOccurrences(of: "1.2", with: "1.1"), origin: "p.yaml") }
        }
        // Text in the document that looks like a directive is text: directives come before it.
        let quoted = "description: \"a\n%YAML 1.1\"\nstages:\n  a: {}\n"
        #expect(try PipelineDefinition.parse(yaml: quoted, origin: "p.yaml").stageNames == ["a"])
    }

    /// A pipeline file is read as strictly as a manifest: a typo or a value of the wrong kind is
    /// refused, naming the file and the line, never silently dropped.
    @Test func unknownFieldsAndWrongKindsInAPipelineFileAreRefused() {
        let cases = [
            ("version: 2\nstages:\n  a: {}\n", "line 1: unknown field 'version' in a pipeline file"),
            ("stages:\n  a: {}\n  b: {neds: [a]}\n", "line 3: unknown field 'neds' in stage 'b'"),
            ("stages:\n  a: {}\n  b: {needs: [[a]]}\n", "line 3: stage 'b': each of 'needs' must be text"),
            ("stages:\n  a: {description: {x: 1}}\n", "stage 'a': 'description' must be text"),
            ("stages:\n  a: [x]\n", "stage 'a' must be a mapping"),
            ("stages: [a, b]\n", "line 1: 'stages' is a list; it must map each stage's name"),
            ("stages: {}\n", "'stages' is empty"),
            ("name: x\n", "'stages' is missing"),
            ("name: x\nstages:\n", "'stages' has no value"),
        ]
        for (yaml, message) in cases {
            do {
                _ = try PipelineDefinition.parse(yaml: yaml, origin: "p.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".hasPrefix("p.yaml: ") && "\(error)".contains(message), "\(error)")
            }
        }
        #expect(throws: Never.self) { try PipelineDefinition.parse(yaml: "name: p\ndescription: d\nstages:\n  a:\n  b: {needs: [a], params: }\n", origin: "p.yaml") }
    }

    @Test func cyclesAndUnknownNeedsAreRejected() {
        #expect(throws: PipelineError.invalidFile("c.yaml: \(PipelineError.cycle(["a", "b", "a"]))")) {
            try PipelineDefinition.parse(yaml: "stages:\n  a: {needs: [b]}\n  b: {needs: [a]}\n", origin: "c.yaml")
        }
        // Only the stages on the loop are named, not those waiting behind it.
        #expect(throws: PipelineError.invalidFile("c.yaml: \(PipelineError.cycle(["b", "b"]))")) {
            try PipelineDefinition.parse(yaml: "stages:\n  a: {needs: [b]}\n  b: {needs: [b]}\n  c: {needs: [a]}\n", origin: "c.yaml")
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

    @Test func manifestResourcesBlockIsDecodedStrictly() throws {
        let budgeted = try Manifest.parse(yaml: "threads: 2\nresources: {max_memory_mb: 256}\n", path: "/m/b.yaml")
        #expect(budgeted.resources.maxMemoryMB == 256)
        #expect(budgeted.resources.maxMemoryBytes == 256 * 1_048_576)
        #expect(try Manifest.parse(yaml: "seed: 1\n", path: "/m/none.yaml").resources.maxMemoryMB == nil)
        #expect(try Manifest.parse(yaml: "resources: {}\n", path: "/m/empty.yaml").resources.maxMemoryMB == nil)
        #expect(budgeted.resources.publishAfterSeconds == ResourceSettings.defaultPublishAfterSeconds)
        let prompt = try Manifest.parse(yaml: "resources: {publish_after_seconds: 0.5}\n", path: "/m/p.yaml")
        #expect(prompt.resources.publishAfterSeconds == 0.5 && prompt.resources.maxMemoryMB == nil)
        for (yaml, names) in [("resources: {max_memory: 256}\n", "max_memory"),          // a typo
                              ("resources: {threads: 4}\n", "threads"),                  // threads stay top-level
                              ("resources: {max_memory_mb: 8}\n", "max_memory_mb"),      // below what the code needs
                              ("resources: {max_memory_mb: 2.5}\n", "max_memory_mb"),
                              ("resources: {max_memory_mb: \"256\"}\n", "max_memory_mb"),
                              ("resources: {max_memory_mb: 99999999999999999999}\n", "max_memory_mb"),
                              ("resources: 256\n", "resources"),
                              ("resources: {publish_after_seconds: 0}\n", "publish_after_seconds"),
                              ("resources: {publish_after_seconds: -1}\n", "publish_after_seconds"),
                              ("resources: {publish_after_seconds: .nan}\n", "publish_after_seconds"),
                              ("resources: {publish_after_seconds: .inf}\n", "publish_after_seconds"),
                              ("resources: {publish_after_seconds: 86400}\n", "publish_after_seconds"),
                              ("resources: {publish_after_seconds: \"3\"}\n", "publish_after_seconds")] {
            do {
                _ = try Manifest.parse(yaml: yaml, path: "/m/bad.yaml")
                Issue.record("accepted \(yaml)")
            } catch let error as PipelineError {
                #expect(error.description.contains("/m/bad.yaml") && error.description.contains(names), "\(error)")
            } catch { Issue.record("\(yaml): unexpected \(error)") }
        }
    }

    /// YAML 1.2 reads `yes` as text: the refusal shows the value, so a YAML 1.1 habit is recognisable.
    @Test func includeSongShowsTheValueItRefuses() throws {
        let refused = try #require(throws: PipelineError.self) { try Manifest.parse(yaml: "include_song: yes\n", path: "/m/song.yaml") }
        #expect(refused.description == "/m/song.yaml: include_song = \"yes\": expected true or false, got a string", "\(refused)")
        #expect(try Manifest.parse(yaml: "include_song: true\n", path: "/m/song.yaml").includeSong)
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

@Suite("scale-out slices")
struct WorkerSliceTests {
    @Test func slicesPartitionThePathsStably() throws {
        let paths = (1...24).flatMap { actor in (1...60).map { "Actor_\(String(format: "%02d", actor))/notes-\($0).txt" } }
        let slices = try (0..<5).map { try WorkerSlice(index: $0, count: 5) }
        let owners = paths.map { path in slices.filter { $0.contains(relativePath: path) }.map(\.index) }
        #expect(owners.allSatisfy { $0.count == 1 }, "every path belongs to exactly one worker")
        let sizes = (0..<5).map { i in owners.filter { $0 == [i] }.count }
        #expect(sizes.allSatisfy { abs($0 - paths.count / 5) < paths.count / 10 }, "shares are even: \(sizes)")
        #expect(try WorkerSlice(parsing: "3/5") == slices[3])
        // A clip's sources meet in one worker, wherever they lie.
        for clip in ["01-05-01-02-01-12", "01-03-02-01-02-07"] {
            let names = ["Actor_12/03-\(clip).wav", "video/01-\(clip).mp4", "02-\(clip).mp4"]
            #expect(Set(names.map { name in slices.first { $0.contains(relativePath: name) }!.index }).count == 1)
        }
        #expect(throws: PipelineError.invalidFile("worker 5/5: the index I counts from 0, so of 5 workers it is 0 to 4")) {
            try WorkerSlice(parsing: "5/5")
        }
        #expect(throws: PipelineError.invalidFile("worker -1/1: the index I counts from 0, so of 1 worker it is 0")) {
            try WorkerSlice(parsing: "-1/1")
        }
        #expect(throws: PipelineError.self) { try WorkerSlice(parsing: "two") }
        // One slash between two integers, as a worker folder's worker.txt is read: `1//2` is not 1/2, nor
        // is `+1/2` (Int reads the sign; a worker folder never holds one).
        for text in ["1//2", "/2", "1/", "1/2/", "+1/2", "1/+2", " 1/2"] {
            #expect(throws: PipelineError.invalidFile("--worker '\(text)': expected I/N (e.g. 0/4), or `env`")) {
                try WorkerSlice(parsing: text)
            }
        }
        #expect(throws: PipelineError.self) { try WorkerSlice(parsing: "0/100001") }
        // Integers too long for Int are out of range, not "expected I/N".
        for text in ["0/99999999999999999999", "-99999999999999999999/2"] {
            #expect(throws: PipelineError.invalidFile("--worker '\(text)': out of range; the count N is from 1 to \(WorkerSlice.maximumCount) and the index I from 0 to N-1")) {
                try WorkerSlice(parsing: text)
            }
        }
        #expect(try WorkerSlice(parsing: "99999/100000").count == WorkerSlice.maximumCount)
    }

    @Test func slurmAndKubernetesIndicesComeFromTheEnvironment() throws {
        let slurm = try WorkerSlice(environment: ["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
                                                  "SLURM_ARRAY_TASK_COUNT": "4"], manifestWorkers: nil)
        #expect(slurm == (try WorkerSlice(index: 2, count: 4)))
        // --array=0-6:2: tasks 0, 2, 4, 6 are workers 0-3 of 4; a task off the step is named, not taken.
        let stepped = try WorkerSlice(environment: ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
                                                    "SLURM_ARRAY_TASK_COUNT": "4"], manifestWorkers: nil)
        #expect(stepped == (try WorkerSlice(index: 2, count: 4)))
        for (task, step, said) in [("3", "2", "is not SLURM_ARRAY_TASK_MIN 0 plus a multiple of SLURM_ARRAY_TASK_STEP 2"),
                                    ("0", "0", "SLURM_ARRAY_TASK_STEP 0 is not a step of 1 or more"),
                                    ("0", "-1", "SLURM_ARRAY_TASK_STEP -1 is not a step of 1 or more")] {
            let error = #expect(throws: PipelineError.self) {
                try WorkerSlice(environment: ["SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_STEP": step, "SLURM_ARRAY_TASK_COUNT": "4"], manifestWorkers: nil)
            }
            #expect("\(error.map { "\($0)" } ?? "")".contains(said), "\(String(describing: error))")
        }
        let pod = try WorkerSlice(environment: ["JOB_COMPLETION_INDEX": "1"], manifestWorkers: 3)
        #expect(pod == (try WorkerSlice(index: 1, count: 3)))
        #expect(throws: PipelineError.self) { try WorkerSlice(environment: ["JOB_COMPLETION_INDEX": "1"], manifestWorkers: nil) }
        #expect(throws: PipelineError.self) { try WorkerSlice(environment: [:], manifestWorkers: 3) }
        // A slice out of range says which variables it came from.
        #expect(throws: PipelineError.invalidFile("--worker env (SLURM_ARRAY_TASK_ID 3 - SLURM_ARRAY_TASK_MIN 5 of SLURM_ARRAY_TASK_COUNT 2): "
                                                  + "worker -2/2: the index I counts from 0, so of 2 workers it is 0 to 1")) {
            try WorkerSlice(environment: ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "2"], manifestWorkers: nil)
        }
        #expect(throws: PipelineError.invalidFile("--worker env (JOB_COMPLETION_INDEX 3 of the manifest's workers 3): "
                                                  + "worker 3/3: the index I counts from 0, so of 3 workers it is 0 to 2")) {
            try WorkerSlice(environment: ["JOB_COMPLETION_INDEX": "3"], manifestWorkers: 3)
        }
        // The task id minus the minimum overflowed (a trap, exit 132) before it was checked.
        #expect(throws: PipelineError.self) {
            try WorkerSlice(environment: ["SLURM_ARRAY_TASK_ID": "-9223372036854775808", "SLURM_ARRAY_TASK_MIN": "1",
                                          "SLURM_ARRAY_TASK_COUNT": "2"], manifestWorkers: nil)
        }
        // A variable that is set but not an integer is named, not taken for unset.
        for (name, environment) in [("SLURM_ARRAY_TASK_ID", ["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"]),
                                    ("SLURM_ARRAY_TASK_MIN", ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "one", "SLURM_ARRAY_TASK_COUNT": "2"]),
                                    ("JOB_COMPLETION_INDEX", ["JOB_COMPLETION_INDEX": "1.5"])] {
            let error = #expect(throws: PipelineError.self) { try WorkerSlice(environment: environment, manifestWorkers: 3) }
            #expect("\(error.map { "\($0)" } ?? "")".contains("\(name) = "), "\(name): \(String(describing: error))")
        }
        // Digits past Int's range are called that, not "not an integer".
        let huge = #expect(throws: PipelineError.self) {
            try WorkerSlice(environment: ["SLURM_ARRAY_TASK_ID": "99999999999999999999", "SLURM_ARRAY_TASK_COUNT": "2"], manifestWorkers: nil)
        }
        #expect("\(huge.map { "\($0)" } ?? "")".contains("SLURM_ARRAY_TASK_ID = \"99999999999999999999\" is beyond the 64-bit integer range"),
                "\(String(describing: huge))")
    }
}
