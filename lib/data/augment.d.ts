// Types of augment.js (plain JavaScript, see there).
import type { Random } from './random.js';
export declare function roundHalfEven(x: number): number;
export declare function shuffledOrder(n: number, random: Random): Int32Array;
/** An epoch's order of n samples: 0 .. n-1, or shuffled by (seed, epoch) (stream 0). */
export declare function epochOrder(n: number, shuffle: boolean, seed: number, epoch: number): Int32Array;
export interface ErasingParams {
  p: number;
  scale: readonly [number, number];
  logRatio: readonly [number, number];
  value: number | 'random';
}
export declare function randomErase(out: Float32Array, dst: number, C: number, H: number, W: number, erasing: ErasingParams, random: Random): void;
