/**
 * GPT-2 (model_type "gpt2"): learned position embeddings, pre-LayerNorm blocks, fused c_attn
 * projection, gelu_new MLP, lm_head tied to wte. Follows HF modeling_gpt2.py. HF stores the Conv1D
 * weights as [in, out]; here they are Linear [out, in], transposed in sanitize().
 */
import type { DType } from "../core/dtype.ts";
import { ShapeError } from "../core/errors.ts";
import { Generator } from "../core/rng.ts";
import { Dropout, type Embedding, LayerNorm, type Linear, Module, ModuleList, init } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { type CausalLM, type ForwardOptions, KVCache, type ModelConfig, type ModelEntry, ModelError, idsShape, keyMaskOf, positionIdsOf } from "./types.ts";
import { lmLogits } from "./head.ts";
import { embedding, initWeights, linear } from "./weights.ts";

// ---- Config ----------------------------------------------------------------------------------

export interface GPT2Config extends ModelConfig {
  n_embd: number;
  n_head: number;
  n_layer: number;
  n_positions: number;
  n_inner: number | null;
  activation_function: string;
  layer_norm_epsilon: number;
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
  initializer_range: number;
  tie_word_embeddings: boolean;
  /** HF attribute_map aliases, filled in so generic code can read them. */
  max_position_embeddings: number;
  hidden_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
}

export function gpt2Config(raw: Partial<GPT2Config>): GPT2Config {
  const cfg: GPT2Config = {
    ...raw,
    model_type: "gpt2",
    vocab_size: raw.vocab_size ?? 50257,
    n_embd: raw.n_embd ?? 768,
    n_head: raw.n_head ?? 12,
    n_layer: raw.n_layer ?? 12,
    n_positions: raw.n_positions ?? 1024,
    n_inner: raw.n_inner ?? null,
    activation_function: raw.activation_function ?? "gelu_new",
    layer_norm_epsilon: raw.layer_norm_epsilon ?? 1e-5,
    resid_pdrop: raw.resid_pdrop ?? 0.1,
    embd_pdrop: raw.embd_pdrop ?? 0.1,
    attn_pdrop: raw.attn_pdrop ?? 0.1,
    scale_attn_weights: raw.scale_attn_weights ?? true,
    scale_attn_by_inverse_layer_idx: raw.scale_attn_by_inverse_layer_idx ?? false,
    initializer_range: raw.initializer_range ?? 0.02,
    tie_word_embeddings: raw.tie_word_embeddings ?? true,
    bos_token_id: raw.bos_token_id ?? 50256,
    eos_token_id: raw.eos_token_id ?? 50256,
    max_position_embeddings: 0,
    hidden_size: 0,
    num_attention_heads: 0,
    num_hidden_layers: 0,
  };
  cfg.max_position_embeddings = cfg.n_positions;
  cfg.hidden_size = cfg.n_embd;
  cfg.num_attention_heads = cfg.n_head;
  cfg.num_hidden_layers = cfg.n_layer;
  if (cfg.n_embd % cfg.n_head !== 0) throw new ModelError(`n_embd ${cfg.n_embd} is not a multiple of n_head ${cfg.n_head}`);
  activation(cfg.activation_function); // validates
  return cfg;
}

/** HF ACT2FN names → the op. */
function activation(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      return (x) => T.gelu(x, "tanh");
    case "gelu":
      return (x) => T.gelu(x, "none");
    case "relu":
      return T.relu;
    case "silu":
    case "swish":
      return T.silu;
    default:
      throw new ModelError(`activation_function "${name}" is not supported`);
  }
}

interface LayerInputs {
  keyMask: Uint8Array | null;
  cache?: KVCache;
}

// ---- Attention -------------------------------------------------------------------------------

export class GPT2Attention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;
  readonly resid_dropout: Dropout;

  constructor(
    readonly config: GPT2Config,
    readonly layerIdx: number,
    dtype: DType,
  ) {
    super();
    const C = config.n_embd;
    this.c_attn = this.module("c_attn", linear(C, 3 * C, { dtype }));
    this.c_proj = this.module("c_proj", linear(C, C, { dtype }));
    this.resid_dropout = this.module("resid_dropout", new Dropout(config.resid_pdrop));
  }

  forward(x: Tensor, inp: LayerInputs): Tensor {
    const [B, Tn, C] = x.shape as [number, number, number];
    const H = this.config.n_head;
    const D = C / H;
    const [q, k0, v0] = this.c_attn
      .forward(x)
      .split(C, 2)
      .map((t) => t.reshape([B, Tn, H, D]).transpose(1, 2));
    let k = k0!;
    let v = v0!;
    if (inp.cache) [k, v] = inp.cache.append(this.layerIdx, k, v);
    let scale = this.config.scale_attn_weights ? 1 / Math.sqrt(D) : 1;
    if (this.config.scale_attn_by_inverse_layer_idx) scale /= this.layerIdx + 1;
    const o = T.scaledDotProductAttention(q!, k, v, { causal: true, scale, keyMask: inp.keyMask });
    return this.resid_dropout.forward(this.c_proj.forward(o.transpose(1, 2).reshape([B, Tn, C])));
  }
}

// ---- MLP -------------------------------------------------------------------------------------

export class GPT2MLP extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  readonly dropout: Dropout;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: GPT2Config, dtype: DType) {
    super();
    const C = config.n_embd;
    const inner = config.n_inner ?? 4 * C;
    this.c_fc = this.module("c_fc", linear(C, inner, { dtype }));
    this.c_proj = this.module("c_proj", linear(inner, C, { dtype }));
    this.dropout = this.module("dropout", new Dropout(config.resid_pdrop));
    this.act = activation(config.activation_function);
  }

  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.c_proj.forward(this.act(this.c_fc.forward(x))));
  }
}

// ---- Block -----------------------------------------------------------------------------------

export class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;

  constructor(config: GPT2Config, layerIdx: number, dtype: DType) {
    super();
    this.ln_1 = this.module("ln_1", new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.attn = this.module("attn", new GPT2Attention(config, layerIdx, dtype));
    this.ln_2 = this.module("ln_2", new LayerNorm(config.n_embd, config.layer_norm_epsilon));
    this.mlp = this.module("mlp", new GPT2MLP(config, dtype));
  }

  forward(x: Tensor, inp: LayerInputs): Tensor {
    const h = T.add(x, this.attn.forward(this.ln_1.forward(x), inp));
    return T.add(h, this.mlp.forward(this.ln_2.forward(h)));
  }
}

// ---- Model -----------------------------------------------------------------------------------

export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<GPT2Block>;
  readonly ln_f: LayerNorm;

  constructor(
    readonly config: GPT2Config,
    dtype: DType,
  ) {
    super();
    this.wte = this.module("wte", embedding(config.vocab_size, config.n_embd, dtype));
    this.wpe = this.module("wpe", embedding(config.n_positions, config.n_embd, dtype));
    this.drop = this.module("drop", new Dropout(config.embd_pdrop));
    this.h = this.module("h", new ModuleList(Array.from({ length: config.n_layer }, (_, i) => new GPT2Block(config, i, dtype))));
    this.ln_f = this.module("ln_f", new LayerNorm(config.n_embd, config.layer_norm_epsilon));
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, Tn] = idsShape("GPT2Model", inputIds);
    const past = opts.cache?.length ?? 0;
    const keyMask = keyMaskOf("GPT2Model", opts.attentionMask, B, past + Tn);
    const positions = positionIdsOf("GPT2Model", B, Tn, past, keyMask, opts.positionIds);
    const maxPos = (positions.data() as Int32Array).reduce((m, p) => Math.max(m, p), 0);
    if (maxPos >= this.config.n_positions) {
      throw new ShapeError("GPT2Model", `position ${maxPos} is past the ${this.config.n_positions} learned positions (n_positions)`);
    }
    const inp: LayerInputs = { keyMask: keyMask && keyMask.every((m) => m === 1) ? null : keyMask, cache: opts.cache };
    let h = this.drop.forward(T.add(this.wte.forward(inputIds), this.wpe.forward(positions)));
    for (const block of this.h.items) h = block.forward(h, inp);
    return this.ln_f.forward(h);
  }
}

// ---- ForCausalLM -----------------------------------------------------------------------------

const CONV1D_WEIGHTS = [".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"];

export class GPT2LMHeadModel extends Module implements CausalLM {
  readonly transformer: GPT2Model;
  /** Absent when tie_word_embeddings (the default): logits then use transformer.wte.weight. */
  readonly lm_head: Linear | null;

  constructor(
    readonly config: GPT2Config,
    dtype: DType = "float32",
  ) {
    super();
    this.transformer = this.module("transformer", new GPT2Model(config, dtype));
    this.lm_head = config.tie_word_embeddings ? null : this.module("lm_head", linear(config.n_embd, config.vocab_size, { bias: false, dtype }));
    if (dtype !== "float32") this.to(dtype);
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    return lmLogits(this.transformer.forward(inputIds, opts), this.lm_head, this.transformer.wte.weight, opts);
  }

  newCache(batch: number, maxLength?: number): KVCache {
    const c = this.config;
    return new KVCache(c.n_layer, batch, c.n_head, c.n_embd / c.n_head, maxLength, this.transformer.wte.weight.dtype);
  }

  /**
   * HF checkpoint → module keys: adds the "transformer." prefix that GPT2Model checkpoints lack,
   * drops the attn.bias / attn.masked_bias mask buffers and the tied lm_head copy, and transposes
   * Conv1D weights [in, out] → [out, in].
   */
  static sanitize(weights: Map<string, Tensor>, config: GPT2Config): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k0, t] of weights) {
      const k = k0.startsWith("transformer.") || k0.startsWith("lm_head.") ? k0 : `transformer.${k0}`;
      if (k.endsWith(".attn.bias") || k.endsWith(".attn.masked_bias")) continue;
      if (k === "lm_head.weight" && config.tie_word_embeddings) continue;
      out.set(k, t.ndim === 2 && CONV1D_WEIGHTS.some((s) => k.endsWith(s)) ? t.transpose(0, 1).contiguous() : t);
    }
    return out;
  }

  /** Module state → HF layout: Conv1D weights back to [in, out] (keys keep the "transformer." prefix, as save_pretrained). */
  static toCheckpoint(state: Map<string, Tensor>): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k, t] of state) out.set(k, t.ndim === 2 && CONV1D_WEIGHTS.some((s) => k.endsWith(s)) ? t.transpose(0, 1).contiguous() : t);
    return out;
  }

  /** HF init: N(0, initializer_range), and N(0, initializer_range / sqrt(2 n_layer)) for c_proj weights. */
  static create(config: GPT2Config, opts: { seed?: number; dtype?: DType } = {}): GPT2LMHeadModel {
    const m = new GPT2LMHeadModel(config);
    const g = new Generator(opts.seed ?? 0);
    initWeights(m, config.initializer_range, g);
    for (const [name, p] of m.namedParameters()) {
      if (name.endsWith("c_proj.weight")) init.normal_(p, 0, config.initializer_range / Math.sqrt(2 * config.n_layer), g);
    }
    return opts.dtype && opts.dtype !== "float32" ? m.to(opts.dtype) : m;
  }
}

export const gpt2Entry: ModelEntry = {
  config: (raw) => gpt2Config(raw as Partial<GPT2Config>),
  build: (config, opts) => new GPT2LMHeadModel(config as GPT2Config, opts.dtype ?? "float32"),
  create: (config, opts) => GPT2LMHeadModel.create(config as GPT2Config, opts),
  sanitize: (weights, config) => GPT2LMHeadModel.sanitize(weights, config as GPT2Config),
  sanitizesPerTensor: true,
  toCheckpoint: (state) => GPT2LMHeadModel.toCheckpoint(state),
};
