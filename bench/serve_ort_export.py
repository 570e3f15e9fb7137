#!/usr/bin/python3
"""The ONNX side of bench/serve.ts: our weights (a .pth from model.save) into torchvision's
model, exported with torch.onnx.export for onnxruntime-node.

  /usr/bin/python3 bench/serve_ort_export.py --arch resnet18 --weights w.pth --out w.onnx

The graph takes "input" [batch, 3, H, W] float32 and returns "logits" [batch, classes]; the batch
axis is dynamic. Before exporting, the script checks that torchvision's model with these weights
gives the logits our model gave for the same input (--check-input / --check-logits, raw float32
files), so both servers in the benchmark compute the same function. Prints one JSON line.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--opset", type=int, default=13)
    p.add_argument("--check-input")
    p.add_argument("--check-logits")
    a = p.parse_args()

    started = time.perf_counter()
    model = getattr(torchvision.models, a.arch)(weights=None, num_classes=a.num_classes)
    state = torch.load(a.weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()

    max_abs_diff = None
    if a.check_input and a.check_logits:
        x = torch.from_numpy(np.fromfile(a.check_input, dtype="<f4").reshape(1, 3, a.size, a.size).copy())
        ours = np.fromfile(a.check_logits, dtype="<f4")
        with torch.inference_mode():
            theirs = model(x).numpy().reshape(-1)
        max_abs_diff = float(np.abs(theirs - ours).max())
        if max_abs_diff > 1e-3 * max(1.0, float(np.abs(theirs).max())):
            raise SystemExit(f"torchvision's logits differ from ours by {max_abs_diff}")

    dummy = torch.zeros(1, 3, a.size, a.size)
    torch.onnx.export(
        model,
        dummy,
        a.out,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=a.opset,
        do_constant_folding=True,
    )
    print(json.dumps({
        "arch": a.arch,
        "out": a.out,
        "bytes": os.path.getsize(a.out),
        "opset": a.opset,
        "torch": torch.__version__,
        "maxAbsDiffVsOurs": max_abs_diff,
        "seconds": time.perf_counter() - started,
    }))


if __name__ == "__main__":
    main()
