/** The trainer's swappable parts (STYLE.md rule 7): loss, batches and callbacks. */
import { GraftError } from "../core/errors.ts";
import type { Tensor } from "../tensor/index.ts";

export class TrainError extends GraftError {
  override name = "TrainError";
}

/** What a loss function returns: the mean loss of the batch and the number of tokens it averages over. */
export interface LossOutput {
  loss: Tensor;
  /** Tokens (targets) the mean is over; gradient accumulation weights batches by it. */
  nTokens: number;
  /** Input tokens processed (for tokens/s; default nTokens). */
  inputTokens?: number;
}

/** Any model with a forward over ids (a CausalLM, a PeftModel, BertForMaskedLM...). */
export interface ForwardModel {
  forward(inputIds: Tensor, opts?: Record<string, unknown>): Tensor;
}

export type LossFn<M, B> = (model: M, batch: B) => LossOutput;

export interface TrainState {
  /** Optimizer steps done. */
  step: number;
  totalSteps: number;
  /** Epoch and batch index of the next batch to read. */
  epoch: number;
  batchIndex: number;
  bestValLoss: number | null;
  bestStep: number | null;
  /** Evaluations without improvement in a row (early stopping). */
  badEvals: number;
  /** Input tokens seen so far. */
  tokensSeen: number;
  /** Set to true (e.g. by a callback) to end training after this step. */
  shouldStop: boolean;
}

export interface StepLog {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Input tokens in this step. */
  tokens: number;
  epoch: number;
}

export interface EvalLog {
  step: number;
  loss: number;
  perplexity: number;
  tokens: number;
  improved: boolean;
}

export interface Callback {
  onTrainBegin?(state: TrainState): void;
  onStep?(state: TrainState, log: StepLog): void;
  onEval?(state: TrainState, log: EvalLog): void;
  onCheckpoint?(state: TrainState, dir: string): void;
  onTrainEnd?(state: TrainState): void;
}
