import Foundation
import Testing
@testable import EmoNN

/// Checkpoints must open in the Python `safetensors` package. The repository's
/// test venv (`.venv`, made by `make test`) has it; without the venv the test
/// is skipped rather than failed.
enum PythonOracle {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python: URL? = {
        let u = repoRoot.appendingPathComponent(".venv/bin/python")
        return FileManager.default.isExecutableFile(atPath: u.path) ? u : nil
    }()

    static var hasSafetensors: Bool {
        guard let python else { return false }
        return (try? run(python, ["-c", "import safetensors, numpy"])) != nil
    }

    static func run(_ exe: URL, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw NNError.format("python exited \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite struct PythonReadbackTests {
    @Test(.enabled(if: PythonOracle.hasSafetensors, "needs the repository's .venv with safetensors"))
    func checkpointOpensInPythonSafetensors() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("emonn-py-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let rng = RandomGenerator(seed: 4)
        let net = Sequential([Conv2d(1, 2, kernel: (3, 3), rng: rng), BatchNorm2d(2), ReLU(), GlobalAvgPool2d(),
                              Linear(2, 3, rng: rng)])
        let opt = AdamW(net.parameters())
        try Losses.crossEntropy(net(Tensor.randn([2, 1, 5, 5], rng: rng)), targets: [0, 2]).backward()
        opt.step()
        try Checkpoint.save(to: url, model: net, optimizer: opt, rng: rng, step: 7)

        let script = """
        import json, sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], "np") as f: meta = f.metadata()
        print(json.dumps({k: [list(v.shape), str(v.dtype), float(v.astype("float64").sum())] for k, v in t.items()}))
        """
        let out = try PythonOracle.run(PythonOracle.python!, ["-c", script, url.path])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: [Any]])
        let file = try SafeTensorsFile.read(from: url)
        #expect(Set(parsed.keys) == Set(file.tensors.keys).union(file.integers.keys))
        for (name, t) in file.tensors {
            let entry = try #require(parsed[name])
            #expect(entry[0] as? [Int] == t.shape, "\(name) shape")
            #expect(entry[1] as? String == "float32")
            let sum = t.data.reduce(0.0) { $0 + Double($1) }
            #expect(abs((entry[2] as? Double ?? .nan) - sum) <= 1e-9 * max(1, abs(sum)), "\(name) values")
        }
        #expect(parsed["train.step"]?[1] as? String == "int64")
        #expect(parsed["train.step"]?[2] as? Double == 7)
    }
}
