import EmoCore
import EmoStore
import Foundation

/// One of N scale-out workers (design.md, "Scale-out"): worker I of N takes the sources whose
/// partition key hashes to I, so every worker — on any machine, whatever the mount point — agrees
/// on the partition without talking to the others. The key is the clip for a RAVDESS name (so a
/// clip's wav and mp4 meet in one worker, and "the wav, else the mp4's audio" is decided as one
/// process would), else the path relative to the data root.
///
///     let slice = try WorkerSlice(parsing: "2/8")
///     slice.contains(relativePath: "Actor_01/03-01-01-01-01-01-01.wav")
public struct WorkerSlice: Equatable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The most workers a sweep or a run is split into (the manifest's `workers` has the same bound).
    public static let maximumCount = 100_000

    public init(index: Int, count: Int) throws {
        guard (1...Self.maximumCount).contains(count) else {
            throw PipelineError.invalidFile("worker \(index)/\(count): the count N must be from 1 to \(Self.maximumCount)")
        }
        guard (0..<count).contains(index) else {
            throw PipelineError.invalidFile("worker \(index)/\(count): the index I counts from 0, so of \(count) worker\(count == 1 ? "" : "s") it is "
                                            + (count == 1 ? "0" : "0 to \(count - 1)"))
        }
        self.index = index; self.count = count
    }

    /// A slice from the environment: a refusal names the variables it came from.
    private init(index: Int, count: Int, from variables: String) throws {
        do { try self.init(index: index, count: count) } catch let PipelineError.invalidFile(message) {
            throw PipelineError.invalidFile("--worker env (\(variables)): \(message)")
        }
    }

    /// `I/N`, I counted from 0.
    public init(parsing text: String) throws {
        guard let (index, count) = Self.numbers(text) else {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 2, parts.allSatisfy({ !$0.hasPrefix("+") && $0.isWholeNumberText }) {
                throw PipelineError.invalidFile("--worker '\(text.echoed)': out of range; the count N is from 1 to \(Self.maximumCount) and the index I from 0 to N-1")
            }
            throw PipelineError.invalidFile("--worker '\(text.echoed)': expected I/N (e.g. 0/4), or `env`")
        }
        try self.init(index: index, count: count)
    }

    /// I and N of `I/N`: two integers, unsigned or negative, around one slash (`1//2`, `/2`, `+1/2` are not), else nil.
    /// The one reading of `--worker` and of a worker folder's worker.txt.
    static func numbers(_ text: String) -> (index: Int, count: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.hasPrefix("+") && String($0).isWholeNumberText }),
              let index = Int(parts[0]), let count = Int(parts[1]) else { return nil }
        return (index, count)
    }

    /// The slice a Slurm array task or a Kubernetes Indexed Job pod was given:
    /// `(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP` of `SLURM_ARRAY_TASK_COUNT`
    /// (`--array=0-6:2` gives tasks 0, 2, 4, 6: workers 0-3 of 4), or
    /// `JOB_COMPLETION_INDEX` of the manifest's `workers`.
    public init(environment: [String: String], manifestWorkers: Int?) throws {
        // A variable that is set must be an integer: one that is not is named, not taken as unset.
        // An empty one is unset, as a shell's `VAR=` means.
        func integer(_ name: String) throws -> Int? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            guard let value = Int(text) else {
                throw PipelineError.invalidFile("--worker env: \(name) = \"\(text.escaped)\" is "
                                                + (text.isWholeNumberText ? "beyond the 64-bit integer range" : "not an integer"))
            }
            return value
        }
        if let task = try integer("SLURM_ARRAY_TASK_ID") {
            let minimum = try integer("SLURM_ARRAY_TASK_MIN") ?? 0
            guard let count = try integer("SLURM_ARRAY_TASK_COUNT") else {
                throw PipelineError.invalidFile("--worker env: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
            }
            // Checked: SLURM_ARRAY_TASK_ID=-9223372036854775808 with a minimum of 1 must not trap.
            let (offset, overflow) = task.subtractingReportingOverflow(minimum)
            guard !overflow else {
                throw PipelineError.invalidFile("--worker env: SLURM_ARRAY_TASK_ID \(task) - SLURM_ARRAY_TASK_MIN \(minimum) is out of range")
            }
            let step = try integer("SLURM_ARRAY_TASK_STEP") ?? 1
            guard step >= 1 else { throw PipelineError.invalidFile("--worker env: SLURM_ARRAY_TASK_STEP \(step) is not a step of 1 or more") }
            guard offset % step == 0 else {
                throw PipelineError.invalidFile("--worker env: SLURM_ARRAY_TASK_ID \(task) is not SLURM_ARRAY_TASK_MIN \(minimum) plus a multiple of "
                                                + "SLURM_ARRAY_TASK_STEP \(step) (an array of evenly spaced tasks, e.g. --array=0-6:2, is needed)")
            }
            let stepped = step == 1 ? "" : ") / SLURM_ARRAY_TASK_STEP \(step)"
            try self.init(index: offset / step, count: count,
                          from: (step == 1 ? "" : "(") + "SLURM_ARRAY_TASK_ID \(task) - SLURM_ARRAY_TASK_MIN \(minimum)\(stepped) of SLURM_ARRAY_TASK_COUNT \(count)")
        } else if let index = try integer("JOB_COMPLETION_INDEX") {
            guard let count = manifestWorkers else {
                throw PipelineError.invalidFile("--worker env: JOB_COMPLETION_INDEX is set; the manifest must say how many workers (`workers: N`)")
            }
            try self.init(index: index, count: count, from: "JOB_COMPLETION_INDEX \(index) of the manifest's workers \(count)")
        } else {
            throw PipelineError.invalidFile("--worker env: neither SLURM_ARRAY_TASK_ID (Slurm array) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set (an empty one counts as unset)")
        }
    }

    public func contains(relativePath: String) -> Bool {
        let digest = SHA256Hex.of(Self.partitionKey(relativePath: relativePath))
        let bucket = UInt64(digest.prefix(16), radix: 16)! % UInt64(count)
        return Int(bucket) == index
    }

    static func partitionKey(relativePath: String) -> String {
        if case .source(let codes) = RavdessName.parse(fileName: (relativePath as NSString).lastPathComponent) {
            return "clip " + codes.clipID
        }
        return "path " + relativePath
    }

    public var description: String { "\(index)/\(count)" }

    /// The worker's own work directory inside the main one.
    public func workspace(inside main: Workspace) -> Workspace {
        main.worker(index: index, count: count)
    }
}

extension Workspace {
    /// The slice this work directory serves, when it is a scale-out worker's (`worker.txt`).
    public var workerSlice: WorkerSlice? { workerMarker.flatMap { try? WorkerSlice(parsing: $0) } }
}
