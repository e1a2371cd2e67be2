/**
 * Tensor: a strided view over a typed-array storage, with a dtype and optional autograd state.
 * Views (reshape of contiguous data, transpose, permute, slice, expand, squeeze, unsqueeze) share
 * storage; ops allocate new contiguous outputs. Methods are thin wrappers over ops.ts.
 */
import { Buffer, constants as bufferConstants } from "node:buffer";
import { type DType, type Storage, allocLargeBuffer, allocStorage, bytesPerElement, readElement, storageOver } from "../core/dtype.ts";
import { DTypeError, ShapeError, fmtShape } from "../core/errors.ts";
import { contiguousStrides, isContiguous, numel } from "../core/shape.ts";
import type { View } from "../backend/Backend.ts";
import { type Node, backward as runBackward } from "./autograd.ts";
import * as ops from "./ops.ts";
import * as views from "./views.ts";

/** Storage whose contents are unspecified: large float buffers skip the zero-fill, small ones are ordinary. */
function allocUninit(dtype: DType, n: number): Storage {
  const bytes = n * bytesPerElement(dtype);
  if (bytes < 1 << 16 || bytes > bufferConstants.MAX_LENGTH || (dtype !== "float32" && dtype !== "bfloat16")) return allocStorage(dtype, n);
  const big = allocLargeBuffer(bytes, false);
  if (big) return storageOver(dtype, big.buffer, big.byteOffset, n);
  const b = Buffer.allocUnsafeSlow(bytes);
  return storageOver(dtype, b.buffer, b.byteOffset, n);
}

export type Scalar = number;
export type TensorLike = Tensor | number;

export class Tensor {
  storage: Storage;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (null for leaves). */
  node: Node | null = null;
  retainsGrad = false;
  /** Optional name (parameters carry their module path). */
  name?: string;

  constructor(storage: Storage, dtype: DType, shape: readonly number[], strides?: readonly number[], offset = 0) {
    this.storage = storage;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
  }

  /** A new zero-filled contiguous tensor. */
  static empty(shape: readonly number[], dtype: DType = "float32"): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError("empty", `invalid shape ${fmtShape(shape)}`);
    }
    return new Tensor(allocStorage(dtype, numel(shape)), dtype, shape);
  }

  /**
   * Like empty, but the contents are unspecified rather than zero: only for outputs that a kernel
   * overwrites in full (it saves zero-filling every large intermediate of a training step).
   */
  static uninit(shape: readonly number[], dtype: DType = "float32"): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError("uninit", `invalid shape ${fmtShape(shape)}`);
    }
    return new Tensor(allocUninit(dtype, numel(shape)), dtype, shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get numel(): number {
    return numel(this.shape);
  }

  /** Size of one dimension (negative counts from the end), or the whole shape. */
  size(dim?: number): number {
    if (dim === undefined) return this.numel;
    const d = dim < 0 ? dim + this.ndim : dim;
    if (d < 0 || d >= this.ndim) throw new ShapeError("size", `dim ${dim} out of range for shape ${fmtShape(this.shape)}`);
    return this.shape[d]!;
  }

  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  /** The backend-facing description of this tensor. */
  view_(): View {
    return { data: this.storage, dtype: this.dtype, shape: this.shape, strides: this.strides, offset: this.offset };
  }

  toString(): string {
    return `Tensor(shape=${fmtShape(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }

  // ---- autograd -------------------------------------------------------------------------------

  setRequiresGrad(on = true): this {
    if (on && this.dtype !== "float32" && this.dtype !== "float64" && this.dtype !== "bfloat16") {
      throw new DTypeError("requiresGrad", `only floating point tensors can require gradients, got ${this.dtype}`);
    }
    this.requiresGrad = on;
    return this;
  }

  /** Keep `.grad` on this non-leaf tensor during backward. */
  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  backward(grad?: Tensor): void {
    runBackward(this, grad, (t) => ops.onesLike(t), (a, b) => ops.add(a, b));
  }

  /** Same data, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.storage, this.dtype, this.shape, this.strides, this.offset);
  }

  zeroGrad(): void {
    this.grad = null;
  }

  // ---- data access ----------------------------------------------------------------------------

  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new ShapeError("item", `only one-element tensors can be converted to a number, got shape ${fmtShape(this.shape)}`);
    return readElement(this.storage, this.dtype, this.offset);
  }

  /** Dense row-major storage for this tensor (itself when already contiguous from offset 0). */
  data(): Storage {
    const c = this.contiguous();
    if (c.offset === 0 && c.storage.length === c.numel) return c.storage;
    return c.storage.subarray(c.offset, c.offset + c.numel) as Storage;
  }

  /** All elements, row-major, as JS numbers. */
  toArray(): number[] {
    const d = this.data();
    const out = new Array<number>(this.numel);
    for (let i = 0; i < out.length; i++) out[i] = readElement(d, this.dtype, i);
    return out;
  }

  /** Nested arrays, like torch's tolist(). A 0-d tensor gives a number. */
  tolist(): unknown {
    const flat = this.toArray();
    if (this.ndim === 0) return flat[0];
    let pos = 0;
    const build = (dim: number): unknown[] => {
      const n = this.shape[dim]!;
      const arr: unknown[] = [];
      for (let i = 0; i < n; i++) arr.push(dim === this.ndim - 1 ? flat[pos++] : build(dim + 1));
      return arr;
    };
    return build(0);
  }

  // ---- views ----------------------------------------------------------------------------------

  reshape(...shape: (number | number[])[]): Tensor {
    return views.reshape(this, shape.flat());
  }
  view(...shape: (number | number[])[]): Tensor {
    return views.view(this, shape.flat());
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return views.flatten(this, startDim, endDim);
  }
  transpose(dim0 = -2, dim1 = -1): Tensor {
    return views.transpose(this, dim0, dim1);
  }
  get T(): Tensor {
    return views.permute(this, [...this.shape.keys()].reverse());
  }
  permute(...dims: (number | number[])[]): Tensor {
    return views.permute(this, dims.flat());
  }
  squeeze(dim?: number): Tensor {
    return views.squeeze(this, dim);
  }
  unsqueeze(dim: number): Tensor {
    return views.unsqueeze(this, dim);
  }
  expand(...shape: (number | number[])[]): Tensor {
    return views.expand(this, shape.flat());
  }
  /** Elements start..end (exclusive, negatives count from the end) with a step along one dim. */
  slice(dim: number, start = 0, end?: number, step = 1): Tensor {
    return views.slice(this, dim, start, end, step);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return views.slice(this, dim, start, start + length, 1);
  }
  select(dim: number, index: number): Tensor {
    return views.select(this, dim, index);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return views.chunk(this, chunks, dim);
  }
  split(size: number | number[], dim = 0): Tensor[] {
    return views.split(this, size, dim);
  }
  contiguous(): Tensor {
    return this.isContiguous ? this : ops.contiguous(this);
  }
  clone(): Tensor {
    return ops.contiguous(this, true);
  }
  to(dtype: DType): Tensor {
    return dtype === this.dtype ? this : ops.cast(this, dtype);
  }
  float(): Tensor {
    return this.to("float32");
  }

  // ---- elementwise ----------------------------------------------------------------------------

  add(other: TensorLike, alpha?: number): Tensor {
    return ops.add(this, alpha === undefined ? other : ops.mul(other, alpha));
  }
  sub(other: TensorLike): Tensor {
    return ops.sub(this, other);
  }
  mul(other: TensorLike): Tensor {
    return ops.mul(this, other);
  }
  div(other: TensorLike): Tensor {
    return ops.div(this, other);
  }
  pow(other: TensorLike): Tensor {
    return ops.pow(this, other);
  }
  maximum(other: TensorLike): Tensor {
    return ops.maximum(this, other);
  }
  minimum(other: TensorLike): Tensor {
    return ops.minimum(this, other);
  }
  eq(other: TensorLike): Tensor {
    return ops.compare("eq", this, other);
  }
  ne(other: TensorLike): Tensor {
    return ops.compare("ne", this, other);
  }
  lt(other: TensorLike): Tensor {
    return ops.compare("lt", this, other);
  }
  le(other: TensorLike): Tensor {
    return ops.compare("le", this, other);
  }
  gt(other: TensorLike): Tensor {
    return ops.compare("gt", this, other);
  }
  ge(other: TensorLike): Tensor {
    return ops.compare("ge", this, other);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  silu(): Tensor {
    return ops.silu(this);
  }
  gelu(approximate: "tanh" | "none" = "tanh"): Tensor {
    return ops.gelu(this, approximate);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  abs(): Tensor {
    return ops.abs(this);
  }
  square(): Tensor {
    return ops.square(this);
  }
  clamp(min?: number, max?: number): Tensor {
    return ops.clamp(this, min, max);
  }

  // ---- reductions -----------------------------------------------------------------------------

  sum(dim?: number | number[], keepdim = false): Tensor {
    return ops.sum(this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return ops.mean(this, dim, keepdim);
  }
  max(dim?: number, keepdim = false): Tensor {
    return ops.amax(this, dim, keepdim);
  }
  min(dim?: number, keepdim = false): Tensor {
    return ops.amin(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return ops.argmax(this, dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return ops.argmin(this, dim, keepdim);
  }
  var(dim?: number | number[], keepdim = false, correction = 1): Tensor {
    return ops.variance(this, dim, keepdim, correction);
  }

  // ---- linear algebra and nn primitives -------------------------------------------------------

  matmul(other: Tensor): Tensor {
    return ops.matmul(this, other);
  }
  softmax(dim = -1): Tensor {
    return ops.softmax(this, dim);
  }
  logSoftmax(dim = -1): Tensor {
    return ops.logSoftmax(this, dim);
  }

  // ---- in place (no autograd; for optimizers and initialisers) --------------------------------

  /** Copies src (broadcast to this shape, cast to this dtype) into this tensor's elements. */
  copy_(src: TensorLike): this {
    ops.copyInto(this, src);
    return this;
  }
  fill_(value: number): this {
    ops.fillInto(this, value);
    return this;
  }
  zero_(): this {
    return this.fill_(0);
  }
  add_(other: TensorLike, alpha = 1): this {
    ops.binaryInto("add", this, alpha === 1 ? other : ops.mul(other, alpha));
    return this;
  }
  sub_(other: TensorLike): this {
    ops.binaryInto("sub", this, other);
    return this;
  }
  mul_(other: TensorLike): this {
    ops.binaryInto("mul", this, other);
    return this;
  }
  div_(other: TensorLike): this {
    ops.binaryInto("div", this, other);
    return this;
  }
}
