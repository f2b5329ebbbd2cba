import EmoNN

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
    /// The audio branch reads three channels: the (standardised) log-mel, its delta and its
    /// delta-delta over time (`DeltaFeatures`). Optional like `utteranceNorm` (nil: one channel).
    public var deltas: Bool?

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

    /// The largest model the tool builds. The train stage refuses parameters past them, and a model
    /// description past them is refused on load: sizes here are allocated before any weight is read.
    public enum Limits {
        public static let blocks = 6
        public static let channels = 1024
        public static let frames = 10_000
        public static let embedding = 4096
        /// The audio stage's and the faces stage's own bounds (`n_mels`, `faces.frames`, `faces.size`).
        public static let mels = 512
        public static let faceFrames = 256
        public static let faceSizes = 8...1024
        public static let classes = 1024
    }

    /// A lower bound on the model's weight count: its audio branch's largest matrices (the GRU's and the
    /// projection's), which the limits alone let reach billions. Loading compares it with the weights
    /// file, so a description cannot make the model allocate far more than its file holds. Nil when
    /// the count does not fit an Int.
    public var dominantWeightCount: Int? {
        guard uses(.audio) else { return 0 }
        let hidden = embedding / 2
        // Each step is channels × remaining bands wide; the GRU has 2 directions × 3 gates of hidden rows
        // over (width + hidden) columns; the projection maps the GRU's or the conv's width to E.
        guard let width = checkedProduct([audioChannels.last ?? 1, audioBands]) else { return nil }
        var terms = [checkedProduct([recurrent ? embedding : width, embedding])]
        if recurrent { terms += [checkedProduct([2, 3, hidden, width]), checkedProduct([2, 3, hidden, hidden])] }
        return terms.reduce(Int?(0)) { total, term in
            guard let total, let term else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(term)
            return overflow ? nil : sum
        }
    }

    /// What makes this shape unbuildable or larger than `Limits` allow, if anything.
    public var shapeProblem: String? {
        if modalities.isEmpty || Set(modalities).count != modalities.count { return "modalities \(modalities.map(\.rawValue)) are not audio and/or faces, each once" }
        if !(1...Limits.classes).contains(classes) { return "classes \(classes) is not from 1 to \(Limits.classes)" }
        if !(1...Limits.mels).contains(nMels) { return "n_mels \(nMels) is not from 1 to \(Limits.mels)" }
        if !(1...Limits.frames).contains(frames) { return "frames \(frames) is not from 1 to \(Limits.frames)" }
        if !(1...Limits.faceFrames).contains(faceFrames) { return "face_frames \(faceFrames) is not from 1 to \(Limits.faceFrames)" }
        if !Limits.faceSizes.contains(faceSize) { return "face_size \(faceSize) is not from \(Limits.faceSizes.lowerBound) to \(Limits.faceSizes.upperBound)" }
        for (key, channels) in [("audio_channels", audioChannels), ("face_channels", faceChannels)]
        where !(1...Limits.blocks).contains(channels.count) || !channels.allSatisfy({ (1...Limits.channels).contains($0) }) {
            return "\(key) \(channels) is not 1 to \(Limits.blocks) conv blocks of 1 to \(Limits.channels) channels"
        }
        if !(2...Limits.embedding).contains(embedding) || embedding % 2 != 0 { return "embedding \(embedding) is not an even number from 2 to \(Limits.embedding)" }
        if !(dropout.isFinite && dropout >= 0 && dropout < 1) { return "dropout \(dropout) is not from 0 to below 1" }
        if uses(.audio), nMels < audioStride || frames < audioStride {
            return "\(audioChannels.count) audio blocks do not fit \(nMels) mel bands × \(frames) frames"
        }
        if uses(.faces), faceSize < 1 << faceChannels.count { return "\(faceChannels.count) face blocks do not fit \(faceSize)-pixel crops" }
        return nil
    }

    /// Time steps the audio branch sees after its pools (each halves, dropping an odd tail).
    public var audioSteps: Int { audioChannels.reduce(frames) { steps, _ in steps / 2 } }
    /// Mel bands left after the audio branch's pools.
    public var audioBands: Int { audioChannels.reduce(nMels) { bands, _ in bands / 2 } }
    public var audioStride: Int { 1 << audioChannels.count }
    /// Channels of the audio branch's input.
    public var audioInputChannels: Int { deltas == true ? DeltaFeatures.channels : 1 }
}
