#!/usr/bin/python3
"""Python PyTorch's side of bench/forward.ts: eager forward times of a torchvision model.

Prints one JSON object: {"runtime", "arch", "batch", "threads", "times_ms": [...]}.
Run with the system Python (python3-torch, python3-torchvision).
"""
import argparse
import json
import time

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()

    torch.set_num_threads(a.threads)  # Debian's torch starts with 1
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.arch)(weights=None).eval()
    x = torch.randn(a.batch, 3, a.size, a.size)
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.runs):
            start = time.perf_counter()
            model(x)
            if i >= a.warmup:
                times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"runtime": "pytorch-eager", "arch": a.arch, "batch": a.batch,
                      "threads": torch.get_num_threads(), "times_ms": times}))


if __name__ == "__main__":
    main()
