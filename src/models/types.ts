/**
 * What every model shares: the config fields graft relies on, the causal-LM interface generation
 * code runs against, the KV cache, and the losses of the model heads (HF's shifted causal-LM loss,
 * masked-LM and sequence-classification losses).
 */
import type { DType } from "../core/dtype.ts";
import { GraftError, ShapeError, fmtShape } from "../core/errors.ts";
import type { Module } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import { Tensor, isGradEnabled, noGrad } from "../tensor/index.ts";

export class ModelError extends GraftError {
  override name = "ModelError";
}

/** config.json: keys kept verbatim (snake_case); each architecture types its own fields. */
export interface ModelConfig {
  model_type: string;
  vocab_size: number;
  max_position_embeddings?: number;
  architectures?: string[];
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  tie_word_embeddings?: boolean;
  torch_dtype?: string;
  [key: string]: unknown;
}

/** A model built by the registry: any module that carries its config. */
export type Model = Module & { readonly config: ModelConfig };

export interface CreateOptions {
  /** Seed of the random init (createModel only; default 0). */
  seed?: number;
  /** Parameter dtype; compute runs in it, logits come back float32 (default float32). */
  dtype?: DType;
  /** The head to build when config.architectures does not say (e.g. "BertForSequenceClassification"). */
  architecture?: string;
  /**
   * "nf4": store every Linear but the output layer (lm_head) as a 4-bit NF4Linear with
   * double-quantized absmax, as transformers' `load_in_4bit=True, bnb_4bit_quant_type="nf4"`. Each
   * layer is quantized right after its weight is initialised or read, so the full-precision model
   * never exists at once. Compute runs in `dtype`; embeddings, norms, biases and lm_head stay in it.
   */
  quantize?: "nf4";
  /** NF4 block size with quantize (bnb_4bit_blocksize; default 64). */
  quantBlockSize?: number;
}

/** How the registry builds and loads one model_type. */
export interface ModelEntry {
  /** Fills HF defaults into a raw config.json object (keys verbatim); validates it. */
  config(raw: Record<string, unknown>): ModelConfig;
  /** A model with (placeholder) weights of the given dtype, for loading. */
  build(config: ModelConfig, opts: CreateOptions): Model;
  /** A model with HF's random init, for pretraining. */
  create(config: ModelConfig, opts: CreateOptions): Model;
  /** HF checkpoint tensors → this module's keys and layouts (tied weights, transposes, renames). */
  sanitize(weights: Map<string, Tensor>, config: ModelConfig, model: Model): Map<string, Tensor>;
  /**
   * True when sanitize maps every tensor on its own (no output depends on another input key), so a
   * loader may feed it one tensor at a time and never hold the whole checkpoint (quantized loads).
   */
  sanitizesPerTensor?: boolean;
  /** The inverse of sanitize for saving: module state → HF checkpoint keys and layouts. */
  toCheckpoint?(state: Map<string, Tensor>, config: ModelConfig): Map<string, Tensor>;
}

export interface ForwardOptions {
  cache?: KVCache;
  /** [B, S_past + T]: 1 = keep, 0 = padding. Positions then default to cumsum(mask) - 1 (as HF generate). */
  attentionMask?: Tensor;
  /** int32 [B, T] (or [T]). Default: past length + arange(T), or from attentionMask. */
  positionIds?: Tensor;
  /**
   * false: logits stay in the compute dtype (bfloat16 models: bfloat16 [B, T, V]) instead of being
   * upcast to float32 — for losses that upcast inside, as causalLMLoss does (HF's loss upcasts the
   * same way). Saves the float32 [B, T, V] copy; a model may ignore it and return float32. Default true.
   */
  upcastLogits?: boolean;
  /**
   * Logits of only the last N positions ([B, N, V]; HF's logits_to_keep): generation needs the last
   * one, and a 128-token prompt then skips 127 rows of the head. A model may ignore it and return
   * all T positions. Default: every position.
   */
  logitsToKeep?: number;
  /**
   * Run a no-grad decode step (a few new positions, a preallocated cache) as one fused kernel per
   * layer where the model has one (default true); false runs every op separately, as training does.
   */
  fused?: boolean;
}

/** A decoder-only language model (module paths = HF checkpoint keys). */
export interface CausalLM extends Module {
  readonly config: ModelConfig;
  /** inputIds int32 [B, T] → logits float32 [B, T, V]. Appends this step's keys/values to opts.cache. */
  forward(inputIds: Tensor, opts?: ForwardOptions): Tensor;
  /** An empty cache for `batch` sequences; `maxLength` preallocates (writes in place, no re-allocation). */
  newCache(batch: number, maxLength?: number): KVCache;
}

export function isCausalLM(m: unknown): m is CausalLM {
  return typeof m === "object" && m !== null && typeof (m as CausalLM).newCache === "function" && typeof (m as CausalLM).forward === "function";
}

/**
 * Per-layer keys and values [B, Hkv, S, D]. `append` adds this step's [B, Hkv, T, D] and returns
 * the full [B, Hkv, S + T, D]. Without a capacity the cache grows by concatenation (and keeps the
 * autograd graph, e.g. for prefix tuning); with one, it writes into preallocated buffers.
 */
export class KVCache {
  private readonly keys: (Tensor | null)[];
  private readonly values: (Tensor | null)[];
  /** Positions filled in each layer's preallocated buffer (only with a capacity). */
  private readonly filled: number[];

  constructor(
    readonly numLayers: number,
    readonly batch: number,
    readonly numKvHeads: number,
    readonly headDim: number,
    readonly capacity?: number,
    readonly dtype: DType = "float32",
  ) {
    this.keys = new Array<Tensor | null>(numLayers).fill(null);
    this.values = new Array<Tensor | null>(numLayers).fill(null);
    this.filled = new Array<number>(numLayers).fill(0);
  }

  /** Cached positions (of layer 0; every layer has the same after a full forward). */
  get length(): number {
    return this.layerLength(0);
  }

  layerLength(layer: number): number {
    if (this.capacity !== undefined) return this.filled[layer]!;
    return this.keys[layer]?.shape[2] ?? 0;
  }

  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (layer < 0 || layer >= this.numLayers) throw new ModelError(`KVCache.append: layer ${layer} out of range for ${this.numLayers} layers`);
    const want = [this.batch, this.numKvHeads, k.shape[2]!, this.headDim];
    if (k.ndim !== 4 || !k.shape.every((d, i) => d === want[i]) || !v.shape.every((d, i) => d === k.shape[i])) {
      throw new ShapeError("KVCache.append", `expected k, v of shape ${fmtShape(want)}, got ${fmtShape(k.shape)} and ${fmtShape(v.shape)}`);
    }
    if (this.capacity === undefined || (isGradEnabled() && (k.requiresGrad || v.requiresGrad))) return this.appendCat(layer, k, v);
    const S = this.filled[layer]!;
    const Tn = k.shape[2]!;
    if (S + Tn > this.capacity) {
      throw new ModelError(`KVCache.append: ${S} cached + ${Tn} new positions exceed the capacity of ${this.capacity}`);
    }
    const [kb, vb] = this.buffers(layer, k.dtype);
    noGrad(() => {
      kb.slice(2, S, S + Tn).copy_(k);
      vb.slice(2, S, S + Tn).copy_(v);
    });
    this.filled[layer] = S + Tn;
    return [kb.slice(2, 0, S + Tn), vb.slice(2, 0, S + Tn)];
  }

  /**
   * For a fused decode step that writes its keys and values itself (Backend.decoderLayer): the
   * layer's preallocated buffers [B, Hkv, capacity, D] in `dtype` and the positions already filled;
   * the caller writes positions past .. past + Tn - 1, then calls commit(layer, Tn). Null when the
   * cache has no capacity, Tn positions do not fit, or the layer holds another dtype: append instead.
   */
  slots(layer: number, Tn: number, dtype: DType): { k: Tensor; v: Tensor; past: number } | null {
    if (layer < 0 || layer >= this.numLayers) throw new ModelError(`KVCache.slots: layer ${layer} out of range for ${this.numLayers} layers`);
    const past = this.layerLength(layer);
    if (this.capacity === undefined || past + Tn > this.capacity) return null;
    const held = this.keys[layer];
    if (held && held.dtype !== dtype) return null;
    const [k, v] = this.buffers(layer, dtype);
    return { k, v, past };
  }

  /** Records Tn positions written into the buffers slots() returned. */
  commit(layer: number, Tn: number): void {
    if (this.capacity === undefined || this.filled[layer]! + Tn > this.capacity) {
      throw new ModelError(`KVCache.commit: ${this.layerLength(layer)} cached + ${Tn} new positions exceed the capacity of ${this.capacity ?? "an unbounded cache"}`);
    }
    this.filled[layer] = this.filled[layer]! + Tn;
  }

  /** A layer's preallocated buffers, allocated on first use (keeping what an append under autograd concatenated). */
  private buffers(layer: number, dtype: DType): [Tensor, Tensor] {
    const prevK = this.keys[layer];
    if (!prevK || prevK.shape[2] !== this.capacity) {
      // First append, or the layer grew by concatenation (an append under autograd): (re)allocate.
      const S = this.filled[layer]!;
      const shape = [this.batch, this.numKvHeads, this.capacity!, this.headDim];
      const kb = Tensor.empty(shape, dtype);
      const vb = Tensor.empty(shape, dtype);
      const prevV = this.values[layer];
      if (prevK && prevV && S > 0) {
        noGrad(() => {
          kb.slice(2, 0, S).copy_(prevK.slice(2, 0, S));
          vb.slice(2, 0, S).copy_(prevV.slice(2, 0, S));
        });
      }
      this.keys[layer] = kb;
      this.values[layer] = vb;
    }
    return [this.keys[layer]!, this.values[layer]!];
  }

  private appendCat(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const pk = this.keys[layer];
    const pv = this.values[layer];
    if (this.capacity !== undefined && this.layerLength(layer) + k.shape[2]! > this.capacity) {
      throw new ModelError(`KVCache.append: ${this.layerLength(layer)} cached + ${k.shape[2]} new positions exceed the capacity of ${this.capacity}`);
    }
    const nk = pk ? T.cat([this.view(pk, layer), k], 2) : k;
    const nv = pv ? T.cat([this.view(pv, layer), v], 2) : v;
    this.keys[layer] = nk;
    this.values[layer] = nv;
    if (this.capacity !== undefined) this.filled[layer] = nk.shape[2]!;
    return [nk, nv];
  }

  /** The filled part of a layer's stored tensor. */
  private view(t: Tensor, layer: number): Tensor {
    return this.capacity !== undefined && t.shape[2] !== this.filled[layer] ? t.slice(2, 0, this.filled[layer]) : t;
  }

  /** Keys and values of a layer ([B, Hkv, S, D]), or null before the first append. */
  get(layer: number): [Tensor, Tensor] | null {
    const k = this.keys[layer];
    const v = this.values[layer];
    return k && v ? [this.view(k, layer), this.view(v, layer)] : null;
  }

  /** Keeps the first `length` positions (e.g. to reuse a shared prompt prefix). */
  crop(length: number): void {
    if (length < 0 || length > this.length) throw new ModelError(`KVCache.crop: length ${length} out of range [0, ${this.length}]`);
    for (let l = 0; l < this.numLayers; l++) {
      if (this.capacity !== undefined) this.filled[l] = Math.min(this.filled[l]!, length);
      else {
        const k = this.keys[l];
        const v = this.values[l];
        if (k && v) {
          this.keys[l] = k.slice(2, 0, length);
          this.values[l] = v.slice(2, 0, length);
        }
      }
    }
  }

  reset(): void {
    this.keys.fill(null);
    this.values.fill(null);
    this.filled.fill(0);
  }

  /** An independent copy (same capacity), detached from any autograd graph. */
  clone(): KVCache {
    const c = new KVCache(this.numLayers, this.batch, this.numKvHeads, this.headDim, this.capacity, this.dtype);
    for (let l = 0; l < this.numLayers; l++) {
      const k = this.keys[l];
      const v = this.values[l];
      c.keys[l] = k ? k.detach().clone() : null;
      c.values[l] = v ? v.detach().clone() : null;
      c.filled[l] = this.filled[l]!;
    }
    return c;
  }
}

/** int32 ids of a [B, T] (or [T]) tensor and its batch/sequence sizes. */
export function idsShape(op: string, inputIds: Tensor): [number, number] {
  if (inputIds.dtype !== "int32" && inputIds.dtype !== "int64") throw new ShapeError(op, `input ids must be int32 or int64, got ${inputIds.dtype}`);
  if (inputIds.ndim !== 2) throw new ShapeError(op, `input ids must be [B, T], got ${fmtShape(inputIds.shape)}`);
  return [inputIds.shape[0]!, inputIds.shape[1]!];
}

/** The attention mask as 0/1 bytes [B, S], checked against the expected total length. */
export function keyMaskOf(op: string, mask: Tensor | undefined, B: number, S: number): Uint8Array | null {
  if (!mask) return null;
  if (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== S) {
    throw new ShapeError(op, `attentionMask must be [B=${B}, past + T=${S}], got ${fmtShape(mask.shape)}`);
  }
  return Uint8Array.from(mask.toArray(), (x) => (x !== 0 ? 1 : 0));
}

/**
 * Position ids [B, T] as int32: given ones are checked; else from the mask as HF generate does
 * (cumsum(mask) - 1, padding set to 1), taking the last T columns; else past + arange(T).
 */
export function positionIdsOf(op: string, B: number, Tn: number, past: number, keyMask: Uint8Array | null, given?: Tensor): Tensor {
  if (given) {
    if (given.numel !== B * Tn && given.numel !== Tn) {
      throw new ShapeError(op, `positionIds must be [B=${B}, T=${Tn}] or [T], got ${fmtShape(given.shape)}`);
    }
    const c = given.dtype === "int32" ? given.contiguous() : given.to("int32");
    return given.numel === Tn && B > 1 ? c.reshape([1, Tn]).expand([B, Tn]).contiguous() : c.reshape([B, Tn]);
  }
  const pos = new Int32Array(B * Tn);
  const S = past + Tn;
  for (let b = 0; b < B; b++) {
    if (keyMask) {
      let c = 0;
      for (let s = 0; s < S; s++) {
        const m = keyMask[b * S + s]!;
        c += m;
        if (s >= past) pos[b * Tn + s - past] = m ? c - 1 : 1;
      }
    } else for (let t = 0; t < Tn; t++) pos[b * Tn + t] = past + t;
  }
  return T.fromArray(pos, [B, Tn]);
}

/**
 * HF's causal-LM loss: logits [B, T, V] at position t predict labels[t + 1]; labels -100 are
 * ignored; mean over the predicted tokens, computed in float32 (bfloat16 logits are read as they are
 * and upcast inside the kernel; the gradient comes back bfloat16).
 */
export function causalLMLoss(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  if (logits.ndim !== 3 || labels.ndim !== 2 || labels.shape[0] !== logits.shape[0] || labels.shape[1] !== logits.shape[1]) {
    throw new ShapeError("causalLMLoss", `logits ${fmtShape(logits.shape)} need labels [B, T], got ${fmtShape(labels.shape)}`);
  }
  const [B, Tn] = labels.shape as [number, number];
  const src = labels.to("int32").data() as Int32Array;
  const shifted = new Int32Array(B * Tn).fill(ignoreIndex);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < Tn; t++) shifted[b * Tn + t] = src[b * Tn + t + 1]!;
  return T.crossEntropy(lossInput(logits), T.fromArray(shifted, [B, Tn]), { ignoreIndex });
}

/** bfloat16 logits go to crossEntropy as they are (its kernels compute in float32); others upcast to float32. */
function lossInput(logits: Tensor): Tensor {
  return logits.dtype === "bfloat16" ? logits : logits.to("float32");
}

/** Cross-entropy over [..., V] logits with labels -100 ignored (no shift): masked-LM and token losses. */
export function maskedLMLoss(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  return T.crossEntropy(lossInput(logits), labels.to("int32"), { ignoreIndex });
}
