import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Generator } from "../../src/core/rng.ts";
import { GraftError } from "../../src/core/errors.ts";
import { f32ToF16, CheckpointError, SafetensorsError, latestCheckpoint, listCheckpoints, loadCheckpoint, saveCheckpoint } from "../../src/formats/index.ts";
import { bytesOf, everyDtype, tmpDir } from "./helpers.ts";

function state(step: number) {
  const gen = new Generator(7);
  for (let i = 0; i < step; i++) gen.normal();
  return {
    step,
    epoch: step / 10,
    weights: everyDtype(),
    optimizer: {
      tensors: { "exp_avg.w": Float32Array.from([1, 2, 3]), "exp_avg_sq.w": { dtype: "float32" as const, shape: [3], data: Float32Array.from([4, 5, 6]) } },
      state: { lr: 1e-3, betas: [0.9, 0.999], step },
    },
    scheduler: { last_epoch: step, base_lrs: [1e-3] },
    rng: { default: gen.getState(), data: new Generator(step).getState() },
    config: { model_type: "qwen2", hidden_size: 8 },
    extra: { best_loss: 1.25 },
  };
}

test("checkpoint: save → load restores weights, optimizer, scheduler, rng, step/epoch, config", () => {
  const root = tmpDir("ckpt");
  const s = state(3);
  const dir = saveCheckpoint(root, s);
  assert.equal(path.basename(dir), "step-00000003.ckpt");
  assert.deepEqual(fs.readdirSync(root).sort(), ["latest", "step-00000003.ckpt"], "no temp dirs or files left");
  assert.deepEqual(fs.readdirSync(dir).sort(), ["config.json", "model.safetensors", "optimizer.json", "optimizer.safetensors", "rng.json", "scheduler.json", "trainer_state.json"]);
  const back = loadCheckpoint(root);
  assert.equal(back.path, dir);
  assert.equal(back.step, 3);
  assert.equal(back.epoch, 0.3);
  for (const [k, t] of Object.entries(s.weights)) {
    const got = back.weights[k]!;
    // float16 is not one of our dtypes: it comes back as float32 holding the same values.
    if (t.dtype === "float16") assert.deepEqual(Uint16Array.from(got.data as Float32Array, f32ToF16), t.data, k);
    else assert.deepEqual(bytesOf(got.data), bytesOf(t.data), k);
  }
  assert.deepEqual(back.optimizer!.state, s.optimizer.state);
  assert.deepEqual(back.optimizer!.tensors["exp_avg.w"], { dtype: "float32", shape: [3], data: Float32Array.from([1, 2, 3]) });
  assert.deepEqual(back.scheduler, s.scheduler);
  assert.deepEqual(back.config, s.config);
  assert.deepEqual(back.extra, s.extra);
  // The RNG continues exactly where it stopped, including a cached Box–Muller spare.
  const resumed = new Generator(0);
  resumed.setState((back.rng as Record<string, ReturnType<Generator["getState"]>>)["default"]!);
  const original = new Generator(7);
  for (let i = 0; i < 3; i++) original.normal();
  assert.deepEqual([resumed.normal(), resumed.normal(), resumed.random()], [original.normal(), original.normal(), original.random()]);
});

test("checkpoint: latest pointer, keep-last-N, adapter weights file, overwrite of the same step", () => {
  const root = tmpDir("ckpt-keep");
  for (const step of [10, 20, 30, 40]) saveCheckpoint(root, { step, epoch: 0, weights: { a: { dtype: "int32", shape: [1], data: Int32Array.from([step]) } }, weightsFile: "adapter_model.safetensors" }, { keepLast: 2 });
  assert.deepEqual(listCheckpoints(root).map((c) => c.step), [30, 40]);
  assert.equal(fs.readFileSync(path.join(root, "latest"), "utf8").trim(), "step-00000040.ckpt");
  assert.equal(latestCheckpoint(root), path.join(root, "step-00000040.ckpt"));
  const last = loadCheckpoint(root);
  assert.equal(last.weightsFile, "adapter_model.safetensors");
  assert.deepEqual(last.weights["a"]!.data, Int32Array.from([40]));
  // Re-saving the same step replaces it atomically.
  saveCheckpoint(root, { step: 40, epoch: 1, weights: { a: { dtype: "int32", shape: [1], data: Int32Array.from([41]) } } });
  assert.deepEqual(loadCheckpoint(path.join(root, "step-00000040.ckpt")).weights["a"]!.data, Int32Array.from([41]));
  assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith(".")), []);
  // A dangling latest pointer falls back to the highest step.
  fs.writeFileSync(path.join(root, "latest"), "step-99999999.ckpt\n");
  assert.equal(latestCheckpoint(root), path.join(root, "step-00000040.ckpt"));
});

test("checkpoint: a failed save leaves the previous checkpoint and no temp dir", () => {
  const root = tmpDir("ckpt-fail");
  saveCheckpoint(root, { step: 1, epoch: 0, weights: { a: { dtype: "float32", shape: [1], data: Float32Array.from([1]) } } });
  assert.throws(() => saveCheckpoint(root, { step: 2, epoch: 0, weights: { a: { dtype: "float32", shape: [2], data: Float32Array.from([1]) } } }), SafetensorsError);
  assert.deepEqual(fs.readdirSync(root).sort(), ["latest", "step-00000001.ckpt"]);
  assert.equal(loadCheckpoint(root).step, 1);
});

test("checkpoint: named errors for missing or corrupt checkpoints", () => {
  const root = tmpDir("ckpt-bad");
  assert.throws(() => loadCheckpoint(root), (e: unknown) => e instanceof CheckpointError && /no checkpoint here/.test((e as Error).message));
  const dir = saveCheckpoint(root, state(1));
  fs.writeFileSync(path.join(dir, "rng.json"), '{"s": [1, 2]}');
  assert.throws(() => loadCheckpoint(dir), /rng\.json is not a generator state/);
  fs.writeFileSync(path.join(dir, "trainer_state.json"), "{oops");
  assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof CheckpointError && /trainer_state\.json is not valid JSON/.test((e as Error).message));
  const dir2 = saveCheckpoint(root, state(2));
  fs.writeFileSync(path.join(dir2, "model.safetensors"), new Uint8Array(20));
  assert.throws(() => loadCheckpoint(dir2), (e: unknown) => e instanceof GraftError);
  assert.throws(() => saveCheckpoint(root, { step: -1, epoch: 0, weights: {} }), CheckpointError);
  assert.throws(() => saveCheckpoint(root, { step: 1, epoch: 0, weights: {} }, { name: "../evil.ckpt" }), /plain directory name/);
});
