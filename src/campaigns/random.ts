import { createHash } from "node:crypto";

/** A 32-bit seed from any text (a campaign name, a band): the first four bytes of its SHA-256. */
export function seedFromText(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0);
}

/**
 * A small seeded generator (mulberry32): uniform floats in [0, 1). Reproducible across platforms and Node
 * versions, which Math.random is not; that is what makes a recorded seed re-create a control group exactly.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of a copy, driven by `random`. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
