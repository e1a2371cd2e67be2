/** Dataset / DataLoader behaviour: batching, dropLast, seeded shuffle, collate, sampler, state. */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import * as T from "../../src/tensor/index.ts";
import { DataLoader, defaultCollate } from "../../src/data/DataLoader.ts";
import { ArrayDataset, Subset, TensorDataset } from "../../src/data/Dataset.ts";

test("batches a TensorDataset with and without dropLast", () => {
  const ds = new TensorDataset(T.arange(10, undefined, 1, { dtype: "float32" }).reshape(10, 1), T.arange(10));
  const loader = new DataLoader<T.Tensor[], T.Tensor[]>(ds, { batchSize: 4 });
  const batches = [...loader];
  assert.equal(loader.length, 3);
  assert.deepEqual(batches.map((b) => b[0]!.shape), [[4, 1], [4, 1], [2, 1]]);
  assert.deepEqual(batches[2]![1]!.toArray(), [8, 9]);
  const dropped = [...new DataLoader(ds, { batchSize: 4, dropLast: true })];
  assert.equal(dropped.length, 2);
});

test("seeded shuffle is a permutation, reproducible, and differs between epochs", () => {
  const ds = new ArrayDataset(Array.from({ length: 20 }, (_, i) => i));
  const order = (loader: DataLoader<number, T.Tensor>) => [...loader].flatMap((b) => b.toArray());
  const a = new DataLoader(ds, { batchSize: 6, shuffle: true, seed: 42 }) as DataLoader<number, T.Tensor>;
  const b = new DataLoader(ds, { batchSize: 6, shuffle: true, seed: 42 }) as DataLoader<number, T.Tensor>;
  const e1 = order(a);
  assert.deepEqual(e1, order(b));
  assert.deepEqual([...e1].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
  assert.notDeepEqual(e1, Array.from({ length: 20 }, (_, i) => i));
  const state = a.getState();
  const e2 = order(a);
  assert.notDeepEqual(e2, e1);
  a.setState(state);
  assert.deepEqual(order(a), e2, "restoring the loader state replays the epoch");
});

test("collate of records, custom collate and sampler, Subset", () => {
  const ds = new ArrayDataset([
    { x: [1, 2], y: 0, text: "a" },
    { x: [3, 4], y: 1, text: "b" },
  ]);
  const batch = defaultCollate([ds.get(0), ds.get(1)]) as { x: T.Tensor[]; y: T.Tensor; text: string[] };
  assert.deepEqual(batch.x.map((t) => t.toArray()), [[1, 3], [2, 4]]);
  assert.deepEqual(batch.y.toArray(), [0, 1]);
  assert.deepEqual(batch.text, ["a", "b"]);
  const loader = new DataLoader(new Subset(new ArrayDataset([10, 11, 12, 13]), [3, 1]), {
    batchSize: 2,
    collateFn: (items: number[]) => items.join(","),
    sampler: () => [1, 0],
  });
  assert.deepEqual([...loader], ["11,13"]);
});
