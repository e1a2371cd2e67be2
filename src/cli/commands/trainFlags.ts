/**
 * Flags shared by `graft pretrain` and `graft train`, and the config file that stands for them:
 * `--config run.yaml` (or .json) holds the same options by flag name, in kebab-case or snake_case
 * (`max_steps: 500`, `lr: 2e-4`, `data: [a.txt, b.txt]`); flags given on the command line win.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import YAML from "yaml";
import { GraftError } from "../../core/errors.ts";
import type { Json } from "../../formats/index.ts";
import type { TrainOptions } from "../../train/index.ts";

export type FlagKind = "string" | "number" | "int" | "boolean" | "list";
export type FlagSpec = Record<string, FlagKind>;

export const trainFlagSpec: FlagSpec = {
  out: "string",
  lr: "number",
  epochs: "number",
  "max-steps": "int",
  "batch-size": "int",
  "grad-accum": "int",
  "max-grad-norm": "number",
  "weight-decay": "number",
  optimizer: "string",
  schedule: "string",
  "warmup-steps": "int",
  "warmup-ratio": "number",
  "min-lr-ratio": "number",
  "eval-every": "int",
  "eval-batches": "int",
  "early-stopping": "int",
  "min-delta": "number",
  "checkpoint-every": "int",
  "keep-last": "int",
  resume: "boolean",
  "resume-from": "string",
  seed: "int",
  "log-every": "int",
  bf16: "boolean",
  progress: "string",
};

export const trainUsage = [
  "  --out <dir>                  output directory (model, logs, loss.png, checkpoints/)",
  "  --config <file.yaml|json>    options by flag name (kebab- or snake_case); flags override it",
  "  --lr <x>  --epochs <n>  --max-steps <n>  --batch-size <n>  --grad-accum <n>",
  "  --optimizer adamw|adam|sgd   --weight-decay <x>  --max-grad-norm <x> (0 = no clipping)",
  "  --schedule linear|cosine|constant  --warmup-steps <n> | --warmup-ratio <x>  --min-lr-ratio <x>",
  "  --eval-every <n>  --eval-batches <n>  --early-stopping <patience>  --min-delta <x>",
  "  --checkpoint-every <n>  --keep-last <n>  --resume | --resume-from <checkpoint dir>",
  "  --seed <n>  --log-every <n>  --bf16  --progress auto|bar|lines|off",
];

export type FlagValues = Record<string, string | number | boolean | string[] | Record<string, unknown> | undefined>;

function convert(flag: string, kind: FlagKind, v: unknown, where: string): string | number | boolean | string[] {
  const bad = (want: string) => new GraftError(`${where}--${flag} must be ${want}, got ${JSON.stringify(v)}`);
  switch (kind) {
    case "boolean":
      if (typeof v === "boolean") return v;
      if (v === "true" || v === "false") return v === "true";
      throw bad("true or false");
    case "number":
    case "int": {
      const x = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
      if (!Number.isFinite(x) || (kind === "int" && !Number.isInteger(x))) throw bad(kind === "int" ? "an integer" : "a number");
      return x;
    }
    case "list":
      if (Array.isArray(v) && v.every((s) => typeof s === "string" || typeof s === "number")) return v.map(String);
      if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter(Boolean);
      throw bad("a list of strings");
    default:
      if (typeof v === "string" || typeof v === "number") return String(v);
      throw bad("a string");
  }
}

/** Reads a YAML or JSON config file into flag values (by flag name), checking every key. */
export function readConfigFile(file: string, spec: FlagSpec, passThrough: readonly string[] = []): FlagValues {
  if (!fs.existsSync(file)) throw new GraftError(`--config ${file}: no such file`);
  const text = fs.readFileSync(file, "utf8");
  let raw: unknown;
  try {
    raw = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new GraftError(`--config ${file}: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new GraftError(`--config ${file}: expected a mapping of options`);
  const out: FlagValues = {};
  for (const [k0, v] of Object.entries(raw as Record<string, unknown>)) {
    const k = k0.replace(/_/g, "-");
    if (passThrough.includes(k)) {
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new GraftError(`${file}: "${k0}" must be a mapping`);
      out[k] = v as Record<string, unknown>;
      continue;
    }
    const kind = spec[k];
    if (!kind) throw new GraftError(`${file}: unknown option "${k0}" (options: ${Object.keys(spec).join(", ")})`);
    out[k] = convert(k, kind, v, `${file}: `);
  }
  return out;
}

/** Parses argv against spec (plus --config): config file values first, command-line flags over them. */
export function parseFlags(argv: string[], spec: FlagSpec, passThrough: readonly string[] = []): { values: FlagValues; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = { config: { type: "string" } };
  for (const [k, kind] of Object.entries(spec)) options[k] = kind === "boolean" ? { type: "boolean" } : kind === "list" ? { type: "string", multiple: true } : { type: "string" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new GraftError((e as Error).message);
  }
  const values: FlagValues = {};
  const cfg = parsed.values["config"];
  if (typeof cfg === "string") Object.assign(values, readConfigFile(path.resolve(cfg), spec, passThrough));
  for (const [k, v] of Object.entries(parsed.values)) {
    if (k === "config" || v === undefined) continue;
    const kind = spec[k]!;
    values[k] = kind === "list" ? (v as string[]).flatMap((s) => convert(k, "list", s, "") as string[]) : convert(k, kind, v, "");
  }
  return { values, positionals: parsed.positionals };
}

const n = (v: unknown) => v as number | undefined;

/** The train() options the shared flags set. */
export function trainOptionsFrom(v: FlagValues): Partial<TrainOptions<never, never>> & { dtype?: "bfloat16" } {
  const o: Partial<TrainOptions<never, never>> & { dtype?: "bfloat16" } = {};
  const set = <K extends keyof typeof o>(k: K, x: (typeof o)[K] | undefined) => {
    if (x !== undefined) o[k] = x;
  };
  set("lr", n(v["lr"]));
  set("epochs", n(v["epochs"]));
  set("maxSteps", n(v["max-steps"]));
  set("gradAccumSteps", n(v["grad-accum"]));
  set("maxGradNorm", n(v["max-grad-norm"]));
  set("weightDecay", n(v["weight-decay"]));
  const opt = v["optimizer"] as string | undefined;
  if (opt !== undefined && !["adamw", "adam", "sgd"].includes(opt)) throw new GraftError(`--optimizer must be adamw, adam or sgd, got "${opt}"`);
  set("optimizer", opt as TrainOptions<never, never>["optimizer"]);
  const sch = v["schedule"] as string | undefined;
  if (sch !== undefined && !["linear", "cosine", "constant"].includes(sch)) throw new GraftError(`--schedule must be linear, cosine or constant, got "${sch}"`);
  set("schedule", sch as TrainOptions<never, never>["schedule"]);
  set("warmupSteps", n(v["warmup-steps"]));
  set("warmupRatio", n(v["warmup-ratio"]));
  set("minLrRatio", n(v["min-lr-ratio"]));
  set("evalEvery", n(v["eval-every"]));
  set("evalMaxBatches", n(v["eval-batches"]));
  if (v["early-stopping"] !== undefined) o.earlyStopping = { patience: n(v["early-stopping"])!, minDelta: n(v["min-delta"]) };
  set("checkpointEvery", n(v["checkpoint-every"]));
  set("keepLast", n(v["keep-last"]));
  if (v["resume-from"] !== undefined) o.resume = path.resolve(v["resume-from"] as string);
  else if (v["resume"]) o.resume = true;
  set("seed", n(v["seed"]));
  set("logEvery", n(v["log-every"]));
  const prog = v["progress"] as string | undefined;
  if (prog !== undefined && !["auto", "bar", "lines", "off"].includes(prog)) throw new GraftError(`--progress must be auto, bar, lines or off, got "${prog}"`);
  set("progress", prog as TrainOptions<never, never>["progress"]);
  if (v["bf16"]) o.dtype = "bfloat16";
  return o;
}

/** Flag values as plain JSON (for the checkpoint's config.json). */
export function flagsJson(v: FlagValues): Json {
  return JSON.parse(JSON.stringify(v)) as Json;
}
