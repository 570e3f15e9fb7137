// Admission for image decoding: at most `concurrency` images decode at once, and together they may
// declare at most `budgetPixels` pixels (read from their headers first). One request of sixteen
// 80-megapixel images then decodes a few at a time instead of asking for 16 x 240 MB at once, and
// requests queue here, in arrival order, rather than in memory.
export class DecodeGate {
  #active = 0;
  #used = 0;
  readonly #waiting: Array<{ cost: number; start: () => void }> = [];

  constructor(
    readonly concurrency: number,
    readonly budgetPixels: number,
  ) {}

  /** Runs `work` once there is room for `pixels` more (a single image over the budget runs alone). */
  async run<T>(pixels: number, work: () => Promise<T>): Promise<T> {
    const cost = Math.min(pixels, this.budgetPixels);
    await new Promise<void>((start) => {
      this.#waiting.push({ cost, start });
      this.#admit();
    });
    try {
      return await work();
    } finally {
      this.#active--;
      this.#used -= cost;
      this.#admit();
    }
  }

  #admit(): void {
    // First come, first served: a big image at the head is not overtaken by small ones forever.
    while (this.#waiting.length > 0) {
      const head = this.#waiting[0]!;
      if (this.#active >= this.concurrency || (this.#active > 0 && this.#used + head.cost > this.budgetPixels)) return;
      this.#waiting.shift();
      this.#active++;
      this.#used += head.cost;
      head.start();
    }
  }
}
