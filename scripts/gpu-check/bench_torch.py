"""Python PyTorch eager, the baseline beside our rows (scripts/gpu-check.sh).
    python3 bench_torch.py --plan plan.json --mode gpu|dry --out FILE.json [--only ID,ID]
    python3 bench_torch.py ... --compile [--deadline EPOCH_SECONDS]

--compile: the plan's `compile` rows, in that order, with the model wrapped in torch.compile
(default mode, inductor); the first warm-up call includes the compilation, reported as
compileSeconds. Rows are written to --out as each one ends, and no row starts after --deadline,
so a run stopped part-way still leaves the rows it finished.

Timing is what a caller of our forward() / trainer.step() sees: each iteration copies the input
batch from host memory to the device (pinned, non-blocking, as our addon does), runs the model,
and brings the result back to the host (logits for inference; loss and correct count for
training), then torch.cuda.synchronize(); perf_counter() around all of it. cudnn.benchmark is on
(as our addon sets it); TF32 is left at PyTorch's defaults, which are recorded.
Memory per row: torch.cuda.max_memory_allocated / max_memory_reserved after
reset_peak_memory_stats (with empty_cache() between rows), and the peak of nvidia-smi's
memory.used sampled every 20 ms during the row (whole device, CUDA context included), the same
measure as our rows get. On the CPU: the process's peak RSS so far (it only grows).
"""
import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SmiPoller, build_model, grad_scaler, reference_name, tf32_state, train_step  # noqa: E402


def autocast_ctx(device, precision):
    if precision == "float32":
        return torch.autocast(device_type=device, enabled=False)
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


def run_row(row, device, poller, compiled=False):
    cuda = device == "cuda"
    cl = row["memoryFormat"] == "channels_last"
    fmt = torch.channels_last if cl else torch.contiguous_format
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    poller.reset()
    t_setup = time.perf_counter()
    torch.manual_seed(0)
    model = build_model(row["arch"]).to(device).to(memory_format=fmt)
    b, s = row["batch"], row["size"]
    x_host = torch.randn(b, 3, s, s)
    train = row["kind"] == "train"
    if compiled:
        model = torch.compile(model)  # shares the eager module's parameters

    def to_device(t):
        if cuda:
            return t.pin_memory().to(device, non_blocking=True)
        return t.clone()

    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=row.get("lr", 0.01), momentum=row.get("momentum", 0.9))
        scaler = None
        if row["precision"] == "float16":
            scaler = grad_scaler()
        y_host = torch.randint(0, 1000, (b,))

        def step():
            x = to_device(x_host).contiguous(memory_format=fmt)
            y = to_device(y_host)
            loss, out = train_step(model, opt, scaler, x, y, autocast_ctx(device, row["precision"]))
            result = (loss.item(), int((out.argmax(1) == y).sum().item()))
            if cuda:
                torch.cuda.synchronize()
            return result
    else:
        model.eval()

        def step():
            x = to_device(x_host).contiguous(memory_format=fmt)
            with torch.inference_mode(), autocast_ctx(device, row["precision"]):
                out = model(x)
            result = out.float().cpu()
            if cuda:
                torch.cuda.synchronize()
            return result

    setup_s = time.perf_counter() - t_setup
    last = None
    compile_s = None
    for i in range(row["warmup"]):
        t0 = time.perf_counter()
        last = step()
        if i == 0 and compiled:
            compile_s = time.perf_counter() - t0
    times = []
    t_end = time.perf_counter() + row["seconds"]
    while len(times) < row["iters"] and (len(times) < 3 or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        last = step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = {
        **row,
        "side": "torch.compile" if compiled else "torch",
        "iterations": len(times),
        "medianMs": med * 1e3,
        "minMs": min(times) * 1e3,
        "imgPerSec": b / med,
        "setupSeconds": round(setup_s, 2),
    }
    if compiled:
        out["compileSeconds"] = round(compile_s, 2) if compile_s is not None else None
    if train:
        out["lastLoss"] = last[0]
        out["finite"] = bool(torch.isfinite(torch.tensor(last[0])))
    if cuda:
        out["peakAllocatedMiB"] = torch.cuda.max_memory_allocated() / 2**20
        out["peakReservedMiB"] = torch.cuda.max_memory_reserved() / 2**20
        out["peakSmiMiB"] = poller.peak()
    else:
        out["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del model, x_host
    if compiled:
        torch._dynamo.reset()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True)
    ap.add_argument("--mode", default="gpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--deadline", type=float, default=0)
    args = ap.parse_args()
    plan = json.load(open(args.plan))[args.mode]
    device = plan["device"]
    cuda = device == "cuda"
    rows = [r for r in plan["bench"] if not args.only or r["id"] in args.only.split(",")]
    if args.compile:
        by_id = {r["id"]: r for r in rows}
        rows = [by_id[i] for i in plan.get("compile", []) if i in by_id]
        if not hasattr(torch, "compile"):
            json.dump({"env": {"torch": torch.__version__}, "rows": [], "error": f"torch {torch.__version__} has no torch.compile"},
                      open(args.out, "w"), indent=1)
            print(f"  torch.compile: not in torch {torch.__version__}", flush=True)
            return

    baseline = SmiPoller.once() if cuda else None  # before this process touches the GPU
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.cuda.init()
    else:  # Debian's LibTorch may start with 1 thread; ours uses the cores it may run on
        torch.set_num_threads(int(os.environ.get("GPU_CHECK_THREADS", "0")) or len(os.sched_getaffinity(0)))
    env = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "model": reference_name(),
        "tf32": tf32_state(),
        "threads": torch.get_num_threads(),
        "smiBaselineMiB": baseline,
    }
    poller = SmiPoller().start() if cuda else SmiPoller()
    results = []
    side = "torch.compile" if args.compile else "torch"
    try:
        for row in rows:
            if args.deadline and time.time() > args.deadline:
                print(f"  {side} {row['id']}: not started, out of time", flush=True)
                continue
            try:
                r = run_row(row, device, poller, compiled=args.compile)
            except Exception as e:  # noqa: BLE001 - report and go on with the other rows
                r = {**row, "side": side, "error": f"{type(e).__name__}: {e}"[:500]}
            results.append(r)
            json.dump({"env": env, "rows": results}, open(args.out, "w"), indent=1)
            if "error" in r:
                print(f"  {side} {row['id']}: ERROR {r['error']}", flush=True)
            else:
                mem = (f"peak alloc {r['peakAllocatedMiB']:.0f} MiB, reserved {r['peakReservedMiB']:.0f} MiB, nvidia-smi {r['peakSmiMiB']}"
                       if cuda else f"peak RSS {r['peakRssMiB']:.0f} MiB")
                extra = f", compile {r['compileSeconds']} s" if r.get("compileSeconds") is not None else ""
                print(f"  {side} {row['id']}: {r['imgPerSec']:.1f} img/s (median {r['medianMs']:.2f} ms of {r['iterations']}), {mem}{extra}", flush=True)
            if cuda:
                torch.cuda.empty_cache()
    finally:
        poller.stop()
    json.dump({"env": env, "rows": results}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
