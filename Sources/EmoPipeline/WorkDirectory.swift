import EmoCore
import Foundation

/// The work directory (default `./work`):
///
///     emopipe.sqlite     provenance (WAL mode)
///     emopipe.lock       held by the one run allowed at a time; names its holder
///     cache/<stage>/<fingerprint>/   immutable shards
///     runs/<run-id>/     manifest copy and the run's outputs
public struct WorkDirectory: Sendable {
    public let root: String

    public init(root: String) {
        self.root = URL(fileURLWithPath: root).standardizedFileURL.path
    }

    public var databasePath: String { root + "/emopipe.sqlite" }
    public var lockPath: String { root + "/emopipe.lock" }
    public var cacheRoot: String { root + "/cache" }
    public var runsRoot: String { root + "/runs" }
    public func runFolder(_ runId: String) -> String { runsRoot + "/" + runId }

    /// Where a command's `RUN` argument points: a path to a run's folder as given, else a run id
    /// under `runs/` (design.md: RUN is either).
    public func runFolder(reference: String) -> String {
        FileManager.default.fileExists(atPath: reference) ? reference : runFolder(reference)
    }

    /// The run id a `RUN` argument names: the folder's name.
    public static func runId(reference: String) -> String {
        URL(fileURLWithPath: reference).lastPathComponent
    }
    public func cacheFolder(stage: String, fingerprint: String) -> String { "\(cacheRoot)/\(stage)/\(fingerprint)" }

    /// Set in a scale-out worker's work directory: `worker.txt` names its slice (`I/N`).
    public var workerMarkerPath: String { root + "/worker.txt" }

    /// The slice this work directory serves, when it is a scale-out worker's.
    public var workerSlice: WorkerSlice? {
        (try? String(contentsOfFile: workerMarkerPath, encoding: .utf8))
            .flatMap { try? WorkerSlice(parsing: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: databasePath) }

    public func create() throws {
        for folder in [root, cacheRoot, runsRoot] {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw EmoError.io(path: folder, reason: "cannot create the folder (\(error.localizedDescription))")
            }
        }
    }
}
