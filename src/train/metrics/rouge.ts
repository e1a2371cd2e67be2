/**
 * ROUGE-1, ROUGE-2 and ROUGE-L F1 as Google's rouge-score computes them per sentence pair:
 * ROUGE-N from clipped n-gram overlaps (recall = overlap / reference n-grams, precision = overlap /
 * hypothesis n-grams), ROUGE-L from the longest common subsequence (recall = LCS / |ref|,
 * precision = LCS / |hyp|); F1 = 2PR / (P + R), 0 when either is 0. The corpus score is the mean
 * over pairs (rouge-score's aggregate mean). Chinese text is segmented per character by default.
 */
import { GraftError } from "../../core/errors.ts";
import { type Segmentation, ngramCounts, segment } from "./segment.ts";

export interface RougeScore {
  precision: number;
  recall: number;
  f1: number;
}

export interface RougeResult {
  rouge1: RougeScore;
  rouge2: RougeScore;
  rougeL: RougeScore;
}

function score(overlap: number, hypTotal: number, refTotal: number): RougeScore {
  const precision = hypTotal > 0 ? overlap / hypTotal : 0;
  const recall = refTotal > 0 ? overlap / refTotal : 0;
  const f1 = precision > 0 && recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

export function rougeN(hyp: readonly string[], ref: readonly string[], n: number): RougeScore {
  const h = ngramCounts(hyp, n);
  const r = ngramCounts(ref, n);
  let overlap = 0;
  for (const [k, v] of h) overlap += Math.min(v, r.get(k) ?? 0);
  return score(overlap, Math.max(0, hyp.length - n + 1), Math.max(0, ref.length - n + 1));
}

/** Length of the longest common subsequence (O(|a|·|b|) time, O(|b|) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

export function rougeL(hyp: readonly string[], ref: readonly string[]): RougeScore {
  return score(lcsLength(hyp, ref), hyp.length, ref.length);
}

/** ROUGE of one pair of token lists. */
export function rougeTokens(hyp: readonly string[], ref: readonly string[]): RougeResult {
  return { rouge1: rougeN(hyp, ref, 1), rouge2: rougeN(hyp, ref, 2), rougeL: rougeL(hyp, ref) };
}

/** Mean ROUGE over pairs of strings, segmented per `segmentation` (default "char"). */
export function corpusRouge(hyps: readonly string[], refs: readonly string[], opts: { segmentation?: Segmentation } = {}): RougeResult {
  if (hyps.length !== refs.length) throw new GraftError(`corpusRouge: ${hyps.length} hypotheses but ${refs.length} references`);
  const sum: RougeResult = { rouge1: { precision: 0, recall: 0, f1: 0 }, rouge2: { precision: 0, recall: 0, f1: 0 }, rougeL: { precision: 0, recall: 0, f1: 0 } };
  const n = hyps.length;
  if (n === 0) return sum;
  hyps.forEach((h, i) => {
    const r = rougeTokens(segment(h, opts.segmentation), segment(refs[i]!, opts.segmentation));
    for (const key of ["rouge1", "rouge2", "rougeL"] as const) {
      sum[key].precision += r[key].precision / n;
      sum[key].recall += r[key].recall / n;
      sum[key].f1 += r[key].f1 / n;
    }
  });
  return sum;
}
