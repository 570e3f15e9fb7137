// Process-wide facts and settings of the LibTorch this addon was built against.
import { native } from './native.js';
import * as v from './validate.js';

/** True when this build links a CUDA LibTorch and a GPU is visible. */
export function cudaAvailable(): boolean {
  return native.cudaAvailable();
}

export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

/**
 * Intra-op threads for LibTorch's kernels, for every model in the process. Defaults to
 * OMP_NUM_THREADS when it is set (as PyTorch), else to the physical cores this process may run on,
 * capped by its cgroup's CPU quota (a container's --cpus). Debian's LibTorch would start with 1.
 * Applied by each model's executor thread before its next job; when several models run jobs at
 * the same moment, each job gets an equal share (at least 1), so the cores are not oversubscribed.
 */
export function setNumThreads(threads: number): void {
  native.setNumThreads(v.positiveInteger('threads', threads));
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * True when LibTorch can run bfloat16 convolutions on this CPU (probed once). Where it cannot
 * (oneDNN capped below AVX-512 with ONEDNN_MAX_CPU_ISA on a CPU that has it), `precision:
 * 'bfloat16'` on the CPU is refused with a DeviceError.
 */
export function cpuBfloat16Available(): boolean {
  return native.cpuBfloat16Available();
}

/**
 * True when this build has the oneDNN inference engine (built when oneDNN's headers were found and
 * LibTorch itself links that oneDNN, as Debian's does); otherwise CPU inference uses the
 * TorchScript engine.
 */
export function onednnEngineCompiled(): boolean {
  return native.onednnEngineCompiled();
}

/**
 * True when this build has the streaming data sets' JPEG path (built when libjpeg-turbo's headers
 * were found); otherwise their workers decode every image with sharp.
 */
export function jpegDecoderCompiled(): boolean {
  return native.jpegDecoderCompiled();
}

/**
 * How the addon tuned the C allocator when it loaded: with glibc, blocks up to 32 MiB come from
 * the heap and freed memory is kept for reuse, so each training step reuses the previous step's
 * pages (resnet18 training steps +15-23% here; see BENCHMARKS.md). The process keeps its peak
 * memory instead of returning it to the system. Set `LIBTORCH_RESNET_MALLOC=default` (or any of
 * glibc's own MALLOC_*_ variables, MALLOC_ARENA_MAX, or glibc.malloc.* in GLIBC_TUNABLES) before
 * loading to keep glibc's defaults.
 */
export function allocatorTuning(): string {
  return native.allocatorTuning();
}

export function libtorchVersion(): string {
  return native.libtorchVersion();
}
