/**
 * `graft export <run>`: a fine-tuned run (a PEFT adapter directory) or a model directory to a
 * merged HF model (--merged), a llama.cpp/Ollama GGUF (--gguf, with a Modelfile beside it), and/or
 * a GGUF LoRA adapter (--gguf-adapter).
 */
import { parseArgs } from "node:util";
import { GraftError } from "../../core/errors.ts";
import { type GgufExportType, exportRun } from "../../export/index.ts";
import type { Command } from "../Command.ts";

export const exportCommand: Command = {
  name: "export",
  description: "export a run or model: merged HF directory, GGUF (+ Ollama Modelfile), GGUF LoRA adapter",
  usage: [
    "graft export <run-or-model-dir> [--merged <out-dir>] [--gguf <out.gguf> [--type f16|q8_0|f32]] [--gguf-adapter <out.gguf>]",
    "",
    "  <run-or-model-dir>        a PEFT adapter directory (graft train output, or made by Hugging Face PEFT) or a model directory",
    "  --base <model-dir>        the adapter's base model (default: training_args.json, then adapter_config.json)",
    "  --merged <dir>            the adapter merged into the base: config.json + model.safetensors + tokenizer files",
    "  --gguf <file>             the merged model as GGUF (qwen2/llama arch, tokenizer, chat template) and a Modelfile beside it",
    "  --type <t>                GGUF tensor type for --gguf: f16 (default), q8_0 or f32",
    "  --gguf-adapter <file>     the LoRA adapter as a GGUF adapter (llama.cpp --lora, Ollama ADAPTER)",
    "  --from <gguf-or-name>     with --gguf-adapter alone: write a Modelfile FROM this base with ADAPTER",
  ].join("\n"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        base: { type: "string" },
        merged: { type: "string" },
        gguf: { type: "string" },
        type: { type: "string" },
        "gguf-adapter": { type: "string" },
        from: { type: "string" },
      },
    });
    if (positionals.length !== 1) throw new GraftError(`expected one run or model directory, got ${positionals.length}\n\n${this.usage}`);
    const type = values.type as GgufExportType | undefined;
    if (type !== undefined && !["f16", "q8_0", "f32"].includes(type)) throw new GraftError(`--type must be f16, q8_0 or f32, got "${type}"`);
    if (type !== undefined && !values.gguf) throw new GraftError("--type applies to --gguf; give --gguf <file>");
    exportRun(positionals[0]!, {
      base: values.base,
      merged: values.merged,
      gguf: values.gguf,
      type,
      ggufAdapter: values["gguf-adapter"],
      from: values.from,
      log: (l) => console.log(l),
    });
    return 0;
  },
};
