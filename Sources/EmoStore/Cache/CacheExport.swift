import EmoCore
import Foundation
import GRDB

/// Bulk export of cached records into files other tools read as they are: WebDataset tar shards
/// (`<key>.npy` + `<key>.json` per record) or NumPy `.npz` files (`<key>.npy` per record plus one
/// `labels.json` entry mapping each key to its JSON). Files are `shard-000000.<format>`, … ; each
/// appears under its name only when complete. Records go in the order given (the caller sorts them
/// by key), so the same records give byte-identical files however the shards cut them. `export.json`,
/// written last, lists them: a folder without it holds an export that was killed or failed.
///
///     let written = try CacheExport.export(rows, from: cache, format: .tar, to: "out", recordsPerFile: 1000) { row, _ in json }
public enum CacheExport {
    public struct WrittenFile: Equatable, Sendable {
        public var path: String
        public var records: Int
        public var bytes: Int
    }

    /// Files are cut before they pass this size, whatever `recordsPerFile` says.
    public static let maxBytesPerFile = 1 << 30
    public static let recordsPerFileRange = 1...10_000
    /// The npz entry with every record's JSON.
    public static let labelsEntry = "labels.json"
    /// The summary of a finished export, written after its last file.
    public static let summaryName = "export.json"

    /// What `export.json` says: the stage and cache key exported, the format, and each file.
    public struct Summary: Codable, Equatable, Sendable {
        public struct File: Codable, Equatable, Sendable {
            public var name: String
            public var records: Int
            public var bytes: Int
        }
        public var stage: String
        public var cacheKey: String
        public var format: String
        public var records: Int
        public var files: [File]
    }

    public static func fileName(index: Int, format: ExportFormat) -> String {
        "shard-" + String(format: "%06d", index) + "." + format.rawValue
    }

    /// The folder (created with its parents when missing) must be writable and hold no earlier export
    /// (whose extra shards a loader's glob would pick up with the new ones). Returns the folders it
    /// created, deepest last: an export that fails removes them again.
    @discardableResult
    public static func checkDestination(_ folder: String) throws -> [String] {
        var isFolder: ObjCBool = false
        var created: [String] = []
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
            do { created = try Folder.create(folder, undoingOnFailure: true) } catch let EmoError.io(path, reason) { throw CacheError.io(path: path, reason: reason) }
            isFolder = true
        }
        guard isFolder.boolValue else { throw CacheError.io(path: folder, reason: "not a folder") }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw CacheError.io(path: folder, reason: "the folder is not writable: \(String(cString: strerror(errno)))")
        }
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        // A `.part` is what a killed export was writing: never a file a loader reads, so no earlier export.
        let earlier = names.sorted().first { $0.hasPrefix("shard-") && !$0.hasSuffix(partSuffix) }
        if names.contains(summaryName) {
            // Never replaced: one that is not an export's summary is somebody's file.
            let whose = isSummary(folder + "/" + summaryName) ? "an earlier export (\(summaryName))" : "an \(summaryName) that is not an export's summary"
            throw CacheError.io(path: folder, reason: "already holds \(whose): export into an empty folder")
        }
        if let earlier {
            // Its files look whole, but without export.json some of them may be missing.
            throw CacheError.io(path: folder, reason: "already holds \(earlier) of an earlier export without \(summaryName) (it was killed, "
                                + "or written by an emopipe older than \(summaryName)): remove its shard-* files, or export into an empty folder")
        }
        return created
    }

    static let partSuffix = ".part"

    /// Whether the file at `path` reads as an export's summary (a small regular file, as `export` writes it).
    static func isSummary(_ path: String) -> Bool {
        guard let opened = try? RegularFile.openForReading(path) else { return false }
        let handle = FileHandle(fileDescriptor: opened.descriptor, closeOnDealloc: true)
        guard opened.size <= 1 << 20, let data = try? handle.read(upToCount: 1 << 20) else { return false }
        return (try? JSONOutput.decoder().decode(Summary.self, from: data)) != nil
    }

    /// Writes `rows` (their CRC-32C checked), at most `recordsPerFile` to a file. `describe` gives
    /// a record's JSON document. When `stopped` turns true (an interrupt) the export stops, removes what
    /// it wrote and throws `EmoError.interrupted`.
    public static func export(_ rows: [CacheRecordRow], from cache: TensorCache, format: ExportFormat, to folder: String,
                              recordsPerFile: Int, stopped: () -> Bool = { false },
                              describe: (CacheRecordRow, CachedTensor) throws -> String) throws -> [WrittenFile] {
        precondition(recordsPerFileRange.contains(recordsPerFile), "records per file out of range")
        let created = try checkDestination(folder)
        do {
            return try exportLocked(rows, from: cache, format: format, to: folder, recordsPerFile: recordsPerFile,
                                    stopped: stopped, describe: describe)
        } catch {
            // An export that wrote nothing leaves no folders of its own either (a path too long for its files).
            for made in created.reversed() { rmdir(made) }
            throw error
        }
    }

    private static func exportLocked(_ rows: [CacheRecordRow], from cache: TensorCache, format: ExportFormat, to folder: String,
                                     recordsPerFile: Int, stopped: () -> Bool,
                                     describe: (CacheRecordRow, CachedTensor) throws -> String) throws -> [WrittenFile] {
        // One export at a time into a folder: a second one would take the first's files for leftovers.
        let lock = try FolderLock(folder: folder)
        defer { lock.release() }
        try checkDestination(folder)   // again, now that no other export can be writing there
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        where name.hasPrefix("shard-") && name.hasSuffix(partSuffix) {
            unlink(folder + "/" + name)
        }
        var written: [WrittenFile] = []
        var current: OpenFile?
        do {
            for row in rows {
                if stopped() { throw EmoError.interrupted }
                // WebDataset splits a member name at its first dot: a key must be the hex digest it always is.
                guard row.key.utf8.count == 64, row.key.allSatisfy({ $0.isASCII && $0.isHexDigit }) else {
                    throw CacheError.missing("cache index row with key '\(row.key)' is not a SHA-256")
                }
                let tensor = try cache.tensor(row, verify: true)
                let npy = NumpyFile.encode(dtype: tensor.dtype, shape: tensor.shape, data: try tensor.bytes)
                let json = try describe(row, tensor)
                let recordBytes = npy.count + json.utf8.count + 4 * TarWriter.block
                if var open = current, open.records >= recordsPerFile || open.size + recordBytes > maxBytesPerFile {
                    written.append(try open.finish())
                    current = nil
                }
                if current == nil {
                    current = try OpenFile(folder: folder, name: fileName(index: written.count, format: format), format: format)
                }
                try current?.add(key: row.key, npy: npy, json: json)
            }
            if var open = current { written.append(try open.finish()) }
            if stopped() { throw EmoError.interrupted }
            try writeSummary(of: written, rows: rows, format: format, in: folder)
        } catch {
            // Half an export would pass for a whole one (and block the next): remove what this one wrote.
            for index in 0...written.count {
                let path = folder + "/" + fileName(index: index, format: format)
                unlink(path)
                unlink(path + partSuffix)
            }
            throw error
        }
        return written
    }

    private static func writeSummary(of written: [WrittenFile], rows: [CacheRecordRow], format: ExportFormat, in folder: String) throws {
        let files = written.map { Summary.File(name: ($0.path as NSString).lastPathComponent, records: $0.records, bytes: $0.bytes) }
        let summary = Summary(stage: rows.first?.stage ?? "", cacheKey: rows.first?.fingerprint ?? "", format: format.rawValue,
                              records: written.reduce(0) { $0 + $1.records }, files: files)
        var json = try JSONOutput.encoder(pretty: true).encode(summary)
        json.append(0x0A)
        try DurableFile.write(json, to: folder + "/" + summaryName)
    }

    /// `flock` on `DIR/.emopipe-export.lock` for the length of one export, removed after it.
    private final class FolderLock {
        static let name = ".emopipe-export.lock"
        private let path: String
        private var fd: Int32

        init(folder: String) throws {
            path = folder + "/" + Self.name
            // A lock file removed (by the export that held it) between our open and flock is no lock:
            // taken again until the file locked is the one at the path.
            for _ in 0..<8 {
                let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
                guard fd >= 0 else {
                    throw CacheError.io(path: path, reason: "cannot open the export lock: \(String(cString: strerror(errno)))")
                }
                guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                    close(fd)
                    throw CacheError.io(path: folder, reason: "another export is writing into this folder (it holds \(Self.name))")
                }
                var held = stat(), named = stat()
                if fstat(fd, &held) == 0, lstat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                    self.fd = fd
                    return
                }
                close(fd)
            }
            throw CacheError.io(path: path, reason: "the export lock keeps being replaced")
        }

        func release() {
            guard fd >= 0 else { return }
            unlink(path)
            close(fd)
            fd = -1
        }
    }

    /// One export file being written under a temporary name.
    private struct OpenFile {
        let format: ExportFormat
        let finalPath: String
        let partPath: String
        var archive: any ArchiveWriter
        var records = 0
        /// npz: each record's JSON, written as one entry at the end.
        var labels: [(key: String, json: String)] = []

        init(folder: String, name: String, format: ExportFormat) throws {
            self.format = format
            finalPath = folder + "/" + name
            partPath = finalPath + CacheExport.partSuffix
            switch format {
            case .tar: archive = try TarWriter(path: partPath)
            case .npz: archive = try StoredZipWriter(path: partPath)
            }
        }

        var size: Int { archive.size + labels.reduce(0) { $0 + $1.json.utf8.count + 70 } }

        mutating func add(key: String, npy: Data, json: String) throws {
            try archive.add(name: key + ".npy", contents: npy)
            switch format {
            case .tar: try archive.add(name: key + ".json", contents: Data(json.utf8))
            case .npz: labels.append((key, json))
            }
            records += 1
        }

        mutating func finish() throws -> WrittenFile {
            if format == .npz {
                // Keys are hex digests and each JSON is a canonical document: joined, one JSON object.
                let object = "{" + labels.map { "\"\($0.key)\":\($0.json)" }.joined(separator: ",") + "}"
                try archive.add(name: CacheExport.labelsEntry, contents: Data(object.utf8))
            }
            try archive.finish()
            guard rename(partPath, finalPath) == 0 else {
                throw CacheError.io(path: finalPath, reason: "cannot rename into place: \(String(cString: strerror(errno)))")
            }
            return WrittenFile(path: finalPath, records: records, bytes: archive.size)
        }
    }
}

extension TensorCache {
    /// The parameters fingerprints some record of `stage` is cached under, sorted.
    public func fingerprints(stage: String) throws -> [String] {
        try store.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT fingerprint FROM cacheRecord WHERE stage = ? ORDER BY fingerprint",
                                arguments: [stage])
        }
    }

    /// The stages that hold cached records, sorted.
    public func stagesWithRecords() throws -> [String] {
        try store.read { try String.fetchAll($0, sql: "SELECT DISTINCT stage FROM cacheRecord ORDER BY stage") }
    }
}
