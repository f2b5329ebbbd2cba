import Dispatch
import Foundation
import COpenBLAS

/// Engine-wide threading. Work is split into `threads` fixed contiguous
/// chunks, and any cross-chunk reduction is summed in chunk order, so a given
/// thread count always produces the same bits.
public enum Engine {
    nonisolated(unsafe) public private(set) static var threads = 1

    /// Sets the worker count. Our own loops split samples or channels across
    /// workers and call sgemm single-threaded inside them (measured faster than
    /// handing a threaded sgemm one sample at a time); glibc is told to keep
    /// freed blocks instead of unmapping them, so that the large activation
    /// buffers of one training step are reused by the next without page faults.
    /// The GEMM kernels are chosen here too, if no product has chosen them yet.
    public static func configure(threads n: Int) {
        GEMMKernel.ensureSelected()
        _ = blasServerThreads
        threads = max(1, n)
        openblas_set_num_threads(1)
        keepFreedMemory()
    }

    /// `configure`, once the address-space limit is known to leave OpenBLAS room for `threads`: what
    /// train, evaluate and predict call, so a limit OpenBLAS would hang on is named instead.
    public static func configureWithinLimits(threads n: Int) throws {
        // Chunks run on libdispatch's pool, never wider than the cores: a count above them (predict scoring with
        // a big machine's recorded count) splits the work the same way but touches no more buffers.
        let multiplying = min(n, ProcessInfo.processInfo.activeProcessorCount)
        if let problem = addressSpaceShortfall(threads: multiplying) { throw AddressSpaceTooSmall(description: problem) }
        configure(threads: n)
    }

    /// What OpenBLAS reserves for each thread that multiplies: its own server threads when it loads,
    /// and each of ours at its first product.
    public static let blasBufferBytes: UInt64 = 128 << 20

    /// The threads OpenBLAS started when it loaded (OPENBLAS_NUM_THREADS, else one per core), read
    /// before `configure` sets its count to 1: each reserved its buffer then.
    public static let blasServerThreads = Int(max(1, openblas_get_num_threads()))

    /// OpenBLAS retries a buffer the address-space limit (`ulimit -v`) refuses forever: the process
    /// hangs, at start-up or at its first product. Such a limit is named instead: at start-up with
    /// `threads` 0 (OpenBLAS's own threads), before train or evaluate with their thread count. Nil when
    /// the limit leaves room: 1 GiB besides the buffers of OpenBLAS's threads and of `threads`. Only
    /// `ulimit -v` is seen: a machine out of memory under strict overcommit is not.
    public static func addressSpaceShortfall(threads: Int) -> String? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        let blas = UInt64(blasServerThreads)
        let needed = (1 << 30) + blasBufferBytes * (UInt64(max(0, threads)) + blas)
        guard UInt64(limit.rlim_cur) < needed else { return nil }
        let who = threads > 0 ? "\(threads) thread(s) and OpenBLAS's \(blas)" : "OpenBLAS's \(blas) thread(s)"
        return "the address-space limit (ulimit -v) is \(limit.rlim_cur >> 20) MB, below the \(needed >> 20) MB that \(who) need: "
            + "OpenBLAS reserves 128 MB for each thread that multiplies and, refused, waits forever; raise the limit "
            + "(or OPENBLAS_NUM_THREADS; resources.max_memory_mb bounds what emopipe itself holds)"
    }

    /// glibc's mallopt is not in Swift's Glibc module; look it up at run time
    /// (a no-op on other C libraries). glibc caps M_MMAP_THRESHOLD at 32 MB, so
    /// larger activations would be mmapped and page-faulted afresh every step
    /// (measured: ~4x the cost of the ReLU that writes them); M_MMAP_MAX (-4)
    /// = 0 keeps them on the heap, and M_TRIM_THRESHOLD (-1) keeps freed heap.
    private static func keepFreedMemory() {
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        _ = mallopt(-4, 0)
        _ = mallopt(-1, Int32.max)
    }
}

/// Runs `body` on `Engine.threads` contiguous sub-ranges of 0..<n.
@inline(__always)
func parallelChunks(_ n: Int, minimumPerChunk: Int = 1, workers: Int? = nil, _ body: (Range<Int>, Int) -> Void) {
    let chunks = max(1, min(workers ?? Engine.threads, n / max(minimumPerChunk, 1)))
    if chunks == 1 {
        body(0..<n, 0)
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        body(chunkRange(n, chunks, c), c)
    }
}

@inline(__always)
func chunkRange(_ n: Int, _ chunks: Int, _ c: Int) -> Range<Int> {
    let base = n / chunks, extra = n % chunks
    let start = c * base + min(c, extra)
    return start..<(start + base + (c < extra ? 1 : 0))
}

/// An array of `count` floats whose contents the caller overwrites entirely
/// (skips the zero fill that `repeating:` would do).
@inline(__always)
func uninitializedFloats(_ count: Int, _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        fill(buffer)
        initialized = count
    }
}
