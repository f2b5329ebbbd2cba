#!/usr/bin/env python3
"""Independent face boxes for the face-crop tests: OpenCV's Haar cascade on the frames our extractor samples.

Writes Tests/EmoFeaturesTests/Fixtures/haar-boxes.json, committed so CI needs no OpenCV:
    python3 -m venv .venv-haar && .venv-haar/bin/pip install "opencv-python-headless<5" numpy
    .venv-haar/bin/python scripts/haar_boxes.py ../shared/data/ravdess > Tests/EmoFeaturesTests/Fixtures/haar-boxes.json

(OpenCV 5 dropped CascadeClassifier from the main wheel: pin 4.x.)

Frame choice replicates FaceExtractor's sampling rule independently, from OpenCV's own timestamps:
K slots at (i + 0.5) / K of the clip's span (first frame to the end of the last), each taking the frame
presented nearest (ties to the earlier). Boxes are x0, y0, x1, y1 in source pixels; the largest Haar
detection per frame (null when Haar finds none). The test matches our frames to these by time (< 50 ms: the same frame or its neighbour, since
OpenCV's timestamps and span can differ from libavformat's by a frame).
"""
import json
import os
import sys

import cv2

K = 8


def clips(root):
    for sub in ("av-original", "av-derived", "odd"):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, sub))):
            for f in sorted(files):
                if f.endswith(".mp4"):
                    yield sub, os.path.join(dirpath, f)


def boxes_for(path, cascade):
    cap = cv2.VideoCapture(path)
    frames, times = [], []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        frames.append(frame)
    cap.release()
    if not frames:
        return []
    start = times[0]
    last_duration = times[-1] - times[-2] if len(times) > 1 else 1 / 30
    span = times[-1] + last_duration - start
    out = []
    for i in range(K):
        target = start + (i + 0.5) * span / K
        j = min(range(len(times)), key=lambda n: (abs(times[n] - target), n))
        gray = cv2.cvtColor(frames[j], cv2.COLOR_BGR2GRAY)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(60, 60))
        box = None
        if len(found):
            x, y, w, h = max(found, key=lambda r: r[2] * r[3])
            box = [int(x), int(y), int(x + w), int(y + h)]
        out.append({"t": round(times[j] - start, 4), "box": box})
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ravdess"
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    result = {"detector": "OpenCV %s haarcascade_frontalface_default scaleFactor=1.1 minNeighbors=5 minSize=60" % cv2.__version__,
              "frames": K, "clips": {}}
    for sub, path in clips(root):
        result["clips"][os.path.basename(path)] = boxes_for(path, cascade)
        print(sub, os.path.basename(path), file=sys.stderr)
    json.dump(result, sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
