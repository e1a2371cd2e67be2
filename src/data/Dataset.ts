/** Map-style datasets: anything with a length and an indexed getter. */
import { ShapeError, fmtShape } from "../core/errors.ts";
import type { Tensor } from "../tensor/index.ts";

export interface Dataset<T> {
  readonly length: number;
  get(index: number): T;
}

/** Rows of several tensors that share their first dim: get(i) = [t0[i], t1[i], ...]. */
export class TensorDataset implements Dataset<Tensor[]> {
  readonly tensors: Tensor[];
  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) throw new ShapeError("TensorDataset", "needs at least one tensor");
    const n = tensors[0]!.shape[0];
    for (const t of tensors) {
      if (t.ndim === 0 || t.shape[0] !== n) {
        throw new ShapeError("TensorDataset", `all tensors need the same first dim; got ${tensors.map((x) => fmtShape(x.shape)).join(", ")}`);
      }
    }
    this.tensors = tensors;
  }
  get length(): number {
    return this.tensors[0]!.shape[0]!;
  }
  get(index: number): Tensor[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new ShapeError("TensorDataset", `index ${index} out of range for ${this.length} rows`);
    }
    return this.tensors.map((t) => t.select(0, index));
  }
}

/** A dataset over a plain array. */
export class ArrayDataset<T> implements Dataset<T> {
  constructor(readonly items: readonly T[]) {}
  get length(): number {
    return this.items.length;
  }
  get(index: number): T {
    if (index < 0 || index >= this.items.length) throw new ShapeError("ArrayDataset", `index ${index} out of range for ${this.items.length} items`);
    return this.items[index]!;
  }
}

/** The rows of `dataset` at `indices` (e.g. a train/validation split). */
export class Subset<T> implements Dataset<T> {
  constructor(
    readonly dataset: Dataset<T>,
    readonly indices: readonly number[],
  ) {}
  get length(): number {
    return this.indices.length;
  }
  get(index: number): T {
    const i = this.indices[index];
    if (i === undefined) throw new ShapeError("Subset", `index ${index} out of range for ${this.indices.length} rows`);
    return this.dataset.get(i);
  }
}
