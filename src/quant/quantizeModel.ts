/**
 * quantizeModel: swaps a model's Linear layers (and a tied output head) for QuantizedLinear, in
 * place, for inference — like llama.cpp's `quantize` or transformers' `load_in_8bit` over the same
 * module tree. Every replaced or skipped module is named in the returned report.
 */
import type { QuantType } from "../backend/Backend.ts";
import { bytesPerElement } from "../core/dtype.ts";
import { Embedding, Linear, type Module } from "../nn/index.ts";
import { QuantError } from "./QuantError.ts";
import { QUANT_BLOCK, QUANT_TYPES, isQuantType } from "./QuantizedWeight.ts";
import { QuantizedLinear } from "./QuantizedLinear.ts";

export interface QuantizeOptions {
  /** Quantize only the Linear modules whose path passes (default: every Linear). */
  filter?: (path: string) => boolean;
  /**
   * The output head: its type, or "none" to keep it in float. Default: q8_0 — for q4_0 models too,
   * as llama.cpp keeps output.weight at higher precision than the 4-bit layers. For a tied head
   * (no lm_head module, logits = h E^T) a QuantizedLinear over the embedding is installed as
   * `lm_head`; the embedding itself stays in float for the input lookup.
   */
  lmHead?: QuantType | "none";
}

export interface QuantizeReport {
  type: QuantType;
  /** Paths of the modules now QuantizedLinear ("lm_head" included when the head was quantized). */
  replaced: string[];
  /** Linear modules left in float, with why. */
  skipped: { path: string; reason: string }[];
  /** Weight bytes of the replaced modules before and after (what a forward streams). */
  bytesBefore: number;
  bytesAfter: number;
}

/** Replaces `old` by `next` as child `name` of `parent`: the registry entry and every field holding it. */
function replaceChild(parent: Module, name: string, old: Module, next: Module): void {
  parent.module(name, next);
  const fields = parent as unknown as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    const v = fields[key];
    if (v === old) fields[key] = next;
    else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) if (v[i] === old) v[i] = next;
  }
}

function headOf(model: Module): { tied: Embedding | null; hasHeadField: boolean } {
  const fields = model as unknown as Record<string, unknown>;
  if (!("lm_head" in fields) || fields["lm_head"] !== null) return { tied: null, hasHeadField: "lm_head" in fields };
  const vocab = (fields["config"] as { vocab_size?: unknown } | undefined)?.vocab_size;
  for (const [, m] of model.namedModules()) if (m instanceof Embedding && m.numEmbeddings === vocab) return { tied: m, hasHeadField: true };
  return { tied: null, hasHeadField: true };
}

/** Quantizes `model` in place to `type` and reports what changed. The model should be in eval mode. */
export function quantizeModel(model: Module, type: QuantType, opts: QuantizeOptions = {}): QuantizeReport {
  if (!isQuantType(type)) throw new QuantError(`quantizeModel: unknown type "${String(type)}" (expected ${QUANT_TYPES.join(" or ")})`);
  const headType = opts.lmHead ?? "q8_0";
  if (headType !== "none" && !isQuantType(headType)) {
    throw new QuantError(`quantizeModel: unknown lmHead type "${String(headType)}" (expected ${QUANT_TYPES.join(", ")} or none)`);
  }
  const report: QuantizeReport = { type, replaced: [], skipped: [], bytesBefore: 0, bytesAfter: 0 };
  const targets: [string, Module, string, Linear][] = [];
  for (const [path, m] of model.namedModules()) {
    for (const [name, child] of m.children()) {
      if (child instanceof Linear) targets.push([path ? `${path}.${name}` : name, m, name, child]);
    }
  }
  for (const [path, parent, name, lin] of targets) {
    const isHead = path === "lm_head";
    const t = isHead ? headType : type;
    if (t === "none") {
      report.skipped.push({ path, reason: "lmHead: none" });
      continue;
    }
    if (!isHead && opts.filter && !opts.filter(path)) {
      report.skipped.push({ path, reason: "excluded by filter" });
      continue;
    }
    if (lin.inFeatures % QUANT_BLOCK !== 0) {
      report.skipped.push({ path, reason: `in_features ${lin.inFeatures} is not a multiple of ${QUANT_BLOCK}` });
      continue;
    }
    const q = QuantizedLinear.fromLinear(lin, t, path);
    replaceChild(parent, name, lin, q);
    report.replaced.push(path);
    report.bytesBefore += lin.weight.numel * bytesPerElement(lin.weight.dtype);
    report.bytesAfter += q.weightBytes;
  }
  const { tied } = headOf(model);
  if (tied && headType !== "none") {
    if (tied.embeddingDim % QUANT_BLOCK !== 0) {
      report.skipped.push({ path: "lm_head", reason: `tied head: hidden size ${tied.embeddingDim} is not a multiple of ${QUANT_BLOCK}` });
    } else {
      const q = QuantizedLinear.fromWeight(tied.weight, headType, null, "lm_head (tied embedding)");
      model.module("lm_head", q);
      (model as unknown as Record<string, unknown>)["lm_head"] = q;
      report.replaced.push("lm_head");
      report.bytesBefore += tied.weight.numel * bytesPerElement(tied.weight.dtype);
      report.bytesAfter += q.weightBytes;
    }
  } else if (tied) {
    report.skipped.push({ path: "lm_head", reason: "lmHead: none (tied embedding kept in float)" });
  }
  // What stays in float (norms, embeddings, biases) moves to a block of its own, so the block the
  // replaced weights shared with it (a packed model's) is freed, not kept alive by a norm weight.
  if (report.replaced.length > 0) model.packParameters();
  return report;
}
