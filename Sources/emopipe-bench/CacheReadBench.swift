import EmoCore
import EmoStore
import Foundation

/// `emopipe-bench cache-read WORKDIR STAGE`: reads every record of a stage's cache sequentially
/// (shard order) and randomly (seeded shuffle), touching every byte, and prints one JSON object
/// per mode: records/s and GB/s. The page cache is warm after the first pass; both modes say so.
@main
enum EmoPipeBench {
    static func main() throws {
        let args = CommandLine.arguments
        guard args.count == 4, args[1] == "cache-read" else {
            StandardStream.error.write(Data("usage: emopipe-bench cache-read WORKDIR STAGE\n".utf8))
            exit(64)
        }
        let workspace = Workspace(root: args[2])
        let cache = TensorCache(workspace: workspace, store: try workspace.openStore(.readOnly))
        let rows = try cache.rowsInShardOrder(stage: args[3])
        guard !rows.isEmpty else { throw CacheError.missing("no \(args[3]) records in \(args[2])") }
        _ = try measure(rows, cache: cache)  // warm: map shards, fault pages in
        var shuffled = rows
        var state: UInt64 = 42
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            shuffled.swapAt(i, Int(state >> 33) % (i + 1))
        }
        for (mode, order) in [("sequential", rows), ("random", shuffled)] {
            let (seconds, bytes) = try measure(order, cache: cache)
            let line = ParamValueJSON.object([
                ("mode", "\"\(mode)\""), ("records", "\(order.count)"), ("bytes", "\(bytes)"),
                ("seconds", "\(seconds)"), ("records_per_s", "\(Double(order.count) / seconds)"),
                ("gb_per_s", "\(Double(bytes) / seconds / 1e9)"),
            ])
            print(line)
        }
    }

    /// Sums every float of every record (so no byte is skipped), copied out as the stages read them.
    static func measure(_ rows: [CacheRecordRow], cache: TensorCache) throws -> (Double, Int) {
        let start = DispatchTime.now().uptimeNanoseconds
        var bytes = 0
        var checksum: Float = 0
        for row in rows {
            let tensor = try cache.tensor(row)
            let floats = try tensor.floats()
            var sum: Float = 0
            for value in floats { sum += value }
            checksum += sum
            bytes += tensor.entry.dataLength
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if checksum.isNaN { StandardStream.error.write(Data("NaN in cache\n".utf8)) }
        return (seconds, bytes)
    }
}

enum ParamValueJSON {
    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}
