/**
 * Training checkpoints: one `<name>.ckpt` directory per save, holding
 *   model.safetensors (or adapter_model.safetensors)  weights
 *   optimizer.safetensors + optimizer.json           optimizer tensors (moments, ...) and JSON state
 *   scheduler.json, rng.json, config.json            scheduler state, RNG state(s), run config
 *   trainer_state.json                               step, epoch, format version, extra
 * The directory is built under a temp name and renamed into place, so a crash leaves either the old
 * checkpoint or the new one. `latest` (a file holding the directory name) is replaced atomically
 * after the rename; older checkpoints beyond keep-last-N are then removed.
 * Plain data only: this module never sees Tensor or an optimizer object.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { dtypeOfStorage, type Storage } from "../core/dtype.ts";
import type { RngState } from "../core/rng.ts";
import { CheckpointError, FormatError } from "./FormatError.ts";
import { fsyncDir, writeFileAtomic } from "./atomicWrite.ts";
import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
import type { TensorEntry, TensorMap } from "./tensorData.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const CHECKPOINT_FORMAT_VERSION = 1;
export const LATEST_FILE = "latest";

export interface CheckpointState {
  step: number;
  epoch: number;
  /** Model weights, or only the adapter's for PEFT runs (see weightsFile). */
  weights: TensorMap;
  /** File name of the weights (default "model.safetensors"; "adapter_model.safetensors" for adapters). */
  weightsFile?: string;
  /** Optimizer tensors by name (a bare typed array is saved as 1-D) plus its JSON state (hyper-params, step counts). */
  optimizer?: { tensors: Record<string, TensorEntry | Storage>; state: Json };
  scheduler?: Json;
  /** Generator.getState() of one generator, or of several by name. */
  rng?: RngState | Record<string, RngState>;
  config?: Json;
  /** Anything else the trainer wants back (best metric, samples seen, ...). */
  extra?: Json;
}

export interface SaveCheckpointOptions {
  /** Directory name inside the root (default `step-<step, 8 digits>.ckpt`). */
  name?: string;
  /** Keep only the newest N checkpoints (by step); older ones are deleted after the save. */
  keepLast?: number;
  /** `__metadata__` strings for the weights file (e.g. {format: "pt"}). */
  metadata?: Record<string, string>;
}

export interface CheckpointListing {
  name: string;
  path: string;
  step: number;
}

function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, "0")}.ckpt`;
}

function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

function toEntry(v: TensorEntry | Storage): TensorEntry {
  if (ArrayBuffer.isView(v)) return { dtype: dtypeOfStorage(v), shape: [v.length], data: v };
  return v;
}

/** Saves a checkpoint under `root`; returns the checkpoint directory. */
export function saveCheckpoint(root: string, state: CheckpointState, opts: SaveCheckpointOptions = {}): string {
  const fail = (m: string) => new CheckpointError(root, m);
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw fail(`step must be a non-negative integer, got ${state.step}`);
  if (typeof state.epoch !== "number" || !Number.isFinite(state.epoch) || state.epoch < 0) throw fail(`epoch must be a non-negative number, got ${state.epoch}`);
  const name = opts.name ?? checkpointName(state.step);
  if (!name.endsWith(".ckpt") || name.includes("/") || name.includes("\\") || name.startsWith(".")) throw fail(`checkpoint name "${name}" must be a plain directory name ending in .ckpt`);
  const weightsFile = state.weightsFile ?? "model.safetensors";
  if (!/^[\w.-]+\.safetensors$/.test(weightsFile)) throw fail(`weightsFile "${weightsFile}" must be a plain .safetensors file name`);
  fs.mkdirSync(root, { recursive: true });
  const final = path.join(root, name);
  const tmp = path.join(root, `.${name}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  fs.mkdirSync(tmp);
  try {
    writeSafetensors(path.join(tmp, weightsFile), state.weights, opts.metadata);
    if (state.optimizer) {
      const tensors: TensorMap = {};
      for (const [k, v] of Object.entries(state.optimizer.tensors)) tensors[k] = toEntry(v);
      writeSafetensors(path.join(tmp, "optimizer.safetensors"), tensors);
      writeJson(path.join(tmp, "optimizer.json"), state.optimizer.state);
    }
    if (state.scheduler !== undefined) writeJson(path.join(tmp, "scheduler.json"), state.scheduler);
    if (state.rng !== undefined) writeJson(path.join(tmp, "rng.json"), state.rng);
    if (state.config !== undefined) writeJson(path.join(tmp, "config.json"), state.config);
    writeJson(path.join(tmp, "trainer_state.json"), {
      format_version: CHECKPOINT_FORMAT_VERSION,
      step: state.step,
      epoch: state.epoch,
      weights_file: weightsFile,
      extra: state.extra ?? null,
    });
    fsyncDir(tmp);
    if (fs.existsSync(final)) {
      // Replacing a checkpoint of the same name: move the old one aside first, delete it after.
      const old = `${tmp}.old`;
      fs.renameSync(final, old);
      fs.renameSync(tmp, final);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, final);
    }
    fsyncDir(root);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  writeFileAtomic(path.join(root, LATEST_FILE), name + "\n");
  if (opts.keepLast !== undefined) pruneCheckpoints(root, opts.keepLast);
  return final;
}

function readJson(file: string, what: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new CheckpointError(file, `cannot read ${what}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new CheckpointError(file, `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function isRngState(v: unknown): v is RngState {
  const o = v as RngState;
  return (
    typeof o === "object" && o !== null && Array.isArray(o.s) && o.s.length === 4 &&
    o.s.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff) && (o.spare === null || typeof o.spare === "number")
  );
}

/** Lists the checkpoints under a root, oldest step first. */
export function listCheckpoints(root: string): CheckpointListing[] {
  if (!fs.existsSync(root)) return [];
  const out: CheckpointListing[] = [];
  for (const d of fs.readdirSync(root, { withFileTypes: true })) {
    if (!d.isDirectory() || !d.name.endsWith(".ckpt") || d.name.startsWith(".")) continue;
    const p = path.join(root, d.name);
    try {
      const ts = readJson(path.join(p, "trainer_state.json"), "trainer_state.json") as { step?: unknown };
      if (typeof ts?.step === "number") out.push({ name: d.name, path: p, step: ts.step });
    } catch {
      // An unreadable checkpoint is not listed (and never chosen as latest).
    }
  }
  return out.sort((a, b) => a.step - b.step || a.name.localeCompare(b.name));
}

/** The checkpoint `latest` points to (falling back to the highest step), or null when there is none. */
export function latestCheckpoint(root: string): string | null {
  const pointer = path.join(root, LATEST_FILE);
  if (fs.existsSync(pointer)) {
    const name = fs.readFileSync(pointer, "utf8").trim();
    if (name && !name.includes("/") && !name.includes("\\") && fs.existsSync(path.join(root, name, "trainer_state.json"))) return path.join(root, name);
  }
  const all = listCheckpoints(root);
  return all.length ? all[all.length - 1]!.path : null;
}

/** Deletes all but the newest `keep` checkpoints (never the one `latest` points to); returns the deleted paths. */
export function pruneCheckpoints(root: string, keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new CheckpointError(root, `keepLast must be a positive integer, got ${keep}`);
  const latest = latestCheckpoint(root);
  const all = listCheckpoints(root);
  const doomed = all.slice(0, Math.max(0, all.length - keep)).filter((c) => c.path !== latest);
  for (const c of doomed) fs.rmSync(c.path, { recursive: true, force: true });
  return doomed.map((c) => c.path);
}

/** Loads a checkpoint directory, or the latest one when given a root holding `latest` / `*.ckpt`. */
export function loadCheckpoint(dirOrRoot: string): CheckpointState & { path: string } {
  let dir = dirOrRoot;
  if (!fs.existsSync(path.join(dir, "trainer_state.json"))) {
    const latest = latestCheckpoint(dirOrRoot);
    if (!latest) throw new CheckpointError(dirOrRoot, "no checkpoint here (no trainer_state.json, no latest, no *.ckpt)");
    dir = latest;
  }
  const fail = (m: string) => new CheckpointError(dir, m);
  const ts = readJson(path.join(dir, "trainer_state.json"), "trainer_state.json") as Record<string, Json>;
  if (typeof ts !== "object" || ts === null) throw fail("trainer_state.json is not an object");
  if (ts["format_version"] !== CHECKPOINT_FORMAT_VERSION) throw fail(`checkpoint format version ${JSON.stringify(ts["format_version"])} is not ${CHECKPOINT_FORMAT_VERSION}`);
  const { step, epoch } = ts;
  if (typeof step !== "number" || !Number.isSafeInteger(step) || step < 0) throw fail(`trainer_state.json: bad step ${JSON.stringify(step)}`);
  if (typeof epoch !== "number" || !Number.isFinite(epoch)) throw fail(`trainer_state.json: bad epoch ${JSON.stringify(epoch)}`);
  const weightsFile = typeof ts["weights_file"] === "string" ? ts["weights_file"] : "model.safetensors";
  if (!/^[\w.-]+\.safetensors$/.test(weightsFile)) throw fail(`trainer_state.json: bad weights_file "${weightsFile}"`);
  const readTensors = (file: string): TensorMap => {
    let f: SafetensorsFile;
    try {
      f = SafetensorsFile.open(path.join(dir, file));
    } catch (e) {
      if (e instanceof FormatError) throw e;
      throw fail(`cannot open ${file}: ${(e as Error).message}`);
    }
    try {
      return f.readAll();
    } finally {
      f.close();
    }
  };
  const state: CheckpointState & { path: string } = { path: dir, step, epoch, weightsFile, weights: readTensors(weightsFile) };
  if (fs.existsSync(path.join(dir, "optimizer.safetensors"))) {
    state.optimizer = { tensors: readTensors("optimizer.safetensors"), state: readJson(path.join(dir, "optimizer.json"), "optimizer.json") };
  }
  if (fs.existsSync(path.join(dir, "scheduler.json"))) state.scheduler = readJson(path.join(dir, "scheduler.json"), "scheduler.json");
  if (fs.existsSync(path.join(dir, "rng.json"))) {
    const rng = readJson(path.join(dir, "rng.json"), "rng.json") as unknown;
    const ok = isRngState(rng) || (typeof rng === "object" && rng !== null && !Array.isArray(rng) && Object.values(rng).every(isRngState));
    if (!ok) throw fail("rng.json is not a generator state ({s: [4 uint32], spare}) or a map of them");
    state.rng = rng as RngState | Record<string, RngState>;
  }
  if (fs.existsSync(path.join(dir, "config.json"))) state.config = readJson(path.join(dir, "config.json"), "config.json");
  if (ts["extra"] !== null && ts["extra"] !== undefined) state.extra = ts["extra"];
  return state;
}
