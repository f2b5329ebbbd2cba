#!/usr/bin/env bash
# Makes the venv used only to regenerate the parity fixture and to time the
# PyTorch baseline (never by CI). Prefers a local CPU-only torch wheel when the
# machine has one (pip's find-links), otherwise PyPI's torch.
set -euo pipefail
VENV="${1:-.venv-torch}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet numpy safetensors
wheel=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -1 || true)
if [ -n "$wheel" ]; then
  # The CPU wheel's own dependencies, without PyPI's CUDA ones.
  "$VENV/bin/pip" install --quiet filelock typing-extensions sympy networkx jinja2 fsspec
  "$VENV/bin/pip" install --quiet --no-deps "$wheel"
else
  "$VENV/bin/pip" install --quiet torch
fi
"$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'
