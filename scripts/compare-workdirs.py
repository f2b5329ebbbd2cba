#!/usr/bin/env python3
"""Compare what two EmoPipe work directories computed: every cached record (tensor bytes, dtype,
shape and metadata, matched by stage and source SHA-256, whatever the fingerprints), and for the
latest run of each: the trained weights, metrics.json and model.onnx's graph and initializers
(metadata_props may differ: they carry fingerprints).

    scripts/compare-workdirs.py WORK_A WORK_B [--run-a ID] [--run-b ID]

Exit status 0 when everything compared is equal, 1 otherwise. A development tool for refactors that
must not change results; needs `onnx` (the test venv has it) for the graph comparison.
"""
import argparse
import hashlib
import json
import os
import sqlite3
import sys


def records(work):
    db = sqlite3.connect(f"file:{os.path.join(work, 'emopipe.sqlite')}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT r.stage, r.key, r.dtype, r.shapeJSON, r.metadata, r.dataOffset, r.dataLength, s.file "
        "FROM cacheRecord r JOIN cacheShard s ON s.id = r.shardId").fetchall()
    out = {}
    for stage, key, dtype, shape, meta, offset, length, shard in rows:
        with open(os.path.join(work, shard), "rb") as f:
            f.seek(offset)
            data = f.read(length)
        out.setdefault((stage, key), set()).add((dtype, shape, meta, hashlib.sha256(data).hexdigest()))
    return out


def latest_run(work):
    db = sqlite3.connect(f"file:{os.path.join(work, 'emopipe.sqlite')}?mode=ro", uri=True)
    row = db.execute("SELECT id FROM run WHERE status IN ('done', 'partial') ORDER BY startedAt DESC LIMIT 1").fetchone()
    return row[0] if row else None


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def onnx_body(path):
    import onnx
    model = onnx.load(path)
    del model.metadata_props[:]
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--run-a")
    parser.add_argument("--run-b")
    args = parser.parse_args()
    problems = []

    ra, rb = records(args.a), records(args.b)
    for stage in sorted({s for s, _ in ra} | {s for s, _ in rb}):
        keys_a = {k for s, k in ra if s == stage}
        keys_b = {k for s, k in rb if s == stage}
        same = sum(1 for k in keys_a & keys_b if ra[(stage, k)] & rb[(stage, k)])
        print(f"{stage}: {len(keys_a)} / {len(keys_b)} records, {same} identical (bytes, dtype, shape, metadata)")
        if keys_a != keys_b or same != len(keys_a):
            problems.append(f"{stage}: records differ")

    run_a, run_b = args.run_a or latest_run(args.a), args.run_b or latest_run(args.b)
    if run_a and run_b:
        fa, fb = os.path.join(args.a, "runs", run_a), os.path.join(args.b, "runs", run_b)
        for name in ["model.safetensors", "metrics.json"]:
            pa, pb = os.path.join(fa, name), os.path.join(fb, name)
            if not (os.path.exists(pa) and os.path.exists(pb)):
                print(f"{name}: missing in {'A' if not os.path.exists(pa) else 'B'}")
                continue
            equal = sha(pa) == sha(pb)
            if name == "metrics.json" and not equal:
                ja, jb = json.load(open(pa)), json.load(open(pb))
                for volatile in ["run_id", "fingerprints", "train_fingerprint"]:
                    ja.pop(volatile, None), jb.pop(volatile, None)
                equal = ja == jb
                print(f"{name}: bytes differ; {'equal' if equal else 'DIFFERENT'} without run ids and fingerprints")
            else:
                print(f"{name}: {'identical' if equal else 'DIFFERENT'}")
            if not equal:
                problems.append(name)
        pa, pb = os.path.join(fa, "model.onnx"), os.path.join(fb, "model.onnx")
        if os.path.exists(pa) and os.path.exists(pb):
            equal = onnx_body(pa) == onnx_body(pb)
            print(f"model.onnx graph and initializers: {'identical' if equal else 'DIFFERENT'}")
            if not equal:
                problems.append("model.onnx")
    for p in problems:
        print("DIFFERENT:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
