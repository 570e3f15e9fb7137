// Deterministic inputs for tests that do not need PyTorch's numbers.
import { Tensor } from '../../lib/index.ts';

/** A float32 tensor of the given shape filled from a small linear congruential generator. */
export function randomTensor(shape: number[], seed = 1): Tensor<Float32Array> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = state / 2 ** 31 - 1;
  }
  return new Tensor(data, shape);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

