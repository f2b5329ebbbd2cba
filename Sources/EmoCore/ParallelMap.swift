import Foundation

/// Maps items over `threads` workers, results in input order, so output never depends on timing.
///
///     let sizes = ParallelMap.map(paths, threads: 2) { try? SHA256Hex.file(atPath: $0) }
public enum ParallelMap {
    public static func map<T, R>(_ items: [T], threads: Int, _ body: (T) -> R) -> [R] {
        var results = [R?](repeating: nil, count: items.count)
        let workers = max(1, min(threads, items.count))
        results.withUnsafeMutableBufferPointer { slots in
            let slots = slots
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for i in stride(from: worker, to: items.count, by: workers) { slots[i] = body(items[i]) }
            }
        }
        return results.map { $0! }
    }
}
