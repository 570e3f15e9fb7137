#!/usr/bin/python3
"""Python PyTorch's side of bench/weights-load.ts: torch.load + load_state_dict into resnet50.

Prints JSON {"times_ms": [...]} (file in the page cache; model built once, outside the timing).
With --make PATH instead: writes a resnet50 state dict there with torch.save and prints {"made": PATH}.
"""
import argparse
import json
import time

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("path", nargs="?")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--make", default=None)
    a = p.parse_args()
    if a.make:
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), a.make)
        print(json.dumps({"made": a.make}))
        return
    model = torchvision.models.resnet50(weights=None)
    times = []
    for _ in range(a.runs + 1):
        start = time.perf_counter()
        model.load_state_dict(torch.load(a.path, weights_only=True))
        times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"times_ms": times[1:]}))


if __name__ == "__main__":
    main()
