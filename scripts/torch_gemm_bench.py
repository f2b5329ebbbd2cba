"""PyTorch side of `make bench`'s GEMM rows: single-threaded GFLOP/s of given sgemm shapes
(C = op(A)·op(B), C m×n), timed on this thread's CPU clock like `emonn-bench gemm`.

Usage: python scripts/torch_gemm_bench.py SHAPES_JSON   (the output of `emonn-bench gemm NET --shapes-only`)
Prints one JSON object: {impl, threads, shapes: [{layer, pass, m, n, k, trans_a, trans_b, gflops}]}.
"""
import json
import sys
import time

import torch


def gflops(m, n, k, trans_a, trans_b, seconds=0.3):
    a = torch.randn(k, m) if trans_a else torch.randn(m, k)
    b = torch.randn(n, k) if trans_b else torch.randn(k, n)
    op_a, op_b = (a.t() if trans_a else a), (b.t() if trans_b else b)
    out = torch.empty(m, n)
    calls, start = 0, time.thread_time()
    while True:
        torch.mm(op_a, op_b, out=out)
        calls += 1
        elapsed = time.thread_time() - start
        if elapsed >= seconds:
            return 2.0 * m * n * k * calls / elapsed / 1e9


def main():
    torch.set_num_threads(1)
    shapes = json.loads(sys.argv[1])
    for s in shapes:
        s["gflops"] = gflops(s["m"], s["n"], s["k"], s["trans_a"], s["trans_b"])
    print(json.dumps({"impl": f"PyTorch {torch.__version__}", "threads": 1, "shapes": shapes}, sort_keys=True))


if __name__ == "__main__":
    main()
