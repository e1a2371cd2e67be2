/**
 * BERT (model_type "bert"): post-LayerNorm encoder with word + position + token-type embeddings and
 * bidirectional attention (padding hidden through a key mask), with the masked-LM head (decoder
 * tied to the word embeddings, plus a bias) and the sequence-classification head (pooler +
 * classifier). Follows HF modeling_bert.py.
 */
import type { DType } from "../core/dtype.ts";
import { ShapeError, fmtShape } from "../core/errors.ts";
import { Generator } from "../core/rng.ts";
import { Dropout, type Embedding, LayerNorm, type Linear, Module, ModuleList, init, mseLoss } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { type Model, type ModelConfig, type ModelEntry, ModelError, idsShape, keyMaskOf, maskedLMLoss } from "./types.ts";
import { embedding, initWeights, linear } from "./weights.ts";

// ---- Config ----------------------------------------------------------------------------------

export interface BertConfig extends ModelConfig {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  initializer_range: number;
  layer_norm_eps: number;
  pad_token_id: number;
  position_embedding_type: string;
  classifier_dropout: number | null;
  num_labels: number;
  id2label?: Record<string, string>;
  problem_type?: string | null;
  tie_word_embeddings: boolean;
}

export function bertConfig(raw: Partial<BertConfig>): BertConfig {
  const numLabels = raw.num_labels ?? (raw.id2label ? Object.keys(raw.id2label).length : 2);
  const cfg: BertConfig = {
    ...raw,
    model_type: "bert",
    vocab_size: raw.vocab_size ?? 30522,
    hidden_size: raw.hidden_size ?? 768,
    num_hidden_layers: raw.num_hidden_layers ?? 12,
    num_attention_heads: raw.num_attention_heads ?? 12,
    intermediate_size: raw.intermediate_size ?? 3072,
    hidden_act: raw.hidden_act ?? "gelu",
    hidden_dropout_prob: raw.hidden_dropout_prob ?? 0.1,
    attention_probs_dropout_prob: raw.attention_probs_dropout_prob ?? 0.1,
    max_position_embeddings: raw.max_position_embeddings ?? 512,
    type_vocab_size: raw.type_vocab_size ?? 2,
    initializer_range: raw.initializer_range ?? 0.02,
    layer_norm_eps: raw.layer_norm_eps ?? 1e-12,
    pad_token_id: raw.pad_token_id ?? 0,
    position_embedding_type: raw.position_embedding_type ?? "absolute",
    classifier_dropout: raw.classifier_dropout ?? null,
    num_labels: numLabels,
    tie_word_embeddings: raw.tie_word_embeddings ?? true,
  };
  if (cfg.hidden_size % cfg.num_attention_heads !== 0) {
    throw new ModelError(`hidden_size ${cfg.hidden_size} is not a multiple of num_attention_heads ${cfg.num_attention_heads}`);
  }
  if (cfg.position_embedding_type !== "absolute") throw new ModelError(`position_embedding_type "${cfg.position_embedding_type}" is not supported (only "absolute")`);
  activation(cfg.hidden_act);
  return cfg;
}

function activation(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case "gelu":
      return (x) => T.gelu(x, "none");
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return (x) => T.gelu(x, "tanh");
    case "relu":
      return T.relu;
    case "silu":
    case "swish":
      return T.silu;
    default:
      throw new ModelError(`hidden_act "${name}" is not supported`);
  }
}

/** Inputs of every BERT forward. */
export interface BertInputs {
  /** [B, T]: 1 = token, 0 = padding. */
  attentionMask?: Tensor;
  /** int32 [B, T] segment ids (default all 0). */
  tokenTypeIds?: Tensor;
  /** int32 [B, T] (default arange(T)). */
  positionIds?: Tensor;
}

// ---- Embeddings ------------------------------------------------------------------------------

export class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(
    readonly config: BertConfig,
    dtype: DType,
  ) {
    super();
    const C = config.hidden_size;
    this.word_embeddings = this.module("word_embeddings", embedding(config.vocab_size, C, dtype));
    this.position_embeddings = this.module("position_embeddings", embedding(config.max_position_embeddings, C, dtype));
    this.token_type_embeddings = this.module("token_type_embeddings", embedding(config.type_vocab_size, C, dtype));
    this.LayerNorm = this.module("LayerNorm", new LayerNorm(C, config.layer_norm_eps));
    this.dropout = this.module("dropout", new Dropout(config.hidden_dropout_prob));
  }

  forward(inputIds: Tensor, inp: BertInputs): Tensor {
    const [B, Tn] = idsShape("BertEmbeddings", inputIds);
    if (Tn > this.config.max_position_embeddings) {
      throw new ShapeError("BertEmbeddings", `sequence length ${Tn} exceeds max_position_embeddings ${this.config.max_position_embeddings}`);
    }
    const positions = inp.positionIds ?? T.arange(Tn).reshape([1, Tn]);
    const types = inp.tokenTypeIds ?? T.zeros([B, Tn], { dtype: "int32" });
    if (types.numel !== B * Tn) throw new ShapeError("BertEmbeddings", `tokenTypeIds must be [B=${B}, T=${Tn}], got ${fmtShape(types.shape)}`);
    const e = T.add(T.add(this.word_embeddings.forward(inputIds), this.token_type_embeddings.forward(types)), this.position_embeddings.forward(positions));
    return this.dropout.forward(this.LayerNorm.forward(e));
  }
}

// ---- Attention -------------------------------------------------------------------------------

export class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;

  constructor(
    readonly config: BertConfig,
    dtype: DType,
  ) {
    super();
    const C = config.hidden_size;
    this.query = this.module("query", linear(C, C, { dtype }));
    this.key = this.module("key", linear(C, C, { dtype }));
    this.value = this.module("value", linear(C, C, { dtype }));
  }

  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    const [B, Tn, C] = x.shape as [number, number, number];
    const H = this.config.num_attention_heads;
    const heads = (t: Tensor) => t.reshape([B, Tn, H, C / H]).transpose(1, 2);
    const o = T.scaledDotProductAttention(heads(this.query.forward(x)), heads(this.key.forward(x)), heads(this.value.forward(x)), { keyMask });
    return o.transpose(1, 2).reshape([B, Tn, C]);
  }
}

/** dense → dropout → LayerNorm(h + residual): BertSelfOutput and BertOutput. */
export class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(config: BertConfig, inFeatures: number, dtype: DType) {
    super();
    this.dense = this.module("dense", linear(inFeatures, config.hidden_size, { dtype }));
    this.LayerNorm = this.module("LayerNorm", new LayerNorm(config.hidden_size, config.layer_norm_eps));
    this.dropout = this.module("dropout", new Dropout(config.hidden_dropout_prob));
  }

  forward(h: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(T.add(this.dropout.forward(this.dense.forward(h)), residual));
  }
}

export class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.self = this.module("self", new BertSelfAttention(config, dtype));
    this.output = this.module("output", new BertResidualOutput(config, config.hidden_size, dtype));
  }

  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    return this.output.forward(this.self.forward(x, keyMask), x);
  }
}

// ---- MLP -------------------------------------------------------------------------------------

export class BertIntermediate extends Module {
  readonly dense: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.dense = this.module("dense", linear(config.hidden_size, config.intermediate_size, { dtype }));
    this.act = activation(config.hidden_act);
  }

  forward(x: Tensor): Tensor {
    return this.act(this.dense.forward(x));
  }
}

// ---- Block -----------------------------------------------------------------------------------

export class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.attention = this.module("attention", new BertAttention(config, dtype));
    this.intermediate = this.module("intermediate", new BertIntermediate(config, dtype));
    this.output = this.module("output", new BertResidualOutput(config, config.intermediate_size, dtype));
  }

  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    const a = this.attention.forward(x, keyMask);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

export class BertEncoder extends Module {
  readonly layer: ModuleList<BertLayer>;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.layer = this.module("layer", new ModuleList(Array.from({ length: config.num_hidden_layers }, () => new BertLayer(config, dtype))));
  }

  forward(x: Tensor, keyMask: Uint8Array | null): Tensor {
    return this.layer.items.reduce((h, l) => l.forward(h, keyMask), x);
  }
}

export class BertPooler extends Module {
  readonly dense: Linear;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.dense = this.module("dense", linear(config.hidden_size, config.hidden_size, { dtype }));
  }

  /** tanh(dense(h[:, 0])). */
  forward(h: Tensor): Tensor {
    return T.tanh(this.dense.forward(h.select(1, 0)));
  }
}

// ---- Model -----------------------------------------------------------------------------------

export class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;
  readonly pooler: BertPooler | null;

  constructor(
    readonly config: BertConfig,
    dtype: DType = "float32",
    addPoolingLayer = true,
  ) {
    super();
    this.embeddings = this.module("embeddings", new BertEmbeddings(config, dtype));
    this.encoder = this.module("encoder", new BertEncoder(config, dtype));
    this.pooler = addPoolingLayer ? this.module("pooler", new BertPooler(config, dtype)) : null;
    if (dtype !== "float32") this.to(dtype);
  }

  /** Last hidden states [B, T, C] and, with a pooler, the pooled [B, C]. */
  encode(inputIds: Tensor, inp: BertInputs = {}): { lastHiddenState: Tensor; pooled: Tensor | null } {
    const [B, Tn] = idsShape("BertModel", inputIds);
    const mask = keyMaskOf("BertModel", inp.attentionMask, B, Tn);
    const h = this.encoder.forward(this.embeddings.forward(inputIds, inp), mask && mask.every((m) => m === 1) ? null : mask);
    return { lastHiddenState: h, pooled: this.pooler ? this.pooler.forward(h) : null };
  }

  forward(inputIds: Tensor, inp: BertInputs = {}): Tensor {
    return this.encode(inputIds, inp).lastHiddenState;
  }
}

// ---- Heads -----------------------------------------------------------------------------------

export class BertPredictionHeadTransform extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.dense = this.module("dense", linear(config.hidden_size, config.hidden_size, { dtype }));
    this.LayerNorm = this.module("LayerNorm", new LayerNorm(config.hidden_size, config.layer_norm_eps));
    this.act = activation(config.hidden_act);
  }

  forward(x: Tensor): Tensor {
    return this.LayerNorm.forward(this.act(this.dense.forward(x)));
  }
}

/** cls.predictions: transform, then the decoder (word embeddings when tied) plus `bias`. */
export class BertLMPredictionHead extends Module {
  readonly transform: BertPredictionHeadTransform;
  readonly decoder: Linear | null;
  bias: Tensor;

  constructor(config: BertConfig, dtype: DType) {
    super();
    this.transform = this.module("transform", new BertPredictionHeadTransform(config, dtype));
    this.decoder = config.tie_word_embeddings ? null : this.module("decoder", linear(config.hidden_size, config.vocab_size, { bias: false, dtype }));
    this.bias = this.param("bias", T.zeros([config.vocab_size], { dtype }));
  }

  forward(h: Tensor, wordEmbeddings: Tensor): Tensor {
    const x = this.transform.forward(h);
    const logits = this.decoder ? this.decoder.forward(x) : T.matmul(x, wordEmbeddings.T);
    return T.add(logits, this.bias);
  }
}

export class BertOnlyMLMHead extends Module {
  readonly predictions: BertLMPredictionHead;
  constructor(config: BertConfig, dtype: DType) {
    super();
    this.predictions = this.module("predictions", new BertLMPredictionHead(config, dtype));
  }
}

export class BertForMaskedLM extends Module {
  readonly bert: BertModel;
  readonly cls: BertOnlyMLMHead;

  constructor(
    readonly config: BertConfig,
    dtype: DType = "float32",
  ) {
    super();
    this.bert = this.module("bert", new BertModel(config, dtype, false));
    this.cls = this.module("cls", new BertOnlyMLMHead(config, dtype));
    if (dtype !== "float32") this.to(dtype);
  }

  /** Token logits float32 [B, T, V]. */
  forward(inputIds: Tensor, inp: BertInputs = {}): Tensor {
    const h = this.bert.forward(inputIds, inp);
    return this.cls.predictions.forward(h, this.bert.embeddings.word_embeddings.weight).to("float32");
  }

  /** Cross-entropy over the positions whose label is not -100. */
  static loss(logits: Tensor, labels: Tensor): Tensor {
    return maskedLMLoss(logits, labels);
  }
}

export class BertForSequenceClassification extends Module {
  readonly bert: BertModel;
  readonly dropout: Dropout;
  readonly classifier: Linear;

  constructor(
    readonly config: BertConfig,
    dtype: DType = "float32",
  ) {
    super();
    this.bert = this.module("bert", new BertModel(config, dtype, true));
    this.dropout = this.module("dropout", new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob));
    this.classifier = this.module("classifier", linear(config.hidden_size, config.num_labels, { dtype }));
    if (dtype !== "float32") this.to(dtype);
  }

  /** Class logits float32 [B, num_labels]. */
  forward(inputIds: Tensor, inp: BertInputs = {}): Tensor {
    const pooled = this.bert.encode(inputIds, inp).pooled!;
    return this.classifier.forward(this.dropout.forward(pooled)).to("float32");
  }

  /**
   * HF's loss for the config's problem: MSE when num_labels == 1 (regression), else cross-entropy
   * on int labels [B]; "multi_label_classification" is BCE-with-logits on float labels [B, L].
   */
  loss(logits: Tensor, labels: Tensor): Tensor {
    const problem = this.config.problem_type ?? (this.config.num_labels === 1 ? "regression" : "single_label_classification");
    if (problem === "regression") return mseLoss(logits.reshape([-1]), labels.to("float32").reshape([-1]));
    if (problem === "multi_label_classification") return T.mean(bceWithLogits(logits, labels.to("float32")));
    return T.crossEntropy(logits, labels.to("int32"));
  }
}

/** Elementwise max(x, 0) - x y + log(1 + exp(-|x|)). */
function bceWithLogits(x: Tensor, y: Tensor): Tensor {
  return T.add(T.sub(T.relu(x), T.mul(x, y)), T.log(T.add(T.exp(T.neg(T.abs(x))), 1)));
}

// ---- Registry entry --------------------------------------------------------------------------

const HEADS = ["BertForMaskedLM", "BertForSequenceClassification", "BertModel"] as const;

/** The head a config asks for: opts.architecture, else config.architectures[0], else masked LM. */
function headOf(config: BertConfig, architecture?: string): (typeof HEADS)[number] {
  const arch = architecture ?? config.architectures?.[0] ?? "BertForMaskedLM";
  const a = arch === "BertForPreTraining" ? "BertForMaskedLM" : arch;
  if (!(HEADS as readonly string[]).includes(a)) throw new ModelError(`BERT architecture "${arch}" is not supported (supported: ${HEADS.join(", ")}, BertForPreTraining)`);
  return a as (typeof HEADS)[number];
}

function buildBert(config: BertConfig, dtype: DType, architecture?: string): Model {
  switch (headOf(config, architecture)) {
    case "BertForMaskedLM":
      return new BertForMaskedLM(config, dtype);
    case "BertForSequenceClassification":
      return new BertForSequenceClassification(config, dtype);
    case "BertModel":
      return new BertModel(config, dtype);
  }
}

/**
 * HF checkpoint → module keys: old LayerNorm gamma/beta names, the position_ids buffer, the tied
 * decoder copy and its bias alias; keys of heads this model does not have (pretraining NSP head,
 * an MLM head or pooler that a classifier/MLM does not use) are dropped, as transformers ignores
 * them; the "bert." prefix is added or removed to fit the model. A classifier missing from a
 * pretrained-encoder checkpoint is initialised N(0, initializer_range) as transformers does.
 */
function sanitizeBert(weights: Map<string, Tensor>, config: BertConfig, model: Model): Map<string, Tensor> {
  const bare = model instanceof BertModel;
  const own = model.stateDict();
  const out = new Map<string, Tensor>();
  for (const [k0, t] of weights) {
    let k = k0.replace(/\.LayerNorm\.gamma$/, ".LayerNorm.weight").replace(/\.LayerNorm\.beta$/, ".LayerNorm.bias");
    const isHead = k.startsWith("cls.") || k.startsWith("classifier.") || k.startsWith("qa_outputs.");
    if (bare && k.startsWith("bert.")) k = k.slice(5);
    if (!bare && !isHead && !k.startsWith("bert.")) k = `bert.${k}`;
    if (k.endsWith("embeddings.position_ids")) continue;
    if (k === "cls.predictions.decoder.weight" && config.tie_word_embeddings) continue;
    if (k === "cls.predictions.decoder.bias") {
      if (!weights.has("cls.predictions.bias")) out.set("cls.predictions.bias", t);
      continue;
    }
    if (!(k in own) && (k.startsWith("cls.") || k.startsWith("bert.pooler.") || k.startsWith("pooler."))) continue;
    out.set(k, t);
  }
  if (model instanceof BertForSequenceClassification && !out.has("classifier.weight") && !out.has("classifier.bias")) {
    const g = new Generator(0);
    const w = init.normal_(T.zeros([config.num_labels, config.hidden_size]), 0, config.initializer_range, g);
    out.set("classifier.weight", w);
    out.set("classifier.bias", T.zeros([config.num_labels]));
  }
  return out;
}

function createBert(config: BertConfig, opts: { seed?: number; dtype?: DType; architecture?: string }): Model {
  const m = buildBert(config, "float32", opts.architecture);
  initWeights(m, config.initializer_range, new Generator(opts.seed ?? 0));
  for (const [name, p] of m.namedParameters()) if (name === "cls.predictions.bias") init.zeros_(p);
  return opts.dtype && opts.dtype !== "float32" ? m.to(opts.dtype) : m;
}

export const bertEntry: ModelEntry = {
  config: (raw) => bertConfig(raw as Partial<BertConfig>),
  build: (config, opts) => buildBert(config as BertConfig, opts.dtype ?? "float32", opts.architecture),
  create: (config, opts) => createBert(config as BertConfig, opts),
  sanitize: (weights, config, model) => sanitizeBert(weights, config as BertConfig, model),
};
