import Foundation

/// Reverse-mode autograd over a tape.
///
/// Every recorded op gets a sequence number from a global counter, so the
/// recorded nodes reachable from a loss, sorted by decreasing number, are the
/// tape replayed backwards: a valid topological order without a graph search.
final class TapeNode {
    let seq: Int
    let op: String
    let inputs: [Tensor]
    /// Maps the output gradient to one gradient per input (nil where not needed).
    let backward: ([Float]) -> [[Float]?]

    init(seq: Int, op: String, inputs: [Tensor], backward: @escaping ([Float]) -> [[Float]?]) {
        self.seq = seq
        self.op = op
        self.inputs = inputs
        self.backward = backward
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
        output.node = TapeNode(seq: seq, op: op, inputs: inputs, backward: backward)
        return output
    }
}

extension Tensor {
    /// Back-propagates from this tensor. A non-scalar root needs a seed gradient.
    /// Intermediate gradients are freed as soon as they are consumed, and each
    /// node's saved state is dropped after use, which keeps peak memory down.
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
        if node == nil {
            accumulateLeaf(start)
            return
        }
        let order = tapeOrder()
        var pending: [ObjectIdentifier: [Float]] = [ObjectIdentifier(self): start]
        for t in order {
            guard let node = t.node, let g = pending.removeValue(forKey: ObjectIdentifier(t)) else { continue }
            let started = Profiler.enabled ? Profiler.now() : 0
            let grads = node.backward(g)
            if Profiler.enabled { Profiler.add("backward " + node.op, since: started) }
            t.node = nil
            for (input, gi) in zip(node.inputs, grads) {
                guard input.requiresGrad, let gi else { continue }
                if input.node == nil {
                    if input.isLeaf { input.accumulateLeaf(gi) }
                    continue
                }
                let key = ObjectIdentifier(input)
                if var existing = pending.removeValue(forKey: key) {
                    addInPlace(&existing, gi)
                    pending[key] = existing
                } else {
                    pending[key] = gi
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

    /// Recorded nodes reachable from self, latest first.
    private func tapeOrder() -> [Tensor] {
        var seen = Set<ObjectIdentifier>()
        var stack: [Tensor] = [self]
        var found: [Tensor] = []
        while let t = stack.popLast() {
            guard let node = t.node, seen.insert(ObjectIdentifier(t)).inserted else { continue }
            found.append(t)
            for input in node.inputs where input.node != nil {
                stack.append(input)
            }
        }
        return found.sorted { $0.node!.seq > $1.node!.seq }
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
