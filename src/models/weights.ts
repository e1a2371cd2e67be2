/**
 * Weight plumbing shared by the architectures: checkpoint tensors → Tensors, strict assignment into
 * a module (naming every missing, unexpected and mis-shaped key), and HF-style random init.
 */
import type { DType } from "../core/dtype.ts";
import { fmtShape } from "../core/errors.ts";
import type { Generator } from "../core/rng.ts";
import { type TensorEntry, type TensorReader } from "../formats/index.ts";
import { Embedding, LayerNorm, Linear, type Module, RMSNorm, StateDictError, init } from "../nn/index.ts";
import { Tensor, noGrad } from "../tensor/index.ts";
import { isFloat } from "../core/dtype.ts";

/** A file tensor as a graft Tensor (float16 arrives as float32; int8/uint8/bool as int32). */
export function entryToTensor(name: string, e: TensorEntry): Tensor {
  switch (e.dtype) {
    case "float32":
    case "float64":
    case "bfloat16":
    case "int32":
    case "int64":
      return new Tensor(e.data as Float32Array, e.dtype, e.shape);
    case "float16":
      return new Tensor(e.data as Float32Array, "float32", e.shape);
    case "int16":
    case "int8":
    case "uint8":
    case "bool":
      return new Tensor(Int32Array.from(e.data as ArrayLike<number>), "int32", e.shape);
    default:
      throw new StateDictError(`tensor "${name}" has unsupported dtype ${String(e.dtype)}`);
  }
}

/** Every tensor of a reader, by name. */
export function readAll(reader: TensorReader): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const info of reader.tensors) out.set(info.name, entryToTensor(info.name, reader.read(info.name)));
  return out;
}

/**
 * Puts `weights` into the module's parameters and buffers by path, cast to `dtype` (floating
 * tensors). Strict: throws one StateDictError naming every missing, unexpected and mis-shaped key.
 */
export function assignWeights(model: Module, weights: Map<string, Tensor>, dtype?: DType, source = "checkpoint"): void {
  const own = model.stateDict();
  const missing = Object.keys(own).filter((k) => !weights.has(k));
  const unexpected = [...weights.keys()].filter((k) => !(k in own));
  const misShaped = [...weights.entries()]
    .filter(([k, t]) => k in own && (own[k]!.ndim !== t.ndim || own[k]!.shape.some((d, i) => d !== t.shape[i])))
    .map(([k, t]) => `${k} (model ${fmtShape(own[k]!.shape)}, ${source} ${fmtShape(t.shape)})`);
  if (missing.length || unexpected.length || misShaped.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(", ")}`);
    if (misShaped.length) parts.push(`mis-shaped keys (${misShaped.length}): ${misShaped.join(", ")}`);
    throw new StateDictError(`cannot load ${source} into ${model.constructor.name}: ${parts.join("; ")}`);
  }
  const owners = new Map<string, [Module, string]>();
  for (const [path, m] of model.namedModules()) {
    for (const [name] of m.namedParameters().filter(([n]) => !n.includes("."))) owners.set(path ? `${path}.${name}` : name, [m, name]);
  }
  for (const [k, t] of weights) {
    const target = own[k]!;
    const want = isFloat(t.dtype) ? (dtype ?? target.dtype) : target.dtype;
    const owner = owners.get(k);
    if (owner) owner[0].setParameter(owner[1], t.dtype === want ? t : t.to(want));
    else noGrad(() => target.copy_(t));
  }
}

/**
 * An nn.Linear [out, in] whose parameters are zero-filled, not randomly initialised: building a
 * model to load a checkpoint into (or to init with initWeights) then skips nn's per-element kaiming
 * init, which costs ~30 s for a 0.5B model. It is a plain Linear (PEFT wraps it as any other).
 */
export function linear(inFeatures: number, outFeatures: number, opts: { bias?: boolean; dtype?: DType } = {}): Linear {
  const dtype = opts.dtype ?? "float32";
  const bias = opts.bias ?? true;
  const l = new Linear(0, 0, { bias });
  l.setParameter("weight", Tensor.empty([outFeatures, inFeatures], dtype));
  if (bias) l.setParameter("bias", Tensor.empty([outFeatures], dtype));
  return Object.assign(l, { inFeatures, outFeatures });
}

/** An nn.Embedding [num, dim] with zero-filled weights (see linear()). */
export function embedding(numEmbeddings: number, embeddingDim: number, dtype: DType = "float32"): Embedding {
  const e = new Embedding(0, 0);
  e.setParameter("weight", Tensor.empty([numEmbeddings, embeddingDim], dtype));
  return Object.assign(e, { numEmbeddings, embeddingDim });
}

/**
 * HF `_init_weights` for decoder/encoder models: Linear and Embedding weights ~ N(0, std), biases
 * zero, norm weights one and biases zero.
 */
export function initWeights(model: Module, std: number, generator: Generator): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Linear) {
      init.normal_(m.weight, 0, std, generator);
      if (m.bias) init.zeros_(m.bias);
    } else if (m instanceof Embedding) {
      init.normal_(m.weight, 0, std, generator);
    } else if (m instanceof RMSNorm || m instanceof LayerNorm) {
      if (m.weight) init.ones_(m.weight);
      if (m instanceof LayerNorm && m.bias) init.zeros_(m.bias);
    }
  }
}
