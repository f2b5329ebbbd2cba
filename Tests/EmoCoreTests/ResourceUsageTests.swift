import EmoCore
import Foundation
import Testing

/// Peak memory and CPU time as stages record them. Serialized: VmHWM is one per process (tests of
/// other suites running at once can only raise a peak, which no assertion here is harmed by, except
/// the microseconds-long quiet meter's upper bound).
@Suite("resource usage", .serialized, .enabled(if: ProcessMemory.highWaterBytes() != nil, "needs Linux /proc"))
struct ResourceUsageTests {
    /// Touches `megabytes` MiB page by page (so they are resident), then frees them.
    static func touch(megabytes: Int, holdFor seconds: TimeInterval = 0) {
        let count = megabytes << 20
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        defer { bytes.deallocate() }
        for page in stride(from: 0, to: count, by: 4096) { bytes[page] = UInt8(truncatingIfNeeded: page >> 12) }
        if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
    }

    @Test func aMeterSeesThePeakOfWhatRanInsideItAfterItWasFreed() throws {
        Self.touch(megabytes: 96)                    // an earlier peak the next meter must not report
        ProcessMemory.releaseFreedMemory()
        let quiet = ResourceMeter().finish()
        let quietPeak = try #require(quiet.peakRSSMB)
        let resident = ProcessMemory.megabytes(try #require(ProcessMemory.residentBytes()))
        #expect(quietPeak < resident + 48, "a meter over nothing reports about the resident memory, not the earlier peak: \(quietPeak) MB")

        let meter = ResourceMeter()
        Self.touch(megabytes: 64)
        let usage = meter.finish()
        let peak = try #require(usage.peakRSSMB)
        #expect(peak >= quietPeak + 60, "64 MB touched inside: peak \(peak) MB, before \(quietPeak) MB")
        #expect(usage.seconds >= 0 && usage.cpuSeconds >= 0)
        #expect(meter.finish() == usage, "finishing again returns the same measurement")
    }

    @Test func theSamplerSeesATransientPeakWithoutResettingTheMetersOne() throws {
        ProcessMemory.releaseFreedMemory()
        let meter = ResourceMeter()
        Self.touch(megabytes: 80)                    // the meter's peak, before the sampler starts
        ProcessMemory.releaseFreedMemory()
        let resident = try #require(ProcessMemory.residentBytes())
        let sampler = RSSSampler()
        Self.touch(megabytes: 40, holdFor: 0.05)
        let sampled = sampler.stop()
        #expect(sampled >= resident + (36 << 20), "sampled \(sampled >> 20) MB over \(resident >> 20) MB resident")
        let peak = try #require(meter.finish().peakRSSMB)
        #expect(peak >= ProcessMemory.megabytes(resident) + 76, "the meter keeps the 80 MB from before the sampler: \(peak) MB")
    }

    @Test func cpuSecondsCountTheWorkOfEveryThread() {
        let meter = ResourceMeter()
        let sums = ParallelMap.map([0, 1], threads: 2) { seed -> Double in
            var x = Double(seed)
            for i in 0..<20_000_000 { x = x * 0.999_999 + Double(i & 7) }
            return x
        }
        let usage = meter.finish()
        #expect(sums.count == 2 && sums.allSatisfy(\.isFinite))
        // CPU time counts both threads' work; other tests may add their own, never take it away.
        #expect(usage.cpuSeconds > 0.01, "\(usage)")
    }

    @Test func logLineSaysBothFigures() {
        let usage = ResourceUsage(seconds: 3, cpuSeconds: 5.25, peakRSSMB: 181.4)
        #expect(usage.line == "cpu 5.2 s, peak RSS 181 MB" || usage.line == "cpu 5.3 s, peak RSS 181 MB")
        #expect(ResourceUsage(seconds: 1, cpuSeconds: 1, peakRSSMB: nil).line.hasSuffix("peak RSS unknown"))
    }
}
