"""Baseline timings for `make bench`: one training step (forward, backward,
AdamW) of the two reference networks in PyTorch on the CPU.

Usage: python scripts/torch_bench.py [audio|faces] [--threads 2] [--steps N] [--json]
Prints ms/step, samples/s, GFLOP/s (same FLOP count as emonn-bench) and peak RSS.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=False), nn.MaxPool2d(2)]


class Audio(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [1, 32, 64, 128, 128]
        self.features = nn.Sequential(*sum((block(a, b) for a, b in zip(chans, chans[1:])), []))
        self.head = nn.Linear(128, 8)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


class Faces(nn.Module):
    def __init__(self, frames=8):
        super().__init__()
        chans = [3, 32, 64, 128, 128]
        self.frames = frames
        self.features = nn.Sequential(*sum((block(a, b) for a, b in zip(chans, chans[1:])), []))
        self.score = nn.Linear(128, 1)
        self.head = nn.Linear(128, 8)

    def forward(self, x):
        f = self.features(x).mean(dim=(2, 3))            # [B*T, 128]
        f = f.view(-1, self.frames, f.shape[-1])         # [B, T, 128]
        a = torch.softmax(self.score(f), dim=1)          # [B, T, 1]
        return self.head((a * f).sum(dim=1))


def conv_flops(shape, chans):
    """Forward multiply-adds ×2 of the conv stack (the bulk of the work)."""
    n, _, h, w = shape
    total = 0
    for cin, cout in zip(chans, chans[1:]):
        total += 2 * n * cout * cin * 9 * h * w
        h, w = h // 2, w // 2
    return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("net", choices=["audio", "faces"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-mkldnn", action="store_true", help="turn off oneDNN, leaving torch's own conv kernels")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = not a.no_mkldnn
    torch.manual_seed(0)
    if a.net == "audio":
        model, shape, chans = Audio(), (a.batch, 1, 64, 300), [1, 32, 64, 128, 128]
    else:
        model, shape, chans = Faces(), (a.batch * 8, 3, 112, 112), [3, 32, 64, 128, 128]
    x = torch.randn(*shape)
    y = torch.randint(0, 8, (a.batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up: allocator and oneDNN primitive caches
    times = []
    cpu0 = time.process_time()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = 1000 * sorted(times)[len(times) // 2]
    cpu_ms = 1000 * (time.process_time() - cpu0) / a.steps  # steadier than wall time on a shared machine
    flops = 3 * conv_flops(shape, chans)  # forward + two backward products
    out = {"net": a.net, "impl": "torch " + torch.__version__ + (" no-mkldnn" if a.no_mkldnn else ""), "threads": a.threads, "batch": a.batch,
           "ms_per_step": ms, "samples_per_s": a.batch / (ms / 1000),
           "gflops": flops / (ms / 1000) / 1e9,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_ms_per_step": cpu_ms}
    print(json.dumps(out) if a.json else
          "{net} {impl}: {ms_per_step:.1f} ms/step (CPU {cpu_ms_per_step:.1f} ms/step), {samples_per_s:.1f} samples/s, "
          "{gflops:.1f} GFLOP/s, peak RSS {peak_rss_mb:.0f} MB".format(**out))


if __name__ == "__main__":
    main()
