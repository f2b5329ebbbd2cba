import EmoNN
import Foundation
import ONNXSchema

/// The pieces of `model.int8.onnx` (see `Int8Quantization` for the arithmetic): int8 weight
/// initializers behind a per-channel DequantizeLinear, and the per-sample dynamic quantisation of
/// the activations entering each convolution and linear layer. At `.float` precision each is the
/// plain float graph's piece, so one exporter writes both files.
extension ONNXGraphBuilder {
    /// A weight whose rows (first axis of `shape`) are its output channels: float, or int8 per row
    /// dequantised along axis 0.
    mutating func weight(_ hint: String, _ values: [Float], shape: [Int]) throws -> String {
        guard precision == .int8 else { return constant(hint, values, shape: shape) }
        let q = try Int8Quantization.quantize(values, rows: shape[0], name: hint)
        return dequantized(hint, q, shape: shape, axis: 0)
    }

    /// A linear layer's weight [out, in] stored as the [in, out] MatMul operand; int8 per output
    /// channel (the quantised rows, transposed), dequantised along axis 1.
    mutating func transposedWeight(_ hint: String, _ weight: Tensor) throws -> String {
        let (out, inFeatures) = (weight.shape[0], weight.shape[1])
        func transposed<T>(_ v: [T], zero: T) -> [T] {
            var t = [T](repeating: zero, count: out * inFeatures)
            for o in 0..<out { for i in 0..<inFeatures { t[i * out + o] = v[o * inFeatures + i] } }
            return t
        }
        guard precision == .int8 else { return constant(hint, transposed(weight.data, zero: 0), shape: [inFeatures, out]) }
        var q = try Int8Quantization.quantize(weight.data, rows: out, name: hint)
        q.values = transposed(q.values, zero: 0)
        return dequantized(hint, q, shape: [inFeatures, out], axis: 1)
    }

    private mutating func dequantized(_ hint: String, _ q: Int8Quantization.Weights, shape: [Int], axis: Int) -> String {
        node("DequantizeLinear", [int8Constant(hint + "_int8", q.values, shape: shape),
                                  constant(hint + "_scale", q.scales, shape: [q.scales.count])],
             [ONNXGraphBuilder.int("axis", axis)])
    }

    /// `x` as the next layer sees it: unchanged at float precision; at int8, quantised to uint8 with
    /// one scale and zero point per sample (first axis) and dequantised, as DynamicQuantizeLinear
    /// would per sample: range [min(0, low), max(0, high)], scale range / 255 (1 for a sample of
    /// zeros), zero point round-half-even(-low / scale) saturated to 0...255. The way back is
    /// (q - zero point) × scale written out (DequantizeLinear's arithmetic, exact in float): a
    /// DequantizeLinear there would let onnxruntime fuse the MatMul into MatMulIntegerToFloat,
    /// which takes only one zero point per tensor.
    mutating func dynamicallyQuantized(_ x: String) -> String {
        guard precision == .int8 else { return x }
        let rows = node("Reshape", [x, ints("shape", [0, -1])])                         // [B, N]
        let zero = constant("zero", [0], shape: [])
        let keep0 = [ONNXGraphBuilder.ints("axes", [1]), ONNXGraphBuilder.int("keepdims", 0)]
        let low = node("Min", [node("ReduceMin", [rows], keep0), zero])
        let high = node("Max", [node("ReduceMax", [rows], keep0), zero])
        let spread = node("Div", [node("Sub", [high, low]), constant("levels", [255], shape: [])])
        let scale = node("Where", [node("Equal", [spread, zero]), constant("one", [1], shape: []), spread])
        let point = node("Clip", [node("Round", [node("Neg", [node("Div", [low, scale])])]), zero,
                                  constant("levels", [255], shape: [])])
        let zeroPoint = node("Cast", [point], [ONNXGraphBuilder.int("to", Int(Onnx_TensorProto.DataType.uint8.rawValue))])
        let q = node("QuantizeLinear", [rows, scale, zeroPoint], [ONNXGraphBuilder.int("axis", 0)])
        let column = ints("axes", [1])
        let levels = node("Cast", [q], [ONNXGraphBuilder.int("to", Int(Onnx_TensorProto.DataType.float.rawValue))])
        let back = node("Mul", [node("Sub", [levels, node("Unsqueeze", [point, column])]), node("Unsqueeze", [scale, column])])
        return node("Reshape", [back, node("Shape", [x])])
    }
}
