#!/usr/bin/python3
"""Python PyTorch's side of bench/train.ts: SGD training steps per second.

Prints JSON {"runtime", "model", "batch", "threads", "times_ms": [...], "others_cores"} for one
configuration ("others_cores": CPU used by the rest of the machine during the timed steps):
  --model resnet20 : the paper's CIFAR net (option A), 1 x 28 x 28 inputs, 10 classes
  --model resnet18 : torchvision's, 3 x 224 x 224 inputs, 1000 classes
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from generate_train import CifarResNet  # noqa: E402


def system_busy_ms():
    """Busy CPU time of the whole machine (ms), from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) * 10.0
    except OSError:
        return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["resnet20", "resnet18"], required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "resnet20":
        model, shape, classes = CifarResNet([3, 3, 3], 10, 1, "A"), (1, 28, 28), 10
    else:
        model, shape, classes = torchvision.models.resnet18(weights=None), (3, 224, 224), 1000
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, *shape)
    y = torch.randint(0, classes, (a.batch,))
    times = []
    cpu0 = sys0 = wall0 = None
    for i in range(a.warmup + a.runs):
        if i == a.warmup:
            cpu0, sys0, wall0 = time.process_time(), system_busy_ms(), time.perf_counter()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= a.warmup:
            times.append((time.perf_counter() - start) * 1000)
    wall = time.perf_counter() - wall0
    own = time.process_time() - cpu0
    sys1 = system_busy_ms()
    others = None if sys0 is None or sys1 is None else max(0.0, ((sys1 - sys0) / 1000 - own) / wall)
    print(json.dumps({"runtime": "pytorch-eager", "model": a.model, "batch": a.batch, "threads": torch.get_num_threads(),
                      "times_ms": times, "others_cores": others}))


if __name__ == "__main__":
    main()
