#!/usr/bin/python3
"""Writes lib/weights/registry.json: torchvision's pretrained-weights metadata for the ten builders.

Run with Debian's system Python (python3-torch 1.13, python3-torchvision 0.14):
    /usr/bin/python3 scripts/generate-registry.py [--out PATH]

Everything is read from torchvision's Weights enums, nothing is typed by hand: the JSON must say
exactly what the installed torchvision says. Two figures torchvision 0.14 does not carry:
  - GFLOPS (`_ops`, added to meta in 0.15): computed here by counting the multiply-accumulates of
    every Conv2d and Linear in a 224x224 forward pass, which is how torchvision's figures count.
  - the file size (`_file_size`, 0.15+): recorded as null; it cannot be known without the file.
"""
import argparse
import inspect
import json
import os
import re

import torch
import torchvision
from torchvision.transforms._presets import ImageClassification

BUILDERS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
]
# torchvision's published GFLOPS (0.15+ docs): our count must agree to 2 decimals.
PUBLISHED_GFLOPS = {"resnet18": 1.81, "resnet50": 4.09}


def gflops(model):
    """Multiply-accumulates of every Conv2d and Linear for one 3x224x224 image, in billions."""
    macs = 0

    def conv(module, _inputs, output):
        nonlocal macs
        kernel = module.kernel_size[0] * module.kernel_size[1]
        macs += output.numel() * (module.in_channels // module.groups) * kernel

    def linear(module, _inputs, output):
        nonlocal macs
        macs += output.numel() * module.in_features

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(conv)
        elif isinstance(module, torch.nn.Linear):
            module.register_forward_hook(linear)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 224, 224))
    return macs / 1e9


def transforms(weights):
    """resize/crop from the preset's partial; mean/std/interpolation from ImageClassification's
    signature defaults (unless the partial overrides them)."""
    preset = weights.transforms
    assert preset.func is ImageClassification and not preset.args, preset
    bound = inspect.signature(ImageClassification).bind_partial(**preset.keywords)
    bound.apply_defaults()
    values = bound.arguments
    return {
        "resize_size": values["resize_size"],
        "crop_size": values["crop_size"],
        "mean": list(values["mean"]),
        "std": list(values["std"]),
        "interpolation": values["interpolation"].value,
    }


def entry(arch, weights, computed_gflops):
    meta = weights.meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    file_name = os.path.basename(weights.url)
    assert re.search(r"-([a-f0-9]*)\.", file_name), file_name  # torch.hub.HASH_REGEX
    return {
        "url": weights.url,
        "file_name": file_name,
        "num_params": meta["num_params"],
        "acc1": metrics["acc@1"],
        "acc5": metrics["acc@5"],
        "gflops": round(computed_gflops, 3),
        "file_size": meta.get("_file_size"),  # None in 0.14: see file_size_note
        "min_size": list(meta["min_size"]),
        "recipe": meta["recipe"],
        "transforms": transforms(weights),
        "num_classes": len(meta["categories"]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "lib", "weights", "registry.json"))
    out = parser.parse_args().out

    categories = None
    architectures = {}
    for arch in BUILDERS:
        enum = torchvision.models.get_model_weights(arch)
        model = torchvision.models.get_model_builder(arch)(weights=None)
        computed = gflops(model)
        if arch in PUBLISHED_GFLOPS:
            assert round(computed, 2) == PUBLISHED_GFLOPS[arch], (arch, computed)
        num_params = sum(p.numel() for p in model.parameters())
        entries = {}
        for weights in enum:  # iterating an Enum skips the DEFAULT alias
            # One category list at the top level is only right if every entry has the same one.
            if categories is None:
                categories = weights.meta["categories"]
            assert weights.meta["categories"] == categories, (arch, weights.name)
            assert weights.meta["num_params"] == num_params, (arch, weights.name)
            entries[weights.name] = entry(arch, weights, computed)
        architectures[arch] = {"default": enum.DEFAULT.name, "weights": entries}
        print(f"{arch}: {', '.join(entries)} (DEFAULT = {enum.DEFAULT.name}), {computed:.3f} GFLOPS")

    assert len(categories) == 1000
    registry = {
        "generated_by": "scripts/generate-registry.py",
        "torchvision_version": torchvision.__version__,
        "torch_version": torch.__version__,
        "gflops_source": "computed",
        "gflops_note": "multiply-accumulates of every Conv2d and Linear at 1x3x224x224, / 1e9",
        "file_size_note": "null: torchvision 0.14's weights metadata does not carry file sizes",
        "categories": categories,
        "architectures": architectures,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(registry, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
