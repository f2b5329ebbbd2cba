import EmoNN
import EmoTestSupport
import Foundation
import Testing

/// The choice of OpenBLAS kernels from given CPU flags and core names, whatever CPU runs the tests.
@Suite("GEMM kernel choice")
struct KernelChoiceTests {
    static let intelAVX2 = CPUFeatures(vendor: "GenuineIntel", flags: ["avx", "avx2", "fma"])
    static let amdAVX2 = CPUFeatures(vendor: "AuthenticAMD", flags: ["avx", "avx2", "fma"])
    /// A Sapphire-Rapids-class Xeon: the AVX-512 subsets SkylakeX's kernels use.
    static let intelAVX512 = CPUFeatures(vendor: "GenuineIntel", flags: [
        "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"])

    @Test(arguments: ["Prescott", "Nehalem", "Core2", "Katmai", "Atom", "Barcelona", "Sandybridge", "PRESCOTT"])
    func aGenericCoreOnAnAVX2CPUIsReplaced(core: String) {
        #expect(KernelChoice.choose(corename: core, cpu: Self.intelAVX2, userCoreType: nil)
                == .replace(detected: core, with: "Haswell"))
        #expect(KernelChoice.choose(corename: core, cpu: Self.amdAVX2, userCoreType: nil)
                == .replace(detected: core, with: "Zen"), "AMD gets Zen's table of the same kernels")
    }

    @Test func anAVX512CPUGetsSkylakeXKernelsInsteadOfGenericOrAVX2Ones() {
        for core in ["Prescott", "Haswell"] {
            #expect(KernelChoice.choose(corename: core, cpu: Self.intelAVX512, userCoreType: nil)
                    == .replace(detected: core, with: "SkylakeX"))
        }
    }

    @Test(arguments: [("Zen", amdAVX2), ("Haswell", intelAVX2), ("SkylakeX", intelAVX512), ("Cooperlake", intelAVX512)])
    func aCoreThatUsesWhatTheCPUHasIsKept(core: String, cpu: CPUFeatures) {
        #expect(KernelChoice.choose(corename: core, cpu: cpu, userCoreType: nil) == .keep(core))
    }

    @Test func aCPUWithoutAVX2AndFMAKeepsWhateverOpenBLASPicked() {
        let avxOnly = CPUFeatures(vendor: "GenuineIntel", flags: ["avx"])
        let avx2WithoutFMA = CPUFeatures(vendor: "GenuineIntel", flags: ["avx", "avx2"])
        let none = CPUFeatures(vendor: "", flags: [])
        for cpu in [avxOnly, avx2WithoutFMA, none] {
            #expect(KernelChoice.choose(corename: "Sandybridge", cpu: cpu, userCoreType: nil) == .keep("Sandybridge"))
            #expect(KernelChoice.choose(corename: "Prescott", cpu: cpu, userCoreType: nil) == .keep("Prescott"))
        }
    }

    @Test func avx512WithoutTheSubsetsSkylakeXNeedsCountsAsAVX2() {
        // Knights Landing: AVX-512F and CD, no BW/VL/DQ.
        let knl = CPUFeatures(vendor: "GenuineIntel", flags: ["avx", "avx2", "fma", "avx512f", "avx512cd"])
        #expect(VectorTier(cpu: knl) == .avx2)
        #expect(KernelChoice.choose(corename: "Prescott", cpu: knl, userCoreType: nil)
                == .replace(detected: "Prescott", with: "Haswell"))
    }

    @Test func theUsersOwnCoreTypeAlwaysStands() {
        for user in ["Prescott", "Haswell", "SkylakeX", "NoSuchCore"] {
            #expect(KernelChoice.choose(corename: "Prescott", cpu: Self.intelAVX512, userCoreType: user) == .userChoice(user))
        }
        #expect(KernelChoice.choose(corename: "Prescott", cpu: Self.intelAVX2, userCoreType: "")
                == .replace(detected: "Prescott", with: "Haswell"), "an empty variable is no choice")
    }

    @Test func aUsersCoreTheCPUCannotRunIsOverruledByTheCPUsOwn() {
        // OpenBLAS installs what the variable names without asking the CPU: the first product would be SIGILL.
        #expect(KernelChoice.choose(corename: "SkylakeX", cpu: Self.amdAVX2, userCoreType: "SkylakeX")
                == .overrule(asked: "SkylakeX", needs: .avx512, with: "Zen"))
        #expect(KernelChoice.choose(corename: "SkylakeX", cpu: Self.intelAVX2, userCoreType: "skylakex")
                == .overrule(asked: "skylakex", needs: .avx512, with: "Haswell"))
        let avxOnly = CPUFeatures(vendor: "GenuineIntel", flags: ["avx"])
        #expect(KernelChoice.choose(corename: "Haswell", cpu: avxOnly, userCoreType: "Haswell")
                == .overrule(asked: "Haswell", needs: .avx2, with: nil), "below AVX2, OpenBLAS's own detection")
        // What the CPU can run stays the user's choice, however slow.
        #expect(KernelChoice.choose(corename: "SkylakeX", cpu: Self.intelAVX512, userCoreType: "SkylakeX") == .userChoice("SkylakeX"))
        #expect(KernelChoice.choose(corename: "Prescott", cpu: avxOnly, userCoreType: "Prescott") == .userChoice("Prescott"))
        #expect(KernelChoice.choose(corename: "Neoverse V9", cpu: avxOnly, userCoreType: "Neoverse V9") == .userChoice("Neoverse V9"))
    }

    @Test func aCoreNameThisTableDoesNotKnowIsLeftAlone() {
        #expect(VectorTier(openBLASCore: "Neoverse V9") == nil)
        #expect(KernelChoice.choose(corename: "Neoverse V9", cpu: Self.intelAVX512, userCoreType: nil) == .keep("Neoverse V9"))
    }
}

/// The kernels the engine really runs, in this process and in the executables that link it.
@Suite("GEMM kernel in use")
struct GEMMKernelInUseTests {
    static var cpuTier: VectorTier { VectorTier(cpu: .current) }

    /// Generic kernels on a CPU that can run AVX2 are the bug (issue 15); an unknown name is not.
    static func isGenericOnThisCPU(_ core: String) -> Bool {
        cpuTier >= .avx2 && (VectorTier(openBLASCore: core) ?? .avx2) < .avx2
    }

    @Test func thisTestProcessDoesNotRunGenericKernelsOnAnAVX2CPU() throws {
        // A product through the engine, so the check covers the path training takes.
        let a = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [3, 2], data: [1, 0, 0, 1, 1, 1])
        #expect(try a.matmul(b).data == [4, 5, 10, 11])
        let core = GEMMKernel.coreInUse
        #expect(core == GEMMKernel.selection.coreInUse)
        #expect(!Self.isGenericOnThisCPU(core),
                "runs OpenBLAS \(core) kernels on a \(Self.cpuTier) CPU (\(GEMMKernel.selection.summary))")
    }

    static var emonnBench: String {
        URL(fileURLWithPath: TestSupport.emopipe).deletingLastPathComponent().appendingPathComponent("emonn-bench").path
    }

    /// Runs a built executable with OPENBLAS_CORETYPE and the simulation switch exactly as given
    /// (removed when nil), the rest of the environment inherited.
    static func run(_ executable: String, _ arguments: [String], coreType: String?, simulate: Bool) throws -> (status: Int32, stdout: String, stderr: String) {
        var environment = ProcessInfo.processInfo.environment
        environment[GEMMKernel.userVariable] = coreType
        environment[GEMMKernel.simulationVariable] = simulate ? "1" : nil
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static func kernelReport(coreType: String?, simulate: Bool) throws -> [String: Any] {
        let result = try run(emonnBench, ["kernel"], coreType: coreType, simulate: simulate)
        try #require(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: emonnBench), "needs the built emonn-bench"))
    func anExecutableThatStartsOnGenericKernelsSwitchesToTheCPUsOwn() throws {
        // OpenBLAS loads with Prescott, as on a CPU it does not know; the engine must not stay there.
        let report = try Self.kernelReport(coreType: "Prescott", simulate: true)
        let core = try #require(report["core_in_use"] as? String)
        if Self.cpuTier >= .avx2 {
            #expect(report["decision"] as? String == "replace")
            #expect(VectorTier(openBLASCore: core) == Self.cpuTier, "\(report)")
        } else {
            #expect(report["decision"] as? String == "keep")
            #expect(core == "Prescott")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: emonnBench), "needs the built emonn-bench"))
    func aUsersCoreTypeIsRespected() throws {
        let report = try Self.kernelReport(coreType: "Prescott", simulate: false)
        #expect(report["decision"] as? String == "user_choice")
        #expect(report["core_in_use"] as? String == "Prescott")
        #expect((report["summary"] as? String)?.contains("OPENBLAS_CORETYPE=Prescott") == true)
    }

    /// A name OpenBLAS does not know is ignored by it: the summary says the kernels in use are not that
    /// name's (it read as if the name were obeyed), and a long value is cut.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: emonnBench), "needs the built emonn-bench"))
    func aCoreTypeOpenBLASDoesNotKnowIsNotSaidToBeInUse() throws {
        let report = try Self.kernelReport(coreType: "NoSuchCore", simulate: false)
        let summary = try #require(report["summary"] as? String)
        #expect(report["decision"] as? String == "user_choice" && report["core_in_use"] as? String != "NoSuchCore")
        #expect(summary.contains("(OPENBLAS_CORETYPE=NoSuchCore is not their name: OpenBLAS took it for them or ignored it)"), "\(summary)")
        let long = try Self.kernelReport(coreType: String(repeating: "x", count: 300), simulate: false)
        #expect((long["summary"] as? String)?.contains(String(repeating: "x", count: 64) + "… (300 bytes) is not their name") == true, "\(long)")
    }

    /// A core above what this CPU runs; nil on an AVX-512 CPU, which runs them all.
    static var coreBeyondThisCPU: String? {
        switch cpuTier {
        case .generic: return "Haswell"
        case .avx2: return "SkylakeX"
        case .avx512: return nil
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: emonnBench) && coreBeyondThisCPU != nil,
                   "needs the built emonn-bench and a CPU below AVX-512"))
    func aUsersCoreTypeThisCPUCannotRunIsSetAsideWithAWarning() throws {
        let beyond = try #require(Self.coreBeyondThisCPU)
        let result = try Self.run(Self.emonnBench, ["kernel"], coreType: beyond, simulate: false)
        #expect(result.status == 0, "exit \(result.status) (4 is SIGILL): \(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["decision"] as? String == "overrule", "\(report)")
        let core = try #require(report["core_in_use"] as? String)
        #expect((VectorTier(openBLASCore: core) ?? .generic) <= Self.cpuTier, "\(report)")
        #expect((report["gflops_64"] as? Double ?? 0) > 0, "a product ran: \(report)")
        #expect(result.stderr.contains("warning: OPENBLAS_CORETYPE=\(beyond) asks for") && result.stderr.contains("cannot run"),
                "\(result.stderr)")

        // The warning's write cannot trap: stderr full.
        let full = try Self.run("/bin/bash", ["-c", "exec '\(TestSupport.emopipe)' --version 2>/dev/full"], coreType: beyond, simulate: false)
        #expect(full.status == 0, "exit \(full.status) with stderr full")

        let version = try Self.run(TestSupport.emopipe, ["--version"], coreType: beyond, simulate: false)
        #expect(version.status == 0 && version.stdout.contains("(not OPENBLAS_CORETYPE=\(beyond): its "), "\(version.stdout)")
        #expect(version.stderr.contains("warning: OPENBLAS_CORETYPE=\(beyond)"), "\(version.stderr)")
    }

    @Test(.enabled(if: TestSupport.hasEmopipe, "needs the built emopipe"))
    func theCLINamesItsKernelsAndDoesNotRunGenericOnesByDefault() throws {
        let result = try Self.run(TestSupport.emopipe, ["--version"], coreType: nil, simulate: false)
        try #require(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("GEMM: OpenBLAS ") })
        let core = String(line.dropFirst("GEMM: OpenBLAS ".count).prefix { $0 != " " })
        #expect(!Self.isGenericOnThisCPU(core), "emopipe runs OpenBLAS \(core) kernels on a \(Self.cpuTier) CPU")

        let simulated = try Self.run(TestSupport.emopipe, ["--version"], coreType: "Prescott", simulate: true)
        #expect(!Self.isGenericOnThisCPU(String(simulated.stdout.split(separator: "\n").last { $0.hasPrefix("GEMM:") }?
            .dropFirst("GEMM: OpenBLAS ".count).prefix { $0 != " " } ?? "")), "\(simulated.stdout)")

        let user = try Self.run(TestSupport.emopipe, ["--version"], coreType: "Prescott", simulate: false)
        #expect(user.stdout.contains("GEMM: OpenBLAS Prescott kernels (OPENBLAS_CORETYPE=Prescott)"), "\(user.stdout)")
    }
}
