// What oneDNN may run on this machine: the CPU's own flags, capped by ONEDNN_MAX_CPU_ISA (which the
// suite is also run under, as AVX2, to stand in for the many CPUs without AVX-512).
import { readFileSync } from 'node:fs';

// oneDNN's ISA names, lowest first (ONEDNN_MAX_CPU_ISA takes one of them).
const order = ['SSE41', 'AVX', 'AVX2', 'AVX2_VNNI', 'AVX2_VNNI_2', 'AVX512_CORE', 'AVX512_CORE_VNNI', 'AVX512_CORE_BF16', 'AVX512_CORE_FP16', 'AVX512_CORE_AMX', 'AVX512_CORE_AMX_FP16', 'ALL'];
const flags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? []);

function allowed(isa: string): boolean {
  const cap = process.env.ONEDNN_MAX_CPU_ISA?.toUpperCase();
  if (!cap || !order.includes(cap)) return true;
  return order.indexOf(cap) >= order.indexOf(isa);
}

/** The engine new models start with when the suite runs under LIBTORCH_RESNET_ENGINE (null: 'auto'). */
export const forcedEngine: 'onednn' | 'torchscript' | 'none' | null =
  process.env.LIBTORCH_RESNET_ENGINE && process.env.LIBTORCH_RESNET_ENGINE !== 'auto' ? (process.env.LIBTORCH_RESNET_ENGINE as 'onednn' | 'torchscript' | 'none') : null;

/** oneDNN may use AVX-512 kernels (Winograd, the 16-channel blocked layout). */
export const oneDnnAvx512 = flags.has('avx512f') && allowed('AVX512_CORE');

/** oneDNN may run bfloat16 natively (what our oneDNN engine needs for precision 'bfloat16'). */
export const oneDnnNativeBfloat16 = flags.has('avx512_bf16') && allowed('AVX512_CORE_BF16');
