import EmoTestSupport
import Foundation
import Testing

/// Every manifest and pipeline file in `Fixtures/bad-inputs` is refused by `emopipe run` before any
/// stage runs: the exit status and a message fragment its header names, on one line that names the file,
/// within a time and memory bound (no trap, hang or unbounded allocation).
///
/// A case's header:
///
///     # expect-exit: 64
///     # expect-message: train.learning_rate = "fast"
///     # expect-names: manifest        (manifest | pipeline: the file the message must name)
@Suite("bad manifests and pipeline files", .enabled(if: TestSupport.hasEmopipe))
struct BadInputCorpusTests {
    static let folder = TestSupport.repositoryRoot + "/Tests/EmoPipelineTests/Fixtures/bad-inputs"
    static let maxSeconds = 20
    static let maxRSSMegabytes = 100

    struct Case: CustomStringConvertible {
        var path: String
        var exit: Int32
        var message: String
        var names: String
        var description: String { (path as NSString).lastPathComponent }
    }

    static var cases: [Case] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted().compactMap { name in
            let path = folder + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            // The header is ASCII even where the rest of a case is not UTF-8.
            let header = String(decoding: data.prefix(400), as: UTF8.self).split(separator: "\n").prefix(3)
            func field(_ key: String) -> String? {
                header.first { $0.hasPrefix("# \(key): ") }.map { String($0.dropFirst("# \(key): ".count)) }
            }
            guard let exit = field("expect-exit").flatMap({ Int32($0) }), let message = field("expect-message"),
                  let names = field("expect-names") else { return nil }
            return Case(path: path, exit: exit, message: message, names: names)
        }
    }

    /// Runs emopipe under `timeout` and `/usr/bin/time`, reporting the peak RSS.
    static func refuse(_ arguments: [String]) throws -> (result: TestSupport.ProcessResult, rssMegabytes: Int) {
        let work = try TestSupport.temporaryFolder("bad-input")
        let args = ["-k", "5", "\(maxSeconds)", "/usr/bin/time", "-f", "peak_rss_kb=%M", TestSupport.emopipe]
            + arguments + ["--workdir", work + "/work"]
        var result = try TestSupport.run("/usr/bin/timeout", args)
        let line = result.stderr.split(separator: "\n").last { $0.hasPrefix("peak_rss_kb=") }
        let rss = line.flatMap { Int($0.dropFirst("peak_rss_kb=".count)) }.map { $0 / 1024 } ?? Int.max
        result.stderr = result.stderr.split(separator: "\n").filter {
            !$0.hasPrefix("peak_rss_kb=") && !$0.hasPrefix("Command exited with non-zero status")
        }.joined(separator: "\n")
        #expect(!FileManager.default.fileExists(atPath: work + "/work/emopipe.sqlite"), "refused before any stage ran")
        return (result, rss)
    }

    @Test func theCorpusHasEveryKindOfCase() {
        #expect(Self.cases.count >= 30)
        #expect(Set(Self.cases.map(\.names)) == ["manifest", "pipeline"])
    }

    @Test(arguments: cases)
    func isRefusedWithItsMessage(_ badCase: Case) throws {
        let (result, rss) = try Self.refuse(["run", badCase.path])
        #expect(result.status == badCase.exit, "\(badCase): exit \(result.status), stderr: \(result.stderr)")
        #expect(result.stderr.contains(badCase.message), "\(badCase): \(result.stderr)")
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("emopipe:") }
        #expect(lines.count == 1, "\(badCase): one message line, got \(result.stderr)")
        if badCase.names == "manifest" {
            #expect(result.stderr.contains((badCase.path as NSString).lastPathComponent), "\(badCase) names the manifest")
        } else {
            #expect(result.stderr.contains(".pipeline.yml") || result.stderr.contains("no-such-pipeline.yml"), "\(badCase) names the pipeline file")
        }
        #expect(rss <= Self.maxRSSMegabytes, "\(badCase): peak RSS \(rss) MB")
    }

    @Test func anOversizedManifestIsRefusedUnread() throws {
        let folder = try TestSupport.temporaryFolder("bad-input-size")
        let path = folder + "/huge.yaml"
        let filler = String(repeating: "# padding padding padding padding padding padding padding padding\n", count: 6_000)
        try ("data: /nonexistent\n" + filler).write(toFile: path, atomically: true, encoding: .utf8)
        let (result, rss) = try Self.refuse(["status", path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("huge.yaml") && result.stderr.contains("at most"), "\(result.stderr)")
        #expect(rss <= Self.maxRSSMegabytes)
    }

    @Test(arguments: [
        ("train.epochs=many", "--set: train.epochs = \"many\": expected a whole number"),
        ("nosuch.key=1", "--set nosuch.key: unknown stage 'nosuch'"),
        ("resources.max_memory_mb=512", "--set resources.max_memory_mb: 'resources' is a manifest field, not a stage; --set sets stage parameters only"),
        ("params.epochs=3", "'params' is a manifest field, not a stage; --set sets stage parameters only (stages: ingest, audio, faces, split, train, evaluate, export): name the stage without 'params' (train.epochs=3)"),
        ("threads.count=3", "use --threads, or give 'threads' in the manifest"),
        ("train.epoch=3", "--set: train.epoch = 3: not a parameter of train"),
        ("train=3", "expected stage.key=value"),
        ("train.epochs", "expected stage.key=value"),
        ("train.dropout=[1, 2", "not valid YAML"),
        ("faces.landmark_model=", "faces.landmark_model=: no value after '='"),
        ("train.epochs= ", "write train.epochs=null for none"),
        ("train.epochs =3", "the name 'train.epochs ' holds a space; write train.epochs=value"),
        ("train. epochs=3", "write train.epochs=value"),
        ("train.audio channels=3", "the name 'train.audio channels' holds a space; stage and key names hold none"),
    ])
    func aBadSetIsRefused(_ setting: String, _ message: String) throws {
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let (result, _) = try Self.refuse(["run", manifest, "--set", setting])
        #expect(result.status == 64, "\(setting): \(result.stderr)")
        #expect(result.stderr.contains(message), "\(setting): \(result.stderr)")
    }
    @Test func aKeySetTwiceIsRefused() throws {
        let manifest = TestSupport.repositoryRoot + "/manifests/demo.yaml"
        let (result, _) = try Self.refuse(["run", manifest, "--set", "train.epochs=3", "--set", "train.dropout=0.2", "--set", "train.epochs=5"])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("--set train.epochs is given twice (train.epochs=3, then train.epochs=5): give each key once"), "\(result.stderr)")
    }

}
