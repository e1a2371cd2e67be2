/**
 * graft export: a LoRA run → merged HF directory (loads back with the adapter's logits), full GGUF
 * (read back by @huggingface/gguf: qwen2 keys, tokenizer, chat template, tensor names, reversed
 * shapes and types; values through graft's reader), GGUF LoRA adapter, and the Ollama Modelfile.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GGMLQuantizationType, gguf as hfGguf } from "@huggingface/gguf";
import "../../src/backend/index.ts";
import { main } from "../../src/cli/main.ts";
import { exportRun, ollamaTemplate } from "../../src/export/index.ts";
import { openGguf } from "../../src/formats/index.ts";
import { type CausalLM, loadCausalLM } from "../../src/models/index.ts";
import { type LoraLinear, applyPeft, loadPeft } from "../../src/peft/index.ts";
import * as T from "../../src/tensor/index.ts";
import { writeTinyQwen2 } from "../generation/tinyQwen2.ts";
import { maxAbsDiff, medicalBatch, trainSteps } from "../peft/helpers.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-export-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

/** A base model dir and a LoRA run trained a few steps on it (training_args.json names the base). */
async function loraRun(name: string, config: Record<string, unknown> = {}, options: Record<string, unknown> = { r: 4, lora_alpha: 8 }): Promise<{ base: string; run: string }> {
  const base = writeTinyQwen2(path.join(tmp, `${name}-base`), config);
  const run = path.join(tmp, `${name}-run`);
  const pm = applyPeft(loadCausalLM(base), "lora", options);
  trainSteps(pm, await medicalBatch(2, 12), 3, 5e-2);
  pm.save(run);
  fs.writeFileSync(path.join(run, "training_args.json"), JSON.stringify({ method: "lora", base }));
  return { base, run };
}

const logitsOf = (m: CausalLM, ids: T.Tensor) => T.noGrad(() => m.forward(ids));

test("export --merged / --gguf / --gguf-adapter of a LoRA run, with a Modelfile", async () => {
  const { base, run } = await loraRun("lora");
  const out = path.join(tmp, "out");
  const merged = path.join(out, "merged");
  const ggufFile = path.join(out, "model.gguf");
  const adapterFile = path.join(out, "adapter.gguf");
  exportRun(run, { merged, gguf: ggufFile, ggufAdapter: adapterFile });
  const ids = await medicalBatch(1, 10, 3);

  // Merged: an HF directory with HF keys that loads to the adapter's logits.
  const withAdapter = loadPeft(loadCausalLM(base), run).eval();
  const reloaded = loadCausalLM(merged);
  assert.ok(maxAbsDiff(logitsOf(reloaded, ids), logitsOf(withAdapter, ids)) < 1e-5);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) assert.ok(fs.existsSync(path.join(merged, f)), f);
  const raw = fs.readFileSync(path.join(merged, "model.safetensors"));
  const keys = Object.keys(JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString("utf8"))).filter((k) => k !== "__metadata__");
  assert.ok(keys.includes("model.layers.0.self_attn.q_proj.weight") && keys.includes("model.embed_tokens.weight"));
  assert.ok(!keys.some((k) => k.includes("lora") || k.includes("base_layer")), "no adapter keys left");
  assert.equal(keys.length, 2 + 2 * 12, "embed + norm + 12 tensors per layer (tied lm_head omitted)");

  // Full GGUF, read by @huggingface/gguf.
  const g = await hfGguf(ggufFile, { allowLocalFile: true, typedMetadata: true });
  const md = g.metadata as Record<string, unknown>;
  assert.equal(md["general.architecture"], "qwen2");
  assert.equal(md["general.file_type"], 1);
  assert.equal(md["qwen2.block_count"], 2);
  assert.equal(md["qwen2.context_length"], 256);
  assert.equal(md["qwen2.embedding_length"], 16);
  assert.equal(md["qwen2.feed_forward_length"], 32);
  assert.equal(md["qwen2.attention.head_count"], 2);
  assert.equal(md["qwen2.attention.head_count_kv"], 1);
  assert.equal(md["qwen2.rope.freq_base"], 1000000);
  assert.ok(Math.abs((md["qwen2.attention.layer_norm_rms_epsilon"] as number) - 1e-6) < 1e-12);
  assert.equal(g.typedMetadata["qwen2.rope.freq_base"]!.type, 6, "float32");
  assert.equal(md["tokenizer.ggml.model"], "gpt2");
  assert.equal(md["tokenizer.ggml.pre"], "qwen2");
  const tokens = md["tokenizer.ggml.tokens"] as string[];
  assert.equal(tokens.length, 151936);
  assert.equal(tokens[151645], "<|im_end|>");
  assert.equal(tokens[151935], "[PAD151935]");
  assert.equal(tokens[9707], "Hello");
  const types = md["tokenizer.ggml.token_type"] as number[];
  assert.equal(types[9707], 1);
  assert.equal(types[151645], 3);
  assert.equal(types[151935], 5);
  assert.equal((md["tokenizer.ggml.merges"] as string[])[0], "Ġ Ġ");
  assert.equal(md["tokenizer.ggml.eos_token_id"], 151645);
  assert.equal(md["tokenizer.ggml.padding_token_id"], 151643);
  assert.match(md["tokenizer.chat_template"] as string, /<\|im_start\|>/);
  const infos = new Map(g.tensorInfos.map((t) => [t.name, t]));
  assert.equal(infos.size, 2 + 2 * 12);
  assert.ok(!infos.has("output.weight"), "tied embeddings: no output tensor");
  const shape = (n: string) => infos.get(n)!.shape.map(Number);
  assert.deepEqual(shape("token_embd.weight"), [16, 151936]);
  assert.deepEqual(shape("blk.0.attn_q.weight"), [16, 16]);
  assert.deepEqual(shape("blk.0.attn_k.weight"), [16, 8]);
  assert.deepEqual(shape("blk.1.ffn_down.weight"), [32, 16]);
  assert.deepEqual(shape("blk.1.ffn_gate.weight"), [16, 32]);
  assert.deepEqual(shape("blk.0.attn_q.bias"), [16]);
  assert.deepEqual(shape("output_norm.weight"), [16]);
  assert.equal(infos.get("blk.0.attn_q.weight")!.dtype, GGMLQuantizationType.F16);
  assert.equal(infos.get("blk.0.attn_norm.weight")!.dtype, GGMLQuantizationType.F32);
  assert.equal(infos.get("blk.0.attn_v.bias")!.dtype, GGMLQuantizationType.F32);
  // The values are the merged weights (at f16 precision).
  const ours = openGguf(ggufFile);
  const q = ours.read("blk.1.attn_q.weight");
  const want = reloaded.stateDict()["model.layers.1.self_attn.q_proj.weight"]!;
  assert.ok(maxAbsDiff(T.tensor(Array.from(q.data as Float32Array), { shape: q.shape }), want) < 1e-3);
  ours.close();

  // LoRA adapter GGUF.
  const a = await hfGguf(adapterFile, { allowLocalFile: true, typedMetadata: true });
  const amd = a.metadata as Record<string, unknown>;
  assert.equal(amd["general.type"], "adapter");
  assert.equal(amd["general.architecture"], "qwen2");
  assert.equal(amd["adapter.type"], "lora");
  assert.equal(amd["adapter.lora.alpha"], 8);
  assert.equal(a.typedMetadata["adapter.lora.alpha"]!.type, 6);
  const ainfo = new Map(a.tensorInfos.map((t) => [t.name, t.shape.map(Number)]));
  assert.equal(ainfo.size, 2 * 2 * 2);
  assert.deepEqual(ainfo.get("blk.0.attn_q.weight.lora_a"), [16, 4]);
  assert.deepEqual(ainfo.get("blk.0.attn_q.weight.lora_b"), [4, 16]);
  assert.deepEqual(ainfo.get("blk.1.attn_v.weight.lora_b"), [4, 8]);
  const lb = openGguf(adapterFile).read("blk.0.attn_q.weight.lora_b");
  const layer = (withAdapter.base as unknown as { model: { layers: { items: { self_attn: { q_proj: LoraLinear } }[] } } }).model.layers.items[0]!.self_attn.q_proj;
  assert.deepEqual(Array.from(lb.data as Float32Array), layer.lora_B.weight.toArray());

  // Modelfile beside the GGUF.
  const mf = fs.readFileSync(path.join(out, "Modelfile"), "utf8");
  assert.match(mf, /^FROM \.\/model\.gguf$/m);
  assert.match(mf, /^TEMPLATE """\{\{ if \.System \}\}<\|im_start\|>system\n\{\{ \.System \}\}<\|im_end\|>\n\{\{ else \}\}/m);
  assert.match(mf, /\{\{ range \.Messages \}\}\{\{ if ne \.Role "system" \}\}<\|im_start\|>\{\{ \.Role \}\}\n\{\{ \.Content \}\}<\|im_end\|>\n\{\{ end \}\}\{\{ end \}\}<\|im_start\|>assistant\n"""$/m);
  assert.match(mf, /You are Qwen, created by Alibaba Cloud/);
  assert.match(mf, /^PARAMETER stop "<\|im_end\|>"$/m);
  assert.match(mf, /^PARAMETER stop "<\|im_start\|>"$/m);
});

test("export --gguf --type q8_0 quantizes the matrices whose rows are multiples of 32; rsLoRA alpha for llama.cpp", async () => {
  const { run } = await loraRun("q8", { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1 }, { r: 4, lora_alpha: 8, use_rslora: true });
  const file = path.join(tmp, "q8", "m.gguf");
  const adapter = path.join(tmp, "q8", "a.gguf");
  const code = await main(["export", run, "--gguf", file, "--type", "q8_0", "--gguf-adapter", adapter]);
  assert.equal(code, 0);
  // --gguf-adapter alone with --from: a Modelfile over an existing Ollama model, with ADAPTER.
  const adapterOnly = path.join(tmp, "q8-adapter-only", "a.gguf");
  assert.equal(await main(["export", run, "--gguf-adapter", adapterOnly, "--from", "qwen2.5:0.5b"]), 0);
  const mf = fs.readFileSync(path.join(tmp, "q8-adapter-only", "Modelfile"), "utf8");
  assert.match(mf, /^FROM qwen2\.5:0\.5b\nADAPTER \.\/a\.gguf\nTEMPLATE """/);
  const g = await hfGguf(file, { allowLocalFile: true });
  const infos = new Map(g.tensorInfos.map((t) => [t.name, t]));
  assert.equal((g.metadata as Record<string, unknown>)["general.file_type"], 7);
  assert.equal(infos.get("blk.0.attn_q.weight")!.dtype, GGMLQuantizationType.Q8_0);
  assert.equal(infos.get("blk.0.ffn_down.weight")!.dtype, GGMLQuantizationType.Q8_0);
  assert.equal(infos.get("token_embd.weight")!.dtype, GGMLQuantizationType.Q8_0);
  assert.equal(infos.get("blk.0.attn_norm.weight")!.dtype, GGMLQuantizationType.F32);
  const a = await hfGguf(adapter, { allowLocalFile: true });
  // llama.cpp scales by alpha / r: rsLoRA's 8/√4 = 4 needs alpha = 16.
  assert.equal((a.metadata as Record<string, unknown>)["adapter.lora.alpha"], 16);
});

test("export refuses what it cannot write, naming why", async () => {
  const base = writeTinyQwen2(path.join(tmp, "bad-base"));
  const run = path.join(tmp, "bad-run");
  applyPeft(loadCausalLM(base), "adapter", { bottleneck_size: 2 }).save(run);
  assert.throws(() => exportRun(run, { base, merged: path.join(tmp, "bad-out") }), /cannot be merged/);
  assert.throws(() => exportRun(run, { merged: path.join(tmp, "bad-out") }), /give its base model directory with --base/);
  assert.throws(() => exportRun(run, { base, ggufAdapter: path.join(tmp, "bad.gguf") }), /GGUF adapters are LoRA adapters/);
  assert.throws(() => exportRun(base, {}), /nothing to export/);
  assert.throws(() => ollamaTemplate("{{ bos_token }}[INST] {{ message }} [/INST]"), /not ChatML/);
  assert.equal(await main(["export", base, "--gguf", path.join(tmp, "x.gguf"), "--type", "q4_k"]), 1);
});
