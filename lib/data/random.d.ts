// Types of random.js (plain JavaScript, see there).
export declare function fmix32(h: number): number;
/** Folds integers (each up to 2^53) into one 32-bit seed. */
export declare function hashSeed(...parts: number[]): number;
export declare class Random {
  constructor(seed32: number);
  state: number;
  /** uniform in [0, 1) */
  next(): number;
  /** uniform integer in [0, n) */
  int(n: number): number;
  uniform(low: number, high: number): number;
  normal(): number;
}
