#!/usr/bin/python3
"""Python PyTorch's side of bench/distributed.ts: one process of a data-parallel (or single-process)
resnet20 training job, started by it with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and
OMP_NUM_THREADS in the environment (as torchrun would set them).

With WORLD_SIZE > 1 the model is wrapped in torch.nn.parallel.DistributedDataParallel with its
defaults (gloo, broadcast_buffers, bucket_cap_mb 25). The same phases as ours (bench/distributed.ts,
rankMain): warm-up, then `windows` pairs of timed windows of `steps` iterations (synced steps;
no_sync() forward + backward iterations, then one untimed step), ranks at a barrier before each
window, then raw dist.all_reduce of a float32 tensor of numParams elements. Prints one JSON line,
the same report as ours.
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from generate_train import CifarResNet  # noqa: E402
from torch_train import system_busy_ms  # noqa: E402  (bench/, the script's own folder)

GLOBAL_BATCH = 256
IMAGE = (1, 28, 28)
PIXELS = 28 * 28


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--batches", type=int, required=True)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--allreduce", type=int, default=100)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    if distributed:
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))  # env:// rendezvous
    rank = dist.get_rank() if distributed else 0

    torch.manual_seed(0)
    model = CifarResNet([3, 3, 3], 10, 1, "A")
    model.train()
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    raw = np.fromfile(a.data, dtype=np.uint8)
    image_bytes = a.batches * GLOBAL_BATCH * PIXELS * 4
    images = torch.from_numpy(raw[:image_bytes].view(np.float32).reshape(a.batches, GLOBAL_BATCH, *IMAGE).copy())
    labels = torch.from_numpy(raw[image_bytes:].view(np.int64).reshape(a.batches, GLOBAL_BATCH).copy())
    rows = slice(rank * a.batch, (rank + 1) * a.batch)
    inputs = [(images[k, rows].contiguous(), labels[k, rows].contiguous()) for k in range(a.batches)]
    state = {"k": 0, "loss": float("nan")}

    def next_batch():
        x, y = inputs[state["k"] % a.batches]
        state["k"] += 1
        return x, y

    def step():
        x, y = next_batch()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["loss"] = loss.item()

    def accumulate():
        x, y = next_batch()
        if distributed:
            with net.no_sync():
                loss = F.cross_entropy(net(x), y)
                loss.backward()
        else:
            loss = F.cross_entropy(net(x), y)
            loss.backward()
        state["loss"] = loss.item()

    def barrier():
        if distributed:
            dist.barrier()

    for _ in range(a.warmup):
        step()
    for _ in range(2):
        accumulate()
    step()

    barrier()
    cpu0, sys0, wall0 = time.process_time(), system_busy_ms(), time.perf_counter()
    step_windows, accumulate_windows = [], []
    for _ in range(a.windows):
        barrier()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        step_windows.append((time.perf_counter() - t0) * 1000)
        barrier()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            accumulate()
        accumulate_windows.append((time.perf_counter() - t0) * 1000)
        step()  # applies what the window accumulated (untimed)

    num_params = sum(p.numel() for p in model.parameters())
    all_reduce = []
    if distributed:
        t = torch.empty(num_params, dtype=torch.float32)
        for _ in range(3):
            t.fill_(0.5)
            dist.all_reduce(t)
        for _ in range(a.allreduce):
            t.fill_(0.5)
            barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            all_reduce.append((time.perf_counter() - t0) * 1000)
    barrier()
    wall = (time.perf_counter() - wall0) * 1000
    cpu = (time.process_time() - cpu0) * 1000
    sys1 = system_busy_ms()
    report = {
        "runtime": "pytorch", "rank": rank, "worldSize": world, "threads": torch.get_num_threads(), "batch": a.batch,
        "numParams": num_params, "stepWindowsMs": step_windows, "accumulateWindowsMs": accumulate_windows,
        "allReduceMs": all_reduce, "allReduceBytes": num_params * 4 if distributed else 0,
        "cpuMs": cpu, "sysBusyMs": None if sys0 is None or sys1 is None else sys1 - sys0, "wallMs": wall,
        "lastLoss": state["loss"], "torch": torch.__version__,
    }
    if distributed:
        dist.destroy_process_group()
    print(json.dumps(report), flush=True)
    # Rank 0 (the TCPStore's host) can stay blocked in the interpreter's exit after
    # destroy_process_group() with torch 1.13; everything is written by now.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
