// The seeded randomness of the data pipelines (the in-memory batch worker and the streaming
// workers): every draw derives from (seed, epoch, stream), so batches do not depend on which
// thread builds them or when. Plain JavaScript: batch-worker.js imports it without a loader.

/** MurmurHash3's 32-bit finaliser: a bijection on uint32 that spreads every input bit. */
export function fmix32(h) {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds integers (each up to 2^53) into one 32-bit seed. */
export function hashSeed(...parts) {
  let h = 0x6a09e667;
  for (const part of parts) {
    h = fmix32(h ^ (part >>> 0));
    h = fmix32(h ^ Math.floor(part / 4294967296));
  }
  return h;
}

/** A Weyl sequence through fmix32 (SplitMix-style): fast, and good enough for augmentation. */
export class Random {
  constructor(seed32) {
    this.state = seed32 >>> 0;
  }
  /** uniform in [0, 1) */
  next() {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return fmix32(this.state) / 4294967296;
  }
  /** uniform integer in [0, n) */
  int(n) {
    return Math.floor(this.next() * n);
  }
  uniform(low, high) {
    return low + (high - low) * this.next();
  }
  normal() {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }
}
