/**
 * What every PEFT method gives the trainer, generation and export: a causal LM that wraps a frozen
 * base, knows which tensors train, and saves itself in the Hugging Face PEFT layout.
 */
import { GraftError } from "../core/errors.ts";
import type { CausalLM } from "../models/index.ts";
import type { Tensor } from "../tensor/index.ts";

export class PeftError extends GraftError {
  override name = "PeftError";
}

/** A base model with an adapter. forward() returns logits for the same positions as its input ids. */
export interface PeftModel extends CausalLM {
  readonly base: CausalLM;
  /** Registered method name ("lora", "ia3", ...). */
  readonly method: string;
  /** What adapter_config.json holds (PEFT's keys, snake_case). */
  readonly peftConfig: Record<string, unknown>;
  /** The tensors that train; everything of the base stays frozen. */
  trainableParameters(): Tensor[];
  /** Writes adapter_config.json + adapter_model.safetensors into dir, atomically. */
  save(dir: string): void;
  /** Folds the adapter into a plain model, where the method allows it. */
  merge?(): CausalLM;
  /** A term the trainer adds to the loss (e.g. AdaLoRA's orthogonal regularisation). */
  extraLoss?(): Tensor | null;
  /** Called by the trainer after each optimizer step, before gradients are zeroed (AdaLoRA's budget). */
  onOptimizerStep?(step: number, totalSteps: number): void;
}

/** One PEFT method: how it wraps a model, and how it reads a saved adapter back. */
export interface PeftMethod {
  name: string;
  /** PEFT's `peft_type` values this method reads from adapter_config.json (e.g. "LORA"). */
  peftTypes: string[];
  apply(model: CausalLM, options: Record<string, unknown>): PeftModel;
  /** config = adapter_config.json; weights = adapter_model.safetensors, keys as PEFT writes them. */
  load(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): PeftModel;
}
