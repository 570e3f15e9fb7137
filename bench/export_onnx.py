#!/usr/bin/python3
"""Exports a torchvision ResNet with given weights to ONNX, for bench/inference.ts.

  /usr/bin/python3 bench/export_onnx.py --arch resnet50 --weights w.pth --out w.onnx [--opset 17]

The weights are a state dict (ours, written by model.save(...pth)) loaded strictly with
torch.load(weights_only=True) into torchvision's model in eval mode. The graph has one input
"input" [batch, 3, H, W] and one output "logits" [batch, classes], the batch axis dynamic.
Prints one JSON object: {"arch", "opset", "out", "bytes", "seconds"}.
"""
import argparse
import json
import os
import time

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args()
    if not 13 <= a.opset <= 17:
        raise SystemExit(f"opset {a.opset}: use 13..17")

    start = time.perf_counter()
    state = torch.load(a.weights, map_location="cpu", weights_only=True)
    classes = state["fc.weight"].shape[0]
    model = getattr(torchvision.models, a.arch)(weights=None, num_classes=classes)
    model.load_state_dict(state, strict=True)
    model.eval()
    example = torch.zeros(1, 3, a.size, a.size)
    with torch.no_grad():
        torch.onnx.export(
            model,
            example,
            a.out,
            opset_version=a.opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=True,
        )
    print(json.dumps({"arch": a.arch, "opset": a.opset, "out": a.out, "bytes": os.path.getsize(a.out),
                      "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
