/** View ops: new shape/strides over the same storage. Each records its (view-inverting) gradient. */
import { ShapeError, fmtShape } from "../core/errors.ts";
import { contiguousStrides, normAxis, numel } from "../core/shape.ts";
import { record } from "./autograd.ts";
import { Tensor } from "./Tensor.ts";
import { contiguous } from "./ops.ts";

function makeView(t: Tensor, shape: number[], strides: number[], offset: number): Tensor {
  return new Tensor(t.storage, t.dtype, shape, strides, offset);
}

/** Resolves one -1 entry and checks the element count. */
function inferShape(op: string, t: Tensor, shape: number[]): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg !== out.lastIndexOf(-1)) throw new ShapeError(op, `only one dimension can be -1, got ${fmtShape(shape)}`);
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || t.numel % rest !== 0) {
      throw new ShapeError(op, `shape ${fmtShape(shape)} is invalid for input of size ${t.numel} (shape ${fmtShape(t.shape)})`);
    }
    out[neg] = t.numel / rest;
  }
  for (const d of out) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `invalid shape ${fmtShape(shape)}`);
  }
  if (numel(out) !== t.numel) {
    throw new ShapeError(op, `shape ${fmtShape(shape)} is invalid for input of size ${t.numel} (shape ${fmtShape(t.shape)})`);
  }
  return out;
}

/**
 * Strides for viewing t with a new shape without copying, or null when impossible
 * (the algorithm of torch's computeStride: merge runs of dims that are contiguous with each other).
 */
function viewStrides(t: Tensor, shape: number[]): number[] | null {
  if (t.numel === 0) return contiguousStrides(shape);
  // torch's computeStride: walk old dims from the back, grouping dims that are contiguous with
  // each other into chunks; each chunk must be exactly covered by a run of new dims.
  const oldShape = t.ndim === 0 ? [1] : t.shape;
  const oldStrides = t.ndim === 0 ? [1] : t.strides;
  const newStrides = new Array<number>(shape.length).fill(1);
  let viewD = shape.length - 1;
  let chunkBase = oldStrides[oldStrides.length - 1]!;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = oldShape.length - 1; d >= 0; d--) {
    tensorNumel *= oldShape[d]!;
    if (d === 0 || (oldShape[d - 1] !== 1 && oldStrides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || shape[viewD] === 1)) {
        newStrides[viewD] = viewNumel * chunkBase;
        viewNumel *= shape[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBase = oldStrides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) return null;
  return newStrides;
}

export function view(t: Tensor, shape: number[]): Tensor {
  const s = inferShape("view", t, shape);
  const strides = viewStrides(t, s);
  if (!strides) {
    throw new ShapeError(
      "view",
      `view shape ${fmtShape(s)} is not compatible with input shape ${fmtShape(t.shape)} and strides ${fmtShape(t.strides)}; use reshape()`,
    );
  }
  return record("reshape", [t], makeView(t, s, strides, t.offset), { shape: t.shape });
}

export function reshape(t: Tensor, shape: number[]): Tensor {
  const s = inferShape("reshape", t, shape);
  const strides = viewStrides(t, s);
  if (strides) return record("reshape", [t], makeView(t, s, strides, t.offset), { shape: t.shape });
  return view(contiguous(t), s);
}

export function flatten(t: Tensor, startDim = 0, endDim = -1): Tensor {
  if (t.ndim === 0) return reshape(t, [1]);
  const a = normAxis("flatten", startDim, t.ndim);
  const b = normAxis("flatten", endDim, t.ndim);
  const shape = [...t.shape.slice(0, a), numel(t.shape.slice(a, b + 1)), ...t.shape.slice(b + 1)];
  return reshape(t, shape);
}

export function permute(t: Tensor, dims: number[]): Tensor {
  if (dims.length !== t.ndim) {
    throw new ShapeError("permute", `got ${dims.length} dims ${fmtShape(dims)} for a tensor of shape ${fmtShape(t.shape)}`);
  }
  const d = dims.map((x) => normAxis("permute", x, t.ndim));
  if (new Set(d).size !== d.length) throw new ShapeError("permute", `repeated dim in ${fmtShape(dims)}`);
  const out = makeView(
    t,
    d.map((i) => t.shape[i]!),
    d.map((i) => t.strides[i]!),
    t.offset,
  );
  const inverse = new Array<number>(d.length);
  d.forEach((p, i) => (inverse[p] = i));
  return record("permute", [t], out, { inverse });
}

export function transpose(t: Tensor, dim0: number, dim1: number): Tensor {
  const a = normAxis("transpose", dim0, t.ndim);
  const b = normAxis("transpose", dim1, t.ndim);
  const dims = [...t.shape.keys()];
  dims[a] = b;
  dims[b] = a;
  return permute(t, dims);
}

export function unsqueeze(t: Tensor, dim: number): Tensor {
  const d = dim < 0 ? dim + t.ndim + 1 : dim;
  if (d < 0 || d > t.ndim) throw new ShapeError("unsqueeze", `dim ${dim} out of range for shape ${fmtShape(t.shape)}`);
  const shape = [...t.shape];
  shape.splice(d, 0, 1);
  return reshape(t, shape);
}

export function squeeze(t: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(t, t.shape.filter((d) => d !== 1));
  const d = normAxis("squeeze", dim, t.ndim);
  if (t.shape[d] !== 1) return t;
  return reshape(t, t.shape.filter((_, i) => i !== d));
}

export function expand(t: Tensor, shape: number[]): Tensor {
  if (shape.length < t.ndim) {
    throw new ShapeError("expand", `cannot expand shape ${fmtShape(t.shape)} to fewer dims ${fmtShape(shape)}`);
  }
  const lead = shape.length - t.ndim;
  const outShape: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    const src = i - lead;
    const want = shape[i]!;
    if (src < 0) {
      if (want < 0) throw new ShapeError("expand", `-1 not allowed in new leading dim of ${fmtShape(shape)}`);
      outShape.push(want);
      strides.push(0);
      continue;
    }
    const have = t.shape[src]!;
    if (want === -1 || want === have) {
      outShape.push(have);
      strides.push(t.strides[src]!);
    } else if (have === 1) {
      outShape.push(want);
      strides.push(0);
    } else {
      throw new ShapeError("expand", `cannot expand shape ${fmtShape(t.shape)} to ${fmtShape(shape)}`);
    }
  }
  return record("expand", [t], makeView(t, outShape, strides, t.offset), { shape: t.shape });
}

export function slice(t: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const d = normAxis("slice", dim, t.ndim);
  const n = t.shape[d]!;
  if (!Number.isInteger(step) || step <= 0) throw new ShapeError("slice", `step must be a positive integer, got ${step}`);
  let s = start < 0 ? start + n : start;
  let e = end === undefined ? n : end < 0 ? end + n : end;
  s = Math.min(Math.max(s, 0), n);
  e = Math.min(Math.max(e, s), n);
  const len = Math.ceil((e - s) / step);
  const shape = [...t.shape];
  shape[d] = len;
  const strides = [...t.strides];
  strides[d] = t.strides[d]! * step;
  const out = makeView(t, shape, strides, t.offset + s * t.strides[d]!);
  return record("slice", [t], out, { dim: d, start: s, step, inputShape: t.shape });
}

export function select(t: Tensor, dim: number, index: number): Tensor {
  const d = normAxis("select", dim, t.ndim);
  const n = t.shape[d]!;
  const i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw new ShapeError("select", `index ${index} out of range for dim ${dim} of size ${n}`);
  return squeeze(slice(t, d, i, i + 1), d);
}

export function split(t: Tensor, size: number | number[], dim = 0): Tensor[] {
  const d = normAxis("split", dim, t.ndim);
  const n = t.shape[d]!;
  const sizes: number[] = [];
  if (typeof size === "number") {
    if (size <= 0) throw new ShapeError("split", `split size must be positive, got ${size}`);
    for (let s = 0; s < n; s += size) sizes.push(Math.min(size, n - s));
  } else {
    if (size.reduce((a, b) => a + b, 0) !== n) {
      throw new ShapeError("split", `sizes ${fmtShape(size)} do not sum to dim ${dim} of size ${n}`);
    }
    sizes.push(...size);
  }
  const out: Tensor[] = [];
  let pos = 0;
  for (const s of sizes) {
    out.push(slice(t, d, pos, pos + s));
    pos += s;
  }
  return out;
}

export function chunk(t: Tensor, chunks: number, dim = 0): Tensor[] {
  const d = normAxis("chunk", dim, t.ndim);
  return split(t, Math.ceil(t.shape[d]! / chunks), d);
}
