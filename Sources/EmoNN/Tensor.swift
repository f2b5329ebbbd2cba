import Foundation

/// A dense float32 tensor in row-major contiguous storage.
///
/// A class, not a struct: autograd needs identity (a parameter is the same
/// object in the model, the tape and the optimizer). Storage is a Swift array,
/// so reshapes share it copy-on-write.
public final class Tensor {
    public let shape: [Int]
    public var data: [Float]
    /// Accumulated gradient; only leaves (parameters, inputs) keep one.
    public var grad: Tensor?
    public var requiresGrad: Bool
    /// False for tensors an op produced while recording.
    public let isLeaf: Bool
    var node: TapeNode?

    public init(shape: [Int], data: [Float], requiresGrad: Bool = false) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shapeCount(shape) == data.count else {
            throw ShapeError("Tensor.init", shape, [data.count], "element count differs from the shape's")
        }
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
        self.isLeaf = true
    }

    /// Internal constructor for ops, whose shapes are right by construction.
    init(raw shape: [Int], _ data: [Float], leaf: Bool = true) {
        precondition(shapeCount(shape) == data.count, "internal: \(shape) vs \(data.count)")
        self.shape = shape
        self.data = data
        self.requiresGrad = false
        self.isLeaf = leaf
    }

    public convenience init(_ values: [Float]) {
        self.init(raw: [values.count], values)
    }

    public convenience init(scalar: Float) {
        self.init(raw: [], [scalar])
    }

    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(raw: shape, [Float](repeating: 0, count: shapeCount(shape)))
    }

    public static func ones(_ shape: [Int]) -> Tensor {
        full(shape, 1)
    }

    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        Tensor(raw: shape, [Float](repeating: value, count: shapeCount(shape)))
    }

    public static func randn(_ shape: [Int], std: Float = 1, rng: RandomGenerator) -> Tensor {
        Tensor(raw: shape, (0..<shapeCount(shape)).map { _ in rng.normal() * std })
    }

    public static func uniform(_ shape: [Int], low: Float, high: Float, rng: RandomGenerator) -> Tensor {
        Tensor(raw: shape, (0..<shapeCount(shape)).map { _ in low + (high - low) * rng.uniform() })
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(data.count == 1, "item needs one element, shape is \(shape)")
        return data[0]
    }

    /// Marks this tensor as a trainable leaf; returns self for chaining.
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) -> Tensor {
        requiresGrad = flag
        return self
    }

    /// A copy cut off from the tape.
    public func detached() -> Tensor {
        Tensor(raw: shape, data)
    }

    public func zeroGrad() {
        grad = nil
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(data.count > 8 ? ", …" : "")])"
    }
}

@inline(__always)
func shapeCount(_ shape: [Int]) -> Int {
    shape.reduce(1, *)
}

/// The product of sizes read from a file or a description, or nil when it does not fit an Int (or a
/// size is negative): `shapeCount` for untrusted shapes, which must not trap.
public func checkedProduct(_ sizes: [Int]) -> Int? {
    guard sizes.allSatisfy({ $0 >= 0 }) else { return nil }
    if sizes.contains(0) { return 0 }
    var product = 1
    for size in sizes {
        let (next, overflow) = product.multipliedReportingOverflow(by: size)
        guard !overflow else { return nil }
        product = next
    }
    return product
}

/// Row-major strides of a contiguous tensor.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = acc
        acc *= shape[i]
    }
    return strides
}

/// Resolves a possibly negative axis against a rank.
func normalizeAxis(_ axis: Int, rank: Int, op: String, shape: [Int]) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < max(rank, 1) else {
        throw ShapeError(op, shape, [axis], "axis out of range")
    }
    return a
}

/// Splits a shape around one axis into (outer, axis length, inner) for loops.
func splitAround(_ shape: [Int], axis: Int) -> (outer: Int, length: Int, inner: Int) {
    let outer = shape[..<axis].reduce(1, *)
    let inner = shape[(axis + 1)...].reduce(1, *)
    return (outer, shape[axis], inner)
}
