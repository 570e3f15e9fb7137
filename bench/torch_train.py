#!/usr/bin/python3
"""Python PyTorch's side of bench/train.ts: SGD training steps per second.

Prints JSON {"runtime", "model", "batch", "threads", "times_ms": [...]} for one configuration:
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
    for i in range(a.warmup + a.runs):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= a.warmup:
            times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"runtime": "pytorch-eager", "model": a.model, "batch": a.batch, "threads": torch.get_num_threads(), "times_ms": times}))


if __name__ == "__main__":
    main()
