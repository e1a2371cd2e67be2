/** `graft eval --model <dir> [--base <dir>] --data <val.json|dir>`: val loss, perplexity, BLEU-4, ROUGE; base vs fine-tuned. */
import * as fs from "node:fs";
import * as path from "node:path";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { GraftError } from "../../core/errors.ts";
import { readSftRecords } from "../../data/prepare.ts";
import { loadRun } from "../../export/index.ts";
import { writeFileAtomic } from "../../formats/index.ts";
import { type CausalLM, loadCausalLM } from "../../models/index.ts";
import { Tokenizer } from "../../tokenizers/index.ts";
import { type EvaluateResult, type Segmentation, evaluateSft, formatMetricTable } from "../../train/index.ts";
import type { Command } from "../Command.ts";

export const evalCommand: Command = {
  name: "eval",
  description: "evaluate models on SFT validation data: loss, perplexity, BLEU-4, ROUGE-1/2/L (base vs fine-tuned)",
  usage: [
    "graft eval --model <dir> [--adapter <dir>] [--base <dir>] --data <val.json|dir> [options]",
    "",
    "  --model <dir>                the fine-tuned model, an adapter run (its base: --base, else the one it records),",
    "                               or the base an --adapter applies to",
    "  --adapter <dir>              a PEFT adapter over --model",
    "  --base <dir>                 a baseline model, evaluated first in the same table",
    "  --data <file|dir>            val.json (or a directory holding it)",
    "  --limit <n>                  use the first n records (default all)",
    "  --generate <n>               records to answer for BLEU/ROUGE (default 50; 0 = loss only)",
    "  --max-new-tokens <n>         answer length cap (default 128)",
    "  --max-length <n>             truncation for the loss (default 512)",
    "  --batch-size <n>             (default 8)",
    "  --segmentation char|whitespace   metric tokenisation (default char: one token per CJK character)",
    "  --system <text>              system prompt for records without one",
    "  --out <dir>                  write metrics.json and predictions.jsonl there",
    "  --bf16                       load weights as bfloat16",
  ].join("\n"),
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        adapter: { type: "string" },
        base: { type: "string" },
        data: { type: "string" },
        limit: { type: "string" },
        generate: { type: "string", default: "50" },
        "max-new-tokens": { type: "string", default: "128" },
        "max-length": { type: "string", default: "512" },
        "batch-size": { type: "string", default: "8" },
        segmentation: { type: "string", default: "char" },
        system: { type: "string" },
        out: { type: "string" },
        bf16: { type: "boolean" },
      },
    });
    if (!values.model) throw new GraftError("--model <dir> is required");
    if (!values.data) throw new GraftError("--data <val.json|dir> is required");
    const int = (flag: string, v: string | undefined) => {
      const x = Number(v);
      if (v === undefined || !Number.isInteger(x) || x < 0) throw new GraftError(`--${flag} must be a non-negative integer, got "${v}"`);
      return x;
    };
    if (values.segmentation !== "char" && values.segmentation !== "whitespace") throw new GraftError(`--segmentation must be char or whitespace, got "${values.segmentation}"`);
    let file = resolve(values.data);
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "val.json");
    let records = readSftRecords(file);
    if (values.limit !== undefined) records = records.slice(0, int("limit", values.limit));
    const dtype = values.bf16 ? "bfloat16" : "float32";
    const opts = {
      generateSamples: int("generate", values.generate),
      maxNewTokens: int("max-new-tokens", values["max-new-tokens"]),
      maxLength: int("max-length", values["max-length"]),
      batchSize: int("batch-size", values["batch-size"]),
      segmentation: values.segmentation as Segmentation,
      system: values.system,
      onGenerated: (d: number, n: number) => process.stderr.write(`\r  generated ${d}/${n}`),
    };
    const modelDir = resolve(values.model);
    type Loaded = { model: CausalLM; tokenizerDir: string };
    const plain = (dir: string) => (): Loaded => ({ model: loadCausalLM(dir, { dtype }), tokenizerDir: dir });
    const runs: { name: string; load: () => Loaded }[] = [];
    if (values.base) runs.push({ name: `base (${path.basename(resolve(values.base))})`, load: plain(resolve(values.base)) });
    // An adapter over --model, or --model itself an adapter run (graft train --method <peft>), whose base is
    // --base, else the one it records; loadRun takes the tokenizer from the adapter dir when it has one.
    const adapterDir = values.adapter ? resolve(values.adapter) : fs.existsSync(path.join(modelDir, "adapter_config.json")) ? modelDir : null;
    if (adapterDir) {
      const base = values.adapter ? modelDir : values.base && resolve(values.base);
      runs.push({ name: `fine-tuned (${path.basename(adapterDir)})`, load: () => loadRun(adapterDir, { base, dtype }) });
    } else runs.push({ name: `${values.base ? "fine-tuned" : "model"} (${path.basename(modelDir)})`, load: plain(modelDir) });
    const rows: EvaluateResult[] = [];
    for (const r of runs) {
      process.stderr.write(`evaluating ${r.name} on ${records.length} records\n`);
      const { model, tokenizerDir } = r.load();
      rows.push(await evaluateSft(r.name, model, Tokenizer.fromDir(tokenizerDir), records, opts));
      if (opts.generateSamples > 0) process.stderr.write("\n");
    }
    console.log(formatMetricTable(rows));
    console.log("BLEU-4: corpus BLEU (sacrebleu, exp smoothing), ROUGE: mean F1 ×100; Chinese scored per character.");
    if (values.out) {
      const out = resolve(values.out);
      fs.mkdirSync(out, { recursive: true });
      writeFileAtomic(path.join(out, "metrics.json"), JSON.stringify(rows.map(({ predictions: _p, ...m }) => m), null, 2) + "\n");
      writeFileAtomic(path.join(out, "predictions.jsonl"), rows.flatMap((r) => r.predictions.map((p) => JSON.stringify({ model: r.name, ...p }))).join("\n") + "\n");
      console.log(`metrics: ${path.join(out, "metrics.json")}\npredictions: ${path.join(out, "predictions.jsonl")}`);
    }
    return 0;
  },
};
