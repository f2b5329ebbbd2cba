import EmoTestSupport
import Foundation
import Testing

/// The deployment files kept true by the suite: the Slurm scale-out on a real Slurm
/// (scripts/slurm-check), the Kubernetes Jobs and the Containerfile (scripts/check-deploy.py).
enum DeployCheck {
    static let scripts = TestSupport.repositoryRoot + "/scripts"

    static var hasKubernetesValidate: Bool {
        guard let python = TestSupport.python else { return false }
        return (try? TestSupport.run(python, ["-c", "import kubernetes_validate"]).status) == 0
    }

    /// The release build when there is one (what `make image` packs), else the binary the tests drive.
    static var binaryForImage: String {
        let release = TestSupport.repositoryRoot + "/.build/release/emopipe"
        return FileManager.default.isExecutableFile(atPath: release) ? release : TestSupport.emopipe
    }

    /// check-deploy.py's lines ("ok      …" / "FAILED  …") and its exit status.
    static func checkDeploy(_ arguments: [String]) throws -> (status: Int32, lines: [String], stderr: String) {
        let python = try #require(TestSupport.python)
        let result = try TestSupport.run(python, [scripts + "/check-deploy.py"] + arguments)
        return (result.status, result.stdout.split(separator: "\n").map(String.init), result.stderr)
    }
}

@Suite("Slurm scale-out on a real Slurm (make slurm-check)",
       .enabled(if: TestSupport.hasTool("sbatch"), "sbatch is not installed (Debian: slurm-wlm, munge; `make deps` installs them)"),
       .enabled(if: IngestFixture.available, "needs ../shared/data/ravdess and the emopipe binary"),
       .enabled(if: TestSupport.python != nil, "needs the test venv (make venv) for scripts/compare-workdirs.py"))
struct SlurmCheckTests {
    /// submit.sh's 3 workers and merge-and-train, COMPLETED, with results equal to one process's.
    @Test func submitScriptCompletesAndEqualsOneProcess() throws {
        let result = try TestSupport.run("/bin/bash", [DeployCheck.scripts + "/slurm-check"],
                                         environment: ["EMOPIPE": TestSupport.emopipe, "EMOPIPE_RAVDESS": TestSupport.sharedData])
        if result.status == 77 {
            try Test.cancel("slurm-check cannot run here: \(result.stderr.suffix(300))")
        }
        #expect(result.status == 0, "slurm-check failed:\n\(result.stderr.suffix(6000))")
        let log = result.stderr
        #expect(log.contains(": 3 COMPLETED") && log.contains(": 1 COMPLETED"), "three worker tasks and the merge job completed: \(log.suffix(2000))")
        #expect(log.range(of: #"audio: (\d+) / \1 records, \1 identical"#, options: .regularExpression) != nil, "audio records equal: \(log.suffix(2000))")
        #expect(log.contains("model.safetensors: identical") && log.contains("model.onnx graph and initializers: identical"))
        #expect(log.contains("proven in"))
    }
}

@Suite("Kubernetes Jobs and the Containerfile",
       .enabled(if: DeployCheck.hasKubernetesValidate, "needs the test venv (make venv) with kubernetes-validate"))
struct KubernetesDeployTests {
    @Test func jobsPassStrictSchemaValidationAndMergeWaitsForEveryWorker() throws {
        let check = try DeployCheck.checkDeploy(["kubernetes"])
        #expect(check.status == 0, "\(check.lines.filter { $0.hasPrefix("FAILED") }) \(check.stderr.suffix(2000))")
        for version in ["1.29", "1.33"] {
            let validated = check.lines.filter { $0.hasPrefix("ok") && $0.contains("against Kubernetes \(version) (strict)") }
            #expect(validated.count == 3, "the ConfigMap and both Jobs validated for \(version): \(check.lines)")
        }
        #expect(check.lines.contains { $0.hasPrefix("ok") && $0.contains("still waiting without worker 3's marker") })
        #expect(check.lines.contains { $0.hasPrefix("ok") && $0.contains("init container ends") })
        #expect(check.lines.contains { $0.hasPrefix("ok") && $0.contains("worker exiting 1: marker absent") })
    }

    @Test(.enabled(if: TestSupport.hasEmopipe && TestSupport.hasTool("ldd") && TestSupport.hasTool("dpkg-query"),
                   "needs the emopipe binary, ldd and dpkg-query"))
    func containerfileInstallsWhatTheBinaryLoads() throws {
        let check = try DeployCheck.checkDeploy(["containerfile", DeployCheck.binaryForImage])
        #expect(check.status == 0, "\(check.lines.filter { $0.hasPrefix("FAILED") }) \(check.stderr.suffix(2000))")
        #expect(check.lines.contains { $0.hasPrefix("ok") && $0.contains("every Debian library ldd names is installed") })
        #expect(check.lines.contains { $0.hasPrefix("ok") && $0.contains("every Kubernetes container runs localhost/emopipe:latest") })
    }
}

/// submit.sh reads WORKERS from the environment: only a whole number reaches sbatch or shell arithmetic.
@Suite("Slurm submit script's input")
struct SlurmSubmitInputTests {
    static func submit(workers: String) throws -> (status: Int32, sbatchCalls: String, stderr: String) {
        let folder = try TestSupport.temporaryFolder("submit")
        // A stand-in sbatch that records its arguments and prints a job id.
        let fake = folder + "/sbatch"
        // It answers as sbatch --parsable does on a multi-cluster site: "jobid;cluster".
        try "#!/bin/bash\necho \"$*\" >> \(folder)/calls\necho '42;clusterA'\n".write(toFile: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
        let result = try TestSupport.run("/bin/bash", [TestSupport.repositoryRoot + "/pipelines/deploy/slurm/submit.sh"],
                                         environment: ["WORKERS": workers, "PATH": folder + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "")])
        return (result.status, (try? String(contentsOfFile: folder + "/calls", encoding: .utf8)) ?? "", result.stderr)
    }

    @Test func workersMustBeAWholeNumberFrom1To100000() throws {
        let marker = try TestSupport.temporaryFolder("submit-injection") + "/ran"
        for bad in ["HOME[$(touch \(marker))]+2", "0", "-3", "100001", "2 ", "abc"] {
            let refused = try Self.submit(workers: bad)
            #expect(refused.status == 64 && refused.sbatchCalls.isEmpty, "WORKERS=\(bad): \(refused)")
            #expect(refused.stderr.contains("expected a whole number from 1 to 100000"), "\(refused.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "the expression in WORKERS was evaluated")
        let accepted = try Self.submit(workers: "3")
        #expect(accepted.status == 0 && accepted.sbatchCalls.contains("--array=0-2 "), "\(accepted)")
        #expect(accepted.sbatchCalls.contains("--dependency=afterany:42 ") && !accepted.sbatchCalls.contains("clusterA"), "\(accepted.sbatchCalls)")
    }
}
