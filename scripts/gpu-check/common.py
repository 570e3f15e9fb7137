"""Shared by fixtures.py and bench_torch.py (scripts/gpu-check): the model builder, TF32 switches,
a safetensors writer that needs neither numpy nor the safetensors package, and an nvidia-smi
memory poller."""
import ctypes
import json
import os
import shutil
import struct
import subprocess
import threading
import time

import torch

torchvision = None
tv_models = None
if os.environ.get("GPU_CHECK_NO_TORCHVISION", "0") != "1":  # =1: use the stand-in below
    try:  # torchvision is the reference; the GPU machine may only have torch
        import torchvision
        from torchvision import models as tv_models
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        torchvision = None
        tv_models = None

# Builders used by the check: (block, layers, groups, width_per_group)
SPECS = {
    "resnet18": ("basic", [2, 2, 2, 2], 1, 64),
    "resnet34": ("basic", [3, 4, 6, 3], 1, 64),
    "resnet50": ("bottleneck", [3, 4, 6, 3], 1, 64),
    "resnet101": ("bottleneck", [3, 4, 23, 3], 1, 64),
    "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4),
    "wide_resnet50_2": ("bottleneck", [3, 4, 6, 3], 1, 128),
}


# ---- a stand-in for torchvision's ResNet when torchvision is missing -------------------------
# Written from the paper / torchvision's documented structure, with torchvision's attribute
# names (conv1, bn1, layerN.M.convK, downsample.0/1, fc) so that state dicts are interchangeable.
class _Basic(torch.nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, groups, width_per_group):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        skip = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + skip)


class _Bottleneck(torch.nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, groups, width_per_group):
        super().__init__()
        nn = torch.nn
        width = int(planes * (width_per_group / 64.0)) * groups
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        skip = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + skip)


class _ResNet(torch.nn.Module):
    def __init__(self, block, layers, groups, width_per_group, num_classes=1000):
        super().__init__()
        nn = torch.nn
        cls = _Basic if block == "basic" else _Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, n) in enumerate(zip([64, 128, 256, 512], layers)):
            blocks = []
            for j in range(n):
                blocks.append(cls(cin, planes, 2 if (i > 0 and j == 0) else 1, groups, width_per_group))
                cin = planes * cls.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(arch, num_classes=1000):
    """torchvision's builder when torchvision is there, else the stand-in above."""
    if tv_models is not None:
        try:
            return getattr(tv_models, arch)(weights=None, num_classes=num_classes)
        except TypeError:  # torchvision < 0.13 takes pretrained= instead of weights=
            return getattr(tv_models, arch)(pretrained=False, num_classes=num_classes)
    block, layers, groups, width = SPECS[arch]
    return _ResNet(block, layers, groups, width, num_classes)


def reference_name():
    return f"torchvision {torchvision.__version__}" if torchvision is not None else "stand-in ResNet (no torchvision)"


# ---- TF32 -------------------------------------------------------------------------------------
def tf32_state():
    out = {}
    for name, get in (
        ("cudnn.allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
        ("cuda.matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
        ("float32_matmul_precision", lambda: torch.get_float32_matmul_precision()),
        # PyTorch >= 2.9's per-backend API (read only: mixing it with the classic flags is refused)
        ("cudnn.conv.fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision),
        ("cuda.matmul.fp32_precision", lambda: torch.backends.cuda.matmul.fp32_precision),
    ):
        try:
            out[name] = get()
        except Exception:  # noqa: BLE001
            out[name] = None
    return out


def set_tf32(cudnn_tf32, matmul_tf32=False):
    """Sets cuDNN's and cuBLAS's TF32 permission with the classic flags, which 2.x still honours
    (checked with 2.13: allow_tf32 = False reads back False, = True makes conv.fp32_precision 'tf32').
    Only these are set: PyTorch refuses to read the classic flags after a mix of both APIs."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.cudnn.allow_tf32 = bool(cudnn_tf32)
        torch.backends.cuda.matmul.allow_tf32 = bool(matmul_tf32)


# ---- one training step as our trainer takes it --------------------------------------------------
def grad_scaler():
    """GradScaler with its defaults: torch.amp's (2.x) or torch.cuda.amp's (older)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def train_step(model, opt, scaler, x, y, autocast):
    """zero_grad(set_to_none=True), forward under `autocast` (a context manager), cross-entropy on
    the float32 logits, backward (scaled when `scaler`), optimizer step. Returns (loss, logits)."""
    import torch.nn.functional as F

    opt.zero_grad(set_to_none=True)
    with autocast:
        out = model(x)
        loss = F.cross_entropy(out.float(), y)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return loss, out


def write_manifest(path, manifest, tf32_defaults):
    """Puts the TF32 flags back as they were found and writes the manifest."""
    set_tf32(tf32_defaults.get("cudnn.allow_tf32") or False, tf32_defaults.get("cuda.matmul.allow_tf32") or False)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)


# ---- safetensors without numpy -------------------------------------------------------------
_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.float16: "F16",
              torch.bfloat16: "BF16", torch.int32: "I32", torch.uint8: "U8"}


def tensor_bytes(t):
    t = t.detach().to("cpu").contiguous()
    n = t.numel() * t.element_size()
    return ctypes.string_at(t.data_ptr(), n) if n else b""


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, tensor) in file order."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors:
        data = tensor_bytes(t)
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---- device memory as nvidia-smi sees it -----------------------------------------------------
class SmiPoller:
    """Samples `nvidia-smi --query-gpu=memory.used` (MiB, whole device) every `ms` milliseconds in
    a child process; peak() is the largest sample since start() / reset()."""

    def __init__(self, ms=20, gpu_index=0):
        self.ms = ms
        self.gpu_index = gpu_index
        self.proc = None
        self.samples = 0
        self._peak = None
        self._lock = threading.Lock()
        self._stopped = True
        self.mode = None

    @staticmethod
    def available():
        return shutil.which("nvidia-smi") is not None

    @staticmethod
    def once(gpu_index=0):
        try:
            out = subprocess.run(["nvidia-smi", f"--id={gpu_index}", "--query-gpu=memory.used",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
            return float(out.stdout.strip().splitlines()[0])
        except Exception:  # noqa: BLE001
            return None

    def start(self):
        if not self.available():
            return self
        self._stopped = False
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _add(self, v):
        with self._lock:
            self.samples += 1
            self._peak = v if self._peak is None else max(self._peak, v)

    def _run(self):
        # nvidia-smi's own loop first; if it stops (option refused, ...), one call per 100 ms.
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", f"--id={self.gpu_index}", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                 f"--loop-ms={self.ms}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.mode = "loop"
            for line in self.proc.stdout:
                try:
                    self._add(float(line.strip()))
                except ValueError:
                    continue
        except OSError:
            pass
        self.mode = "interval"
        while not self._stopped:
            v = self.once(self.gpu_index)
            if v is not None:
                self._add(v)
            time.sleep(0.1)

    def reset(self):
        with self._lock:
            self._peak = None
            self.samples = 0

    def peak(self):
        with self._lock:
            return self._peak

    def stop(self):
        self._stopped = True
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
