/**
 * `graft chat --adapter` answers as a ChatSession over loadPeft does. Hot-swapping adapters: AdapterSet switches LoRA / IA3 / prefix-tuning adapters over one base (each
 * active adapter gives the logits of loading it alone; none gives the bare base), and `graft serve`
 * answers a request with the adapter its `adapter` field names, as generate() does with that adapter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChatSession, generate } from "../../src/generation/index.ts";
import { loadCausalLM } from "../../src/models/index.ts";
import { AdapterSet, applyPeft, loadPeft } from "../../src/peft/index.ts";
import { startServer } from "../../src/serve/index.ts";
import { writeTinyQwen2 } from "../generation/tinyQwen2.ts";
import { logits, maxAbsDiff, medicalBatch, qwenTokenizer, tinyModel, trainSteps } from "./helpers.ts";
import { runCli } from "../helpers/runCli.ts";


const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-peft-serve-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

async function savedAdapters(): Promise<Record<string, string>> {
  const ids = await medicalBatch(2, 12);
  const specs: [string, string, Record<string, unknown>][] = [
    ["lora", "lora", { r: 4, lora_alpha: 16, target_modules: "all-linear" }],
    ["ia3", "ia3", {}],
    ["prefix", "prefix-tuning", { num_virtual_tokens: 3 }],
  ];
  const dirs: Record<string, string> = {};
  for (const [name, method, options] of specs) {
    const pm = applyPeft(tinyModel(), method, options);
    trainSteps(pm, ids, 3, 0.1);
    dirs[name] = path.join(tmp, name);
    pm.save(dirs[name]);
  }
  return dirs;
}

test("AdapterSet: each active adapter equals loading it alone; null is the bare base", async () => {
  const dirs = await savedAdapters();
  const ids = await medicalBatch(1, 10, 5);
  const base = tinyModel().eval();
  const bare = logits(base, ids);
  const set = new AdapterSet(base);
  for (const [name, dir] of Object.entries(dirs)) set.load(name, dir);
  assert.deepEqual(set.names(), ["lora", "ia3", "prefix"]);
  assert.equal(maxAbsDiff(logits(set.activate(null), ids), bare), 0, "loading leaves the base bare");
  const alone = Object.fromEntries(Object.entries(dirs).map(([n, d]) => [n, logits(loadPeft(tinyModel().eval(), d), ids)]));
  for (const order of [["lora", "ia3", "prefix", "lora"], ["prefix", "ia3", "lora"]]) {
    for (const name of order) {
      const out = logits(set.activate(name), ids);
      assert.ok(maxAbsDiff(out, alone[name]!) < 1e-6, `${name} active`);
      assert.ok(maxAbsDiff(out, bare) > 1e-4, `${name} changes the output`);
    }
    assert.equal(maxAbsDiff(logits(set.activate(null), ids), bare), 0);
  }
  assert.throws(() => set.activate("nope"), /unknown adapter "nope"; loaded: lora, ia3, prefix/);
});

test("serve: the request's adapter field picks the adapter", async () => {
  const dirs = await savedAdapters();
  const tokenizer = qwenTokenizer();
  const base = tinyModel().eval();
  const set = new AdapterSet(base);
  for (const [name, dir] of Object.entries(dirs)) set.load(name, dir);
  const server = await startServer({ model: base, tokenizer, port: 0, host: "127.0.0.1", modelName: "tiny", adapters: set });
  try {
    const messages = [{ role: "user", content: "高血压患者能吃党参吗？" }];
    const promptIds = tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    const ask = async (adapter?: string) => {
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages, max_tokens: 5, temperature: 0, ...(adapter ? { adapter } : {}) }),
      });
      return { status: res.status, body: (await res.json()) as { choices?: { message: { content: string } }[]; error?: { message: string; code: string } } };
    };
    const answers = new Map<string, string>();
    for (const name of [undefined, "lora", "prefix", undefined, "ia3"]) {
      const model = name ? loadPeft(tinyModel().eval(), dirs[name]!) : tinyModel().eval();
      const [want] = await generate(model, tokenizer, [promptIds], { maxNewTokens: 5, temperature: 0 });
      const got = await ask(name);
      assert.equal(got.status, 200);
      assert.equal(got.body.choices![0]!.message.content, want!.text, `adapter ${name ?? "(none)"}`);
      answers.set(name ?? "", want!.text);
    }
    assert.ok(["lora", "prefix", "ia3"].some((n) => answers.get(n) !== answers.get("")), `some adapter answers differently: ${JSON.stringify([...answers])}`);
    const missing = await ask("nope");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error!.code, "adapter_not_found");
    assert.match(missing.body.error!.message, /'nope' is not loaded \(loaded: lora, ia3, prefix\)/);
  } finally {
    await server.close();
  }
});

test("graft chat --adapter answers with the adapter", async () => {
  const dir = writeTinyQwen2(path.join(tmp, "chat-base"));
  const adapter = path.join(tmp, "chat-lora");
  const pm = applyPeft(loadCausalLM(dir), "lora", { r: 4, lora_alpha: 16, target_modules: "all-linear" });
  trainSteps(pm, await medicalBatch(2, 12), 3, 0.1);
  pm.save(adapter);
  const run = await runCli(["chat", dir, "--adapter", adapter, "--max-new-tokens", "5"], "你好\n");
  assert.equal(run.code, 0, run.stderr);
  const tok = qwenTokenizer();
  const answer = async (m: Parameters<typeof loadPeft>[0]) => {
    const it = new ChatSession(m, tok, { maxNewTokens: 5 }).send("你好");
    let r = await it.next();
    while (!r.done) r = await it.next();
    return r.value.text;
  };
  const want = await answer(loadPeft(loadCausalLM(dir), adapter).eval());
  assert.equal(run.stdout, `${want}\n`);
  assert.notEqual(want, await answer(loadCausalLM(dir)), "the adapter changes the answer");
});
