import Foundation
import GRDB

/// One run of `emopipe` that changed the work directory.
public struct RunRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "run"
    public var id: String
    public var command: String
    public var manifestJSON: String
    public var manifestSHA256: String
    public var dataRoot: String
    public var threads: Int
    public var codeVersion: String
    public var host: String
    public var pid: Int
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: RunStatus
    public var exitCode: Int?
    public var manifestPath: String?
    public var environmentJSON: String?
    public var paramsJSON: String?
    public var datasetFingerprint: String?
    public var sourcesInUse: Int?
    public var worker: String?

    public init(id: String, command: String, manifestJSON: String, manifestSHA256: String, dataRoot: String,
                threads: Int, codeVersion: String, host: String, pid: Int, startedAt: Date) {
        self.id = id; self.command = command; self.manifestJSON = manifestJSON
        self.manifestSHA256 = manifestSHA256; self.dataRoot = dataRoot; self.threads = threads
        self.codeVersion = codeVersion; self.host = host; self.pid = pid; self.startedAt = startedAt
        self.status = .running
    }
}

/// Where a run is: `running` until it ends as one of the others. Stored as this text.
public enum RunStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case running, done, partial, failed, interrupted
}

/// How one stage fared in one run; `up-to-date` when it was skipped because its output was
/// current. Stored as this text.
public enum StageRunState: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case running, done, partial, failed, interrupted
    case upToDate = "up-to-date"
}

public enum SourceStatus: String, Codable, Sendable, CaseIterable {
    case ok, failed, ignored, removed
}

/// One file under the data root, as ingest last saw it.
public struct SourceRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "source"
    public var path: String
    public var sha256: String?
    public var size: Int64
    public var mtimeNanos: Int64
    public var kind: String?
    public var modality: Int?
    public var channel: Int?
    public var emotion: Int?
    public var intensity: Int?
    public var statement: Int?
    public var repetition: Int?
    public var actor: Int?
    public var clip: String?
    public var status: SourceStatus
    public var reason: String?
    public var probeJSON: String?
    public var firstSeenRun: String
    public var lastChangedRun: String
    /// `inode:ctime-nanoseconds` when ingest read the file (nil for rows from before it was kept):
    /// a rename or a rewrite with the size and mtime kept (two same-size files swapping names, `cp -p`)
    /// changes it, where size and mtime alone said nothing changed. A user cannot set a change time back.
    public var inodeState: String?

    public init(path: String, sha256: String?, size: Int64, mtimeNanos: Int64, status: SourceStatus,
                reason: String?, runId: String) {
        self.path = path; self.sha256 = sha256; self.size = size; self.mtimeNanos = mtimeNanos
        self.status = status; self.reason = reason
        self.firstSeenRun = runId; self.lastChangedRun = runId
    }

    /// A file that changed on disk after ingest hashed it, while a per-source stage read it: its
    /// features were not computed, and the next ingest reads it again (`requireRereading`).
    public var changedSinceIngest: Bool { status == .ok && mtimeNanos == ProvenanceStore.unknownMtime }

    /// The facts that matter downstream (not which run saw them first): equal facts, equal outputs.
    public var facts: [String] {
        [path, sha256 ?? "", kind ?? "", clip ?? "", status.rawValue, reason ?? "",
         [modality, channel, emotion, intensity, statement, repetition, actor]
            .map { $0.map(String.init) ?? "" }.joined(separator: ",")]
    }
}

public struct StageRunRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "stageRun"
    public var id: Int64?
    public var runId: String
    public var stage: String
    public var fingerprint: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var state: StageRunState
    public var unitsDone: Int = 0
    public var unitsSkipped: Int = 0
    public var unitsFailed: Int = 0
    public var message: String?
    public var outputDigest: String?
    public var producedByRun: String?
    public var seconds: Double?
    /// CPU time (user + system, every thread) the execution took; nil for rows recorded before it was measured.
    public var cpuSeconds: Double?
    /// Peak resident memory (MiB) while the stage ran; nil for rows recorded before it was measured.
    public var peakRSSMB: Double?
    /// What the stage's cached units are keyed by (nil for rows older than schema v4 that could not be traced).
    public var parametersFingerprint: String?

    public init(runId: String, stage: String, fingerprint: String, startedAt: Date, parametersFingerprint: String? = nil) {
        self.runId = runId; self.stage = stage; self.fingerprint = fingerprint
        self.startedAt = startedAt; self.state = .running; self.parametersFingerprint = parametersFingerprint
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// What a stage's last completed execution consumed and produced.
public struct StageStateRecord: Codable, FetchableRecord, PersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "stageState"
    public var stage: String
    public var fingerprint: String
    public var parametersFingerprint: String
    public var codeVersion: String
    public var paramsJSON: String
    public var inputsJSON: String
    public var outputDigest: String
    public var unitsFailed: Int
    public var summary: String
    public var runId: String
    public var completedAt: Date

    public init(stage: String, fingerprint: String, parametersFingerprint: String, codeVersion: String,
                paramsJSON: String, inputsJSON: String, outputDigest: String, unitsFailed: Int, summary: String,
                runId: String, completedAt: Date) {
        self.stage = stage; self.fingerprint = fingerprint; self.parametersFingerprint = parametersFingerprint
        self.codeVersion = codeVersion
        self.paramsJSON = paramsJSON; self.inputsJSON = inputsJSON; self.outputDigest = outputDigest
        self.unitsFailed = unitsFailed; self.summary = summary
        self.runId = runId; self.completedAt = completedAt
    }
}

public struct FailureRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "failure"
    public var id: Int64?
    public var stage: String
    /// The parameters fingerprint the failure happened under ("" for ingest).
    public var fingerprint: String
    public var subject: String
    public var sha256: String
    public var reason: String
    public var runId: String
    public var recordedAt: Date

    public init(stage: String, fingerprint: String = "", subject: String, sha256: String?, reason: String,
                runId: String, recordedAt: Date = Date()) {
        self.stage = stage; self.fingerprint = fingerprint; self.subject = subject; self.sha256 = sha256 ?? ""
        self.reason = reason; self.runId = runId; self.recordedAt = recordedAt
    }

    /// The failed content's SHA-256, nil for a file that could not be read (stored as "", the column
    /// being part of the table's unique key): comparable with `SourceRecord.sha256`.
    public var contentSHA256: String? { sha256.isEmpty ? nil : sha256 }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public struct ArtifactRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable, Sendable {
    public static let databaseTableName = "artifact"
    public var id: Int64?
    public var stage: String
    public var fingerprint: String
    public var sourceSHA256: String?
    public var kind: String
    public var path: String
    public var sha256: String?
    public var runId: String
    public var createdAt: Date

    public init(stage: String, fingerprint: String, sourceSHA256: String?, kind: String, path: String,
                sha256: String?, runId: String, createdAt: Date = Date()) {
        self.stage = stage; self.fingerprint = fingerprint; self.sourceSHA256 = sourceSHA256; self.kind = kind
        self.path = path; self.sha256 = sha256; self.runId = runId; self.createdAt = createdAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
