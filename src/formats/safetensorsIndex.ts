/**
 * Sharded safetensors checkpoints: `model.safetensors.index.json` maps each tensor name to a shard
 * file in the same directory (`{"metadata": {"total_size": N}, "weight_map": {name: file}}`).
 * Shards are opened lazily, the first time one of their tensors is asked for.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SafetensorsError } from "./FormatError.ts";
import { writeFileAtomic } from "./atomicWrite.ts";
import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
import { elementSize, numelOf, type TensorEntry, type TensorInfo, type TensorMap, type TensorReader } from "./tensorData.ts";

export const SAFETENSORS_INDEX = "model.safetensors.index.json";

export interface SafetensorsIndex {
  metadata: Record<string, unknown>;
  weight_map: Record<string, string>;
}

/** Parses and validates an index file; shard names must be plain file names in the same directory. */
export function readSafetensorsIndex(indexPath: string): SafetensorsIndex {
  const fail = (m: string) => new SafetensorsError(indexPath, m);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexPath, "utf8"));
  } catch (e) {
    if (e instanceof SyntaxError) throw fail(`index is not valid JSON: ${e.message}`);
    throw e;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw fail("index is not a JSON object");
  const { metadata = {}, weight_map: weightMap } = json as Record<string, unknown>;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) throw fail(`index has no "weight_map" object`);
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string") throw fail(`weight_map["${name}"] is not a file name`);
    if (shard === "" || shard === "." || shard === ".." || shard.includes("/") || shard.includes("\\") || shard.includes("\0")) {
      throw fail(`weight_map["${name}"] = "${shard}" is not a plain file name in the index's directory`);
    }
  }
  return { metadata: metadata as Record<string, unknown>, weight_map: weightMap as Record<string, string> };
}

/** A sharded checkpoint read through its index; tensor infos come from each shard's header. */
export class ShardedSafetensors implements TensorReader {
  readonly path: string;
  readonly index: SafetensorsIndex;
  private readonly dir: string;
  private readonly shards = new Map<string, SafetensorsFile>();
  private infos: TensorInfo[] | null = null;

  constructor(indexPath: string) {
    this.path = indexPath;
    this.dir = path.dirname(indexPath);
    this.index = readSafetensorsIndex(indexPath);
  }

  private shard(file: string): SafetensorsFile {
    let s = this.shards.get(file);
    if (!s) {
      s = SafetensorsFile.open(path.join(this.dir, file));
      this.shards.set(file, s);
    }
    return s;
  }

  private shardOf(name: string): SafetensorsFile {
    const file = Object.hasOwn(this.index.weight_map, name) ? this.index.weight_map[name] : undefined;
    if (file === undefined) throw new SafetensorsError(this.path, `no tensor named "${name}" in weight_map`);
    const s = this.shard(file);
    if (!s.has(name)) throw new SafetensorsError(s.path, `weight_map of ${path.basename(this.path)} puts "${name}" here, but the shard has no such tensor`);
    return s;
  }

  /** Infos of every tensor, in weight_map order (opens every shard's header). */
  get tensors(): readonly TensorInfo[] {
    this.infos ??= Object.keys(this.index.weight_map).map((n) => this.shardOf(n).info(n));
    return this.infos;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.index.weight_map, name);
  }
  info(name: string): TensorInfo {
    return this.shardOf(name).info(name);
  }
  read(name: string): TensorEntry {
    return this.shardOf(name).read(name);
  }
  readBytes(name: string): Uint8Array {
    return this.shardOf(name).readBytes(name);
  }
  /** The union of the shards' `__metadata__` maps. */
  shardMetadata(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of new Set(Object.values(this.index.weight_map))) Object.assign(out, this.shard(f).metadata);
    return out;
  }
  close(): void {
    for (const s of this.shards.values()) s.close();
    this.shards.clear();
  }
}

/**
 * Opens a model directory or file: a directory with `model.safetensors.index.json` (sharded), a
 * directory with `model.safetensors`, an index file, or a single `.safetensors` file.
 */
export function openSafetensorsModel(p: string): TensorReader {
  if (fs.statSync(p).isDirectory()) {
    const index = path.join(p, SAFETENSORS_INDEX);
    if (fs.existsSync(index)) return new ShardedSafetensors(index);
    const single = path.join(p, "model.safetensors");
    if (fs.existsSync(single)) return SafetensorsFile.open(single);
    throw new SafetensorsError(p, `directory has neither ${SAFETENSORS_INDEX} nor model.safetensors`);
  }
  return p.endsWith(".json") ? new ShardedSafetensors(p) : SafetensorsFile.open(p);
}

export interface ShardOptions {
  /** Largest shard, in bytes of tensor data (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** `__metadata__` written into every shard (e.g. {format: "pt"}). */
  metadata?: Record<string, string>;
  /** File name prefix: `<prefix>.safetensors` or `<prefix>-00001-of-00003.safetensors` (default "model"). */
  prefix?: string;
}

/**
 * Writes tensors as one `<prefix>.safetensors` when they fit in one shard, else as numbered shards plus
 * `<prefix>.safetensors.index.json`. Each file is written atomically; returns the files written.
 */
export function writeShardedSafetensors(dir: string, tensors: TensorMap, opts: ShardOptions = {}): string[] {
  const max = opts.maxShardBytes ?? 5_000_000_000;
  const prefix = opts.prefix ?? "model";
  const groups: string[][] = [[]];
  let size = 0;
  let total = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = numelOf(t.shape) * elementSize(t.dtype);
    total += bytes;
    if (size > 0 && size + bytes > max) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1]!.push(name);
    size += bytes;
  }
  fs.mkdirSync(dir, { recursive: true });
  if (groups.length === 1) {
    const file = path.join(dir, `${prefix}.safetensors`);
    writeSafetensors(file, tensors, opts.metadata);
    return [file];
  }
  const pad = (i: number) => String(i).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const written: string[] = [];
  groups.forEach((names, i) => {
    const shardName = `${prefix}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    const part: TensorMap = {};
    for (const n of names) {
      part[n] = tensors[n]!;
      weightMap[n] = shardName;
    }
    const file = path.join(dir, shardName);
    writeSafetensors(file, part, opts.metadata);
    written.push(file);
  });
  const indexFile = path.join(dir, `${prefix}.safetensors.index.json`);
  writeFileAtomic(indexFile, JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n");
  written.push(indexFile);
  return written;
}
