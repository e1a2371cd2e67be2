/** `graft generate <model-dir> --prompt "..."`: streams a completion of one prompt to stdout. */
import { parseArgs } from "node:util";
import { GraftError } from "../../core/errors.ts";
import type { DType } from "../../core/dtype.ts";
import { type ChatGenerateOptions, type GenerationDefaults, readGenerationConfig, streamGenerate } from "../../generation/index.ts";
import { type CausalLM, loadCausalLM } from "../../models/index.ts";
import { QUANT_TYPES, type QuantizeReport, isQuantType, quantizeModel } from "../../quant/index.ts";
import { Tokenizer } from "../../tokenizers/index.ts";
import type { Command } from "../Command.ts";

/** Sampling flags shared by generate, chat and serve. */
export const samplingFlags = {
  "max-new-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repetition-penalty": { type: "string" },
  seed: { type: "string" },
  dtype: { type: "string" },
  quantize: { type: "string" },
} as const;

export const samplingUsage = [
  "  --max-new-tokens <n>         tokens to generate at most",
  "  --temperature <t>            0 = greedy (default: generation_config.json, else greedy)",
  "  --top-k <k>                  keep the k most likely tokens (0 = off)",
  "  --top-p <p>                  nucleus sampling mass (1 = off)",
  "  --min-p <p>                  drop tokens below p × the top probability (0 = off)",
  "  --repetition-penalty <r>     HF repetition penalty (1 = off)",
  "  --seed <n>                   sampling seed (default: random)",
  "  --dtype <float32|bfloat16>   weight dtype (default float32)",
  "  --quantize <q8_0|q4_0>       quantize the Linear weights for inference (output head: q8_0)",
];

type SamplingValues = Partial<Record<keyof typeof samplingFlags, string>>;

function num(flag: string, v: string | undefined, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || (integer && !Number.isInteger(x))) throw new GraftError(`--${flag} must be ${integer ? "an integer" : "a number"}, got "${v}"`);
  return x;
}

/** Generation options from the sampling flags (only those given). */
export function samplingFromFlags(v: SamplingValues): ChatGenerateOptions {
  const out: ChatGenerateOptions = {};
  const set = <K extends keyof ChatGenerateOptions>(k: K, x: ChatGenerateOptions[K] | undefined) => {
    if (x !== undefined) out[k] = x;
  };
  set("maxNewTokens", num("max-new-tokens", v["max-new-tokens"], true));
  set("temperature", num("temperature", v.temperature));
  set("topK", num("top-k", v["top-k"], true));
  set("topP", num("top-p", v["top-p"]));
  set("minP", num("min-p", v["min-p"]));
  set("repetitionPenalty", num("repetition-penalty", v["repetition-penalty"]));
  set("seed", num("seed", v.seed, true));
  return out;
}

export interface LoadedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** generation_config.json's defaults. */
  defaults: GenerationDefaults;
  /** What --quantize replaced, when given. */
  quantized?: QuantizeReport;
}

/**
 * Loads a model directory for inference: weights (eval mode), tokenizer and generation defaults;
 * with `quantize` ("q8_0" | "q4_0", the --quantize flag) the Linear layers become QuantizedLinear.
 */
export function loadForInference(dir: string, dtype?: string, quantize?: string): LoadedModel {
  if (dtype !== undefined && dtype !== "float32" && dtype !== "bfloat16") throw new GraftError(`--dtype must be float32 or bfloat16, got "${dtype}"`);
  if (quantize !== undefined && !isQuantType(quantize)) throw new GraftError(`--quantize must be ${QUANT_TYPES.join(" or ")}, got "${quantize}"`);
  const tokenizer = Tokenizer.fromDir(dir);
  const model = loadCausalLM(dir, dtype ? { dtype: dtype as DType } : {});
  model.eval();
  const quantized = quantize !== undefined ? quantizeModel(model, quantize) : undefined;
  return { model, tokenizer, defaults: readGenerationConfig(dir), ...(quantized ? { quantized } : {}) };
}

/** One line for stderr: what --quantize did. */
export function quantizeSummary(r: QuantizeReport): string {
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const skipped = r.skipped.length ? `; kept in float: ${r.skipped.map((s) => `${s.path} (${s.reason})`).join(", ")}` : "";
  return `quantized ${r.replaced.length} modules to ${r.type} (${mb(r.bytesBefore)} MB → ${mb(r.bytesAfter)} MB of weights)${skipped}`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export const generateCommand: Command = {
  name: "generate",
  description: "generate a completion of a prompt with a model directory (streamed to stdout)",
  usage: [
    'graft generate <model-dir> --prompt "..." [options]',
    "",
    "  --prompt <text>              the prompt (default: read from stdin when it is not a terminal)",
    "  --chat                       wrap the prompt as a user message with the chat template",
    "  --system <text>              system prompt (with --chat)",
    "  --stop <text>                stop when this text appears (repeatable; not printed)",
    "  --verbose                    print token counts and speed to stderr",
    ...samplingUsage,
  ].join("\n"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        prompt: { type: "string" },
        chat: { type: "boolean" },
        system: { type: "string" },
        stop: { type: "string", multiple: true },
        verbose: { type: "boolean" },
        ...samplingFlags,
      },
    });
    if (positionals.length !== 1) {
      console.error(`usage: ${this.usage.split("\n")[0]}`);
      return 2;
    }
    let prompt = values.prompt;
    if (prompt === undefined) {
      if (process.stdin.isTTY) throw new GraftError("no prompt: pass --prompt or pipe text on stdin");
      prompt = await readStdin();
    }
    if (values.system !== undefined && !values.chat) throw new GraftError("--system needs --chat");
    const flags = samplingFromFlags(values);
    const { model, tokenizer, defaults, quantized } = loadForInference(positionals[0]!, values.dtype, values.quantize);
    if (quantized && values.verbose) console.error(quantizeSummary(quantized));

    const text = values.chat
      ? tokenizer.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true, ...(values.system !== undefined ? { system: values.system } : {}) })
      : prompt;
    const ids = tokenizer.encode(text, { addSpecialTokens: !values.chat });
    if (ids.length === 0) throw new GraftError("the prompt encodes to no tokens");

    const t0 = performance.now();
    let tFirst = 0;
    const it = streamGenerate(model, tokenizer, [ids], { maxNewTokens: 256, ...defaults, ...flags, stopStrings: values.stop ?? [] });
    let r = await it.next();
    while (!r.done) {
      if (tFirst === 0) tFirst = performance.now();
      if (r.value.text) process.stdout.write(r.value.text);
      r = await it.next();
    }
    process.stdout.write("\n");
    const res = r.value[0]!;
    if (values.verbose) {
      const t1 = performance.now();
      const n = res.tokenIds.length;
      const decodeRate = n > 1 ? ((n - 1) / ((t1 - tFirst) / 1000)).toFixed(1) : "-";
      console.error(
        `${ids.length} prompt tokens, ${n} generated (${res.finishReason}); prefill + first token ${((tFirst - t0) / 1000).toFixed(2)}s, ${decodeRate} tokens/s after`,
      );
    }
    return 0;
  },
};
