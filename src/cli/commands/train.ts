/** `graft train --base <model-dir> --data <dir> --method full|freeze|<peft>`: supervised fine-tuning. */
import { resolve } from "node:path";
import { GraftError } from "../../core/errors.ts";
import { hasPeftMethod, peftMethods } from "../../peft/index.ts";
import { finetune } from "../../train/index.ts";
import type { Command } from "../Command.ts";
import { type FlagSpec, flagsJson, parseFlags, trainFlagSpec, trainOptionsFrom, trainUsage } from "./trainFlags.ts";

/** PEFT options with flags of their own (PEFT's snake_case keys, as kebab-case flags). */
const peftFlags: FlagSpec = {
  r: "int",
  "lora-alpha": "number",
  "lora-dropout": "number",
  "target-modules": "list",
  "use-rslora": "boolean",
  "use-dora": "boolean",
  "num-virtual-tokens": "int",
  "peft-option": "list",
};

const spec: FlagSpec = {
  ...trainFlagSpec,
  ...peftFlags,
  base: "string",
  data: "string",
  "val-data": "string",
  method: "string",
  "trainable-layers": "int",
  "max-length": "int",
  packing: "boolean",
  system: "string",
  "max-train-samples": "int",
  "max-val-samples": "int",
};

/** PEFT options from the flags, the config file's `peft:` mapping and --peft-option key=value (JSON values allowed). */
export function peftOptionsFrom(v: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = { ...((v["peft"] as Record<string, unknown> | undefined) ?? {}) };
  for (const k of Object.keys(peftFlags)) {
    if (k === "peft-option" || v[k] === undefined) continue;
    o[k.replace(/-/g, "_")] = v[k];
  }
  for (const kv of (v["peft-option"] as string[] | undefined) ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new GraftError(`--peft-option must be key=value, got "${kv}"`);
    const raw = kv.slice(eq + 1);
    let val: unknown = raw;
    try {
      val = JSON.parse(raw);
    } catch {
      // a plain string
    }
    o[kv.slice(0, eq)] = val;
  }
  return o;
}

export const trainCommand: Command = {
  name: "train",
  description: "fine-tune a model on prepared dialogue data (full, freeze, or a PEFT method), loss on answers only",
  usage: [
    "graft train --base <model-dir> --data <dir with train.json/val.json> --method full|freeze|<peft> --out <dir> [options]",
    "",
    "  --method full|freeze|<peft>  full fine-tuning, top-N blocks only, or a PEFT method:",
    "                               lora qlora adalora ia3 prompt ptuning prefix adapter",
    "  --trainable-layers <n>       freeze: the number of top blocks that train (default 2)",
    "  --max-length <n>             truncate samples to n tokens (default 512)",
    "  --packing                    pack samples into rows of --max-length",
    "  --system <text>              system prompt for records without one",
    "  --val-data <file>            validation file (default <data>/val.json)",
    "  --max-train-samples <n>  --max-val-samples <n>",
    "  PEFT: --r <n> --lora-alpha <x> --lora-dropout <x> --target-modules a,b --use-rslora --use-dora",
    "        --num-virtual-tokens <n> --peft-option key=value (any adapter_config key); config file: peft: {...}",
    ...trainUsage,
  ].join("\n"),
  async run(argv) {
    const { values: v } = parseFlags(argv, spec, ["peft"]);
    for (const k of ["base", "data", "out"]) if (!v[k]) throw new GraftError(`--${k} is required`);
    const method = (v["method"] as string | undefined) ?? "full";
    if (method !== "full" && method !== "freeze" && !hasPeftMethod(method)) {
      throw new GraftError(`--method "${method}" is not full, freeze or a PEFT method (${peftMethods().join(", ") || "none registered"})`);
    }
    const outDir = resolve(v["out"] as string);
    const r = await finetune({
      ...trainOptionsFrom(v),
      base: resolve(v["base"] as string),
      data: resolve(v["data"] as string),
      valData: v["val-data"] ? resolve(v["val-data"] as string) : undefined,
      outDir,
      method,
      trainableLayers: v["trainable-layers"] as number | undefined,
      peft: peftOptionsFrom(v),
      maxLength: v["max-length"] as number | undefined,
      packing: v["packing"] as boolean | undefined,
      system: v["system"] as string | undefined,
      batchSize: v["batch-size"] as number | undefined,
      maxTrainSamples: v["max-train-samples"] as number | undefined,
      maxValSamples: v["max-val-samples"] as number | undefined,
      config: flagsJson(v),
    });
    const t = r.train;
    const pct = ((100 * r.trainableParameters) / r.totalParameters).toFixed(2);
    console.log(`${method}: ${r.trainableParameters.toLocaleString("en-US")} of ${r.totalParameters.toLocaleString("en-US")} parameters train (${pct}%); ${r.trainSamples} train / ${r.valSamples} val samples${r.dropped ? `, ${r.dropped} dropped (no answer left after truncation)` : ""}`);
    const first = t.valLoss[0];
    console.log(`${t.steps} steps, ${Math.round(t.tokensPerSec).toLocaleString("en-US")} tokens/s; val loss ${first ? `${first.value.toFixed(4)} (step ${first.step}) → ` : ""}${t.finalValLoss?.toFixed(4) ?? "-"}${t.stoppedEarly ? ` (stopped early; best ${t.bestValLoss?.toFixed(4)} at step ${t.bestStep})` : ""}`);
    console.log(`${method === "full" || method === "freeze" ? "model" : "adapter"}: ${outDir}\nloss curve: ${t.lossCurvePath}`);
    return 0;
  },
};
