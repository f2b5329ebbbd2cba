"""Test oracle for the ONNX export: onnx.checker (full check) and onnxruntime against the Swift
forward pass. Usage: onnx_check.py MODEL.onnx DIR  (DIR holds the inputs as .npy, and
expected_logits.npy when there is something to compare). Prints one JSON object:
{"max_abs_diff": d or null, "logits": [[...]], "shape": [...], "opset": n, "metadata": {...},
"producer": [name, version],
"int8_initializers": how many weights are stored as int8 (model.int8.onnx)}."""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, folder = sys.argv[1], sys.argv[2]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = ["logmel", "logmel_mask", "faces", "faces_mask", "modality_mask"]
    feeds = {n: np.load(os.path.join(folder, n + ".npy")) for n in names}
    logits = session.run(["logits"], feeds)[0]
    expected_path = os.path.join(folder, "expected_logits.npy")
    diff = None
    if os.path.exists(expected_path):
        diff = float(np.max(np.abs(logits - np.load(expected_path))))
    print(json.dumps({
        "max_abs_diff": diff,
        "logits": logits.tolist(),
        "shape": list(logits.shape),
        "opset": model.opset_import[0].version,
        "metadata": {p.key: p.value for p in model.metadata_props},
        "producer": [model.producer_name, model.producer_version],
        "int8_initializers": sum(1 for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8),
    }))


if __name__ == "__main__":
    main()
