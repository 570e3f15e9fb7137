#!/usr/bin/python3
"""Python PyTorch's side of bench/memory.ts: RSS over N eager forwards of torchvision's resnet18.

  /usr/bin/python3 bench/torch_memory.py --forwards 2000 --size 224 --threads 2

Prints one JSON object: {"forwards", "median_ms", "series": [{"i", "rss_mib"}]} (RSS every 100).
"""
import argparse
import json
import time

import torch
import torchvision


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--forwards", type=int, default=2000)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, a.size, a.size)
    series = [{"i": 0, "rss_mib": rss_mib()}]
    times = []
    with torch.inference_mode():
        for i in range(1, a.forwards + 1):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
            if i % 100 == 0 or i == a.forwards:
                series.append({"i": i, "rss_mib": rss_mib()})
    times.sort()
    print(json.dumps({"forwards": a.forwards, "median_ms": times[len(times) // 2], "series": series}))


if __name__ == "__main__":
    main()
