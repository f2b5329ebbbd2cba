import EmoCore
import Foundation

/// The files `predict` reads for one file it is given, paired as the pipeline pairs a clip's sources
/// (`ClipCatalog`): speech from the clip's wav, else its audio-video mp4; pictures from its audio-video
/// mp4, else its video-only mp4. The candidates are the given file and the clip's other RAVDESS files
/// beside it in the same folder (as the RAVDESS archives unpack; beside a link, not its target), each
/// taken only if it can be read (it probes), as the split stage passes over a source ingest failed. So
/// `predict` on a clip's wav, or on its mp4, reads what the evaluate stage read for that clip. A file
/// without a RAVDESS name is read alone.
struct ClipFiles: Hashable, Sendable {
    var speech: String
    var video: String
    /// Why the clip's video files that rank above `video` could not be read, in rank order, nil when
    /// none was passed over: what a prediction names when it goes without the faces.
    var videoPassedOver: String?
    /// The same for the files that rank above `speech` (a clip's wav that does not open, when its mp4's
    /// audio is read instead).
    var speechPassedOver: String?

    init(speech: String, video: String, videoPassedOver: String? = nil) {
        self.speech = speech; self.video = video; self.videoPassedOver = videoPassedOver
    }

    init(alone path: String) { self.init(speech: path, video: path) }

    /// `speech` or `video` false (a model without that branch): no file is sought for it, and it is
    /// the other's file, so a clip's wav and mp4 still pair alike. `problem` says why a file cannot be
    /// read (naming it), nil when it can; it is asked once per file. `givenProblem`, when the given file
    /// itself cannot be read, passes it over like any companion: a modality none of the clip's files
    /// serves takes the other's file, and with no file read at all both are the given one.
    init(given path: String, speech needsSpeech: Bool = true, video needsVideo: Bool = true, givenProblem: String? = nil,
         problem: (String) -> String?) {
        self.init(alone: path)
        let name = (path as NSString).lastPathComponent
        // A path ending in "/" names no file of that name (NSString drops the slash): it is read as given.
        guard !path.utf8.contains(0), path.hasSuffix(name), case .source(let codes) = RavdessName.parse(fileName: name) else { return }
        let folder = String(path.dropLast(name.count))
        var readable = Set<String>(), unreadable: [String: String] = [:]
        if let givenProblem { unreadable[path] = givenProblem }
        func file(_ modality: Int) -> String? {
            // An unreadable given file's own modality is sought among its other-case namesakes (`.WAV` beside `.wav`).
            if modality == codes.modality && givenProblem == nil { return path }
            var sibling = codes
            sibling.modality = modality
            let stem = folder + String(format: "%02d-", modality) + sibling.clipID + "."
            let kind = sibling.sourceKind.rawValue
            // Lowercase first, as the split stage prefers the name RAVDESS uses.
            return [stem + kind, stem + kind.uppercased()].first { candidate in
                var facts = stat()
                guard stat(candidate, &facts) == 0 && facts.st_mode & S_IFMT == S_IFREG else {
                    // Something there that is no file (a FIFO, a folder, a dangling link) is passed over saying so.
                    if let what = Self.notAFile(candidate) { unreadable[candidate] = "\(candidate.shownPath): \(what)" }
                    return false
                }
                if !readable.contains(candidate) && unreadable[candidate] == nil {
                    if let why = problem(candidate) { unreadable[candidate] = why } else { readable.insert(candidate) }
                }
                return readable.contains(candidate)
            }
        }
        /// The best-ranked readable file (nil: none), and why those ranked above it were passed over (nil: none was).
        func best(_ order: [Int]) -> (file: String?, passedOver: String?) {
            var passed: [String] = []
            for modality in order {
                let found = file(modality)
                // Those of this modality tried before the one found (a `.wav` that does not open, then its `.WAV`) are named too.
                let prefix = folder + String(format: "%02d-", modality)
                passed += unreadable.filter { $0.key.hasPrefix(prefix) && $0.key != found }.sorted { $0.key > $1.key }.map(\.value)
                if let found { return (found, passed.isEmpty ? nil : passed.joined(separator: "; ")) }
            }
            return (nil, passed.isEmpty ? nil : passed.joined(separator: "; "))
        }
        var (speechFile, videoFile): (String?, String?) = (nil, nil)
        if needsSpeech { (speechFile, speechPassedOver) = best(ClipCatalog.speechOrder) }
        if needsVideo { (videoFile, videoPassedOver) = best(ClipCatalog.videoOrder) }
        // A readable given file stands for a modality none of its clip's files serves (read, it says what it
        // lacks); an unreadable one only when no file was found at all, and then it is its own error.
        let fallback = givenProblem == nil ? path : speechFile ?? videoFile ?? path
        speech = speechFile ?? fallback
        video = needsVideo ? videoFile ?? fallback : speech
        if !needsSpeech { speech = video }
    }

    /// Whether any file but the given one is read: false for a given file that is read alone.
    func readsBeyond(_ path: String) -> Bool { speech != path || video != path }

    /// What is at `path` when it is there but is no regular file (following links), nil when nothing is there.
    static func notAFile(_ path: String) -> String? {
        var link = stat(), target = stat()
        guard lstat(path, &link) == 0 else { return nil }
        guard stat(path, &target) == 0 else { return "a link to nothing (or a loop of links)" }
        switch target.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder, not a media file"
        case S_IFIFO: return "a FIFO, not a media file"
        case S_IFSOCK: return "a socket, not a media file"
        default: return "a device, not a media file"
        }
    }
}
