#!/usr/bin/python3
"""Python PyTorch's side of bench/inference.ts: forward times of a torchvision ResNet.

  /usr/bin/python3 bench/torch_forward.py --arch resnet50 --batches 1,8 --threads 2 \
      [--mode eager|optimized] [--weights w.pth] [--runs 10] [--warmup 3] \
      [--check-input x.bin --check-batches 1,8 --check-output y.bin] [--profile]

--mode eager     : model.eval() under torch.inference_mode(), as a user would write it.
--mode optimized : torch.jit.optimize_for_inference(torch.jit.script(model.eval())): frozen,
                   BatchNorm folded into the convolutions, convolutions prepacked for oneDNN.
--weights        : a state dict (.pth, ours from model.save) loaded strictly; random init otherwise.
--check-input    : raw float32 [max(check-batches), 3, size, size]; for each check batch b the
                   output of the first b images is appended to --check-output (raw float32),
                   before any timing, so the caller can verify that this is the same model.
--check-only     : write the check output and time nothing.
--profile        : adds a per-operator profile (torch.profiler) of the timed runs.

Prints one JSON object (its last line): {"runtime", "mode", "arch", "threads", "results":
[{"batch", "times_ms", "cpu_cores_busy", "others_cores"}], "profile"?}.
Run with the system Python (python3-torch, python3-torchvision).
"""
import argparse
import json
import time

import numpy as np
import torch
import torchvision


def system_busy_ms():
    """Busy CPU time of the whole machine (ms), from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) * 10.0
    except OSError:
        return None


def build(arch, weights, mode):
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = getattr(torchvision.models, arch)(weights=None, num_classes=state["fc.weight"].shape[0])
        model.load_state_dict(state, strict=True)
    else:
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(weights=None)
    model.eval()
    if mode == "optimized":
        model = torch.jit.optimize_for_inference(torch.jit.script(model))
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batches", default=None, help="comma-separated batch sizes")
    p.add_argument("--batch", type=int, default=None, help="one batch size (older spelling)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--mode", choices=["eager", "optimized"], default="eager")
    p.add_argument("--weights", default=None)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--check-input", default=None)
    p.add_argument("--check-batches", default="1,8")
    p.add_argument("--check-output", default=None)
    p.add_argument("--check-only", action="store_true", help="write the check output, time nothing")
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    batches = [int(b) for b in (a.batches or str(a.batch or 8)).split(",")]

    torch.set_num_threads(a.threads)  # Debian's torch starts with 1
    torch.set_num_interop_threads(1)
    model = build(a.arch, a.weights, a.mode)
    # The profiling executor of TorchScript specializes during its first runs: never fewer than 3.
    warmup = max(a.warmup, 3) if a.mode == "optimized" else a.warmup

    with torch.inference_mode():
        if a.check_input:
            check_batches = [int(b) for b in a.check_batches.split(",")]
            n = max(check_batches)
            x = torch.from_numpy(np.fromfile(a.check_input, dtype=np.float32).reshape(n, 3, a.size, a.size))
            outs = [model(x[:b].contiguous()).contiguous().numpy().ravel() for b in check_batches]
            np.concatenate(outs).astype(np.float32).tofile(a.check_output)
        if a.check_only:
            batches = []

        results = []
        prof = None
        for batch in batches:
            torch.manual_seed(1)
            x = torch.randn(batch, 3, a.size, a.size)
            for _ in range(warmup):
                model(x)
            times = []
            cpu0, sys0, wall0 = time.process_time(), system_busy_ms(), time.perf_counter()
            if a.profile:
                prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                prof.__enter__()
            for _ in range(a.runs):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1000)
            if prof is not None:
                prof.__exit__(None, None, None)
            wall = time.perf_counter() - wall0
            own = time.process_time() - cpu0
            sys1 = system_busy_ms()
            others = None if sys0 is None or sys1 is None else max(0.0, ((sys1 - sys0) / 1000 - own) / wall)
            entry = {"batch": batch, "times_ms": times, "cpu_cores_busy": own / wall, "others_cores": others}
            if prof is not None:
                ops = []
                for e in prof.key_averages():
                    ops.append({"name": e.key, "count": e.count / a.runs,
                                "self_ms": e.self_cpu_time_total / 1000 / a.runs,
                                "total_ms": e.cpu_time_total / 1000 / a.runs})
                ops.sort(key=lambda o: -o["self_ms"])
                entry["profile"] = ops[:40]
                prof = None
            results.append(entry)

    print(json.dumps({"runtime": "pytorch-" + a.mode, "mode": a.mode, "arch": a.arch,
                      "threads": torch.get_num_threads(), "torch": torch.__version__, "results": results}))


if __name__ == "__main__":
    main()
