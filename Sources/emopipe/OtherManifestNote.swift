import EmoCore
import EmoStore
import Foundation

/// Commands that judge a work directory by a manifest take the default one when none is given. When the
/// directory's last run used another (the holdout protocol, the demo), what they find (stale stages, no
/// record, a source outside the data root) may be the default manifest's doing: said, with the command that
/// judges by the run's own manifest.
struct OtherManifestNote {
    let workDirectory: WorkDirectoryOptions
    /// The command with the manifest left out, as the note's suggestion spells it (`["emopipe", "status"]`).
    let command: [String]
    /// The arguments that follow the manifest in the suggestion (`["--stage", "audio", …]`; paths through `ShellWord.path`).
    var rest: [String] = []

    /// A command's `--set`, `--data` and `--threads` as given, for the suggestion to repeat: without them
    /// it would judge other settings.
    static func arguments(of options: ManifestOptions) -> [String] {
        options.settings.flatMap { ["--set", $0] } + (options.data.map { ["--data", ShellWord.path($0)] } ?? [])
            + (options.threads.map { ["--threads", $0] } ?? [])
    }

    /// The work directory's newest run that was given a manifest (not a worker's), if any.
    var lastRun: RunRecord? {
        let workspace = workDirectory.workspace
        guard workspace.exists, let store = try? workspace.openStore(.readOnly) else { return nil }
        return (try? store.runs(limit: 20).first(where: { $0.worker == nil && $0.manifestPath != nil })) ?? nil
    }

    /// The suggested command, judging by `manifest` in this work directory, each word quoted for a shell.
    func suggestion(_ manifest: String) -> String {
        let workdir = workDirectory.workdir
        return ShellWord.command(command + [ShellWord.path(manifest)] + rest
                                 + (workdir == WorkDirectoryOptions.defaultWorkdir ? [] : ["--workdir", ShellWord.path(workdir)]))
    }

    /// The last run's manifest and what to do with it: the command that judges by it, or that it is gone.
    private func usedBy(_ last: RunRecord) -> String? {
        guard let used = last.manifestPath, !used.isEmpty else { return nil }
        guard FileManager.default.fileExists(atPath: used) else { return "used \(used.echoed), which is no longer there" }
        return "used \(used.echoed): `\(suggestion(used))` judges against it"
    }

    /// The note when `judgedBy` (the default manifest) is not what the last run used; nil otherwise.
    func text(judgedBy manifest: String) -> String? {
        guard let last = lastRun, last.manifestPath != manifest, let used = usedBy(last) else { return nil }
        return "note: judged against \(manifest.echoed), the default manifest; the last run here (\(last.id)) \(used)"
    }

    /// The note when no manifest was given and the default one is not in the current folder.
    func textWithoutDefault() -> String? {
        guard !FileManager.default.fileExists(atPath: ManifestArguments.defaultManifest), let last = lastRun, let used = usedBy(last) else { return nil }
        return "note: no manifest was given, and \(ManifestArguments.defaultManifest) is not in this folder; the last run here \(used)"
    }

    func write(_ text: String?) {
        guard let text else { return }
        StandardStream.error.write(Data((text + "\n").utf8))
    }
}
