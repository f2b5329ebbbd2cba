"""Opens a checkpoint written by EmoNN (`emonn-bench /tmp/ck.safetensors`)
with the safetensors package and loads its model tensors into the same
network built in PyTorch (scripts/torch_bench.py's Audio), to show the files
are interchangeable. Exits non-zero on any mismatch.

    python scripts/check_checkpoint.py /tmp/ck.safetensors
"""
import sys

from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, __import__("os").path.dirname(__file__))
from torch_bench import Audio  # noqa: E402


def main(path):
    with safe_open(path, "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
    tensors = load_file(path)
    model = Audio()
    state = {k: v for k, v in tensors.items() if not k.startswith(("optimizer.", "rng.", "train."))}
    model.load_state_dict(state, strict=True)  # every name and shape must match
    assert tensors["rng.state"].numel() == 4 and tensors["train.step"].item() == 1
    n_opt = sum(k.startswith("optimizer.") for k in keys)
    print(f"ok: {len(state)} model tensors loaded into torch, {n_opt} optimizer tensors, metadata {meta}")


if __name__ == "__main__":
    main(sys.argv[1])
