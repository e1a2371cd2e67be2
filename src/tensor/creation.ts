/** Creation ops: zeros/ones/full/eye/arange/linspace, seeded rand/randn/randint, tensor(), cat/stack. */
import { type DType, allocStorage, isFloat, writeElement } from "../core/dtype.ts";
import { ShapeError, fmtShape } from "../core/errors.ts";
import { type Generator, defaultGenerator } from "../core/rng.ts";
import { normAxis, numel } from "../core/shape.ts";
import { record } from "./autograd.ts";
import { Tensor } from "./Tensor.ts";
import { backend, cast, fullOf, promote } from "./ops.ts";

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts?: CreateOptions): Tensor {
  if (opts?.requiresGrad) t.setRequiresGrad(true);
  return t;
}

function shapeArg(op: string, shape: readonly number[]): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `invalid shape ${fmtShape(shape)}`);
  }
  return [...shape];
}

export function zeros(shape: readonly number[], opts?: CreateOptions): Tensor {
  return finish(Tensor.empty(shapeArg("zeros", shape), opts?.dtype ?? "float32"), opts);
}

export function ones(shape: readonly number[], opts?: CreateOptions): Tensor {
  return full(shape, 1, opts);
}

export function full(shape: readonly number[], value: number, opts?: CreateOptions): Tensor {
  return finish(fullOf(shapeArg("full", shape), value, opts?.dtype ?? "float32"), opts);
}

export function zerosLike(t: Tensor, opts?: CreateOptions): Tensor {
  return zeros(t.shape, { dtype: t.dtype, ...opts });
}

export function onesLike(t: Tensor, opts?: CreateOptions): Tensor {
  return ones(t.shape, { dtype: t.dtype, ...opts });
}

export function eye(n: number, m = n, opts?: CreateOptions): Tensor {
  const t = zeros([n, m], opts);
  for (let i = 0; i < Math.min(n, m); i++) writeElement(t.storage, t.dtype, i * m + i, 1);
  return t;
}

/** Values start, start + step, ... < end. int64-free: integer ranges are int32 unless a dtype is given. */
export function arange(start: number, end?: number, step = 1, opts?: CreateOptions): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (step === 0) throw new ShapeError("arange", "step must be non-zero");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const allInt = Number.isInteger(start) && Number.isInteger(step);
  const dtype = opts?.dtype ?? (allInt ? "int32" : "float32");
  const t = Tensor.empty([n], dtype);
  for (let i = 0; i < n; i++) writeElement(t.storage, dtype, i, start + i * step);
  return finish(t, opts);
}

export function linspace(start: number, end: number, steps: number, opts?: CreateOptions): Tensor {
  const t = Tensor.empty([steps], opts?.dtype ?? "float32");
  for (let i = 0; i < steps; i++) writeElement(t.storage, t.dtype, i, steps === 1 ? start : start + ((end - start) * i) / (steps - 1));
  return finish(t, opts);
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

/** Uniform [low, high). */
export function rand(shape: readonly number[], opts?: RandomOptions & { low?: number; high?: number }): Tensor {
  const g = opts?.generator ?? defaultGenerator;
  const low = opts?.low ?? 0;
  const high = opts?.high ?? 1;
  const t = Tensor.empty(shapeArg("rand", shape), opts?.dtype ?? "float32");
  const n = t.numel;
  if (t.storage instanceof Float32Array) {
    const d = t.storage; // fast path for the common dtype (model init draws hundreds of millions)
    for (let i = 0; i < n; i++) d[i] = low + (high - low) * g.random();
  } else for (let i = 0; i < n; i++) writeElement(t.storage, t.dtype, i, low + (high - low) * g.random());
  return finish(t, opts);
}

/** Normal(mean, std). */
export function randn(shape: readonly number[], opts?: RandomOptions & { mean?: number; std?: number }): Tensor {
  const g = opts?.generator ?? defaultGenerator;
  const mean = opts?.mean ?? 0;
  const std = opts?.std ?? 1;
  const t = Tensor.empty(shapeArg("randn", shape), opts?.dtype ?? "float32");
  const n = t.numel;
  if (t.storage instanceof Float32Array) {
    const d = t.storage;
    for (let i = 0; i < n; i++) d[i] = mean + std * g.normal();
  } else for (let i = 0; i < n; i++) writeElement(t.storage, t.dtype, i, mean + std * g.normal());
  return finish(t, opts);
}

/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: readonly number[], opts?: RandomOptions): Tensor {
  const g = opts?.generator ?? defaultGenerator;
  if (!(high > low)) throw new ShapeError("randint", `high (${high}) must be greater than low (${low})`);
  const t = Tensor.empty(shapeArg("randint", shape), opts?.dtype ?? "int32");
  for (let i = 0; i < t.numel; i++) writeElement(t.storage, t.dtype, i, low + g.randint(high - low));
  return finish(t, opts);
}

export type NestedArray = number | boolean | NestedArray[];

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0]!;
  }
  return shape;
}

/** A tensor from (nested) numbers or a typed array; dtype inferred (float32, or int32 for integer typed arrays). */
export function tensor(data: NestedArray | ArrayLike<number>, opts?: CreateOptions & { shape?: number[] }): Tensor {
  const isTyped = ArrayBuffer.isView(data);
  const shape = opts?.shape ?? (isTyped ? [(data as ArrayLike<number>).length] : inferShape(data as NestedArray));
  const dtype = opts?.dtype ?? (data instanceof Int32Array ? "int32" : data instanceof Float64Array ? "float64" : "float32");
  const n = numel(shape);
  const t = new Tensor(allocStorage(dtype, n), dtype, shape);
  let pos = 0;
  const put = (v: number | boolean) => {
    if (pos >= n) throw new ShapeError("tensor", `more values than shape ${fmtShape(shape)} holds`);
    writeElement(t.storage, dtype, pos++, typeof v === "boolean" ? (v ? 1 : 0) : v);
  };
  if (isTyped) {
    const arr = data as ArrayLike<number>;
    for (let i = 0; i < arr.length; i++) put(arr[i]!);
  } else {
    const walk = (x: NestedArray, depth: number) => {
      if (Array.isArray(x)) {
        if (opts?.shape === undefined && x.length !== shape[depth]) {
          throw new ShapeError("tensor", `ragged nested array: expected ${shape[depth]} elements at depth ${depth}, got ${x.length}`);
        }
        for (const y of x) walk(y, depth + 1);
      } else put(x);
    };
    walk(data as NestedArray, 0);
  }
  if (pos !== n) throw new ShapeError("tensor", `got ${pos} values for shape ${fmtShape(shape)} (${n} elements)`);
  return finish(t, opts);
}

/** A tensor over an existing typed array (no copy) with the given shape. */
export function fromArray(data: Float32Array | Float64Array | Int32Array | Uint16Array | BigInt64Array, shape: readonly number[], dtype?: DType): Tensor {
  const dt: DType = dtype ?? (data instanceof Float64Array ? "float64" : data instanceof Int32Array ? "int32" : data instanceof Uint16Array ? "bfloat16" : data instanceof BigInt64Array ? "int64" : "float32");
  if (numel(shape) !== data.length) {
    throw new ShapeError("fromArray", `shape ${fmtShape(shape)} needs ${numel(shape)} elements, the array has ${data.length}`);
  }
  return new Tensor(data, dt, shape);
}

/** Concatenates along an existing dim. */
export function cat(tensors: Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError("cat", "expected a non-empty list of tensors");
  const first = tensors[0]!;
  const d = normAxis("cat", dim, first.ndim);
  let dtype = first.dtype;
  for (const t of tensors) {
    dtype = promote(dtype, t.dtype);
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new ShapeError("cat", `shapes ${tensors.map((x) => fmtShape(x.shape)).join(", ")} differ outside dim ${dim}`);
    }
  }
  const sizes = tensors.map((t) => t.shape[d]!);
  const shape = [...first.shape];
  shape[d] = sizes.reduce((a, b) => a + b, 0);
  const out = Tensor.empty(shape, dtype);
  let pos = 0;
  const ins = tensors.map((t) => (t.dtype === dtype ? t : cast(t, dtype)));
  for (const t of ins) {
    const len = t.shape[d]!;
    if (len > 0) {
      const dst = new Tensor(out.storage, dtype, t.shape, out.strides, pos * out.strides[d]!);
      backend().copy(t.view_(), dst.view_());
    }
    pos += len;
  }
  if (!isFloat(dtype)) return out;
  return record("cat", ins, out, { dim: d, sizes });
}

/** Stacks along a new dim. */
export function stack(tensors: Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError("stack", "expected a non-empty list of tensors");
  const first = tensors[0]!;
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => s !== first.shape[i])) {
      throw new ShapeError("stack", `all tensors must have the same shape, got ${tensors.map((x) => fmtShape(x.shape)).join(", ")}`);
    }
  }
  const d = dim < 0 ? dim + first.ndim + 1 : dim;
  return cat(tensors.map((t) => t.unsqueeze(d)), d);
}
