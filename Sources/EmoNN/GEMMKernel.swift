import COpenBLAS
import Foundation

/// The GEMM kernels this process runs, chosen once, before the engine's first product.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernel table from the CPU's model number when it loads.
/// A CPU newer than the library (Debian 12's 0.3.21 on a Sapphire Rapids Xeon) gets the generic
/// Prescott table, 4-5x slower. OpenBLAS reads OPENBLAS_CORETYPE only in gotoblas_dynamic_init,
/// which such builds export with gotoblas_dynamic_quit: calling the pair with the variable set
/// installs another table in place (measured: same speed and same bits as a process started with
/// it). So the fix works inside any executable that links the engine, the test runner included.
public enum GEMMKernel {
    public struct Selection: Equatable, Sendable {
        public let decision: KernelDecision
        /// `openblas_get_corename()` once the choice is made.
        public let coreInUse: String

        /// One line for run records, `--version` and bench output.
        public var summary: String {
            switch decision {
            case .userChoice(let name) where coreInUse.lowercased() != name.lowercased():
                // OpenBLAS ignores a name it does not know (or takes an alias): what runs is said, not the name alone.
                return "OpenBLAS \(coreInUse) kernels (OPENBLAS_CORETYPE=\(Self.shown(name)) is not their name: OpenBLAS took it for them or ignored it)"
            case .userChoice(let name):
                return "OpenBLAS \(coreInUse) kernels (OPENBLAS_CORETYPE=\(Self.shown(name)))"
            case .keep:
                return "OpenBLAS \(coreInUse) kernels (OpenBLAS's choice)"
            case .replace(let detected, let target) where coreInUse.lowercased() == target.lowercased():
                return "OpenBLAS \(coreInUse) kernels (chosen by EmoNN: OpenBLAS picked \(detected) on this CPU)"
            case .replace(let detected, let target):
                return "OpenBLAS \(coreInUse) kernels (EmoNN could not switch from \(detected) to \(target))"
            case .overrule(let asked, let needs, _):
                return "OpenBLAS \(coreInUse) kernels (not OPENBLAS_CORETYPE=\(asked): its \(needs.name) kernels do not run on this CPU)"
            }
        }

        /// The variable's value as a message shows it: core names are short printable ASCII, so anything
        /// else is spelt \u{…} and a long value cut (it was echoed whole, 100 KB of it).
        static func shown(_ value: String) -> String {
            let spelt = value.unicodeScalars.prefix(64).map { (0x20...0x7E).contains($0.value) ? String($0) : "\\u{\(String($0.value, radix: 16, uppercase: true))}" }.joined()
            return value.unicodeScalars.count > 64 ? spelt + "… (\(value.utf8.count) bytes)" : spelt
        }

        /// Kernels in use that this CPU cannot run: OpenBLAS could not be switched (a build without DYNAMIC_ARCH).
        public var beyondTheCPU: Bool {
            (VectorTier(openBLASCore: coreInUse) ?? .generic) > VectorTier(cpu: .current)
        }

        /// What the user should hear once: their kernel choice was set aside, and why.
        public var warning: String? {
            guard case .overrule(let asked, let needs, _) = decision else { return nil }
            let outcome = beyondTheCPU ? "EmoNN could not switch this OpenBLAS to other kernels, so the first matrix product will stop the process: unset it"
                : "OpenBLAS \(coreInUse) kernels run instead"
            return "warning: OPENBLAS_CORETYPE=\(asked) asks for \(needs.name) kernels, which this CPU cannot run "
                + "(they would stop the process at its first matrix product); " + outcome
        }
    }

    /// The user's own kernel choice; always respected.
    public static let userVariable = "OPENBLAS_CORETYPE"
    /// Test harnesses only: "1" makes OPENBLAS_CORETYPE stand for what OpenBLAS detected, so a
    /// machine OpenBLAS knows can play one it does not (OPENBLAS_CORETYPE=Prescott plus this).
    public static let simulationVariable = "EMONN_TEST_CORETYPE_AS_DETECTED"

    /// Made on first use; Swift runs a static's initialiser once and makes other threads wait
    /// for it, so no product can run while the table is being swapped.
    public static let selection: Selection = select()

    /// Call before the first BLAS call of a process (the engine does, in `Engine.configure`,
    /// `sgemm` and `NumericLibraries.versions`).
    @inline(__always)
    public static func ensureSelected() { _ = selection }

    /// The OpenBLAS kernel table in use right now.
    public static var coreInUse: String { String(cString: openblas_get_corename()) }

    private static func select() -> Selection {
        let environment = ProcessInfo.processInfo.environment
        let simulating = environment[simulationVariable] == "1"
        let decision = KernelChoice.choose(corename: coreInUse, cpu: .current,
                                           userCoreType: simulating ? nil : environment[userVariable])
        switch decision {
        case .replace(_, let target): installCore(target)
        case .overrule(_, _, let target): installCore(target)
        case .userChoice, .keep: break
        }
        let selection = Selection(decision: decision, coreInUse: coreInUse)
        // fputs, not FileHandle.write, which traps when stderr cannot be written.
        if let warning = selection.warning { fputs(warning + "\n", stderr) }
        return selection
    }

    /// Re-runs OpenBLAS's kernel selection with OPENBLAS_CORETYPE=name (unset for nil: OpenBLAS's
    /// own detection), then puts the variable back as it was, so child processes see the user's
    /// environment unchanged. Looked up at run time: a build without DYNAMIC_ARCH has no such
    /// functions, and then nothing changes.
    private static func installCore(_ name: String?) {
        typealias Hook = @convention(c) () -> Void
        let process = UnsafeMutableRawPointer(bitPattern: 0)   // RTLD_DEFAULT
        guard let quit = dlsym(process, "gotoblas_dynamic_quit"),
              let initialise = dlsym(process, "gotoblas_dynamic_init") else { return }
        let previous = getenv(userVariable).map { String(cString: $0) }
        if let name { setenv(userVariable, name, 1) } else { unsetenv(userVariable) }
        unsafeBitCast(quit, to: Hook.self)()
        unsafeBitCast(initialise, to: Hook.self)()
        if let previous { setenv(userVariable, previous, 1) } else { unsetenv(userVariable) }
    }
}

/// Times single-threaded sgemm, as the engine calls it (one sample per call, one call per
/// worker), for `make bench`'s per-shape GFLOP/s.
public enum GEMMProbe {
    /// GFLOP/s of C = op(A)·op(B), C m×n, over at least `seconds` of this thread's CPU time
    /// (steadier than wall time on a shared machine).
    public static func gflops(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, seconds: Double = 0.3) -> Double {
        guard m > 0, n > 0, k > 0 else { return 0 }
        let a = (0..<(m * k)).map { Float($0 % 17) * 0.1 - 0.8 }
        let b = (0..<(k * n)).map { Float($0 % 13) * 0.07 - 0.4 }
        var c = [Float](repeating: 0, count: m * n)
        let (lda, ldb) = (transA ? m : k, transB ? k : n)
        var calls = 0
        let start = threadCPUSeconds()
        var elapsed = 0.0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    repeat {
                        sgemm(transA, transB, m, n, k, 1, pa.baseAddress!, lda, pb.baseAddress!, ldb, 0, pc.baseAddress!, n)
                        calls += 1
                        elapsed = threadCPUSeconds() - start
                    } while elapsed < seconds
                }
            }
        }
        return 2 * Double(m) * Double(n) * Double(k) * Double(calls) / max(elapsed, 1e-9) / 1e9
    }

    private static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
