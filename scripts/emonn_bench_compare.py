"""`make bench` back end for EmoNN: runs emonn-bench and (when torch is
importable by the given Python) scripts/torch_bench.py on both reference
networks, alternating the two so that load from other processes hits both
alike, and prints ms/step, samples/s, GFLOP/s, CPU ms/step, peak RSS and the
speedup torch_ms / emonn_ms (target >= 0.67); then the single-threaded GFLOP/s
of each net's sgemm shapes (`emonn-bench gemm`, scripts/torch_gemm_bench.py) and
the GEMM kernels EmoNN runs. JSON rows: {net, emonn, torch, gemm: {kernel, shapes:
[{layer, pass, m, n, k, trans_a, trans_b, emonn_gflops, torch_gflops}]}}.

Usage: python scripts/emonn_bench_compare.py --bench .build/release/emonn-bench
           [--torch-python .venv/bin/python] [--threads 2] [--steps 5] [--nets audio,faces] [--json out.json]
           [--no-gemm]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def gemm_rows(a, net):
    """EmoNN's and (when torch is given) PyTorch's GFLOP/s on the same sgemm shapes, 1 thread."""
    ours = run([a.bench, "gemm", net, "--json"])
    theirs = None
    if a.torch_python:
        shapes = subprocess.run([a.bench, "gemm", net, "--shapes-only"], check=True, capture_output=True,
                                text=True).stdout.strip()
        theirs = run([a.torch_python, os.path.join(HERE, "torch_gemm_bench.py"), shapes])
    shapes = []
    for i, s in enumerate(ours["shapes"]):
        row = {k: s[k] for k in ("layer", "pass", "m", "n", "k", "trans_a", "trans_b")}
        row["emonn_gflops"] = s["gflops"]
        row["torch_gflops"] = theirs["shapes"][i]["gflops"] if theirs else None
        shapes.append(row)
    return {"kernel": ours["gemm_kernel"], "torch_impl": theirs["impl"] if theirs else None, "shapes": shapes}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", default=".build/release/emonn-bench")
    p.add_argument("--torch-python", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--nets", default="audio,faces")
    p.add_argument("--json", default=None)
    p.add_argument("--no-gemm", action="store_true", help="skip the per-shape GEMM GFLOP/s rows")
    a = p.parse_args()
    rows = []
    for net in a.nets.split(","):
        steps = str(a.steps if net == "audio" else max(2, a.steps // 2))
        ours = run([a.bench, net, "--threads", str(a.threads), "--steps", steps, "--json", "--profile"])
        theirs = None
        if a.torch_python:
            theirs = run([a.torch_python, os.path.join(HERE, "torch_bench.py"), net,
                          "--threads", str(a.threads), "--steps", steps, "--json"])
        rows.append((net, ours, theirs, None if a.no_gemm else gemm_rows(a, net)))
    print(f"{'net':6} {'impl':18} {'ms/step':>9} {'CPU ms':>9} {'samples/s':>10} {'GFLOP/s':>8} {'RSS MB':>8}")
    for net, ours, theirs, _ in rows:
        for r in filter(None, (ours, theirs)):
            print(f"{net:6} {r['impl']:18} {r['ms_per_step']:9.1f} {r['cpu_ms_per_step']:9.1f} "
                  f"{r['samples_per_s']:10.1f} {r['gflops']:8.1f} {r['peak_rss_mb']:8.0f}")
        if theirs:
            print(f"{net:6} speedup (torch ms / EmoNN ms) = {theirs['ms_per_step'] / ours['ms_per_step']:.2f}"
                  f"  (CPU time: {theirs['cpu_ms_per_step'] / ours['cpu_ms_per_step']:.2f}); target >= 0.67")
        phases = ours.get("phases_ms", {})
        print(f"{net:6} EmoNN time split: " + ", ".join(f"{k} {v:.0f} ms" for k, v in sorted(phases.items())))
        ops = sorted(ours.get("ops_ms", {}).items(), key=lambda kv: -kv[1])[:6]
        print(f"{net:6} EmoNN largest ops: " + ", ".join(f"{k.split('(')[0]} {v:.0f} ms" for k, v in ops))
        print(f"{net:6} GEMM: {ours.get('gemm_kernel', 'unknown')}")
    for net, _, _, gemm in filter(lambda r: r[3], rows):
        print(f"\n{net} reference net sgemm shapes, 1 thread, GFLOP/s ({gemm['kernel']}):")
        print(f"  {'layer':5} {'pass':11} {'m x n x k':>20} {'EmoNN':>8} {'torch':>8}")
        for s in gemm["shapes"]:
            theirs = "-" if s["torch_gflops"] is None else f"{s['torch_gflops']:.1f}"
            print(f"  {s['layer']:<5} {s['pass']:11} {s['m']:>6} x {s['n']:>5} x {s['k']:>5} "
                  f"{s['emonn_gflops']:8.1f} {theirs:>8}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"net": n, "emonn": o, "torch": t, "gemm": g} for n, o, t, g in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
