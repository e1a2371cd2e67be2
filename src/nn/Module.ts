/**
 * Module: a tree of named parameters, buffers and submodules. A parameter's path
 * ("layers.0.mlp.up_proj.weight") is its checkpoint key, as in PyTorch state dicts.
 */
import { type DType, type Storage, allocBytes, bytesPerElement, isFloat, storageOver } from "../core/dtype.ts";
import { GraftError, fmtShape } from "../core/errors.ts";
import { sameShape } from "../core/shape.ts";
import { Tensor, noGrad } from "../tensor/index.ts";

/** Marks a tensor as a trainable parameter (a leaf that requires grad). */
export function Parameter(t: Tensor, requiresGrad = true): Tensor {
  const p = t.detach();
  p.requiresGrad = requiresGrad && isFloat(p.dtype);
  return p;
}

/** Byte alignment of each parameter inside packParameters' blocks (a cache line, a SIMD vector). */
const PACK_ALIGN = 64;

export class StateDictError extends GraftError {
  override name = "StateDictError";
}

export abstract class Module {
  training = true;
  protected readonly _parameters = new Map<string, Tensor | null>();
  protected readonly _buffers = new Map<string, Tensor>();
  protected readonly _modules = new Map<string, Module>();

  /** Registers (or replaces) a parameter and returns it. */
  param(name: string, t: Tensor | null, requiresGrad = true): Tensor {
    const p = t ? Parameter(t, requiresGrad) : null;
    this._parameters.set(name, p);
    if (p) p.name = name;
    return p as Tensor;
  }

  /** Registers a buffer: state saved in the state dict but not trained (e.g. running stats). */
  buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  /** Registers (or replaces) a submodule and returns it. */
  module<M extends Module>(name: string, m: M): M {
    this._modules.set(name, m);
    return m;
  }

  /** Replaces a registered parameter's tensor (used by loaders, PEFT and quantization). */
  setParameter(name: string, t: Tensor): void {
    if (!this._parameters.has(name)) throw new StateDictError(`${this.constructor.name} has no parameter "${name}"`);
    const old = this._parameters.get(name);
    const p = Parameter(t, old ? old.requiresGrad : true);
    p.name = name;
    this._parameters.set(name, p);
    (this as unknown as Record<string, unknown>)[name] = p;
  }

  getParameter(name: string): Tensor | null {
    return this._parameters.get(name) ?? null;
  }

  children(): [string, Module][] {
    return [...this._modules.entries()];
  }

  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this._modules) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** Every parameter with its dotted path; a tensor shared by two modules is listed once. */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of m._parameters) {
        if (!p || seen.has(p)) continue;
        seen.add(p);
        out.push([path ? `${path}.${name}` : name, p]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m._buffers) out.push([path ? `${path}.${name}` : name, b]);
    }
    return out;
  }

  /** Parameters and buffers by path (tensors are shared, not copied). */
  stateDict(): Record<string, Tensor> {
    const sd: Record<string, Tensor> = {};
    for (const [name, p] of this.namedParameters()) sd[name] = p;
    for (const [name, b] of this.namedBuffers()) sd[name] = b;
    return sd;
  }

  /**
   * Copies tensors into the module's parameters and buffers. Strict (default) refuses missing,
   * unexpected or mis-shaped keys, naming every one; non-strict loads what matches and reports the rest.
   */
  loadStateDict(sd: Record<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !(k in own));
    const misShaped = Object.keys(sd)
      .filter((k) => k in own && !sameShape(own[k]!.shape, sd[k]!.shape))
      .map((k) => `${k}: expected ${fmtShape(own[k]!.shape)}, got ${fmtShape(sd[k]!.shape)}`);
    if (misShaped.length || (strict && (missing.length || unexpected.length))) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing keys: ${missing.join(", ")}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(", ")}`);
      if (misShaped.length) parts.push(`shape mismatches: ${misShaped.join("; ")}`);
      throw new StateDictError(`loadStateDict(${this.constructor.name}): ${parts.join("; ")}`);
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(sd)) if (k in own) own[k]!.copy_(t);
    });
    return { missing, unexpected };
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Stops gradients for every parameter (or those whose path matches `filter`). */
  freeze(filter?: (path: string) => boolean): this {
    for (const [name, p] of this.namedParameters()) if (!filter || filter(name)) p.requiresGrad = false;
    return this;
  }

  unfreeze(filter?: (path: string) => boolean): this {
    for (const [name, p] of this.namedParameters()) if ((!filter || filter(name)) && isFloat(p.dtype)) p.requiresGrad = true;
    return this;
  }

  /**
   * Casts every floating parameter and buffer to dtype, in place of the old tensors. The parameters
   * land packed, as packParameters leaves them (when any needed the cast).
   */
  to(dtype: DType): this {
    if (this.parameters().some((p) => isFloat(p.dtype) && p.dtype !== dtype)) this.packParameters(dtype);
    for (const [, m] of this.namedModules()) {
      for (const [name, b] of m._buffers) if (isFloat(b.dtype)) m._buffers.set(name, b.to(dtype));
    }
    return this;
  }

  /**
   * Moves every floating parameter (cast to `dtype` when given) into one contiguous block per dtype,
   * in module order, each at a 64-byte boundary, in place of the old tensors (requiresGrad kept;
   * parameters that are the same view of one storage, as a tied weight, stay one storage). A block of
   * 2 MiB or more comes from the large-array allocator, which the native backend backs with huge
   * pages: a decode step then streams a layer's weights, small ones included, as one run of memory
   * with few TLB misses. Left out of the blocks (only cast, each into storage of its own):
   * placeholders (a storage smaller than the tensor, as withEmptyWeights makes) and parameters that
   * are different views of one storage. Like to(), this replaces the parameter tensors: do it
   * before an optimizer takes them.
   */
  packParameters(dtype?: DType): this {
    // Parameters over one storage (a tied weight: each module's tensor is its own detached view)
    // move together when they are the same view of it; other views of one storage are left alone.
    const groups = new Map<Storage, { p: Tensor; uses: [Module, string, Tensor][]; same: boolean }>();
    const left: [Module, string, Tensor][] = [];
    for (const [, m] of this.namedModules()) {
      for (const [name, p] of m._parameters) {
        if (!p || !isFloat(p.dtype)) continue;
        if (p.storage.length < p.numel) {
          left.push([m, name, p]);
          continue;
        }
        const g = groups.get(p.storage);
        if (!g) groups.set(p.storage, { p, uses: [[m, name, p]], same: true });
        else {
          g.uses.push([m, name, p]);
          g.same &&= g.p.offset === p.offset && sameShape(g.p.shape, p.shape) && sameShape(g.p.strides, p.strides);
        }
      }
    }
    const moving = [...groups.values()].filter((g) => g.same);
    for (const g of groups.values()) if (!g.same) left.push(...g.uses);
    const totals = new Map<DType, number>();
    const offsets = moving.map(({ p }) => {
      const dt = dtype ?? p.dtype;
      const offset = totals.get(dt) ?? 0;
      totals.set(dt, offset + Math.ceil((p.numel * bytesPerElement(dt)) / PACK_ALIGN) * PACK_ALIGN);
      return offset;
    });
    const blocks = new Map([...totals].map(([dt, bytes]) => [dt, allocBytes(bytes)]));
    noGrad(() => {
      moving.forEach(({ p, uses }, i) => {
        const dt = dtype ?? p.dtype;
        const block = blocks.get(dt)!;
        const t = new Tensor(storageOver(dt, block.buffer, block.byteOffset + offsets[i]!, p.numel), dt, p.shape).copy_(p);
        for (const [m, name] of uses) m.setParameter(name, t);
      });
      // What stays out of the blocks is still cast, each into storage of its own.
      for (const [m, name, p] of left) if (dtype && p.dtype !== dtype) m.setParameter(name, Tensor.empty(p.shape, dtype).copy_(p));
    });
    return this;
  }

  apply(fn: (m: Module) => void): this {
    for (const [, m] of this.namedModules()) fn(m);
    return this;
  }

  numParameters(trainableOnly = false): number {
    return this.parameters().reduce((n, p) => n + (!trainableOnly || p.requiresGrad ? p.numel : 0), 0);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
}
