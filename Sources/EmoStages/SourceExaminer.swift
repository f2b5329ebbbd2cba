import EmoCore
import EmoMedia
import EmoStore
import Foundation

/// Reads one file for ingest: parses its name, hashes it, probes it and checks that its content
/// fits what the name promises. Every problem becomes a `failed` row with a reason; the one error is
/// `EmoError.interrupted`, when `stopped` turns true while a file is hashed (the file is not examined).
enum SourceExaminer {
    static func examine(_ file: ScannedFile, runId: String, stopped: () -> Bool = { false }) throws(EmoError) -> SourceRecord {
        let fileName = (file.path as NSString).lastPathComponent
        var row = SourceRecord(path: file.path, sha256: nil, size: file.size, mtimeNanos: file.mtimeNanos,
                               status: .ok, reason: nil, runId: runId)
        row.inodeState = file.inodeState
        if let problem = file.walkProblem {
            if let name = file.namePartThatIsUTF8, case .notRavdess = RavdessName.parse(fileName: name) {
                row.status = .ignored
                row.reason = file.ignoredReason ?? "not a RAVDESS file name (nor valid UTF-8)"
                return row
            }
            row.status = .failed
            row.reason = problem
            return row
        }
        switch RavdessName.parse(fileName: fileName) {
        case .notRavdess(let why):
            row.status = .ignored
            row.reason = "not a RAVDESS file name: \(why)"
            return row
        case .invalid(let why):
            row.kind = (fileName as NSString).pathExtension.lowercased()
            try hash(&row, file, stopped: stopped)
            if row.status == .ok { row.status = .failed; row.reason = "invalid RAVDESS name: \(why)" }
            return row
        case .source(let codes):
            fill(&row, codes: codes)
            try hash(&row, file, stopped: stopped)
            guard row.status == .ok else { return row }
            if let problem = ActorFolder.mismatch(path: file.path, codes: codes) {
                row.status = .failed
                row.reason = problem
                return row
            }
            if let problem = probeAndCheck(&row, codes: codes) {
                row.status = .failed
                row.reason = problem
            }
            return row
        }
    }

    private static func fill(_ row: inout SourceRecord, codes: RavdessCodes) {
        row.kind = codes.sourceKind.rawValue
        row.modality = codes.modality; row.channel = codes.channel; row.emotion = codes.emotion
        row.intensity = codes.intensity; row.statement = codes.statement; row.repetition = codes.repetition
        row.actor = codes.actor; row.clip = codes.clipID
    }

    /// A pipe or a device is recorded as failed without being opened.
    private static func hash(_ row: inout SourceRecord, _ file: ScannedFile, stopped: () -> Bool) throws(EmoError) {
        if let kind = file.notRegular {
            row.status = .failed
            row.reason = "\(kind), not a regular file: not read (a recording must be a file, or a link to one)"
            return
        }
        do {
            let (hex, size) = try SHA256Hex.file(atPath: row.path, stopped: stopped)
            row.sha256 = hex
            row.size = size
        } catch let error as EmoError where error == .interrupted {
            throw error
        } catch {
            row.status = .failed
            row.reason = brokenLink(row.path).map { "\($0): not read" } ?? reason(error, path: row.path)
        }
    }

    /// What is wrong with a link that leads to no file (its target missing, or links in a loop), else nil:
    /// "cannot open: No such file or directory" of a name listed in the folder reads as a contradiction.
    static func brokenLink(_ path: String) -> String? {
        var facts = stat()
        guard lstat(path, &facts) == 0, facts.st_mode & S_IFMT == S_IFLNK, stat(path, &facts) != 0 else { return nil }
        let failure = errno
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
        // The first hop may itself be a link (to a file that is gone): it exists, so the chain is what leads nowhere.
        let anchored = target.hasPrefix("/") ? target : PathText.folder(of: path) + "/" + target
        let firstHopExists = lstat(anchored, &facts) == 0
        let problem = failure != ENOENT ? "which cannot be followed (\(String(cString: strerror(failure))))"
            : firstHopExists ? "itself a link that leads to no file" : "which does not exist"
        return "a link to \(target.escaped), \(problem)"
    }

    /// The first way the content contradicts the name, or nil. Probe facts are kept either way.
    private static func probeAndCheck(_ row: inout SourceRecord, codes: RavdessCodes) -> String? {
        if row.size == 0 { return "empty file (0 bytes)" }
        let facts: MediaFacts
        do { facts = try MediaProbe.probe(path: row.path) } catch { return reason(error, path: row.path) }
        row.probeJSON = encode(facts)
        return ContentRules.problem(with: facts, codes: codes)
    }

    private static func encode(_ facts: MediaFacts) -> String? {
        try? JSONOutput.text(facts)
    }

    /// An error's message without the path prefix: the row already names the file.
    static func reason(_ error: Error, path: String) -> String {
        if let media = error as? MediaError, media.path == path { return media.reason }
        return "\(error)".withoutLead(path)
    }
}

/// RAVDESS keeps each actor's files in `Actor_XX`: a file whose actor code names another actor was
/// misfiled or misnamed, and either way its label cannot be trusted. Other folder names say nothing.
enum ActorFolder {
    /// The actor number of a folder named `Actor_` and digits, in any case (`actor_02` and `ACTOR_02` name actor 02
    /// as surely: a file misfiled there passed unchecked), else nil.
    static func actor(folderName: String) -> Int? {
        guard folderName.utf8.count > 6, folderName.prefix(6).lowercased() == "actor_" else { return nil }
        let digits = folderName.dropFirst("Actor_".count)
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    static func mismatch(path: String, codes: RavdessCodes) -> String? {
        let folder = (PathText.folder(of: path) as NSString).lastPathComponent
        guard let actor = actor(folderName: folder), actor != codes.actor else { return nil }
        return String(format: "actor %02d in the file name but the file is in folder ", codes.actor)
            + folder + String(format: " (actor %02d)", actor)
    }
}

/// What each modality's content must hold.
enum ContentRules {
    static func problem(with facts: MediaFacts, codes: RavdessCodes) -> String? {
        let modality = String(format: "%02d", codes.modality)
        // No stream at all in a container FFmpeg opened: most often one cut short before its index.
        if facts.streams.isEmpty, [1, 2].contains(codes.modality) {
            return "\(codes.modality == 1 ? "audio-video" : "video-only") clip (modality \(modality)) has no audio or video stream FFmpeg can find (a file cut short?)"
        }
        switch codes.modality {
        case 3:
            if facts.audioStreamCount == 0 { return "audio-only source (modality 03) has no audio stream" }
            if let problem = audioProblem(facts) { return problem }
        case 1:
            if facts.videoStreamCount == 0 { return "audio-video clip (modality 01) \(facts.noVideoReason)" }
            if facts.audioStreamCount == 0 { return "audio-video clip (modality 01) has no audio stream" }
            // A moov box at the end, cut: the streams are listed but the audio one holds no description.
            if let problem = audioProblem(facts) { return problem }
        case 2:
            if facts.videoStreamCount == 0 { return "video-only clip (modality 02) \(facts.noVideoReason)" }
            if facts.audioStreamCount > 0 { return "video-only clip (modality 02) has an audio stream" }
        default:
            return "modality \(modality) is not a known RAVDESS modality"
        }
        if let duration = facts.durationSeconds, duration <= 0 { return "duration is zero" }
        if let problem = videoProblem(facts) { return problem }
        return nil
    }

    // A file with several tracks of a kind is judged by the best of them: the stages read the default
    // (audio) or best (video) one, which the probe does not mark, so a damaged second track must not
    // refuse a file, nor a damaged first one a file whose other track is sound. If the track a stage
    // picks is the damaged one, that stage fails the file and records why.

    private static func audioProblem(_ facts: MediaFacts) -> String? { problemOfEvery(.audio, in: facts, audioProblem) }
    private static func videoProblem(_ facts: MediaFacts) -> String? { problemOfEvery(.video, in: facts, videoProblem) }

    /// The first track's problem when every track of `kind` has one, else nil.
    private static func problemOfEvery(_ kind: MediaKind, in facts: MediaFacts, _ problem: (StreamFacts) -> String?) -> String? {
        let problems = facts.streams.filter { $0.kind == kind }.map(problem)
        return problems.contains(where: { $0 == nil }) ? nil : problems.first ?? nil
    }

    /// libav's name for a stream whose codec it could not tell.
    static let noCodec = "none"
    static let damaged = " (the file is damaged, or was cut short)"

    /// A codec the container names but libavcodec does not know is not damage (a newer codec than this FFmpeg's).
    private static func unknownCodec(_ stream: StreamFacts, kind: String) -> String {
        stream.codecTag.map { "\(kind) stream's codec '\($0)' (the container's name for it) is not one this FFmpeg knows" }
            ?? "\(kind) stream has no codec" + damaged
    }

    private static func videoProblem(_ video: StreamFacts) -> String? {
        if video.codec == noCodec { return unknownCodec(video, kind: "video") }
        if (video.width ?? 0) <= 0 || (video.height ?? 0) <= 0 { return "video stream has no picture size" }
        return nil
    }

    private static func audioProblem(_ audio: StreamFacts) -> String? {
        if audio.codec == noCodec { return unknownCodec(audio, kind: "audio") }
        if (audio.channels ?? 0) < 1 { return "audio stream has no channels" }
        if (audio.sampleRate ?? 0) <= 0 { return "audio stream has no sample rate" }
        return nil
    }
}
