/**
 * `--quantize` on generate / chat / serve: a child process generating from a tiny Qwen2 directory
 * with q8_0 weights prints exactly what the library produces on the same quantized model, names
 * what it quantized with --verbose, and bad values or combinations fail with a clear message.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { loadForInference } from "../../src/cli/commands/generate.ts";
import { generate } from "../../src/generation/index.ts";
import { QuantizedLinear } from "../../src/quant/index.ts";
import { writeTinyQwen2 } from "../generation/tinyQwen2.ts";
import { runCli } from "../helpers/runCli.ts";


describe("--quantize (child process)", () => {
  let dir: string;
  before(() => {
    // Widths that are multiples of the 32-value blocks, so every Linear quantizes.
    dir = writeTinyQwen2(undefined, { hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("generate --quantize q8_0 prints the quantized model's greedy completion", async () => {
    const run = await runCli(["generate", dir, "--prompt", "The capital of France is", "--max-new-tokens", "6", "--quantize", "q8_0", "--verbose"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /quantized 15 modules to q8_0 \(\d+\.\d MB → \d+\.\d MB of weights\)/);
    const { model, tokenizer, quantized } = loadForInference(dir, undefined, "q8_0");
    assert.equal(quantized!.replaced.length, 15);
    assert.ok((model as unknown as { lm_head: unknown }).lm_head instanceof QuantizedLinear);
    const [want] = await generate(model, tokenizer, [tokenizer.encode("The capital of France is")], { maxNewTokens: 6 });
    assert.equal(run.stdout, `${want!.text}\n`);
  });

  it("rejects an unknown type and --adapter with --quantize", async () => {
    const bad = await runCli(["generate", dir, "--prompt", "x", "--quantize", "q5_k"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--quantize must be q8_0 or q4_0, got "q5_k"/);
    const chat = await runCli(["chat", dir, "--quantize", "q4_0", "--adapter", dir]);
    assert.equal(chat.code, 1);
    assert.match(chat.stderr, /--quantize cannot be combined with --adapter/);
  });
});
