/**
 * `graft chat` and `graft generate` as a user runs them: child processes on a tiny Qwen2 directory
 * with the real Qwen2.5 tokenizer, stdin piped. The expected answers come from the library
 * (ChatSession / generate) on the same directory, so the CLI must reproduce them exactly.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ChatSession, generate } from "../../src/generation/index.ts";
import { type CausalLM, loadCausalLM } from "../../src/models/index.ts";
import { Tokenizer } from "../../src/tokenizers/index.ts";
import { writeTinyQwen2 } from "../generation/tinyQwen2.ts";
import { runCli } from "../helpers/runCli.ts";


async function answer(chat: ChatSession, text: string): Promise<string> {
  const it = chat.send(text);
  let r = await it.next();
  while (!r.done) r = await it.next();
  return r.value.text;
}

describe("graft chat / generate (child process, piped stdin)", () => {
  let dir: string;
  let model: CausalLM;
  let tok: Tokenizer;
  before(() => {
    dir = writeTinyQwen2(undefined, { max_position_embeddings: 64 });
    model = loadCausalLM(dir);
    model.eval();
    tok = Tokenizer.fromDir(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("chats over several turns: commands, multi-line input, history trimmed to the context, /bye", async () => {
    const long = "please remember this sentence ".repeat(4).trim();
    const input = [
      "Hello!",
      "/set system You are terse.",
      "/set temperature 0.8",
      "/set seed 7",
      "/set top_p 0.9",
      '"""',
      "first line",
      "second line",
      '"""',
      long,
      `${long} again`,
      "/clear",
      '"""one-line block"""',
      "/nope",
      "/bye",
      "this is never answered",
    ].join("\n");
    const run = await runCli(["chat", dir, "--max-new-tokens", "5"], input);
    assert.equal(run.code, 0, run.stderr);

    const chat = new ChatSession(model, tok, { maxNewTokens: 5 });
    const expected: string[] = [await answer(chat, "Hello!")];
    chat.system = "You are terse.";
    chat.options = { ...chat.options, temperature: 0.8, seed: 7, topP: 0.9 };
    expected.push(await answer(chat, "first line\nsecond line"));
    expected.push(await answer(chat, long));
    const before = chat.history.length + 2;
    expected.push(await answer(chat, `${long} again`));
    assert.ok(chat.history.length < before, "the context of 64 tokens forced dropping old turns");
    chat.clear();
    expected.push(await answer(chat, "one-line block"));

    assert.equal(run.stdout, expected.map((a) => `${a}\n`).join(""));
    assert.match(run.stderr, /Set system message\./);
    assert.match(run.stderr, /Set parameter 'temperature' to '0\.8'/);
    assert.match(run.stderr, /Cleared session context/);
    assert.match(run.stderr, /Unknown command '\/nope'/);
    assert.doesNotMatch(run.stdout, />>>/);
  });

  it("exits at end of input without /bye, and reports bad settings without stopping", async () => {
    const run = await runCli(["chat", dir, "--max-new-tokens", "3", "--system", "Be kind."], "/set temperature -1\n/set top_k x\nHi\n");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /temperature must be/);
    assert.match(run.stderr, /'top_k' needs an integer/);
    const chat = new ChatSession(model, tok, { maxNewTokens: 3, system: "Be kind." });
    assert.equal(run.stdout, `${await answer(chat, "Hi")}\n`);
  });

  it("generate prints the greedy completion of a raw prompt", async () => {
    const run = await runCli(["generate", dir, "--prompt", "The capital of France is", "--max-new-tokens", "6"], "");
    assert.equal(run.code, 0, run.stderr);
    const [want] = await generate(model, tok, [tok.encode("The capital of France is")], { maxNewTokens: 6 });
    assert.equal(run.stdout, `${want!.text}\n`);
  });

  it("fails with a clear message on a directory without a model", async () => {
    const run = await runCli(["chat", path.join(dir, "missing")], "");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /graft chat: .*missing/);
  });
});
