/**
 * Weight plumbing shared by the architectures: checkpoint tensors → Tensors, strict assignment into
 * a module (naming every missing, unexpected and mis-shaped key), HF-style random init, and
 * quantize-as-you-build (CreateOptions.quantize): modules built with empty weights, each Linear
 * turned into an NF4Linear as soon as its weight is initialised or read.
 */
import type { DType, Storage } from "../core/dtype.ts";
import { allocStorage, isFloat } from "../core/dtype.ts";
import { fmtShape } from "../core/errors.ts";
import type { Generator } from "../core/rng.ts";
import { type TensorEntry, type TensorReader } from "../formats/index.ts";
import { Embedding, LayerNorm, Linear, type Module, RMSNorm, StateDictError, init } from "../nn/index.ts";
import { NF4Linear, isNF4Target } from "../quant/index.ts";
import { Tensor, noGrad, randn } from "../tensor/index.ts";
import { type CreateOptions, ModelError } from "./types.ts";

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
  const misShaped = [...weights.entries()].filter(([k, t]) => k in own && !sameShape(own[k]!, t)).map(([k, t]) => misShapedKey(k, own[k]!, t, source));
  throwIfInvalid(model, source, missing, unexpected, misShaped);
  const owners = parameterOwners(model);
  for (const [k, t] of weights) assignOne(own[k]!, owners.get(k), t, dtype);
}

function sameShape(a: Tensor, b: Tensor): boolean {
  return a.ndim === b.ndim && a.shape.every((d, i) => d === b.shape[i]);
}

function misShapedKey(k: string, own: Tensor, t: Tensor, source: string): string {
  return `${k} (model ${fmtShape(own.shape)}, ${source} ${fmtShape(t.shape)})`;
}

function throwIfInvalid(model: Module, source: string, missing: string[], unexpected: string[], misShaped: string[]): void {
  if (!missing.length && !unexpected.length && !misShaped.length) return;
  const parts: string[] = [];
  if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(", ")}`);
  if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(", ")}`);
  if (misShaped.length) parts.push(`mis-shaped keys (${misShaped.length}): ${misShaped.join(", ")}`);
  throw new StateDictError(`cannot load ${source} into ${model.constructor.name}: ${parts.join("; ")}`);
}

/** Parameter path → (owning module, its local name, the module's path). */
function parameterOwners(model: Module): Map<string, [Module, string, string]> {
  const owners = new Map<string, [Module, string, string]>();
  for (const [path, m] of model.namedModules()) {
    for (const [name] of m.namedParameters().filter(([n]) => !n.includes("."))) owners.set(path ? `${path}.${name}` : name, [m, name, path]);
  }
  return owners;
}

/** One checked tensor into its parameter (replaced, cast to dtype when floating) or buffer (copied). */
function assignOne(target: Tensor, owner: [Module, string, string] | undefined, t: Tensor, dtype: DType | undefined): void {
  const want = isFloat(t.dtype) ? (dtype ?? target.dtype) : target.dtype;
  if (owner) owner[0].setParameter(owner[1], t.dtype === want ? t : t.to(want));
  else noGrad(() => target.copy_(t));
}

// ---- construction ------------------------------------------------------------------------

/** Storage of the shape-only placeholder tensors made under withEmptyWeights. */
const placeholders = new WeakSet<Storage>();
let emptyWeights = false;

/**
 * Runs `build` with linear() and embedding() giving shape-only placeholder weights that hold no
 * memory (accelerate's `init_empty_weights`): for models whose every weight is then set by
 * initWeights or by a strict load. A placeholder reads as zeros but must not be written in place.
 */
export function withEmptyWeights<T>(build: () => T): T {
  const prev = emptyWeights;
  emptyWeights = true;
  try {
    return build();
  } finally {
    emptyWeights = prev;
  }
}

/** Whether `t` is a placeholder of withEmptyWeights (no storage of its own yet). */
export function isEmptyWeight(t: Tensor): boolean {
  return placeholders.has(t.storage);
}

/** A zero-filled tensor, or under withEmptyWeights a placeholder: one element broadcast to `shape`. */
function weightTensor(shape: number[], dtype: DType): Tensor {
  if (!emptyWeights) return Tensor.empty(shape, dtype);
  const storage = allocStorage(dtype, 1);
  placeholders.add(storage);
  return new Tensor(storage, dtype, shape, shape.map(() => 0));
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
  l.setParameter("weight", weightTensor([outFeatures, inFeatures], dtype));
  if (bias) l.setParameter("bias", weightTensor([outFeatures], dtype));
  return Object.assign(l, { inFeatures, outFeatures });
}

/** An nn.Embedding [num, dim] with zero-filled weights (see linear()). */
export function embedding(numEmbeddings: number, embeddingDim: number, dtype: DType = "float32"): Embedding {
  const e = new Embedding(0, 0);
  e.setParameter("weight", weightTensor([numEmbeddings, embeddingDim], dtype));
  return Object.assign(e, { numEmbeddings, embeddingDim });
}

/** Gives every placeholder parameter of `m` (not of its children) real zero-filled storage. */
function materialize(m: Module): void {
  for (const [name, p] of m.namedParameters().filter(([n]) => !n.includes("."))) {
    if (isEmptyWeight(p)) m.setParameter(name, Tensor.empty(p.shape, p.dtype));
  }
}

// ---- quantize as you build -----------------------------------------------------------------

/** How CreateOptions.quantize builds: the NF4 settings, or null for full precision. */
export interface BuildQuantization {
  blockSize?: number;
  /** The compute dtype (CreateOptions.dtype, default float32). */
  dtype: DType;
}

/** CreateOptions.quantize checked: null without it; names the bad option otherwise. */
export function buildQuantization(opts: CreateOptions): BuildQuantization | null {
  if (opts.quantize === undefined) return null;
  if (opts.quantize !== "nf4") throw new ModelError(`quantize: ${JSON.stringify(opts.quantize)} is not supported (expected "nf4")`);
  const bs = opts.quantBlockSize;
  if (bs !== undefined && (!Number.isInteger(bs) || bs <= 0 || bs % 2 !== 0)) throw new ModelError(`quantBlockSize must be a positive even integer, got ${bs}`);
  const dtype = opts.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "bfloat16") throw new ModelError(`quantize "nf4" computes in float32 or bfloat16, not dtype ${dtype}`);
  return { blockSize: bs, dtype };
}

/** Replaces child `name` of `parent` (its registry entry and every field holding it) by `next`. */
function replaceChild(parent: Module, name: string, old: Module, next: Module): void {
  parent.module(name, next);
  const fields = parent as unknown as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (fields[key] === old) fields[key] = next;
}

/** The Linear `lin` (child `name` of `parent`) as an NF4Linear in q.dtype, its weight quantized. */
function quantizeChild(parent: Module, name: string, lin: Linear, q: BuildQuantization, what: string): void {
  const cast = (t: Tensor) => (t.dtype === q.dtype ? t : t.to(q.dtype));
  const nf4 = NF4Linear.fromWeight(cast(lin.weight), lin.bias && cast(lin.bias), { blockSize: q.blockSize, computeDtype: q.dtype }, what);
  replaceChild(parent, name, lin, nf4);
}

/**
 * Module path → [parent, child name] of every module but the root. It holds no child, so a child
 * replaced while the map lives (a Linear by its NF4Linear) is garbage at once.
 */
function parentsOf(model: Module): Map<string, readonly [Module, string]> {
  const out = new Map<string, readonly [Module, string]>();
  for (const [path, m] of model.namedModules()) for (const [name] of m.children()) out.set(path ? `${path}.${name}` : name, [m, name]);
  return out;
}

function childOf(parent: Module, name: string): Module {
  return parent.children().find(([n]) => n === name)![1];
}

/**
 * Quantizes, in place, every Linear of `model` that NF4 targets (all but lm_head) and is not yet
 * quantized: for architectures whose init or load cannot quantize layer by layer.
 */
export function quantizeLinears(model: Module, q: BuildQuantization): void {
  for (const [path, [parent, name]] of parentsOf(model)) {
    const c = childOf(parent, name);
    if (isNF4Target(path, c)) quantizeChild(parent, name, c, q, path);
  }
}

/**
 * A strict load that takes the checkpoint one tensor at a time (`tensors` yields module keys), sets
 * each as assignWeights does and, with `q`, turns each NF4-targeted Linear into an NF4Linear as
 * soon as its weight and bias are set, so at most one full-precision layer exists at a time. With
 * inPlace, a floating tensor is copied (cast) into its parameter when that already has the dtype it
 * would be cast to, instead of replacing it: a packed model stays packed. Throws one StateDictError
 * naming every missing, unexpected and mis-shaped key.
 */
export function assignWeightsStreaming(
  model: Module,
  tensors: Iterable<[string, Tensor]>,
  q: BuildQuantization | null,
  dtype?: DType,
  source = "checkpoint",
  inPlace = false,
): void {
  const own = model.stateDict();
  const owners = parameterOwners(model);
  const parents = parentsOf(model);
  // Per NF4-targeted Linear: the parameter keys still to come.
  const pending = new Map<string, Set<string>>();
  if (q) {
    for (const [path, m] of model.namedModules()) {
      if (isNF4Target(path, m)) pending.set(path, new Set(m.namedParameters().map(([n]) => `${path}.${n}`)));
    }
  }
  const seen = new Set<string>();
  const unexpected: string[] = [];
  const misShaped: string[] = [];
  for (const [k, t] of tensors) {
    const target = own[k];
    if (!target) unexpected.push(k);
    else if (!sameShape(target, t)) {
      seen.add(k); // reported mis-shaped, not missing
      misShaped.push(misShapedKey(k, target, t, source));
    } else {
      seen.add(k);
      const owner = owners.get(k);
      if (inPlace && (!isFloat(t.dtype) || target.dtype === (dtype ?? target.dtype))) noGrad(() => target.copy_(t));
      else assignOne(target, owner, t, dtype);
      const left = owner && pending.get(owner[2]);
      if (!owner || !left) continue;
      left.delete(k);
      if (left.size > 0) continue;
      pending.delete(owner[2]);
      const [parent, name] = parents.get(owner[2])!;
      quantizeChild(parent, name, owner[0] as Linear, q!, owner[2]);
      // Drop every reference to the full-precision layer (its tensors are garbage from here).
      for (const [n] of owner[0].namedParameters()) {
        owners.delete(`${owner[2]}.${n}`);
        delete own[`${owner[2]}.${n}`];
      }
    }
  }
  throwIfInvalid(model, source, Object.keys(own).filter((k) => !seen.has(k)), unexpected, misShaped);
}

/**
 * HF `_init_weights` for decoder/encoder models: Linear and Embedding weights ~ N(0, std), biases
 * zero, norm weights one and biases zero, in module order, in float32. Placeholders of
 * withEmptyWeights get storage first. With opts.dtype each leaf module is cast to it right after
 * its init, and with opts.quantize each NF4-targeted Linear becomes an NF4Linear right then: the
 * same values as initialising everything, casting, then quantizing, without the float32 model.
 */
export function initWeights(model: Module, std: number, generator: Generator, opts: CreateOptions = {}): void {
  const q = buildQuantization(opts);
  // init.normal_, or for a placeholder the same draw set as the weight (no zero-filled copy).
  const normal = (m: Linear | Embedding) => {
    const w = m.weight;
    if (!isEmptyWeight(w)) return void init.normal_(w, 0, std, generator);
    const r = randn(w.shape, { mean: 0, std, generator, dtype: "float32" });
    m.setParameter("weight", w.dtype === "float32" ? r : r.to(w.dtype));
  };
  const initOne = (m: Module) => {
    if (m instanceof Linear || m instanceof Embedding) normal(m);
    materialize(m);
    if (m instanceof Linear) {
      if (m.bias) init.zeros_(m.bias);
    } else if (m instanceof RMSNorm || m instanceof LayerNorm) {
      if (m.weight) init.ones_(m.weight);
      if (m instanceof LayerNorm && m.bias) init.zeros_(m.bias);
    }
  };
  const parents = parentsOf(model);
  // The generator, not an array of modules: a replaced Linear is garbage at once.
  for (const [path, m] of model.namedModules()) {
    initOne(m);
    const parent = parents.get(path);
    if (q && parent && isNF4Target(path, m)) quantizeChild(parent[0], parent[1], m as Linear, q, path);
    // Leaf modules are cast at once; a module with children keeps its own tensors for the caller's model.to(dtype).
    else if (opts.dtype && m.children().length === 0) m.to(opts.dtype);
  }
}
