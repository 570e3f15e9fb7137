"""PyTorch's input pipeline on the benchmark's folder: DataLoader(ImageFolder(root, transform),
batch_size, shuffle, num_workers) with torchvision's RandomResizedCrop + RandomHorizontalFlip +
ToTensor + Normalize. Prints one JSON line: images/s over the timed batches, and PIL's decode
rate on one core."""
import argparse
import json
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--root', required=True)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--batches', type=int, default=40)
    p.add_argument('--decode', type=int, default=300)
    a = p.parse_args()
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    data = datasets.ImageFolder(a.root, transform=tf)
    torch.manual_seed(0)
    loader = DataLoader(data, batch_size=a.batch_size, shuffle=True, num_workers=a.workers, drop_last=True, persistent_workers=False)
    it = iter(loader)
    next(it)  # workers started, first batch out
    start = time.perf_counter()
    n = 0
    for _ in range(a.batches):
        images, _ = next(it)
        n += images.shape[0]
    seconds = time.perf_counter() - start
    del it
    # Decode only, one core: PIL's open + convert('RGB') (torchvision's default loader).
    files = [path for path, _ in data.samples[: a.decode]]
    t0 = time.perf_counter()
    for path in files:
        with open(path, 'rb') as f:
            Image.open(f).convert('RGB')
    decode = len(files) / (time.perf_counter() - t0)
    print(json.dumps({'imagesPerSecond': n / seconds, 'images': n, 'seconds': seconds, 'decodePerSecondOneCore': decode, 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
