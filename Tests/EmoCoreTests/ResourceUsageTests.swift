import EmoCore
import EmoTestSupport
import Foundation
import Testing

/// Peak memory and CPU time as stages record them. Serialized: VmHWM is one per process (tests of
/// other suites running at once can only raise a peak, which no assertion here is harmed by, except
/// the microseconds-long quiet meter's upper bound).
@Suite("resource usage", .serialized, .enabled(if: ProcessMemory.highWaterBytes() != nil, "needs Linux /proc"))
struct ResourceUsageTests {
    /// Touches `megabytes` MiB page by page (so they are resident), then frees them.
    /// Mapped straight from the kernel, not through malloc: the engine's suites set glibc to keep freed
    /// heap memory (no mmap, no trim), and a malloc'd block could then land on pages already resident,
    /// leaving RSS where it was (a CI run saw "sampled 139 MB over 139 MB resident" five times).
    static func touch(megabytes: Int, whileHeld: () -> Void = {}) {
        let count = megabytes << 20
        guard let mapped = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            Issue.record("mmap of \(megabytes) MB failed: \(String(cString: strerror(errno)))")
            return
        }
        defer { munmap(mapped, count) }
        let bytes = mapped.assumingMemoryBound(to: UInt8.self)
        for page in stride(from: 0, to: count, by: 4096) { bytes[page] = UInt8(truncatingIfNeeded: page >> 12) }
        whileHeld()
    }

    /// Runs a measurement up to five times until it holds. RSS and VmHWM are one per process, and other
    /// suites run in parallel in this process: one freeing memory while a measurement runs, or a stage
    /// of theirs resetting VmHWM, can spoil one attempt, not five in a row. Returns every failure seen.
    static func holdsInOneOfFiveAttempts(_ attempt: () throws -> String?) rethrows -> [String] {
        var failures: [String] = []
        for _ in 0..<5 {
            guard let failure = try attempt() else { return [] }
            failures.append(failure)
        }
        return failures
    }

    @Test func aMeterSeesThePeakOfWhatRanInsideItAfterItWasFreed() throws {
        let failures = try Self.holdsInOneOfFiveAttempts {
            Self.touch(megabytes: 96)                    // an earlier peak the next meter must not report
            ProcessMemory.releaseFreedMemory()
            let quiet = ResourceMeter().finish()
            let quietPeak = try #require(quiet.peakRSSMB)
            let resident = ProcessMemory.megabytes(try #require(ProcessMemory.residentBytes()))
            guard quietPeak < resident + 48 else {
                return "a meter over nothing reports about the resident memory, not the earlier peak: \(quietPeak) MB over \(resident) MB"
            }
            let meter = ResourceMeter()
            Self.touch(megabytes: 64)
            let usage = meter.finish()
            let peak = try #require(usage.peakRSSMB)
            guard peak >= quietPeak + 60 else { return "64 MB touched inside: peak \(peak) MB, before \(quietPeak) MB" }
            guard usage.seconds >= 0 && usage.cpuSeconds >= 0 else { return "negative figures: \(usage)" }
            guard meter.finish() == usage else { return "finishing again gave another measurement" }
            return nil
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func theSamplerSeesATransientPeakWithoutResettingTheMetersOne() throws {
        let failures = try Self.holdsInOneOfFiveAttempts {
            ProcessMemory.releaseFreedMemory()
            let meter = ResourceMeter()
            Self.touch(megabytes: 80)                    // the meter's peak, before the sampler starts
            ProcessMemory.releaseFreedMemory()
            let resident = try #require(ProcessMemory.residentBytes())
            let sampler = RSSSampler()
            // Held until the sampler has taken a whole sample since: under load its thread can start
            // late, and a fixed hold (50 ms) was sometimes over before it sampled at all.
            Self.touch(megabytes: 40) {
                let seen = sampler.samplesTaken, deadline = Date().addingTimeInterval(10)
                while sampler.samplesTaken < seen + 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
            }
            let sampled = sampler.stop()
            guard sampled >= resident + (36 << 20) else { return "sampled \(sampled >> 20) MB over \(resident >> 20) MB resident" }
            let peak = try #require(meter.finish().peakRSSMB)
            guard peak >= ProcessMemory.megabytes(resident) + 76 else { return "the meter lost the 80 MB from before the sampler: \(peak) MB" }
            return nil
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// Freed heap memory stays resident (glibc keeps it; the engine tells it to): a budget check reads the
    /// memory in use, after handing it back, or a sweep's second trial was refused for the first's tensors.
    @Test func residentMemoryInUseLeavesOutWhatWasFreed() throws {
        // Other suites run in this process at the same time: their threads can take the freed chunks
        // or grow between the two readings (CI once saw 82 MB of the 200), so one attempt in five must hold.
        let failures = try Self.holdsInOneOfFiveAttempts {
            let size = 64 << 10   // below glibc's mmap threshold: from the heap
            let chunks = (0..<3200).compactMap { _ in malloc(size) }
            guard chunks.count == 3200 else { chunks.forEach { free($0) }; return "only \(chunks.count) of 3200 chunks allocated" }
            for chunk in chunks { memset(chunk, 1, size) }
            // Above them, so the heap's top cannot shrink past the freed ones by itself.
            guard let pin = malloc(size) else { chunks.forEach { free($0) }; return "no memory for the pin" }
            defer { free(pin) }
            memset(pin, 1, size)
            for chunk in chunks { free(chunk) }
            let held = try #require(ProcessMemory.residentBytes())
            let inUse = try #require(ProcessMemory.residentBytesInUse())
            return held - inUse > 100 << 20 ? nil : "\(held >> 20) MB resident, \(inUse >> 20) MB in use after 200 MB were freed"
        }
        #expect(failures.isEmpty, "\(failures)")
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

@Suite("open-file limit and file errors")
struct OpenFileLimitUnitTests {
    @Test func aReadThatRanOutOfOpenFilesIsToldApartFromTheFilesOwnProblems() {
        #expect(OpenFileLimit.ranOut("cannot open: \(String(cString: strerror(EMFILE)))"))
        #expect(OpenFileLimit.ranOut("avformat_open_input: \(String(cString: strerror(ENFILE)))"))
        #expect(!OpenFileLimit.ranOut("cannot open: \(String(cString: strerror(ENOENT)))"))
        #expect(!OpenFileLimit.ranOut("invalid data found when processing input"))
        // Memory is not the limit's: a crafted file can make a decoder ask for too much, every run.
        #expect(!OpenFileLimit.ranOut(String(cString: strerror(ENOMEM))))
    }

    @Test func foundationFileErrorsNameTheFileAndThePOSIXReason() throws {
        let path = try TestSupport.temporaryFolder("file-error") + "/missing.bin"
        do {
            _ = try Data(contentsOf: URL(fileURLWithPath: path))
            Issue.record("reading a missing file succeeded")
        } catch {
            #expect(FileError.describe(error) == "\(path): \(String(cString: strerror(ENOENT)))")
        }
        #expect(FileError.describe(EmoError.interrupted) == "interrupted", "other errors describe themselves")
        // Decoding errors share Foundation's error domain on Linux but name no file: left as they describe themselves.
        do {
            _ = try JSONDecoder().decode([String: Int].self, from: Data("{\"a\": \"b\"}".utf8))
            Issue.record("decoding a string as an Int succeeded")
        } catch {
            #expect(FileError.describe(error) == "\(error)")
        }
    }
}
