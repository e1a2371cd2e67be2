/**
 * A model directory's generation_config.json as default generation options, read the way
 * transformers' GenerationConfig is: sampling only when do_sample is true (then top_k defaults to 50).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { GraftError } from "../core/errors.ts";
import type { GenerateOptions } from "./generate.ts";

export type GenerationDefaults = Pick<GenerateOptions, "temperature" | "topK" | "topP" | "minP" | "repetitionPenalty" | "maxNewTokens">;

/** Maps generation_config.json fields (snake_case, verbatim) to generate() options. */
export function generationDefaults(raw: Record<string, unknown>): GenerationDefaults {
  const num = (key: string): number | undefined => {
    const v = raw[key];
    return typeof v === "number" && Number.isFinite(v) ? v : undefined;
  };
  const out: GenerationDefaults = {};
  const rp = num("repetition_penalty");
  if (rp !== undefined && rp !== 1) out.repetitionPenalty = rp;
  const maxNew = num("max_new_tokens");
  if (maxNew !== undefined && maxNew >= 1) out.maxNewTokens = Math.floor(maxNew);
  if (raw["do_sample"] === true) {
    out.temperature = num("temperature") ?? 1;
    out.topK = num("top_k") ?? 50;
    const topP = num("top_p");
    if (topP !== undefined && topP < 1) out.topP = topP;
    const minP = num("min_p");
    if (minP !== undefined && minP > 0) out.minP = minP;
  }
  return out;
}

/** The defaults of dir/generation_config.json ({} when the file is absent). */
export function readGenerationConfig(dir: string): GenerationDefaults {
  const file = path.join(dir, "generation_config.json");
  if (!fs.existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new GraftError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new GraftError(`${file} is not a JSON object`);
  return generationDefaults(raw as Record<string, unknown>);
}
