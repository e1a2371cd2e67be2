/**
 * Resumable batch sources for the trainer: a batch is addressed by (epoch, index) and is the same
 * every time it is asked for, so a run resumed from a checkpoint sees exactly the batches the
 * uninterrupted run would have. Each epoch's order is a permutation drawn from Generator(seed + epoch).
 */
import { GraftError } from "../core/errors.ts";
import { Generator } from "../core/rng.ts";
import type { Dataset } from "./Dataset.ts";

export interface Batches<B> {
  /** Batches per epoch. */
  readonly length: number;
  /** The index-th batch of an epoch (0-based). */
  get(epoch: number, index: number): B;
}

export interface ShuffledBatchesOptions<T, B> {
  batchSize: number;
  collate: (items: T[], ctx: { epoch: number; index: number }) => B;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  /** Drop the last partial batch (default false). */
  dropLast?: boolean;
}

/** Batches of a map-style dataset in a seeded, per-epoch shuffled order. */
export function shuffledBatches<T, B>(dataset: Dataset<T>, opts: ShuffledBatchesOptions<T, B>): Batches<B> {
  const { batchSize } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new GraftError(`batchSize must be a positive integer, got ${batchSize}`);
  const n = dataset.length;
  const length = opts.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  let cached: { epoch: number; order: number[] } | null = null;
  const order = (epoch: number): number[] => {
    if (cached?.epoch !== epoch) {
      const o = opts.shuffle ?? true ? new Generator((opts.seed ?? 0) + epoch * 7919).permutation(n) : Array.from({ length: n }, (_, i) => i);
      cached = { epoch, order: o };
    }
    return cached.order;
  };
  return {
    length,
    get(epoch, index) {
      if (!Number.isInteger(index) || index < 0 || index >= length) throw new GraftError(`batch ${index} out of range for ${length} batches per epoch`);
      const idx = order(epoch).slice(index * batchSize, (index + 1) * batchSize);
      return opts.collate(idx.map((i) => dataset.get(i)), { epoch, index });
    },
  };
}
