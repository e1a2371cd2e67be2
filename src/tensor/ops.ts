/**
 * The op surface over the backend: elementwise, reductions, matmul, softmax, casts and copies.
 * Each primitive computes its output on the current backend and records an autograd node whose
 * gradient rule lives in gradients.ts.
 */
import { type DType, allocStorage, isFloat } from "../core/dtype.ts";
import { DTypeError, ShapeError, AutogradError, fmtShape } from "../core/errors.ts";
import { broadcastShapes, normAxis, numel, sameShape } from "../core/shape.ts";
import type { BinaryOp, UnaryOp, View, ReduceOp } from "../backend/Backend.ts";
import { getBackend } from "../backend/registry.ts";
import { isGradEnabled, needsGrad, record } from "./autograd.ts";
import { Tensor, type TensorLike } from "./Tensor.ts";

export const backend = () => getBackend();

// ---- dtype promotion and scalars ---------------------------------------------------------------

const RANK: Record<DType, number> = { int32: 0, int64: 1, bfloat16: 2, float32: 3, float64: 4 };

export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat(a) !== isFloat(b)) return isFloat(a) ? a : b;
  return RANK[a] > RANK[b] ? a : b;
}

/** A number as a 0-d tensor of the partner's dtype (float32 if the partner is int and x is not). */
export function scalar(x: number, dtype: DType): Tensor {
  const dt = !isFloat(dtype) && !Number.isInteger(x) ? "float32" : dtype;
  const t = Tensor.empty([], dt);
  backend().fill(t.view_(), x);
  return t;
}

function asTensor(x: TensorLike, partner: Tensor): Tensor {
  return x instanceof Tensor ? x : scalar(x, partner.dtype);
}

/** A backend view of t broadcast to `shape` (stride 0 on broadcast dims). */
export function broadcastView(t: Tensor, shape: readonly number[]): View {
  const lead = shape.length - t.ndim;
  const strides = shape.map((d, i) => {
    const src = i - lead;
    if (src < 0) return 0;
    return t.shape[src] === 1 && d !== 1 ? 0 : t.strides[src]!;
  });
  return { data: t.storage, dtype: t.dtype, shape, strides, offset: t.offset };
}

/** Sums g over broadcast dims so it has `shape` (the reverse of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (g.shape[i] === 1) continue; // summing a size-1 dim is the reshape below, not a copy
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  let r = dims.length ? sum(g, dims, true) : g;
  if (lead > 0 || r.ndim !== shape.length) r = r.reshape([...shape]);
  return r;
}

// ---- copies and casts --------------------------------------------------------------------------

/** A contiguous copy (always copies when force is set). Gradient: identity. */
export function contiguous(t: Tensor, force = false): Tensor {
  if (t.isContiguous && !force) return t;
  const out = Tensor.uninit(t.shape, t.dtype);
  backend().copy(t.view_(), out.view_());
  return record("copy", [t], out);
}

export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  const out = Tensor.uninit(t.shape, dtype);
  backend().copy(t.view_(), out.view_());
  if (!isFloat(dtype)) return out;
  return record("cast", [t], out, { dtype: t.dtype });
}

function checkInPlace(op: string, t: Tensor): void {
  if (isGradEnabled() && t.requiresGrad) {
    throw new AutogradError(op, `in-place op on a tensor of shape ${fmtShape(t.shape)} that requires grad; wrap it in noGrad()`);
  }
}

export function copyInto(dst: Tensor, src: TensorLike): void {
  checkInPlace("copy_", dst);
  const s = asTensor(src, dst);
  broadcastShapes("copy_", s.shape, dst.shape);
  if (s.ndim > dst.ndim || !sameShape(broadcastShapes("copy_", s.shape, dst.shape), dst.shape)) {
    throw new ShapeError("copy_", `source shape ${fmtShape(s.shape)} cannot be broadcast to ${fmtShape(dst.shape)}`);
  }
  backend().copy(broadcastView(s, dst.shape), dst.view_());
}

export function fillInto(dst: Tensor, value: number): void {
  checkInPlace("fill_", dst);
  backend().fill(dst.view_(), value);
}

export function binaryInto(op: BinaryOp, dst: Tensor, other: TensorLike): void {
  checkInPlace(`${op}_`, dst);
  const o = asTensor(other, dst);
  const shape = broadcastShapes(op, dst.shape, o.shape);
  if (!sameShape(shape, dst.shape)) {
    throw new ShapeError(`${op}_`, `result shape ${fmtShape(shape)} does not match the in-place target ${fmtShape(dst.shape)}`);
  }
  const oo = o.dtype === dst.dtype ? o : cast(o, dst.dtype);
  backend().binary(op, dst.view_(), broadcastView(oo, shape), dst.view_());
}

// ---- elementwise -------------------------------------------------------------------------------

export function unary(op: UnaryOp, x: Tensor): Tensor {
  const xf = isFloat(x.dtype) ? x : cast(x, "float32");
  const out = Tensor.uninit(xf.shape, xf.dtype);
  backend().unary(op, xf.view_(), out.view_());
  return record("unary", [xf], out, { op });
}

export const neg = (x: Tensor) => unary("neg", x);
export const exp = (x: Tensor) => unary("exp", x);
export const log = (x: Tensor) => unary("log", x);
export const sqrt = (x: Tensor) => unary("sqrt", x);
export const rsqrt = (x: Tensor) => unary("rsqrt", x);
export const tanh = (x: Tensor) => unary("tanh", x);
export const sigmoid = (x: Tensor) => unary("sigmoid", x);
export const silu = (x: Tensor) => unary("silu", x);
export const relu = (x: Tensor) => unary("relu", x);
export const abs = (x: Tensor) => unary("abs", x);
export const sin = (x: Tensor) => unary("sin", x);
export const cos = (x: Tensor) => unary("cos", x);
export const square = (x: Tensor) => unary("square", x);
export const reciprocal = (x: Tensor) => unary("reciprocal", x);
export const gelu = (x: Tensor, approximate: "tanh" | "none" = "tanh") => unary(approximate === "tanh" ? "gelu" : "gelu_erf", x);

function binaryOperands(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) throw new ShapeError(op, "at least one operand must be a Tensor");
  let ta = a instanceof Tensor ? a : scalar(a, (b as Tensor).dtype);
  let tb = b instanceof Tensor ? b : scalar(b, ta.dtype);
  const dt = promote(ta.dtype, tb.dtype);
  if (ta.dtype !== dt) ta = cast(ta, dt);
  if (tb.dtype !== dt) tb = cast(tb, dt);
  return [ta, tb];
}

export function binary(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb] = binaryOperands(op, a, b);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  const out = Tensor.uninit(shape, ta.dtype);
  backend().binary(op, broadcastView(ta, shape), broadcastView(tb, shape), out.view_());
  return record(op, [ta, tb], out);
}

export const add = (a: TensorLike, b: TensorLike) => binary("add", a, b);
export const sub = (a: TensorLike, b: TensorLike) => binary("sub", a, b);
export const mul = (a: TensorLike, b: TensorLike) => binary("mul", a, b);
export const div = (a: TensorLike, b: TensorLike) => binary("div", a, b);
export const pow = (a: TensorLike, b: TensorLike) => binary("pow", a, b);
export const maximum = (a: TensorLike, b: TensorLike) => binary("maximum", a, b);
export const minimum = (a: TensorLike, b: TensorLike) => binary("minimum", a, b);

/** Comparison: a tensor of the promoted dtype holding 1 where true, 0 where false. No gradient. */
export function compare(op: "eq" | "ne" | "lt" | "le" | "gt" | "ge", a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb] = binaryOperands(op, a, b);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  const out = Tensor.empty(shape, ta.dtype);
  backend().binary(op, broadcastView(ta, shape), broadcastView(tb, shape), out.view_());
  return out;
}

/** where(cond, a, b): a where cond != 0, else b; all three broadcast together. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const fallback = isFloat(cond.dtype) ? cond.dtype : "float32";
  const [ta, tb] = binaryOperands("where", a instanceof Tensor || b instanceof Tensor ? a : scalar(a, fallback), b);
  const shape = broadcastShapes("where", broadcastShapes("where", cond.shape, ta.shape), tb.shape);
  const out = Tensor.empty(shape, ta.dtype);
  backend().where(broadcastView(cond, shape), broadcastView(ta, shape), broadcastView(tb, shape), out.view_());
  return record("where", [ta, tb], out, { cond });
}

export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  let r = x;
  if (min !== undefined) r = maximum(r, min);
  if (max !== undefined) r = minimum(r, max);
  return r;
}

// ---- reductions --------------------------------------------------------------------------------

function reduceAxis(op: ReduceOp, x: Tensor, axis: number): Tensor {
  const c = contiguous(x);
  const outer = numel(c.shape.slice(0, axis));
  const n = c.shape[axis]!;
  const inner = numel(c.shape.slice(axis + 1));
  const shape = [...c.shape];
  shape[axis] = 1;
  const isArg = op === "argmax" || op === "argmin";
  if (n === 0 && op !== "sum") throw new ShapeError(op, `cannot reduce an empty dim ${axis} of shape ${fmtShape(x.shape)}`);
  const out = Tensor.empty(shape, isArg ? "int32" : c.dtype);
  backend().reduce(op, c.data(), c.dtype, outer, n, inner, out.storage);
  return out;
}

function axesOf(op: string, x: Tensor, dim?: number | number[]): number[] {
  if (dim === undefined) return [...x.shape.keys()];
  const list = Array.isArray(dim) ? dim : [dim];
  const axes = list.map((d) => normAxis(op, d, x.ndim));
  return [...new Set(axes)].sort((p, q) => p - q);
}

function dropAxes(shape: readonly number[], axes: number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = axesOf("sum", x, dim);
  let r = x.detach();
  for (const a of axes) r = reduceAxis("sum", r, a);
  if (axes.length === 0) r = contiguous(r, true);
  const out = new Tensor(r.storage, r.dtype, keepdim ? r.shape : dropAxes(x.shape, axes));
  return record("sum", [x], out, { inputShape: x.shape, axes, keepdim });
}

export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const axes = axesOf("mean", x, dim);
  const count = axes.reduce((n, a) => n * x.shape[a]!, 1);
  const xf = isFloat(x.dtype) ? x : cast(x, "float32");
  return div(sum(xf, axes, keepdim), count);
}

function extreme(op: "max" | "min", x: Tensor, dim?: number, keepdim = false): Tensor {
  if (x.numel === 0) throw new ShapeError(op, `cannot reduce an empty tensor of shape ${fmtShape(x.shape)}`);
  const axes = dim === undefined ? [...x.shape.keys()] : [normAxis(op, dim, x.ndim)];
  const r = dim === undefined ? reduceAxis(op, x.detach().reshape([x.numel]), 0) : reduceAxis(op, x.detach(), axes[0]!);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Tensor(r.storage, r.dtype, keepdim ? keptShape : dropAxes(x.shape, axes));
  return record("extreme", [x], out, { keptShape });
}

/** Max over a dim (or all elements). Gradient is split evenly among ties (torch.amax). */
export const amax = (x: Tensor, dim?: number, keepdim = false) => extreme("max", x, dim, keepdim);
export const amin = (x: Tensor, dim?: number, keepdim = false) => extreme("min", x, dim, keepdim);

function argExtreme(op: "argmax" | "argmin", x: Tensor, dim?: number, keepdim = false): Tensor {
  if (dim === undefined) return reduceAxis(op, x.detach().reshape([x.numel]), 0).reshape(keepdim ? x.shape.map(() => 1) : []);
  const a = normAxis(op, dim, x.ndim);
  const r = reduceAxis(op, x.detach(), a);
  return keepdim ? r : r.reshape(dropAxes(x.shape, [a]));
}

export const argmax = (x: Tensor, dim?: number, keepdim = false) => argExtreme("argmax", x, dim, keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false) => argExtreme("argmin", x, dim, keepdim);

export function variance(x: Tensor, dim?: number | number[], keepdim = false, correction = 1): Tensor {
  const axes = axesOf("var", x, dim);
  const count = axes.reduce((n, a) => n * x.shape[a]!, 1);
  const centered = sub(x, mean(x, axes, true));
  return div(sum(square(centered), axes, keepdim), Math.max(count - correction, 0));
}

// ---- matmul ------------------------------------------------------------------------------------

/**
 * Describes a [..., r, c] operand for GEMM without copying when its strides allow it: row-major
 * (unit column stride) or column-major (unit row stride, used transposed), with batch dims that
 * collapse to one stride (0 when broadcast). Null when a copy is needed.
 */
function gemmOperand(t: Tensor, batchShape: number[]): { trans: boolean; ld: number; batchStride: number } | null {
  const r = t.shape[t.ndim - 2]!;
  const c = t.shape[t.ndim - 1]!;
  const sr = t.strides[t.ndim - 2]!;
  const sc = t.strides[t.ndim - 1]!;
  let trans: boolean;
  let ld: number;
  if ((sc === 1 || c === 1) && (r === 1 || sr >= c)) {
    trans = false;
    ld = r === 1 ? c : sr;
  } else if ((sr === 1 || r === 1) && (c === 1 || sc >= r)) {
    trans = true;
    ld = c === 1 ? r : sc;
  } else return null;
  const lead = batchShape.length - (t.ndim - 2);
  let batchStride = -1;
  let expected = -1;
  for (let i = batchShape.length - 1; i >= 0; i--) {
    const size = batchShape[i]!;
    if (size === 1) continue;
    const src = i - lead;
    const st = src < 0 || t.shape[src] === 1 ? 0 : t.strides[src]!;
    if (batchStride === -1) batchStride = st;
    else if (st !== expected) return null;
    expected = st * size;
  }
  return { trans, ld, batchStride: Math.max(batchStride, 0) };
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return matmulImpl(a, b, false);
}

/**
 * matmul(a, b).to(dtype), the product rounded to the operands' dtype and then cast. For bfloat16
 * operands and a float32 result with no gradient to record (a decode step's logits) the GEMM writes
 * the widened values itself, so neither a bfloat16 copy of the result nor a second pass over it
 * exists.
 */
export function matmulTo(a: Tensor, b: Tensor, dtype: DType): Tensor {
  if (dtype !== "float32" || promote(a.dtype, b.dtype) !== "bfloat16" || needsGrad(a, b)) return cast(matmul(a, b), dtype);
  return matmulImpl(a, b, true);
}

/** matmul; widened: a float32 output holding the bfloat16 product (GemmArgs.roundToBf16). */
function matmulImpl(a: Tensor, b: Tensor, widened: boolean): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new ShapeError("matmul", `both arguments must be at least 1-D, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.ndim === 1) return matmulImpl(a.unsqueeze(0), b, widened).squeeze(-2);
  if (b.ndim === 1) return matmulImpl(a, b.unsqueeze(1), widened).squeeze(-1);
  if (!isFloat(a.dtype) || !isFloat(b.dtype)) {
    throw new DTypeError("matmul", `expected floating point tensors, got ${a.dtype} and ${b.dtype}`);
  }
  const m = a.shape[a.ndim - 2]!;
  const k = a.shape[a.ndim - 1]!;
  const k2 = b.shape[b.ndim - 2]!;
  const n = b.shape[b.ndim - 1]!;
  if (k !== k2) {
    throw new ShapeError("matmul", `shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (${k} != ${k2})`);
  }
  const batchShape = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const dt = promote(a.dtype, b.dtype);
  let ta = a.dtype === dt ? a : cast(a, dt);
  let tb = b.dtype === dt ? b : cast(b, dt);
  // Operands whose strides GEMM cannot walk (or whose broadcast batch dims do not collapse to one
  // stride) are materialised at the full batch shape.
  let oa = gemmOperand(ta, batchShape);
  if (!oa) {
    ta = contiguous(ta.expand([...batchShape, m, k]), true);
    oa = gemmOperand(ta, batchShape)!;
  }
  let ob = gemmOperand(tb, batchShape);
  if (!ob) {
    tb = contiguous(tb.expand([...batchShape, k, n]), true);
    ob = gemmOperand(tb, batchShape)!;
  }
  const batch = numel(batchShape);
  const out = Tensor.uninit([...batchShape, m, n], widened ? "float32" : dt);
  if (m * n > 0) {
    backend().gemm(ta.storage, tb.storage, out.storage, dt, out.dtype, {
      batch,
      m,
      n,
      k,
      transA: oa.trans,
      transB: ob.trans,
      lda: oa.ld,
      ldb: ob.ld,
      ldc: n,
      offsetA: ta.offset,
      offsetB: tb.offset,
      offsetC: 0,
      strideA: oa.batchStride,
      strideB: ob.batchStride,
      strideC: m * n,
      alpha: 1,
      beta: 0,
      ...(widened ? { roundToBf16: true } : {}),
    });
  }
  return widened ? out : record("matmul", [ta, tb], out);
}

// ---- softmax -----------------------------------------------------------------------------------

function softmaxImpl(x: Tensor, dim: number, log: boolean): Tensor {
  const axis = normAxis(log ? "logSoftmax" : "softmax", dim, x.ndim);
  if (axis !== x.ndim - 1) return softmaxImpl(x.transpose(axis, -1), -1, log).transpose(axis, -1);
  const xf = isFloat(x.dtype) ? contiguous(x) : cast(x, "float32");
  const C = xf.shape[xf.ndim - 1] ?? 1;
  const N = xf.numel / Math.max(C, 1);
  const out = Tensor.empty(xf.shape, xf.dtype);
  backend().softmax(xf.data(), out.storage, xf.dtype, N, C, log);
  return record("softmax", [xf], out, { log, N, C });
}

export const softmax = (x: Tensor, dim = -1) => softmaxImpl(x, dim, false);
export const logSoftmax = (x: Tensor, dim = -1) => softmaxImpl(x, dim, true);

// ---- small helpers used across the tensor layer -------------------------------------------------

export function zerosLike(t: Tensor, dtype: DType = t.dtype): Tensor {
  return Tensor.empty(t.shape, dtype);
}

export function onesLike(t: Tensor, dtype: DType = t.dtype): Tensor {
  const o = Tensor.empty(t.shape, dtype);
  backend().fill(o.view_(), 1);
  return o;
}

export function fullOf(shape: readonly number[], value: number, dtype: DType): Tensor {
  const o = new Tensor(allocStorage(dtype, numel(shape)), dtype, shape);
  if (value !== 0) backend().fill(o.view_(), value);
  return o;
}
