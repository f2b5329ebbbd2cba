"""Baseline for `make bench`: the librosa log-mel pipeline people write for RAVDESS.

Reads a list of wav paths, warms up on a few, then times load(sr=16000) + melspectrogram +
power_to_db + pad/crop to 300 frames over all of them, one process, one file at a time.
Prints one JSON object: {"files": N, "seconds": S}.
"""
import json
import sys
import time

import librosa
import numpy as np


def logmel(path, frames=300):
    y, sr = librosa.load(path, sr=16000)
    s = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, win_length=400, hop_length=160, window="hann",
                                       center=True, pad_mode="constant", power=2.0, n_mels=64, norm="slaney")
    db = librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=80.0).astype(np.float32)
    if db.shape[1] >= frames:
        return db[:, :frames]
    return np.pad(db, ((0, 0), (0, frames - db.shape[1])), constant_values=db.min())


def main():
    paths = [line.strip() for line in open(sys.argv[1]) if line.strip()]
    for path in paths[:5]:
        logmel(path)
    start = time.perf_counter()
    checksum = 0.0
    for path in paths:
        checksum += float(logmel(path)[0, 0])
    seconds = time.perf_counter() - start
    print(json.dumps({"files": len(paths), "seconds": seconds, "checksum": checksum}))


if __name__ == "__main__":
    main()
