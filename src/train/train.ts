/**
 * train(): one loop for pretraining and fine-tuning, with swappable loss, batches and callbacks.
 *
 * Each optimizer step reads `gradAccumSteps` batches; gradients are accumulated from the sum of
 * token losses and divided by the step's token count, so a step's update is the token-weighted mean
 * over its batches (as transformers' Trainer with num_items_in_batch). Then: PEFT extraLoss(), the
 * global-norm clip, optimizer.step(), model.onOptimizerStep?(), zero grads, LR schedule (warmup +
 * linear/cosine/constant). Every `evalEvery` steps (and at the end) the validation loss is the
 * token-weighted mean over the validation batches; early stopping ends the run after `patience`
 * evaluations without improvement (restoring the best weights by default). Checkpoints
 * (src/formats/checkpoint.ts) hold the trainable weights, the optimizer moments, the scheduler,
 * the default RNG (dropout), the data position and the trainer's counters, so a resumed run ends
 * with the same weights, bit for bit, as an uninterrupted one with the same seed. With an outDir it
 * writes TensorBoard events (tb/), metrics.jsonl and loss.png, and shows a progress bar.
 */
import * as path from "node:path";
import { type Storage, dtypeOfStorage } from "../core/dtype.ts";
import { defaultGenerator, type RngState } from "../core/rng.ts";
import type { Batches } from "../data/batches.ts";
import { type Json, type TensorMap, loadCheckpoint, saveCheckpoint } from "../formats/index.ts";
import type { Module } from "../nn/index.ts";
import { AdamW, Adam, SGD, LRScheduler, type Optimizer, type ParamGroup, type ScheduleName, clipGradNorm } from "../optim/index.ts";
import { JsonlLogger, ProgressBar, TfEventsWriter, writeLossCurve, type LossPoint } from "../report/index.ts";
import { Tensor, fromArray, mul, noGrad } from "../tensor/index.ts";
import { type Callback, type LossFn, type StepLog, TrainError, type TrainState } from "./types.ts";

export interface CheckpointWeights {
  /** Tensors to save (e.g. a PEFT adapter's), by name. */
  state(): Record<string, Tensor>;
  /** Loads tensors saved by state() back. */
  load(tensors: Record<string, Tensor>): void;
  /** The weights file name in the checkpoint (default model.safetensors). */
  file?: string;
}

/** Optional hooks of a PEFT model (src/peft/types.ts) that the trainer calls when present. */
interface PeftHooks {
  extraLoss?(): Tensor | null;
  onOptimizerStep?(step: number, totalSteps: number): void;
}

export interface TrainOptions<M extends Module, B> {
  model: M;
  /** The tensors to train (default model.trainableParameters()). */
  params?: Tensor[];
  train: Batches<B>;
  val?: Batches<B>;
  loss: LossFn<M, B>;
  optimizer?: "adamw" | "adam" | "sgd";
  /** Peak learning rate (default 5e-5). */
  lr?: number;
  /** Decoupled weight decay for AdamW (default 0), not applied to biases and norm weights (1-D tensors). */
  weightDecay?: number;
  betas?: [number, number];
  momentum?: number;
  schedule?: ScheduleName;
  warmupSteps?: number;
  /** Warmup as a fraction of the total steps (used when warmupSteps is not given). */
  warmupRatio?: number;
  minLrRatio?: number;
  /** Optimizer steps (default: epochs × batches per epoch / gradAccumSteps). */
  maxSteps?: number;
  epochs?: number;
  gradAccumSteps?: number;
  /** Clip the global gradient norm to this (default 1; 0 disables). */
  maxGradNorm?: number;
  /** Evaluate every N steps (default 0: only at the end). */
  evalEvery?: number;
  /** Use at most this many validation batches per evaluation. */
  evalMaxBatches?: number;
  earlyStopping?: { patience: number; minDelta?: number; restoreBest?: boolean };
  /** Save a checkpoint every N steps (and at the end); default 0 = never. */
  checkpointEvery?: number;
  /** Default outDir/checkpoints. */
  checkpointDir?: string;
  keepLast?: number;
  /** Resume from the latest checkpoint in checkpointDir (true) or from a given checkpoint directory. */
  resume?: boolean | string;
  checkpointWeights?: CheckpointWeights;
  /** Logs (tb/, metrics.jsonl) and loss.png go here. */
  outDir?: string;
  /** Train metrics to TensorBoard / JSONL every N steps (default 10). */
  logEvery?: number;
  /** Seeds the default generator (dropout) at the start (default 0). */
  seed?: number;
  callbacks?: Callback[];
  progress?: "auto" | "bar" | "lines" | "off";
  label?: string;
  /** Saved as the checkpoint's config.json (e.g. the command line). */
  config?: Json;
  /** Stop after this many steps of this call (the schedule still spans maxSteps), e.g. to test resume. */
  stopAfterSteps?: number;
}

export interface TrainResult {
  steps: number;
  totalSteps: number;
  trainLoss: LossPoint[];
  valLoss: LossPoint[];
  bestValLoss: number | null;
  bestStep: number | null;
  /** Validation loss of the returned weights (the best one when early stopping restored them). */
  finalValLoss: number | null;
  stoppedEarly: boolean;
  resumedFrom: string | null;
  tokensSeen: number;
  /** Input tokens per second of this call's training steps (evaluation excluded). */
  tokensPerSec: number;
  seconds: number;
  lossCurvePath: string | null;
  lastCheckpoint: string | null;
}

/** The token-weighted mean loss over (at most maxBatches of) a batch source, without gradients. */
export function evaluateLoss<M extends Module, B>(model: M, batches: Batches<B>, loss: LossFn<M, B>, maxBatches?: number): { loss: number; perplexity: number; tokens: number } {
  const wasTraining = model.training;
  model.eval();
  let sum = 0;
  let tokens = 0;
  try {
    noGrad(() => {
      const n = Math.min(batches.length, maxBatches ?? Infinity);
      for (let i = 0; i < n; i++) {
        const out = loss(model, batches.get(0, i));
        if (out.nTokens === 0) continue;
        sum += out.loss.item() * out.nTokens;
        tokens += out.nTokens;
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const mean = tokens > 0 ? sum / tokens : NaN;
  return { loss: mean, perplexity: Math.exp(mean), tokens };
}

function buildOptimizer(params: Tensor[], o: Pick<TrainOptions<Module, unknown>, "lr" | "weightDecay" | "optimizer" | "momentum" | "betas">): Optimizer {
  const lr = o.lr ?? 5e-5;
  const wd = o.weightDecay ?? 0;
  const groups: ParamGroup[] = [];
  if (wd > 0) {
    const decay = params.filter((p) => p.ndim >= 2);
    const noDecay = params.filter((p) => p.ndim < 2);
    if (decay.length) groups.push({ params: decay, lr, weightDecay: wd });
    if (noDecay.length) groups.push({ params: noDecay, lr, weightDecay: 0 });
  } else groups.push({ params, lr, weightDecay: 0 });
  const name = o.optimizer ?? "adamw";
  if (name === "sgd") return new SGD(groups, { lr, momentum: o.momentum ?? 0, weightDecay: 0 });
  if (name === "adam") return new Adam(groups, { lr, betas: o.betas });
  if (name === "adamw") return new AdamW(groups, { lr, betas: o.betas, weightDecay: 0 });
  throw new TrainError(`unknown optimizer "${String(name)}" (adamw, adam, sgd)`);
}

const entryOf = (t: Tensor) => ({ dtype: t.dtype, shape: [...t.shape], data: t.contiguous().data().slice() });

function tensorOf(v: TensorMap[string] | Storage, what: string): Tensor {
  const e = ArrayBuffer.isView(v) ? { dtype: dtypeOfStorage(v), shape: [v.length], data: v } : v;
  const d = e.data;
  if (!(d instanceof Float32Array || d instanceof Float64Array || d instanceof Int32Array || d instanceof Uint16Array || d instanceof BigInt64Array)) {
    throw new TrainError(`checkpoint tensor ${what} has unsupported dtype ${e.dtype}`);
  }
  return fromArray(d, e.shape, e.dtype as Tensor["dtype"]);
}

function defaultWeights(model: Module, params: Tensor[]): CheckpointWeights {
  const set = new Set(params);
  const named = model.namedParameters().filter(([, p]) => set.has(p));
  if (named.length !== params.length) throw new TrainError(`${params.length - named.length} trainable tensors are not parameters of the model; pass checkpointWeights`);
  return {
    state: () => Object.fromEntries(named),
    load(tensors) {
      const missing = named.filter(([k]) => !(k in tensors)).map(([k]) => k);
      if (missing.length) throw new TrainError(`checkpoint lacks trainable weights: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ` (+${missing.length - 5})` : ""}`);
      noGrad(() => named.forEach(([k, p]) => p.copy_(tensors[k]!)));
    },
  };
}

export async function train<M extends Module, B>(o: TrainOptions<M, B>): Promise<TrainResult> {
  const model = o.model;
  const params = o.params ?? model.trainableParameters();
  if (params.length === 0) throw new TrainError("nothing to train: the model has no trainable parameters");
  if (o.train.length === 0) throw new TrainError("the training set yields no batches");
  const accum = o.gradAccumSteps ?? 1;
  if (!Number.isInteger(accum) || accum < 1) throw new TrainError(`gradAccumSteps must be a positive integer, got ${accum}`);
  const epochs = o.epochs ?? 1;
  const totalSteps = o.maxSteps ?? Math.ceil((epochs * o.train.length) / accum);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new TrainError(`the run has ${totalSteps} steps; give maxSteps or epochs >= 1`);
  const totalMicro = o.maxSteps !== undefined ? Infinity : epochs * o.train.length;
  const maxGradNorm = o.maxGradNorm ?? 1;
  const evalEvery = o.evalEvery ?? 0;
  const logEvery = o.logEvery ?? 10;
  const ckptEvery = o.checkpointEvery ?? 0;
  const ckptDir = o.checkpointDir ?? (o.outDir ? path.join(o.outDir, "checkpoints") : undefined);
  if ((ckptEvery > 0 || o.resume === true) && !ckptDir) throw new TrainError("checkpoints need a checkpointDir or outDir");
  const callbacks = o.callbacks ?? [];
  const weights = o.checkpointWeights ?? defaultWeights(model, params);
  const hooks = model as unknown as PeftHooks;

  const optimizer = buildOptimizer(params, o);
  const warmupSteps = o.warmupSteps ?? Math.round((o.warmupRatio ?? 0) * totalSteps);
  const schedule = o.schedule ?? "linear";
  const scheduler = new LRScheduler(optimizer, schedule, { warmupSteps, totalSteps: Math.max(totalSteps, warmupSteps + 1), minLrRatio: o.minLrRatio });
  defaultGenerator.manualSeed(o.seed ?? 0);

  const state: TrainState = { step: 0, totalSteps, epoch: 0, batchIndex: 0, bestValLoss: null, bestStep: null, badEvals: 0, tokensSeen: 0, shouldStop: false };
  let trainLoss: LossPoint[] = [];
  let valLoss: LossPoint[] = [];
  let best: Map<Tensor, Tensor> | null = null;
  const restoreBest = o.earlyStopping ? (o.earlyStopping.restoreBest ?? true) : false;
  let resumedFrom: string | null = null;

  // ---- resume ----
  if (o.resume) {
    const ck = loadCheckpoint(typeof o.resume === "string" ? o.resume : ckptDir!);
    resumedFrom = ck.path;
    weights.load(Object.fromEntries(Object.entries(ck.weights).map(([k, e]) => [k, tensorOf(e, k)])));
    if (!ck.optimizer) throw new TrainError(`${ck.path}: the checkpoint has no optimizer state`);
    const os = ck.optimizer.state as { stepCount: number; groups: Record<string, Json>[]; keys: string[][] };
    const all = optimizer.paramGroups.flatMap((g) => g.params);
    if (os.keys.length !== all.length || os.groups.length !== optimizer.paramGroups.length) {
      throw new TrainError(`${ck.path}: optimizer state is for ${os.keys.length} tensors in ${os.groups.length} groups, this run trains ${all.length} in ${optimizer.paramGroups.length}`);
    }
    optimizer.stepCount = os.stepCount;
    os.groups.forEach((g, i) => Object.assign(optimizer.paramGroups[i]!, g));
    all.forEach((p, i) => {
      const keys = os.keys[i]!;
      if (keys.length) optimizer.state.set(p, Object.fromEntries(keys.map((k) => [k, tensorOf(ck.optimizer!.tensors[`${i}.${k}`]!, `${i}.${k}`)])));
      const b = ck.optimizer!.tensors[`best.${i}`];
      if (b) (best ??= new Map()).set(p, tensorOf(b, `best.${i}`));
    });
    scheduler.loadStateDict(ck.scheduler as { lastStep: number; baseLrs: number[] });
    defaultGenerator.setState(ck.rng as RngState);
    const ex = ck.extra as unknown as { state: TrainState; trainLoss: LossPoint[]; valLoss: LossPoint[] };
    Object.assign(state, ex.state, { totalSteps, shouldStop: false });
    trainLoss = ex.trainLoss;
    valLoss = ex.valLoss;
  }

  const tb = o.outDir ? new TfEventsWriter(path.join(o.outDir, "tb")) : null;
  const jsonl = o.outDir ? new JsonlLogger(path.join(o.outDir, "metrics.jsonl"), { append: resumedFrom !== null }) : null;
  const bar = new ProgressBar({ total: totalSteps, label: o.label ?? "train", mode: o.progress ?? (o.outDir ? "auto" : "off"), startStep: state.step });
  let lastCheckpoint: string | null = null;

  const saveCkpt = () => {
    const optTensors: TensorMap = {};
    const all = optimizer.paramGroups.flatMap((g) => g.params);
    const keys = all.map((p, i) => {
      const st = optimizer.state.get(p) ?? {};
      for (const [k, t] of Object.entries(st)) optTensors[`${i}.${k}`] = entryOf(t);
      const b = best?.get(p);
      if (b) optTensors[`best.${i}`] = entryOf(b);
      return Object.keys(st);
    });
    const groups = optimizer.paramGroups.map(({ params: _p, ...rest }) => rest as Json);
    const w: TensorMap = {};
    for (const [k, t] of Object.entries(weights.state())) w[k] = entryOf(t);
    lastCheckpoint = saveCheckpoint(
      ckptDir!,
      {
        step: state.step,
        epoch: state.epoch,
        weights: w,
        weightsFile: weights.file,
        optimizer: { tensors: optTensors, state: { stepCount: optimizer.stepCount, groups, keys } },
        scheduler: scheduler.stateDict(),
        rng: defaultGenerator.getState(),
        config: o.config,
        extra: { state: { ...state }, trainLoss, valLoss } as unknown as Json,
      },
      { keepLast: o.keepLast, metadata: { format: "pt" } },
    );
    callbacks.forEach((c) => c.onCheckpoint?.(state, lastCheckpoint!));
    bar.log(`checkpoint ${lastCheckpoint}`);
  };

  const runEval = () => {
    if (!o.val) return null;
    const r = evaluateLoss(model, o.val, o.loss, o.evalMaxBatches);
    const minDelta = o.earlyStopping?.minDelta ?? 0;
    const improved = state.bestValLoss === null || r.loss < state.bestValLoss - minDelta;
    if (improved) {
      state.bestValLoss = r.loss;
      state.bestStep = state.step;
      state.badEvals = 0;
      if (restoreBest) best = new Map(params.map((p) => [p, p.detach().clone()]));
    } else state.badEvals++;
    valLoss.push({ step: state.step, value: r.loss });
    tb?.addScalar("eval/loss", r.loss, state.step);
    tb?.addScalar("eval/perplexity", r.perplexity, state.step);
    jsonl?.log(state.step, "eval", { loss: r.loss, perplexity: r.perplexity, tokens: r.tokens });
    bar.log(`step ${state.step}: val loss ${r.loss.toFixed(4)}, ppl ${r.perplexity.toFixed(2)}${improved ? "" : ` (no improvement ${state.badEvals})`}`);
    const log = { step: state.step, loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, improved };
    callbacks.forEach((c) => c.onEval?.(state, log));
    if (o.earlyStopping && state.badEvals >= o.earlyStopping.patience) state.shouldStop = true;
    return r.loss;
  };

  model.train();
  callbacks.forEach((c) => c.onTrainBegin?.(state));
  const t0 = Date.now();
  let trainMs = 0;
  let tokensThisCall = 0;
  let stepsThisCall = 0;
  let stoppedEarly = false;
  let windowLoss = 0;
  let windowSteps = 0;
  let microDone = state.epoch * o.train.length + state.batchIndex;
  let finalVal: number | null = null;
  try {
    while (state.step < totalSteps && microDone < totalMicro) {
      const ts = Date.now();
      let sumLoss = 0;
      let nTok = 0;
      let inTok = 0;
      for (let k = 0; k < accum && microDone < totalMicro; k++) {
        const batch = o.train.get(state.epoch, state.batchIndex);
        if (++state.batchIndex >= o.train.length) {
          state.epoch++;
          state.batchIndex = 0;
        }
        microDone++;
        const out = o.loss(model, batch);
        inTok += out.inputTokens ?? out.nTokens;
        if (out.nTokens === 0) continue;
        const lv = out.loss.item();
        if (!Number.isFinite(lv)) throw new TrainError(`step ${state.step + 1}: the loss is ${lv}`);
        mul(out.loss, out.nTokens).backward();
        sumLoss += lv * out.nTokens;
        nTok += out.nTokens;
      }
      let gradNorm = 0;
      if (nTok > 0) {
        const extra = hooks.extraLoss?.() ?? null;
        if (extra) mul(extra, nTok).backward();
        noGrad(() => params.forEach((p) => p.grad?.mul_(1 / nTok)));
        gradNorm = maxGradNorm > 0 ? clipGradNorm(params, maxGradNorm) : 0;
        optimizer.step();
      }
      const lr = optimizer.paramGroups[0]!.lr;
      state.step++;
      hooks.onOptimizerStep?.(state.step, totalSteps);
      optimizer.zeroGrad();
      scheduler.step();
      state.tokensSeen += inTok;
      tokensThisCall += inTok;
      stepsThisCall++;
      trainMs += Date.now() - ts;
      const loss = nTok > 0 ? sumLoss / nTok : NaN;
      trainLoss.push({ step: state.step, value: loss });
      windowLoss += loss;
      windowSteps++;
      if (state.step % logEvery === 0 || state.step === totalSteps) {
        const l = windowLoss / windowSteps;
        tb?.addScalar("train/loss", l, state.step);
        tb?.addScalar("train/lr", lr, state.step);
        tb?.addScalar("train/grad_norm", gradNorm, state.step);
        jsonl?.log(state.step, "train", { loss: l, lr, grad_norm: gradNorm, tokens_per_sec: trainMs > 0 ? (1000 * tokensThisCall) / trainMs : 0, epoch: state.epoch + state.batchIndex / o.train.length });
        windowLoss = 0;
        windowSteps = 0;
      }
      bar.update(state.step, { loss, tokens: inTok, extra: { lr } });
      const log: StepLog = { step: state.step, loss, lr, gradNorm, tokens: inTok, epoch: state.epoch };
      callbacks.forEach((c) => c.onStep?.(state, log));
      const last = state.step >= totalSteps || microDone >= totalMicro;
      if (evalEvery > 0 && state.step % evalEvery === 0 && !last) runEval();
      if (state.shouldStop) {
        stoppedEarly = o.earlyStopping !== undefined && state.badEvals >= o.earlyStopping.patience;
        break;
      }
      if (ckptEvery > 0 && state.step % ckptEvery === 0 && !last) saveCkpt();
      if (o.stopAfterSteps !== undefined && stepsThisCall >= o.stopAfterSteps && !last) {
        if (ckptEvery > 0 && state.step % ckptEvery !== 0) saveCkpt();
        return finish(false);
      }
    }
    if (!stoppedEarly) finalVal = runEval();
    else finalVal = valLoss[valLoss.length - 1]?.value ?? null;
    if (restoreBest && best) {
      noGrad(() => params.forEach((p) => p.copy_(best!.get(p)!)));
      finalVal = state.bestValLoss;
    }
    if (ckptEvery > 0) saveCkpt();
    return await finish(true);
  } finally {
    bar.stop();
    tb?.close();
    jsonl?.close();
  }

  async function finish(done: boolean): Promise<TrainResult> {
    let lossCurvePath: string | null = null;
    if (o.outDir && done) {
      bar.stop();
      lossCurvePath = path.join(o.outDir, "loss.png");
      const series = [{ name: "train", points: trainLoss.filter((p) => Number.isFinite(p.value)) }];
      if (valLoss.length) series.push({ name: "validation", points: valLoss });
      await writeLossCurve(lossCurvePath, series, { title: `${o.label ?? "training"} loss`, xLabel: "step", yLabel: "loss" });
    }
    callbacks.forEach((c) => c.onTrainEnd?.(state));
    return {
      steps: state.step,
      totalSteps,
      trainLoss,
      valLoss,
      bestValLoss: state.bestValLoss,
      bestStep: state.bestStep,
      finalValLoss: finalVal,
      stoppedEarly,
      resumedFrom,
      tokensSeen: state.tokensSeen,
      tokensPerSec: trainMs > 0 ? (1000 * tokensThisCall) / trainMs : 0,
      seconds: (Date.now() - t0) / 1000,
      lossCurvePath,
      lastCheckpoint,
    };
  }
}
