/** `graft example diabetes`: runs a built-in example end to end. */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GraftError } from "../../core/errors.ts";
import { runDiabetes } from "../../examples/diabetes.ts";
import { runMedicalCommand } from "./exampleMedical.ts";
import type { Command } from "../Command.ts";

/** The repository's embedded data directory (data/ beside package.json). */
export function embeddedData(...parts: string[]): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "data"))) return join(dir, "data", ...parts);
    dir = dirname(dir);
  }
  throw new GraftError("cannot find the embedded data/ directory beside package.json");
}

export const exampleCommand: Command = {
  name: "example",
  description: "run a built-in example (diabetes: the feed-forward network on Pima diabetes; medical: pretrain + SFT + eval)",
  usage: [
    "graft example diabetes [--data csv] [--out dir] [--epochs N] [--lr 0.1] [--momentum 0.9] [--batch-size 32] [--seed N]",
    "graft example medical [--data csv] [--out dir] [--train N] [--val N] [--pretrain-steps N] [--sft-steps N] [--method full|freeze|<peft>] [--generate N]",
  ].join("\n"),
  async run(argv) {
    if (argv[0] === "medical") return runMedicalCommand(argv.slice(1));
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        data: { type: "string" },
        out: { type: "string", default: "runs/diabetes" },
        epochs: { type: "string", default: "100" },
        lr: { type: "string", default: "0.1" },
        momentum: { type: "string", default: "0.9" },
        "batch-size": { type: "string", default: "32" },
        seed: { type: "string", default: "0" },
      },
    });
    const name = positionals[0];
    if (name !== "diabetes") throw new GraftError(`unknown example "${name ?? ""}" (available: diabetes, medical)`);
    const num = (flag: string, v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new GraftError(`--${flag} must be a number, got "${v}"`);
      return n;
    };
    const data = values.data ? resolve(values.data) : embeddedData("pima-diabetes", "pima-indians-diabetes.csv");
    console.log(`training the 8→6→4→2→1 sigmoid FNN on ${data}`);
    const r = await runDiabetes({
      data,
      outDir: resolve(values.out),
      epochs: num("epochs", values.epochs),
      lr: num("lr", values.lr),
      momentum: num("momentum", values.momentum),
      batchSize: num("batch-size", values["batch-size"]),
      seed: num("seed", values.seed),
    });
    const every = Math.max(1, Math.floor(r.epochLosses.length / 10));
    r.epochLosses.forEach((l, i) => {
      if ((i + 1) % every === 0 || i === 0) console.log(`epoch ${String(i + 1).padStart(4)}  loss ${l.toFixed(4)}`);
    });
    console.log(`held-out: ${r.valRows} rows, loss ${r.valLoss.toFixed(4)}, accuracy ${(100 * r.valAccuracy).toFixed(1)}% (trained on ${r.trainRows})`);
    console.log(`loss curve: ${r.pngPath}\nTensorBoard: ${r.eventsPath}\nmetrics: ${r.metricsPath}`);
    return 0;
  },
};
