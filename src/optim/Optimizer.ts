/** Optimizer base: parameter groups, per-parameter state, zeroGrad and a serialisable state dict. */
import { GraftError } from "../core/errors.ts";
import { Tensor } from "../tensor/index.ts";

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  [option: string]: unknown;
}

export interface OptimizerStateDict {
  step: number;
  groups: Omit<ParamGroup, "params">[];
  /** state[i] belongs to the i-th parameter in group order; tensors as plain number arrays. */
  state: Record<string, { shape: number[]; data: number[] }>[];
}

export abstract class Optimizer {
  readonly paramGroups: ParamGroup[];
  /** Per-parameter state tensors (momentum buffers, Adam moments). */
  readonly state = new Map<Tensor, Record<string, Tensor>>();
  stepCount = 0;

  constructor(params: Tensor[] | ParamGroup[], defaults: Omit<ParamGroup, "params">) {
    if (params.length === 0) throw new GraftError(`${this.constructor.name}: got an empty parameter list`);
    this.paramGroups =
      params[0] instanceof Tensor
        ? [{ ...defaults, params: params as Tensor[] } as ParamGroup]
        : (params as ParamGroup[]).map((g) => ({ ...defaults, ...g }));
  }

  /** Clears gradients (sets them to null, like set_to_none=True). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.grad = null;
  }

  abstract step(): void;

  protected allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  stateDict(): OptimizerStateDict {
    return {
      step: this.stepCount,
      groups: this.paramGroups.map(({ params: _p, ...rest }) => rest),
      state: this.allParams().map((p) => {
        const s = this.state.get(p) ?? {};
        return Object.fromEntries(Object.entries(s).map(([k, t]) => [k, { shape: [...t.shape], data: t.toArray() }]));
      }),
    };
  }

  loadStateDict(sd: OptimizerStateDict, makeTensor: (data: number[], shape: number[]) => Tensor): void {
    const params = this.allParams();
    if (sd.state.length !== params.length || sd.groups.length !== this.paramGroups.length) {
      throw new GraftError(
        `${this.constructor.name}.loadStateDict: state has ${sd.state.length} parameters in ${sd.groups.length} groups, optimizer has ${params.length} in ${this.paramGroups.length}`,
      );
    }
    this.stepCount = sd.step;
    sd.groups.forEach((g, i) => Object.assign(this.paramGroups[i]!, g));
    params.forEach((p, i) => {
      const entries = Object.entries(sd.state[i]!);
      if (entries.length) this.state.set(p, Object.fromEntries(entries.map(([k, v]) => [k, makeTensor(v.data, v.shape)])));
    });
  }
}
