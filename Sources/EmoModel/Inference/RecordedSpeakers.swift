import EmoCore
import Foundation

/// The per-speaker statistics a speaker-normalised run normalised its clips with, and the speech
/// sources (by SHA-256) each speaker's were computed from: `speakers.json` beside an export. With it,
/// `emopipe predict` given some of a run's own files of an actor (one test clip, say) normalises them
/// as evaluate did, instead of with the statistics of the few files it was given.
public struct RecordedSpeakers: Codable, Equatable, Sendable {
    public struct Speaker: Codable, Equatable, Sendable {
        public var actor: Int
        /// The SHA-256 of each speech source whose log-mel entered the statistics.
        public var speechSha256: [String]
        public var mean: [Float]
        public var std: [Float]

        public init(actor: Int, speechSha256: [String], mean: [Float], std: [Float]) {
            self.actor = actor; self.speechSha256 = speechSha256; self.mean = mean; self.std = std
        }

        enum CodingKeys: String, CodingKey { case actor, speechSha256 = "speech_sha256", mean, std }
    }

    public var speakers: [Speaker]

    public init(speakers: [Speaker]) { self.speakers = speakers }

    /// The file's name in a run folder.
    public static let fileName = "speakers.json"
    /// The most read: 24 actors of 60 clips take about 130 KB; a damaged or foreign file is not read whole.
    public static let sizeLimit = 16 << 20

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// The largest magnitude of a band's mean taken (dB): log-mels lie within a few hundred.
    public static let meanLimit: Float = 10_000

    /// Reads and checks `path` against a model of `nMels` bands and, when model.json records one, the file's
    /// SHA-256 (`expectedSha256`): every problem names the file and what is wrong.
    public static func read(_ path: String, nMels: Int, expectedSha256: String? = nil) throws -> RecordedSpeakers {
        func bad(_ reason: String) -> TrainedModelError { TrainedModelError(path: path, reason: reason) }
        let data: Data
        do { data = try RegularFile.read(path, atMost: sizeLimit) } catch { throw bad(EmoError.reason(of: error)) }
        if let expectedSha256, SHA256Hex.of(data) != expectedSha256 {
            throw bad("not the speaker statistics this model was exported with (its SHA-256 is \(SHA256Hex.of(data).prefix(16))…, "
                      + "model.json records \(expectedSha256.prefix(16))…): restore the file export wrote, or export the model again")
        }
        let recorded: RecordedSpeakers
        let decoder = JSONDecoder()
        do { recorded = try decoder.decode(RecordedSpeakers.self, from: data) } catch {
            let why = JSONOutput.problem(error, in: data, decoding: RecordedSpeakers.self, using: decoder)
            throw bad("not the speaker statistics export writes: \(why)")
        }
        var actors = Set<Int>()
        for speaker in recorded.speakers {
            let name = "speaker \(speaker.actor)"
            guard (1...99).contains(speaker.actor) else { throw bad("\(name) is not a RAVDESS actor number (01-99)") }
            guard actors.insert(speaker.actor).inserted else { throw bad("\(name) is given twice") }
            guard speaker.mean.count == nMels, speaker.std.count == nMels else {
                throw bad("\(name) has \(speaker.mean.count) means and \(speaker.std.count) deviations, but the model takes \(nMels) mel bands")
            }
            // The statistics floor each deviation (SpeakerNormalizer.minimumStd): a smaller one, or a mean far past
            // any log-mel, would blow the features up and pass for weights that overflow.
            let floor = Float(SpeakerNormalizer.minimumStd)
            guard speaker.mean.allSatisfy({ $0.isFinite && abs($0) <= meanLimit }), speaker.std.allSatisfy({ $0.isFinite && $0 >= floor && $0 <= meanLimit }) else {
                throw bad("\(name) holds a mean outside ±\(Int(meanLimit)) dB or a deviation outside \(floor)-\(Int(meanLimit)) dB (or one that is not finite)")
            }
            // One digest may stand for several clips (RAVDESS has two identical recordings of actor 07), so repeats are fine.
            if let digest = speaker.speechSha256.first(where: { !SHA256Hex.isDigest($0) }) {
                throw bad("\(name): \"\(digest.echoed)\" is not a SHA-256 (64 lower-case hexadecimal digits)")
            }
        }
        return recorded
    }
}
