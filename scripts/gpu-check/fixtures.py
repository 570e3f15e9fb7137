"""Parity fixtures for scripts/gpu-check.sh, written on the machine that runs the check, with its
own torch (and torchvision when installed).

For each architecture:
  <arch>.pth           torch.save(state_dict): random weights, BatchNorm with non-trivial affine
                       parameters and running statistics
  <arch>.safetensors   the same tensors as safetensors
  <arch>-data.safetensors
                       input [N, 3, S, S] and the eval-mode logits (float32) under
                       ref/<precision>/<layout>, precision one of
                         float32       TF32 off in cuDNN and cuBLAS (the strict reference)
                         float32-tf32  PyTorch's defaults on CUDA (cuDNN may use TF32)
                         float32-bench TF32 off, cudnn.benchmark on (the algorithms our addon
                                       lets cuDNN pick): PyTorch's own spread between algorithms
                         bfloat16      torch.autocast(device, dtype=torch.bfloat16)
                         float16       torch.autocast('cuda', dtype=torch.float16)
                       and layout 'contiguous' or 'channels_last'.
manifest.json lists all of it with the versions and the TF32 defaults found.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import build_model, reference_name, set_tf32, tf32_state, torchvision, write_manifest, write_safetensors  # noqa: E402


def randomise_batchnorm(model, gen):
    """BatchNorm affine parameters and running statistics that are not 1 / 0, drawn around 1 / 0.
    (Statistics calibrated on random batches make a random deep net chaotic: a 1e-6 change of
    the input then moves the logits by ~1e-4 relative, too close to the float32 bound. With these
    the peak activation of resnet50 at 224x224 stays below ~1e3, well inside float16's range.)"""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
    model.eval()


def logits(model, x, device, precision, layout):
    m = model
    xi = x
    if layout == "channels_last":
        m = model.to(memory_format=torch.channels_last)
        xi = x.contiguous(memory_format=torch.channels_last)
    else:
        m = model.to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        if precision in ("float32", "float32-tf32", "float32-bench"):
            set_tf32(cudnn_tf32=(precision == "float32-tf32"), matmul_tf32=False)
            torch.backends.cudnn.benchmark = precision == "float32-bench"
            out = m(xi)
            torch.backends.cudnn.benchmark = False
        else:
            set_tf32(False, False)
            dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
            with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
                out = m(xi)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out.float().cpu()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--archs", default="resnet18,resnet50,resnext50_32x4d")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--precisions", default="float32,float32-tf32,bfloat16,float16")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    device = args.device
    cuda = device.startswith("cuda")
    defaults = tf32_state()  # before anything is changed
    if cuda and not torch.cuda.is_available():
        sys.exit("fixtures.py: CUDA was asked for but torch.cuda.is_available() is False")
    torch.backends.cudnn.benchmark = False
    precisions = [p for p in args.precisions.split(",") if p]
    if not cuda:
        precisions = [p for p in precisions if p in ("float32", "bfloat16")]
    if "float32" not in precisions:
        precisions.insert(0, "float32")

    manifest = {
        "device": device,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "reference": reference_name(),
        "torchvision": torchvision.__version__ if torchvision is not None else None,
        "tf32_defaults": defaults,
        "batch": args.batch,
        "size": args.size,
        "precisions": precisions,
        "archs": [],
    }
    for arch in [a for a in args.archs.split(",") if a]:
        t0 = time.time()
        gen = torch.Generator().manual_seed(args.seed + sum(map(ord, arch)))
        torch.manual_seed(args.seed)
        model = build_model(arch)
        randomise_batchnorm(model, gen)
        sd = model.state_dict()
        pth = os.path.join(args.out, f"{arch}.pth")
        st = os.path.join(args.out, f"{arch}.safetensors")
        torch.save(sd, pth)
        write_safetensors(st, list(sd.items()), {"format": "pt"})
        model.to(device)

        x = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
        xd = x.to(device)
        refs = {}
        for precision in precisions:
            for layout in ("contiguous", "channels_last"):
                refs[f"ref/{precision}/{layout}"] = logits(model, xd, device, precision, layout)
        data = os.path.join(args.out, f"{arch}-data.safetensors")
        write_safetensors(data, [("input", x)] + list(refs.items()))
        strict = refs["ref/float32/contiguous"]
        entry = {
            "arch": arch,
            "numClasses": int(strict.shape[1]),
            "numParameters": sum(p.numel() for p in model.parameters()),
            "pth": os.path.basename(pth),
            "safetensors": os.path.basename(st),
            "data": os.path.basename(data),
            "inputShape": list(x.shape),
            "refs": {k: {"maxAbs": float(v.abs().max()),
                         "maxAbsDiffToStrict": float((v - strict).abs().max()),
                         "finite": bool(torch.isfinite(v).all())} for k, v in refs.items()},
            "seconds": round(time.time() - t0, 2),
        }
        manifest["archs"].append(entry)
        print(f"fixtures: {arch}: {len(refs)} references, max|logit| {entry['refs']['ref/float32/contiguous']['maxAbs']:.3g}, "
              f"{entry['seconds']} s", flush=True)
        del model, xd
        if cuda:
            torch.cuda.empty_cache()
    write_manifest(os.path.join(args.out, "manifest.json"), manifest, defaults)


if __name__ == "__main__":
    main()
