/** `graft example medical`: the seed exercise end to end (prepare → pretrain → SFT → eval table). */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { GraftError } from "../../core/errors.ts";
import { runMedical } from "../../examples/medical.ts";
import { embeddedData } from "./example.ts";

export async function runMedicalCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: "string" },
      out: { type: "string", default: "runs/medical" },
      train: { type: "string", default: "240" },
      val: { type: "string", default: "60" },
      preset: { type: "string", default: "qwen2-tiny" },
      "pretrain-steps": { type: "string", default: "600" },
      "sft-steps": { type: "string", default: "300" },
      method: { type: "string", default: "full" },
      "batch-size": { type: "string", default: "8" },
      "max-length": { type: "string", default: "512" },
      generate: { type: "string", default: "20" },
      "max-new-tokens": { type: "string", default: "96" },
      seed: { type: "string", default: "0" },
    },
  });
  const int = (flag: keyof typeof values) => {
    const v = values[flag] as string;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new GraftError(`--${flag} must be a non-negative integer, got "${v}"`);
    return x;
  };
  const data = values.data ? resolve(values.data) : embeddedData("medical-dialogue", "internal-medicine-300.csv");
  console.log(`medical dialogue exercise on ${data}`);
  await runMedical({
    data,
    outDir: resolve(values.out),
    train: int("train"),
    val: int("val"),
    preset: values.preset,
    pretrainSteps: int("pretrain-steps"),
    sftSteps: int("sft-steps"),
    method: values.method,
    batchSize: int("batch-size"),
    maxLength: int("max-length"),
    generate: int("generate"),
    maxNewTokens: int("max-new-tokens"),
    seed: int("seed"),
  });
  return 0;
}
