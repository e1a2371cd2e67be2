/** The output head of a causal LM: hidden states → logits, as both model families compute them. */
import { Linear } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { type ForwardOptions, ModelError } from "./types.ts";

/**
 * Logits of h [B, T, C] from `head` (or, tied, h @ embedding^T): only the last opts.logitsToKeep
 * positions when given, float32 unless opts.upcastLogits is false. A plain head without bias takes
 * matmulTo, which writes a bfloat16 model's float32 logits in the GEMM itself; a wrapped one (an
 * adapter) runs its own forward.
 */
export function lmLogits(h: Tensor, head: Linear | null, tied: Tensor, opts: ForwardOptions): Tensor {
  const keep = opts.logitsToKeep;
  const Tn = h.shape[1]!;
  if (keep !== undefined) {
    if (!Number.isInteger(keep) || keep < 1) throw new ModelError(`logitsToKeep must be a positive integer, got ${keep}`);
    if (keep < Tn) h = h.slice(1, Tn - keep, Tn);
  }
  const upcast = opts.upcastLogits !== false;
  if (head && (Object.getPrototypeOf(head) !== Linear.prototype || head.bias)) {
    const logits = head.forward(h);
    return upcast ? logits.to("float32") : logits;
  }
  const w = (head ? head.weight : tied).T;
  return upcast ? T.matmulTo(h, w, "float32") : T.matmul(h, w);
}
