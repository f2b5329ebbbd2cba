import EmoCore
import EmoModel
import EmoPipeline
import EmoStore
import Foundation

/// What one fold's gradient steps consume, as a digest: the stage's parameters and code, the fold's actors,
/// the model and training settings, and every training and validation clip's features and label as fed.
/// Train's fingerprint covers the whole audio and faces output, test clips included, so a fixed test recording
/// changes it; a fold whose digest is that of a fold trained before (under another fingerprint, still in the
/// cache) takes that fold's weights instead of training again: the same inputs give the same bytes.
struct FoldTrainingInputs {
    /// Beside a fold's weights: the digest of the inputs they were trained on.
    static let fileName = "training-inputs.sha256"

    let digest: String

    init(parameters: String, fold: ActorFold, train: [ClipFeatures], validation: [ClipFeatures], config: ModelConfig,
         training: TrainingConfig, policy: WindowPolicy, classWeights: [Float], labels: [String], untrained: [ModelConfig.Modality]) {
        var parts = SHA256Parts()
        parts.add("emopipe fold training inputs 1")
        parts.add(parameters)
        parts.add([fold.index] + [-1] + fold.train + [-1] + fold.validation)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for settings in [try? encoder.encode(config), try? encoder.encode(training), try? encoder.encode(policy)] {
            parts.add(Array(settings ?? Data()))
        }
        parts.add(classWeights)
        parts.add(labels.joined(separator: "\n"))
        parts.add(untrained.map(\.rawValue).joined(separator: ","))
        for (role, clips) in [("train", train), ("validation", validation)] {
            parts.add(role)
            for clip in clips {
                parts.add(clip.id)
                parts.add([clip.label, clip.melFrames, clip.logmel == nil ? 0 : 1, clip.faces == nil ? 0 : 1])
                parts.add(clip.logmel ?? [])
                parts.add(clip.faces ?? [])
                parts.add(clip.faceMask)
            }
        }
        digest = parts.hex
    }

    /// A fold trained before on these inputs, still whole: its folder, and the SHA-256 of each of its files.
    struct EarlierFold {
        var fingerprint: String
        var folder: URL
        var files: [String: String]
    }

    /// The earlier fold trained on these inputs whose files stand as recorded (a finished state that kept an epoch;
    /// its weights and description as the database has them, its last checkpoint as its state says: the trainer
    /// resumes from it, and would train again from epoch 1 without it), or nil. Each file is hashed once: the same
    /// hashes check it against its record and, later, its copy.
    func earlierFold(_ fold: Int, context: StageContext) throws -> EarlierFold? {
        let names = try context.store.outputFingerprints(stage: StageName.train.rawValue).filter { $0 != context.fingerprint.full }
        for name in names {
            let folder = URL(fileURLWithPath: context.workspace.trainFoldFolder(fingerprint: name, fold: fold))
            guard (try? RegularFile.text(folder.appendingPathComponent(Self.fileName).path)) == digest,
                  let state = TrainingState.read(inFolder: folder), state.finished, state.bestEpoch >= 0,
                  let checkpoint = state.checkpointSHA256,
                  let recorded = try TrainStage.recordedModels(context, fingerprint: name)[fold], !recorded.isEmpty,
                  let files = Self.hashes(of: folder),
                  files[Trainer.checkpointName(afterEpochs: state.epochs.count)] == checkpoint,
                  recorded.allSatisfy({ files[URL(fileURLWithPath: $0.path).lastPathComponent] == $0.sha256 }),
                  // The state is no recorded file: it must say what the recorded description says of the kept epoch.
                  (try? TrainedModel.description(in: folder))?.bestEpoch == state.bestEpoch else { continue }
            return EarlierFold(fingerprint: name, folder: folder, files: files)
        }
        return nil
    }

    /// Each regular file of a fold's folder by name, with its SHA-256; nil when one cannot be read.
    private static func hashes(of folder: URL) -> [String: String]? {
        var files: [String: String] = [:]
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []) {
            var facts = stat()
            let path = folder.appendingPathComponent(name).path
            guard lstat(path, &facts) == 0, facts.st_mode & S_IFMT == S_IFREG, !DurableFile.isLeftover(name: name) else { continue }
            guard let sha = try? SHA256Hex.file(atPath: path).hex else { return nil }
            files[name] = sha
        }
        return files
    }

    /// Copies an earlier fold's files into `folder`, each made durable and checked against the SHA-256 found when the
    /// fold was chosen, its training state last: a copy cut short holds no state, and the fold then trains from its
    /// first epoch as if nothing were there.
    static func copy(_ earlier: EarlierFold, into folder: URL) throws {
        _ = try Folder.create(folder.path)
        for name in earlier.files.keys.filter({ $0 != TrainingState.fileName }).sorted() + [TrainingState.fileName] {
            guard let expected = earlier.files[name] else { continue }
            try DurableFile.copy(from: earlier.folder.appendingPathComponent(name).path, to: folder.appendingPathComponent(name).path) { copied in
                guard try SHA256Hex.file(atPath: copied).hex == expected else {
                    throw EmoError.io(path: earlier.folder.appendingPathComponent(name).path,
                                      reason: "changed while its fold's weights were being taken; run again")
                }
            }
        }
    }

    /// Removes a fold's digest when it is not this one.
    func forget(unlessIn folder: URL) {
        let path = folder.appendingPathComponent(Self.fileName).path
        if (try? RegularFile.text(path)) != digest { unlink(path) }
    }

    /// Writes the digest into a fold's folder, before its training starts.
    func write(into folder: URL) throws {
        _ = try Folder.create(folder.path)
        try DurableFile.write(Data(digest.utf8), to: folder.appendingPathComponent(Self.fileName).path)
    }
}
