/** Samplers: pick the next token from one row of (processed) logits. */
import { getBackend } from "../backend/registry.ts";
import { GraftError } from "../core/errors.ts";
import type { Generator } from "../core/rng.ts";
import { softmaxRow } from "./logitsProcessors.ts";

/**
 * The index of the largest logit (the first one on ties, like torch.argmax), found by the backend's
 * argmax: a vocabulary of 150k logits is one vectorised pass, not a JS loop.
 */
export function greedy(logits: Float32Array): number {
  const at = new Int32Array(1).fill(-1);
  if (logits.length > 0) getBackend().reduce("argmax", logits, "float32", 1, logits.length, 1, at);
  const best = at[0]!;
  const max = best < 0 ? -Infinity : logits[best]!;
  if (Number.isNaN(max)) throw new GraftError(`greedy: the logits contain NaN (at token ${best})`);
  if (max === -Infinity) throw new GraftError("greedy: every token was filtered out (all logits are -Infinity)");
  return best;
}

/** Draws one token from softmax(logits) with the seeded generator (one uniform draw per call). */
export function sampleMultinomial(logits: Float32Array, generator: Generator): number {
  const probs = softmaxRow(logits);
  const u = generator.random();
  let cum = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (Number.isNaN(p)) throw new GraftError("sampleMultinomial: the logits contain NaN");
    if (p === 0) continue;
    cum += p;
    last = i;
    if (u < cum) return i;
  }
  if (last < 0) throw new GraftError("sampleMultinomial: every token was filtered out (all logits are -Infinity)");
  return last; // u within rounding of 1
}
