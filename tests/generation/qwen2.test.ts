/** generate() on a real (tiny, random) Qwen2 with the real Qwen2.5 tokenizer. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { ChatSession, generate } from "../../src/generation/index.ts";
import { type CausalLM, loadCausalLM } from "../../src/models/index.ts";
import { startServer } from "../../src/serve/index.ts";
import { Tokenizer } from "../../src/tokenizers/index.ts";
import { writeTinyQwen2 } from "./tinyQwen2.ts";

describe("generate with a tiny Qwen2 and the Qwen2.5 tokenizer", () => {
  let dir: string;
  let model: CausalLM;
  let tok: Tokenizer;
  before(() => {
    dir = writeTinyQwen2(undefined, { max_position_embeddings: 96 });
    model = loadCausalLM(dir);
    model.eval();
    tok = Tokenizer.fromDir(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const prompts = () => ["Hello, world!", "Hi", "汉字 and emoji 😀 in a longer prompt than the others"].map((p) => tok.encode(p));

  it("greedy: a left-padded batch gives each prompt the tokens it gets alone, with or without the cache", async () => {
    const batch = await generate(model, tok, prompts(), { maxNewTokens: 6 });
    const uncached = await generate(model, tok, prompts(), { maxNewTokens: 6, useCache: false });
    for (let i = 0; i < 3; i++) {
      const [alone] = await generate(model, tok, [prompts()[i]!], { maxNewTokens: 6 });
      assert.deepEqual(batch[i]!.tokenIds, alone!.tokenIds, `prompt ${i}: batch vs alone`);
      assert.deepEqual(uncached[i]!.tokenIds, alone!.tokenIds, `prompt ${i}: no cache vs cache`);
      assert.equal(alone!.text, tok.decode(alone!.tokenIds, { skipSpecialTokens: true }));
    }
  });

  it("sampling is reproducible per seed", async () => {
    const opts = { maxNewTokens: 6, temperature: 1, topP: 0.9, seed: 5 };
    const a = await generate(model, tok, prompts(), opts);
    const b = await generate(model, tok, prompts(), opts);
    assert.deepEqual(a, b);
  });

  it("a chat session renders the Qwen template and trims old turns to the context", async () => {
    const chat = new ChatSession(model, tok, { maxNewTokens: 8, system: "Be brief." });
    const long = "word ".repeat(25);
    let dropped = 0;
    for (let i = 0; i < 3; i++) {
      const it = chat.send(`${i}: ${long}`);
      let r = await it.next();
      while (!r.done) r = await it.next();
      assert.ok(r.value.promptTokens <= 96 - 8);
      dropped += r.value.droppedMessages;
    }
    assert.ok(dropped > 0, "old turns were dropped");
    assert.equal(chat.history[0]!.role, "user");
    const prompt = tok.decode(chat.encode(chat.history));
    assert.ok(prompt.startsWith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"));
    assert.ok(prompt.endsWith("<|im_start|>assistant\n"));
  });

  it("serves an OpenAI chat completion with the real chat template", async () => {
    const server = await startServer({ model, tokenizer: tok, port: 0, modelName: "tiny-qwen2" });
    try {
      const messages = [{ role: "user", content: "Hi!" }];
      const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ messages, max_tokens: 3, temperature: 0 }) });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
      const ids = tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
      const [want] = await generate(model, tok, [ids], { maxNewTokens: 3 });
      assert.equal(body.choices[0]!.message.content, want!.text);
      assert.equal(body.usage.prompt_tokens, ids.length);
    } finally {
      await server.close();
    }
  });
});
