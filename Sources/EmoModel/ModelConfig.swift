/// The shape of the emotion model, recorded with every checkpoint and export.
public struct ModelConfig: Codable, Equatable, Sendable {
    public enum Modality: String, Codable, Sendable, CaseIterable { case audio, faces }

    public var modalities: [Modality]
    public var classes: Int
    /// Log-mel input: [n_mels, frames].
    public var nMels: Int
    public var frames: Int
    /// Face input: K crops of size × size RGB.
    public var faceFrames: Int
    public var faceSize: Int
    /// Output channels of the conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool) of each branch.
    public var audioChannels: [Int]
    public var faceChannels: [Int]
    /// Width of each branch's embedding and of the fused vector.
    public var embedding: Int
    /// A bidirectional GRU over the audio branch's time steps (hidden size embedding / 2).
    public var recurrent: Bool
    public var dropout: Float
    /// After standardising, subtract each clip's own mean per mel band (over its real frames): what
    /// stays is how the voice moves, less the speaker's and the microphone's fixed colouring.
    /// Optional so that models recorded before it existed still load (nil: off).
    public var utteranceNorm: Bool?
    /// Before anything else, each clip's log-mel is standardised per mel band with the mean and
    /// standard deviation of its speaker's clips (unlabelled, so allowed for unseen speakers).
    /// Optional like `utteranceNorm` (nil: off).
    public var speakerNorm: Bool?

    public init(modalities: [Modality] = [.audio, .faces], classes: Int = 8, nMels: Int = 64, frames: Int = 300,
                faceFrames: Int = 8, faceSize: Int = 112, audioChannels: [Int] = [16, 32, 64, 128],
                faceChannels: [Int] = [16, 32, 64, 64], embedding: Int = 128, recurrent: Bool = false,
                dropout: Float = 0.3) {
        self.modalities = modalities; self.classes = classes; self.nMels = nMels; self.frames = frames
        self.faceFrames = faceFrames; self.faceSize = faceSize; self.audioChannels = audioChannels
        self.faceChannels = faceChannels; self.embedding = embedding; self.recurrent = recurrent
        self.dropout = dropout
    }

    public func uses(_ modality: Modality) -> Bool { modalities.contains(modality) }

    /// Time steps the audio branch sees after its pools (each halves, dropping an odd tail).
    public var audioSteps: Int { audioChannels.reduce(frames) { steps, _ in steps / 2 } }
    public var audioStride: Int { 1 << audioChannels.count }
}
