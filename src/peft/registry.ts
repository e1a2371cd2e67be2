/** PEFT methods looked up by name (STYLE.md rule 6): each method folder registers itself here. */
import type { CausalLM } from "../models/index.ts";
import { PeftError, type PeftMethod, type PeftModel } from "./types.ts";

const methods = new Map<string, PeftMethod>();

export function registerPeftMethod(method: PeftMethod): void {
  if (methods.has(method.name)) throw new PeftError(`PEFT method "${method.name}" is registered twice`);
  methods.set(method.name, method);
}

export function peftMethods(): string[] {
  return [...methods.keys()];
}

/** The short names of the CLI (`graft train --method prompt|ptuning|prefix`) for the registered ones. */
const aliases: Record<string, string> = { prompt: "prompt-tuning", ptuning: "p-tuning", prefix: "prefix-tuning", "prefix-tuning-v2": "p-tuning-v2" };

/** Whether `name` (or its short CLI name) is a registered method. */
export function hasPeftMethod(name: string): boolean {
  return methods.has(aliases[name] ?? name);
}

export function peftMethod(name: string): PeftMethod {
  const m = methods.get(aliases[name] ?? name);
  if (!m) throw new PeftError(`unknown PEFT method "${name}"; known: ${peftMethods().join(", ") || "(none)"}`);
  return m;
}

/** The method that reads adapter_config.json's `peft_type`. */
export function peftMethodForType(peftType: string): PeftMethod {
  for (const m of methods.values()) if (m.peftTypes.includes(peftType)) return m;
  throw new PeftError(`adapter_config.json: peft_type "${peftType}" is not supported; known: ${[...methods.values()].flatMap((m) => m.peftTypes).join(", ")}`);
}

/** Wraps `model` (frozen) with a new adapter of the named method. */
export function applyPeft(model: CausalLM, method: string, options: Record<string, unknown> = {}): PeftModel {
  return peftMethod(method).apply(model, options);
}
