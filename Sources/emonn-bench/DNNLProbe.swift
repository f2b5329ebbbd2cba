// `emonn-bench dnnl-probe`: times the forward convolutions of the audio
// network with EmoNN's im2col + sgemm and with oneDNN's convolution (system
// libdnnl), to decide by measurement which kernel the engine keeps.
import CDNNL
import EmoNN
import Foundation

struct DNNLError: Error, CustomStringConvertible {
    let what: String
    let status: dnnl_status_t
    var description: String { "oneDNN \(what) failed with status \(status.rawValue)" }
}

@inline(__always)
func dnnl(_ status: dnnl_status_t, _ what: String) throws {
    guard status == dnnl_success else { throw DNNLError(what: what, status: status) }
}

/// dnnl_dims_t is a fixed C array; Swift passes it as a pointer to 12 Int64.
func dims(_ v: [Int]) -> [Int64] {
    v.map(Int64.init) + [Int64](repeating: 0, count: 12 - v.count)
}

final class DNNLConvProbe {
    var engine: dnnl_engine_t?
    var stream: dnnl_stream_t?

    init(threads: Int) throws {
        // oneDNN here runs on OpenMP; its thread count is libgomp's.
        typealias SetThreads = @convention(c) (Int32) -> Void
        if let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") {
            unsafeBitCast(f, to: SetThreads.self)(Int32(threads))
        }
        try dnnl(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine")
        try dnnl(dnnl_stream_create(&stream, engine, UInt32(dnnl_stream_default_flags.rawValue)), "stream")
    }

    func memory(_ md: UnsafePointer<dnnl_memory_desc_t>) throws -> (dnnl_memory_t?, UnsafeMutableRawPointer) {
        let size = dnnl_memory_desc_get_size(md)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 64), alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: max(size, 64))
        var mem: dnnl_memory_t?
        try dnnl(dnnl_memory_create(&mem, md, engine, buffer), "memory")
        return (mem, buffer)
    }

    /// Returns ms per forward for (plain NCHW in and out, blocked layouts
    /// chosen by oneDNN excluding reorders, blocked including the NCHW reorders).
    func time(n: Int, cin: Int, cout: Int, h: Int, w: Int, iterations: Int) throws -> (Double, Double, Double) {
        var plainSrc = dnnl_memory_desc_t(), plainDst = dnnl_memory_desc_t(), plainW = dnnl_memory_desc_t()
        try dnnl(dnnl_memory_desc_init_by_tag(&plainSrc, 4, dims([n, cin, h, w]), dnnl_f32, dnnl_nchw), "src md")
        try dnnl(dnnl_memory_desc_init_by_tag(&plainDst, 4, dims([n, cout, h, w]), dnnl_f32, dnnl_nchw), "dst md")
        try dnnl(dnnl_memory_desc_init_by_tag(&plainW, 4, dims([cout, cin, 3, 3]), dnnl_f32, dnnl_oihw), "w md")
        var anySrc = dnnl_memory_desc_t(), anyDst = dnnl_memory_desc_t(), anyW = dnnl_memory_desc_t()
        try dnnl(dnnl_memory_desc_init_by_tag(&anySrc, 4, dims([n, cin, h, w]), dnnl_f32, dnnl_format_tag_any), "any")
        try dnnl(dnnl_memory_desc_init_by_tag(&anyDst, 4, dims([n, cout, h, w]), dnnl_f32, dnnl_format_tag_any), "any")
        try dnnl(dnnl_memory_desc_init_by_tag(&anyW, 4, dims([cout, cin, 3, 3]), dnnl_f32, dnnl_format_tag_any), "any")

        func run(_ srcIn: dnnl_memory_desc_t, _ wtIn: dnnl_memory_desc_t, _ dstIn: dnnl_memory_desc_t,
                 withReorders: Bool) throws -> Double {
            var (src, wt, dst) = (srcIn, wtIn, dstIn)
            var (plainSrc, plainDst) = (plainSrc, plainDst)
            var cd = dnnl_convolution_desc_t()
            try dnnl(dnnl_dilated_convolution_forward_desc_init(
                &cd, dnnl_forward_training, dnnl_convolution_direct, &src, &wt, nil, &dst,
                dims([1, 1]), dims([0, 0]), dims([1, 1]), dims([1, 1])), "conv desc")
            var pd: dnnl_primitive_desc_t?
            try dnnl(dnnl_primitive_desc_create(&pd, &cd, nil, engine, nil), "conv pd")
            var prim: dnnl_primitive_t?
            try dnnl(dnnl_primitive_create(&prim, pd), "conv primitive")
            let srcMD = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0)!
            let wMD = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!
            let dstMD = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)!
            let (srcMem, b1) = try memory(srcMD), (wMem, b2) = try memory(wMD), (dstMem, b3) = try memory(dstMD)
            let (plainSrcMem, b4) = try memory(&plainSrc), (plainDstMem, b5) = try memory(&plainDst)
            defer { [b1, b2, b3, b4, b5].forEach { $0.deallocate() } }
            func reorder(_ from: UnsafePointer<dnnl_memory_desc_t>, _ fromMem: dnnl_memory_t?,
                         _ to: UnsafePointer<dnnl_memory_desc_t>, _ toMem: dnnl_memory_t?) throws -> () throws -> Void {
                var rpd: dnnl_primitive_desc_t?
                try dnnl(dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, nil), "reorder pd")
                var rp: dnnl_primitive_t?
                try dnnl(dnnl_primitive_create(&rp, rpd), "reorder")
                return {
                    var args = [dnnl_exec_arg_t(arg: 1, memory: fromMem), dnnl_exec_arg_t(arg: 17, memory: toMem)]
                    try dnnl(dnnl_primitive_execute(rp, self.stream, 2, &args), "reorder run")
                }
            }
            let toBlocked = try reorder(&plainSrc, plainSrcMem, srcMD, srcMem)
            let toPlain = try reorder(dstMD, dstMem, &plainDst, plainDstMem)
            var args = [dnnl_exec_arg_t(arg: 1, memory: srcMem), dnnl_exec_arg_t(arg: 33, memory: wMem),
                        dnnl_exec_arg_t(arg: 17, memory: dstMem)]
            func once() throws {
                if withReorders { try toBlocked() }
                try dnnl(dnnl_primitive_execute(prim, stream, 3, &args), "conv run")
                if withReorders { try toPlain() }
                try dnnl(dnnl_stream_wait(stream), "wait")
            }
            try once()
            let t0 = Profiler.now()
            for _ in 0..<iterations { try once() }
            return Double(Profiler.now() - t0) / 1e6 / Double(iterations)
        }
        let plain = try run(plainSrc, plainW, plainDst, withReorders: false)
        let blocked = try run(anySrc, anyW, anyDst, withReorders: false)
        let blockedReordered = try run(anySrc, anyW, anyDst, withReorders: true)
        return (plain, blocked, blockedReordered)
    }
}

func dnnlProbe(threads: Int, iterations: Int) throws {
    Engine.configure(threads: threads)
    let probe = try DNNLConvProbe(threads: threads)
    let rng = RandomGenerator(seed: 1)
    print("forward 3x3 conv, B=32, \(threads) threads, ms per call: EmoNN | oneDNN nchw | oneDNN blocked | blocked+reorders")
    for (cin, cout, h, w) in [(1, 32, 64, 300), (32, 64, 32, 150), (64, 128, 16, 75), (128, 128, 8, 37)] {
        let x = Tensor.randn([32, cin, h, w], rng: rng)
        let wt = Tensor.randn([cout, cin, 3, 3], rng: rng)
        _ = try x.conv2d(weight: wt, options: .init(padding: (1, 1)))
        let t0 = Profiler.now()
        for _ in 0..<iterations { _ = try x.conv2d(weight: wt, options: .init(padding: (1, 1))) }
        let ours = Double(Profiler.now() - t0) / 1e6 / Double(iterations)
        let (plain, blocked, reordered) = try probe.time(n: 32, cin: cin, cout: cout, h: h, w: w, iterations: iterations)
        print(String(format: "  %3d->%3d %3dx%3d: %7.1f | %7.1f | %7.1f | %7.1f", cin, cout, h, w, ours, plain, blocked, reordered))
    }
}
