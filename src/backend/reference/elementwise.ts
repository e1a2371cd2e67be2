/**
 * Elementwise kernels over strided Views: copy, fill, unary (+ backward), binary, where. Inputs
 * are gathered into dense float64 (or exact int64) arrays, computed in float64, and scattered into
 * the output view with rounding to its dtype; so outputs may alias inputs elementwise.
 */
import { isFloat } from "../../core/dtype.ts";
import { DTypeError } from "../../core/errors.ts";
import type { BinaryOp, UnaryOp, View } from "../Backend.ts";
import { geluErfGrad, geluErf, geluTanh, geluTanhGrad, sigmoid } from "./math.ts";
import { checkSameShape, checkView, gather, gatherBig, scatter, scatterBig, toBigInt, viewNumel } from "./strided.ts";

export function copy(src: View, dst: View): void {
  checkView("copy", "src", src);
  checkView("copy", "dst", dst);
  checkSameShape("copy", "dst", dst, src.shape);
  if (src.dtype === "int64" && dst.dtype === "int64") scatterBig(gatherBig(src), dst);
  else scatter(gather(src), dst);
}

export function fill(dst: View, value: number): void {
  checkView("fill", "dst", dst);
  if (dst.dtype === "int64") {
    scatterBig(new BigInt64Array(viewNumel(dst)).fill(toBigInt(value)), dst);
  } else {
    scatter(new Float64Array(viewNumel(dst)).fill(value), dst);
  }
}

function checkFloatOut(op: string, out: View): void {
  if (!isFloat(out.dtype)) throw new DTypeError(op, `output dtype ${out.dtype} is not a floating point dtype`);
}

/** y[i] = op(x[i]) in float64. */
export function unaryValues(op: UnaryOp, x: Float64Array, y: Float64Array): void {
  const n = x.length;
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) y[i] = -x[i]!;
      return;
    case "exp":
      for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]!);
      return;
    case "log":
      for (let i = 0; i < n; i++) y[i] = Math.log(x[i]!);
      return;
    case "sqrt":
      for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]!);
      return;
    case "rsqrt":
      for (let i = 0; i < n; i++) y[i] = 1 / Math.sqrt(x[i]!);
      return;
    case "tanh":
      for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]!);
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) y[i] = sigmoid(x[i]!);
      return;
    case "silu":
      for (let i = 0; i < n; i++) y[i] = x[i]! * sigmoid(x[i]!);
      return;
    case "gelu":
      for (let i = 0; i < n; i++) y[i] = geluTanh(x[i]!);
      return;
    case "gelu_erf":
      for (let i = 0; i < n; i++) y[i] = geluErf(x[i]!);
      return;
    case "relu":
      // NaN stays NaN, as in torch.relu.
      for (let i = 0; i < n; i++) y[i] = x[i]! > 0 ? x[i]! : x[i]! <= 0 ? 0 : x[i]!;
      return;
    case "abs":
      for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]!);
      return;
    case "sin":
      for (let i = 0; i < n; i++) y[i] = Math.sin(x[i]!);
      return;
    case "cos":
      for (let i = 0; i < n; i++) y[i] = Math.cos(x[i]!);
      return;
    case "square":
      for (let i = 0; i < n; i++) y[i] = x[i]! * x[i]!;
      return;
    case "reciprocal":
      for (let i = 0; i < n; i++) y[i] = 1 / x[i]!;
      return;
    default:
      throw new DTypeError("unary", `unknown op "${op as string}"`);
  }
}

/** g[i] = gy[i] * op'(x[i]) in float64. */
export function unaryGradValues(op: UnaryOp, x: Float64Array, gy: Float64Array, g: Float64Array): void {
  const n = x.length;
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) g[i] = -gy[i]!;
      return;
    case "exp":
      for (let i = 0; i < n; i++) g[i] = gy[i]! * Math.exp(x[i]!);
      return;
    case "log":
      for (let i = 0; i < n; i++) g[i] = gy[i]! / x[i]!;
      return;
    case "sqrt":
      for (let i = 0; i < n; i++) g[i] = (0.5 * gy[i]!) / Math.sqrt(x[i]!);
      return;
    case "rsqrt":
      for (let i = 0; i < n; i++) g[i] = (-0.5 * gy[i]!) / (x[i]! * Math.sqrt(x[i]!));
      return;
    case "tanh":
      for (let i = 0; i < n; i++) {
        const t = Math.tanh(x[i]!);
        g[i] = gy[i]! * (1 - t * t);
      }
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) {
        const s = sigmoid(x[i]!);
        g[i] = gy[i]! * s * (1 - s);
      }
      return;
    case "silu":
      for (let i = 0; i < n; i++) {
        const s = sigmoid(x[i]!);
        g[i] = gy[i]! * s * (1 + x[i]! * (1 - s));
      }
      return;
    case "gelu":
      for (let i = 0; i < n; i++) g[i] = gy[i]! * geluTanhGrad(x[i]!);
      return;
    case "gelu_erf":
      for (let i = 0; i < n; i++) g[i] = gy[i]! * geluErfGrad(x[i]!);
      return;
    case "relu":
      for (let i = 0; i < n; i++) g[i] = x[i]! > 0 ? gy[i]! : 0;
      return;
    case "abs":
      for (let i = 0; i < n; i++) g[i] = x[i]! > 0 ? gy[i]! : x[i]! < 0 ? -gy[i]! : 0;
      return;
    case "sin":
      for (let i = 0; i < n; i++) g[i] = gy[i]! * Math.cos(x[i]!);
      return;
    case "cos":
      for (let i = 0; i < n; i++) g[i] = -gy[i]! * Math.sin(x[i]!);
      return;
    case "square":
      for (let i = 0; i < n; i++) g[i] = 2 * gy[i]! * x[i]!;
      return;
    case "reciprocal":
      for (let i = 0; i < n; i++) g[i] = -gy[i]! / (x[i]! * x[i]!);
      return;
    default:
      throw new DTypeError("unaryBackward", `unknown op "${op as string}"`);
  }
}

export function unary(op: UnaryOp, x: View, out: View): void {
  const name = `unary(${op})`;
  checkView(name, "x", x);
  checkView(name, "out", out);
  checkSameShape(name, "out", out, x.shape);
  checkFloatOut(name, out);
  const xs = gather(x);
  const ys = new Float64Array(xs.length);
  unaryValues(op, xs, ys);
  scatter(ys, out);
}

export function unaryBackward(op: UnaryOp, x: View, gy: View, gx: View): void {
  const name = `unaryBackward(${op})`;
  checkView(name, "x", x);
  checkView(name, "gy", gy);
  checkView(name, "gx", gx);
  checkSameShape(name, "gy", gy, x.shape);
  checkSameShape(name, "gx", gx, x.shape);
  checkFloatOut(name, gx);
  const xs = gather(x);
  const g = new Float64Array(xs.length);
  unaryGradValues(op, xs, gather(gy), g);
  scatter(g, gx);
}

/** out[i] = a[i] op b[i] in float64 (comparisons give 1 or 0). */
export function binaryValues(op: BinaryOp, a: Float64Array, b: Float64Array, out: Float64Array): void {
  const n = out.length;
  switch (op) {
    case "add":
      for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
      return;
    case "sub":
      for (let i = 0; i < n; i++) out[i] = a[i]! - b[i]!;
      return;
    case "mul":
      for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!;
      return;
    case "div":
      for (let i = 0; i < n; i++) out[i] = a[i]! / b[i]!;
      return;
    case "pow":
      for (let i = 0; i < n; i++) out[i] = Math.pow(a[i]!, b[i]!);
      return;
    case "maximum": // propagates NaN, as torch.maximum
      for (let i = 0; i < n; i++) out[i] = Math.max(a[i]!, b[i]!);
      return;
    case "minimum":
      for (let i = 0; i < n; i++) out[i] = Math.min(a[i]!, b[i]!);
      return;
    case "eq":
      for (let i = 0; i < n; i++) out[i] = a[i] === b[i] ? 1 : 0;
      return;
    case "ne":
      for (let i = 0; i < n; i++) out[i] = a[i] !== b[i] ? 1 : 0;
      return;
    case "lt":
      for (let i = 0; i < n; i++) out[i] = a[i]! < b[i]! ? 1 : 0;
      return;
    case "le":
      for (let i = 0; i < n; i++) out[i] = a[i]! <= b[i]! ? 1 : 0;
      return;
    case "gt":
      for (let i = 0; i < n; i++) out[i] = a[i]! > b[i]! ? 1 : 0;
      return;
    case "ge":
      for (let i = 0; i < n; i++) out[i] = a[i]! >= b[i]! ? 1 : 0;
      return;
    default:
      throw new DTypeError("binary", `unknown op "${op as string}"`);
  }
}

/** Exact int64 math (wrapping like C for add/sub/mul); null for ops that int64 does in float64. */
function binaryBig(op: BinaryOp, a: BigInt64Array, b: BigInt64Array, out: BigInt64Array): boolean {
  const n = out.length;
  const wrap = (x: bigint) => BigInt.asIntN(64, x);
  switch (op) {
    case "add":
      for (let i = 0; i < n; i++) out[i] = wrap(a[i]! + b[i]!);
      return true;
    case "sub":
      for (let i = 0; i < n; i++) out[i] = wrap(a[i]! - b[i]!);
      return true;
    case "mul":
      for (let i = 0; i < n; i++) out[i] = wrap(a[i]! * b[i]!);
      return true;
    case "maximum":
      for (let i = 0; i < n; i++) out[i] = a[i]! >= b[i]! ? a[i]! : b[i]!;
      return true;
    case "minimum":
      for (let i = 0; i < n; i++) out[i] = a[i]! <= b[i]! ? a[i]! : b[i]!;
      return true;
    case "eq":
      for (let i = 0; i < n; i++) out[i] = a[i] === b[i] ? 1n : 0n;
      return true;
    case "ne":
      for (let i = 0; i < n; i++) out[i] = a[i] !== b[i] ? 1n : 0n;
      return true;
    case "lt":
      for (let i = 0; i < n; i++) out[i] = a[i]! < b[i]! ? 1n : 0n;
      return true;
    case "le":
      for (let i = 0; i < n; i++) out[i] = a[i]! <= b[i]! ? 1n : 0n;
      return true;
    case "gt":
      for (let i = 0; i < n; i++) out[i] = a[i]! > b[i]! ? 1n : 0n;
      return true;
    case "ge":
      for (let i = 0; i < n; i++) out[i] = a[i]! >= b[i]! ? 1n : 0n;
      return true;
    default:
      return false;
  }
}

export function binary(op: BinaryOp, a: View, b: View, out: View): void {
  const name = `binary(${op})`;
  checkView(name, "a", a);
  checkView(name, "b", b);
  checkView(name, "out", out);
  checkSameShape(name, "a", a, out.shape);
  checkSameShape(name, "b", b, out.shape);
  if (a.dtype === "int64" && b.dtype === "int64" && out.dtype === "int64") {
    const r = new BigInt64Array(viewNumel(out));
    if (binaryBig(op, gatherBig(a), gatherBig(b), r)) {
      scatterBig(r, out);
      return;
    }
  }
  const xa = gather(a);
  const xb = gather(b);
  const r = new Float64Array(xa.length);
  if (op === "mul" && a.dtype === "int32" && b.dtype === "int32" && out.dtype === "int32") {
    // Products of int32s can exceed 2^53; wrap exactly like C.
    for (let i = 0; i < r.length; i++) r[i] = Math.imul(xa[i]!, xb[i]!);
  } else {
    binaryValues(op, xa, xb, r);
  }
  scatter(r, out);
}

export function where(cond: View, a: View, b: View, out: View): void {
  checkView("where", "cond", cond);
  checkView("where", "a", a);
  checkView("where", "b", b);
  checkView("where", "out", out);
  checkSameShape("where", "cond", cond, out.shape);
  checkSameShape("where", "a", a, out.shape);
  checkSameShape("where", "b", b, out.shape);
  const c = gather(cond);
  if (out.dtype === "int64" && a.dtype === "int64" && b.dtype === "int64") {
    const xa = gatherBig(a);
    const xb = gatherBig(b);
    for (let i = 0; i < c.length; i++) if (c[i] === 0) xa[i] = xb[i]!;
    scatterBig(xa, out);
    return;
  }
  const xa = gather(a);
  const xb = gather(b);
  // NaN counts as true (cond != 0), as bool(NaN) does in torch.
  for (let i = 0; i < c.length; i++) if (c[i] === 0) xa[i] = xb[i]!;
  scatter(xa, out);
}
