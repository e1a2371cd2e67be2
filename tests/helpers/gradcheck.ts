/**
 * Central finite-difference gradient check in float64: compares autograd's gradients of
 * sum(f(inputs) * R) (R fixed random) with (L(x + h) - L(x - h)) / 2h for every input element.
 */
import assert from "node:assert/strict";
import { Generator } from "../../src/core/rng.ts";
import { Tensor, noGrad, randn, mul, sum } from "../../src/tensor/index.ts";

export interface GradcheckOptions {
  h?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
}

export function gradcheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const h = opts.h ?? 1e-6;
  const atol = opts.atol ?? 1e-7;
  const rtol = opts.rtol ?? 1e-5;
  for (const x of inputs) assert.equal(x.dtype, "float64", `${name}: gradcheck inputs must be float64`);
  const probe = noGrad(() => f(...inputs));
  const R = randn(probe.shape, { dtype: "float64", generator: new Generator(opts.seed ?? 1234) });
  const loss = (): number => noGrad(() => sum(mul(f(...inputs), R)).item());

  for (const x of inputs) {
    x.grad = null;
    x.requiresGrad = true;
  }
  sum(mul(f(...inputs), R)).backward();
  inputs.forEach((x, k) => {
    const analytic = x.grad ? x.grad.toArray() : new Array<number>(x.numel).fill(0);
    const data = x.storage as Float64Array;
    for (let i = 0; i < x.numel; i++) {
      const orig = data[i]!;
      data[i] = orig + h;
      const up = loss();
      data[i] = orig - h;
      const down = loss();
      data[i] = orig;
      const numeric = (up - down) / (2 * h);
      const a = analytic[i]!;
      const tol = atol + rtol * Math.max(Math.abs(numeric), Math.abs(a));
      if (!(Math.abs(a - numeric) <= tol)) {
        assert.fail(`${name}: input ${k} element ${i}: autograd ${a} vs finite difference ${numeric} (|diff| ${Math.abs(a - numeric)} > ${tol})`);
      }
    }
  });
}
