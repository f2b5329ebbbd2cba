import EmoNN
import ArgumentParser
import EmoCore
import EmoMedia
import EmoPipeline
import EmoStages
import EmoStore
import Foundation

@main
struct EmoPipeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emopipe",
        abstract: "Turn the RAVDESS audio-visual emotion dataset into a trained, evaluated, exported model.",
        discussion: Help.reflow("""
        Stages run in dependency order from a pipeline file (pipelines/ravdess.yaml) under an experiment
        manifest (manifests/*.yaml). Every stage is resumable: work already done for the same inputs,
        parameters and stage code is skipped. Provenance lives in WORKDIR/emopipe.sqlite; commands that only
        read it (status, sources, show, runs, diff, cache stats, cache get, cache export, cache gc --dry-run) open it read-only, and a file
        there that is empty or not EmoPipe's is refused (exit 1), never replaced. --json output has
        snake_case keys.

        Exit status: 0 done; 3 finished but some sources failed; 4 metrics worsened by more than the
        manifest's tolerance; 75 the work directory is locked by a live run; 64 usage error;
        130 interrupted; 1 any other error.
        """),
        subcommands: [RunCommand.self, NightlyCommand.self, StatusCommand.self, ParamsCommand.self, SourcesCommand.self, ShowCommand.self, RunsCommand.self,
                      DiffCommand.self, ReproduceCommand.self, MergeCommand.self, SweepCommand.self, CacheCommand.self, FacesCommand.self, PredictCommand.self])

    /// `--version` belongs to emopipe itself, not to its commands (ArgumentParser's own `version`
    /// would answer `emopipe run --version` too): `main` answers `emopipe --version` before parsing,
    /// and this flag, there for the help, only meets a `--version` given anywhere else.
    @Flag(help: "Print the version and the GEMM kernels in use, and exit.")
    var version = false

    static var versionText: String { "\(EmoPipeVersion.string)\nGEMM: \(StageCatalog.gemmKernel)" }

    func validate() throws {
        if version { throw ValidationError("--version goes alone, right after emopipe: `emopipe --version`") }
    }

    /// Reached only when no command was named: the help, and a usage error (exit status 64).
    func run() throws { throw Self.noCommandNamed(Self.self, path: "emopipe") }

    /// A command group (`emopipe`, `emopipe cache`) run without one of its commands: its help on stderr,
    /// and the usage error (exit status 64) to throw.
    static func noCommandNamed(_ group: any ParsableCommand.Type, path: String) -> ExitCode {
        StandardStream.error.write(Data((helpMessage(for: group) + "\n\n\(path): say which command to run (see SUBCOMMANDS above)\n").utf8))
        return ExitCode(ExitStatus.usage)
    }

    /// `emopipe help NAME...` for a command path that does not exist: ArgumentParser would print the
    /// top-level help and exit 0, which hides the typo from a script. Returns the message, or nil.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help" else { return nil }
        var names = CommandTree(EmoPipeCommand.configuration.subcommands).children
        var path = ["emopipe"]
        for name in arguments.dropFirst() {
            if name.hasPrefix("-") { continue }
            guard let children = names[name] else {
                let known = names.keys.sorted().joined(separator: ", ")
                return names.isEmpty ? "`\(path.joined(separator: " "))` has no commands; no help on '\(name)'"
                    : "no command '\(name)' in `\(path.joined(separator: " "))` (commands: \(known))"
            }
            names = children.children
            path.append(name)
        }
        return nil
    }

    /// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose default action kills the
    /// process without a word. Ignored, the write fails with EFBIG instead, and the error that names
    /// the file reaches the user like any other (exit status 1).
    ///
    /// The BLAS kernels are chosen first, before any thread can call BLAS (EmoNN's `GEMMKernel`).
    static func main() {
        StandardStream.holdClosedDescriptors()
        SignalTrap.installAtStart()
        signal(SIGXFSZ, SIG_IGN)
        // A reader of stdout that went away (`| head`) would kill the process silently (SIGPIPE, exit 141,
        // outside the documented statuses); ignored, the failed write ends it with status 1, saying why.
        signal(SIGPIPE, SIG_IGN)
        OpenFileLimit.raiseSoftLimit()
        if let problem = Engine.addressSpaceShortfall(threads: 0) {
            // _exit: exit() would wait for OpenBLAS's threads, stuck retrying what the limit refused.
            StandardStream.error.write(Data("emopipe: \(problem)\n".utf8))
            _exit(ExitStatus.failure)
        }
        StandardStream.checkBufferedOutputAtExit()
        let kernel = StageCatalog.gemmKernel
        Log.logger("emopipe").debug("GEMM: \(kernel)")
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments == ["--version"] {
            print(versionText)
            Foundation.exit(0)
        }
        if let message = OpenFileLimit.tooLowToRun ?? StackLimit.tooLowToRun ?? ThreadLimit.tooLowToRun {
            StandardStream.error.write(Data("emopipe: \(message)\n".utf8))
            Foundation.exit(ExitStatus.failure)
        }
        if let message = nonUTF8Argument() ?? overlongArgument(arguments) ?? unknownHelpTopic(arguments) ?? repeatedOption(arguments) {
            StandardStream.error.write(Data("emopipe: \(message)\n".utf8))
            Foundation.exit(ExitStatus.usage)
        }
        runRoot()
    }

    /// ArgumentParser's `main`, with its messages' control characters spelt out: a value it refuses is echoed
    /// as given (`--limit $'1\e[31m'`), which would steer the terminal. Help and usage lines are kept.
    static func runRoot() -> Never {
        do {
            var command = try parseAsRoot(nil)
            try command.run()
            Foundation.exit(ExitStatus.ok)
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                if !text.isEmpty { print(text) }
            } else if !text.isEmpty {
                // The arguments it quotes are spelt out whole first (a line feed in a value would start a line of
                // its own), then what is left of the message line by line.
                var quoted = text
                for argument in CommandLine.arguments.dropFirst() {
                    for value in [argument, String(argument.drop { $0 != "=" }.dropFirst())] where !value.isEmpty && value.escaped != value {
                        quoted = quoted.replacingOccurrences(of: "'\(value)'", with: "'\(value.escaped)'")
                    }
                }
                let shown = quoted.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).escaped }.joined(separator: "\n")
                StandardStream.error.write(Data((shown + "\n").utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }

    /// Why an argument cannot be taken as given, or nil: Swift reads arguments as UTF-8, each bad byte
    /// becoming U+FFFD, so a name with one would name another file, none, or make one with U+FFFD in it.
    static func nonUTF8Argument() -> String? {
        for index in 1..<max(1, Int(CommandLine.argc)) {
            if let argument = CommandLine.unsafeArgv[index], let shown = InvalidUTF8.shown(ifInvalid: argument) {
                return "\(shown.echoed): argument \(index) is not valid UTF-8 (shown here with \\x escapes); "
                    + "emopipe takes names and values in UTF-8 only (rename the file or folder)"
            }
        }
        return nil
    }

    /// Why an argument is too long to be taken, or nil: no path reaches PATH_MAX bytes, so such an argument
    /// is a mistake (a blob pasted in), refused before it is echoed whole in some message (100 KB of stderr)
    /// or looked up. Free text may be longer: a `--set` value (bounded by the manifest's size), and predict's
    /// stream input (a URL with its token, a `--format lavfi` graph), which is never an option's value.
    static func overlongArgument(_ arguments: [String]) -> String? {
        let predict = arguments.first == "predict"
        let formatGiven = arguments.contains { $0 == "--format" || $0.hasPrefix("--format=") }
        var previous = "", positionalOnly = false
        for (index, argument) in arguments.enumerated() {
            defer { previous = argument }
            if argument == "--" && !positionalOnly { positionalOnly = true; continue }
            // An option's value follows an option that takes one (predict's one flag, --json, takes none).
            let optionValue = !positionalOnly && previous.hasPrefix("-") && !previous.contains("=") && previous != "--json"
            let streamInput = predict && !optionValue && (formatGiven || LiveSource.isStream(argument))
            guard argument.utf8.count >= PATH_MAX, !(previous == "--set" && optionValue), !argument.hasPrefix("--set="),
                  !streamInput else { continue }
            let after = optionValue ? ", after \(previous.echoed)," : ""
            return "\(argument.echoed): argument \(index + 1)\(after) is \(argument.utf8.count) bytes long, "
                + "longer than a path can be (at most \(PATH_MAX - 1) bytes)"
        }
        return nil
    }

    /// The options that may be given more than once; any other given twice is refused (the argument
    /// parser keeps the last one without a word, so `--until train --until audio` stopped at audio).
    static let repeatableOptions: Set<String> = ["--set", "--force", "--files-from"]
    /// Options with a second name, by that name: given once by each name is given twice.
    static let optionAliases = ["--fingerprint": "--cache-key"]

    /// Why the arguments name one option twice, or nil (only options up to a bare `--` count).
    static func repeatedOption(_ arguments: [String]) -> String? {
        var seen: Set<String> = []
        for argument in arguments.prefix(while: { $0 != "--" }) where argument.hasPrefix("--") && argument.count > 2 {
            let given = String(argument.prefix { $0 != "=" }), name = optionAliases[given] ?? given
            guard !repeatableOptions.contains(name) else { continue }
            guard seen.insert(name).inserted else {
                return given == name ? "\(name.echoed) is given twice: give it once" : "\(given.echoed) is \(name) given again: give it once"
            }
        }
        return nil
    }
}

/// The commands under a command, by name.
struct CommandTree {
    var children: [String: CommandTree] = [:]

    init(_ commands: [ParsableCommand.Type]) {
        for command in commands {
            let name: String = command._commandName
            children[name] = CommandTree(command.configuration.subcommands)
        }
    }
}

/// Options every command that reads a work directory shares.
struct WorkDirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "The work directory (provenance database, cache, runs); $EMOPIPE_WORKDIR when set.")
    var workdir: String = Self.defaultWorkdir

    /// What --workdir means when not given: $EMOPIPE_WORKDIR when set, else `work`.
    static var defaultWorkdir: String { ProcessInfo.processInfo.environment["EMOPIPE_WORKDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "work" }

    var workspace: Workspace { Workspace(root: workdir) }

    /// An empty path would quietly mean the current folder, and a file can hold no work directory.
    func validate() throws {
        // The value may come from the environment: the message names both places it can be given.
        let option = "--workdir (or $EMOPIPE_WORKDIR)"
        if workdir.isEmpty { throw ValidationError("\(option) '': an empty path names no folder") }
        // Swift reads the variable as UTF-8, a bad byte becoming U+FFFD: a work directory so named was made beside the one meant.
        if workdir == Self.defaultWorkdir, let value = getenv("EMOPIPE_WORKDIR"), let shown = InvalidUTF8.shown(ifInvalid: value) {
            throw ValidationError("$EMOPIPE_WORKDIR \(shown.echoed) is not valid UTF-8 (shown here with \\x escapes); "
                                  + "emopipe takes names in UTF-8 only (rename the folder, or give --workdir)")
        }
        // A relative path from a current folder that was deleted leads nowhere ("work: cannot create the folder").
        if !workdir.hasPrefix("/"), ResolvedPath.of(".") == nil {
            throw ValidationError("\(option) \(workdir.echoed) is relative, and the current folder is gone (deleted): "
                                  + "cd to a folder that exists, or give the work directory as an absolute path")
        }
        // Paths recorded through /proc/self/cwd would mean another folder to every other process (and to `show` later).
        if let refusal = KernelFilesystem.rootRefusal(workdir, as: .workDirectory) {
            throw ValidationError("\(option) \(workdir.echoed): \(refusal)")
        }
        var info = stat()
        if stat(workdir, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw ValidationError("\(option) \(workdir.echoed): exists and is not a folder") }
        } else if errno != ENOENT {
            // Not missing (a new work directory would be made there) but unusable: a link loop, a path
            // too long, a file or an unsearchable folder on the way.
            throw ValidationError("\(option) \(workdir.echoed): cannot be used as a work directory: \(String(cString: strerror(errno)))")
        }
    }

    /// Refuses a work directory among another one's own files, for a command that writes it (run, sweep, nightly,
    /// merge): commands that only read may look from anywhere (`predict --run .` inside a run folder). So too a
    /// link to nothing on the way to it, or a path too long for SQLite, judged before any folder or lock file is made.
    func requireOwnPlace() throws {
        if let refusal = Self.nestingRefusal(workdir) { throw ValidationError("--workdir (or $EMOPIPE_WORKDIR) \(workdir.echoed): \(refusal)") }
        try requireCreatable()
    }

    /// What a run would refuse of a work directory still to be made, said alike by a dry run (which exited 1 for a link to
    /// nothing, and 0 for a path SQLite cannot open).
    func requireCreatable() throws {
        let option = "--workdir (or $EMOPIPE_WORKDIR) \(workdir.echoed)"
        var facts = stat()
        if stat(workdir, &facts) != 0, let link = Folder.danglingLink(onPathTo: workdir) {
            throw ValidationError("\(option): \(link.echoed) is a link to a folder that does not exist: remove it or create its target")
        }
        if let problem = workspace.databasePathProblem { throw ValidationError("\(option): \(problem)") }
    }

    /// Why `path` can be no work directory for lying among another one's own files, or nil.
    static func nestingRefusal(_ path: String) -> String? {
        guard let (enclosing, folder) = Workspace.enclosingOwnFolder(of: path) else { return nil }
        return "lies in \(folder.echoed), a folder of the work directory \(enclosing.root.echoed) whose files EmoPipe manages "
            + "(`cache gc` there would remove this one's as leftovers): give a folder of its own"
    }

    /// The provenance store of an existing work directory, or a clear error. Read-only unless the
    /// command changes the work directory, so a read-only work directory can be inspected.
    func openStore(_ access: Workspace.Access = .readOnly) throws -> ProvenanceStore {
        guard workspace.exists else { throw noWorkDirectory }
        return try workspace.openStore(access)
    }

    /// What a command that reads the work directory says when there is none (or only its folders).
    var noWorkDirectory: EmoError {
        EmoError.io(path: workspace.root, reason: workspace.missingDatabase ?? Workspace.noneHere)
    }
}

/// The manifest and its `--set` overrides: what a command that reads a manifest's parameters takes.
struct ManifestArguments: ParsableArguments {
    static let defaultManifest = "manifests/default.yaml"

    // Optional rather than defaulted, so that a command can tell a manifest left out (status says which it judged by).
    @Argument(help: ArgumentHelp("The experiment manifest (default: \(Self.defaultManifest)).", valueName: "manifest"))
    var given: String?

    var manifest: String { given ?? Self.defaultManifest }

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override one stage parameter, as the manifest's params would (repeatable); the value is YAML, e.g. train.epochs=10, train.audio_channels=[8,16], audio.fmax=null (an empty value, or a key given twice, is refused).",
        valueName: "stage.key=value"))
    var settings: [String] = []

    func load() throws -> Manifest { try explainingDefault { try ManifestOptions.load(path: manifest, data: nil, settings: settings) } }

    /// The default manifest is a path relative to the current folder: missing there (emopipe run from elsewhere than the
    /// checkout), the refusal says so and what to do, not only that a file cannot be read.
    func explainingDefault<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            var facts = stat()
            guard given == nil, lstat(Self.defaultManifest, &facts) != 0, errno == ENOENT else { throw error }
            throw UsageError("no manifest was given, and the default one, \(Self.defaultManifest), is not in this folder "
                             + "(\(FileManager.default.currentDirectoryPath.echoed)): run emopipe from the checkout's root, or name a manifest")
        }
    }
}

/// Options of commands that run stages or judge them against data: the manifest, with the data root
/// and thread count a run would use.
struct ManifestOptions: ParsableArguments {
    @OptionGroup var arguments: ManifestArguments

    @Option(name: .long, help: "The data root, instead of the one the work directory remembers or the manifest's `data` (a run remembers the one it used).")
    var data: String?

    var manifest: String { arguments.manifest }
    var settings: [String] { arguments.settings }

    // Unconditional: `--threads -1` is then a value to refuse by name, not an unknown flag "-1".
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Worker threads, instead of the manifest's top-level `threads` (1-\(Manifest.maxThreads)). Training's results depend on it, so it joins train's and evaluate's fingerprints as the manifest's does (a run records it); the feature stages' records do not.",
        valueName: "n"))
    var threads: String?

    func load() throws -> Manifest { try arguments.explainingDefault { try withThreads(Self.load(path: manifest, data: data, settings: settings)) } }

    /// The manifest with the data root `workspace` judges against (see `DataRootChoice`).
    func load(in workspace: Workspace) throws -> (manifest: Manifest, dataRoot: DataRootChoice) {
        let (loaded, choice) = try arguments.explainingDefault { try Self.load(path: manifest, data: data, settings: settings, in: workspace) }
        return (try withThreads(loaded), choice)
    }

    /// `--threads` laid over the manifest's `threads`.
    private func withThreads(_ loaded: Manifest) throws -> Manifest {
        guard let text = self.threads else { return loaded }
        // Read here, not by the argument parser: a number too long for Int is then out of range by name,
        // as -1 is, not "invalid for '--threads <n>'".
        guard let threads = Int(text), (1...Manifest.maxThreads).contains(threads) else {
            throw UsageError("--threads \(text.echoed): " + (text.isWholeNumberText ? "out of range; " : "")
                             + "expected an integer from 1 to \(Manifest.maxThreads)")
        }
        var manifest = loaded
        if threads != loaded.threads { manifest.threadsOverride = threads }
        manifest.threads = threads
        return manifest
    }

    static func load(path: String, data: String?, settings: [String], in workspace: Workspace) throws -> (manifest: Manifest, dataRoot: DataRootChoice) {
        var manifest = try load(path: path, data: nil, settings: settings)
        let choice = try DataRootChoice.choose(option: data, workspace: workspace, manifestRoot: manifest.dataRoot, manifestPath: manifest.path)
        manifest.dataRoot = choice.path
        return (manifest, choice)
    }

    static func load(path: String, data: String?, settings: [String]) throws -> Manifest {
        var manifest = try Manifest.load(path: path)
        if let data { manifest.dataRoot = try DataRootChoice.path(ofOption: data) }
        manifest.commandLine = try settings.map(ParameterOverride.init(parsing:))
        // A run records the manifest with its --set lines: a record too large to read back could not be reproduced.
        let recorded = manifest.recordedText.utf8.count
        guard recorded <= SafeYAML.maxBytes else {
            throw UsageError("--set: the manifest with these overrides would be recorded as \(recorded) bytes; "
                             + "a manifest is read up to \(SafeYAML.maxBytes): give fewer or shorter --set values")
        }
        // As in a manifest, a key given twice is refused: the later value would drop the earlier without a word.
        var given: [String: String] = [:]
        for (setting, override) in zip(settings, manifest.commandLine) {
            let name = override.stage + "." + override.key
            if let earlier = given[name] {
                throw UsageError("--set \(name.echoed) is given twice (\(earlier.echoed), then \(setting.echoed)): give each key once")
            }
            given[name] = setting
        }
        return manifest
    }
}

/// The data root a command judges against and where it came from: `--data` when given, else the
/// root the work directory remembers from an earlier `run --data`, else the manifest's `data`.
/// Without the memory, `status` after `run --data X` would judge X's sources against the manifest's
/// folder and call them all stale.
struct DataRootChoice {
    enum Origin { case option, workDirectory, manifest }

    var path: String
    var origin: Origin
    /// The manifest whose `data` the root is, when it is.
    var manifestPath: String?

    static func choose(option: String?, workspace: Workspace, manifestRoot: String, manifestPath: String) throws -> DataRootChoice {
        if let option { return DataRootChoice(path: try path(ofOption: option), origin: .option) }
        if let remembered = try workspace.rememberedDataRoot() { return DataRootChoice(path: remembered, origin: .workDirectory) }
        return DataRootChoice(path: manifestRoot, origin: .manifest, manifestPath: manifestPath)
    }

    /// `--data`'s folder as an absolute path. An empty value would resolve to the current directory
    /// (and be remembered), so it is refused.
    static func path(ofOption option: String) throws -> String {
        guard !option.isEmpty else { throw UsageError("--data \"\": expected the data root's folder, got an empty path") }
        guard option.utf8.count < PATH_MAX else {
            throw UsageError("--data \(option.echoed): a path of \(option.utf8.count) bytes is longer than a path can be (\(PATH_MAX))")
        }
        // Foundation leaves a relative path relative when the current folder is gone, and it would be remembered so.
        if !option.hasPrefix("/"), ResolvedPath.of(".") == nil {
            throw UsageError("--data \(option.echoed) is relative, and the current folder is gone (deleted): give the data root as an absolute path")
        }
        return ResolvedPath.tidied(option)
    }

    /// Whether the root is a folder (following links).
    var isFolder: Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }

    /// One line naming the root and where it came from.
    var line: String {
        switch origin {
        case .option: return "data root \(path.echoed) (from --data)"
        case .workDirectory: return "data root \(path.echoed) (remembered by the work directory from an earlier --data; --data to use another)"
        case .manifest: return "data root \(path.echoed) (the manifest's data)"
        }
    }

    /// A command that reads the sources refuses a root that is not a folder, or that is the work directory
    /// itself (its database, cache and runs would be read as recordings), before anything runs or is written
    /// (exit 64), as it refuses a bad `--data` or manifest: no run is recorded as failed in ingest.
    func requireFolder(apartFrom workspace: Workspace) throws {
        guard isFolder else {
            // `announce` has said where the root came from, on the line before.
            throw UsageError(notAFolder)
        }
        if let refusal = KernelFilesystem.rootRefusal(path) { throw UsageError("\(path.echoed): \(refusal)") }
        var root = stat(), work = stat()
        if stat(path, &root) == 0, stat(workspace.root, &work) == 0, root.st_dev == work.st_dev, root.st_ino == work.st_ino {
            throw UsageError("\(path.echoed): the data root is also the work directory (\(workspace.root.echoed)): its database, cache and runs "
                             + "would be read as recordings; give the work directory (--workdir) a folder of its own")
        }
    }

    /// What is wrong with a root that is not a folder, and where the root was given.
    var notAFolder: String {
        let given = switch origin {
        case .option: "--data"
        case .workDirectory: "remembered by the work directory from an earlier --data"
        case .manifest: "given by \((manifestPath ?? "the manifest").echoed)"
        }
        return "\(path.echoed): the data root (\(given)) \(PathText.whyNotAFolder(path))"
    }

    /// Commands that only read go on with a root that is not a folder, saying so: `run` would refuse it.
    func warnUnlessFolder() {
        guard !isFolder else { return }
        StandardStream.error.write(Data("emopipe: warning: \(notAFolder); `run` refuses it (exit 64)\n".utf8))
    }

    /// Says `line` on stderr, leaving stdout to the command's own output (tables, JSON).
    func announce() { StandardStream.error.write(Data((line + "\n").utf8)) }

    /// A run given `--data` leaves its root for the commands that come after it. Failing to is
    /// said, not fatal: the run's own work is done (a full disk, say, already failed it).
    func remember(in workspace: Workspace) {
        // A root that is not a folder (the run failed on it) would only mislead the commands after it.
        guard origin == .option, isFolder else { return }
        // data-root.txt holds one path on one line: a folder name with a line break cannot be written there.
        guard !path.contains("\n") else {
            StandardStream.error.write(Data("emopipe: warning: the data root is not remembered: its path holds a line break; give --data each time\n".utf8))
            return
        }
        do { try workspace.rememberDataRoot(path) } catch {
            StandardStream.error.write(Data("emopipe: warning: the data root is not remembered: \(error)\n".utf8))
        }
    }
}

/// The manifest as an option, for commands whose positional arguments are files (`faces preview`).
struct NamedManifestOptions: ParsableArguments {
    @Option(name: .long, help: "The experiment manifest whose parameters to use.")
    var manifest: String = "manifests/default.yaml"

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one stage parameter (repeatable), e.g. faces.size=224.",
                                                         valueName: "stage.key=value"))
    var settings: [String] = []

    func load() throws -> Manifest { try ManifestOptions.load(path: manifest, data: nil, settings: settings) }
}

/// A command line that asks for something impossible (exit status 64), said in one line.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A number option in decimal notation (`1.5`, `2e-1`): Double alone would also read `0x10` as 16 and
/// `inf` as infinity, values nobody means by seconds. Other text is NaN, which the option's range check
/// refuses naming the text as given.
struct DecimalNumber: ExpressibleByArgument, Sendable {
    let value: Double
    /// As given, for messages (`1e400` is not shown as `inf`).
    let text: String

    init(_ value: Double) { (self.value, text) = (value, "\(value)") }

    init(argument: String) {
        let isDecimal = !argument.isEmpty && argument.allSatisfy { "0123456789+-.eE".contains($0) }
        (value, text) = ((isDecimal ? Double(argument) : nil) ?? .nan, argument)
    }

    var defaultValueDescription: String { value == value.rounded() ? String(Int(value)) : String(value) }
}

/// Hashes abbreviated on the command line (`show`'s SHA-256, `cache export --cache-key`), as git
/// takes commit hashes: at least this many hex digits, unique among what they could name.
enum HashPrefix {
    static let minimumLength = 4
    /// A whole SHA-256.
    static let maximumLength = 64

    /// ASCII hex digits only: Character.isHexDigit also takes the fullwidth forms, which no hash holds.
    static func isHex(_ text: String) -> Bool { text.allSatisfy { $0.isASCII && $0.isHexDigit } }

    /// What keeps `prefix` from being a hash prefix, said after it ("'…' is too short: …"); nil when it is one.
    static func problem(_ prefix: String) -> String? {
        guard isHex(prefix) else { return "is not hex digits (0-9, a-f)" }
        guard prefix.count >= minimumLength else { return "is too short: give at least \(minimumLength) hex digits" }
        guard prefix.count <= maximumLength else {
            return "is longer than a SHA-256 (\(prefix.count) hex digits, at most \(maximumLength))"
        }
        return nil
    }
}

/// Maps errors to the exit statuses scripts rely on, with a one-line message on stderr.
enum Failure {
    static func exit(for error: Error) -> ExitCode {
        if error is ExitCode { return error as! ExitCode }
        let status = error is UsageError ? ExitStatus.usage : ExitStatus.of(error)
        let message: String
        switch error {
        case let pipeline as PipelineError: message = pipeline.description
        case let usage as UsageError: message = usage.description
        case let emo as EmoError: message = emo.description
        case EncodingError.invalidValue(let value, let context):
            // JSON has no NaN or infinity: a result holding one (training diverged) cannot be written.
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            message = "cannot write a result: \(path.hasPrefix(".") ? String(path.dropFirst()) : path) is \(value), not a finite "
                + "number (training diverged, or the parameters made the features non-finite)"
        default: message = FileError.describe(error)
        }
        // SQLite says only "unable to open": under a low limit, that may be why.
        let note = status == ExitStatus.failure && message.contains("unable to open database file") && !message.contains("ulimit -n")
            ? OpenFileLimit.lowLimitNote.map { " (\($0))" } ?? "" : ""
        StandardStream.error.write(Data("emopipe: \(message.terminalSafe)\(note)\n".utf8))
        return ExitCode(status)
    }
}

extension JSONOutput {
    /// One JSON document on stdout, ending with a newline.
    static func print(_ value: ParamValue) {
        StandardStream.output.write(Data((value.canonicalJSON + "\n").utf8))
    }

    static func optional(_ value: Int?) -> ParamValue { value.map(ParamValue.int) ?? .null }
    static func optional(_ value: String?) -> ParamValue { value.map(ParamValue.string) ?? .null }
}

enum Help {
    /// Joins the lines of each prose paragraph so `--help` wraps them to the terminal; paragraphs
    /// with indented lines (examples, command lists) keep their line breaks.
    static func reflow(_ text: String) -> String {
        text.components(separatedBy: "\n\n").map { paragraph in
            let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: false)
            guard !lines.contains(where: { $0.hasPrefix(" ") }) else { return paragraph }
            return lines.joined(separator: " ")
        }.joined(separator: "\n\n")
    }
}
