import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one piece of work cost the process: wall time, CPU time (user + system, all threads) and
/// the peak resident memory while it ran.
///
///     let meter = ResourceMeter()
///     try stage.run(...)
///     let usage = meter.finish()   // seconds 12.3, cpu_seconds 23.9, peak_rss_mb 181.4
public struct ResourceUsage: Codable, Equatable, Sendable {
    public var seconds: Double
    public var cpuSeconds: Double
    /// nil where the platform does not say (no /proc).
    public var peakRSSMB: Double?

    public init(seconds: Double, cpuSeconds: Double, peakRSSMB: Double?) {
        self.seconds = seconds; self.cpuSeconds = cpuSeconds; self.peakRSSMB = peakRSSMB
    }

    /// `JSONOutput`'s snake_case turns these into seconds, cpu_seconds, peak_rss_mb.
    enum CodingKeys: String, CodingKey { case seconds, cpuSeconds, peakRSSMB = "peakRssMb" }

    /// "cpu 23.9 s, peak RSS 181 MB", for logs.
    public var line: String {
        "cpu \(cpuSeconds.fixedText(places: 1)) s, peak RSS " + (peakRSSMB.map { "\($0.fixedText(places: 0)) MB" } ?? "unknown")
    }
}

#if os(Linux)
/// glibc's malloc_trim(3), which the Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// The process's resident memory as Linux reports it in /proc/self/status.
public enum ProcessMemory {
    /// Resident memory now (VmRSS), in bytes.
    public static func residentBytes() -> Int? { statusField("VmRSS:") }

    /// Address space mapped now (VmSize), in bytes: what the address-space limit counts.
    public static func addressSpaceBytes() -> Int? { statusField("VmSize:") }

    /// The address-space limit (`ulimit -v`, RLIMIT_AS) in bytes, or nil when there is none.
    public static func addressSpaceLimitBytes() -> Int? { SoftLimit.of(RLIMIT_AS).flatMap { Int(exactly: $0) } }

    /// Resident memory once the allocator has handed back what it holds free, for a check against a
    /// budget: glibc keeps freed memory mapped, so a sweep's earlier trial (300 MB after it, 115 MB
    /// before) made the next trial's batch size look too large in the same process.
    public static func residentBytesInUse() -> Int? {
        _ = mallocTrim?(0)
        return residentBytes()
    }

    /// glibc's malloc_trim, which the Glibc module does not export (malloc.h); nil where there is none.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    /// The highest resident memory since the process started or since the last `resetHighWater`
    /// (VmHWM), in bytes.
    public static func highWaterBytes() -> Int? { statusField("VmHWM:") }

    /// Lowers VmHWM to the current resident memory (writing "5" to /proc/self/clear_refs, Linux ≥ 4.0),
    /// so the next reading is the peak of what runs from now on. False where the kernel refuses.
    @discardableResult
    public static func resetHighWater() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }

    /// Process CPU time so far (user + system, every thread), in seconds.
    public static func cpuSeconds() -> Double {
        var now = timespec()
        guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now) == 0 else { return 0 }
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Hands freed heap memory back to the kernel, so resident memory falls after a batch of work
    /// (glibc keeps freed chunks in its arenas otherwise, one arena per thread).
    public static func releaseFreedMemory() {
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }

    public static func megabytes(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }

    /// The memory this process can have at most: the machine's RAM, or the lowest limit of the
    /// process's cgroup and its ancestors when lower (a container, a Slurm job, a systemd MemoryMax),
    /// cgroup v2 or v1; nil when none can be read.
    public static func machineLimitBytes() -> Int? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        let physical = pages > 0 && pageSize > 0 && pages < Int.max / pageSize ? pages * pageSize : nil
        let limits = [physical].compactMap { $0 } + cgroupLimits()
        return limits.min()
    }

    /// The numeric memory limits on the way from the process's cgroup up to the hierarchy's root.
    static func cgroupLimits() -> [Int] {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return [] }
        var limits: [Int] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let (mount, file): (String, String)
            if fields[0] == "0" && fields[1].isEmpty { (mount, file) = ("/sys/fs/cgroup", "memory.max") }           // v2
            else if fields[1].split(separator: ",").contains("memory") { (mount, file) = ("/sys/fs/cgroup/memory", "memory.limit_in_bytes") }  // v1
            else { continue }
            var path = String(fields[2])
            while true {
                let value = (try? String(contentsOfFile: mount + path + "/" + file, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                if let limit = value.flatMap({ Int($0) }), limit > 0 { limits.append(limit) }  // "max" is no limit
                if path == "/" || path.isEmpty { break }
                path = PathText.folder(of: path)
            }
        }
        return limits
    }

    /// A "Name:   1234 kB" line of /proc/self/status, in bytes.
    static func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.dropFirst(name.count).filter(\.isNumber)
            guard let kilobytes = Int(digits), kilobytes < Int.max / 1024 else { return nil }
            return kilobytes * 1024
        }
        return nil
    }
}

/// The highest resident memory while a piece of work runs, without touching VmHWM (which the
/// stage's `ResourceMeter` owns): VmRSS sampled every few milliseconds on a thread of its own, and
/// VmHWM itself when it rose meanwhile (then the exact peak happened inside).
///
///     let sampler = RSSSampler()
///     work()
///     let peak = sampler.stop()   // bytes
public final class RSSSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var highest: Int
    private var running = true
    private var samples = 0
    private let highWaterAtStart: Int?
    private let done = DispatchSemaphore(value: 0)

    public init(interval: TimeInterval = 0.002) {
        highWaterAtStart = ProcessMemory.highWaterBytes()
        highest = ProcessMemory.residentBytes() ?? 0
        // A thread of its own, not a shared queue: sampling must go on while the work fills every worker.
        // Without one (`ulimit -u`) the peak is what stop() reads: VmRSS then, and VmHWM if it rose.
        let started = NativeThread.start { [self] in
            while isRunning {
                if let now = ProcessMemory.residentBytes() { raise(to: now) }
                lock.lock(); samples += 1; lock.unlock()
                Thread.sleep(forTimeInterval: interval)
            }
            done.signal()
        }
        if !started { running = false }
    }

    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    /// Samples taken so far: on a loaded machine the sampling thread may start late, and a caller
    /// that must know its work was seen (a test) can wait for the count to move.
    public var samplesTaken: Int { lock.lock(); defer { lock.unlock() }; return samples }

    private func raise(to bytes: Int) { lock.lock(); highest = max(highest, bytes); lock.unlock() }

    /// Stops sampling and returns the peak seen, in bytes.
    public func stop() -> Int {
        lock.lock(); let wasRunning = running; running = false; lock.unlock()
        if wasRunning { done.wait() }
        if let now = ProcessMemory.residentBytes() { raise(to: now) }
        if let before = highWaterAtStart, let after = ProcessMemory.highWaterBytes(), after > before { raise(to: after) }
        lock.lock(); defer { lock.unlock() }
        return highest
    }
}

/// Measures one piece of work from its creation to `finish()`: wall time, process CPU time
/// (CLOCK_PROCESS_CPUTIME_ID) and peak resident memory. The peak is VmHWM after resetting it at
/// the start (`ProcessMemory.resetHighWater`): exact, and per piece of work rather than the
/// process's high-water mark. One meter at a time: a reset ends the previous measurement's peak,
/// and the process's own ru_maxrss then counts from the last meter's start.
public final class ResourceMeter {
    private let started = Date()
    private let cpuStarted = ProcessMemory.cpuSeconds()
    /// False where the kernel refused the reset: the peak is then the process's high-water mark so far.
    public let peakIsPerMeter = ProcessMemory.resetHighWater()
    private var finished: ResourceUsage?

    public init() {}

    /// The usage so far, closing the measurement (later calls return the same value).
    public func finish() -> ResourceUsage {
        if let finished { return finished }
        let usage = ResourceUsage(seconds: Date().timeIntervalSince(started),
                                  cpuSeconds: max(0, ProcessMemory.cpuSeconds() - cpuStarted),
                                  // Without the reset VmHWM is the process's peak, not this work's: unknown.
                                  peakRSSMB: peakIsPerMeter ? ProcessMemory.highWaterBytes().map(ProcessMemory.megabytes) : nil)
        finished = usage
        return usage
    }
}
