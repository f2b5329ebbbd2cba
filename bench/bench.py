"""`make bench`: EmoPipe's speed and memory against baselines, as a table and bench/results.json.

Each entry: {name, unit, ours, baseline, baseline_name, speedup, peak_rss_mb_ours, peak_rss_mb_baseline}
(design.md); speedup > 1 means ours is faster, whatever the unit. Runs alternate ours/baseline over
several rounds on the same files in the same session; the median round is reported.
"""
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMOPIPE = os.path.join(ROOT, ".build/release/emopipe")
BENCH = os.path.join(ROOT, ".build/release/emopipe-bench")
VENV_PYTHON = os.path.join(ROOT, ".venv/bin/python")
SHARED = os.environ.get("EMOPIPE_RAVDESS", os.path.normpath(os.path.join(ROOT, "../shared/data/ravdess")))
WORK = os.environ.get("EMOPIPE_BENCH_DIR", os.path.join(tempfile.gettempdir(), "emopipe-bench"))
ROUNDS = int(os.environ.get("EMOPIPE_BENCH_ROUNDS", "3"))


def peak_rss_mb(cmd, ok=(0, 3)):
    """Runs cmd under wait4 to read its own peak RSS (ru_maxrss, KB on Linux); exits unless its status is
    in ok. Its output goes to files, not pipes: a command writing more than a pipe holds (predict's
    timeline of a long file) would wait for a reader while we wait for it to exit."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file)
        except FileNotFoundError:
            hint = "`make venv` makes it" if cmd[0] == VENV_PYTHON else "`make build` builds it"
            sys.exit(f"bench: {cmd[0]} is missing ({hint})")
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out_file.seek(0)
        err_file.seek(0)
        out = out_file.read().decode()
        err = err_file.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit(f"bench: {' '.join(cmd)} failed ({code}):\n{err}")
    return wall, usage.ru_maxrss / 1024.0, out, err


def stage_seconds(workdir, stage):
    db = sqlite3.connect(os.path.join(workdir, "emopipe.sqlite"))
    started, finished = db.execute(
        "SELECT startedAt, finishedAt FROM stageRun WHERE stage = ? ORDER BY id DESC LIMIT 1", (stage,)).fetchone()
    parse = lambda s: datetime.fromisoformat(s)
    return (parse(finished) - parse(started)).total_seconds()


def manifest(path, data, threads):
    with open(path, "w") as f:
        f.write(f"pipeline: {ROOT}/pipelines/ravdess.yaml\ndata: {data}\nthreads: {threads}\n")
    return path


def bench_audio(results):
    data = os.path.join(WORK, "speech")
    subprocess.run([os.path.join(SHARED, "materialize"), "--no-av", data], check=True)
    wavs = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(data) for f in fs if f.endswith(".wav"))
    listing = os.path.join(WORK, "wavs.txt")
    with open(listing, "w") as f:
        f.write("\n".join(wavs) + "\n")
    threads = os.cpu_count()
    rows = {}
    for label, n in (("ours", threads), ("ours_1thread", 1)):
        workdir = os.path.join(WORK, f"work-{n}")
        shutil.rmtree(workdir, ignore_errors=True)   # a fresh work directory per bench run
        m = manifest(os.path.join(WORK, f"bench-{n}.yaml"), data, n)
        subprocess.run([EMOPIPE, "run", m, "--until", "ingest", "--workdir", workdir], check=True,
                       stderr=subprocess.DEVNULL)
        rows[label] = (m, workdir)
    ours, ours1, base, rss_ours, rss_base = [], [], [], [], []
    for r in range(ROUNDS):
        for label, (m, workdir) in rows.items():
            _, rss, _, _ = peak_rss_mb([EMOPIPE, "run", m, "--only", "audio", "--force", "audio", "--workdir", workdir])
            secs = stage_seconds(workdir, "audio")
            (ours if label == "ours" else ours1).append(len(wavs) / secs)
            if label == "ours":
                rss_ours.append(rss)
        _, rss, out, _ = peak_rss_mb([VENV_PYTHON, os.path.join(ROOT, "bench/librosa_audio.py"), listing])
        doc = json.loads(out)
        base.append(doc["files"] / doc["seconds"])
        rss_base.append(rss)
        print(f"  round {r + 1}: ours {ours[-1]:.0f} files/s ({threads} threads), 1 thread {ours1[-1]:.0f}, "
              f"librosa {base[-1]:.0f} files/s", file=sys.stderr)
    med = statistics.median
    results.append(dict(name=f"audio stage, {len(wavs)} speech files ({threads} threads)", unit="files/s",
                        ours=round(med(ours), 1), baseline=round(med(base), 1),
                        baseline_name="librosa 0.11 load(sr=16000)+melspectrogram+power_to_db+pad, 1 process",
                        speedup=round(med(ours) / med(base), 2), peak_rss_mb_ours=round(max(rss_ours), 1),
                        peak_rss_mb_baseline=round(max(rss_base), 1)))
    results.append(dict(name=f"audio stage, {len(wavs)} speech files (1 thread)", unit="files/s",
                        ours=round(med(ours1), 1), baseline=round(med(base), 1),
                        baseline_name="librosa 0.11, 1 process", speedup=round(med(ours1) / med(base), 2),
                        peak_rss_mb_ours=None, peak_rss_mb_baseline=round(max(rss_base), 1)))
    return rows["ours"][1]


def long_wav_root():
    """A data root holding one 20-minute wav under a RAVDESS name: 48 kHz 16-bit stereo pink noise with
    a slow tremolo (sox), so decoding, down-mixing and resampling all run for the whole length."""
    data = os.path.join(WORK, "long")
    wav = os.path.join(data, "Actor_01", "03-01-01-01-01-01-01.wav")
    if not os.path.exists(wav):
        os.makedirs(os.path.dirname(wav), exist_ok=True)
        subprocess.run(["sox", "-n", "-r", "48000", "-b", "16", "-c", "2", wav + ".tmp.wav", "synth", "1200",
                        "pinknoise", "tremolo", "0.5", "80", "vol", "0.3"], check=True)
        os.rename(wav + ".tmp.wav", wav)
    return data, wav


def bench_long_audio(results):
    """Peak RSS of the audio stage on one 20-minute wav: it keeps 3 s but reads all of it (target < 200 MB)."""
    data, _ = long_wav_root()
    workdir = os.path.join(WORK, "work-long")
    shutil.rmtree(workdir, ignore_errors=True)
    m = manifest(os.path.join(WORK, "bench-long.yaml"), data, os.cpu_count())
    subprocess.run([EMOPIPE, "run", m, "--until", "ingest", "--workdir", workdir], check=True, stderr=subprocess.DEVNULL)
    _, rss, _, _ = peak_rss_mb([EMOPIPE, "run", m, "--only", "audio", "--workdir", workdir])
    seconds = stage_seconds(workdir, "audio")
    print(f"  20-minute wav: audio stage {seconds:.1f} s, peak RSS {rss:.0f} MB", file=sys.stderr)
    results.append(dict(name="audio stage, one 20-minute wav (48 kHz stereo)", unit="s", ours=round(seconds, 2),
                        baseline=None, baseline_name=None, speedup=None, peak_rss_mb_ours=round(rss, 1),
                        peak_rss_mb_baseline=None))


def bench_long_predict(results, workdir):
    """Peak RSS of `emopipe predict` on the 20-minute wav, with the model the training bench made
    (exported here): the whole clip's log-mel is kept for its timeline, never its whole waveform."""
    m = os.path.join(WORK, "bench-train.yaml")
    subprocess.run([EMOPIPE, "run", m, "--until", "export", "--workdir", workdir], check=True, stderr=subprocess.DEVNULL)
    runs = [os.path.join(workdir, "runs", r) for r in os.listdir(os.path.join(workdir, "runs"))]
    run = max((r for r in runs if os.path.exists(os.path.join(r, "model.safetensors"))), key=os.path.getmtime)
    _, wav = long_wav_root()
    wall, rss, _, _ = peak_rss_mb([EMOPIPE, "predict", "--run", run, "--workdir", workdir, "--json", wav])
    print(f"  20-minute wav: predict {wall:.1f} s, peak RSS {rss:.0f} MB", file=sys.stderr)
    results.append(dict(name="predict, one 20-minute wav (48 kHz stereo)", unit="s", ours=round(wall, 2),
                        baseline=None, baseline_name=None, speedup=None, peak_rss_mb_ours=round(rss, 1),
                        peak_rss_mb_baseline=None))


def bench_cache_read(results, workdir):
    _, rss, out, _ = peak_rss_mb([BENCH, "cache-read", workdir, "audio"])
    for line in out.splitlines():
        doc = json.loads(line)
        results.append(dict(name=f"cache read, {doc['mode']}, {doc['records']} audio records", unit="GB/s",
                            ours=round(doc["gb_per_s"], 2), baseline=None, baseline_name=None, speedup=None,
                            peak_rss_mb_ours=round(rss, 1), peak_rss_mb_baseline=None,
                            records_per_s=round(doc["records_per_s"])))


def python_reader_pass(workdir, stage, npy_folder, rounds):
    """Run by the venv's python (numpy): times, alternating over rounds, reading every record of a stage
    through the emopipe package (memory-mapped, zero copy; also with the CRC check) against np.load
    of one .npy file per record (the same bytes, written once from the reader). Every byte is summed,
    so neither side skips reading. Prints one JSON object."""
    import numpy as np
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import emopipe

    with emopipe.WorkDir(workdir) as work:
        records = work.records(stage)
        paths = []
        os.makedirs(npy_folder, exist_ok=True)
        for record in records:
            paths.append(os.path.join(npy_folder, record.key + ".npy"))
            if not os.path.exists(paths[-1]):
                np.save(paths[-1], work.tensor(record))
    nbytes = sum(r.nbytes for r in records)

    def reader(verify):
        # Opening the work directory and listing the records is part of the reader's cost.
        with emopipe.WorkDir(workdir) as work:
            return sum(float(np.add.reduce(work.tensor(r, verify=verify), axis=None)) for r in work.records(stage))

    def npy():
        return sum(float(np.add.reduce(np.load(p), axis=None)) for p in paths)

    def timed(fn):
        start = time.perf_counter()
        total = fn()
        return time.perf_counter() - start, total

    timed(lambda: reader(False)), timed(npy)   # warm: the page cache holds both copies
    seconds = {"reader": [], "reader_crc": [], "npy": []}
    for _ in range(rounds):
        for name, fn in (("reader", lambda: reader(False)), ("npy", npy), ("reader_crc", lambda: reader(True))):
            secs, total = timed(fn)
            seconds[name].append(secs)
    med = {name: statistics.median(values) for name, values in seconds.items()}
    print(json.dumps({"records": len(records), "bytes": nbytes, "seconds": med,
                      "numpy": np.__version__}))


def bench_python_reader(results, workdir):
    """Reading the cache from Python (issue 14): the emopipe package against np.load of per-record .npy files."""
    _, rss, out, _ = peak_rss_mb([VENV_PYTHON, os.path.abspath(__file__), "python-reader", workdir, "audio",
                                  os.path.join(WORK, "npy-audio")], ok=(0,))
    doc = json.loads(out)
    n, mb = doc["records"], doc["bytes"] / 1e6
    secs = doc["seconds"]
    for name, key, baseline in (("python reader (mmap, zero copy)", "reader", True),
                                ("python reader with CRC-32C check (numpy)", "reader_crc", False)):
        ours = mb / secs[key]
        results.append(dict(name=f"{name}, {n} audio records", unit="MB/s", ours=round(ours, 1),
                            baseline=round(mb / secs["npy"], 1) if baseline else None,
                            baseline_name=f"np.load of {n} per-record .npy files" if baseline else None,
                            speedup=round(secs["npy"] / secs[key], 2) if baseline else None,
                            peak_rss_mb_ours=round(rss, 1), peak_rss_mb_baseline=None,
                            records_per_s=round(n / secs[key]),
                            baseline_records_per_s=round(n / secs["npy"]) if baseline else None))
    print(f"  python reader {mb / secs['reader']:.0f} MB/s ({n / secs['reader']:.0f} records/s), with CRC "
          f"{mb / secs['reader_crc']:.0f} MB/s; np.load of .npy files {mb / secs['npy']:.0f} MB/s "
          f"({n / secs['npy']:.0f} records/s)", file=sys.stderr)


def bench_engine(results):
    """One training step (forward + backward + AdamW, B = 32) of the two reference networks, EmoNN
    against PyTorch on the same shapes and thread count (torch from .venv-torch, made by
    scripts/torch_venv.sh; skipped with a note when absent)."""
    torch_python = os.path.join(ROOT, ".venv-torch/bin/python")
    if not os.path.exists(torch_python):
        subprocess.run(["bash", os.path.join(ROOT, "scripts/torch_venv.sh"), os.path.join(ROOT, ".venv-torch")])
    out = os.path.join(WORK, "emonn.json")
    cmd = [sys.executable, os.path.join(ROOT, "scripts/emonn_bench_compare.py"), "--bench",
           os.path.join(ROOT, ".build/release/emonn-bench"), "--threads", str(os.cpu_count()), "--json", out]
    if os.path.exists(torch_python):
        cmd += ["--torch-python", torch_python]
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    for row in json.load(open(out)):
        ours, theirs = row["emonn"], row["torch"]
        results.append(dict(name=f"train step, {row['net']} reference net, B=32 ({os.cpu_count()} threads)",
                            unit="ms/step", ours=round(ours["ms_per_step"], 1),
                            baseline=round(theirs["ms_per_step"], 1) if theirs else None,
                            baseline_name=theirs["impl"] if theirs else None,
                            speedup=round(theirs["ms_per_step"] / ours["ms_per_step"], 2) if theirs else None,
                            peak_rss_mb_ours=round(ours["peak_rss_mb"], 1),
                            peak_rss_mb_baseline=round(theirs["peak_rss_mb"], 1) if theirs else None,
                            gflops_ours=round(ours["gflops"], 1), samples_per_s_ours=round(ours["samples_per_s"], 1),
                            gemm_kernel=ours.get("gemm_kernel")))
        for s in (row.get("gemm") or {}).get("shapes", []):
            results.append(dict(name=f"sgemm {row['net']} conv{s['layer']} {s['pass']} {s['m']}x{s['n']}x{s['k']} (1 thread)",
                                unit="GFLOP/s", ours=round(s["emonn_gflops"], 1),
                                baseline=None if s["torch_gflops"] is None else round(s["torch_gflops"], 1),
                                baseline_name=row["gemm"]["torch_impl"],
                                speedup=None if s["torch_gflops"] is None else round(s["emonn_gflops"] / s["torch_gflops"], 2),
                                peak_rss_mb_ours=None, peak_rss_mb_baseline=None, gemm_kernel=row["gemm"]["kernel"]))


def bench_faces(results):
    """Face extraction on the 120 AV clips of actors 01-02 against an OpenCV pipeline (VideoCapture +
    Haar cascade + crop + resize, bench/opencv_faces.py, in .venv-bench) and the decode floor
    (ffmpeg -threads N -an -i CLIP -f null -), same K, size and thread count."""
    venv = os.path.join(ROOT, ".venv-bench")
    if not os.path.exists(os.path.join(venv, "bin/python")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin/pip"), "install", "-q", "opencv-python-headless<5", "numpy"], check=True)
    clips = os.path.join(WORK, "av")
    subprocess.run([os.path.join(SHARED, "materialize"), "--actors", "1-2", clips], check=True)
    out = os.path.join(WORK, "faces.json")
    threads = str(os.cpu_count())
    subprocess.run([os.path.join(ROOT, ".build/release/emoface-bench"), "--quiet", "--workers", threads,
                    "--ffmpeg-threads", threads, "--floor", "--python", os.path.join(venv, "bin/python"),
                    "--json", out, clips], check=True, stdout=sys.stderr)
    doc = json.load(open(out))
    ours = doc["ours_minimal"]["clips_per_s"]
    for name, key, baseline_name in (
            ("faces stage vs OpenCV pipeline", "opencv_clips_per_s", "OpenCV VideoCapture + Haar cascade + crop + resize"),
            ("faces stage vs decode floor", "floor_clips_per_s", "ffmpeg -an -f null (every frame decoded)")):
        results.append(dict(name=f"{name}, 120 AV clips ({threads} workers)", unit="clips/s", ours=round(ours, 2),
                            baseline=round(doc[key], 2), baseline_name=baseline_name,
                            speedup=round(ours / doc[key], 2), peak_rss_mb_ours=round(doc["peak_rss_mb"], 1),
                            peak_rss_mb_baseline=None))


def bench_training(results, workdir, data):
    """Seconds per training epoch and peak RSS of training on the shared speech clips (fold 0 of
    4: 600 training clips, 120 validation clips), 2 epochs."""
    m = os.path.join(WORK, "bench-train.yaml")
    with open(m, "w") as f:
        f.write(f"pipeline: {ROOT}/pipelines/ravdess.yaml\ndata: {data}\nseed: 1\nthreads: {os.cpu_count()}\n"
                "params:\n  split: {folds: 4, test_fold: 0, val_count: 2}\n  train: {epochs: 2, checkpoint_every: 1}\n")
    shutil.rmtree(os.path.join(workdir, "cache/train"), ignore_errors=True)
    _, rss, _, _ = peak_rss_mb([EMOPIPE, "run", m, "--until", "train", "--force", "train", "--workdir", workdir])
    states = [os.path.join(dp, "state.json") for dp, _, fs in os.walk(os.path.join(workdir, "cache/train")) if "state.json" in fs]
    epochs = json.load(open(states[0]))["epochs"]
    seconds = statistics.median(e["seconds"] for e in epochs)
    results.append(dict(name=f"training epoch, 600 speech clips + 120 validation ({os.cpu_count()} threads)", unit="s/epoch",
                        ours=round(seconds, 2), baseline=None, baseline_name=None, speedup=None,
                        peak_rss_mb_ours=round(rss, 1), peak_rss_mb_baseline=None))


def onnx_latency_pass(float_path, int8_path, rounds):
    """Run by the venv's python: milliseconds per clip (one 3 s window, speech only) of model.onnx and
    model.int8.onnx in onnxruntime (CPU, every core), batch 1 and 32, alternating the files over rounds
    on the same inputs; the median round. Also model.int8.onnx with `session.disable_quant_qdq`, which
    lets onnxruntime fold the weights' DequantizeLinear into float weights when it loads the file.
    Prints one JSON object."""
    import numpy as np
    import onnxruntime as ort

    def session(path, fold_weights=False):
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count()
        if fold_weights:
            options.add_session_config_entry("session.disable_quant_qdq", "1")
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    sessions = {"float": session(float_path), "int8": session(int8_path), "int8_folded": session(int8_path, True)}
    rng = np.random.default_rng(1)

    def feeds(batch):
        out = {}
        for i in sessions["float"].get_inputs():
            shape = [batch if isinstance(d, str) else d for d in i.shape]
            if i.name == "logmel":
                out[i.name] = rng.uniform(-80, 0, shape).astype(np.float32)
            elif i.name == "faces":
                out[i.name] = np.zeros(shape, np.uint8)
            elif i.name == "modality_mask":
                out[i.name] = np.tile(np.array([[1, 0]], np.float32), (batch, 1))
            else:
                out[i.name] = (np.ones if i.name == "logmel_mask" else np.zeros)(shape, np.float32)
        return out

    result = {}
    for batch, repeats in ((1, 30), (32, 3)):
        inputs = feeds(batch)
        for s in sessions.values():
            s.run(["logits"], inputs)   # warm
        times = {name: [] for name in sessions}
        for _ in range(rounds):
            for name, s in sessions.items():
                start = time.perf_counter()
                for _ in range(repeats):
                    s.run(["logits"], inputs)
                times[name].append((time.perf_counter() - start) / repeats / batch * 1000)
        result[str(batch)] = {name: statistics.median(v) for name, v in times.items()}
    result["bytes"] = {name: os.path.getsize(path) for name, path in (("float", float_path), ("int8", int8_path))}
    result["onnxruntime"] = ort.__version__
    print(json.dumps(result))


def bench_int8(results, run_folder):
    """Int8 export (issue 13): file size and onnxruntime latency per clip of model.int8.onnx against
    model.onnx, batch 1 and 32, from one run folder exported with export.quantize: int8."""
    _, _, out, _ = peak_rss_mb([VENV_PYTHON, os.path.abspath(__file__), "onnx-latency",
                                os.path.join(run_folder, "model.onnx"), os.path.join(run_folder, "model.int8.onnx")], ok=(0,))
    doc = json.loads(out)
    size = doc["bytes"]
    results.append(dict(name="model.int8.onnx size against model.onnx", unit="MB", ours=round(size["int8"] / 1e6, 3),
                        baseline=round(size["float"] / 1e6, 3), baseline_name="model.onnx (float32)",
                        speedup=round(size["float"] / size["int8"], 2), peak_rss_mb_ours=None, peak_rss_mb_baseline=None))
    for batch in ("1", "32"):
        t = doc[batch]
        for key, how in (("int8", ""), ("int8_folded", " (weights folded at load)")):
            results.append(dict(name=f"onnxruntime int8{how} vs float, ms per clip, batch {batch}", unit="ms/clip",
                                ours=round(t[key], 3), baseline=round(t["float"], 3),
                                baseline_name=f"model.onnx in onnxruntime {doc['onnxruntime']}",
                                speedup=round(t["float"] / t[key], 2), peak_rss_mb_ours=None, peak_rss_mb_baseline=None))
    print(f"  model.int8.onnx {size['int8']} bytes, model.onnx {size['float']} bytes "
          f"({100 * size['int8'] / size['float']:.0f}%); ms per clip int8/int8 folded/float: batch 1 "
          f"{doc['1']['int8']:.2f}/{doc['1']['int8_folded']:.2f}/{doc['1']['float']:.2f}, "
          f"batch 32 {doc['32']['int8']:.2f}/{doc['32']['int8_folded']:.2f}/{doc['32']['float']:.2f}",
          file=sys.stderr)


def export_int8(workdir, data):
    """Exports bench_training's model (the default network) as model.onnx and model.int8.onnx; the run folder."""
    m = os.path.join(WORK, "bench-train.yaml")
    peak_rss_mb([EMOPIPE, "run", m, "--only", "export", "--set", "export.quantize=int8", "--workdir", workdir])
    runs = os.path.join(workdir, "runs")
    folders = [os.path.join(runs, r) for r in os.listdir(runs) if os.path.exists(os.path.join(runs, r, "model.int8.onnx"))]
    return max(folders, key=os.path.getmtime)


def bench_hostile_manifests(results):
    """Seconds and peak RSS for `emopipe status` to refuse hostile YAML from the bad-input corpus (exit 64):
    anchors that would expand to 10^10 nodes, and nesting past the parser's limit."""
    folder = os.path.join(ROOT, "Tests/EmoPipelineTests/Fixtures/bad-inputs")
    workdir = os.path.join(WORK, "work-refusals")
    for name, what in (("yaml-billion-laughs", "nested anchors ('billion laughs')"),
                       ("yaml-parser-nesting-limit", "3000-deep nesting")):
        walls, rsss = [], []
        for _ in range(ROUNDS):
            wall, rss, _, _ = peak_rss_mb([EMOPIPE, "status", os.path.join(folder, name + ".yaml"), "--workdir", workdir], ok=(64,))
            walls.append(wall)
            rsss.append(rss)
        results.append(dict(name=f"refuse a manifest with {what}", unit="s", ours=round(statistics.median(walls), 3),
                            baseline=None, baseline_name=None, speedup=None,
                            peak_rss_mb_ours=round(max(rsss), 1), peak_rss_mb_baseline=None))


def main():
    if not os.path.isdir(SHARED):
        sys.exit(f"bench: needs the shared RAVDESS data at {SHARED} (or set EMOPIPE_RAVDESS)")
    os.makedirs(WORK, exist_ok=True)
    results = []
    print("audio stage vs librosa:", file=sys.stderr)
    workdir = bench_audio(results)
    bench_cache_read(results, workdir)
    print("cache from Python:", file=sys.stderr)
    bench_python_reader(results, workdir)
    print("one 20-minute wav:", file=sys.stderr)
    bench_long_audio(results)
    print("training epoch:", file=sys.stderr)
    bench_training(results, workdir, os.path.join(WORK, "speech"))
    bench_long_predict(results, workdir)
    print("int8 export vs float in onnxruntime:", file=sys.stderr)
    bench_int8(results, export_int8(workdir, os.path.join(WORK, "speech")))
    print("faces stage vs OpenCV and the decode floor:", file=sys.stderr)
    bench_faces(results)
    print("engine training step vs PyTorch:", file=sys.stderr)
    bench_engine(results)
    print("hostile manifests:", file=sys.stderr)
    bench_hostile_manifests(results)
    os.makedirs(os.path.join(ROOT, "bench"), exist_ok=True)
    with open(os.path.join(ROOT, "bench/results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\n{'benchmark':58} {'unit':8} {'ours':>9} {'baseline':>9} {'speedup':>8} {'RSS ours':>9} {'RSS base':>9}")
    fmt = lambda v, p=1: "-" if v is None else f"{v:.{p}f}"
    for r in results:
        print(f"{r['name'][:58]:58} {r['unit']:8} {fmt(r['ours']):>9} {fmt(r['baseline']):>9} "
              f"{fmt(r['speedup'], 2):>8} {fmt(r['peak_rss_mb_ours']):>9} {fmt(r['peak_rss_mb_baseline']):>9}")
    kernels = sorted({r["gemm_kernel"] for r in results if r.get("gemm_kernel")})
    if kernels:
        print("\nGEMM: " + "; ".join(kernels))
    print("\nwritten: bench/results.json")


if __name__ == "__main__":
    if sys.argv[1:2] == ["python-reader"]:   # run by the venv's python: WORKDIR STAGE NPY_FOLDER
        python_reader_pass(*sys.argv[2:5], rounds=ROUNDS)
    elif sys.argv[1:2] == ["onnx-latency"]:   # run by the venv's python: MODEL.onnx MODEL.int8.onnx
        onnx_latency_pass(*sys.argv[2:4], rounds=ROUNDS)
    elif sys.argv[1:2] == ["int8"]:   # only the int8 comparison, on a run folder exported with quantize: int8
        rows = []
        bench_int8(rows, sys.argv[2])
        print(json.dumps(rows, indent=2))
    elif sys.argv[1:] == ["long-audio"]:   # only the 20-minute wav through the audio stage, printed
        os.makedirs(WORK, exist_ok=True)
        rows = []
        bench_long_audio(rows)
        print(json.dumps(rows, indent=2))
    else:
        main()
