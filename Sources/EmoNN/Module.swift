/// Base class of layers. Parameters and buffers are found by reflection over
/// stored properties, so a layer only declares them; names follow PyTorch's
/// state_dict (`features.0.weight`), which keeps checkpoints interchangeable.
///
/// A stored `Tensor` is a parameter unless its name is in `bufferNames`; a
/// stored `Module` or `[Module]` is a child (array elements are named by index).
open class Module {
    /// Whether layers such as batch norm and dropout behave as in training.
    public private(set) var training = true

    public init() {}

    /// Names (snake_case, as reported) of stored tensors that are state but not
    /// trained, such as running statistics.
    open var bufferNames: Set<String> { [] }

    /// Direct children with their names, in declaration order.
    open func children() -> [(String, Module)] {
        var result: [(String, Module)] = []
        forEachStored { label, value in
            if let m = value as? Module {
                result.append((label, m))
            } else if let ms = value as? [Module] {
                for (i, m) in ms.enumerated() { result.append(("\(label).\(i)", m)) }
            }
        }
        return result
    }

    /// This module's own tensors (not its children's).
    private func ownTensors() -> [(String, Tensor)] {
        var result: [(String, Tensor)] = []
        forEachStored { label, value in
            if let t = value as? Tensor {
                result.append((label, t))
            } else if let t = value as? Tensor?, let t {
                result.append((label, t))
            }
        }
        return result
    }

    /// Walks stored properties of this class and its superclasses (below Module).
    private func forEachStored(_ body: (String, Any) -> Void) {
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let m = mirror, m.subjectType != Module.self {
            mirrors.append(m)
            mirror = m.superclassMirror
        }
        for m in mirrors.reversed() {
            for child in m.children {
                guard let label = child.label, !label.hasPrefix("_") else { continue }
                body(snakeCase(label), child.value)
            }
        }
    }

    /// Trainable tensors with dotted names, depth first.
    public func namedParameters() -> [(String, Tensor)] {
        collect(prefix: "", buffers: false)
    }

    /// Running statistics and other non-trained state.
    public func namedBuffers() -> [(String, Tensor)] {
        collect(prefix: "", buffers: true)
    }

    public func parameters() -> [Tensor] {
        namedParameters().map(\.1)
    }

    private func collect(prefix: String, buffers: Bool) -> [(String, Tensor)] {
        var result = ownTensors().filter { bufferNames.contains($0.0) == buffers }.map { (prefix + $0.0, $0.1) }
        for (name, child) in children() {
            result += child.collect(prefix: prefix + name + ".", buffers: buffers)
        }
        return result
    }

    /// Switches training mode for this module and all descendants.
    public func train(_ on: Bool = true) {
        training = on
        for (_, child) in children() { child.train(on) }
    }

    public func eval() { train(false) }

    public func zeroGrad() {
        for p in parameters() { p.grad = nil }
    }

    /// Copies values into parameters and buffers by name; every tensor of the
    /// module must be present with the same shape.
    public func load(_ values: [String: Tensor]) throws {
        for (name, t) in namedParameters() + namedBuffers() {
            guard let v = values[name] else { throw NNError.missing("tensor \(name)") }
            guard v.shape == t.shape else { throw ShapeError("load \(name)", t.shape, v.shape, "stored shape differs") }
            t.data = v.data
        }
    }

    /// Parameters then buffers, by name.
    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters() + namedBuffers())
    }
}

/// A layer with one input and one output.
public protocol UnaryLayer: AnyObject {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

/// Applies layers in order; children are named 0, 1, 2… like nn.Sequential.
public final class Sequential: Module, UnaryLayer {
    public let layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }

    public override func children() -> [(String, Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var y = x
        for layer in layers {
            guard let l = layer as? UnaryLayer else {
                throw NNError.invalidArgument("Sequential holds \(type(of: layer)), which is not a UnaryLayer")
            }
            if Profiler.enabled {
                let started = Profiler.now()
                y = try l(y)
                Profiler.add("forward \(type(of: layer))", since: started)
            } else {
                y = try l(y)
            }
        }
        return y
    }
}

/// Stateless activations as layers, for use in Sequential.
public final class ReLU: Module, UnaryLayer {
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.relu() }
}

public final class GELU: Module, UnaryLayer {
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.gelu() }
}

public final class Tanh: Module, UnaryLayer {
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.tanh() }
}

public final class Sigmoid: Module, UnaryLayer {
    public func callAsFunction(_ x: Tensor) throws -> Tensor { x.sigmoid() }
}

/// Flattens all axes after the first.
public final class Flatten: Module, UnaryLayer {
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.flattened(from: 1) }
}

/// `runningMean` → `running_mean`, `weightIhL0` → `weight_ih_l0`: Swift
/// property names mapped to PyTorch's state_dict spelling.
func snakeCase(_ name: String) -> String {
    var out = ""
    for ch in name {
        if ch.isUppercase {
            if !out.isEmpty { out.append("_") }
            out += ch.lowercased()
        } else {
            out.append(ch)
        }
    }
    return out
}
