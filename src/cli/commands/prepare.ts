/** `graft prepare <csv|json|jsonl> --out dir`: a dialogue file → train.json / val.json for SFT. */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { GraftError } from "../../core/errors.ts";
import { type PrepareFormat, prepareDataset } from "../../data/prepare.ts";
import type { Command } from "../Command.ts";

const FORMATS = ["medical", "alpaca", "sharegpt", "messages"];

export const prepareCommand: Command = {
  name: "prepare",
  description: "turn a dialogue CSV/JSON/JSONL (e.g. the GB18030 medical CSV) into train.json / val.json",
  usage: [
    "graft prepare <file.csv|json|jsonl> --out <dir> [--train 5000] [--val 2000] [--encoding auto|gb18030|utf-8]",
    "              [--format medical|alpaca|sharegpt|messages] [--seed 42]",
    "",
    "Rows become {question, answer} (multi-turn conversations {messages}), shuffled with the seed and",
    "split; unusable rows are skipped and listed with their line numbers.",
  ].join("\n"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        train: { type: "string", default: "5000" },
        val: { type: "string", default: "2000" },
        encoding: { type: "string", default: "auto" },
        format: { type: "string" },
        seed: { type: "string", default: "42" },
      },
    });
    const input = positionals[0];
    if (!input) throw new GraftError("give the input file: graft prepare <file> --out <dir>");
    if (!values.out) throw new GraftError("--out <dir> is required");
    if (values.format !== undefined && !FORMATS.includes(values.format)) throw new GraftError(`--format must be one of ${FORMATS.join(", ")}, got "${values.format}"`);
    const int = (flag: string, v: string) => {
      const x = Number(v);
      if (!Number.isInteger(x) || x < 0) throw new GraftError(`--${flag} must be a non-negative integer, got "${v}"`);
      return x;
    };
    const r = prepareDataset({
      input: resolve(input),
      outDir: resolve(values.out),
      train: int("train", values.train),
      val: int("val", values.val),
      encoding: values.encoding,
      format: values.format as PrepareFormat | undefined,
      seed: int("seed", values.seed),
    });
    console.log(`${input}: ${r.format} format, ${r.encoding}, ${r.total} usable rows, ${r.bad.length} bad`);
    for (const b of r.bad.slice(0, 20)) console.log(`  skipped ${b.line !== undefined ? `line ${b.line}` : `record ${b.record}`}: ${b.reason}`);
    if (r.bad.length > 20) console.log(`  ... and ${r.bad.length - 20} more`);
    console.log(`wrote ${r.train} rows to ${r.trainPath}\nwrote ${r.val} rows to ${r.valPath}`);
    return 0;
  },
};
