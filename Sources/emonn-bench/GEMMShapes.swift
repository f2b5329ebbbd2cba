import EmoNN
import Foundation

/// The sgemm calls one training step of a reference net makes per sample (im2col convolution):
/// forward Y = W·col, weight gradient dW += dY·colᵀ, input gradient dcol = Wᵀ·dY (not for the
/// first layer, whose input needs no gradient).
struct GEMMShape: Codable {
    var layer: Int
    var pass: String
    var m: Int, n: Int, k: Int
    var transA: Bool, transB: Bool

    enum CodingKeys: String, CodingKey {
        case layer, pass, m, n, k, transA = "trans_a", transB = "trans_b"
    }

    static func referenceNet(_ net: String) -> [GEMMShape] {
        let (channels, height, width) = net == "faces" ? ([3, 32, 64, 128, 128], 112, 112) : ([1, 32, 64, 128, 128], 64, 300)
        var (h, w) = (height, width)
        var shapes: [GEMMShape] = []
        for layer in 0..<4 {
            let (cin, cout, spatial) = (channels[layer], channels[layer + 1], h * w)
            shapes.append(GEMMShape(layer: layer + 1, pass: "forward", m: cout, n: spatial, k: cin * 9, transA: false, transB: false))
            shapes.append(GEMMShape(layer: layer + 1, pass: "weight_grad", m: cout, n: cin * 9, k: spatial, transA: false, transB: true))
            if layer > 0 {
                shapes.append(GEMMShape(layer: layer + 1, pass: "input_grad", m: cin * 9, n: spatial, k: cout, transA: true, transB: false))
            }
            (h, w) = (h / 2, w / 2)
        }
        return shapes
    }
}

/// `emonn-bench gemm audio|faces [--json]`: single-threaded GFLOP/s of each shape, with the
/// kernels in use; `--shapes-only` prints the shapes for scripts/torch_gemm_bench.py.
func gemmBench(net: String, json: Bool, shapesOnly: Bool) throws {
    Engine.configure(threads: 1)
    let shapes = GEMMShape.referenceNet(net)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    if shapesOnly {
        print(String(decoding: try encoder.encode(shapes), as: UTF8.self))
        return
    }
    let rates = shapes.map { GEMMProbe.gflops(m: $0.m, n: $0.n, k: $0.k, transA: $0.transA, transB: $0.transB) }
    let kernel = GEMMKernel.selection.summary
    if json {
        let rows: [[String: Any]] = zip(shapes, rates).map { shape, rate in
            ["layer": shape.layer, "pass": shape.pass, "m": shape.m, "n": shape.n, "k": shape.k,
             "trans_a": shape.transA, "trans_b": shape.transB, "gflops": rate]
        }
        let document: [String: Any] = ["net": net, "impl": "EmoNN", "gemm_kernel": kernel, "threads": 1, "shapes": rows]
        print(String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), as: UTF8.self))
    } else {
        print("\(net) GEMM shapes, 1 thread, \(kernel):")
        for (shape, rate) in zip(shapes, rates) {
            let pass = shape.pass.padding(toLength: 11, withPad: " ", startingAt: 0)
            print(String(format: "  layer %d %@ %4d x %5d x %5d  %6.1f GFLOP/s", shape.layer, pass, shape.m, shape.n, shape.k, rate))
        }
    }
}

/// `emonn-bench kernel`: the kernel choice as JSON, for tests and for reading a machine.
func kernelReport() throws {
    let selection = GEMMKernel.selection
    let cpu = CPUFeatures.current
    let decision: String
    switch selection.decision {
    case .userChoice: decision = "user_choice"
    case .keep: decision = "keep"
    case .replace: decision = "replace"
    case .overrule: decision = "overrule"
    }
    let document: [String: Any] = [
        "core_in_use": selection.coreInUse, "decision": decision, "summary": selection.summary,
        "cpu_vendor": cpu.vendor, "cpu_flags": cpu.flags.sorted(),
        "cpu_tier": String(describing: VectorTier(cpu: cpu)),
        // One product through the kernels in use: kernels the CPU cannot run stop the process here.
        "gflops_64": GEMMProbe.gflops(m: 64, n: 64, k: 64, transA: false, transB: false, seconds: 0.01),
    ]
    print(String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), as: UTF8.self))
}
