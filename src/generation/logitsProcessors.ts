/**
 * Logits processors: functions that rewrite one row of next-token logits in place, with the same
 * semantics as the Hugging Face `LogitsProcessor` / `LogitsWarper` classes. A removed token gets
 * -Infinity. They work on plain Float32Arrays (one vocabulary row), not tensors: selection (top-k,
 * nucleus) is a sort over the row.
 */
import { GraftError } from "../core/errors.ts";

/** Rewrites `logits` (one row) in place; `ids` is the sequence so far (prompt + generated, no padding). */
export type LogitsProcessor = (logits: Float32Array, ids: readonly number[]) => void;

export interface SamplingOptions {
  /** Softmax temperature; 0 (or unset) means greedy decoding. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or unset: off). */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability mass reaches p (1 or unset: off). */
  topP?: number;
  /** Drop tokens whose probability is below minP × the top token's probability (0 or unset: off). */
  minP?: number;
  /** HF repetition penalty over tokens already in the sequence (1 or unset: off). */
  repetitionPenalty?: number;
}

/**
 * HF `RepetitionPenaltyLogitsProcessor`: for every token already present, a positive logit is
 * divided by `penalty` and a negative one multiplied by it (each token once, however often it occurs).
 */
export function applyRepetitionPenalty(logits: Float32Array, ids: readonly number[], penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (const id of ids) {
    if (seen.has(id) || id < 0 || id >= logits.length) continue;
    seen.add(id);
    const x = logits[id]!;
    logits[id] = x < 0 ? x * penalty : x / penalty;
  }
}

/** Divides every logit by the temperature (HF `TemperatureLogitsWarper`). */
export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (temperature === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / temperature;
}

/** Indices of the tokens still in play (logit > -Infinity) sorted by logit, highest first; ties keep the lower index first. */
export function sortedIndicesDesc(logits: Float32Array): Uint32Array {
  const idx: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i]! > -Infinity) idx.push(i);
  return sortIndicesDesc(logits, idx);
}

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

/**
 * Sorts `idx` by logits[idx] descending (ties by index) with the native numeric sort: each entry
 * becomes one exact float64 key, (descending rank of the float32 bit pattern) × 2^21 + index.
 */
function sortIndicesDesc(logits: Float32Array, idx: readonly number[]): Uint32Array {
  if (logits.length > 1 << 21) {
    return Uint32Array.from(idx).sort((a, b) => logits[b]! - logits[a]! || a - b);
  }
  const keys = new Float64Array(idx.length);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j]!;
    asFloat[0] = logits[i]!;
    const b = bits[0]!;
    const ascending = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
    keys[j] = (0xffffffff - ascending) * 2097152 + i;
  }
  keys.sort();
  const out = new Uint32Array(keys.length);
  for (let j = 0; j < keys.length; j++) out[j] = keys[j]! % 2097152;
  return out;
}

/** HF `TopKLogitsWarper`: everything below the k-th largest logit becomes -Infinity (ties at the k-th are kept). */
export function applyTopK(logits: Float32Array, k: number): void {
  if (k <= 0 || k >= logits.length) return;
  const kth = kthLargest(Float32Array.from(logits), k);
  for (let i = 0; i < logits.length; i++) if (logits[i]! < kth) logits[i] = -Infinity;
}

/** The k-th largest value (1-based) by quickselect; reorders `a` (pass a copy). */
function kthLargest(a: Float32Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}

/** Softmax of one row into a Float64Array (-Infinity → 0). */
export function softmaxRow(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  const p = new Float64Array(logits.length);
  if (max === -Infinity) return p;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - max);
    p[i] = e;
    sum += e;
  }
  for (let i = 0; i < p.length; i++) p[i] = p[i]! / sum;
  return p;
}

/**
 * HF `TopPLogitsWarper`: sort ascending, accumulate probabilities, and remove the tokens whose
 * cumulative mass is <= 1 - p; the most likely token is always kept. Equivalently, walking down
 * from the top, a token stays while the mass ranked above it is < p — so only the head of the
 * distribution is sorted (the 64, 256, ... largest logits until they reach p), not the vocabulary.
 */
export function applyTopP(logits: Float32Array, p: number): void {
  if (p >= 1) return;
  const probs = softmaxRow(logits);
  let finite = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > -Infinity) finite++;
  for (let k = Math.min(64, finite); ; ) {
    const head = largestIndices(logits, k, finite);
    let mass = 0;
    let keep = head.length;
    for (let r = 0; r < head.length; r++) {
      if (r > 0 && mass >= p) {
        keep = r;
        break;
      }
      mass += probs[head[r]!]!;
    }
    if (keep < head.length || head.length >= finite) {
      const kept = new Uint8Array(logits.length);
      for (let r = 0; r < keep; r++) kept[head[r]!] = 1;
      for (let i = 0; i < logits.length; i++) if (!kept[i]) logits[i] = -Infinity;
      return;
    }
    // Grow the head by what the mass so far suggests (a flat distribution goes straight to a full sort).
    k = Math.min(finite, Math.max(4 * k, mass > 0 ? Math.ceil((2 * k * p) / mass) : finite));
  }
}

/** Indices of the k largest of the `finite` tokens in play (more on ties at the k-th), sorted highest first, ties by index. */
function largestIndices(logits: Float32Array, k: number, finite: number): Uint32Array {
  if (k >= finite) return sortedIndicesDesc(logits);
  const values = new Float32Array(finite);
  for (let i = 0, j = 0; i < logits.length; i++) if (logits[i]! > -Infinity) values[j++] = logits[i]!;
  const kth = kthLargest(values, k);
  const idx: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i]! >= kth) idx.push(i);
  return sortIndicesDesc(logits, idx);
}

/** HF `MinPLogitsWarper`: drop tokens with probability < minP × max probability (the top token stays). */
export function applyMinP(logits: Float32Array, minP: number): void {
  if (minP <= 0) return;
  const probs = softmaxRow(logits);
  let top = 0;
  for (let i = 0; i < probs.length; i++) if (probs[i]! > top) top = probs[i]!;
  const threshold = minP * top;
  for (let i = 0; i < logits.length; i++) if (probs[i]! < threshold) logits[i] = -Infinity;
}

/** Checks sampling options and throws a GraftError naming the bad one. */
export function validateSamplingOptions(o: SamplingOptions): void {
  const check = (name: string, v: number | undefined, ok: (x: number) => boolean, want: string) => {
    if (v !== undefined && (!Number.isFinite(v) || !ok(v))) throw new GraftError(`${name} must be ${want}, got ${v}`);
  };
  check("temperature", o.temperature, (x) => x >= 0, "a number >= 0");
  check("topK", o.topK, (x) => x >= 0 && Number.isInteger(x), "an integer >= 0");
  check("topP", o.topP, (x) => x > 0 && x <= 1, "in (0, 1]");
  check("minP", o.minP, (x) => x >= 0 && x <= 1, "in [0, 1]");
  check("repetitionPenalty", o.repetitionPenalty, (x) => x > 0, "a number > 0");
}

/**
 * The processor chain for these options, in Hugging Face's order: repetition penalty, then (only
 * when sampling) temperature, top-k, top-p, min-p.
 */
export function buildLogitsProcessors(o: SamplingOptions): LogitsProcessor[] {
  validateSamplingOptions(o);
  const out: LogitsProcessor[] = [];
  const { temperature = 0, topK = 0, topP = 1, minP = 0, repetitionPenalty = 1 } = o;
  if (repetitionPenalty !== 1) out.push((l, ids) => applyRepetitionPenalty(l, ids, repetitionPenalty));
  if (temperature > 0) {
    if (temperature !== 1) out.push((l) => applyTemperature(l, temperature));
    if (topK > 0) out.push((l) => applyTopK(l, topK));
    if (topP < 1) out.push((l) => applyTopP(l, topP));
    if (minP > 0) out.push((l) => applyMinP(l, minP));
  }
  return out;
}
