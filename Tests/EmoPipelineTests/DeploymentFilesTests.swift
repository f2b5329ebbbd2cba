import EmoPipeline
import EmoTestSupport
import Foundation
import Testing
import Yams

/// The shipped deployment files agree with the command line they drive.
@Suite("deployment files")
struct DeploymentFilesTests {
    static let deploy = TestSupport.repositoryRoot + "/pipelines/deploy"

    /// A Kubernetes file of a ConfigMap holding `manifest.yaml` and an Indexed Job that runs it: the
    /// manifest, the Job's spec and its container's arguments joined.
    static func indexedJob(_ path: String) throws -> (manifest: Manifest, spec: [String: Any], command: String) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let documents = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        let configMap = try #require(documents.first { $0["kind"] as? String == "ConfigMap" })
        let job = try #require(documents.first { $0["kind"] as? String == "Job" })
        let manifestText = try #require((configMap["data"] as? [String: Any])?["manifest.yaml"] as? String)
        let manifest = try Manifest.parse(yaml: manifestText, path: "/config/manifest.yaml")
        let spec = try #require(job["spec"] as? [String: Any])
        let container = try #require(((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
            .flatMap { ($0["containers"] as? [[String: Any]])?.first })
        return (manifest, spec, ((container["args"] as? [String]) ?? []).joined(separator: " "))
    }

    @Test func kubernetesIndexedJobMatchesItsManifestsWorkerCount() throws {
        let (manifest, spec, command) = try Self.indexedJob(Self.deploy + "/kubernetes/emopipe-workers.yaml")
        #expect(spec["completionMode"] as? String == "Indexed")
        #expect(manifest.workers == spec["completions"] as? Int, "JOB_COMPLETION_INDEX counts up to the manifest's workers")
        #expect(command.contains("--worker env") && command.contains("/config/manifest.yaml"))
        // Every pod sees its slice: indices 0..<completions are exactly the valid ones.
        for index in 0..<(manifest.workers ?? 0) {
            #expect(try WorkerSlice(environment: ["JOB_COMPLETION_INDEX": "\(index)"], manifestWorkers: manifest.workers).index == index)
        }
        #expect(throws: PipelineError.self) {
            try WorkerSlice(environment: ["JOB_COMPLETION_INDEX": "\(manifest.workers ?? 0)"], manifestWorkers: manifest.workers)
        }
    }

    /// Both Slurm array scripts take the worker from WORKERS when it is set (one task run again alone is
    /// then worker I of N, not 0 of 1), else from the array's span; 3 (some failures, recorded) is success.
    @Test func slurmArrayScriptsNameTheWorkerAsTheCommandLineTakesIt() throws {
        let folder = try TestSupport.temporaryFolder("sbatch")
        let fake = folder + "/emopipe"
        try "#!/bin/sh\necho \"$@\" > \"$ARGS_OUT\"\nexit 3\n".write(toFile: fake, atomically: true, encoding: .utf8)
        #expect(chmod(fake, 0o755) == 0)
        for (script, command) in [("slurm/emopipe-workers.sbatch", "run"), ("sweep/sweep-workers.sbatch", "sweep")] {
            for (extra, worker) in [(["WORKERS": "4"], "2/4"), ([:], "env")] {
                let out = folder + "/args"
                let result = try TestSupport.run("/bin/bash", [Self.deploy + "/" + script], environment: [
                    "EMOPIPE": fake, "ARGS_OUT": out, "MANIFEST": "m.yaml", "WORKDIR": folder + "/w", "SLURM_ARRAY_TASK_ID": "2",
                    "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_COUNT": "1"].merging(extra) { $1 })
                let arguments = try String(contentsOfFile: out, encoding: .utf8)
                #expect(result.status == 0 && arguments.hasPrefix(command + " m.yaml --worker \(worker) "), "\(script): \(arguments)")
            }
        }
    }

    @Test func systemdUnitRunsNightlyAndTreatsPartialRunsAsDone() throws {
        let service = try String(contentsOfFile: Self.deploy + "/emopipe-nightly.service", encoding: .utf8)
        let timer = try String(contentsOfFile: Self.deploy + "/emopipe-nightly.timer", encoding: .utf8)
        let exec = try #require(service.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        #expect(exec.contains("emopipe nightly manifests/nightly.yaml"))
        #expect(service.contains("SuccessExitStatus=3"))
        #expect(timer.contains("OnCalendar=") && timer.contains("Persistent=true"))
        let cron = try String(contentsOfFile: Self.deploy + "/crontab", encoding: .utf8)
        // The binary itself, so that 3 and 4 reach cron: make reports every failing recipe as 2.
        let entry = try #require(cron.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains("nightly") })
        #expect(entry.contains(".build/release/emopipe nightly manifests/nightly.yaml") && !entry.contains("make nightly"), "\(entry)")
        // cron's own PATH holds no swift, and the entry builds first: the toolchain's folder is on the one it sets.
        #expect(cron.split(separator: "\n").contains { $0.hasPrefix("PATH=") && $0.contains("/opt/swift/usr/bin") }, "\(cron)")
        #expect(entry.contains("make -s build") && entry.contains("make build failed"), "a failed build is said as that: \(entry)")
        #expect(FileManager.default.fileExists(atPath: TestSupport.repositoryRoot + "/manifests/nightly.yaml"))
        _ = try Manifest.load(path: TestSupport.repositoryRoot + "/manifests/nightly.yaml")
    }
}
