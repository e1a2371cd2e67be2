/**
 * Loss functions for train(): the shifted causal-LM loss (pretraining and SFT, where labels are -100
 * on prompt and padding positions) and BERT's masked-LM loss, both from src/models. A PEFT model's
 * extraLoss() is not added here: the trainer adds it once per optimizer step.
 */
import { causalLMLoss, maskedLMLoss } from "../models/index.ts";
import type { Tensor } from "../tensor/index.ts";
import type { ForwardModel, LossOutput } from "./types.ts";

export interface LMBatch {
  inputIds: Tensor;
  labels: Tensor;
  attentionMask?: Tensor;
}

/** True when every row of a 0/1 mask is ones then zeros (right padding: causal attention never sees the pads). */
function isRightPadded(mask: Int32Array, B: number, T: number): boolean {
  for (let b = 0; b < B; b++) {
    let seenZero = false;
    for (let t = 0; t < T; t++) {
      const m = mask[b * T + t]!;
      if (m === 0) seenZero = true;
      else if (seenZero) return false;
    }
  }
  return true;
}

function maskInfo(batch: LMBatch): { inputTokens: number; mask?: Tensor } {
  const [B, T] = batch.inputIds.shape as [number, number];
  if (!batch.attentionMask) return { inputTokens: B * T };
  const m = batch.attentionMask.to("int32").data() as Int32Array;
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i]! !== 0 ? 1 : 0;
  // Right padding needs no mask under causal attention (and skipping it keeps attention on the fast path).
  return { inputTokens: n, mask: n === m.length || isRightPadded(m, B, T) ? undefined : batch.attentionMask };
}

/** Next-token loss: logits at t predict labels[t + 1]; the mean is over labels that are not -100. */
export function causalLMLossFn(model: ForwardModel, batch: LMBatch): LossOutput {
  const { inputTokens, mask } = maskInfo(batch);
  const logits = model.forward(batch.inputIds, { upcastLogits: false, ...(mask ? { attentionMask: mask } : {}) });
  const [B, T] = batch.labels.shape as [number, number];
  const l = batch.labels.to("int32").data() as Int32Array;
  let nTokens = 0;
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) if (l[b * T + t] !== -100) nTokens++;
  return { loss: causalLMLoss(logits, batch.labels), nTokens, inputTokens };
}

/** Masked-LM loss: cross-entropy at the positions whose label is not -100 (no shift). */
export function maskedLMLossFn(model: ForwardModel, batch: LMBatch): LossOutput {
  const logits = model.forward(batch.inputIds, batch.attentionMask ? { attentionMask: batch.attentionMask } : {});
  const l = batch.labels.to("int32").data() as Int32Array;
  let nTokens = 0;
  for (let i = 0; i < l.length; i++) if (l[i] !== -100) nTokens++;
  return { loss: maskedLMLoss(logits, batch.labels), nTokens, inputTokens: batch.inputIds.numel };
}
