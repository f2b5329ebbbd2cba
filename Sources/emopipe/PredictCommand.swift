import ArgumentParser
import EmoCore
import EmoFeatures
import EmoMedia
import EmoModel
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict the emotion of new media files (mp4 or wav), or of a live stream, with a run's exported model.",
        discussion: Help.reflow("""
        The run must have completed the export stage. Features are computed as the pipeline computes them,
        and each file is scored whole by the policy the evaluate stage uses (recorded in the run's model.json
        and in model.onnx's metadata): windows of the model's length every window_hop_frames frames, plus one
        ending at the file's last frame, the file's label from the mean of the windows' probabilities. So
        predict on a test clip of a single-split run gives what the run's predictions.csv recorded for it
        (it scores with the run's thread count, read from the database of the work directory that holds the run
        folder: on some CPUs' kernels another count rounds differently; a folder copied elsewhere is scored with
        one thread per core).
        A file with a RAVDESS name is read with its clip's other files beside it in the same folder, as the
        pipeline pairs a clip's sources: speech from the clip's wav (modality 03), else its audio-video mp4
        (01); pictures from the audio-video mp4, else the video-only one (02). So a clip's wav and its mp4
        give the same answer (given together, the clip counts once in its speaker's statistics);
        speech_file and video_file say which files were read.
        A file with several windows also gets their timeline. --hop changes the windows' spacing (and with
        it the answer).
        A model trained with train.speaker_norm normalises each file with its speaker's statistics: files are
        grouped by the RAVDESS actor in their names (files without one form one group). When every file given
        of an actor is one of the run's own sources of that actor (by SHA-256), the run's statistics of that
        actor are used (runs/<run>/speakers.json), as evaluate used them; otherwise the statistics come from
        the files given together in this call (a file given twice, by any path, counts once), blended with the
        statistics of the model's training actors as if 10 s of their speech were among them: a single file
        leans on the training actors (normalised by itself, one clip loses the loudness and pitch it is judged
        on), an actor's many files on their own. Each answer says which group and which statistics it used.
        With --json: an array of {path, label, probabilities: {label: p}, timeline: [{start, end, label,
        probabilities}], speaker: {name, files, statistics: recorded, blended, or given (a run folder without speakers.json: the files alone)} (absent for an answer from the faces alone: no log-mel was normalised), modalities: the ones the answer used, [audio], [faces] or
        [audio, faces], speech_file, video_file: the file each was read from, absent when not used,
        audio_error: why the speech could not be read (or "FILE: no audio track") when a model with a face
        branch answered from the faces alone, as evaluate scores a clip whose speech the audio stage failed;
        video_error: likewise, why the pictures could not be read (the clip's mp4 beside a wav does not open,
        or its video does not decode; "FILE: no video track"; FILE is the file the pictures were sought in)
        when the answer comes from the speech alone; speech_passed_over: why the clip's wav
        could not be read when the speech was read from its mp4}; each of these is also noted on stderr. A file that cannot be read is
        passed over for its clip's other files beside it, as evaluate passes over a source ingest failed; with none readable it is reported and skipped (exit
        status 3), as is one whose log-mel would pass 2^26 values (2.9 hours at 64 mels and a 10 ms hop):
        stream that one instead (a model with a face branch answers such a clip from its faces, saying why). Files that take more than 2 s to read show progress on stderr (files
        done, rate, ETA). Ctrl-C (SIGINT), SIGTERM or SIGHUP starts no further file: the answers so far are printed,
        exit status 130 (a speaker-normalised model answers none until every file was read once). --files-from LIST reads more paths, one per line: thousands of arguments take the
        command line seconds to parse (find data -name '*.wav' > list; emopipe predict --run RUN --files-from list); one call takes
        at most 100,000 files and a list of at most 64 MiB (split a longer one).
        Example: emopipe predict --run 20261125-150320-c9e9f3 clip.mp4 speech.wav --json

        Streams: one INPUT that is - (standard input), a URL (http, https, rtsp, pipe:, ... anything FFmpeg
        opens; a name that exists as a file is that file), or a device or other FFmpeg input named with --format (alsa, pulse, lavfi, v4l2) is read as it arrives:
        each window is scored as soon as its audio (and pictures) are in and printed at once (with --json,
        JSON Lines: one {input, start, end, label, probabilities, modalities, speaker, faces_found} per window),
        and at the end of the stream one more window ends at its last frame, as for a file. The top_db
        floor is measured from the loudest sound so far, and a speaker-normalised model uses running
        statistics of the stream so far, blended with its training actors' as a file's are (each window says how
        many seconds: speaker {name: "stream so far", seconds, statistics}); trim_db and crop do not apply. A model with a face branch also reads the video (same
        input): each window gets K pictures, one nearest each point of a grid every W/K seconds at
        (j + 1/2)·W/K, through the faces stage's extractor; modalities says what the window used ([audio,
        faces], [audio] when no face was found, [faces] without audio) and faces_found in how many of the K
        pictures the face was found. A stream without audio (a camera) is scored on faces alone; a window
        there without a face is not printed (stderr names it; exit 3 if no window had one). Ctrl-C
        (SIGINT), SIGTERM or SIGHUP stops reading; the windows printed stay, exit status 130. A stream that breaks
        off after data arrived (a server closing it, a network timeout) is scored as far as it got. An
        input that cannot be opened, has nothing the model reads or is not media is refused naming it
        (exit 1); one whose video cannot be decoded is scored on its audio, saying so.

          ffmpeg -re -i talk.mp4 -f wav - | emopipe predict --run RUN - --json
          emopipe predict --run RUN --format pulse default
          emopipe predict --run RUN --format v4l2 /dev/video0 --json
        """))

    @OptionGroup var workDirectoryOptions: WorkDirectoryOptions
    @Option(name: .customLong("run"), help: "A run id (a folder under WORKDIR/runs), the start of one only one run has, or a path to a run folder.")
    var runReference: String
    // Taken unconditionally so that `--hop -1` reaches `validate` (and is refused there, naming the
    // value) instead of being read as an unknown option `-1`.
    @Option(name: .customLong("hop"), parsing: .unconditional, help: ArgumentHelp("Seconds between windows, from \(Self.minimumHop) to \(Int(Self.maximumHop)) (default: the model's policy; a hop longer than the window skips audio).", valueName: "seconds"))
    var hopOption: DecimalNumber?
    var hop: Double? { hopOption?.value }

    /// Windows closer than this only repeat their neighbours at a cost per window.
    static let minimumHop = 0.1
    /// A day: any longer only means one window, and the frame count must stay a small integer.
    static let maximumHop = 86_400.0
    @Flag(help: "Print one JSON document on stdout (for a stream: one JSON object per window, per line).") var json = false
    @Argument(help: "Media files (mp4 or wav), or one stream: - (standard input), a URL, or a device with --format.") var files: [String] = []
    @Option(name: .customLong("files-from"), help: ArgumentHelp("A file naming media files, one path per line (- reads standard input), after any given as arguments: for lists of thousands, which the command line parses slowly. May be given again: the lists are read in turn.", valueName: "list"))
    var filesFrom: [String] = []
    @Option(help: ArgumentHelp("The FFmpeg input format or capture device to open the one INPUT with (e.g. alsa, pulse, lavfi); makes it a stream.", valueName: "name"))
    var format: String?
    @Option(name: .customLong("timeout"), parsing: .unconditional, help: ArgumentHelp("Seconds a URL may take to open, and may go without data while read (a pipe or device waits for its writer); 0.1 to 3600.", valueName: "seconds"))
    var timeoutOption = DecimalNumber(15)
    var timeout: Double { timeoutOption.value }

    func validate() throws {
        if let hop, !(hop.isFinite && hop >= Self.minimumHop && hop <= Self.maximumHop) {
            throw ValidationError("--hop \((hopOption?.text ?? "").echoed): expected a number of seconds from \(Self.minimumHop) to \(Int(Self.maximumHop))")
        }
        if !(timeout.isFinite && timeout >= 0.1 && timeout <= 3600) {
            throw ValidationError("--timeout \(timeoutOption.text.echoed): expected a number of seconds from 0.1 to 3600")
        }
        if filesFrom.filter({ $0 == "-" }).count > 1 {
            throw ValidationError("--files-from - is given twice: standard input holds one list")
        }
        if let stream = streamInput, files.count > 1 || !filesFrom.isEmpty {
            throw ValidationError("\(stream) is a stream: give it alone (files can be given together, a stream cannot)")
        }
        if files.isEmpty && filesFrom.isEmpty {
            if let format {
                throw ValidationError("--format \(format.isEmpty ? "\"\"" : format.echoed) opens one stream input, and none is given "
                                      + "(e.g. --format lavfi sine=duration=5, --format alsa default)")
            }
            // An argument parsed as an option where a file was meant (the parser drops a lone one without a word).
            if let dashed = CommandLine.arguments.dropFirst(2).first(where: { $0.hasPrefix("-") && $0.count > 1 && FileManager.default.fileExists(atPath: $0) }) {
                throw ValidationError("\(dashed.echoed) begins with -, so it reads as an option: give that file as ./\(dashed.echoed), or after --")
            }
            throw ValidationError("give media files (or --files-from LIST), or one stream")
        }
        if files.contains("") { throw ValidationError("an empty argument names no file") }
        if StandardStream.inputClosedAtStart, files.contains("-") || filesFrom.contains("-") {
            throw ValidationError("\(files.contains("-") ? "-" : "--files-from -"): standard input is closed (<&-): there is nothing to read")
        }
        // A closed input was held with /dev/null above: said as closed, not as this.
        if !StandardStream.inputClosedAtStart, files.contains("-"), let empty = StandardStream.emptyInput {
            throw ValidationError("-: standard input is \(empty): there is nothing to read")
        }
        if let format, let problem = LiveSource.formatProblem(format) { throw ValidationError("--format: \(problem)") }
    }

    /// The longest list `--files-from` reads: a million paths of 64 bytes.
    static let maximumListBytes = 64 << 20
    /// The most files one call takes (each costs a few hundred bytes until the answers are printed):
    /// a list of short lines within `maximumListBytes` would otherwise need gigabytes.
    static let maximumListedFiles = 100_000

    /// The arguments, then each `--files-from` list's lines in turn (LF or CRLF; blank lines skipped).
    /// `-` reads a list from standard input (`find data -name '*.wav' | emopipe predict --run R --files-from -`).
    func mediaFiles() throws -> [String] {
        var all = files
        for list in filesFrom {
            let data = list == "-" ? try Self.standardInputList() : try Self.listFile(list)
            guard let text = String(data: data, encoding: .utf8) else { throw UsageError("--files-from: \(list.echoed) is not UTF-8 text") }
            let count = Self.listedLines(text)
            guard count <= Self.maximumListedFiles - all.count else {
                throw UsageError("--files-from: \(list.echoed) names \(count) files\(all.isEmpty ? "" : " (and \(all.count) given before it)"); "
                                 + "at most \(Self.maximumListedFiles) are taken in one call: split the list")
            }
            // Split on any line break (a CRLF pair is one Character, so splitting on "\n" alone misses it);
            // a line of only spaces or tabs names nothing.
            all += text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.allSatisfy { $0 == " " || $0 == "\t" } }
        }
        guard !all.isEmpty else {
            throw UsageError("--files-from: \(filesFrom.map(\.echoed).joined(separator: ", ")) name\(filesFrom.count == 1 ? "s" : "") no file")
        }
        return all
    }

    /// The lines of `text` that are not blank, counted without making them (the split `mediaFiles` does).
    static func listedLines(_ text: String) -> Int {
        var count = 0, lineHasContent = false
        for scalar in text.unicodeScalars {
            // Character.isNewline's scalars: LF, VT, FF, CR, NEL, LS, PS.
            if (0x0A...0x0D).contains(scalar.value) || [0x85, 0x2028, 0x2029].contains(scalar.value) {
                if lineHasContent { count += 1 }
                lineHasContent = false
            } else if scalar != " " && scalar != "\t" {
                lineHasContent = true
            }
        }
        return count + (lineHasContent ? 1 : 0)
    }

    private static func listFile(_ list: String) throws -> Data {
        let opened: (descriptor: Int32, size: Int64)
        do { opened = try RegularFile.openForReading(list) } catch {
            let pipeHint = "\(error)".contains(RegularFile.notRegular) ? " (to read a list from a pipe, give --files-from - and pipe it in)" : ""
            throw UsageError("--files-from: \(error)\(pipeHint)")
        }
        defer { close(opened.descriptor) }
        guard opened.size <= Int64(Self.maximumListBytes) else {
            throw UsageError("--files-from: \(list.echoed) holds \(opened.size) bytes; at most \(Self.maximumListBytes) are read")
        }
        return FileHandle(fileDescriptor: opened.descriptor, closeOnDealloc: false).readDataToEndOfFile()
    }

    /// Standard input to its end, refused once it passes the bound (a pipe's size is not known ahead).
    private static func standardInputList() throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw UsageError("--files-from -: cannot read standard input: \(String(cString: strerror(errno)))") }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
            guard data.count <= Self.maximumListBytes else {
                throw UsageError("--files-from -: standard input holds more than \(Self.maximumListBytes) bytes; at most that is read")
            }
        }
    }

    /// Whose `runs/` a run folder is in: this command's work directory's, or another's (whose database is there).
    private enum RunOwner { case thisWorkDirectory, another(Workspace) }

    /// The work directory whose `runs/` holds `runFolder` (a resolved path), or nil for a folder elsewhere.
    private func owner(of runFolder: String) -> RunOwner? {
        let runs = PathText.folder(of: runFolder)
        if ResolvedPath.existing(workDirectoryOptions.workspace.runsRoot) == runs { return .thisWorkDirectory }
        let other = Workspace(root: PathText.folder(of: runs))
        guard ResolvedPath.existing(other.runsRoot) == runs, other.exists, other.missingDatabase == nil else { return nil }
        return .another(other)
    }

    /// The database whose rows judge a run folder of `owner`: this work directory's (refused when gone), or another's,
    /// a copy's too (`--run work-demo/runs/ID` without --workdir), found from where the folder really is; nil when that
    /// one cannot be opened (a newer schema, say), whose run is then read unchecked, as a folder copied out of any is.
    private static func store(of owner: RunOwner, _ workspace: Workspace) throws -> ProvenanceStore? {
        switch owner {
        case .thisWorkDirectory:
            if workspace.missingDatabase != nil {
                throw EmoError.io(path: workspace.root, reason: "runs/ is here but not emopipe.sqlite, the provenance database whose rows "
                    + "check a run's exported files (removed, or not copied with them): restore it; a run folder copied elsewhere is read without those checks")
            }
            return try workspace.openStore(.readOnly)
        case .another(let other):
            return try? other.openStore(.readOnly)
        }
    }

    /// The run whose export a run reused (nothing it reads changed, so it holds no model of its own), or nil
    /// when the run holds its own model or exported none.
    private static func exportHolder(runFolder: String, store: ProvenanceStore) throws -> String? {
        var facts = stat()
        guard lstat(runFolder + "/" + RunFile.weights.rawValue, &facts) != 0 else { return nil }
        let id = Workspace.runId(reference: runFolder)
        guard let export = try store.stageRuns(runId: id).first(where: { $0.stage == StageName.export.rawValue }),
              let producer = export.producedByRun, producer != id else { return nil }
        return producer
    }

    /// Said when the model of the run whose export `id` reused answers in its place.
    private static func noteReusedExport(of id: String, holder: String, folder: String) {
        let note = "emopipe: note: run \(id) holds no model of its own: it reused the export of run \(holder), whose model (in \(folder.escaped)) answers\n"
        StandardStream.error.write(Data(note.utf8))
    }

    /// Files named as recordings of actors the model learnt from (its fold's training or validation actors:
    /// with cross-validation, fold 0's model, which the others' test actors fed), said once: their answers
    /// are not those of an unseen speaker, nor evaluate's for a clip another fold tested.
    static func seenInTraining(_ paths: [String], learntFrom: (fold: Int, actors: [Int])) -> String? {
        let learnt = Set(learntFrom.actors)
        let actors = Set(paths.compactMap { path -> Int? in
            guard case .source(let codes) = RavdessName.parse(fileName: (path as NSString).lastPathComponent) else { return nil }
            return learnt.contains(codes.actor) ? codes.actor : nil
        }).sorted()
        guard !actors.isEmpty else { return nil }
        let named = actors.map { String(format: "%02d", $0) }.joined(separator: ", ")
        return "note: files named as recordings of actor\(actors.count == 1 ? "" : "s") \(named), whom this model (fold \(learntFrom.fold)) "
            + "was trained or validated on: their answers are not those of an unseen speaker"
    }

    /// How the run in `runFolder` gets an exported model, from its record when this work directory holds
    /// one: a sweep trial stops at evaluate, so its sweep's best.yaml is what trains and exports; another
    /// run's own manifest does, run to the export stage (`emopipe run --until export` would run the default one).
    private func exportAdvice(runFolder: String) -> String {
        let workspace = workDirectoryOptions.workspace
        guard let real = ResolvedPath.existing(runFolder), case .thisWorkDirectory? = owner(of: real),
              workspace.missingDatabase == nil, let store = try? workspace.openStore(.readOnly),
              let record = (try? store.run(id: Workspace.runId(reference: real))) ?? nil,
              let manifest = try? Manifest.parse(yaml: record.manifestJSON, path: record.manifestPath ?? "manifest.yaml")
        else { return Predictor.exportAdvice }
        let workdirOption = workDirectoryOptions.workdir == WorkDirectoryOptions.defaultWorkdir ? "" : " --workdir \(ShellWord.path(workspace.root))"
        if manifest.sweep != nil {
            let sweeps = SweepRunner.folders(ofSweepNamed: manifest.name, in: workspace)
            let best = sweeps.count == 1 ? sweeps[0].bestManifest : "\(workspace.sweepsRoot)/<its folder>/best.yaml"
            return "run \(record.id) is a trial of sweep \(manifest.name.echoed), and trials stop at evaluate: "
                + "`emopipe run \(ShellWord.path(best))\(workdirOption)` trains and exports the sweep's best settings"
        }
        guard let path = record.manifestPath else { return Predictor.exportAdvice }
        // The run's own settings: its --set overrides, and a data root or thread count given apart from the manifest.
        let overrides = ((try? Manifest.recordedOverrides(in: record.manifestJSON)) ?? []).flatMap { ["--set", "\($0.stage).\($0.key)=\($0.value.canonicalJSON)"] }
        let data = record.dataRoot != manifest.dataRoot ? ["--data", ShellWord.path(record.dataRoot)] : []
        let threads = record.threads != manifest.threads ? ["--threads", String(record.threads)] : []
        let words = ["emopipe", "run", ShellWord.path(path), "--until", "export"] + overrides + data + threads
        return "run the export stage with the run's own settings: `\(ShellWord.command(words))\(workdirOption)`"
    }

    /// The thread count the model's evaluation ran with, from the database of the work directory that holds the
    /// run folder: that of the run whose evaluate wrote its predictions (run `id` itself, or the one it found up to
    /// date), else of the run that trained the model (a run of `--only export` evaluated nothing). Products split
    /// over another count round differently on some CPUs' kernels (Haswell, Zen: 1e-6), and predict is to give
    /// evaluate's answers.
    private static func recordedThreads(runId id: String, store: ProvenanceStore) -> RecordedThreads {
        let stages = (try? store.stageRuns(runId: id)) ?? []
        let producer = [StageName.evaluate, .train].lazy.compactMap { name in
            stages.last { $0.stage == name.rawValue && [.done, .partial, .upToDate].contains($0.state) }.map { $0.producedByRun ?? id }
        }.first ?? id
        guard let record = (try? store.run(id: producer)) ?? nil else { return .unrecorded }
        // No run records a count outside the manifest's range: an edited database.
        guard (1...Manifest.maxThreads).contains(record.threads) else { return .outOfRange(runId: producer, threads: record.threads) }
        return .recorded(record.threads)
    }

    /// What a work directory's database says of the thread count a model was evaluated with.
    enum RecordedThreads {
        case recorded(Int)
        case unrecorded
        case outOfRange(runId: String, threads: Int)

        var count: Int? { if case .recorded(let count) = self { return count } else { return nil } }

        /// Why predict scores with one thread per core instead, said after "scored with one thread per core".
        func note(folder: String) -> String? {
            let consequence = "scored with one thread per core, so on some CPUs a probability may differ from evaluate's in the sixth decimal"
            switch self {
            case .recorded: return nil
            case .unrecorded:
                return "no work directory's database here records the thread count \(folder.shownPath)'s model was evaluated with "
                    + "(a folder copied elsewhere?): " + consequence
            case .outOfRange(let runId, let threads):
                return "the database records \(threads) threads for run \(runId.echoed), outside 1-\(Manifest.maxThreads) (an edited database?): "
                    + consequence
            }
        }
    }

    /// Whether the work directory's database records a run of this id (its folder may be gone).
    private func isRecorded(_ id: String) -> Bool {
        let workspace = workDirectoryOptions.workspace
        guard workspace.exists, let store = try? workspace.openStore(.readOnly) else { return false }
        return ((try? store.run(id: id)) ?? nil) != nil
    }

    /// The run folder `runReference` names: a path, an id, or the start of an id only one run has (as
    /// `diff` and `reproduce` take it; an ambiguous start is refused naming the runs it fits).
    private func runFolder() throws -> (folder: String, id: String) {
        let workspace = workDirectoryOptions.workspace
        let folder = workspace.runFolder(reference: runReference), id = Workspace.runId(reference: runReference)
        guard !runReference.isEmpty, !runReference.contains("/"), !FileManager.default.fileExists(atPath: folder),
              workspace.exists, let store = try? workspace.openStore(.readOnly) else { return (folder, id) }
        let resolved = try RunSummary.resolvedRunId(runReference, store: store, workspace: workspace)
        return (workspace.runFolder(resolved), resolved)
    }

    func run() throws {
        do {
            let found = try runFolder()
            var folder = found.folder
            let id = found.id
            // An empty reference would name the runs folder itself, and a file is no run either.
            var isFolder: ObjCBool = false
            guard !runReference.isEmpty, FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                let recordedFolder = workDirectoryOptions.workspace.runFolder(id)
                if !runReference.isEmpty, runReference != id, FileManager.default.fileExists(atPath: recordedFolder) {
                    // A path that leads nowhere, to a run this work directory holds (`../ID` from the wrong folder).
                    throw UsageError("no run folder '\(runReference.echoed)'; run \(id.echoed) is in \(recordedFolder.escaped): give that path or its id")
                }
                if !runReference.isEmpty, isRecorded(id) {
                    throw EmoError.io(path: recordedFolder, reason: "run \(id.echoed) is recorded, but its folder "
                                      + "is gone (removed?): its model with it; run the manifest again to make one")
                }
                // A run id with no work directory to look in: said as every command that reads one says it (exit 1).
                if !runReference.isEmpty, !runReference.contains("/"), !workDirectoryOptions.workspace.exists {
                    throw workDirectoryOptions.noWorkDirectory
                }
                throw UsageError("no run '\(runReference.echoed)': neither a run folder nor a run id in \(workDirectoryOptions.workspace.runsRoot) (see `emopipe runs`)")
            }
            // Every run folder holds the manifest its run recorded, and an export the model: a folder with neither
            // (`--run /etc`, `--run .`) is no run's, a wrong argument rather than a run still to export.
            // (lstat: a model file that is a dangling link is there, and Predictor names what is wrong with it.)
            if ![RunFile.manifest, .modelDescription, .weights, .onnx, .int8Onnx].contains(where: { var facts = stat(); return lstat($0.path(in: folder), &facts) == 0 }) {
                throw UsageError("--run \(runReference.echoed): a folder, but no run's (it holds no \(RunFile.manifest.rawValue) "
                                 + "and no exported model); give a run id or folder (see `emopipe runs`)")
            }
            // A run folder of a work directory (this one, or another, a copy too) must hold the files its export recorded
            // there; a run folder copied out of any work directory has no rows to be judged by.
            // With this one's database gone they cannot be checked: refused, as every other command refuses such a directory.
            let workspace = workDirectoryOptions.workspace
            // Read from the database that checks the folder (nil for a folder no work directory holds).
            var threads = RecordedThreads.unrecorded
            if let runFolder = ResolvedPath.existing(folder), let owner = owner(of: runFolder), let store = try Self.store(of: owner, workspace) {
                // The id its real folder has (the reference may be a link beside it).
                let realId = Workspace.runId(reference: runFolder)
                let holder = try Self.exportHolder(runFolder: runFolder, store: store)
                threads = Self.recordedThreads(runId: holder ?? realId, store: store)
                if let holder {
                    switch owner {
                    case .thisWorkDirectory: folder = workspace.runFolder(holder)
                    case .another: folder = PathText.folder(of: runFolder) + "/" + holder
                    }
                    guard FileManager.default.fileExists(atPath: folder) else {
                        throw EmoError.io(path: folder, reason: "run \(realId) reused the export of run \(holder), whose folder is gone "
                                          + "(removed?): its model with it; run the manifest again to make one")
                    }
                }
                try ExportStage.checkRecordedPredictFiles(runFolder: holder == nil ? runFolder : folder, runId: holder ?? realId, store: store)
                if let holder { Self.noteReusedExport(of: realId, holder: holder, folder: folder) }
            }
            let predictor = try Predictor(run: folder, hopSeconds: hop, exportAdvice: exportAdvice(runFolder: folder), threads: threads.count)
            if let note = threads.note(folder: folder) {
                StandardStream.error.write(Data("emopipe: note: \(note)\n".utf8))
            }
            if !predictor.checksFeatures {
                // Exports before 2026-12-05 recorded none; the key taken out of a newer model.json reads the same.
                StandardStream.error.write(Data(("emopipe: note: \(TrainedModel.fileName) records no features_sha256 (an export before 2026-12-05, "
                    + "or the key was taken out): \(RunFile.features.rawValue) is used unchecked; exporting the run again records it\n").utf8))
            }
            if let stream = streamInput { return try runStream(stream, predictor: predictor) }
            // A line no path can be (a list with a stray blob in it) is a failure of its own, shown cut,
            // and never reaches the path handling below, which would take seconds over megabytes of it.
            var (files, overlong) = ([String](), [String]())
            for line in try mediaFiles() {
                if line.utf8.count < PATH_MAX { files.append(line) } else { overlong.append(line) }
            }
            for line in overlong {
                StandardStream.error.write(Data("emopipe: \(line.echoed): a path of \(line.utf8.count) bytes is longer than a path can be (\(PATH_MAX))\n".utf8))
            }
            var failed = overlong.count
            // SIGINT or SIGTERM: no further file is started, the answers so far are printed, exit 130.
            // (Set once the list is read: until then a signal ends a blocked read of standard input at once.)
            let cancellation = Cancellation()
            let signals = SignalTrap(cancellation: cancellation, stopping: "stopping after the file in hand; the answers so far are printed")
            var predictions: [Predictor.Prediction] = []
            // Quiet for the usual few files; a long list shows, pass by pass, files done, rate and ETA.
            let progress = { (pass: Predictor.Pass) in ProgressReporter(label: pass.label, total: files.count, unit: "files", quietFor: 2) }
            let results = predictor.predict(paths: files, progress: progress, cancellation: cancellation)
            // Kept until the answers are out: a signal while they are written must not end the process with none.
            defer { signals.restore() }
            for (file, result) in zip(files, results) {
                switch result {
                case .success(let prediction):
                    predictions.append(prediction)
                    for (missing, error, used) in [("speech", prediction.audioError, "faces"), ("pictures", prediction.videoError, "speech")] {
                        // The line names the file: an error about that same file is not prefixed with it again.
                        guard let error = error?.withoutLead(file) else { continue }
                        StandardStream.error.write(Data("emopipe: \(file.escaped): the \(missing) could not be read (\(error.escaped)); answered from the \(used) alone (evaluate does so for a clip whose \(missing) failed its feature stage)\n".utf8))
                    }
                    if let passed = prediction.speechPassedOver, let speech = prediction.speechFile {
                        StandardStream.error.write(Data("emopipe: \(file.escaped): speech read from \(speech.escaped), as the pipeline does when the clip's better file cannot be read (\(passed.escaped))\n".utf8))
                    }
                case .failure(let error):
                    failed += 1
                    let message = "\(error)"
                    // The error names the file as the line does (a NUL byte in it is spelt \0 there): once is enough.
                    let named = message.withoutLead(file)
                    let reason = named != message ? named : message.withoutLead(file.replacingOccurrences(of: "\0", with: "\\0"))
                    // A stream holds only the windows in flight, so it takes a recording of any length.
                    let hint = switch error {
                    case FeatureError.tooLong: " (stream it instead: emopipe predict --run \(ShellWord.of(runReference))"
                        + (workDirectoryOptions.workdir == "work" ? "" : " --workdir \(ShellWord.of(workDirectoryOptions.workdir))")
                        + " - < \(ShellWord.of(file)))"
                    default: ""
                    }
                    StandardStream.error.write(Data("emopipe: \(file.escaped): \(reason.escaped)\(hint.escaped)\n".utf8))
                }
            }
            if predictor.groupsSpeakers, !predictions.isEmpty {
                let groups = Dictionary(predictions.compactMap { $0.speaker.map { ($0.name, $0) } }, uniquingKeysWith: { a, _ in a })
                // By actor number (actor 2 before actor 10), the unnamed group last.
                let byActor = groups.values.sorted { ($0.actor ?? Int.max) < ($1.actor ?? Int.max) }
                let recorded = byActor.filter { $0.statistics == .recorded }.map(\.name)
                func listed(_ statistics: Predictor.SpeakerGroup.Statistics) -> [String] {
                    byActor.filter { $0.statistics == statistics }.map { "\($0.name) (\($0.files) file\($0.files == 1 ? "" : "s"): \(predictor.whyNotRecorded($0)))" }
                }
                let (given, blended) = (listed(.given), listed(.blended))
                if !recorded.isEmpty {
                    StandardStream.error.write(Data(("emopipe: this model normalises each speaker's log-mels; the files of \(recorded.joined(separator: ", ")) "
                        + "are all the run's own, so the run's statistics of \(recorded.count == 1 ? "that actor" : "those actors") (recorded by export, as evaluate takes them) normalised them\n").utf8))
                }
                if !blended.isEmpty {
                    StandardStream.error.write(Data(("emopipe: this model normalises each speaker's log-mels with statistics from the files given together, "
                        + "blended with its training actors' as if \(Int(SpeakerPrior.seconds)) s of their speech were among them (so a file alone is not "
                        + "normalised by itself): \(blended.joined(separator: ", "))\n").utf8))
                }
                if !given.isEmpty {
                    StandardStream.error.write(Data(("emopipe: this model normalises each speaker's log-mels with statistics from the files given together: "
                        + "\(given.joined(separator: ", "))\n").utf8))
                }
            }
            if let note = Self.seenInTraining(predictions.map(\.path), learntFrom: predictor.learntFrom) {
                StandardStream.error.write(Data("emopipe: \(note)\n".utf8))
            }
            if json {
                StandardStream.output.write(try JSONOutput.encoder().encode(predictions) + Data("\n".utf8))
            } else {
                for p in predictions {
                    // Text is for a terminal: a file name or label holding a line break or an escape is shown escaped (--json keeps it exact).
                    let top = p.probabilities.sorted { $0.value > $1.value }.prefix(3)
                        .map { String(format: "%@ %.2f", $0.key.escaped, $0.value) }.joined(separator: ", ")
                    print("\(p.path.escaped): \(p.label.escaped) (\(top))" + (p.timeline.isEmpty ? "" : ", \(p.timeline.count) windows"))
                    for w in p.timeline { print(String(format: "  %6.2f–%6.2f s  %@", w.start, w.end, w.label.escaped)) }
                }
            }
            if results.count < files.count {
                let cause = results.isEmpty && predictor.groupsSpeakers
                    ? " (this model's answers need every file's speaker statistics, and the files were not all read yet)" : ""
                StandardStream.error.write(Data("emopipe: interrupted: \(results.count) of \(files.count) files answered\(cause)\n".utf8))
                throw ExitCode(ExitStatus.interrupted)
            }
            if failed > 0 { throw ExitCode(ExitStatus.partial) }
        } catch {
            throw Failure.exit(for: error)
        }
    }
}

