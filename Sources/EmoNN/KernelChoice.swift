import CCPUFeatures

/// The vector instruction sets a CPU offers (and the OS saves), by the names /proc/cpuinfo uses.
public struct CPUFeatures: Equatable, Sendable {
    public var vendor: String
    public var flags: Set<String>

    public init(vendor: String, flags: Set<String>) {
        self.vendor = vendor
        self.flags = flags
    }

    /// This machine's, from CPUID; a set the OS does not save (XGETBV) is left out.
    public static let current: CPUFeatures = {
        var raw = emo_cpu_features()
        emo_cpu_features_read(&raw)
        let vendor = withUnsafeBytes(of: raw.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let named: [(String, Bool)] = [
            ("avx", raw.avx), ("avx2", raw.avx2), ("fma", raw.fma), ("avx512f", raw.avx512f),
            ("avx512dq", raw.avx512dq), ("avx512cd", raw.avx512cd), ("avx512bw", raw.avx512bw),
            ("avx512vl", raw.avx512vl),
        ]
        return CPUFeatures(vendor: vendor, flags: Set(named.filter(\.1).map(\.0)))
    }()
}

/// How wide the vector code a CPU can run, or an OpenBLAS kernel set uses, is.
public enum VectorTier: Int, Comparable, Sendable {
    /// Below AVX2: SSE-only or AVX-only kernels (Prescott, Nehalem, Core2, Sandybridge, …).
    case generic
    case avx2
    case avx512

    public static func < (a: VectorTier, b: VectorTier) -> Bool { a.rawValue < b.rawValue }

    /// The instruction set a message names.
    public var name: String {
        switch self {
        case .generic: return "SSE/AVX"
        case .avx2: return "AVX2"
        case .avx512: return "AVX-512"
        }
    }

    /// The widest tier the CPU can run. AVX-512 needs the subsets OpenBLAS's SkylakeX kernels use.
    public init(cpu: CPUFeatures) {
        let f = cpu.flags
        if f.isSuperset(of: ["avx2", "fma", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"]) {
            self = .avx512
        } else if f.isSuperset(of: ["avx2", "fma"]) {
            self = .avx2
        } else {
            self = .generic
        }
    }

    /// The tier of an OpenBLAS core name (as `openblas_get_corename` spells it, any case);
    /// nil for a name this table does not know, which is then never replaced.
    public init?(openBLASCore name: String) {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids":
            self = .avx512
        case "haswell", "zen", "excavator":
            self = .avx2
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
             "nehalem", "athlon", "opteron", "opteron(sse3)", "barcelona", "nano", "sandybridge", "bobcat",
             "bulldozer", "piledriver", "steamroller":
            self = .generic
        default:
            return nil
        }
    }

    /// The OpenBLAS core to ask for on a CPU of this tier: Zen's table on AMD (Haswell's kernels
    /// with AMD's cache blocking), Haswell's elsewhere; SkylakeX's AVX-512 kernels on both.
    func openBLASCore(vendor: String) -> String? {
        switch self {
        case .avx512: return "SkylakeX"
        case .avx2: return vendor == "AuthenticAMD" ? "Zen" : "Haswell"
        case .generic: return nil
        }
    }
}

/// What to do about the kernels OpenBLAS picked at load time.
public enum KernelDecision: Equatable, Sendable {
    /// The user set OPENBLAS_CORETYPE: their choice stands, whatever it costs.
    case userChoice(String)
    /// The user's OPENBLAS_CORETYPE names kernels of a tier this CPU cannot run: the first product
    /// would stop the process with SIGILL. The CPU's own choice (nil: OpenBLAS's detection) runs instead.
    case overrule(asked: String, needs: VectorTier, with: String?)
    /// OpenBLAS's own choice already uses what the CPU offers (or is a core this table does not know).
    case keep(String)
    /// OpenBLAS did not recognise the CPU and fell back to narrower kernels than it can run.
    case replace(detected: String, with: String)
}

public enum KernelChoice {
    /// The pure decision, from the core OpenBLAS picked, the CPU's features and the user's
    /// OPENBLAS_CORETYPE (nil or empty when unset). Only a core below the CPU's tier is
    /// replaced: a recognised AVX2 or AVX-512 core on a CPU of that tier is OpenBLAS's call. The
    /// user's choice stands unless the core it installed needs more than the CPU has.
    public static func choose(corename: String, cpu: CPUFeatures, userCoreType: String?) -> KernelDecision {
        let cpuTier = VectorTier(cpu: cpu)
        if let user = userCoreType, !user.isEmpty {
            if let needs = VectorTier(openBLASCore: corename), needs > cpuTier {
                return .overrule(asked: user, needs: needs, with: cpuTier.openBLASCore(vendor: cpu.vendor))
            }
            return .userChoice(user)
        }
        guard let coreTier = VectorTier(openBLASCore: corename), coreTier < cpuTier,
              let better = cpuTier.openBLASCore(vendor: cpu.vendor) else {
            return .keep(corename)
        }
        return .replace(detected: corename, with: better)
    }
}
