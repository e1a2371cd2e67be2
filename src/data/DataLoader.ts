/**
 * DataLoader: batches a Dataset with an optional seeded shuffle, a custom sampler, dropLast and a
 * collate function. Iterating twice gives two epochs (a new permutation each time when shuffling).
 */
import { GraftError } from "../core/errors.ts";
import { Generator } from "../core/rng.ts";
import { Tensor, stack, tensor } from "../tensor/index.ts";
import type { Dataset } from "./Dataset.ts";

export type CollateFn<T, B> = (items: T[]) => B;

export interface DataLoaderOptions<T, B> {
  batchSize?: number;
  shuffle?: boolean;
  /** Seed for shuffling (ignored when a generator is given). */
  seed?: number;
  generator?: Generator;
  dropLast?: boolean;
  collateFn?: CollateFn<T, B>;
  /** Yields the indices of one epoch; overrides shuffle. */
  sampler?: (epoch: number) => Iterable<number>;
}

/**
 * Stacks like torch's default_collate: tensors → stacked tensor, numbers → 1-D float32 tensor,
 * arrays/tuples and objects → collated element-wise; strings → arrays of strings.
 */
export function defaultCollate(items: unknown[]): unknown {
  const first = items[0];
  if (first instanceof Tensor) return stack(items as Tensor[]);
  if (typeof first === "number") return tensor(items as number[]);
  if (typeof first === "string") return items;
  if (Array.isArray(first)) return first.map((_, i) => defaultCollate(items.map((x) => (x as unknown[])[i])));
  if (first && typeof first === "object") {
    return Object.fromEntries(Object.keys(first).map((k) => [k, defaultCollate(items.map((x) => (x as Record<string, unknown>)[k]))]));
  }
  throw new GraftError(`defaultCollate: cannot collate items of type ${typeof first}`);
}

export class DataLoader<T, B = unknown> implements Iterable<B> {
  readonly batchSize: number;
  private readonly generator: Generator;
  private epoch = 0;

  constructor(
    readonly dataset: Dataset<T>,
    readonly opts: DataLoaderOptions<T, B> = {},
  ) {
    this.batchSize = opts.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new GraftError(`DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.generator = opts.generator ?? new Generator(opts.seed ?? 0);
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.opts.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  private indices(): number[] {
    const epoch = this.epoch++;
    if (this.opts.sampler) return [...this.opts.sampler(epoch)];
    if (this.opts.shuffle) return this.generator.permutation(this.dataset.length);
    return Array.from({ length: this.dataset.length }, (_, i) => i);
  }

  *[Symbol.iterator](): Iterator<B> {
    const idx = this.indices();
    const collate = this.opts.collateFn ?? (defaultCollate as CollateFn<T, B>);
    for (let start = 0; start < idx.length; start += this.batchSize) {
      const chunk = idx.slice(start, start + this.batchSize);
      if (chunk.length < this.batchSize && this.opts.dropLast) break;
      yield collate(chunk.map((i) => this.dataset.get(i)));
    }
  }

  /** The shuffle state, for checkpoints: restoring it replays the same future epochs. */
  getState(): { epoch: number; rng: ReturnType<Generator["getState"]> } {
    return { epoch: this.epoch, rng: this.generator.getState() };
  }

  setState(s: { epoch: number; rng: ReturnType<Generator["getState"]> }): void {
    this.epoch = s.epoch;
    this.generator.setState(s.rng);
  }
}
