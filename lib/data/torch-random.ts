// PyTorch's CPU generator (at::mt19937, what torch.Generator() and torch.manual_seed drive) and
// torch.randperm on it, bit for bit as LibTorch 1.13 computes them, so that a sample order drawn
// here is the order a PyTorch script with the same seed draws (test/distributed-sampler.test.ts
// holds them against torch's own output).

/** 2^32 */
const TWO_32 = 4294967296;
const N = 624;
const M = 397;

/**
 * The 32-bit Mersenne Twister as ATen's mt19937 (aten/src/ATen/core/MT19937RNGEngine.h): the
 * standard init_genrand seeding from the low 32 bits of the seed, the standard twist and tempering.
 * `next()` is CPUGeneratorImpl::random(), the draw randperm takes.
 */
export class Mt19937 {
  readonly #state = new Uint32Array(N);
  #next = N;

  /** `seed`: a non-negative safe integer; only its low 32 bits count, as in torch.manual_seed. */
  constructor(seed: number) {
    const state = this.#state;
    state[0] = seed % TWO_32;
    for (let j = 1; j < N; j++) {
      const prev = state[j - 1]!;
      state[j] = Math.imul(1812433253, prev ^ (prev >>> 30)) + j;
    }
  }

  /** The next uint32. */
  next(): number {
    if (this.#next >= N) this.#twist();
    let y = this.#state[this.#next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  #twist(): void {
    const s = this.#state;
    for (let i = 0; i < N; i++) {
      const y = (s[i]! & 0x80000000) | (s[(i + 1) % N]! & 0x7fffffff);
      s[i] = s[(i + M) % N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.#next = 0;
  }
}

/** The low 32 bits of a + b for non-negative safe integers (exact where a + b itself would round). */
export function seedSum32(a: number, b: number): number {
  return ((a % TWO_32) + (b % TWO_32)) % TWO_32;
}

/**
 * torch.randperm(n, generator=g) on the CPU, g seeded with `seed` (its low 32 bits): ATen 1.13's
 * randperm_cpu, a forward Fisher-Yates where step i swaps r[i] with r[i + random() % (n - i)],
 * random() being one 32-bit draw, for every n (PyTorch 2.x draws 64 bits for very large n; 1.13
 * does not).
 */
export function randperm(n: number, seed: number | Mt19937): Int32Array {
  const generator = typeof seed === 'number' ? new Mt19937(seed) : seed;
  const r = new Int32Array(n);
  for (let i = 0; i < n; i++) r[i] = i;
  for (let i = 0; i < n - 1; i++) {
    const j = i + (generator.next() % (n - i));
    const t = r[i]!;
    r[i] = r[j]!;
    r[j] = t;
  }
  return r;
}
