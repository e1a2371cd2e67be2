/** Optimizers, schedules and clipping against their formulas. */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import * as T from "../../src/tensor/index.ts";
import { SGD, Adam, AdamW, LRScheduler, lrMultiplier, clipGradNorm } from "../../src/optim/index.ts";

const close = (a: number[], b: number[], tol = 1e-6) =>
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `element ${i}: ${x} vs ${b[i]}`));

function param(values: number[], grad: number[]) {
  const p = T.tensor(values, { requiresGrad: true });
  p.grad = T.tensor(grad);
  return p;
}

test("SGD: plain, weight decay, momentum and Nesterov", () => {
  const p = param([1, -2], [0.5, 0.5]);
  new SGD([p], { lr: 0.1, weightDecay: 0.1 }).step();
  close(p.toArray(), [1 - 0.1 * (0.5 + 0.1), -2 - 0.1 * (0.5 - 0.2)]);

  const q = param([1], [1]);
  const opt = new SGD([q], { lr: 0.1, momentum: 0.9 });
  opt.step(); // buf = 1
  q.grad = T.tensor([1]);
  opt.step(); // buf = 0.9 + 1 = 1.9
  close(q.toArray(), [1 - 0.1 - 0.19]);

  const r = param([1], [1]);
  const nest = new SGD([r], { lr: 0.1, momentum: 0.9, nesterov: true });
  nest.step(); // buf = 1, d = 1 + 0.9
  close(r.toArray(), [1 - 0.19]);
});

test("Adam and AdamW: one step equals the formula", () => {
  const g = [0.3, -1.2, 0];
  const x0 = [0.5, 1, -1];
  const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  for (const decoupled of [false, true]) {
    const p = param(x0, g);
    const opt = decoupled ? new AdamW([p], { lr, weightDecay: wd }) : new Adam([p], { lr, weightDecay: wd });
    opt.step();
    const expected = x0.map((x, i) => {
      const gi = decoupled ? g[i]! : g[i]! + wd * x;
      const m = (1 - b1) * gi, v = (1 - b2) * gi * gi;
      const mh = m / (1 - b1), vh = v / (1 - b2);
      const base = decoupled ? x * (1 - lr * wd) : x;
      return base - (lr * mh) / (Math.sqrt(vh) + eps);
    });
    close(p.toArray(), expected, 1e-6);
  }
  // Two AdamW steps track bias correction with step = 2.
  const p = param([1], [1]);
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0 });
  opt.step();
  p.grad = T.tensor([-1]);
  opt.step();
  const m = 0.9 * 0.1 + 0.1 * -1, v = 0.999 * 0.001 + 0.001;
  close(p.toArray(), [1 - 0.1 - (0.1 * (m / (1 - 0.81))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)], 1e-5);
});

test("optimizer state dict round-trips", () => {
  const p = param([1, 2], [0.1, 0.2]);
  const opt = new AdamW([p], { lr: 0.01 });
  opt.step();
  const sd = JSON.parse(JSON.stringify(opt.stateDict()));
  const p2 = param(p.toArray(), [0.1, 0.2]);
  const opt2 = new AdamW([p2], { lr: 0.5 });
  opt2.loadStateDict(sd, (data, shape) => T.tensor(data, { shape }));
  p.grad = T.tensor([0.3, 0.3]);
  p2.grad = T.tensor([0.3, 0.3]);
  opt.step();
  opt2.step();
  assert.deepEqual(p2.toArray(), p.toArray());
});

test("LR schedules: warmup, linear, cosine; scheduler drives the optimizer", () => {
  assert.equal(lrMultiplier("constant", 5, { warmupSteps: 10 }), 0.6);
  assert.equal(lrMultiplier("linear", 10, { warmupSteps: 10, totalSteps: 110 }), 1);
  assert.equal(lrMultiplier("linear", 60, { warmupSteps: 10, totalSteps: 110 }), 0.5);
  assert.ok(Math.abs(lrMultiplier("cosine", 60, { warmupSteps: 10, totalSteps: 110 }) - 0.5) < 1e-12);
  assert.equal(lrMultiplier("cosine", 110, { warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 }), 0.1);
  assert.throws(() => lrMultiplier("cosine", 1, { totalSteps: 0 }), /totalSteps/);
  const p = param([1], [1]);
  const opt = new SGD([p], { lr: 1 });
  const sched = new LRScheduler(opt, "linear", { warmupSteps: 2, totalSteps: 4 });
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    seen.push(opt.paramGroups[0]!.lr);
    sched.step();
  }
  assert.deepEqual(seen, [0.5, 1, 1, 0.5, 0]);
});

test("clipGradNorm scales to the max norm and returns the original norm", () => {
  const a = param([0, 0], [3, 0]);
  const b = param([0], [4]);
  const norm = clipGradNorm([a, b], 1);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  close([...a.grad!.toArray(), ...b.grad!.toArray()], [0.6, 0, 0.8], 1e-5);
  assert.ok(Math.abs(clipGradNorm([a, b], 10) - 1) < 1e-5, "under the limit nothing changes");
});
