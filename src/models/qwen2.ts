/**
 * Qwen2 / Qwen2.5 (model_type "qwen2"), also used for Llama (model_type "llama"): pre-norm decoder
 * with RMSNorm, grouped-query attention with RoPE (q/k/v biases for Qwen2, `attention_bias` for
 * Llama), SwiGLU MLP, optional tied embeddings. Follows HF modeling_qwen2.py / modeling_llama.py.
 */
import type { DType } from "../core/dtype.ts";
import { Generator } from "../core/rng.ts";
import type { DecodeProjection, DecoderLayerArgs, DecoderLayerWeights, DecoderStackLayer } from "../backend/Backend.ts";
import { getBackend } from "../backend/registry.ts";
import { type Embedding, Linear, Module, ModuleList, RMSNorm } from "../nn/index.ts";
import { QuantizedLinear } from "../quant/index.ts";
import * as T from "../tensor/index.ts";
import { type Tensor, isGradEnabled } from "../tensor/index.ts";
import { type RopeConfig, type RopeScaling, applyRope, scaledInvFreq } from "./rope.ts";
import { type CausalLM, type CreateOptions, type ForwardOptions, KVCache, type ModelConfig, type ModelEntry, ModelError, idsShape, keyMaskOf, positionIdsOf } from "./types.ts";
import { lmLogits } from "./head.ts";
import { embedding, initWeights, linear, withEmptyWeights } from "./weights.ts";

// ---- Config ----------------------------------------------------------------------------------

export interface Qwen2Config extends ModelConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  tie_word_embeddings: boolean;
  /** Llama: biases on q/k/v/o. Qwen2 always has q/k/v biases (and none on o). */
  attention_bias: boolean;
  mlp_bias: boolean;
  initializer_range: number;
}

/** config.json → Qwen2Config with HF's defaults filled in (keys verbatim). */
export function qwen2Config(raw: Partial<Qwen2Config> & { model_type?: string }): Qwen2Config {
  const need = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"] as const;
  const absent = need.filter((k) => typeof raw[k] !== "number");
  if (absent.length) throw new ModelError(`${raw.model_type ?? "qwen2"} config lacks ${absent.join(", ")}`);
  const heads = raw.num_attention_heads!;
  const cfg: Qwen2Config = {
    ...raw,
    model_type: raw.model_type ?? "qwen2",
    vocab_size: raw.vocab_size!,
    hidden_size: raw.hidden_size!,
    intermediate_size: raw.intermediate_size!,
    num_hidden_layers: raw.num_hidden_layers!,
    num_attention_heads: heads,
    num_key_value_heads: raw.num_key_value_heads ?? heads,
    head_dim: raw.head_dim ?? raw.hidden_size! / heads,
    hidden_act: raw.hidden_act ?? "silu",
    max_position_embeddings: raw.max_position_embeddings ?? 32768,
    rms_norm_eps: raw.rms_norm_eps ?? 1e-6,
    rope_theta: raw.rope_theta ?? 10000,
    rope_scaling: raw.rope_scaling ?? null,
    tie_word_embeddings: raw.tie_word_embeddings ?? false,
    attention_bias: raw.attention_bias ?? false,
    mlp_bias: raw.mlp_bias ?? false,
    initializer_range: raw.initializer_range ?? 0.02,
  };
  if (!Number.isInteger(cfg.head_dim) || cfg.head_dim % 2 !== 0) throw new ModelError(`head_dim ${cfg.head_dim} must be an even integer`);
  if (heads % cfg.num_key_value_heads !== 0) {
    throw new ModelError(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${cfg.num_key_value_heads}`);
  }
  if (cfg.hidden_act !== "silu") throw new ModelError(`hidden_act "${cfg.hidden_act}" is not supported (Qwen2/Llama use silu)`);
  scaledInvFreq({ headDim: cfg.head_dim, theta: cfg.rope_theta, scaling: cfg.rope_scaling }); // validates rope_scaling
  return cfg;
}

/** Per-forward state every layer shares. */
interface LayerInputs {
  positions: Tensor;
  keyMask: Uint8Array | null;
  cache?: KVCache;
}

/**
 * Rows (batch x new positions) up to which a decode step runs fused (Backend.decoderLayer): the
 * fused layer's projections are GEMVs, which is what Linear runs up to this many rows (the native
 * GEMV_MAX_ROWS), so fused and unfused compute the same numbers.
 */
const FUSED_DECODE_MAX_ROWS = 4;

/** A projection as Backend.decoderLayer takes it: a plain Linear / QuantizedLinear of dtype, else null (an adapter, NF4, ...). */
function decodeProjection(m: Module, dtype: DType): DecodeProjection | null {
  const bias = (b: Tensor | null) => (b === null ? null : b.dtype === dtype && b.isContiguous ? b.data() : undefined);
  if (m instanceof QuantizedLinear && m.constructor === QuantizedLinear) {
    const b = bias(m.bias);
    return b === undefined ? null : { kind: "quant", type: m.qweight.type, qs: m.qweight.qs, scales: m.qweight.scales, bias: b };
  }
  if (m instanceof Linear && m.constructor === Linear) {
    const w = m.weight;
    const b = bias(m.bias);
    if (b === undefined || w.dtype !== dtype || !w.isContiguous) return null;
    return { kind: "float", weight: w.data(), bias: b };
  }
  return null;
}

/** What decodeProjection's result depends on, by identity: the module, its tensors and their storages. */
function decodeKey(m: Module, key: unknown[]): void {
  key.push(m);
  if (m instanceof QuantizedLinear) key.push(m.qweight, m.qweight.qs, m.qweight.scales, m.bias, m.bias?.storage);
  else if (m instanceof Linear) key.push(m.weight, m.weight.storage, m.bias, m.bias?.storage);
}

/** A decoder layer's weights as Backend.decoderLayer takes them, or null when one part does not fit. */
function buildDecodeWeights(n1: RMSNorm, n2: RMSNorm, mods: Module[], dtype: DType): DecoderLayerWeights | null {
  const norm = (n: RMSNorm) => (n.weight && n.weight.dtype === dtype && n.weight.isContiguous ? n.weight.data() : null);
  const inputNorm = norm(n1);
  const postNorm = norm(n2);
  if (!inputNorm || !postNorm || n1.eps !== n2.eps) return null;
  const projs = mods.map((m) => decodeProjection(m, dtype));
  if (projs.some((p) => p === null)) return null;
  const [q, k, v, o, gate, up, down] = projs as DecodeProjection[];
  return { inputNorm, postNorm, q: q!, k: k!, v: v!, o: o!, gate: gate!, up: up!, down: down! };
}

/** What every layer of a decode step on h shares, as Backend.decoderLayer / decoderStack take it. */
function decodeStepArgs(c: Qwen2Config, h: Tensor, eps: number, inp: LayerInputs): Omit<DecoderLayerArgs, "past" | "capacity" | "keyMask"> {
  const [B, Tn] = h.shape as [number, number, number];
  return {
    B,
    T: Tn,
    C: c.hidden_size,
    F: c.intermediate_size,
    Hq: c.num_attention_heads,
    Hkv: c.num_key_value_heads,
    D: c.head_dim,
    eps,
    theta: c.rope_theta,
    positions: inp.positions.data() as Int32Array,
  };
}

// ---- Attention -------------------------------------------------------------------------------

export class Qwen2Attention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  private readonly rope: RopeConfig;
  /** Scaled RoPE frequencies (rope_scaling), null for the default ones. */
  readonly invFreq: Float64Array | null;

  constructor(
    readonly config: Qwen2Config,
    readonly layerIdx: number,
    dtype: DType,
  ) {
    super();
    const { hidden_size: C, num_attention_heads: Hq, num_key_value_heads: Hkv, head_dim: D } = config;
    const qkvBias = config.model_type === "qwen2" || config.attention_bias;
    this.q_proj = this.module("q_proj", linear(C, Hq * D, { bias: qkvBias, dtype }));
    this.k_proj = this.module("k_proj", linear(C, Hkv * D, { bias: qkvBias, dtype }));
    this.v_proj = this.module("v_proj", linear(C, Hkv * D, { bias: qkvBias, dtype }));
    this.o_proj = this.module("o_proj", linear(Hq * D, C, { bias: config.model_type !== "qwen2" && config.attention_bias, dtype }));
    this.rope = { headDim: D, theta: config.rope_theta, scaling: config.rope_scaling };
    this.invFreq = scaledInvFreq(this.rope);
  }

  forward(x: Tensor, inp: LayerInputs): Tensor {
    const [B, Tn] = x.shape as [number, number, number];
    const { num_attention_heads: Hq, num_key_value_heads: Hkv, head_dim: D } = this.config;
    let q = this.q_proj.forward(x).reshape([B, Tn, Hq, D]);
    let k = this.k_proj.forward(x).reshape([B, Tn, Hkv, D]);
    let v = this.v_proj.forward(x).reshape([B, Tn, Hkv, D]).transpose(1, 2);
    q = applyRope(q, inp.positions, this.rope, this.invFreq).transpose(1, 2);
    k = applyRope(k, inp.positions, this.rope, this.invFreq).transpose(1, 2);
    if (inp.cache) [k, v] = inp.cache.append(this.layerIdx, k, v);
    const o = T.scaledDotProductAttention(q, k, v, { causal: true, keyMask: inp.keyMask });
    return this.o_proj.forward(o.transpose(1, 2).reshape([B, Tn, Hq * D]));
  }
}

// ---- MLP -------------------------------------------------------------------------------------

export class Qwen2MLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;

  constructor(config: Qwen2Config, dtype: DType) {
    super();
    const { hidden_size: C, intermediate_size: F, mlp_bias: bias } = config;
    this.gate_proj = this.module("gate_proj", linear(C, F, { bias, dtype }));
    this.up_proj = this.module("up_proj", linear(C, F, { bias, dtype }));
    this.down_proj = this.module("down_proj", linear(F, C, { bias, dtype }));
  }

  forward(x: Tensor): Tensor {
    return this.down_proj.forward(T.swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

// ---- Block -----------------------------------------------------------------------------------

export class Qwen2DecoderLayer extends Module {
  readonly self_attn: Qwen2Attention;
  readonly mlp: Qwen2MLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;

  constructor(config: Qwen2Config, layerIdx: number, dtype: DType) {
    super();
    this.self_attn = this.module("self_attn", new Qwen2Attention(config, layerIdx, dtype));
    this.mlp = this.module("mlp", new Qwen2MLP(config, dtype));
    this.input_layernorm = this.module("input_layernorm", new RMSNorm(config.hidden_size, config.rms_norm_eps));
    this.post_attention_layernorm = this.module("post_attention_layernorm", new RMSNorm(config.hidden_size, config.rms_norm_eps));
  }

  forward(x: Tensor, inp: LayerInputs): Tensor {
    const h = T.add(x, this.self_attn.forward(this.input_layernorm.forward(x), inp));
    return T.add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }

  /**
   * forward() of a no-grad decode step as one Backend.decoderLayer call, updating h (contiguous
   * [B, T, C], owned by the caller) in place: the same numbers as forward(), without its ~25 ops.
   * Returns null, having done nothing, when the layer does not fit the fused kernel (rope_scaling,
   * adapters or other wrapped projections, mixed dtypes, a cache without room or capacity).
   */
  forwardDecode(h: Tensor, inp: LayerInputs): Tensor | null {
    const layer = this.decodeInputs(h, inp);
    if (!layer) return null;
    const { w, kCache, vCache, ...rest } = layer;
    getBackend().decoderLayer(h.storage, h.dtype, w, kCache, vCache, { ...decodeStepArgs(this.self_attn.config, h, this.input_layernorm.eps, inp), ...rest });
    inp.cache!.commit(this.self_attn.layerIdx, h.shape[1]!);
    return h;
  }

  /** This layer as Backend.decoderLayer / decoderStack take it for a decode step on h, or null where it does not fit. */
  decodeInputs(h: Tensor, inp: LayerInputs): DecoderStackLayer | null {
    const attn = this.self_attn;
    if (!inp.cache || attn.invFreq !== null) return null;
    const w = this.decodeWeights(h.dtype);
    if (!w) return null;
    const slots = inp.cache.slots(attn.layerIdx, h.shape[1]!, h.dtype);
    if (!slots) return null;
    return { w, kCache: slots.k.storage, vCache: slots.v.storage, past: slots.past, capacity: slots.k.shape[2]!, keyMask: inp.keyMask };
  }

  /**
   * The weights forwardDecode hands the fused kernel, or null when the layer does not fit it. Built
   * once and reused while every module, tensor and storage they come from is the same object (and
   * eps agrees): a decode step then spends no time re-deriving them, 24 times per token.
   */
  private decodeWeights(dtype: DType): DecoderLayerWeights | null {
    const attn = this.self_attn;
    const mods = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, this.mlp.gate_proj, this.mlp.up_proj, this.mlp.down_proj] as Module[];
    const key: unknown[] = [dtype, this.input_layernorm.eps, this.post_attention_layernorm.eps];
    for (const n of [this.input_layernorm, this.post_attention_layernorm]) key.push(n.weight, n.weight?.storage);
    for (const m of mods) decodeKey(m, key);
    const memo = this.decodeMemo;
    if (memo && memo.key.length === key.length && memo.key.every((x, i) => x === key[i])) return memo.w;
    this.decodeMemo = { key, w: buildDecodeWeights(this.input_layernorm, this.post_attention_layernorm, mods, dtype) };
    return this.decodeMemo.w;
  }

  private decodeMemo: { key: unknown[]; w: DecoderLayerWeights | null } | null = null;
}

// ---- Model -----------------------------------------------------------------------------------

export class Qwen2Model extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<Qwen2DecoderLayer>;
  readonly norm: RMSNorm;

  constructor(
    readonly config: Qwen2Config,
    dtype: DType,
  ) {
    super();
    this.embed_tokens = this.module("embed_tokens", embedding(config.vocab_size, config.hidden_size, dtype));
    const layers = Array.from({ length: config.num_hidden_layers }, (_, i) => new Qwen2DecoderLayer(config, i, dtype));
    this.layers = this.module("layers", new ModuleList(layers));
    this.norm = this.module("norm", new RMSNorm(config.hidden_size, config.rms_norm_eps));
  }

  /** inputIds [B, T] → final hidden states [B, T, C] (in the weights' dtype). */
  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, Tn] = idsShape("Qwen2Model", inputIds);
    const past = opts.cache?.length ?? 0;
    const keyMask = keyMaskOf("Qwen2Model", opts.attentionMask, B, past + Tn);
    const positions = positionIdsOf("Qwen2Model", B, Tn, past, keyMask, opts.positionIds);
    const inp: LayerInputs = { positions, keyMask: keyMask && keyMask.every((m) => m === 1) ? null : keyMask, cache: opts.cache };
    let h = this.embed_tokens.forward(inputIds);
    // A no-grad decode step runs each layer as one fused kernel where it fits (h, the embedding
    // lookup's fresh output, is then updated in place); anything else runs the ops one by one.
    const fused =
      opts.fused !== false && opts.cache?.capacity !== undefined && !isGradEnabled() && B * Tn <= FUSED_DECODE_MAX_ROWS && h.isContiguous && h.offset === 0;
    if (!(fused && this.forwardDecodeStack(h, inp))) {
      for (const layer of this.layers.items) h = (fused ? layer.forwardDecode(h, inp) : null) ?? layer.forward(h, inp);
    }
    return this.norm.forward(h);
  }

  /**
   * Every layer of a no-grad decode step in one Backend.decoderStack call, h updated in place; false,
   * having done nothing, when a layer does not fit it (each layer then goes its own way).
   */
  private forwardDecodeStack(h: Tensor, inp: LayerInputs): boolean {
    const items = this.layers.items;
    if (items.length === 0 || !inp.cache) return false;
    const eps = items[0]!.input_layernorm.eps;
    const layers: DecoderStackLayer[] = [];
    for (const layer of items) {
      const l = layer.input_layernorm.eps === eps ? layer.decodeInputs(h, inp) : null;
      if (!l) return false;
      layers.push(l);
    }
    getBackend().decoderStack(h.storage, h.dtype, layers, decodeStepArgs(this.config, h, eps, inp));
    for (const layer of items) inp.cache.commit(layer.self_attn.layerIdx, h.shape[1]!);
    return true;
  }
}

// ---- ForCausalLM -----------------------------------------------------------------------------

export class Qwen2ForCausalLM extends Module implements CausalLM {
  readonly model: Qwen2Model;
  /** Absent when tie_word_embeddings: logits then use model.embed_tokens.weight. */
  readonly lm_head: Linear | null;

  constructor(
    readonly config: Qwen2Config,
    dtype: DType = "float32",
  ) {
    super();
    this.model = this.module("model", new Qwen2Model(config, dtype));
    this.lm_head = config.tie_word_embeddings ? null : this.module("lm_head", linear(config.hidden_size, config.vocab_size, { bias: false, dtype }));
    if (dtype !== "float32") this.to(dtype);
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    return lmLogits(this.model.forward(inputIds, opts), this.lm_head, this.model.embed_tokens.weight, opts);
  }

  newCache(batch: number, maxLength?: number): KVCache {
    const c = this.config;
    return new KVCache(c.num_hidden_layers, batch, c.num_key_value_heads, c.head_dim, maxLength, this.model.embed_tokens.weight.dtype);
  }

  /** HF checkpoint → module keys: drops the tied lm_head copy and rotary inv_freq buffers. */
  static sanitize(weights: Map<string, Tensor>, config: Qwen2Config): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k, t] of weights) {
      if (k.endsWith(".rotary_emb.inv_freq")) continue;
      if (k === "lm_head.weight" && config.tie_word_embeddings) continue;
      out.set(k, t);
    }
    return out;
  }

  /**
   * A randomly initialised model (HF init: N(0, initializer_range), zero biases, unit norms), built
   * layer by layer: each is initialised in float32, then cast to opts.dtype or (opts.quantize)
   * quantized, so neither a float32 copy of the model nor (quantized) a full-precision one exists.
   */
  static create(config: Qwen2Config, opts: CreateOptions = {}): Qwen2ForCausalLM {
    const m = withEmptyWeights(() => new Qwen2ForCausalLM(config));
    initWeights(m, config.initializer_range, new Generator(opts.seed ?? 0), opts);
    return opts.dtype && opts.dtype !== "float32" ? m.to(opts.dtype) : m;
  }
}

/** Registry entry for model_type "qwen2" and "llama". */
export const qwen2Entry: ModelEntry = {
  config: (raw) => qwen2Config(raw as Partial<Qwen2Config>),
  build: (config, opts) => new Qwen2ForCausalLM(config as Qwen2Config, opts.dtype ?? "float32"),
  create: (config, opts) => Qwen2ForCausalLM.create(config as Qwen2Config, opts),
  sanitize: (weights, config) => Qwen2ForCausalLM.sanitize(weights, config as Qwen2Config),
  sanitizesPerTensor: true,
};
