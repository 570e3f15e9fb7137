"""Training-parity fixtures for scripts/gpu-check.sh: K SGD steps of PyTorch on this machine's
device, from one set of start weights and one fixed sequence of batches, under each precision.

For each architecture (num_classes 10):
  train-<arch>-start.safetensors   the start state dict (torchvision's initialisation; BatchNorm
                                   is not randomised here: with fixtures.py's statistics the
                                   logits reach ~1e2, the loss grows step by step, and PyTorch's
                                   own two float32 runs ended 0.2 apart on resnet50)
  train-<arch>-data.safetensors    input/<k> [N, 3, S, S], labels/<k> [N] (int64), and for each
                                   run <p>: loss/<p> [K] (float64, loss.item() of each step),
                                   after1/<p>/<key> (the state dict after the first step) and
                                   final/<p>/<key> (after the K steps)
Runs <p>:
  float32        TF32 off in cuDNN and cuBLAS, cudnn.benchmark off: the strict reference
  float32-bench  TF32 off, cudnn.benchmark on (what our addon lets cuDNN do): PyTorch's own spread
  float32-ulp    as float32, with every value of the first batch moved by one float32 ulp: how
                 much rounding alone moves this training
  bfloat16       torch.autocast(dtype=torch.bfloat16), channels_last
  float16        torch.autocast(dtype=torch.float16) + GradScaler with its defaults, channels_last
The step is what our trainer does: zero_grad(set_to_none=True), forward in train mode, cross-entropy
on the float32 logits, backward, torch.optim.SGD(lr, momentum, weight_decay) (its default
implementation for the device). The manifest goes to <out>/train-manifest.json.
"""
import argparse
import contextlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_model, grad_scaler, reference_name, set_tf32, tf32_state, train_step, write_manifest, write_safetensors  # noqa: E402

LAYOUT = {"float32": "contiguous", "float32-bench": "contiguous", "float32-ulp": "contiguous",
          "bfloat16": "channels_last", "float16": "channels_last"}


def run(start, batches, device, precision, lr, momentum, weight_decay, arch):
    cuda = device.startswith("cuda")
    model = build_model(arch, num_classes=10)
    model.load_state_dict(start)
    fmt = torch.channels_last if LAYOUT[precision] == "channels_last" else torch.contiguous_format
    model = model.to(device).to(memory_format=fmt)
    model.train()
    set_tf32(False, False)
    torch.backends.cudnn.benchmark = precision not in ("float32", "float32-ulp")
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(precision)
    scaler = None
    if precision == "float16":
        scaler = grad_scaler()
    losses, scales, after1 = [], [], None
    for k, (x, y) in enumerate(batches):
        if precision == "float32-ulp" and k == 0:
            # one float32 rounding step on every input value, up or down at random: how far
            # rounding alone carries this training (resnet50 from random initialisation on noise
            # is ill-conditioned: on the CPU, PyTorch with 1 and 2 threads ended one step 2e-3 to
            # 1e-2 apart, while the first losses agreed to 1e-6)
            flip = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
            x = torch.nextafter(x, x + flip * torch.finfo(torch.float32).max)
        x = x.to(device).contiguous(memory_format=fmt)
        y = y.to(device)
        amp = torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        loss, _ = train_step(model, opt, scaler, x, y, amp)
        if scaler is not None:
            scales.append(float(scaler.get_scale()))
        losses.append(loss.item())
        if after1 is None:
            after1 = [(k, v.detach().to("cpu").clone()) for k, v in model.state_dict().items()]
    if cuda:
        torch.cuda.synchronize()
    torch.backends.cudnn.benchmark = False
    final = [(k, v.detach().to("cpu").contiguous()) for k, v in model.state_dict().items()]
    return losses, scales, after1, final


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--precisions", default="float32,float32-bench,float32-ulp,bfloat16,float16")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    device = args.device
    cuda = device.startswith("cuda")
    defaults = tf32_state()
    if not cuda:  # the thread count our addon uses on the CPU (LibTorch's rounding depends on it)
        torch.set_num_threads(int(os.environ.get("GPU_CHECK_THREADS", "0")) or len(os.sched_getaffinity(0)))
    precisions = [p for p in args.precisions.split(",") if p]
    if not cuda:  # LibTorch has no float16 autocast on the CPU
        precisions = [p for p in precisions if p != "float16"]
    if "float32" not in precisions:
        precisions.insert(0, "float32")
    manifest = {
        "device": device,
        "torch": torch.__version__,
        "reference": reference_name(),
        "batch": args.batch, "size": args.size, "steps": args.steps,
        "optimizer": {"type": "sgd", "lr": args.lr, "momentum": args.momentum, "weightDecay": args.weight_decay},
        "precisions": precisions,
        "layouts": {p: LAYOUT[p] for p in precisions},
        "archs": [],
    }
    for arch in [a for a in args.archs.split(",") if a]:
        t0 = time.time()
        gen = torch.Generator().manual_seed(args.seed + 7 * sum(map(ord, arch)))  # the batches
        torch.manual_seed(args.seed)
        model = build_model(arch, num_classes=10)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        start_path = os.path.join(args.out, f"train-{arch}-start.safetensors")
        write_safetensors(start_path, list(start.items()), {"format": "pt"})
        batches = [(torch.randn(args.batch, 3, args.size, args.size, generator=gen),
                    torch.randint(0, 10, (args.batch,), generator=gen)) for _ in range(args.steps)]
        tensors = []
        for k, (x, y) in enumerate(batches):
            tensors += [(f"input/{k}", x), (f"labels/{k}", y)]
        runs = {}
        for p in precisions:
            losses, scales, after1, final = run(start, batches, device, p, args.lr, args.momentum, args.weight_decay, arch)
            tensors.append((f"loss/{p}", torch.tensor(losses, dtype=torch.float64)))
            tensors += [(f"after1/{p}/{k}", v) for k, v in after1]
            tensors += [(f"final/{p}/{k}", v) for k, v in final]
            runs[p] = {"losses": losses, "lossScales": scales or None}
        data_path = os.path.join(args.out, f"train-{arch}-data.safetensors")
        write_safetensors(data_path, tensors)
        entry = {"arch": arch, "numClasses": 10, "start": os.path.basename(start_path), "data": os.path.basename(data_path),
                 "runs": runs, "seconds": round(time.time() - t0, 2)}
        manifest["archs"].append(entry)
        print(f"train fixtures: {arch}: " + ", ".join(f"{p} losses {[round(v, 4) for v in r['losses']]}" for p, r in runs.items())
              + f" ({entry['seconds']} s)", flush=True)
        if cuda:
            torch.cuda.empty_cache()
    write_manifest(os.path.join(args.out, "train-manifest.json"), manifest, defaults)


if __name__ == "__main__":
    main()
