import EmoCore
import EmoStore
import Foundation

/// The clips of the ok sources under a data root, and which source feeds each modality:
/// speech from the clip's wav, else its audio-video mp4's audio track; pictures from its
/// audio-video mp4, else its video-only mp4.
struct ClipCatalog {
    struct Clip: Equatable, Sendable {
        var id: String
        var codes: RavdessCodes
        var speech: SourceRecord?
        var video: SourceRecord?
    }

    /// A clip with two files of different content for one modality's best kind (a stray copy at the
    /// root, `.WAV` beside `.wav`, `Actor_2/` beside `Actor_02/`): the one used and the ones left out.
    struct Conflict: Equatable, Sendable {
        var clip: String
        /// `speech`, `video`, or `speech and video` (an mp4-only clip's file serves both).
        var modality: String
        var used: String
        /// Why that file won: what sets it apart from the others.
        var reason: String
        var leftOut: [String]
        /// How many different contents the clip's files of this kind hold.
        var contents: Int
    }

    let clips: [Clip]
    let conflicts: [Conflict]
    /// Ok sources whose recorded codes are not what their file names say, left out.
    let contradicted: [ContradictedSource]

    /// Modality codes best first: `ClipFiles` ranks a clip's files for predict by the same orders.
    static let speechOrder = [3, 1], videoOrder = [1, 2]

    init(sources: [SourceRecord]) {
        var byClip: [String: Clip] = [:]
        var candidates: [String: [SourceRecord]] = [:]
        var contradicted: [ContradictedSource] = []
        for source in sources where source.status == .ok && source.sha256 != nil {
            // The labels are the name's (ingest recorded them from it): a row that says otherwise, or nothing (a code
            // emptied), was edited.
            let named = RavdessName.parse(fileName: (source.path as NSString).lastPathComponent)
            guard let id = source.clip, let codes = source.codes, case .source(let nameCodes) = named, nameCodes == codes, nameCodes.clipID == id else {
                let said = if case .source(let nameCodes) = named { nameCodes.nameStem } else { "none" }
                let recorded = (source.codes?.nameStem ?? "none") + ", clip " + (source.clip ?? "none")
                contradicted.append(ContradictedSource(path: source.path, recorded: recorded, named: said))
                continue
            }
            var clip = byClip[id] ?? Clip(id: id, codes: codes, speech: nil, video: nil)
            if Self.prefers(source, over: clip.speech, order: Self.speechOrder) { clip.speech = source }
            if Self.prefers(source, over: clip.video, order: Self.videoOrder) { clip.video = source }
            byClip[id] = clip
            candidates[id, default: []].append(source)
        }
        clips = byClip.values.sorted { $0.id < $1.id }
        self.contradicted = contradicted.sorted { $0.path < $1.path }
        conflicts = clips.flatMap { clip in
            var found: [Conflict] = []
            for (modality, used) in [("speech", clip.speech), ("video", clip.video)] {
                guard let used else { continue }
                let others = (candidates[clip.id] ?? []).filter { $0.modality == used.modality && $0.sha256 != used.sha256 }
                guard !others.isEmpty else { continue }
                if let same = found.firstIndex(where: { $0.used == used.path }) { found[same].modality += " and " + modality; continue }
                found.append(Conflict(clip: clip.id, modality: modality, used: used.path, reason: Self.reason(used, over: others),
                                      leftOut: others.map(\.path).sorted(), contents: Set(others.compactMap(\.sha256)).count + 1))
            }
            return found
        }
    }

    /// What sets the file used apart from the ones left out.
    private static func reason(_ used: SourceRecord, over others: [SourceRecord]) -> String {
        let mine = misplacement(used), best = others.map(misplacement).min() ?? mine
        guard mine < best else { return "the first by path" }
        switch mine {
        case 0: return "in its own Actor_XX folder, named in lowercase"
        case 1: return "in its own Actor_XX folder"
        case 2: return "in its own actor's folder (spelt otherwise than Actor_XX), named in lowercase"
        case 3: return "in its own actor's folder (spelt otherwise than Actor_XX)"
        default: return "named in lowercase"
        }
    }

    /// Whether `candidate` is a better source than `current` for a modality whose modality codes
    /// are listed best first; among files of one kind, the one in its own `Actor_XX` folder with the
    /// lowercase extension RAVDESS uses, then the first path (so the choice never depends on scan order).
    private static func prefers(_ candidate: SourceRecord, over current: SourceRecord?, order: [Int]) -> Bool {
        guard let rank = order.firstIndex(of: candidate.modality ?? 0) else { return false }
        guard let current, let currentRank = order.firstIndex(of: current.modality ?? 0) else { return true }
        if rank != currentRank { return rank < currentRank }
        let (a, b) = (misplacement(candidate), misplacement(current))
        return a != b ? a < b : candidate.path < current.path
    }

    /// 0 for a file in its actor's `Actor_XX` folder named in lowercase; more the further it is from that. A folder
    /// that names its actor otherwise (`actor_02`, `Actor_2`, as ingest reads folder names) comes next.
    private static func misplacement(_ source: SourceRecord) -> Int {
        let url = URL(fileURLWithPath: source.path)
        let folder = url.deletingLastPathComponent().lastPathComponent
        let placement = source.actor.map { actor in
            folder == String(format: "Actor_%02d", actor) ? 0 : ActorFolder.actor(folderName: folder) == actor ? 2 : 4
        } ?? 4
        let lowercase = url.pathExtension == url.pathExtension.lowercased()
        return placement + (lowercase ? 0 : 1)
    }

    /// One unit per distinct content among the chosen sources of a modality, in path order.
    static func units(_ sources: [SourceRecord]) -> [SourceRecord] {
        var seen = Set<String>()
        return sources.sorted { $0.path < $1.path }.filter { seen.insert($0.sha256 ?? "").inserted }
    }
}

extension SourceRecord {
    /// The parsed RAVDESS codes of an ok or failed source, nil for an ignored file.
    public var codes: RavdessCodes? {
        guard let modality, let channel, let emotion, let intensity, let statement, let repetition, let actor else {
            return nil
        }
        return RavdessCodes(modality: modality, channel: channel, emotion: emotion, intensity: intensity,
                            statement: statement, repetition: repetition, actor: actor)
    }
}

/// An ok source whose recorded codes are not what its file name says: an edited database row, left out of the
/// clips (it trained a neutral clip as angry).
public struct ContradictedSource: Equatable, Sendable {
    public var path: String
    /// The row's seven codes and clip id, and the name's codes ("none" for a name that gives none).
    public var recorded: String
    public var named: String
    /// What the split's warning and `cache get` say of it, after the path.
    public var why: String { "its database row gives the codes \(recorded), its name \(named) (the row was edited?)" }
    public static let advice = "`emopipe run --force ingest` records it again from its name"
}

/// Which source of a clip a per-source stage computes: what a command needs to explain why a
/// stage holds no record of some source (it takes the clip's other file, or none of its files).
public enum ClipSourceChoice: Sendable {
    /// The stage computes this source of the clip (its records are keyed by this SHA-256).
    case source(SourceRecord)
    /// The clip has no source of the kind the stage takes.
    case noSource
    /// The stage keeps no per-source records.
    case notPerSource
    /// The source's database row gives other codes than its file name (an edited row): no stage takes it.
    case contradicted(ContradictedSource)

    /// What `stage` computes for the clip of `source`, judged among the ok sources under `dataRoot`
    /// as the stage itself judges them.
    public static func of(stage: String, clipOf source: SourceRecord, store: ProvenanceStore, dataRoot: String) throws -> ClipSourceChoice {
        let pick: (ClipCatalog.Clip) -> SourceRecord?
        switch StageName(rawValue: stage) {
        case .audio?: pick = { $0.speech }
        case .faces?: pick = { $0.video }
        default: return .notPerSource
        }
        let catalog = ClipCatalog(sources: try store.sources(status: .ok, under: dataRoot))
        if let row = catalog.contradicted.first(where: { $0.path == source.path }) { return .contradicted(row) }
        guard let clip = catalog.clips.first(where: { $0.id == source.clip }), let chosen = pick(clip) else { return .noSource }
        return .source(chosen)
    }

    /// The sources `stage` takes from a clip, best first, in words.
    public static func takes(_ stage: String) -> String? {
        switch StageName(rawValue: stage) {
        case .audio?: return "a clip's speech: its audio-only .wav (modality 03), else its audio-video .mp4 (01)"
        case .faces?: return "a clip's video: its audio-video .mp4 (modality 01), else its video-only .mp4 (02)"
        default: return nil
        }
    }
}
