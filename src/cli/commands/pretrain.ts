/** `graft pretrain --model-config <preset|config.json> --data <txt...>`: pretrains a model from scratch. */
import { resolve } from "node:path";
import { GraftError } from "../../core/errors.ts";
import type { DocumentSplit } from "../../data/pretrain.ts";
import { modelPresets, pretrainModel } from "../../train/index.ts";
import type { Command } from "../Command.ts";
import { type FlagSpec, flagsJson, parseFlags, trainFlagSpec, trainOptionsFrom, trainUsage } from "./trainFlags.ts";

const spec: FlagSpec = {
  ...trainFlagSpec,
  "model-config": "string",
  data: "list",
  tokenizer: "string",
  objective: "string",
  "block-size": "int",
  "val-fraction": "number",
  documents: "string",
  "mask-token": "string",
  "mlm-probability": "number",
};

export const pretrainCommand: Command = {
  name: "pretrain",
  description: "pretrain a model from scratch on text files (causal LM, or masked LM for BERT)",
  usage: [
    "graft pretrain --model-config <preset|config.json> --data <file.txt> [--data more.txt] --out <dir> [options]",
    "",
    `  --model-config <x>           a preset (${modelPresets().join(", ")}) or a config.json`,
    "  --data <file>                text file(s), repeatable or comma-separated",
    '  --tokenizer <dir|bytes>      tokenizer directory, or "bytes" (built-in byte-level, default)',
    "  --objective clm|mlm          causal LM (default) or BERT masked LM",
    "  --block-size <n>             tokens per packed block (default 128)",
    "  --val-fraction <x>           blocks held out from the end of the text (default 0.05)",
    "  --documents paragraph|line|file   how files split into documents (each ends with EOS)",
    "  --mask-token <tok>  --mlm-probability <x>   masked-LM settings (default [MASK]/<mask>, 0.15)",
    ...trainUsage,
  ].join("\n"),
  async run(argv) {
    const { values: v } = parseFlags(argv, spec);
    if (!v["model-config"]) throw new GraftError("--model-config <preset|config.json> is required");
    const data = (v["data"] as string[] | undefined) ?? [];
    if (data.length === 0) throw new GraftError("--data <file.txt> is required");
    if (!v["out"]) throw new GraftError("--out <dir> is required");
    const objective = (v["objective"] as string | undefined) ?? "clm";
    if (objective !== "clm" && objective !== "mlm") throw new GraftError(`--objective must be clm or mlm, got "${objective}"`);
    const documents = v["documents"] as string | undefined;
    if (documents !== undefined && !["paragraph", "line", "file"].includes(documents)) throw new GraftError(`--documents must be paragraph, line or file, got "${documents}"`);
    const cfg = v["model-config"] as string;
    const outDir = resolve(v["out"] as string);
    const r = await pretrainModel({
      ...trainOptionsFrom(v),
      modelConfig: modelPresets().includes(cfg) ? cfg : resolve(cfg),
      data: data.map((d) => resolve(d)),
      outDir,
      tokenizer: v["tokenizer"] === undefined || v["tokenizer"] === "bytes" ? "bytes" : resolve(v["tokenizer"] as string),
      objective,
      blockSize: v["block-size"] as number | undefined,
      batchSize: v["batch-size"] as number | undefined,
      valFraction: v["val-fraction"] as number | undefined,
      documents: documents as DocumentSplit | undefined,
      maskToken: v["mask-token"] as string | undefined,
      mlmProbability: v["mlm-probability"] as number | undefined,
      config: flagsJson(v),
    });
    const t = r.train;
    console.log(`${r.config["model_type"]}: ${r.parameters.toLocaleString("en-US")} parameters; ${r.tokens.toLocaleString("en-US")} tokens → ${r.trainBlocks} train / ${r.valBlocks} val blocks`);
    const first = t.valLoss[0];
    console.log(`${t.steps} steps, ${Math.round(t.tokensPerSec).toLocaleString("en-US")} tokens/s; val loss ${first ? `${first.value.toFixed(4)} (step ${first.step}) → ` : ""}${t.finalValLoss?.toFixed(4) ?? "-"}${t.stoppedEarly ? " (stopped early)" : ""}`);
    console.log(`model: ${outDir}\nloss curve: ${t.lossCurvePath}`);
    return 0;
  },
};
