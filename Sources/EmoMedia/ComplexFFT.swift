// libavutil's complex float FFT (av_tx, SIMD assembly), for the log-mel features: EmoFeatures computes
// its real FFT from it without holding libav types itself.
import CFFmpeg

/// A forward complex FFT of one size; each instance is used by one thread at a time (av_tx may use its
/// input as scratch).
public final class ComplexFFT {
    /// av_tx refused the size.
    public struct Unavailable: Error, Equatable, Sendable {
        public let size: Int
        /// libav's error code.
        public let code: Int32
    }

    public let size: Int
    private var context: OpaquePointer?
    private let transform: av_tx_fn

    /// Unscaled forward transform of `size` complex values.
    public init(size: Int) throws(Unavailable) {
        var scale: Float = 1
        var function: av_tx_fn?
        var made: OpaquePointer?
        let status = size > 0 && size <= Int(Int32.max)
            ? av_tx_init(&made, &function, AV_TX_FLOAT_FFT, 0, Int32(size), &scale, 0) : -EINVAL
        guard status >= 0, let made, let function else { throw Unavailable(size: size, code: status) }
        self.size = size
        context = made
        transform = function
    }

    deinit { av_tx_uninit(&context) }

    /// output[k] = Σ input[n]·e^{−2πikn/size}, both as interleaved (re, im) floats; `input` holds
    /// `size` values, `output` room for `size` of them.
    public func callAsFunction(_ output: UnsafeMutablePointer<Float>, _ input: UnsafeMutablePointer<Float>) {
        transform(context, output, input, MemoryLayout<Float>.stride * 2)
    }
}
