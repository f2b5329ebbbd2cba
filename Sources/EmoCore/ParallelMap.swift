import Foundation

/// Maps items over `threads` workers, results in input order, so output never depends on timing.
/// Each worker takes the next item not yet taken, so one slow item holds up only its own worker.
///
///     let sizes = ParallelMap.map(paths, threads: 2) { try? SHA256Hex.file(atPath: $0) }
public enum ParallelMap {
    public static func map<T, R>(_ items: [T], threads: Int, _ body: (T) -> R) -> [R] {
        var results = [R?](repeating: nil, count: items.count)
        let workers = max(1, min(threads, items.count))
        let next = NextIndex()
        results.withUnsafeMutableBufferPointer { slots in
            let slots = slots
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while let i = next.take(below: items.count) { slots[i] = body(items[i]) }
            }
        }
        return results.map { $0! }
    }
}

/// The next index to hand out, shared by the workers of one map.
private final class NextIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < count else { return nil }
        value += 1
        return value - 1
    }
}
