// emonn-bench: one training step (forward, backward, AdamW) of the two
// reference networks, timed like scripts/torch_bench.py.
//
//   emonn-bench audio|faces|rnn|dnnl-probe|PATH.safetensors [--threads 2] [--steps 5] [--batch 32] [--json] [--profile]
//   emonn-bench gemm audio|faces [--json] [--shapes-only]   (GFLOP/s of the net's sgemm shapes, 1 thread)
//   emonn-bench kernel                                     (the GEMM kernel choice, as JSON)
import EmoNN
import Foundation

func convBlock(_ cin: Int, _ cout: Int, _ rng: RandomGenerator) -> [Module] {
    [Conv2d(cin, cout, kernel: (3, 3), padding: (1, 1), bias: false, rng: rng), BatchNorm2d(cout), ReLU(), MaxPool2d((2, 2))]
}

func makeFeatures(_ inChannels: Int, _ rng: RandomGenerator) -> Sequential {
    let chans = [inChannels, 32, 64, 128, 128]
    return Sequential((0..<4).flatMap { convBlock(chans[$0], chans[$0 + 1], rng) } + [GlobalAvgPool2d()])
}

/// (a) log-mel audio: [B, 1, 64, 300] → 8 classes.
final class AudioNet: Module {
    let features: Sequential
    let head: Linear

    init(rng: RandomGenerator) {
        features = makeFeatures(1, rng)
        head = Linear(128, 8, rng: rng)
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try head(features(x)) }
}

/// (b) faces: [B·8, 3, 112, 112] → per-frame embeddings → softmax attention over frames → 8 classes.
final class FacesNet: Module {
    let features: Sequential
    let score: Linear
    let head: Linear
    let frames: Int

    init(frames: Int, rng: RandomGenerator) {
        features = makeFeatures(3, rng)
        score = Linear(128, 1, rng: rng)
        head = Linear(128, 8, rng: rng)
        self.frames = frames
        super.init()
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let f = try features(x).reshaped([-1, frames, 128])
        let a = try score(f).softmax(axis: 1)
        return try head((a * f).sum(axis: 1))
    }
}

func convFlops(_ shape: [Int], _ chans: [Int]) -> Double {
    var (h, w) = (shape[2], shape[3])
    var total = 0.0
    for i in 0..<4 {
        total += 2 * Double(shape[0] * chans[i + 1] * chans[i] * 9 * h * w)
        h /= 2
        w /= 2
    }
    return total
}

/// User + system CPU seconds of this process so far: on a shared machine,
/// CPU time per step is steadier than wall time.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let t = [usage.ru_utime, usage.ru_stime]
    return t.reduce(0) { $0 + Double($1.tv_sec) + Double($1.tv_usec) / 1e6 }
}

func peakRSSMB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

struct Options {
    var net = "audio", threads = 2, steps = 5, batch = 32, json = false, profile = false
    var gemm = false, shapesOnly = false
}

func parse() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let a = args.next() {
        switch a {
        case "--threads": o.threads = Int(args.next() ?? "") ?? o.threads
        case "--steps": o.steps = Int(args.next() ?? "") ?? o.steps
        case "--batch": o.batch = Int(args.next() ?? "") ?? o.batch
        case "--json": o.json = true
        case "--profile": o.profile = true
        case "--shapes-only": o.shapesOnly = true
        case "gemm": o.gemm = true
        default: o.net = a
        }
    }
    return o
}

func run() throws {
    let o = parse()
    if o.gemm {
        try gemmBench(net: o.net, json: o.json, shapesOnly: o.shapesOnly)
        return
    }
    if o.net == "kernel" {
        try kernelReport()
        return
    }
    if o.net == "dnnl-probe" {
        try dnnlProbe(threads: o.threads, iterations: o.steps)
        return
    }
    if o.net == "rnn" {
        try rnnBench(threads: o.threads, steps: o.steps, batch: o.batch)
        return
    }
    if o.net.hasSuffix(".safetensors") {
        try writeSampleCheckpoint(to: URL(fileURLWithPath: o.net))
        return
    }
    Engine.configure(threads: o.threads)
    let rng = RandomGenerator(seed: 0)
    let shape: [Int], chans: [Int]
    let forward: (Tensor) throws -> Tensor
    let model: Module
    if o.net == "faces" {
        let m = FacesNet(frames: 8, rng: rng)
        (model, forward, shape, chans) = (m, { try m($0) }, [o.batch * 8, 3, 112, 112], [3, 32, 64, 128, 128])
    } else {
        let m = AudioNet(rng: rng)
        (model, forward, shape, chans) = (m, { try m($0) }, [o.batch, 1, 64, 300], [1, 32, 64, 128, 128])
    }
    let x = Tensor.randn(shape, rng: rng)
    let y = (0..<o.batch).map { $0 % 8 }
    let opt = AdamW(model.parameters(), learningRate: 1e-3)
    var phases: [String: Double] = [:]

    func step() throws {
        opt.zeroGrad()
        let t0 = Profiler.now()
        let loss = try Losses.crossEntropy(forward(x), targets: y)
        let t1 = Profiler.now()
        try loss.backward()
        let t2 = Profiler.now()
        opt.step()
        let t3 = Profiler.now()
        phases["forward", default: 0] += Double(t1 - t0) / 1e9
        phases["backward", default: 0] += Double(t2 - t1) / 1e9
        phases["adamw", default: 0] += Double(t3 - t2) / 1e9
    }

    try step()  // warm-up
    phases = [:]
    Profiler.enabled = o.profile
    Profiler.reset()
    var times: [Double] = []
    let cpuStart = cpuSeconds()
    for _ in 0..<o.steps {
        let t0 = Profiler.now()
        try step()
        times.append(Double(Profiler.now() - t0) / 1e9)
    }
    let ms = 1000 * times.sorted()[times.count / 2]
    let cpuMs = 1000 * (cpuSeconds() - cpuStart) / Double(o.steps)
    let flops = 3 * convFlops(shape, chans)
    var result: [String: Any] = [
        "net": o.net, "impl": "EmoNN", "threads": o.threads, "batch": o.batch,
        "ms_per_step": ms, "samples_per_s": Double(o.batch) / (ms / 1000),
        "gflops": flops / (ms / 1000) / 1e9, "peak_rss_mb": peakRSSMB(), "cpu_ms_per_step": cpuMs,
        "phases_ms": phases.mapValues { 1000 * $0 / Double(o.steps) },
        "gemm_kernel": GEMMKernel.selection.summary,
    ]
    if o.profile {
        result["ops_ms"] = Profiler.seconds.mapValues { 1000 * $0 / Double(o.steps) }
    }
    if o.json {
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    } else {
        print(String(format: "%@ EmoNN: %.1f ms/step (CPU %.1f ms/step), %.1f samples/s, %.1f GFLOP/s, peak RSS %.0f MB",
                     o.net, ms, cpuMs, Double(o.batch) / (ms / 1000), flops / (ms / 1000) / 1e9, peakRSSMB()))
        print("  GEMM: \(GEMMKernel.selection.summary)")
        for (k, v) in phases.sorted(by: { $0.value > $1.value }) {
            print(String(format: "  %-10@ %8.1f ms/step", k, 1000 * v / Double(o.steps)))
        }
    }
    if o.profile && !o.json {
        for (k, v) in Profiler.seconds.sorted(by: { $0.value > $1.value }).prefix(12) {
            print(String(format: "  %-50@ %8.1f ms/step", k, 1000 * v / Double(o.steps)))
        }
    }
}

/// Forward + backward of a bidirectional LSTM and GRU over [B, 100, 64] with
/// 128 hidden units: the sequence layers are composed from autograd ops, so
/// this shows what that costs.
func rnnBench(threads: Int, steps: Int, batch: Int) throws {
    Engine.configure(threads: threads)
    let rng = RandomGenerator(seed: 2)
    let x = Tensor.randn([batch, 100, 64], rng: rng)
    for (name, layer) in [("LSTM", LSTM(64, 128, bidirectional: true, rng: rng) as RecurrentBase),
                          ("GRU", GRU(64, 128, bidirectional: true, rng: rng))] {
        var times: [Double] = []
        for _ in 0...steps {
            let t0 = Profiler.now()
            try layer(x).mean().backward()
            times.append(Double(Profiler.now() - t0) / 1e6)
            layer.zeroGrad()
        }
        print(String(format: "%@ bidirectional, [%d, 100, 64] → 2×128: %.1f ms forward+backward", name, batch,
                     times.dropFirst().sorted()[times.count / 2 - 1]))
    }
}

/// One AdamW step of the audio network, saved as a checkpoint, for
/// scripts/check_checkpoint.py to open with the safetensors package and torch.
func writeSampleCheckpoint(to url: URL) throws {
    Engine.configure(threads: 1)
    let rng = RandomGenerator(seed: 3)
    let model = AudioNet(rng: rng)
    let opt = AdamW(model.parameters())
    let x = Tensor.randn([2, 1, 16, 16], rng: rng)
    try Losses.crossEntropy(model(x), targets: [1, 5]).backward()
    opt.step()
    try Checkpoint.save(to: url, model: model, optimizer: opt, rng: rng, step: 1, metadata: ["net": "audio"])
    print("wrote \(url.path)")
}

do {
    try run()
} catch {
    fputs("emonn-bench: \(error)\n", stderr)
    exit(1)
}
