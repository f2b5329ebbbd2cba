#!/usr/bin/env python3
"""librosa 0.11 oracle for EmoFeatures' log-mel (the parity tests run it through .venv/bin/python).

Implements the contract documented in Sources/EmoFeatures/LogMelExtractor.swift with librosa's own
functions: optional librosa.effects.trim, librosa.feature.melspectrogram, librosa.power_to_db, then
the crop/pad to `frames`.

Subcommands (all arrays are written as raw little-endian float32, row-major):
  logmel --params P.json [--params Q.json ...] --out DIR [--load-sr SR] FILE...
      For the i-th FILE (0-based) writes DIR/i.f32 ([n_mels, frames]) and DIR/i.json (frames,
      real_frames, total_frames, first_frame, sample_range, pad_value, peak_db, duration, n_mels);
      with several --params, DIR/j/i.* for the j-th parameter set (one process, one librosa import).
      FILE is read with librosa.load(FILE, sr=None, mono=True) and must be at sample_rate; with
      --load-sr SR it is resampled by librosa.load(sr=SR) (soxr_hq, librosa's default) instead.
  mel --params P.json [...] --out DIR  librosa.filters.mel(...) -> DIR/j.f32 ([n_mels, n_fft/2+1])
  window --spec KIND:N [...] --out DIR scipy.signal.get_window(KIND, N, fftbins=True) -> DIR/j.f32
  rfft --in F --out G                np.fft.rfft of a float32 vector (float64), |X|^2 as float32
  bench [--params P.json] [--load-sr SR] FILE...
      Throughput of the librosa pipeline (load + resample + log-mel) in files/s.

P.json holds LogMelParameters as Swift encodes them (snake_case keys); an optional "preset" key
("speech" or "reference") gives the defaults for keys that are absent.
"""
import argparse
import json
import os
import sys
import time

# One BLAS thread: the oracle runs beside the Swift tests, and a multi-threaded BLAS on a busy
# 2-core machine is several times slower (this also makes `bench` a per-core figure).
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

PRESETS = {
    "speech": dict(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, window="hann",
                   center=True, pad_mode="constant", n_mels=64, fmin=0.0, fmax=None, mel_norm="slaney",
                   htk=False, power=2.0, db_ref=1.0, db_amin=1e-10, top_db=80.0, frames=300,
                   crop="start", trim_db=None),
}
PRESETS["reference"] = dict(PRESETS["speech"], n_fft=2048, win_length=2048, hop_length=512)

SCIPY_WINDOW = {"hann": "hann", "hamming": "hamming", "rectangular": "boxcar"}


def load_params(path):
    given = {}
    if path:
        with open(path) as f:
            given = json.load(f)
    p = dict(PRESETS[given.pop("preset", "speech")])
    unknown = set(given) - set(p)
    if unknown:
        raise SystemExit(f"unknown parameter(s): {sorted(unknown)}")
    p.update(given)
    return p


def mel_filters(p):
    import librosa
    return librosa.filters.mel(sr=p["sample_rate"], n_fft=p["n_fft"], n_mels=p["n_mels"], fmin=p["fmin"],
                               fmax=p["fmax"], htk=p["htk"],
                               norm="slaney" if p["mel_norm"] == "slaney" else None, dtype=np.float32)


def trim_range(y, p, top_db):
    import librosa
    _, idx = librosa.effects.trim(y, top_db=top_db, ref=np.max, frame_length=p["n_fft"],
                                  hop_length=p["hop_length"])
    return int(idx[0]), int(idx[1])


def logmel(y, p):
    """Returns (values [n_mels, frames] float32, meta dict)."""
    import librosa
    n = len(y)
    lo, hi = 0, n
    if p["trim_db"] is not None:
        lo, hi = trim_range(y, p, p["trim_db"])
    yt = y[lo:hi]
    S = librosa.feature.melspectrogram(
        y=yt, sr=p["sample_rate"], n_fft=p["n_fft"], hop_length=p["hop_length"], win_length=p["win_length"],
        window=SCIPY_WINDOW[p["window"]], center=p["center"], pad_mode=p["pad_mode"], power=p["power"],
        n_mels=p["n_mels"], fmin=p["fmin"], fmax=p["fmax"], htk=p["htk"],
        norm="slaney" if p["mel_norm"] == "slaney" else None)
    D = librosa.power_to_db(S, ref=p["db_ref"], amin=p["db_amin"], top_db=p["top_db"])
    total = D.shape[1]
    F = p["frames"] if p["frames"] is not None else total
    first = 0
    if total > F and p["crop"] == "center":
        vs, ve = trim_range(yt, p, p["trim_db"] if p["trim_db"] is not None else 60)
        mid = (vs + ve) // 2
        hop = p["hop_length"]
        c = mid // hop if p["center"] else max(0, mid - p["n_fft"] // 2) // hop
        first = min(max(c - F // 2, 0), total - F)
    real = min(total - first, F)
    # the dB value of digital silence under the same transform, raised to the top_db floor
    pad = librosa.power_to_db(np.zeros(1, np.float32), ref=p["db_ref"], amin=p["db_amin"], top_db=None)[0]
    peak = D.max()
    if p["top_db"] is not None:
        pad = max(pad, np.float32(peak - np.float32(p["top_db"])))
    out = np.full((p["n_mels"], F), pad, dtype=np.float32)
    out[:, :real] = D[:, first:first + real]
    meta = dict(frames=F, real_frames=real, total_frames=total, first_frame=first, sample_range=[lo, hi],
                pad_value=float(pad), peak_db=float(peak), duration=n / p["sample_rate"], n_mels=p["n_mels"])
    return out, meta


def load(path, p, load_sr):
    import librosa
    if load_sr:
        y, sr = librosa.load(path, sr=load_sr, mono=True)
    else:
        y, sr = librosa.load(path, sr=None, mono=True)
    if sr != p["sample_rate"]:
        raise SystemExit(f"{path}: {sr} Hz, parameters expect {p['sample_rate']} Hz")
    return y.astype(np.float32, copy=False)


def cmd_logmel(a):
    sets = [load_params(x) for x in (a.params or [None])]
    cache = {}
    for j, p in enumerate(sets):
        out = a.out if len(sets) == 1 else os.path.join(a.out, str(j))
        os.makedirs(out, exist_ok=True)
        for i, path in enumerate(a.files):
            key = (path, p["sample_rate"])
            if key not in cache:
                cache[key] = load(path, p, a.load_sr)
            values, meta = logmel(cache[key], p)
            meta["path"] = path
            values.astype("<f4").tofile(os.path.join(out, f"{i}.f32"))
            with open(os.path.join(out, f"{i}.json"), "w") as f:
                json.dump(meta, f)


def cmd_mel(a):
    os.makedirs(a.out, exist_ok=True)
    for j, path in enumerate(a.params):
        mel_filters(load_params(path)).astype("<f4").tofile(os.path.join(a.out, f"{j}.f32"))


def cmd_window(a):
    import scipy.signal
    os.makedirs(a.out, exist_ok=True)
    for j, spec in enumerate(a.spec):
        kind, n = spec.split(":")
        w = scipy.signal.get_window(SCIPY_WINDOW.get(kind, kind), int(n), fftbins=True)
        w.astype("<f4").tofile(os.path.join(a.out, f"{j}.f32"))


def cmd_rfft(a):
    x = np.fromfile(a.inp, dtype="<f4").astype(np.float64)
    X = np.fft.rfft(x)
    (X.real ** 2 + X.imag ** 2).astype("<f4").tofile(a.out)


def cmd_bench(a):
    p = load_params(a.params)
    logmel(load(a.files[0], p, a.load_sr), p)      # warm-up (imports, caches, numba)
    t_load = t_feat = 0.0
    for path in a.files:
        t0 = time.perf_counter()
        y = load(path, p, a.load_sr)
        t1 = time.perf_counter()
        logmel(y, p)
        t_load += t1 - t0
        t_feat += time.perf_counter() - t1
    n, dt = len(a.files), t_load + t_feat
    print(f"librosa pipeline, one thread: {n} files in {dt:.3f} s = {n / dt:.1f} files/s; per file: "
          f"load{'+resample' if a.load_sr else ''} {1e3 * t_load / n:.2f} ms, log-mel {1e3 * t_feat / n:.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("logmel")
    s.add_argument("--params", action="append")
    s.add_argument("--out", required=True)
    s.add_argument("--load-sr", type=int)
    s.add_argument("files", nargs="+")
    s.set_defaults(fn=cmd_logmel)
    s = sub.add_parser("mel")
    s.add_argument("--params", action="append", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_mel)
    s = sub.add_parser("window")
    s.add_argument("--spec", action="append", required=True, help="KIND:LENGTH")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_window)
    s = sub.add_parser("rfft")
    s.add_argument("--in", dest="inp", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_rfft)
    s = sub.add_parser("bench")
    s.add_argument("--params")
    s.add_argument("--load-sr", type=int)
    s.add_argument("files", nargs="+")
    s.set_defaults(fn=cmd_bench)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
