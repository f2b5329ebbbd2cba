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

    /// The earlier fold trained on these inputs whose weights stand as recorded (fingerprint, folder), or nil.
    func earlierFold(_ fold: Int, context: StageContext) throws -> (fingerprint: String, folder: URL)? {
        let names = try context.store.outputFingerprints(stage: StageName.train.rawValue).filter { $0 != context.fingerprint.full }
        for name in names {
            let folder = URL(fileURLWithPath: context.workspace.trainFoldFolder(fingerprint: name, fold: fold))
            guard (try? RegularFile.text(folder.appendingPathComponent(Self.fileName).path)) == digest,
                  TrainingState.read(inFolder: folder)?.finished == true,
                  let recorded = try TrainStage.recordedModels(context, fingerprint: name)[fold],
                  TrainStage.condition(of: folder, fold: fold, recorded: recorded) == .asRecorded else { continue }
            return (name, folder)
        }
        return nil
    }

    /// Copies an earlier fold's files into `folder` (empty), its training state last: a copy cut short holds no
    /// state, and the fold trains from its first epoch as if nothing were there.
    static func copy(_ earlier: URL, into folder: URL) throws {
        _ = try Folder.create(folder.path)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: earlier.path)) ?? []).sorted()
        let files = names.filter { name in
            var facts = stat()
            return lstat(earlier.appendingPathComponent(name).path, &facts) == 0 && facts.st_mode & S_IFMT == S_IFREG
        }
        for name in files.filter({ $0 != TrainingState.fileName }) + [TrainingState.fileName] {
            let target = folder.appendingPathComponent(name).path
            let part = target + ".part-\(getpid())"
            unlink(part)
            do {
                try FileManager.default.copyItem(atPath: earlier.appendingPathComponent(name).path, toPath: part)
            } catch {
                throw EmoError.io(path: target, reason: "cannot copy the earlier fold's \(name): \(error.localizedDescription)")
            }
            guard rename(part, target) == 0 else {
                throw EmoError.io(path: target, reason: "cannot put the earlier fold's \(name) in place: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Writes the digest into a fold's folder, before its training starts.
    func write(into folder: URL) throws {
        _ = try Folder.create(folder.path)
        try DurableFile.write(Data(digest.utf8), to: folder.appendingPathComponent(Self.fileName).path)
    }
}
