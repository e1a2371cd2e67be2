/**
 * The gradient table: one rule per primitive. A rule receives the node (inputs + saved values),
 * the gradient of the output and the output, and returns one gradient per input (null = none).
 * Rules run with gradient recording off.
 */
import type { UnaryOp } from "../backend/Backend.ts";
import { type GradRule, defineGradients } from "./autograd.ts";
import { Tensor } from "./Tensor.ts";
import {
  backend,
  cast,
  compare,
  contiguous,
  div,
  log,
  matmul,
  mul,
  neg,
  pow,
  sub,
  sumToShape,
  where,
  zerosLike,
} from "./ops.ts";
import type { DType } from "../core/dtype.ts";

const input = (node: { inputs: (Tensor | null)[] }, i: number) => node.inputs[i]!;
/** Whether input i of the node needs a gradient. */
const wants = (node: { inputs: (Tensor | null)[] }, i: number) => node.inputs[i]?.requiresGrad === true;

/** Gradient of a batched matmul operand: sum over broadcast batch dims to the operand's shape. */
function matmulGrad(g: Tensor, other: Tensor, which: "a" | "b", like: Tensor): Tensor {
  const r = which === "a" ? matmul(g, other.transpose(-1, -2)) : matmul(other.transpose(-1, -2), g);
  return sumToShape(r, like.shape);
}

const rules: Record<string, GradRule> = {
  // views and copies
  copy: (_n, g) => [g],
  cast: (n, g) => [cast(g, n.saved["dtype"] as DType)],
  reshape: (n, g) => [contiguous(g).reshape([...(n.saved["shape"] as number[])])],
  permute: (n, g) => [g.permute(n.saved["inverse"] as number[])],
  expand: (n, g) => [sumToShape(g, n.saved["shape"] as number[])],
  slice: (n, g) => {
    const { dim, start, step, inputShape } = n.saved as { dim: number; start: number; step: number; inputShape: number[] };
    const full = Tensor.empty(inputShape, g.dtype);
    const len = g.shape[dim]!;
    full.slice(dim, start, start + (len - 1) * step + 1, step).copy_(g);
    return [full];
  },

  cat: (n, g) => {
    const { dim, sizes } = n.saved as { dim: number; sizes: number[] };
    let pos = 0;
    return sizes.map((len) => {
      const part = g.slice(dim, pos, pos + len);
      pos += len;
      return part;
    });
  },

  // elementwise
  unary: (n, g) => {
    const x = input(n, 0);
    const gx = Tensor.uninit(x.shape, x.dtype);
    const gg = g.dtype === x.dtype ? g : cast(g, x.dtype);
    backend().unaryBackward(n.saved["op"] as UnaryOp, x.view_(), gg.view_(), gx.view_());
    return [gx];
  },
  // Inputs that need no gradient (frozen weights and biases, constants) get none computed.
  add: (n, g) => [wants(n, 0) ? sumToShape(g, input(n, 0).shape) : null, wants(n, 1) ? sumToShape(g, input(n, 1).shape) : null],
  sub: (n, g) => [wants(n, 0) ? sumToShape(g, input(n, 0).shape) : null, wants(n, 1) ? sumToShape(neg(g), input(n, 1).shape) : null],
  mul: (n, g) => [
    wants(n, 0) ? sumToShape(mul(g, input(n, 1)), input(n, 0).shape) : null,
    wants(n, 1) ? sumToShape(mul(g, input(n, 0)), input(n, 1).shape) : null,
  ],
  div: (n, g, out) => {
    const b = input(n, 1);
    return [wants(n, 0) ? sumToShape(div(g, b), input(n, 0).shape) : null, wants(n, 1) ? sumToShape(neg(div(mul(g, out), b)), b.shape) : null];
  },
  pow: (n, g, out) => {
    const a = input(n, 0);
    const b = input(n, 1);
    const ga = b.requiresGrad || a.requiresGrad ? mul(g, mul(b, pow(a, sub(b, 1)))) : null;
    // d/db a^b = a^b ln a, taken as 0 where a == 0 (torch's convention).
    const gb = b.requiresGrad ? where(compare("eq", a, 0), 0, mul(g, mul(out, log(a)))) : null;
    return [ga && sumToShape(ga, a.shape), gb && sumToShape(gb, b.shape)];
  },
  maximum: (n, g) => {
    const a = input(n, 0);
    const b = input(n, 1);
    // Ties split the gradient evenly, as torch does.
    const wa = where(compare("gt", a, b), 1, where(compare("eq", a, b), 0.5, 0));
    return [sumToShape(mul(g, wa), a.shape), sumToShape(mul(g, sub(1, wa)), b.shape)];
  },
  minimum: (n, g) => {
    const a = input(n, 0);
    const b = input(n, 1);
    const wa = where(compare("lt", a, b), 1, where(compare("eq", a, b), 0.5, 0));
    return [sumToShape(mul(g, wa), a.shape), sumToShape(mul(g, sub(1, wa)), b.shape)];
  },
  where: (n, g) => {
    const cond = n.saved["cond"] as Tensor;
    return [wants(n, 0) ? sumToShape(where(cond, g, 0), input(n, 0).shape) : null, wants(n, 1) ? sumToShape(where(cond, 0, g), input(n, 1).shape) : null];
  },

  // reductions
  sum: (n, g) => {
    const { inputShape, axes, keepdim } = n.saved as { inputShape: number[]; axes: number[]; keepdim: boolean };
    const kept = inputShape.map((d, i) => (axes.includes(i) ? 1 : d));
    const gk = keepdim ? g : contiguous(g).reshape(kept);
    return [contiguous(gk.expand(inputShape))];
  },
  extreme: (n, g, out) => {
    const x = input(n, 0);
    const kept = n.saved["keptShape"] as number[];
    const o = out.detach().reshape(kept);
    const mask = compare("eq", x, o);
    const count = mask.sum(kept.map((d, i) => (d === 1 && x.shape[i] !== 1 ? i : -1)).filter((i) => i >= 0), true);
    const gk = contiguous(g).reshape(kept);
    return [mul(mask, div(gk, count))];
  },

  // linear algebra
  matmul: (n, g) => {
    const a = input(n, 0);
    const b = input(n, 1);
    return [a.requiresGrad ? matmulGrad(g, b, "a", a) : null, b.requiresGrad ? matmulGrad(g, a, "b", b) : null];
  },

  // fused nn primitives
  frozen_linear: (n, g) => [sumToShape(matmul(g, (n.saved["weight"] as () => Tensor)()), input(n, 0).shape)],
  softmax: (n, g, out) => {
    const { log: isLog, N, C } = n.saved as { log: boolean; N: number; C: number };
    const gc = contiguous(g.dtype === out.dtype ? g : cast(g, out.dtype));
    const gx = Tensor.empty(out.shape, out.dtype);
    backend().softmaxBackward(out.storage, gc.data(), gx.storage, out.dtype, N, C, isLog);
    return [gx];
  },
  cross_entropy: (n, g) => {
    const x = input(n, 0);
    const s = n.saved as { targets: Int32Array; lse: Float32Array; N: number; V: number; ignoreIndex: number; eps: number };
    const gl = contiguous(g).data() as Float32Array;
    const gx = Tensor.uninit(x.shape, x.dtype);
    backend().crossEntropyBackward(x.storage, x.dtype, s.targets, s.lse, gl, s.N, s.V, s.ignoreIndex, s.eps, gx.storage);
    return [gx];
  },
  swiglu: (n, g) => {
    const gate = input(n, 0);
    const up = input(n, 1);
    const gc = contiguous(g.dtype === gate.dtype ? g : cast(g, gate.dtype));
    const gGate = Tensor.uninit(gate.shape, gate.dtype);
    const gUp = Tensor.uninit(up.shape, up.dtype);
    backend().swigluBackward(gate.data(), up.data(), gc.data(), gGate.storage, gUp.storage, gate.dtype, gate.numel);
    return [wants(n, 0) ? gGate : null, wants(n, 1) ? gUp : null];
  },
  rmsnorm: (n, g) => {
    const x = input(n, 0);
    const w = n.inputs[1] ?? null;
    const s = n.saved as { rstd: Float32Array; N: number; C: number };
    const gc = contiguous(g.dtype === x.dtype ? g : cast(g, x.dtype));
    const gx = Tensor.uninit(x.shape, x.dtype);
    const gw = w && w.requiresGrad ? Tensor.empty(w.shape, w.dtype) : null;
    backend().rmsnormBackward(x.storage, w ? w.storage : null, s.rstd, gc.data(), gx.storage, gw ? gw.storage : null, x.dtype, s.N, s.C);
    return [gx, gw];
  },
  layernorm: (n, g) => {
    const x = input(n, 0);
    const w = n.inputs[1] ?? null;
    const b = n.inputs[2] ?? null;
    const s = n.saved as { mean: Float32Array; rstd: Float32Array; N: number; C: number };
    const gc = contiguous(g.dtype === x.dtype ? g : cast(g, x.dtype));
    const gx = Tensor.empty(x.shape, x.dtype);
    const gw = w && w.requiresGrad ? Tensor.empty(w.shape, w.dtype) : null;
    const gb = b && b.requiresGrad ? Tensor.empty(b.shape, b.dtype) : null;
    backend().layernormBackward(
      x.storage,
      w ? w.storage : null,
      s.mean,
      s.rstd,
      gc.data(),
      gx.storage,
      gw ? gw.storage : null,
      gb ? gb.storage : null,
      x.dtype,
      s.N,
      s.C,
    );
    return [gx, gw, gb];
  },
  rope: (n, g) => {
    const x = input(n, 0);
    const s = n.saved as { pos: Int32Array; args: { B: number; T: number; H: number; D: number; rotaryDim: number; theta: number; style: "half" | "interleaved" } };
    const gc = contiguous(g.dtype === x.dtype ? g : cast(g, x.dtype));
    const gx = Tensor.uninit(x.shape, x.dtype);
    backend().rope(gc.data(), gx.storage, x.dtype, s.pos, { ...s.args, inverse: true });
    return [gx];
  },
  embedding: (n, g) => {
    const w = input(n, 0);
    const s = n.saved as { ids: Int32Array; V: number; C: number };
    const gc = contiguous(g.dtype === w.dtype ? g : cast(g, w.dtype));
    const gw = zerosLike(w);
    backend().embeddingBackward(gc.data(), s.ids, gw.storage, w.dtype, s.ids.length, s.V, s.C);
    return [gw];
  },
  attention: (n, g, out) => {
    const q = input(n, 0);
    const k = input(n, 1);
    const v = input(n, 2);
    const s = n.saved as { lse: Float32Array; args: Parameters<ReturnType<typeof backend>["attention"]>[6] };
    const gc = contiguous(g.dtype === q.dtype ? g : cast(g, q.dtype));
    const gq = Tensor.uninit(q.shape, q.dtype);
    const gk = Tensor.uninit(k.shape, k.dtype);
    const gv = Tensor.uninit(v.shape, v.dtype);
    backend().attentionBackward(q.storage, k.storage, v.storage, out.storage, s.lse, gc.data(), gq.storage, gk.storage, gv.storage, q.dtype, s.args);
    return [gq, gk, gv];
  },
};

defineGradients(rules);

/** The names of every primitive with a gradient rule (tests check each one by finite differences). */
export const primitiveNames = Object.keys(rules);
