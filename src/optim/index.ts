/** optim: optimizers, learning-rate schedules and gradient clipping. */
export { Optimizer, type ParamGroup, type OptimizerStateDict } from "./Optimizer.ts";
export { SGD, Adam, AdamW, type SGDOptions, type AdamOptions } from "./optimizers.ts";
export { LRScheduler, lrMultiplier, type ScheduleName, type ScheduleOptions } from "./schedulers.ts";
export { clipGradNorm } from "./clip.ts";
