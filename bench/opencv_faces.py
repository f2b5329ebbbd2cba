#!/usr/bin/env python3
"""The face-crop pipeline people typically write for RAVDESS, as emoface-bench's baseline:
cv2.VideoCapture reads every frame, K frames are taken evenly by index, OpenCV's Haar cascade finds the
largest face, which is cropped with a margin and resized to SIZE x SIZE RGB.

    python bench/opencv_faces.py --frames 8 --size 112 --workers 2 [--haar-width 640] --list clips.txt   (or clip paths)

Needs `pip install "opencv-python-headless<5" numpy` (OpenCV 5 dropped CascadeClassifier).
Prints clips/s on stdout.
"""
import argparse
import os
import sys
import time
from multiprocessing import Pool

import cv2
import numpy as np

CASCADE = None


def init():
    global CASCADE
    cv2.setNumThreads(1)
    CASCADE = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))


def process(job):
    path, k, size, margin, haar_width = job
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        return path, None
    idx = np.linspace(0, len(frames) - 1, k).round().astype(int)
    crops = np.zeros((k, size, size, 3), np.uint8)
    found = 0
    for i, j in enumerate(idx):
        frame = frames[j]
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        scale = 1.0
        if haar_width and gray.shape[1] > haar_width:
            scale = gray.shape[1] / haar_width
            gray = cv2.resize(gray, (haar_width, round(gray.shape[0] / scale)), interpolation=cv2.INTER_AREA)
        faces = CASCADE.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(int(60 / scale), int(60 / scale)))
        if len(faces) == 0:
            continue
        found += 1
        x, y, w, h = (int(round(v * scale)) for v in max(faces, key=lambda r: r[2] * r[3]))
        side = int(max(w, h) * (1 + 2 * margin))
        cx, cy = x + w // 2, y + h // 2
        x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
        crop = frame[y0:y0 + side, x0:x0 + side]
        crops[i] = cv2.cvtColor(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return path, found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--margin", type=float, default=0.25)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--haar-width", type=int, default=0,
                    help="run the cascade on a copy this wide (0: full resolution, what most scripts do)")
    ap.add_argument("--list")
    ap.add_argument("clips", nargs="*")
    a = ap.parse_args()
    clips = list(a.clips)
    if a.list:
        clips += [line.strip() for line in open(a.list) if line.strip()]
    jobs = [(c, a.frames, a.size, a.margin, a.haar_width) for c in clips]
    t0 = time.time()
    with Pool(a.workers, initializer=init) as pool:
        results = pool.map(process, jobs, chunksize=1)
    dt = time.time() - t0
    faces = sum(r[1] or 0 for r in results)
    print("opencv: %d clips in %.2f s = %.2f clips/s; faces in %d/%d frames"
          % (len(clips), dt, len(clips) / dt, faces, len(clips) * a.frames))


if __name__ == "__main__":
    sys.exit(main())
