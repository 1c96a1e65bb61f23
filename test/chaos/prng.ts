/**
 * A small seeded PRNG (mulberry32), so that a soak's fault schedule can be
 * replayed with CHAOS_SEED. Each fault loop draws from its own generator, derived
 * from the seed and the loop's name, so that one loop's decisions do not depend
 * on how the others interleave with it.
 */
export class Prng {
  #state: number

  constructor (seed: number) {
    this.#state = seed >>> 0
  }

  /** A generator of its own for one consumer, derived from `seed` and `name`. */
  static derive (seed: number, name: string): Prng {
    let hash = seed >>> 0
    for (const char of name) hash = Math.imul(hash ^ char.charCodeAt(0), 0x9e3779b1) >>> 0
    return new Prng(hash)
  }

  /** In [0, 1). */
  next (): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** In [min, max). */
  between (min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  /** An integer in [min, max]. */
  int (min: number, max: number): number {
    return Math.floor(this.between(min, max + 1))
  }

  chance (probability: number): boolean {
    return this.next() < probability
  }

  pick<T> (items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T
  }
}

/** A fresh random seed, when CHAOS_SEED is not given. */
export function randomSeed (): number {
  return Math.floor(Math.random() * 2 ** 32)
}
