/** BLEU-4 and ROUGE-1/2/L against values worked out by hand (English words and Chinese characters). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { corpusBleu, corpusRouge, formatMetricTable, lcsLength, segment } from "../../src/train/index.ts";

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("segment: CJK per character, letter/digit runs as words, punctuation alone, spaces dropped", () => {
  assert.deepEqual(segment("高血压，可以吃党参吗？"), ["高", "血", "压", "，", "可", "以", "吃", "党", "参", "吗", "？"]);
  assert.deepEqual(segment("CT检查 shows 2.5cm"), ["CT", "检", "查", "shows", "2", ".", "5cm"]);
  assert.deepEqual(segment("  a  b\tc ", "whitespace"), ["a", "b", "c"]);
});

test("BLEU-4, one sentence: precisions 5/6, 3/5, 1/4, 0/3 — zero without smoothing, exp-smoothed 1/(2·3)", () => {
  const hyp = ["the cat sat on the mat"];
  const ref = ["the cat is on the mat"];
  const none = corpusBleu(hyp, ref, { segmentation: "whitespace", smoothing: "none" });
  assert.deepEqual(none.matches, [5, 3, 1, 0]);
  assert.deepEqual(none.totals, [6, 5, 4, 3]);
  assert.equal(none.score, 0);
  assert.equal(none.brevityPenalty, 1);
  const exp = corpusBleu(hyp, ref, { segmentation: "whitespace" });
  close(exp.score, 100 * Math.pow((5 / 6) * (3 / 5) * (1 / 4) * (1 / 6), 1 / 4));
  close(exp.score, 100 * Math.pow(1 / 48, 1 / 4));
});

test("BLEU-4 is a corpus score: counts summed over sentences, brevity penalty on total lengths", () => {
  const hyps = ["the cat sat on the mat", "a b c d"];
  const refs = ["the cat is on the mat", "a b c d e f"];
  const r = corpusBleu(hyps, refs, { segmentation: "whitespace", smoothing: "none" });
  assert.deepEqual(r.matches, [9, 6, 3, 1]);
  assert.deepEqual(r.totals, [10, 8, 6, 4]);
  assert.equal(r.hypLength, 10);
  assert.equal(r.refLength, 12);
  close(r.brevityPenalty, Math.exp(1 - 12 / 10));
  close(r.score, 100 * Math.exp(-0.2) * Math.pow(0.9 * 0.75 * 0.5 * 0.25, 1 / 4));
  // Not the mean of the sentence scores.
  const s2 = corpusBleu([hyps[1]!], [refs[1]!], { segmentation: "whitespace" }).score;
  assert.ok(Math.abs(r.score - s2) > 1);
});

test("BLEU-4 on Chinese, character level: clipped counts and BP exp(1 - 11/8)", () => {
  const r = corpusBleu(["高血压可以吃党参"], ["高血压患者可以吃党参吗"]);
  assert.deepEqual(r.matches, [8, 6, 4, 2]);
  assert.deepEqual(r.totals, [8, 7, 6, 5]);
  close(r.score, 100 * Math.exp(1 - 11 / 8) * Math.pow((8 / 8) * (6 / 7) * (4 / 6) * (2 / 5), 1 / 4));
  // Clipping: a repeated token counts at most as often as in the reference.
  const c = corpusBleu(["的的的的"], ["的病"], { smoothing: "none" });
  assert.equal(c.matches[0], 1);
  assert.equal(c.totals[0], 4);
  assert.equal(corpusBleu(["完全相同的句子"], ["完全相同的句子"]).score, 100);
});

test("ROUGE-1/2/L F1 on Chinese characters: 16/19, 12/17, 16/19", () => {
  const r = corpusRouge(["高血压可以吃党参"], ["高血压患者可以吃党参吗"]);
  close(r.rouge1.precision, 1);
  close(r.rouge1.recall, 8 / 11);
  close(r.rouge1.f1, 16 / 19);
  close(r.rouge2.precision, 6 / 7);
  close(r.rouge2.recall, 6 / 10);
  close(r.rouge2.f1, 12 / 17);
  close(r.rougeL.f1, 16 / 19);
});

test("ROUGE-L uses the longest common subsequence; corpus ROUGE is the mean over pairs", () => {
  assert.equal(lcsLength(["a", "b", "c", "d"], ["a", "c", "b", "d"]), 3);
  const r = corpusRouge(["a b c d", "x y"], ["a c b d", "p q"], { segmentation: "whitespace" });
  close(r.rougeL.f1, (3 / 4 + 0) / 2);
  close(r.rouge2.f1, 0);
  close(r.rouge1.f1, (1 + 0) / 2);
  assert.equal(corpusRouge([""], ["参"]).rouge1.f1, 0);
});

test("metric table: one row per model, ROUGE ×100", () => {
  const t = formatMetricTable([{ name: "base", valLoss: 2.5, perplexity: Math.exp(2.5), bleu4: 1.234, rouge1: 0.5, rouge2: 0.25, rougeL: 0.4 }]);
  const lines = t.split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /model .*val loss .*perplexity .*BLEU-4 .*ROUGE-1 .*ROUGE-2 .*ROUGE-L/);
  assert.match(lines[2]!, /base .*2\.5000 .*12\.18 .*1\.23 .*50\.00 .*25\.00 .*40\.00/);
});
