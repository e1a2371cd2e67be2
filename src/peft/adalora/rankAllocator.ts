/**
 * AdaLoRA's budget (PEFT `RankAllocator`): after each optimizer step, the sensitivity |p·∂L/∂p| of
 * every lora_A/B/E entry is smoothed (EMA β1) with its uncertainty (EMA β2); a rank's score is
 * E's score plus the mean scores of its row of A and column of B. The total rank budget follows a
 * cubic schedule from Σ init_r to Σ target_r, and the lowest-scored singular values are zeroed.
 */
import * as T from "../../tensor/index.ts";
import { noGrad } from "../../tensor/index.ts";
import type { AdaLoraConfig } from "./config.ts";
import type { SVDLinear } from "./layer.ts";

interface Stats {
  ipt: Float32Array;
  unc: Float32Array;
}

export class RankAllocator {
  readonly initBudget: number;
  readonly targetBudget: number;
  private readonly stats = new Map<string, Stats>();
  /** The kept ranks after the last masking, keyed `<path>.lora_E.default` as PEFT writes it. */
  rankPattern: Record<string, boolean[]> | null = null;

  constructor(
    private readonly cfg: AdaLoraConfig,
    private readonly layers: [string, SVDLinear][],
  ) {
    this.initBudget = layers.reduce((n, [, l]) => n + l.r, 0);
    this.targetBudget = cfg.target_r * layers.length;
  }

  /** The cubic schedule: [budget, whether to mask at this step]. */
  budgetSchedule(step: number, totalStep: number): [number, boolean] {
    const { tinit, tfinal, deltaT } = this.cfg;
    if (step <= tinit) return [this.initBudget, false];
    if (step > totalStep - tfinal) return [this.targetBudget, true];
    const mul = 1 - (step - tinit) / (totalStep - tfinal - tinit);
    return [Math.floor((this.initBudget - this.targetBudget) * mul ** 3 + this.targetBudget), step % deltaT === 0];
  }

  /** PEFT `update_and_allocate(model, global_step)`; call after optimizer.step(), before zeroGrad. */
  step(globalStep: number, totalSteps: number): void {
    const total = this.cfg.total_step ?? totalSteps;
    const end = total - this.cfg.tfinal;
    if (globalStep < end) {
      this.updateImportance();
      const [budget, mask] = this.budgetSchedule(globalStep, total);
      if (mask) this.maskToBudget(budget);
    } else if (globalStep === end) {
      const [budget] = this.budgetSchedule(globalStep, total);
      this.maskToBudget(budget);
      this.stats.clear();
    } else this.maskUsingRankPattern();
  }

  private updateImportance(): void {
    const { beta1, beta2 } = this.cfg;
    for (const [path, l] of this.layers) {
      for (const [name, p] of [["lora_A", l.lora_A], ["lora_B", l.lora_B], ["lora_E", l.lora_E]] as const) {
        if (!p.grad) continue;
        const key = `${path}.${name}`;
        let s = this.stats.get(key);
        if (!s || s.ipt.length !== p.numel) {
          s = { ipt: new Float32Array(p.numel), unc: new Float32Array(p.numel) };
          this.stats.set(key, s);
        }
        const w = p.contiguous().toArray();
        const g = p.grad.contiguous().toArray();
        for (let i = 0; i < w.length; i++) {
          const ipt = Math.abs(w[i]! * g[i]!);
          s.ipt[i] = beta1 * s.ipt[i]! + (1 - beta1) * ipt;
          s.unc[i] = beta2 * s.unc[i]! + (1 - beta2) * Math.abs(ipt - s.ipt[i]!);
        }
      }
    }
  }

  private score(key: string, n: number): Float32Array {
    const s = this.stats.get(key);
    const out = new Float32Array(n);
    if (s) for (let i = 0; i < n; i++) out[i] = s.ipt[i]! * s.unc[i]!;
    return out;
  }

  /** Per-rank triplet scores of one layer: E + mean over A's row + mean over B's column. */
  private tripletScores(path: string, l: SVDLinear): Float64Array {
    const r = l.r;
    const [inF, outF] = [l.inFeatures, l.outFeatures];
    const e = this.score(`${path}.lora_E`, r);
    const a = this.score(`${path}.lora_A`, r * inF);
    const b = this.score(`${path}.lora_B`, outF * r);
    const out = new Float64Array(r);
    for (let k = 0; k < r; k++) {
      let sa = 0;
      for (let i = 0; i < inF; i++) sa += a[k * inF + i]!;
      let sb = 0;
      for (let o = 0; o < outF; o++) sb += b[o * r + k]!;
      out[k] = e[k]! + sa / inF + sb / outF;
    }
    return out;
  }

  /** Zeroes the singular values scored at or below the (Σr - budget)-th smallest score. */
  maskToBudget(budget: number): void {
    const scores = this.layers.map(([path, l]) => this.tripletScores(path, l));
    const all = scores.flatMap((s) => [...s]).sort((x, y) => x - y);
    const k = this.initBudget - budget;
    if (k <= 0) return;
    const threshold = all[k - 1]!;
    const pattern: Record<string, boolean[]> = {};
    this.layers.forEach(([path, l], j) => {
      const keep = [...scores[j]!].map((x) => x > threshold);
      maskE(l, keep);
      pattern[`${path}.lora_E.default`] = keep;
    });
    this.rankPattern = pattern;
  }

  /** After the budgeting phase, keeps pruned singular values at zero. */
  maskUsingRankPattern(): void {
    if (!this.rankPattern) return;
    for (const [path, l] of this.layers) {
      const keep = this.rankPattern[`${path}.lora_E.default`];
      if (keep && keep.length === l.r) maskE(l, keep);
    }
  }
}

function maskE(l: SVDLinear, keep: boolean[]): void {
  const e = Float32Array.from(l.lora_E.contiguous().toArray(), (x, i) => (keep[i] ? x : 0));
  noGrad(() => l.lora_E.copy_(T.fromArray(e, [l.r, 1]).to(l.lora_E.dtype)));
}
