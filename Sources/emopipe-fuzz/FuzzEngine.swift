// The loop every target runs in: generate, execute, classify, count; save what breaks.
import EmoCore
import Foundation

/// One generated input: its bytes and the file extension it is tried (and saved) under.
struct FuzzInput {
    var bytes: [UInt8]
    var fileExtension: String
}

/// What one input did to the code under test.
enum Outcome {
    /// Accepted; the label says how (e.g. "decoded", "source").
    case accepted(String)
    /// Rejected with one of the project's typed errors; the label is "Type.case: reason".
    case rejected(String)
    /// A bug: an untyped error, or an answer that breaks an invariant.
    case failure(String)

    var isFailure: Bool { if case .failure = self { return true } else { return false } }
}

protocol FuzzTarget: AnyObject {
    var name: String { get }
    /// How many seed inputs the target mutates; each is tried once unmutated first.
    var seedCount: Int { get }
    /// The `index`th seed, unmutated.
    func seed(_ index: Int) -> FuzzInput
    /// A new input: a seed, mutated.
    func generate(_ rng: inout FuzzRandom) -> FuzzInput
    /// Runs the code under test on the input. Must not throw: every error is classified.
    func execute(_ input: FuzzInput) -> Outcome
}

/// One target's figures, printed as text or as one JSON line.
struct TargetReport: Codable {
    var target: String
    var seed: UInt64
    var seeds: Int
    var seconds: Double
    var iterations: Int
    var execPerSecond: Double
    /// Distinct error types and cases (MediaError.truncated, CacheError.badShard, ...).
    var errorKinds: Int
    /// Distinct rejection labels, digits folded to N.
    var distinctReasons: Int
    var failures: Int
    var failureFiles: [String]
    var slowestSeconds: Double
    /// Every label with how often it came up.
    var outcomes: [String: Int]
}

/// Folds the parts of a message that vary from input to input (numbers, the temporary path) so
/// that one check reads as one reason.
func normalised(_ text: String, path: String? = nil) -> String {
    var text = text
    if let path { text = text.replacingOccurrences(of: path, with: "FILE") }
    // Numbers stand alone; digits glued to letters ("mp4", "CRC-32C") are part of a word and stay.
    // A bracketed list (a shape) is one value.
    if let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") {
        text.replaceSubrange(open...close, with: "[…]")
    }
    var out = ""
    var inNumber = false, inWord = false
    for ch in text.unicodeScalars {
        if ("0"..."9").contains(ch) && !inWord {
            if !inNumber { out += "N" }
            inNumber = true
        } else {
            inWord = ch.properties.isAlphabetic || (inWord && (("0"..."9").contains(ch) || ch == "-"))
            inNumber = false
            out.unicodeScalars.append(ch)
        }
    }
    return out.count > 160 ? String(out.prefix(160)) + "…" : out
}

/// Runs targets and keeps their score.
struct FuzzRunner {
    var seconds: Double
    var maxIterations: Int?
    var seed: UInt64
    var failureFolder: String
    /// An input slower than this counts as a failure (it would stall a pipeline run).
    var slowLimit: Double

    func run(_ target: FuzzTarget) -> TargetReport {
        CrashGuard.install()
        var rng = FuzzRandom(seed: seed ^ fnv1a(Array(target.name.utf8)))
        var report = TargetReport(target: target.name, seed: seed, seeds: target.seedCount, seconds: 0, iterations: 0,
                                  execPerSecond: 0, errorKinds: 0, distinctReasons: 0, failures: 0, failureFiles: [],
                                  slowestSeconds: 0, outcomes: [:])
        var failureLabels = Set<String>()
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        while !StopRequest.isSet, maxIterations.map({ report.iterations < $0 }) ?? true {
            let now = DispatchTime.now().uptimeNanoseconds
            if now >= deadline && report.iterations >= min(target.seedCount, maxIterations ?? .max) { break }
            let input = report.iterations < target.seedCount ? target.seed(report.iterations) : target.generate(&rng)
            CrashGuard.arm(input, target: target.name, folder: failureFolder)
            var outcome = target.execute(input)
            let took = Double(DispatchTime.now().uptimeNanoseconds - now) / 1e9
            CrashGuard.disarm()
            report.iterations += 1
            report.slowestSeconds = max(report.slowestSeconds, took)
            if took > slowLimit, !outcome.isFailure {
                outcome = .failure(String(format: "slow input: %.2f s (limit %g s)", took, slowLimit))
            }
            switch outcome {
            case .accepted(let label):
                report.outcomes["ok: " + label, default: 0] += 1
            case .rejected(let label):
                report.outcomes[label, default: 0] += 1
            case .failure(let why):
                report.failures += 1
                report.outcomes["FAILURE: " + normalised(why), default: 0] += 1
                // One saved input per distinct failure is enough to replay it.
                guard failureLabels.insert(normalised(why)).inserted, failureLabels.count <= 50 else { continue }
                let saved: String
                do {
                    let file = try save(input, target: target.name)
                    report.failureFiles.append(file)
                    saved = "input saved to \(file.echoed); replay: emopipe-fuzz replay \(file.echoed) --target \(target.name)"
                } catch {
                    saved = "the input could not be saved: \(FileError.describe(error).escaped)"
                }
                StandardStream.error.write(Data("emopipe-fuzz: \(target.name): FAILURE: \(why)\n    \(saved)\n".utf8))
            }
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        report.execPerSecond = report.seconds > 0 ? Double(report.iterations) / report.seconds : 0
        let rejections = report.outcomes.keys.filter { !$0.hasPrefix("ok: ") && !$0.hasPrefix("FAILURE: ") }
        report.distinctReasons = rejections.count
        report.errorKinds = Set(rejections.flatMap(errorKinds)).count
        return report
    }

    /// fuzz-failures/<target>-<hash>.<ext>: the hash names the bytes, so a repeat overwrites itself.
    func save(_ input: FuzzInput, target: String) throws -> String {
        try FileManager.default.createDirectory(atPath: failureFolder, withIntermediateDirectories: true)
        let path = "\(failureFolder)/\(target)-\(String(format: "%016llx", fnv1a(input.bytes))).\(input.fileExtension)"
        try Data(input.bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// The error types and cases a label names ("MediaError.truncated"), or its first word ("notRavdess").
func errorKinds(_ label: String) -> [String] {
    let words = label.split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "." && $0 != "-" })
    let typed = words.filter { $0.contains("Error.") }.map(String.init)
    return typed.isEmpty ? [String(words.first ?? "")] : typed
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

/// Saves the input in flight when the process dies of a trap or a fault, then lets the previous
/// handler (Swift's backtracer, or the default action) finish the job. Only async-signal-safe calls
/// run inside the handler: the bytes and the path are prepared before each input.
enum CrashGuard {
    static let signals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE]
    nonisolated(unsafe) static var installed = false
    nonisolated(unsafe) static var previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
    nonisolated(unsafe) static var buffer: UnsafeMutablePointer<UInt8>?
    nonisolated(unsafe) static var capacity = 0
    nonisolated(unsafe) static var length = 0
    nonisolated(unsafe) static var armed = false
    /// The failures folder and every folder above it, outermost first (`folderCount` of them): the handler makes
    /// each in turn, walking raw pointers (no Swift array is touched inside the handler).
    nonisolated(unsafe) static var folders: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    nonisolated(unsafe) static var folderCount = 0
    nonisolated(unsafe) static var path: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var pathKey = ""
    nonisolated(unsafe) static var message: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var unsavedMessage: UnsafeMutablePointer<CChar>?

    static func install() {
        guard !installed else { return }
        installed = true
        for sig in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in CrashGuard.handle(sig) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(sig, &action, previous + Int(sig))
        }
    }

    static func arm(_ input: FuzzInput, target: String, folder folderName: String) {
        if capacity < input.bytes.count {
            buffer?.deallocate()
            capacity = max(input.bytes.count, 2 * capacity, 4096)
            buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        }
        input.bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { buffer!.update(from: base, count: source.count) }
        }
        length = input.bytes.count
        let key = "\(folderName)/\(target)-crash.\(input.fileExtension)"
        if key != pathKey {
            free(path); free(message); free(unsavedMessage)
            for index in 0..<folderCount { free(folders?[index]) }
            folders?.deallocate()
            path = strdup(key)
            let chain = PathText.enclosingFolders(of: key)
            folders = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: max(chain.count, 1))
            for (index, folder) in chain.enumerated() { folders?[index] = strdup(folder) }
            folderCount = chain.count
            message = strdup("\nemopipe-fuzz: \(target): CRASH; the input is saved in \(key.echoed); replay: emopipe-fuzz replay \(key.echoed) --target \(target)\n")
            unsavedMessage = strdup("\nemopipe-fuzz: \(target): CRASH; the input could not be saved in \(key.echoed)\n")
            pathKey = key
        }
        armed = true
    }

    static func disarm() { armed = false }

    static func handle(_ sig: Int32) {
        if armed, let path, let buffer {
            armed = false
            var index = 0
            while index < folderCount { if let folder = folders?[index] { mkdir(folder, 0o755) }; index += 1 }
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            var done = 0
            if fd >= 0 {
                while done < length {
                    let n = write(fd, buffer + done, length - done)
                    if n <= 0 { break }
                    done += n
                }
                close(fd)
                if done < length { unlink(path) }   // a part of the input would replay as another input
            }
            if let said = fd >= 0 && done == length ? message : unsavedMessage { _ = write(2, said, strlen(said)) }
        }
        sigaction(sig, previous + Int(sig), nil)
        if sig == SIGABRT { raise(sig) }  // a synchronous fault re-runs its instruction and meets the old handler
    }
}
