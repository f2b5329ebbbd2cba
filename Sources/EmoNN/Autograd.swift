import Foundation

/// Reverse-mode autograd over a tape.
///
/// Every recorded op gets a sequence number from a global counter, so the
/// recorded nodes reachable from a loss, sorted by decreasing number, are the
/// tape replayed backwards: a valid topological order without a graph search.
///
/// Nodes point at the nodes that made their inputs, not at the input tensors:
/// an intermediate tensor's storage is freed as soon as the caller drops it,
/// unless a backward closure saved it (as PyTorch frees what autograd does not
/// save). Leaves are held so that their `.grad` can be filled.
final class TapeNode {
    let seq: Int
    let op: String
    let edges: [Edge]
    /// Maps the output gradient to one gradient per input (nil where not
    /// needed); dropped after use, which frees what it saved.
    var backward: (([Float]) -> [[Float]?])?

    init(seq: Int, op: String, edges: [Edge], backward: @escaping ([Float]) -> [[Float]?]) {
        self.seq = seq
        self.op = op
        self.edges = edges
        self.backward = backward
    }
}

/// Where an input's gradient goes: the node that produced it, or a leaf tensor.
struct Edge {
    let node: TapeNode?
    let leaf: Tensor?

    init(_ t: Tensor) {
        guard t.requiresGrad else {
            (node, leaf) = (nil, nil)
            return
        }
        node = t.node
        leaf = t.node == nil && t.isLeaf ? t : nil
    }
}

public enum Autograd {
    /// Task-local so that concurrent tests or workers do not switch each other's mode.
    @TaskLocal static var enabled = true
    nonisolated(unsafe) static var sequence = 0
    static let sequenceLock = NSLock()

    public static var isEnabled: Bool { enabled }

    /// Runs `body` without recording (inference mode): no closures, no saved activations.
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        try $enabled.withValue(false) { try body() }
    }

    /// Attaches a backward closure to `output` when any input wants a gradient.
    static func record(_ output: Tensor, _ inputs: [Tensor], op: String = #function,
                       _ backward: @escaping ([Float]) -> [[Float]?]) -> Tensor {
        guard enabled, inputs.contains(where: { $0.requiresGrad }) else { return output }
        sequenceLock.lock()
        sequence += 1
        let seq = sequence
        sequenceLock.unlock()
        output.requiresGrad = true
        output.node = TapeNode(seq: seq, op: op, edges: inputs.map(Edge.init), backward: backward)
        return output
    }
}

extension Tensor {
    /// Back-propagates from this tensor. A non-scalar root needs a seed gradient.
    /// Intermediate gradients are freed as soon as they are consumed, and each
    /// node's saved state is dropped after use, which keeps peak memory down;
    /// a second backward through the same graph is therefore an error.
    public func backward(_ seed: Tensor? = nil) throws {
        guard requiresGrad else {
            throw NNError.invalidArgument("backward on a tensor that does not require grad")
        }
        let start: [Float]
        if let seed {
            guard seed.shape == shape else { throw ShapeError("backward", shape, seed.shape, "seed shape differs") }
            start = seed.data
        } else {
            guard count == 1 else {
                throw ShapeError("backward", shape, [], "a non-scalar root needs a seed gradient")
            }
            start = [1]
        }
        guard let root = node else {
            if isLeaf { accumulateLeaf(start) }
            return
        }
        guard root.backward != nil else {
            throw NNError.invalidArgument("backward through a graph that was already used")
        }
        var pending: [ObjectIdentifier: [Float]] = [ObjectIdentifier(root): start]
        for n in Self.tapeOrder(from: root) {
            guard let run = n.backward, let g = pending.removeValue(forKey: ObjectIdentifier(n)) else { continue }
            let started = Profiler.enabled ? Profiler.now() : 0
            let grads = run(g)
            if Profiler.enabled { Profiler.add("backward " + n.op, since: started) }
            n.backward = nil
            for (edge, gi) in zip(n.edges, grads) {
                guard let gi else { continue }
                if let leaf = edge.leaf {
                    leaf.accumulateLeaf(gi)
                } else if let child = edge.node {
                    let key = ObjectIdentifier(child)
                    if var existing = pending.removeValue(forKey: key) {
                        addInPlace(&existing, gi)
                        pending[key] = existing
                    } else {
                        pending[key] = gi
                    }
                }
            }
        }
    }

    func accumulateLeaf(_ g: [Float]) {
        if let grad {
            addInPlace(&grad.data, g)
        } else {
            grad = Tensor(raw: shape, g)
        }
    }

    /// Recorded nodes reachable from `root`, latest first.
    private static func tapeOrder(from root: TapeNode) -> [TapeNode] {
        var seen = Set<ObjectIdentifier>()
        var stack: [TapeNode] = [root]
        var found: [TapeNode] = []
        while let n = stack.popLast() {
            guard n.backward != nil, seen.insert(ObjectIdentifier(n)).inserted else { continue }
            found.append(n)
            for edge in n.edges { if let child = edge.node { stack.append(child) } }
        }
        return found.sorted { $0.seq > $1.seq }
    }
}

@inline(__always)
func addInPlace(_ a: inout [Float], _ b: [Float]) {
    a.withUnsafeMutableBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<pa.count { pa[i] += pb[i] }
        }
    }
}

/// Optional wall-clock accounting of backward time by op, for the benchmark's
/// "where the time goes" table. Off by default; costs one branch per node.
public enum Profiler {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var seconds: [String: Double] = [:]

    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    public static func add(_ key: String, since start: UInt64) {
        seconds[key, default: 0] += Double(now() - start) / 1e9
    }

    public static func reset() { seconds = [:] }
}
