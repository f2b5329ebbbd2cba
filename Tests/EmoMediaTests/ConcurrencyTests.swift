import Foundation
import EmoTestSupport
import Testing
@testable import EmoMedia

@Suite("Concurrent use", .enabled(if: TestData.available, TestData.missingMessage))
struct ConcurrencyTests {
    /// One file's outcome, comparable across runs.
    enum Outcome: Equatable {
        case decoded(MediaFacts, [Float])
        case failed(MediaError)
    }

    static func outcome(_ path: String) -> Outcome {
        do {
            let facts = try MediaProbe.probe(path: path)
            return .decoded(facts, try AudioDecoder.decodeMono(path: path, sampleRate: 16_000).samples)
        } catch {
            return .failed(error)
        }
    }

    @Test("several threads on different files give the same results, and errors keep their own reasons")
    func parallelMatchesSerial() throws {
        let dir = try TestSupport.scratchFolder("emomedia")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cut = dir.appendingPathComponent("cut.mp4")
        try Data(contentsOf: URL(fileURLWithPath: TestData.avClip)).prefix(3000).write(to: cut)
        let noise = dir.appendingPathComponent("noise.mp4")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: noise)
        let paths = [TestData.avClip, TestData.wav("03-01-01-01-01-01-01"), TestData.wav("03-01-02-01-01-02-01"),
                     cut.path, noise.path, TestData.oddFolder.appendingPathComponent("01-01-07-02-02-01-01_1.mp4").path]
        let work = paths + paths  // two rounds, so the same file also runs on two threads at once

        let serial = work.map(Self.outcome)
        let results = Results(count: work.count)
        DispatchQueue.concurrentPerform(iterations: work.count) { i in results.set(i, Self.outcome(work[i])) }

        for i in work.indices {
            #expect(results.get(i) == serial[i], "\(work[i]) differs between serial and parallel runs")
            if case .failed(let error) = serial[i] { #expect(error.path == work[i]) }
        }
        #expect(serial.filter { if case .failed = $0 { true } else { false } }.count == 4)
    }
}

/// A lock-guarded slot array for results written from several threads.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [ConcurrencyTests.Outcome?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: ConcurrencyTests.Outcome) { lock.lock(); slots[i] = value; lock.unlock() }
    func get(_ i: Int) -> ConcurrencyTests.Outcome? { lock.lock(); defer { lock.unlock() }; return slots[i] }
}
