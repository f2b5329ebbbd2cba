import EmoStore
import EmoTestSupport
import Foundation

/// Actors 01-02 of the shared data laid out once per test process, plus a data root per test copied
/// from it and whatever bad files the test adds.
enum IngestFixture {
    static let materialized: Result<String, Error> = Result { try TestSupport.materialize(actors: 1...2) }

    static var available: Bool { TestSupport.hasSharedData && TestSupport.hasEmopipe }

    /// A new data root holding the shared actors 01-02 (hard links).
    static func dataRoot() throws -> String {
        let source = try materialized.get()
        let root = try TestSupport.temporaryFolder("data") + "/ravdess"
        // Copies, not hard links: a link made for another test's root would change these files' change
        // time, which ingest reads as a change (a rename or a rewrite), while this test runs.
        try TestSupport.shell("cp -a '\(source)' '\(root)'")
        return root
    }

    /// Bad and odd files, each under the name that makes ingest judge it; returns path → expected (status, reason part).
    static func addBadFiles(to root: String) throws -> [String: (status: String, reason: String)] {
        let odd = TestSupport.sharedData + "/odd"
        let av = root + "/Actor_01/01-01-01-01-01-01-01.mp4"
        let actor = root + "/Actor_09"
        try FileManager.default.createDirectory(atPath: actor, withIntermediateDirectories: true)
        var expected: [String: (String, String)] = [:]
        func put(_ name: String, _ status: String, _ reason: String, _ make: (String) throws -> Void) rethrows {
            let path = actor + "/" + name
            try make(path)
            expected[path] = (status, reason)
        }
        put("03-01-02-01-01-01-09.wav", "failed", "empty file (0 bytes)") {
            _ = FileManager.default.createFile(atPath: $0, contents: Data())
        }
        try put("03-01-02-01-01-02-09.wav", "failed", "not a media file") {
            try "this is a text file, not audio\n".write(toFile: $0, atomically: true, encoding: .utf8)
        }
        try put("01-01-02-01-02-01-09.mp4", "failed", "truncated") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: av))
            try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: $0))
        }
        try put("01-01-03-01-01-01-09.mp4", "failed", "audio-video clip (modality 01) has no audio stream") {
            try FileManager.default.copyItem(atPath: odd + "/model_testing__temp.mp4", toPath: $0)
        }
        try put("02-01-03-01-01-02-09.mp4", "failed", "video-only clip (modality 02) has an audio stream") {
            try FileManager.default.copyItem(atPath: av, toPath: $0)
        }
        try put("03-01-09-01-01-01-09.wav", "failed", "invalid RAVDESS name: emotion 09 out of range 01-08") {
            try FileManager.default.copyItem(atPath: root + "/Actor_01/03-01-01-01-01-01-01.wav", toPath: $0)
        }
        try put("03-01-01-02-01-01-09.wav", "failed", "intensity 02 (strong) is not used with emotion 01 (neutral)") {
            try FileManager.default.copyItem(atPath: root + "/Actor_01/03-01-01-01-01-01-01.wav", toPath: $0)
        }
        // Real re-encodes from elsewhere, renamed the RAVDESS way: AAC, and MP3 audio at 640x480.
        try put("01-01-07-02-02-01-09.mp4", "ok", "") {
            try FileManager.default.copyItem(atPath: odd + "/01-01-07-02-02-01-01_1.mp4", toPath: $0)
        }
        try put("01-01-04-01-01-01-09.mp4", "ok", "") {
            try FileManager.default.copyItem(atPath: odd + "/combined_tests__temp.mp4", toPath: $0)
        }
        // The same bytes as another source under a second name (RAVDESS's Actor_07 has such a pair).
        try put("03-01-05-01-01-01-09.wav", "ok", "") {
            try FileManager.default.copyItem(atPath: root + "/Actor_01/03-01-05-01-01-01-01.wav", toPath: $0)
        }
        try put("notes.txt", "ignored", "extension .txt") {
            try "not data\n".write(toFile: $0, atomically: true, encoding: .utf8)
        }
        try put("01-01-07-02-02-01-01_1.mp4", "ignored", "seven two-digit codes") {
            try FileManager.default.copyItem(atPath: odd + "/01-01-07-02-02-01-01_1.mp4", toPath: $0)
        }
        return expected
    }

    /// Runs `emopipe ARGS --workdir WORKDIR` with the demo manifest's settings over `data`.
    @discardableResult
    static func emopipe(_ args: [String], data: String? = nil, workdir: String) throws -> TestSupport.ProcessResult {
        var full = args
        if args.first == "run" || args.first == "status" {
            full.insert(TestSupport.repositoryRoot + "/manifests/demo.yaml", at: 1)
            if let data { full += ["--data", data] }
        }
        return try TestSupport.run(TestSupport.emopipe, full + ["--workdir", workdir])
    }

    /// The sources --json document, by path.
    static func sources(workdir: String) throws -> [String: [String: Any]] {
        let result = try emopipe(["sources", "--json"], workdir: workdir)
        guard result.status == 0, let array = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            throw TestFailure("sources --json failed: \(result.stderr)")
        }
        return Dictionary(uniqueKeysWithValues: array.map { ($0["path"] as! String, $0) })
    }

    /// Provenance facts that must not depend on how a run was interrupted: source rows and failures.
    static func facts(workdir: String) throws -> (sources: [[String]], failures: [String]) {
        let store = try ProvenanceStore(path: workdir + "/emopipe.sqlite")
        let sources = try store.allSources().map { $0.facts + [$0.probeJSON ?? ""] }
        let failures = try store.failures().map { "\($0.stage)\t\($0.subject)\t\($0.sha256)\t\($0.reason)" }.sorted()
        return (sources, failures)
    }
}
