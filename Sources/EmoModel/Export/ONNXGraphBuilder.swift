import EmoNN
import Foundation
import ONNXSchema

/// Builds an ONNX graph node by node: fresh value names, float initializers, and the few op
/// shapes the exporter needs. Names are deterministic, so equal models give equal bytes.
struct ONNXGraphBuilder {
    private(set) var graph = Onnx_GraphProto()
    private var counter = 0
    /// Float weights and activations, or `model.int8.onnx`'s (ONNXInt8Graph.swift).
    var precision: ONNXExporter.Precision = .float

    mutating func name(_ hint: String) -> String {
        counter += 1
        return "\(hint)_\(counter)"
    }

    mutating func input(_ name: String, elementType: Onnx_TensorProto.DataType, shape: [Int?]) {
        graph.input.append(Self.valueInfo(name, elementType: elementType, shape: shape))
    }

    mutating func output(_ name: String, shape: [Int?]) {
        graph.output.append(Self.valueInfo(name, elementType: .float, shape: shape))
    }

    /// A typed value whose nil dimensions are the dynamic batch axis.
    static func valueInfo(_ name: String, elementType: Onnx_TensorProto.DataType, shape: [Int?]) -> Onnx_ValueInfoProto {
        var value = Onnx_ValueInfoProto()
        value.name = name
        value.type.tensorType.elemType = Int32(elementType.rawValue)
        value.type.tensorType.shape.dim = shape.map { size in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let size { dim.dimValue = Int64(size) } else { dim.dimParam = "batch" }
            return dim
        }
        return value
    }

    /// A float32 constant (weights, normalisation constants).
    mutating func constant(_ hint: String, _ values: [Float], shape: [Int]) -> String {
        var tensor = Onnx_TensorProto()
        tensor.name = name(hint)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.dims = shape.map(Int64.init)
        tensor.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        graph.initializer.append(tensor)
        return tensor.name
    }

    mutating func constant(_ hint: String, _ tensor: Tensor) -> String {
        constant(hint, tensor.data, shape: tensor.shape)
    }

    /// An int8 constant (model.int8.onnx's weights).
    mutating func int8Constant(_ hint: String, _ values: [Int8], shape: [Int]) -> String {
        var tensor = Onnx_TensorProto()
        tensor.name = name(hint)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.int8.rawValue)
        tensor.dims = shape.map(Int64.init)
        tensor.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        graph.initializer.append(tensor)
        return tensor.name
    }

    /// An int64 constant (shapes, axes).
    mutating func ints(_ hint: String, _ values: [Int]) -> String {
        var tensor = Onnx_TensorProto()
        tensor.name = name(hint)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        tensor.dims = [Int64(values.count)]
        tensor.int64Data = values.map(Int64.init)
        graph.initializer.append(tensor)
        return tensor.name
    }

    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], output: String? = nil, _ attributes: [Onnx_AttributeProto] = []) -> String {
        var node = Onnx_NodeProto()
        node.opType = op
        node.input = inputs
        let out = output ?? name(op.lowercased())
        node.output = [out]
        node.name = out
        node.attribute = attributes
        graph.node.append(node)
        return out
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .ints; a.ints = values.map(Int64.init)
        return a
    }

    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .int; a.i = Int64(value)
        return a
    }

    static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .string; a.s = Data(value.utf8)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .float; a.f = value
        return a
    }
}
