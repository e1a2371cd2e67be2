/**
 * Corpus BLEU-4 as sacrebleu's `corpus_bleu` / nltk's `corpus_bleu` compute it: clipped n-gram
 * matches and hypothesis n-gram counts are summed over the corpus (n = 1..4), the score is the
 * geometric mean of the four precisions (uniform weights) times the brevity penalty
 * BP = exp(1 - r/c) when the total hypothesis length c is below the total reference length r
 * (the closest reference length per sentence when there are several).
 *
 * Smoothing, for precisions with no match (short or poor outputs make them common):
 *   "exp"  (default) sacrebleu's default: the k-th zero precision counts as 1 / (2^k · total_n);
 *   "none" nltk's default: any zero precision makes the score 0;
 *   "floor" sacrebleu's floor: zero matches count as 0.1.
 * Scores are on sacrebleu's 0-100 scale.
 */
import { GraftError } from "../../core/errors.ts";
import { type Segmentation, ngramCounts, segment } from "./segment.ts";

export type BleuSmoothing = "exp" | "none" | "floor";

export interface BleuOptions {
  smoothing?: BleuSmoothing;
  /** Tokenisation of hypotheses and references (default "char"). */
  segmentation?: Segmentation;
  /** Max n-gram order (default 4). */
  maxOrder?: number;
}

export interface BleuResult {
  /** 0-100. */
  score: number;
  /** n-gram precisions (0-100), n = 1..maxOrder, after smoothing. */
  precisions: number[];
  brevityPenalty: number;
  /** Total hypothesis length c and reference length r, in tokens. */
  hypLength: number;
  refLength: number;
  /** Clipped matches and hypothesis n-gram totals per order. */
  matches: number[];
  totals: number[];
}

/** Corpus BLEU over token lists: each hypothesis with one or more references. */
export function corpusBleuTokens(hyps: readonly (readonly string[])[], refs: readonly (readonly (readonly string[])[])[], opts: BleuOptions = {}): BleuResult {
  if (hyps.length !== refs.length) throw new GraftError(`corpusBleu: ${hyps.length} hypotheses but ${refs.length} reference sets`);
  const N = opts.maxOrder ?? 4;
  const matches = new Array<number>(N).fill(0);
  const totals = new Array<number>(N).fill(0);
  let c = 0;
  let r = 0;
  hyps.forEach((hyp, i) => {
    const rs = refs[i]!;
    if (rs.length === 0) throw new GraftError(`corpusBleu: hypothesis ${i} has no reference`);
    c += hyp.length;
    // Closest reference length (ties → the shorter), as sacrebleu and nltk.
    let best = rs[0]!.length;
    for (const ref of rs) {
      const d = Math.abs(ref.length - hyp.length);
      const bd = Math.abs(best - hyp.length);
      if (d < bd || (d === bd && ref.length < best)) best = ref.length;
    }
    r += best;
    for (let n = 1; n <= N; n++) {
      const h = ngramCounts(hyp, n);
      const maxRef = new Map<string, number>();
      for (const ref of rs) for (const [k, v] of ngramCounts(ref, n)) maxRef.set(k, Math.max(maxRef.get(k) ?? 0, v));
      for (const [k, v] of h) matches[n - 1]! += Math.min(v, maxRef.get(k) ?? 0);
      totals[n - 1]! += Math.max(0, hyp.length - n + 1);
    }
  });
  const smoothing = opts.smoothing ?? "exp";
  const precisions: number[] = [];
  let expK = 1;
  let zero = false;
  for (let n = 0; n < N; n++) {
    if (totals[n] === 0) {
      // No n-grams of this order at all: sacrebleu's score is 0 then (unless smoothing gives one).
      precisions.push(0);
      zero = true;
      continue;
    }
    if (matches[n] === 0) {
      if (smoothing === "exp") {
        expK *= 2;
        precisions.push(100 / (expK * totals[n]!));
      } else if (smoothing === "floor") precisions.push((100 * 0.1) / totals[n]!);
      else {
        precisions.push(0);
        zero = true;
      }
    } else precisions.push((100 * matches[n]!) / totals[n]!);
  }
  const bp = c === 0 ? 0 : c < r ? Math.exp(1 - r / c) : 1;
  const score = zero || c === 0 ? 0 : bp * Math.exp(precisions.reduce((s, p) => s + Math.log(p / 100), 0) / N) * 100;
  return { score, precisions, brevityPenalty: bp, hypLength: c, refLength: r, matches, totals };
}

/** Corpus BLEU over strings (one reference each, or several), segmented per opts.segmentation. */
export function corpusBleu(hyps: readonly string[], refs: readonly (string | readonly string[])[], opts: BleuOptions = {}): BleuResult {
  const seg = (s: string) => segment(s, opts.segmentation ?? "char");
  return corpusBleuTokens(
    hyps.map(seg),
    refs.map((r) => (typeof r === "string" ? [seg(r)] : r.map(seg))),
    opts,
  );
}
