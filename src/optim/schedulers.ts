/**
 * Learning-rate schedules as pure functions of the step (so a resumed run gets the same rate), and
 * an LRScheduler that applies one to an optimizer's groups. Warmup is linear from 0.
 */
import { GraftError } from "../core/errors.ts";
import type { Optimizer } from "./Optimizer.ts";

export type ScheduleName = "constant" | "linear" | "cosine";

export interface ScheduleOptions {
  /** Steps of linear warmup from 0 to the base rate. */
  warmupSteps?: number;
  /** Total steps (needed by linear and cosine decay). */
  totalSteps?: number;
  /** Final rate as a fraction of the base rate (cosine and linear), default 0. */
  minLrRatio?: number;
}

/** The multiplier of the base learning rate at `step` (0-based: the rate used by the step-th update). */
export function lrMultiplier(name: ScheduleName, step: number, opts: ScheduleOptions = {}): number {
  const warmup = opts.warmupSteps ?? 0;
  const minRatio = opts.minLrRatio ?? 0;
  if (warmup > 0 && step < warmup) return (step + 1) / warmup;
  if (name === "constant") return 1;
  const total = opts.totalSteps;
  if (total === undefined || total <= warmup) {
    throw new GraftError(`lr schedule "${name}": totalSteps (${total}) must be greater than warmupSteps (${warmup})`);
  }
  const progress = Math.min(1, (step - warmup) / (total - warmup));
  if (name === "linear") return minRatio + (1 - minRatio) * (1 - progress);
  return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

export class LRScheduler {
  private readonly baseLrs: number[];
  /** Number of times step() was called. */
  lastStep = 0;

  constructor(
    readonly optimizer: Optimizer,
    readonly schedule: ScheduleName | ((step: number) => number),
    readonly opts: ScheduleOptions = {},
  ) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
    this.apply();
  }

  multiplier(step: number): number {
    return typeof this.schedule === "function" ? this.schedule(step) : lrMultiplier(this.schedule, step, this.opts);
  }

  private apply(): void {
    const m = this.multiplier(this.lastStep);
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = this.baseLrs[i]! * m));
  }

  /** Advances to the next step's rate; call after optimizer.step(). */
  step(): void {
    this.lastStep++;
    this.apply();
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastStep: number; baseLrs: number[] } {
    return { lastStep: this.lastStep, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(sd: { lastStep: number; baseLrs: number[] }): void {
    this.lastStep = sd.lastStep;
    sd.baseLrs.forEach((lr, i) => (this.baseLrs[i] = lr));
    this.apply();
  }
}
