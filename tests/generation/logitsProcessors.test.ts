import assert from "node:assert/strict";
import { describe, it } from "node:test";
import "../../src/backend/index.ts";
import { Generator } from "../../src/core/rng.ts";
import {
  applyMinP,
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  buildLogitsProcessors,
  greedy,
  sampleMultinomial,
  softmaxRow,
} from "../../src/generation/index.ts";

const f32 = (xs: number[]) => Float32Array.from(xs);
const logOf = (ps: number[]) => f32(ps.map(Math.log));
const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) {
    if (b[i] === -Infinity) assert.equal(a[i], -Infinity, `[${i}]`);
    else assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}]: ${a[i]} vs ${b[i]}`);
  }
};
const NEG = -Infinity;

describe("logits processors", () => {
  it("repetition penalty divides positive and multiplies negative logits of seen tokens, once each", () => {
    const l = f32([2, -2, 1, 0.5, 3]);
    applyRepetitionPenalty(l, [0, 1, 1, 3, 3, 3], 2);
    close(l, [1, -4, 1, 0.25, 3]);
    const same = f32([2, -2]);
    applyRepetitionPenalty(same, [0, 1], 1);
    close(same, [2, -2]);
  });

  it("temperature divides every logit", () => {
    const l = f32([1, 2, -3]);
    applyTemperature(l, 0.5);
    close(l, [2, 4, -6]);
  });

  it("top-k keeps the k largest and ties with the k-th", () => {
    const l = f32([1, 3, 2, 0]);
    applyTopK(l, 2);
    close(l, [NEG, 3, 2, NEG]);
    const ties = f32([1, 2, 2, 0]);
    applyTopK(ties, 1);
    close(ties, [NEG, 2, 2, NEG]);
    const all = f32([1, 2]);
    applyTopK(all, 5);
    close(all, [1, 2]);
  });

  it("top-p removes the low tail whose mass is <= 1 - p, keeping the top token", () => {
    const probs = [0.15, 0.5, 0.05, 0.3];
    const a = logOf(probs);
    applyTopP(a, 0.75); // tail: 0.05 (cum .05) and 0.15 (cum .20) are <= .25; 0.3 brings it to .5
    close(a, [NEG, Math.log(0.5), NEG, Math.log(0.3)]);
    const b = logOf(probs);
    applyTopP(b, 0.9); // only 0.05 (cum .05 <= .1)
    close(b, [Math.log(0.15), Math.log(0.5), NEG, Math.log(0.3)]);
    const c = logOf(probs);
    applyTopP(c, 0.01); // the top token always stays
    close(c, [NEG, Math.log(0.5), NEG, NEG]);
  });

  it("min-p drops tokens below min_p times the top probability", () => {
    const l = logOf([0.5, 0.3, 0.15, 0.05]);
    applyMinP(l, 0.2); // threshold 0.1
    close(l, [Math.log(0.5), Math.log(0.3), Math.log(0.15), NEG]);
  });

  it("softmax ignores removed tokens", () => {
    close(softmaxRow(f32([0, NEG, 0])), [0.5, 0, 0.5]);
  });

  it("chain in HF order: penalty, temperature, top-k, top-p, min-p; greedy skips the warpers", () => {
    const ids = [2];
    const l = f32([1, 2, 4, 3]);
    for (const p of buildLogitsProcessors({ temperature: 0.5, topK: 3, topP: 0.6, repetitionPenalty: 2 })) p(l, ids);
    // penalty: [1, 2, 2, 3]; temperature: [2, 4, 4, 6]; top-k 3: [-inf, 4, 4, 6];
    // softmax ≈ [0, .1065, .1065, .787]: the 0.213 tail ≤ 0.4 goes.
    close(l, [NEG, NEG, NEG, 6]);
    const g = f32([1, 2, 4, 3]);
    for (const p of buildLogitsProcessors({ topK: 1, topP: 0.1, repetitionPenalty: 2 })) p(g, ids);
    close(g, [1, 2, 2, 3]);
  });

  it("validates options", () => {
    assert.throws(() => buildLogitsProcessors({ temperature: -1 }), /temperature/);
    assert.throws(() => buildLogitsProcessors({ topK: 1.5 }), /topK/);
    assert.throws(() => buildLogitsProcessors({ topP: 1.5 }), /topP/);
    assert.throws(() => buildLogitsProcessors({ minP: -0.1 }), /minP/);
    assert.throws(() => buildLogitsProcessors({ repetitionPenalty: 0 }), /repetitionPenalty/);
  });
});

describe("samplers", () => {
  it("greedy picks the first maximum", () => {
    assert.equal(greedy(f32([1, 5, 5, 2])), 1);
    assert.throws(() => greedy(f32([NEG, NEG])), /filtered out/);
    assert.throws(() => greedy(new Float32Array(0)), /filtered out/);
    assert.throws(() => greedy(f32([1, Number.NaN, 3])), /contain NaN \(at token 1\)/);
    // a vocabulary-sized row: the vectorised pass and its tail
    const big = new Float32Array(151_937).fill(-3);
    big[151_936] = 2;
    assert.equal(greedy(big), 151_936);
    big[77_777] = 2;
    assert.equal(greedy(big), 77_777);
  });

  it("multinomial follows the softmax and is reproducible per seed", () => {
    const l = logOf([0.5, 0.3, 0.2]);
    const g = new Generator(123);
    const counts = [0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleMultinomial(l, g)]!++;
    close(
      counts.map((c) => c / n),
      [0.5, 0.3, 0.2],
      0.015,
    );
    const draw = (seed: number) => {
      const r = new Generator(seed);
      return Array.from({ length: 50 }, () => sampleMultinomial(l, r));
    };
    assert.deepEqual(draw(4), draw(4));
    assert.notDeepEqual(draw(4), draw(5));
  });

  it("multinomial never picks a removed token", () => {
    const l = f32([NEG, 0, NEG, 0]);
    const g = new Generator(1);
    for (let i = 0; i < 1000; i++) assert.ok([1, 3].includes(sampleMultinomial(l, g)));
  });
});
