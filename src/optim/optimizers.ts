/** SGD (momentum, Nesterov, weight decay), Adam (L2 weight decay) and AdamW (decoupled). */
import { getBackend } from "../backend/registry.ts";
import { GraftError } from "../core/errors.ts";
import { type Tensor, noGrad, zeros, zerosLike, add, mul, sqrt, div } from "../tensor/index.ts";
import { Optimizer, type ParamGroup } from "./Optimizer.ts";

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  constructor(params: Tensor[] | ParamGroup[], opts: SGDOptions) {
    super(params, { lr: opts.lr, momentum: opts.momentum ?? 0, dampening: opts.dampening ?? 0, nesterov: opts.nesterov ?? false, weightDecay: opts.weightDecay ?? 0 });
    if (opts.nesterov && (!opts.momentum || opts.dampening)) {
      throw new GraftError("SGD: Nesterov momentum requires a momentum and zero dampening");
    }
  }

  step(): void {
    this.stepCount++;
    noGrad(() => {
      for (const g of this.paramGroups) {
        const { lr, momentum, dampening, nesterov, weightDecay } = g as ParamGroup & Required<Omit<SGDOptions, "lr">>;
        for (const p of g.params) {
          if (!p.grad) continue;
          let d = p.grad.to(p.dtype);
          if (weightDecay) d = add(d, mul(p, weightDecay));
          if (momentum) {
            const st = this.state.get(p);
            let buf: Tensor;
            if (!st) {
              buf = d.clone();
              this.state.set(p, { momentumBuffer: buf });
            } else {
              buf = st["momentumBuffer"]!;
              buf.mul_(momentum).add_(d, 1 - dampening);
            }
            d = nesterov ? add(d, mul(buf, momentum)) : buf;
          }
          p.sub_(mul(d, lr));
        }
      }
    });
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

abstract class AdamBase extends Optimizer {
  protected abstract readonly decoupled: boolean;

  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions, defaultWd: number) {
    super(params, { lr: opts.lr ?? 1e-3, betas: opts.betas ?? [0.9, 0.999], eps: opts.eps ?? 1e-8, weightDecay: opts.weightDecay ?? defaultWd });
  }

  step(): void {
    this.stepCount++;
    const backend = getBackend();
    noGrad(() => {
      for (const g of this.paramGroups) {
        const { lr, betas, eps, weightDecay } = g as ParamGroup & { betas: [number, number]; eps: number; weightDecay: number };
        for (const p of g.params) {
          if (!p.grad) continue;
          let st = this.state.get(p);
          if (!st) {
            st = { expAvg: zerosLike(p, { dtype: "float32" }), expAvgSq: zerosLike(p, { dtype: "float32" }), step: zeros([1]) };
            this.state.set(p, st);
          }
          // Per-parameter step count (parameters may start training at different times).
          const stepT = st["step"]!;
          const step = stepT.item() + 1;
          stepT.fill_(step);
          let grad = p.grad.to("float32");
          if (!this.decoupled && weightDecay) grad = add(grad, mul(p.to("float32"), weightDecay));
          const wd = this.decoupled ? weightDecay : 0;
          if (p.dtype === "float32" && p.isContiguous && p.offset === 0 && p.storage.length === p.numel) {
            backend.adamw(p.storage as Float32Array, grad.data() as Float32Array, st["expAvg"]!.storage as Float32Array, st["expAvgSq"]!.storage as Float32Array, p.numel, {
              lr,
              beta1: betas[0],
              beta2: betas[1],
              eps,
              weightDecay: wd,
              step,
            });
          } else {
            // Generic path (bf16 / float64 / strided parameters): the same update with tensor ops.
            const m = st["expAvg"]!;
            const v = st["expAvgSq"]!;
            m.mul_(betas[0]).add_(grad, 1 - betas[0]);
            v.mul_(betas[1]).add_(mul(grad, grad), 1 - betas[1]);
            const mHat = div(m, 1 - betas[0] ** step);
            const vHat = div(v, 1 - betas[1] ** step);
            const p32 = p.to("float32").clone();
            if (wd) p32.mul_(1 - lr * wd);
            p32.sub_(mul(div(mHat, add(sqrt(vHat), eps)), lr));
            p.copy_(p32);
          }
        }
      }
    });
  }
}

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions = {}) {
    super(params, opts, 0);
  }
}

/** AdamW: decoupled weight decay p *= 1 - lr * wd (torch.optim.AdamW, default wd 0.01). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Tensor[] | ParamGroup[], opts: AdamOptions = {}) {
    super(params, opts, 0.01);
  }
}
