/** One AdamW step (torch.optim.AdamW semantics: decoupled weight decay applied before the update). */
import { DTypeError } from "../../core/errors.ts";
import type { AdamWArgs } from "../Backend.ts";
import { checkLength, checkSizes } from "./storage.ts";

type F = Float32Array | Float64Array;

export function adamw(param: F, grad: F, m: F, v: F, n: number, args: AdamWArgs): void {
  const op = "adamw";
  checkSizes(op, { n });
  for (const [name, a] of Object.entries({ param, grad, m, v })) {
    if (!(a instanceof Float32Array) && !(a instanceof Float64Array)) {
      throw new DTypeError(op, `${name} must be a Float32Array (or Float64Array), got ${(a as object).constructor.name}`);
    }
    checkLength(op, name, a, n, `[n=${n}]`);
  }
  const { lr, beta1, beta2, eps, weightDecay, step } = args;
  if (!(step >= 1)) throw new DTypeError(op, `step must be >= 1 (1-based), got ${step}`);
  const decay = 1 - lr * weightDecay;
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  for (let i = 0; i < n; i++) {
    const g = grad[i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * g;
    const vi = beta2 * v[i]! + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const mhat = mi / bc1;
    const vhat = vi / bc2;
    param[i] = param[i]! * decay - (lr * mhat) / (Math.sqrt(vhat) + eps);
  }
}
