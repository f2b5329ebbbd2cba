import ArgumentParser
import EmoCore
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect, check and clean the sharded tensor cache.",
        subcommands: [Get.self, Export.self, Verify.self, Stats.self, GC.self])

    /// Reached only when no subcommand was named: the help, and a usage error (exit status 64), as `emopipe` alone.
    func run() throws { throw EmoPipeCommand.noCommandNamed(Self.self, path: "emopipe cache") }

    /// Opens the work directory's store and cache, or says there is none.
    static func open(_ options: WorkDirectoryOptions, _ access: Workspace.Access) throws -> (ProvenanceStore, TensorCache) {
        let store = try options.openStore(access)
        return (store, TensorCache(workspace: options.workspace, store: store))
    }

    /// gc and verify change what they find: in a sweep worker's work directory, the feature caches
    /// are links to the main one's, whose files a worker must never remove or drop.
    static func refuseInSweepWorker(_ workspace: Workspace, command: String) throws {
        if let main = SweepWorker.mainWorkspace(of: workspace) {
            throw PipelineError.invalidFile("\(workspace.root.shownPath) is a sweep worker's work directory: its feature caches are the main "
                + "work directory's (\(main.root.shownPath)), linked; run `emopipe \(command) --workdir \(main.root.shownPath)` there "
                + "(a worker's directory goes whole, with rm -r, once `emopipe merge` has folded its runs back)")
        }
        // A worker killed while it was made has its links but not yet its marker: a cache folder linked to
        // another work directory's cache is enough. (A link to a folder elsewhere, a bigger disk, is the user's.)
        let linked = ((try? FileManager.default.contentsOfDirectory(atPath: workspace.cacheRoot)) ?? []).sorted().first { name in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: workspace.cacheRoot + "/" + name) else { return false }
            let cache = URL(fileURLWithPath: target, relativeTo: URL(fileURLWithPath: workspace.cacheRoot + "/")).standardizedFileURL.deletingLastPathComponent()
            let owner = Workspace(root: cache.deletingLastPathComponent().path)
            return cache.lastPathComponent == Workspace.cacheFolderName && owner.root != workspace.root
                && FileManager.default.fileExists(atPath: owner.databasePath)
        }
        if let linked {
            throw PipelineError.invalidFile("\(workspace.cacheRoot.shownPath)/\(linked.shownPath) is a link to another work directory's cache "
                + "(as a sweep worker's feature caches are): `emopipe \(command)` would act on that cache; run it in the work directory that holds it")
        }
    }

    /// Damage met while reading the main cache's records, with how `cache verify` repairs it.
    static func withRepair(_ error: Error) -> Error {
        guard let damage = error as? CacheError, let repair = damage.repair else { return error }
        return PipelineError.missingData("\(damage); \(repair)")
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one cached record as a NumPy .npy file; --json prints its metadata.",
            discussion: Help.reflow("""
            The record is the one computed under the manifest's current parameters for the stage.
            JSON: {source, sha256, stage, cache_key, dtype, shape, params, shard, crc32c, status (the source's:
            ok, failed, removed), ...the record's own facts (audio: real_frames, duration_seconds, ...)}. Audio
            tensors are [n_mels, frames] float32. A source not in use (removed, or failed by its name while its
            bytes are another file's) gets its bytes' record with a note on stderr saying so.
            --npy - writes the .npy to stdout (for a pipe; not with --json, not to a terminal).
            Example: emopipe cache get --stage audio --source data/ravdess/Actor_01/03-01-01-01-01-01-01.wav --npy x.npy
            """))

        @OptionGroup var manifestOptions: ManifestOptions
        @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
        @Option(help: "The stage whose record to read (audio, faces).") var stage: String
        @Option(help: "The source: a path or a SHA-256.") var source: String
        @Option(help: "Write the tensor here as .npy (- : stdout).") var npy: String?
        @Flag(help: "Print the record's metadata as one JSON document on stdout.") var json = false

        func validate() throws {
            if npy == nil && !json { throw ValidationError("say what to write: --npy OUT.npy, --json, or both") }
            if npy == "-" && json { throw ValidationError("--npy - and --json would both write to stdout: give --npy a file name") }
            if npy == "-" && isatty(STDOUT_FILENO) != 0 {
                throw ValidationError("--npy - writes binary to stdout, which is a terminal: redirect it (> x.npy) or pipe it")
            }
        }

        func run() throws {
            // The manifest judged by, when the default one was taken: a record missing under it may be its doing.
            var byDefault: String?
            // Whether the manifest failed to load, or the record was missing under it: what the note is about.
            var manifestFailed = false, recordMissing = false
            do {
                try CacheCommand.requireCachedStage(stage)
                if let npy, npy != "-" { try OutputFile.check(npy, option: "--npy", format: "npy") }
                let (store, cache) = try CacheCommand.open(workDirectoryOptions, .readOnly)
                let (manifest, dataRoot): (Manifest, DataRootChoice)
                do { (manifest, dataRoot) = try manifestOptions.load(in: workDirectoryOptions.workspace) } catch {
                    manifestFailed = true
                    throw error
                }
                if manifestOptions.arguments.given == nil { byDefault = manifest.path }
                // An explicit --data that is no folder is said (the others are the run's to judge; gc reads no data).
                if manifestOptions.data != nil { dataRoot.warnUnlessFolder() }
                let runner = try PipelineRunner(manifest: manifest, workspace: workDirectoryOptions.workspace, stages: StageCatalog.all())
                let cacheKey = try runner.parametersFingerprint(stage)
                // By SHA-256, a file in use before one removed or failed with the same bytes.
                let matches = try ShowCommand.resolve(source, in: store)
                guard let record = matches.first(where: { $0.status == .ok }) ?? matches.first else {
                    throw EmoError.io(path: source, reason: "no recorded source has this path or SHA-256")
                }
                guard let sha = record.sha256, let row = try cache.row(stage: stage, fingerprint: cacheKey, key: sha) else {
                    recordMissing = true
                    throw try CacheCommand.missingRecord(stage: stage, of: record, store: store, dataRoot: runner.manifest.dataRoot)
                }
                let tensor = try cache.tensor(row, verify: true)
                if record.status != .ok {
                    // The record is its bytes' (another file's, or kept until `cache gc`): said, not passed off as a current source's.
                    StandardStream.error.write(Data("note: \(record.path.escaped) is \(record.status.rawValue)\(record.reason.map { " (\($0))" } ?? ""); "
                        .appending("this is the \(stage) record of its bytes, \(try Self.holders(of: sha, in: store))\n").utf8))
                }
                if let npy {
                    let file = NumpyFile.encode(dtype: tensor.dtype, shape: tensor.shape, data: try tensor.bytes)
                    if npy == "-" { StandardStream.output.write(file) } else { try OutputFile.write(file, to: npy, option: "--npy") }
                }
                if json {
                    let metadata = try tensor.metadata
                    var fields = (try? ParamValue.fromJSON(Data(metadata.utf8)).objectValue) ?? [:]
                    let shard = try cache.shardFile(row.shardId) ?? ""
                    fields.merge([
                        "source": .string(record.path), "sha256": .string(sha), "stage": .string(stage),
                        "cache_key": .string(cacheKey), "dtype": .string(tensor.dtype.name),
                        "shape": .array(tensor.shape.map(ParamValue.int)),
                        "params": ParamValue.object(runner.resolvedParams(stage)).nestingDottedKeys,
                        "shard": .string(shard), "crc32c": .int(Int(row.crc32c)), "status": .string(record.status.rawValue),
                    ]) { $1 }
                    JSONOutput.print(.object(fields))
                }
            } catch {
                if manifestOptions.arguments.given == nil, recordMissing || manifestFailed {
                    let note = OtherManifestNote(workDirectory: workDirectoryOptions, command: ["emopipe", "cache", "get"],
                                                 rest: ["--stage", stage, "--source", ShellWord.path(source)] + (npy.map { ["--npy", $0 == "-" ? $0 : ShellWord.path($0)] } ?? [])
                                                     + (json ? ["--json"] : []) + OtherManifestNote.arguments(of: manifestOptions))
                    note.write(byDefault.flatMap(note.text(judgedBy:)) ?? note.textWithoutDefault())
                }
                throw Failure.exit(for: CacheCommand.withRepair(error))
            }
        }

        /// Which files in use hold these bytes now, said for a record served under a path that is not in use.
        static func holders(of sha: String, in store: ProvenanceStore) throws -> String {
            let current = try store.sources(sha256: sha).filter { $0.status == .ok }.map(\.path)
            guard let first = current.first else { return "which no file in use has now (`emopipe cache gc` removes it)" }
            return "which \(first.escaped)\(current.count > 1 ? " and \(current.count - 1) more" : "") also hold\(current.count > 1 ? "" : "s")"
        }
    }

    /// `--stage` names a stage whose records the cache holds, alike for every cache command: no such stage
    /// is a usage error (64), a stage without per-source records (split, train) holds none to give (1).
    static func requireCachedStage(_ stage: String) throws {
        guard let known = StageName(rawValue: stage) else {
            throw UsageError("--stage \(stage.echoed): no such stage; the cached stages are audio and faces")
        }
        guard [StageName.audio, .faces].contains(known) else {
            throw NoRecord("\(stage) keeps no cached records (those that do: audio, faces)")
        }
    }

    /// Why a stage holds no record of a source: a failure it recorded, or a source the stage
    /// does not take (then a run would not help, and the message says so), or work not done yet.
    static func missingRecord(stage: String, of record: SourceRecord, store: ProvenanceStore, dataRoot: String) throws -> Error {
        let path = record.path
        if let failure = try store.failures(stage: stage, subject: path).last {
            return EmoError.io(path: path, reason: "no \(stage) record: \(failure.reason)")
        }
        let known = "\(stage) holds no record for \(path): the source is known but"
        guard record.status == .ok, record.sha256 != nil else {
            return NoRecord("\(known) ingest judged it \(record.status.rawValue)\(record.reason.map { " (\($0))" } ?? "")")
        }
        guard path.hasPrefix(dataRoot + "/") else {
            return NoRecord("\(known) lies outside the data root \(dataRoot)")
        }
        switch try ClipSourceChoice.of(stage: stage, clipOf: record, store: store, dataRoot: dataRoot) {
        case .notPerSource:
            return NoRecord("\(stage) keeps no cached records (those that do: audio, faces)")
        case .noSource:
            return NoRecord("\(known) \(stage) takes \(ClipSourceChoice.takes(stage) ?? "other sources"), and clip \(record.clip ?? "?") has none")
        case .contradicted(let row):
            return NoRecord("\(known) \(row.why), so no stage takes it: \(ContradictedSource.advice)")
        case .source(let chosen) where chosen.sha256 != record.sha256:
            return NoRecord("\(known) \(stage) takes \(ClipSourceChoice.takes(stage) ?? "other sources"); ask for \(chosen.path)")
        case .source:
            return EmoError.io(path: path, reason: "no \(stage) record under the current parameters (run `emopipe run --until \(stage)`)")
        }
    }

    /// A record the cache does not hold and no run would make (exit status 1).
    struct NoRecord: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }


    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write every cached record of a stage into WebDataset tar shards or NumPy .npz files.",
            discussion: Help.reflow("""
            DIR (created when missing) must hold no earlier export. Files are DIR/shard-000000.tar (or .npz), …, at most
            --records-per-file records (and 1 GB) each, records in SHA-256 order, each CRC-checked first; the
            same records give byte-identical files. A record's key is its source's SHA-256. DIR/export.json,
            written after the last file, lists {stage, cache_key, format, records, files}: shards without it
            are a killed export's (or an emopipe's before export.json), and an export.json of anything else is
            never replaced. Where DIR leads, its links and `..` followed, may not be the work directory, one of its own
            folders (cache, runs, …) or on /proc or /sys (so `/proc/self/cwd/out` is the folder `out` it names).

            tar (WebDataset): per record <key>.npy (the tensor) and <key>.json: {sha256, stage, cache_key,
            dtype, shape, source, sources, actor, emotion, emotion_name, intensity, statement, repetition,
            modality, channel, clip, ...the record's own facts (as `cache get --json`)}. The labels are the
            first source's by path when identical bytes are several sources (all are in `sources`); an ok source
            whose codes in the database are not valid RAVDESS codes (a hand-edited row) stops the export (exit 1). Records
            of content no source has now (a file changed or removed since) are left out, and counted on stderr.
            npz: per record an array named <key>, and a labels.json entry {key: that JSON}.

            --cache-key (or --fingerprint) takes a cache key or a prefix of 4 or more hex digits (as `cache
            stats` prints it); without it, that of the stage's last completed run. Exit status 64 for an
            unknown stage or cache key, 1 when the stage has no records or DIR cannot be created, is not
            writable, is one of those places or holds an earlier export; 130 when interrupted (Ctrl-C,
            SIGTERM or SIGHUP). An export that stops or fails removes the files and folders it made.
            A shard-*.part file a killed export left is no earlier export: it is removed.

            Examples:
              emopipe cache export --stage audio --format tar exports/audio
              emopipe cache export --stage faces --cache-key 9da6742b --format npz exports/faces
            """))

        @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
        @Option(help: "The stage whose records to export (audio, faces).") var stage: String
        @Option(name: [.customLong("cache-key"), .customLong("fingerprint")],
                help: ArgumentHelp("A cache key of the stage (as `cache stats` prints it), or a prefix of 4 or more hex digits.", valueName: "key"))
        var cacheKey: String?
        @Option(help: "tar (WebDataset shards) or npz.") var format: ExportFormat
        @Option(parsing: .unconditional, help: ArgumentHelp("Records per output file (\(CacheExport.recordsPerFileRange.lowerBound)-\(CacheExport.recordsPerFileRange.upperBound)).", valueName: "n"))
        var recordsPerFile = 1000
        @Argument(help: "The folder to write into (created when missing).") var dir: String

        func validate() throws {
            if dir.isEmpty { throw ValidationError("DIR is empty: name the folder to write into") }
            // As --workdir: something there that is no folder is a wrong argument (64), said before any record is read.
            var facts = stat()
            if stat(dir, &facts) == 0, facts.st_mode & S_IFMT != S_IFDIR {
                throw ValidationError("DIR \(dir.echoed): exists and is not a folder")
            }
            guard CacheExport.recordsPerFileRange.contains(recordsPerFile) else {
                throw ValidationError("--records-per-file \(recordsPerFile) is outside \(CacheExport.recordsPerFileRange.lowerBound)-\(CacheExport.recordsPerFileRange.upperBound)")
            }
        }

        func run() throws {
            do {
                try CacheCommand.requireCachedStage(stage)
                let (store, cache) = try CacheCommand.open(workDirectoryOptions, .readOnly)
                let chosen = try Self.chooseFingerprint(stage: stage, given: cacheKey, store: store, cache: cache)
                // Written where DIR leads: the checks and every write see one folder, however links and `..` mix in its name.
                let target = try Self.checkPlace(of: dir, workspace: workDirectoryOptions.workspace)
                let cached = try cache.rows(stage: stage, fingerprint: chosen)
                // A record of content no source has now (a file changed or removed since) has no labels: left for `cache gc`.
                let rows = try cached.filter { row in try store.sources(sha256: row.key).contains { $0.status == .ok } }
                if cached.count > rows.count {
                    StandardStream.error.write(Data(("left out \(cached.count - rows.count) record(s) of content no source has now "
                        + "(changed or removed files; `emopipe cache gc` removes them)\n").utf8))
                }
                guard !rows.isEmpty else { throw EmoError.io(path: workDirectoryOptions.workspace.root, reason: "no \(stage) records of current sources under cache key \(chosen)") }
                // SIGINT or SIGTERM: the export stops and removes what it wrote (half an export would pass for one).
                let cancellation = Cancellation()
                let signals = SignalTrap(cancellation: cancellation, stopping: "stopping; what this export wrote is removed")
                defer { signals.restore() }
                let written = try CacheExport.export(rows, from: cache, format: format, to: target, recordsPerFile: recordsPerFile,
                                                     stopped: { cancellation.isCancelled }) { row, tensor in
                    try Self.describe(row, tensor, stage: stage, sources: store.sources(sha256: row.key), database: store.path).canonicalJSON
                }
                let bytes = written.reduce(0) { $0 + $1.bytes }
                print("exported \(rows.count) \(stage) records (cache key \(chosen.prefix(16))) into \(written.count) \(format.rawValue) file(s), \(bytes) bytes, in \(dir.echoed)")
            } catch {
                throw Failure.exit(for: CacheCommand.withRepair(error))
            }
        }

        /// DIR may be anywhere but the work directory itself, the folders it manages (cache, runs, …) and
        /// the kernel's /proc and /sys; links and `..` are followed to see where it leads. Returns that place.
        static func checkPlace(of dir: String, workspace: Workspace) throws -> String {
            guard let resolved = ResolvedPath.of(dir) else {
                throw EmoError.io(path: dir, reason: "DIR is relative, and the current folder is gone (deleted): give DIR as an absolute path")
            }
            if KernelFilesystem.isBelowKernelMount(resolved) {
                throw EmoError.io(path: dir, reason: "DIR is on the kernel's /proc or /sys filesystem: export somewhere else")
            }
            if ResolvedPath.of(workspace.root) == resolved {
                throw EmoError.io(path: dir, reason: "DIR is the work directory itself: export into a folder of its own")
            }
            // A sweep worker's cache folders are links into the main work directory's: where they lead is managed too.
            let linked = ((try? FileManager.default.contentsOfDirectory(atPath: workspace.cacheRoot)) ?? []).sorted()
                .map { workspace.cacheRoot + "/" + $0 }.filter { path in
                    var facts = stat()
                    return lstat(path, &facts) == 0 && facts.st_mode & S_IFMT == S_IFLNK
                }
            if let own = (workspace.ownFolders + linked).first(where: { ResolvedPath.isWithin(resolved, $0) }) {
                throw EmoError.io(path: dir, reason: "DIR lies in the work directory's own folder \(own.echoed), whose files EmoPipe manages: "
                                  + "export into a folder of its own")
            }
            return resolved
        }

        /// The cache key `--cache-key` names (a unique prefix), else the stage's last completed run's.
        static func chooseFingerprint(stage: String, given: String?, store: ProvenanceStore, cache: TensorCache) throws -> String {
            guard StageName(rawValue: stage) != nil else {
                throw PipelineError.unknownStage(stage, known: StageName.allCases.map(\.rawValue))
            }
            let cached = try cache.fingerprints(stage: stage)
            guard !cached.isEmpty else {
                let holding = try cache.stagesWithRecords()
                throw EmoError.io(path: store.path, reason: "no cached \(stage) records"
                                  + (holding.isEmpty ? " (the cache is empty)" : " (stages with records: \(holding.joined(separator: ", ")))"))
            }
            let known = "cached \(stage) cache keys: " + cached.map { String($0.prefix(16)) }.joined(separator: ", ")
            if let given {
                let prefix = given.lowercased()
                if let problem = HashPrefix.problem(prefix) { throw UsageError("--cache-key '\(given.echoed)' \(problem) (\(known))") }
                let matching = cached.filter { $0.hasPrefix(prefix) }
                guard let only = matching.first else { throw UsageError("--cache-key '\(given.echoed)' matches no \(known)") }
                guard matching.count == 1 else { throw UsageError("--cache-key '\(given.echoed)' is ambiguous: it starts \(matching.count) of the \(known)") }
                return only
            }
            if let current = try store.stageState(stage)?.parametersFingerprint, cached.contains(current) { return current }
            guard cached.count == 1 else {
                throw UsageError("several cache keys hold \(stage) records and no completed run names one: choose with --cache-key (\(known))")
            }
            return cached[0]
        }

        /// A record's JSON: what it is, its labels from the source rows that have its bytes, and its own facts.
        static func describe(_ row: CacheRecordRow, _ tensor: CachedTensor, stage: String, sources: [SourceRecord],
                             database: String) throws -> ParamValue {
            var fields = (try? ParamValue.fromJSON(Data(tensor.metadata.utf8)).objectValue) ?? [:]
            let live = sources.filter { $0.status == .ok }
            let labelled = (live.isEmpty ? sources : live).first
            // Ingest records an ok source only with valid codes: others are a hand-edited database's, not labels to pass on.
            if let labelled, labelled.status == .ok {
                let problem = labelled.codes.map { RavdessName.validate($0, extension: $0.modality == 3 ? "wav" : "mp4") }
                    ?? "it has no RAVDESS codes"
                if let problem {
                    throw EmoError.io(path: database, reason: "table source, row \(labelled.path.echoed): \(problem), though its status is ok "
                                      + "(a hand-edited or damaged database): its labels are not exported; `emopipe run` ingests the file again once the row is gone")
                }
            }
            let identity: [String: ParamValue] = [
                "sha256": .string(row.key), "stage": .string(stage), "cache_key": .string(row.fingerprint),
                "dtype": .string(tensor.dtype.name), "shape": .array(tensor.shape.map(ParamValue.int)),
            ]
            let emotionName: ParamValue = (labelled?.emotion).flatMap(Emotion.init(rawValue:)).map { .string($0.name) } ?? .null
            var labels: [String: ParamValue] = [
                "source": labelled.map { .string($0.path) } ?? .null,
                "sources": .array(live.map { .string($0.path) }),
                "clip": labelled?.clip.map(ParamValue.string) ?? .null,
                "emotion_name": emotionName,
            ]
            let codes: [(String, Int?)] = [
                ("actor", labelled?.actor), ("emotion", labelled?.emotion), ("intensity", labelled?.intensity),
                ("statement", labelled?.statement), ("repetition", labelled?.repetition),
                ("modality", labelled?.modality), ("channel", labelled?.channel),
            ]
            for (name, value) in codes { labels[name] = value.map(ParamValue.int) ?? .null }
            fields.merge(labels) { $1 }
            fields.merge(identity) { $1 }
            return .object(fields)
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-check every record's CRC-32C; name the source of each damaged record.",
            discussion: "A damaged record is dropped from the index and recorded as a failure; the next `run` recomputes it (and only it). Exit status 3 when any record was damaged.")

        @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
        @Option(help: "Only this stage's records.") var stage: String?

        func run() throws {
            do {
                if let stage { try CacheCommand.requireCachedStage(stage) }
                try CacheCommand.refuseInSweepWorker(workDirectoryOptions.workspace, command: "cache verify")
                let (store, cache) = try CacheCommand.open(workDirectoryOptions, .readWrite)
                let lock = try workDirectoryOptions.workspace.lock(holder: "emopipe cache verify (pid \(getpid()))")
                defer { lock.release() }
                let signals = SignalTrap(cancellation: Cancellation(), stopping: "stopping after the record in hand; what was dropped stays dropped")
                defer { signals.restore() }
                // Dropping a damaged record changes the work directory: that makes the verification a
                // run, which its failure rows name (recorded only when something is damaged).
                let run = RunRecord(id: PipelineRunner.newRunId(), command: CommandLine.arguments.joined(separator: " "),
                                    manifestJSON: "", manifestSHA256: "", dataRoot: "", threads: 1,
                                    codeVersion: EmoPipeVersion.string, host: ProcessInfo.processInfo.hostName,
                                    pid: Int(getpid()), startedAt: Date())
                var progress: ProgressReporter?
                let report = try cache.verify(stage: stage, as: run) { done, total in
                    if progress == nil { progress = ProgressReporter(label: "verify", total: total, unit: "records") }
                    progress?.advance()
                    if done == total { progress?.finish() }
                }
                for damaged in report.damaged {
                    let names = damaged.sources.isEmpty ? damaged.key : damaged.sources.joined(separator: ", ")
                    StandardStream.error.write(Data("damaged: \(damaged.stage) record of \(names) in \(damaged.shard): \(damaged.reason)\n".utf8))
                }
                print("\(report.checkedRecords) records checked (\(report.checkedBytes / 1_000_000) MB), \(report.damaged.count) damaged")
                if !report.damaged.isEmpty {
                    try store.finishRun(id: run.id, status: .partial, exitCode: Int(ExitStatus.partial))
                    throw ExitCode(ExitStatus.partial)
                }
            } catch {
                throw Failure.exit(for: error)
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print shards, records and bytes per stage and cache key.",
            discussion: Help.reflow("""
            The figures are the index's; indexed shards missing from disk, or of another size than written, are
            named on stderr (`cache verify` repairs them). --json prints one document: {stages: [{stage,
            cache_key, shards, records, bytes}], total: {shards, records, bytes}, unsound_shards: [path]}.
            """))
        @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
        @Flag(help: "Print the figures as one JSON document on stdout.") var json = false

        func run() throws {
            do {
                let (_, cache) = try CacheCommand.open(workDirectoryOptions, .readOnly)
                let stats = try cache.stats()
                // Saturating: a hand-edited index may hold sizes near Int.max in several groups.
                func plus(_ a: Int, _ b: Int) -> Int { let (sum, over) = a.addingReportingOverflow(b); return over ? Int.max : sum }
                let total = stats.reduce(into: (0, 0, 0)) { $0.0 = plus($0.0, $1.shards); $0.1 = plus($0.1, $1.records); $0.2 = plus($0.2, $1.bytes) }
                let unsound = try cache.unsoundShards()
                if json {
                    return JSONOutput.print(.object([
                        "stages": .array(stats.map { s in
                            .object(["stage": .string(s.stage), "cache_key": .string(s.fingerprint), "shards": .int(s.shards),
                                     "records": .int(s.records), "bytes": .int(s.bytes)])
                        }),
                        "total": .object(["shards": .int(total.0), "records": .int(total.1), "bytes": .int(total.2)]),
                        "unsound_shards": .array(unsound.map { .string($0.file) }),
                    ]))
                }
                print("stage     cache key         shards  records        bytes")
                for s in stats {
                    print("\(s.stage.padding(toLength: 9, withPad: " ", startingAt: 0)) \(s.fingerprint.prefix(16))  "
                          + String(format: "%6ld  %7ld  %11ld", s.shards, s.records, s.bytes))
                }
                print("total                       " + String(format: "%6ld  %7ld  %11ld", total.0, total.1, total.2))
                if let first = unsound.first {
                    StandardStream.error.write(Data(("\(unsound.count) indexed shard(s) missing or not of their recorded size (\(first.file)"
                        + (unsound.count > 1 ? ", ..." : "") + "): `emopipe cache verify` drops their records and the next run computes them again\n").utf8))
                }
            } catch {
                throw Failure.exit(for: error)
            }
        }
    }

    struct GC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove cached records no recorded run used, records of sources gone from disk, and crash leftovers.",
            discussion: Help.reflow("""
            Keeps the records of every cache key (stage and parameters) a recorded run used (so switching a
            parameter back finds its cache), plus those the manifest needs now. --current-only keeps only
            what the manifest needs now (what a run of it reads: no face crops for a speech-only model). Always removed: records of sources marked removed (or whose content
            changed), shards none of whose records is in use, partial files a crash left, and checkpoint
            folders `run --force` set aside (cache/train/<stage fingerprint>.superseded-<run id>). Shards left
            part-used are rewritten with their live records (bytes unchanged). Refused in a sweep worker's
            work directory, whose feature caches are links to the main one's (as is `cache verify`).

            --dry-run lists what would go, by stage, cache key and reason (records, shards, bytes), and
            removes nothing; without it the same listing says what went. --json prints it as one JSON
            document: {dry_run, current_only, removed: [{stage, cache_key, reason, records, shards, bytes}],
            leftover_files: [{path, bytes}], superseded_checkpoints: [{path, bytes}], left_in_place: [path],
            not_compacted: [{path, problem}] (a shard holding a damaged live record is left as it is, exit status 3),
            total: {records, shards, bytes}, kept: {stage: [cache_key]}}.

            Examples:
              emopipe cache gc --dry-run
              emopipe cache gc manifests/default.yaml --current-only
            """))
        @OptionGroup var manifestOptions: ManifestOptions
        @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
        @Flag(help: "List what would be removed; remove nothing.") var dryRun = false
        @Flag(help: "Keep only the cache keys the manifest needs now, not those of earlier runs.") var currentOnly = false
        @Flag(help: "Print the listing as one JSON document on stdout.") var json = false

        func run() throws {
            do {
                // A dry run only reads: it works in a read-only work directory too, and takes no lock.
                if !dryRun { try CacheCommand.refuseInSweepWorker(workDirectoryOptions.workspace, command: "cache gc") }
                let (store, cache) = try CacheCommand.open(workDirectoryOptions, dryRun ? .readOnly : .readWrite)
                let (manifest, dataRoot) = try manifestOptions.load(in: workDirectoryOptions.workspace)
                // An explicit --data that is no folder is said (the others are the run's to judge; gc reads no data).
                if manifestOptions.data != nil { dataRoot.warnUnlessFolder() }
                let runner = try PipelineRunner(manifest: manifest, workspace: workDirectoryOptions.workspace, stages: StageCatalog.all())
                let lock = dryRun ? nil : try workDirectoryOptions.workspace.lock(holder: "emopipe cache gc (pid \(getpid()))")
                defer { lock?.release() }
                var keep: [String: Set<String>] = currentOnly ? [:] : try store.parametersFingerprintsUsed()
                // What a run of the manifest reads now: not faces for a speech-only model (a run leaves that stage out).
                for stage in try runner.stagesOfAWholeRun() { keep[stage, default: []].insert(try runner.parametersFingerprint(stage)) }
                let live = Set(try store.allSources().filter { $0.status != .removed }.compactMap(\.sha256))
                let plan = try cache.planGarbage(keep: keep, liveKeys: live)
                let done = dryRun ? plan : try cache.collectGarbage(plan)
                if json { JSONOutput.print(Self.json(done, keep: keep, dryRun: dryRun, currentOnly: currentOnly)) }
                else { print(Self.listing(done, dryRun: dryRun)) }
                for shard in done.notCompacted {
                    StandardStream.error.write(Data("emopipe: a shard was not compacted: \(shard.problem); `emopipe cache verify` drops the damaged record, then run gc again\n".utf8))
                }
                // A dry run takes no lock, so a run working now may still be writing a file listed as a leftover.
                if dryRun, let holder = WorkDirectoryLock.currentHolder(path: workDirectoryOptions.workspace.lockPath) {
                    StandardStream.error.write(Data(("note: \(holder) is working in this work directory: files it is still writing may be listed, "
                                                     + "and gc without --dry-run is refused until it ends\n").utf8))
                }
                if currentOnly, let earlier = Self.earlierRunsRecords(plan, used: try store.parametersFingerprintsUsed()), earlier > 0 {
                    StandardStream.error.write(Data("note: --current-only \(dryRun ? "would drop" : "dropped") \(earlier) record(s) of parameters that earlier runs used\n".utf8))
                }
                if !done.notCompacted.isEmpty { throw ExitCode(ExitStatus.partial) }
            } catch {
                throw Failure.exit(for: error)
            }
        }

        /// Records of cache keys a recorded run used that `--current-only` drops (nil when none).
        static func earlierRunsRecords(_ plan: GarbagePlan, used: [String: Set<String>]) -> Int? {
            let count = plan.groups.filter { $0.reason == .fingerprintNotKept && used[$0.stage]?.contains($0.fingerprint) == true }
                .reduce(0) { $0 + $1.records }
            return count > 0 ? count : nil
        }

        static func listing(_ plan: GarbagePlan, dryRun: Bool) -> String {
            var lines = [dryRun ? "would remove (dry run, nothing removed):" : "removed:"]
            if !plan.groups.isEmpty {
                lines.append("  stage     cache key         reason                 records  shards        bytes")
                for group in plan.groups {
                    lines.append("  \(group.stage.padding(toLength: 9, withPad: " ", startingAt: 0)) \(group.fingerprint.prefix(16))  "
                                 + group.reason.rawValue.padding(toLength: 21, withPad: " ", startingAt: 0)
                                 + String(format: "  %7ld  %6ld  %11ld", group.records, group.shards, group.bytes))
                }
            }
            for file in plan.leftoverFiles { lines.append("  leftover file \(file.path) (\(file.bytes) bytes)") }
            for folder in plan.supersededFolders { lines.append("  set-aside checkpoints \(folder.path) (\(folder.bytes) bytes)") }
            for shard in plan.notCompacted { lines.append("  not compacted: \(shard.path) holds a damaged record (see stderr); its bytes stay") }
            for stray in plan.leftInPlace {
                lines.append("  left in place: \(stray.path.escaped) is not a regular file (its index row \(dryRun ? "would go" : "went"); remove it yourself)")
            }
            lines.append("total: \(plan.totalRecords) records, \(plan.totalShards) shards and files, \(plan.totalBytes) bytes")
            return lines.joined(separator: "\n")
        }

        static func json(_ plan: GarbagePlan, keep: [String: Set<String>], dryRun: Bool, currentOnly: Bool) -> ParamValue {
            func files(_ list: [GarbagePlan.File]) -> ParamValue {
                .array(list.map { .object(["path": .string($0.path), "bytes": .int($0.bytes)]) })
            }
            return .object([
                "dry_run": .bool(dryRun),
                "current_only": .bool(currentOnly),
                "removed": .array(plan.groups.map { group in
                    .object(["stage": .string(group.stage), "cache_key": .string(group.fingerprint),
                             "reason": .string(group.reason.rawValue), "records": .int(group.records),
                             "shards": .int(group.shards), "bytes": .int(group.bytes)])
                }),
                "leftover_files": files(plan.leftoverFiles),
                "superseded_checkpoints": files(plan.supersededFolders),
                "left_in_place": .array(plan.leftInPlace.map { .string($0.path) }),
                "not_compacted": .array(plan.notCompacted.map { .object(["path": .string($0.path), "problem": .string($0.problem)]) }),
                "total": .object(["records": .int(plan.totalRecords), "shards": .int(plan.totalShards), "bytes": .int(plan.totalBytes)]),
                "kept": .object(keep.mapValues { .array($0.sorted().map(ParamValue.string)) }),
            ])
        }
    }
}

extension ExportFormat: ExpressibleByArgument {}
