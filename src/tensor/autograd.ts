/**
 * Reverse-mode autograd. Every primitive op that produces a tensor from inputs needing gradients
 * records a Node: the op name (key into the one gradient table, gradients.ts), its inputs, and
 * what it saved. `backward()` walks the graph in reverse topological order.
 */
import { AutogradError, fmtShape } from "../core/errors.ts";
import type { Tensor } from "./Tensor.ts";

export interface Node {
  op: string;
  inputs: (Tensor | null)[];
  /** Whatever the forward saved for the gradient rule (tensors, typed arrays, options). */
  saved: Record<string, unknown>;
}

/** A gradient rule: given the node and the gradient of its output, the gradients of its inputs. */
export type GradRule = (node: Node, gOut: Tensor, out: Tensor) => (Tensor | null)[];

const rules = new Map<string, GradRule>();

export function defineGradients(table: Record<string, GradRule>): void {
  for (const [op, rule] of Object.entries(table)) rules.set(op, rule);
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with gradient recording off (like torch.no_grad). Also works with async functions. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      // Keep it off until the promise settles.
      return r.finally(() => {
        gradEnabled = prev;
      }) as T;
    }
    gradEnabled = prev;
    return r;
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
}

export function setGradEnabled(on: boolean): void {
  gradEnabled = on;
}

/** Whether an op with these inputs should record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** The `saved` of a node whose backward has run (its inputs and saved tensors are dropped). */
const FREED: Record<string, unknown> = Object.freeze({});

function freeNode(t: Tensor): void {
  if (t.node) t.node = { op: t.node.op, inputs: [], saved: FREED };
}

/** Attaches a node to `out` when any input requires grad. Returns out. */
export function record(op: string, inputs: (Tensor | null)[], out: Tensor, saved: Record<string, unknown> = {}): Tensor {
  if (!needsGrad(...inputs)) return out;
  if (!rules.has(op)) throw new AutogradError(op, "no gradient rule is defined for this op");
  out.node = { op, inputs, saved };
  out.requiresGrad = true;
  return out;
}

/**
 * Backpropagates from `root`. For a non-scalar root, `grad` (same shape) is required. Gradients of
 * leaves that require grad accumulate into `.grad`; intermediate tensors get `.grad` only if they
 * called `retainGrad()`.
 */
export function backward(root: Tensor, grad: Tensor | undefined, ones: (like: Tensor) => Tensor, add: (a: Tensor, b: Tensor) => Tensor): void {
  if (!root.requiresGrad) {
    throw new AutogradError("backward", `tensor of shape ${fmtShape(root.shape)} does not require grad and has no grad_fn`);
  }
  if (!grad) {
    if (root.numel !== 1) {
      throw new AutogradError(
        "backward",
        `grad can be implicitly created only for scalar outputs; got shape ${fmtShape(root.shape)}, pass a gradient`,
      );
    }
    grad = ones(root);
  } else if (grad.shape.length !== root.shape.length || grad.shape.some((d, i) => d !== root.shape[i])) {
    throw new AutogradError("backward", `gradient shape ${fmtShape(grad.shape)} does not match tensor shape ${fmtShape(root.shape)}`);
  }

  // Reverse topological order by iterative DFS.
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    if (i === 0) {
      if (visited.has(t)) {
        stack.pop();
        continue;
      }
      visited.add(t);
    }
    if (i === 0 && t.node?.saved === FREED) {
      throw new AutogradError(
        t.node.op,
        "trying to backward through the graph a second time: the first backward freed its saved tensors (compute the loss again)",
      );
    }
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1] = i + 1;
      const inp = inputs[i];
      if (inp && inp.requiresGrad && !visited.has(inp)) stack.push([inp, 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }

  visited.clear();
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, grad);
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx]!;
      // As PyTorch (retain_graph=False), the graph is freed as the backward walks it: each node
      // drops its inputs and saved tensors once used, so activations are garbage as soon as
      // possible, even while the caller still holds the loss.
      (order as (Tensor | null)[])[idx] = null;
      const g = grads.get(t);
      if (!g) {
        freeNode(t);
        continue;
      }
      grads.delete(t);
      if (!t.node || t.retainsGrad) {
        t.grad = t.grad ? add(t.grad, g) : g.dtype === t.dtype ? g : g.to(t.dtype);
      }
      if (!t.node) continue;
      const rule = rules.get(t.node.op)!;
      const inGrads = rule(t.node, g, t);
      t.node.inputs.forEach((inp, k) => {
        const gi = inGrads[k];
        if (!inp || !inp.requiresGrad || !gi) return;
        if (gi.shape.length !== inp.shape.length || gi.shape.some((d, j) => d !== inp.shape[j])) {
          throw new AutogradError(
            t.node!.op,
            `gradient rule produced shape ${fmtShape(gi.shape)} for input ${k} of shape ${fmtShape(inp.shape)}`,
          );
        }
        const existing = grads.get(inp);
        grads.set(inp, existing ? add(existing, gi) : gi);
      });
      freeNode(t);
    }
  } finally {
    gradEnabled = prev;
  }
}
