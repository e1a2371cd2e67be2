/**
 * The PeftModel of the prompt-learning methods (PEFT's PromptLearningConfig family): a prompt
 * encoder produces `num_virtual_tokens` vectors that are either prepended to the input embeddings
 * (prompt tuning, P-tuning) or written into every layer's KV cache as key/value prefixes (prefix
 * tuning / P-tuning v2). forward() returns logits for the caller's positions only; masks and
 * position ids the caller passes cover its own tokens, the virtual ones are added here (positions
 * shift by num_virtual_tokens, as HF does with PEFT's prompt). Saved as PEFT saves them: one tensor
 * `prompt_embeddings` (the encoder's output), which a loaded adapter then uses as it is.
 */
import { ShapeError } from "../core/errors.ts";
import { type CausalLM, type ForwardOptions, type KVCache, type Qwen2Config } from "../models/index.ts";
import { Embedding, Module } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { writeAdapter } from "./adapterIO.ts";
import { COMMON_CONFIG_KEYS, int } from "./targets.ts";
import { PeftError, type PeftModel } from "./types.ts";

/** Produces the virtual tokens' vectors, [P, dim]. */
export interface PromptEncoder extends Module {
  forward(): Tensor;
}

/** A loaded adapter's fixed prompt (PEFT's inference mode: `prompt_encoder.embedding.weight`). */
export class StoredPrompt extends Module implements PromptEncoder {
  weight: Tensor;
  constructor(embeddings: Tensor, trainable = false) {
    super();
    this.weight = this.param("weight", embeddings.to("float32").contiguous(), trainable);
  }
  forward(): Tensor {
    return this.weight;
  }
}

export const PROMPT_LEARNING_KEYS = [
  ...COMMON_CONFIG_KEYS, "num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_attention_heads", "num_layers", "seed",
] as const;

/** Shape facts of the base every prompt method needs (PEFT `_prepare_prompt_learning_config`). */
export interface ModelDims {
  numLayers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export function modelDims(model: CausalLM, method: string): ModelDims {
  const c = model.config as Partial<Qwen2Config> & Record<string, unknown>;
  const numLayers = (c.num_hidden_layers ?? c["n_layer"]) as number | undefined;
  const hidden = (c.hidden_size ?? c["n_embd"]) as number | undefined;
  const heads = (c.num_attention_heads ?? c["n_head"]) as number | undefined;
  if (!numLayers || !hidden || !heads) throw new PeftError(`${method}: config of "${c.model_type}" lacks the layer count, hidden size or head count`);
  const kvHeads = c.num_key_value_heads ?? heads;
  return { numLayers, hidden, heads, kvHeads, headDim: c.head_dim ?? hidden / heads };
}

/**
 * The fields of PEFT's PromptLearningConfig that every prompt-learning adapter_config.json starts with;
 * each method adds its own after them (and `revision: null` last, as PEFT writes it).
 */
export function promptLearningConfigJson(
  peftType: string,
  c: { base_model_name_or_path?: string | null; num_virtual_tokens: number },
  dims: { tokenDim: number; heads: number; numLayers: number },
): Record<string, unknown> {
  return {
    peft_type: peftType,
    task_type: "CAUSAL_LM",
    base_model_name_or_path: c.base_model_name_or_path,
    inference_mode: true,
    num_virtual_tokens: c.num_virtual_tokens,
    token_dim: dims.tokenDim,
    num_transformer_submodules: 1,
    num_attention_heads: dims.heads,
    num_layers: dims.numLayers,
  };
}

export function numVirtualTokens(opts: Record<string, unknown>, method: string): number {
  const p = int(opts, "num_virtual_tokens", 20, method);
  const sub = opts["num_transformer_submodules"];
  if (sub !== undefined && sub !== null && sub !== 1) throw new PeftError(`${method}: num_transformer_submodules=${JSON.stringify(sub)}: only decoder-only models (1) are supported`);
  return p;
}

/** The model's input embedding: the Embedding of vocab_size rows. */
export function inputEmbedding(model: CausalLM, method: string): Embedding {
  for (const [, m] of model.namedModules()) if (m instanceof Embedding && m.numEmbeddings === model.config.vocab_size) return m;
  throw new PeftError(`${method}: ${model.constructor.name} has no input embedding of ${model.config.vocab_size} rows`);
}

export type PromptKind = "embeddings" | "prefix";

export class PromptLearningModel extends Module implements PeftModel {
  readonly numVirtualTokens: number;
  private readonly embed: Embedding | null;
  private readonly dims: ModelDims;

  constructor(
    readonly base: CausalLM,
    readonly method: string,
    readonly peftConfig: Record<string, unknown>,
    readonly kind: PromptKind,
    readonly prompt_encoder: PromptEncoder,
    numVirtualTokens: number,
  ) {
    super();
    this.module("base_model", base);
    this.module("prompt_encoder", prompt_encoder);
    base.freeze();
    this.train(base.training);
    this.numVirtualTokens = numVirtualTokens;
    this.dims = modelDims(base, method);
    this.embed = kind === "embeddings" ? inputEmbedding(base, method) : null;
  }

  get config() {
    return this.base.config;
  }

  override trainableParameters(): Tensor[] {
    return this.prompt_encoder.parameters().filter((p) => p.requiresGrad);
  }

  /** The encoder's output, [P, C] (embeddings) or [P, layers·2·kv_heads·head_dim] (prefix). */
  promptEmbeddings(): Tensor {
    return this.prompt_encoder.forward();
  }

  newCache(batch: number, maxLength?: number): KVCache {
    return this.base.newCache(batch, maxLength === undefined ? undefined : maxLength + this.numVirtualTokens);
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    if (inputIds.ndim !== 2) throw new ShapeError(this.method, `input ids must be [B, T], got [${inputIds.shape.join(", ")}]`);
    const [B, Tn] = inputIds.shape as [number, number];
    const P = this.numVirtualTokens;
    const past = opts.cache?.length ?? 0;
    const first = past === 0;
    const attentionMask = opts.attentionMask ? T.cat([T.ones([B, P], { dtype: opts.attentionMask.dtype }), opts.attentionMask], 1) : undefined;
    const given = opts.positionIds;
    let positionIds = given ? T.add(given.numel === Tn ? given.reshape([1, Tn]).expand([B, Tn]) : given.reshape([B, Tn]), P).to("int32") : undefined;
    if (this.kind === "prefix") {
      const cache = opts.cache ?? this.base.newCache(B);
      if (first) this.writePrefix(cache, B);
      return this.base.forward(inputIds, { cache, attentionMask, positionIds });
    }
    if (!first) return this.base.forward(inputIds, { ...opts, attentionMask, positionIds });
    // Prefill: P placeholder ids whose embeddings the virtual tokens replace.
    const ids = T.cat([T.zeros([B, P], { dtype: "int32" }), inputIds.to("int32")], 1);
    if (positionIds) positionIds = T.cat([T.arange(0, P, 1, { dtype: "int32" }).reshape([1, P]).expand([positionIds.shape[0]!, P]), positionIds], 1);
    const logits = this.withVirtualTokens(B, () => this.base.forward(ids, { cache: opts.cache, attentionMask, positionIds }));
    return logits.slice(1, P, P + Tn);
  }

  /** Runs fn with the input embedding putting the virtual tokens in front of the real ones. */
  private withVirtualTokens<R>(B: number, fn: () => R): R {
    const emb = this.embed!;
    const P = this.numVirtualTokens;
    const prompt = this.promptEmbeddings();
    const own = Object.getOwnPropertyDescriptor(emb, "forward");
    emb.forward = (ids: Tensor) => {
      const real = T.embedding(ids.slice(1, P), emb.weight);
      const virt = prompt.to(real.dtype).unsqueeze(0).expand([B, P, prompt.shape[1]!]);
      return T.cat([virt, real], 1);
    };
    try {
      return fn();
    } finally {
      if (own) Object.defineProperty(emb, "forward", own);
      else delete (emb as { forward?: unknown }).forward;
    }
  }

  /** Appends every layer's key/value prefix [B, kv_heads, P, head_dim] to an empty cache. */
  private writePrefix(cache: KVCache, B: number): void {
    const { numLayers, kvHeads, headDim } = this.dims;
    const P = this.numVirtualTokens;
    const dtype = cache.dtype;
    const kv = this.promptEmbeddings().reshape([P, numLayers * 2, kvHeads, headDim]);
    for (let l = 0; l < numLayers; l++) {
      const part = (j: number) => kv.select(1, 2 * l + j).transpose(0, 1).unsqueeze(0).expand([B, kvHeads, P, headDim]).to(dtype);
      cache.append(l, part(0), part(1));
    }
  }

  save(dir: string): void {
    writeAdapter(dir, this.peftConfig, new Map([["prompt_embeddings", T.noGrad(() => this.promptEmbeddings().detach().contiguous())]]));
  }
}

/** Reads `prompt_embeddings` [P, dim] of a saved prompt-learning adapter, checking its shape. */
export function storedPromptEmbeddings(weights: Map<string, Tensor>, P: number, dim: number, method: string): Tensor {
  const t = weights.get("prompt_embeddings");
  const extra = [...weights.keys()].filter((k) => k !== "prompt_embeddings");
  if (!t) throw new PeftError(`${method}: adapter_model.safetensors lacks "prompt_embeddings"${extra.length ? ` (has ${extra.join(", ")})` : ""}`);
  if (extra.length) throw new PeftError(`${method}: unexpected keys in adapter_model.safetensors: ${extra.join(", ")}`);
  if (t.ndim !== 2 || t.shape[0] !== P || t.shape[1] !== dim) throw new PeftError(`${method}: prompt_embeddings is [${t.shape.join(", ")}], expected [${P}, ${dim}]`);
  return t;
}
