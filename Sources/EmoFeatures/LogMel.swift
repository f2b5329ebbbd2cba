/// One clip's log-mel spectrogram, ready for the model.
public struct LogMel: Sendable, Equatable {
    /// [nMels, frames] float32, row-major (mel-major): `values[m * frames + t]`, in dB.
    /// Frames `realFrames..<frames` are padding, all equal to `padValue`.
    public var values: [Float]
    public var nMels: Int
    /// Columns of `values` (the parameters' `frames`, or every frame when that is nil).
    public var frames: Int
    /// Columns that come from the audio (the rest is padding). 1...frames.
    public var realFrames: Int
    /// Duration of the audio given to `compute` (before any trim), in seconds.
    public var durationSeconds: Double
    /// The samples analysed (all of them, or what the silence trim kept).
    public var sampleRange: Range<Int>
    /// Frames of the analysed samples' full spectrogram, before the crop or pad to `frames`.
    public var totalFrames: Int
    /// Index, in that full spectrogram, of the first column kept.
    public var firstFrame: Int
    /// The value of the padding columns: the dB value digital silence gets under the same
    /// transform (10·log10(amin) − 10·log10(ref), raised to the clip's top_db floor).
    public var padValue: Float

    public init(values: [Float], nMels: Int, frames: Int, realFrames: Int, durationSeconds: Double,
                sampleRange: Range<Int>, totalFrames: Int, firstFrame: Int, padValue: Float) {
        self.values = values
        self.nMels = nMels
        self.frames = frames
        self.realFrames = realFrames
        self.durationSeconds = durationSeconds
        self.sampleRange = sampleRange
        self.totalFrames = totalFrames
        self.firstFrame = firstFrame
        self.padValue = padValue
    }

    /// `values[m * frames + t]`.
    public subscript(mel m: Int, frame t: Int) -> Float { values[m * frames + t] }

    /// 1 for real frames, 0 for padding (length `frames`).
    public var frameMask: [Float] { (0..<frames).map { $0 < realFrames ? 1 : 0 } }
}
