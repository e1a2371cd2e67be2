/**
 * Which modules an adapter wraps, as PEFT decides it: `target_modules` is a list of names (a module
 * matches when its path equals a name or ends in "." + name), a string (a regular expression that
 * must match the whole path), or "all-linear" (every Linear but the output layer); optional
 * `layers_to_transform` keeps only some decoder layers. Also the in-place module swap.
 */
import { Linear, type Module } from "../nn/index.ts";
import type { CausalLM } from "../models/index.ts";
import { PeftError } from "./types.ts";

export type TargetModules = string | string[];

/** PEFT's per-architecture defaults (TRANSFORMERS_MODELS_TO_*_TARGET_MODULES_MAPPING). */
export const LORA_DEFAULT_TARGETS: Record<string, string[]> = {
  qwen2: ["q_proj", "v_proj"],
  llama: ["q_proj", "v_proj"],
  gpt2: ["c_attn"],
  bert: ["query", "value"],
};

export function defaultTargets(table: Record<string, string[]>, model: CausalLM, method: string): string[] {
  const t = table[model.config.model_type];
  if (!t) throw new PeftError(`${method}: no default target_modules for model_type "${model.config.model_type}"; pass target_modules`);
  return t;
}

/** target_modules from options: a list, a regex string, or "all-linear". */
export function parseTargets(v: unknown, method: string): TargetModules | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw new PeftError(`${method}: target_modules must be a list of module names, a regular expression or "all-linear", got ${JSON.stringify(v)}`);
}

const LAYER_INDEX = /(?:^|\.)(?:layers|h|layer|blocks)\.(\d+)\./;

function outputLayerPaths(model: Module): Set<string> {
  const out = new Set<string>();
  for (const [p] of model.namedModules()) if (p === "lm_head" || p.endsWith(".lm_head")) out.add(p);
  return out;
}

/** PEFT `check_target_module_exists`. */
export function matchesTarget(path: string, targets: TargetModules): boolean {
  if (typeof targets === "string") return new RegExp(`^(?:${targets})$`).test(path);
  return targets.some((t) => path === t || path.endsWith(`.${t}`));
}

/**
 * Paths of the Linear modules to wrap, in module order. Throws naming target_modules when none
 * matches (PEFT's "Target modules ... not found in the base model").
 */
export function findTargetLinears(model: Module, targets: TargetModules, method: string, layersToTransform?: number[] | null): [string, Linear][] {
  const skip = targets === "all-linear" ? outputLayerPaths(model) : new Set<string>();
  const out: [string, Linear][] = [];
  for (const [path, m] of model.namedModules()) {
    if (!path || skip.has(path)) continue;
    if (targets === "all-linear" ? !isLinearLike(m) : !matchesTarget(path, targets)) continue;
    if (layersToTransform) {
      const idx = LAYER_INDEX.exec(path);
      if (!idx || !layersToTransform.includes(Number(idx[1]))) continue;
    }
    if (!isLinearLike(m)) {
      if (targets === "all-linear") continue;
      throw new PeftError(`${method}: target module "${path}" is a ${m.constructor.name}; only Linear layers can be wrapped`);
    }
    out.push([path, m as Linear]);
  }
  if (out.length === 0) {
    throw new PeftError(`${method}: target_modules ${JSON.stringify(targets)} matched no Linear module of the base model (${model.constructor.name})`);
  }
  return out;
}

/** A Linear, or a layer standing in for one (a quantized Linear): has in/out features and forward(x). */
export function isLinearLike(m: Module): boolean {
  return m instanceof Linear || (m as { isLinearLike?: boolean }).isLinearLike === true;
}

/** Replaces the module at `path` (both the registered child and the parent's field of that name). */
export function replaceModule(root: Module, path: string, replacement: Module): void {
  const dot = path.lastIndexOf(".");
  const parentPath = dot < 0 ? "" : path.slice(0, dot);
  const name = path.slice(dot + 1);
  let parent: Module | undefined;
  for (const [p, m] of root.namedModules()) if (p === parentPath) parent = m;
  if (!parent || !parent.children().some(([n]) => n === name)) throw new PeftError(`no module at "${path}" to replace`);
  parent.module(name, replacement);
  (parent as unknown as Record<string, unknown>)[name] = replacement;
}

export function moduleAt(root: Module, path: string): Module | undefined {
  for (const [p, m] of root.namedModules()) if (p === path) return m;
  return undefined;
}

// ---- option parsing (PEFT snake_case keys) ------------------------------------------------

export function num(opts: Record<string, unknown>, key: string, def: number, method: string, check?: (x: number) => boolean): number {
  const v = opts[key];
  if (v === undefined || v === null) return def;
  const x = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof x !== "number" || !Number.isFinite(x) || (check && !check(x))) throw new PeftError(`${method}: option ${key} has an invalid value ${JSON.stringify(v)}`);
  return x;
}

export function int(opts: Record<string, unknown>, key: string, def: number, method: string, min = 1): number {
  return num(opts, key, def, method, (x) => Number.isInteger(x) && x >= min);
}

export function bool(opts: Record<string, unknown>, key: string, def: boolean, method: string): boolean {
  const v = opts[key];
  if (v === undefined || v === null) return def;
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new PeftError(`${method}: option ${key} must be true or false, got ${JSON.stringify(v)}`);
}

export function str<S extends string>(opts: Record<string, unknown>, key: string, def: S, method: string, allowed?: readonly S[]): S {
  const v = opts[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== "string" || (allowed && !allowed.includes(v as S))) {
    throw new PeftError(`${method}: option ${key} must be ${allowed ? allowed.map((a) => JSON.stringify(a)).join(" | ") : "a string"}, got ${JSON.stringify(v)}`);
  }
  return v as S;
}

/** Rejects keys this method does not know (a typo would otherwise be silently ignored). */
export function checkKnownOptions(opts: Record<string, unknown>, known: readonly string[], method: string): void {
  const bad = Object.keys(opts).filter((k) => !known.includes(k));
  if (bad.length) throw new PeftError(`${method}: unknown option(s) ${bad.join(", ")}; known: ${known.join(", ")}`);
}

/** PEFT adapter_config.json keys that carry no behaviour here and are accepted as written. */
export const COMMON_CONFIG_KEYS = [
  "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping", "peft_version",
] as const;

/** Keeps the keys this method reads (PEFT drops keys of newer PEFT versions it does not know). */
export function knownOnly(config: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => known.includes(k)));
}
