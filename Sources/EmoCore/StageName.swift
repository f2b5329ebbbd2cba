/// The stages this build implements, by the name a pipeline file gives them. Code that means one
/// stage names it here, never by a string of its own.
public enum StageName: String, CaseIterable, Codable, Sendable {
    case ingest, audio, faces, split, train, evaluate, export
}
