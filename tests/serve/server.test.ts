import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generate } from "../../src/generation/index.ts";
import { type RunningServer, startServer } from "../../src/serve/index.ts";
import type { ForwardOptions } from "../../src/models/types.ts";
import type { Tensor } from "../../src/tensor/index.ts";
import { ByteTokenizer, HashLM } from "../generation/fakes.ts";

/** HashLM that takes `delayMs` per forward, so a disconnect lands mid-generation. */
class SlowHashLM extends HashLM {
  delayMs = 0;
  override forward(inputIds: Tensor, opts?: ForwardOptions): Tensor {
    if (this.delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, this.delayMs);
    return super.forward(inputIds, opts);
  }
}

const tok = new ByteTokenizer();
const model = new SlowHashLM({ eosBias: 1 });
let server: RunningServer;

interface Completion {
  id: string;
  object: string;
  model: string;
  choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface Chunk {
  object: string;
  choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
  usage?: Completion["usage"];
}

const post = (body: unknown, signal?: AbortSignal) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

async function complete(body: Record<string, unknown>): Promise<Completion> {
  const res = await post(body);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Completion;
}

async function stream(body: Record<string, unknown>): Promise<{ chunks: Chunk[]; text: string; done: boolean }> {
  const res = await post({ ...body, stream: true });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const events = (await res.text()).split("\n\n").filter((e) => e.length > 0);
  assert.ok(events.every((e) => e.startsWith("data: ")), "every SSE event is a data line");
  const done = events.at(-1) === "data: [DONE]";
  const chunks = events.filter((e) => e !== "data: [DONE]").map((e) => JSON.parse(e.slice(6)) as Chunk);
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
  return { chunks, text, done };
}

const hello = [{ role: "user", content: "Hello!" }];

describe("graft serve (OpenAI-compatible HTTP)", () => {
  before(async () => {
    server = await startServer({ model, tokenizer: tok, port: 0, host: "127.0.0.1", modelName: "tiny" });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
  after(async () => {
    await server.close();
  });

  it("lists the model", async () => {
    const res = await fetch(`${server.url}/v1/models`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { object: string; data: { id: string; object: string }[] };
    assert.equal(body.object, "list");
    assert.deepEqual(
      body.data.map((m) => [m.id, m.object]),
      [["tiny", "model"]],
    );
    assert.equal((await fetch(`${server.url}/v1/models/tiny`)).status, 200);
    assert.equal((await fetch(`${server.url}/v1/models/other`)).status, 404);
  });

  it("answers a chat completion exactly as generate() does, with usage", async () => {
    const body = await complete({ model: "tiny", messages: hello, max_tokens: 12, temperature: 0.8, seed: 42 });
    const promptIds = tok.encode(tok.applyChatTemplate(hello, { addGenerationPrompt: true }));
    const [want] = await generate(model, tok, [promptIds], { maxNewTokens: 12, temperature: 0.8, seed: 42 });
    assert.equal(body.object, "chat.completion");
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.model, "tiny");
    assert.equal(body.choices[0]!.message.role, "assistant");
    assert.equal(body.choices[0]!.message.content, want!.text);
    assert.equal(body.choices[0]!.finish_reason, want!.finishReason);
    assert.deepEqual(body.usage, { prompt_tokens: promptIds.length, completion_tokens: want!.tokenIds.length, total_tokens: promptIds.length + want!.tokenIds.length });
  });

  it("reports finish_reason length when max_tokens runs out", async () => {
    const body = await complete({ messages: hello, max_tokens: 3, temperature: 0 });
    // eosBias 1 cannot beat the greedy maximum of this prompt's first tokens, so it runs to the limit.
    assert.equal(body.usage.completion_tokens, 3);
    assert.equal(body.choices[0]!.finish_reason, "length");
  });

  it("applies stop strings (not emitted) with finish_reason stop", async () => {
    const free = await complete({ messages: hello, max_tokens: 20, temperature: 0 });
    const text = free.choices[0]!.message.content;
    assert.ok([...text].length >= 3, `needs a few characters, got ${JSON.stringify(text)}`);
    const stopAt = [...text][2]!;
    const body = await complete({ messages: hello, max_tokens: 20, temperature: 0, stop: [stopAt] });
    assert.equal(body.choices[0]!.message.content, text.slice(0, text.indexOf(stopAt)));
    assert.equal(body.choices[0]!.finish_reason, "stop");
  });

  it("streams chunks whose deltas concatenate to the non-streamed answer, then [DONE]", async () => {
    const req = { messages: hello, max_tokens: 16, temperature: 0.7, seed: 3, stream_options: { include_usage: true } };
    const whole = await complete(req);
    const s = await stream(req);
    assert.ok(s.done, "ends with data: [DONE]");
    assert.equal(s.text, whole.choices[0]!.message.content);
    assert.ok(s.chunks.every((c) => c.object === "chat.completion.chunk"));
    assert.deepEqual(s.chunks[0]!.choices[0]!.delta, { role: "assistant", content: "" });
    const finals = s.chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finals.length, 1);
    assert.equal(finals[0]!.choices[0]!.finish_reason, whole.choices[0]!.finish_reason);
    assert.deepEqual(s.chunks.at(-1)!.usage, whole.usage);
    assert.deepEqual(s.chunks.at(-1)!.choices, []);
  });

  it("serves concurrent clients in order, each getting its own answer", async () => {
    const reqs = Array.from({ length: 5 }, (_, i) => ({ messages: [{ role: "user", content: `question ${i}` }], max_tokens: 8 + i, temperature: 0.9, seed: i }));
    const solo: string[] = [];
    for (const r of reqs) solo.push((await complete(r)).choices[0]!.message.content);
    model.delayMs = 1;
    try {
      const together = await Promise.all(reqs.map((r, i) => (i % 2 ? stream(r).then((s) => s.text) : complete(r).then((b) => b.choices[0]!.message.content))));
      assert.deepEqual(together, solo);
    } finally {
      model.delayMs = 0;
    }
  });

  it("aborts the generation of a client that disconnects, and keeps serving", async () => {
    model.delayMs = 3;
    try {
      const before = model.forwardCalls.length;
      const ac = new AbortController();
      const res = await post({ messages: hello, max_tokens: 1000, temperature: 0.5, seed: 1, stream: true }, ac.signal);
      const reader = res.body!.getReader();
      await reader.read(); // the first chunk
      ac.abort();
      await reader.read().catch(() => undefined);
      // The queue is serial: once this answer arrives, the aborted generation has stopped.
      const next = await complete({ messages: hello, max_tokens: 2 });
      assert.equal(next.usage.completion_tokens, 2);
      const used = model.forwardCalls.length - before - 2;
      assert.ok(used < 200, `the aborted request ran ${used} of 1000 steps`);
    } finally {
      model.delayMs = 0;
    }
  });

  it("rejects bad requests with 400 and an OpenAI-style error naming the problem", async () => {
    const cases: [unknown, RegExp, string | null][] = [
      ["{not json", /not valid JSON/, null],
      [{ model: "tiny" }, /'messages'/, "messages"],
      [{ messages: [] }, /at least one message/, "messages"],
      [{ messages: [{ role: "wizard", content: "x" }] }, /role must be one of/, "messages[0].role"],
      [{ messages: [{ role: "user", content: 3 }] }, /content must be a string/, "messages[0].content"],
      [{ messages: hello, temperature: 5 }, /'temperature' must be/, "temperature"],
      [{ messages: hello, max_tokens: 0 }, /'max_tokens' must be/, "max_tokens"],
      [{ messages: hello, stop: [1] }, /'stop' must be/, "stop"],
      [{ messages: hello, n: 2 }, /n = 1/, "n"],
      [{ messages: [{ role: "user", content: "x".repeat(5000) }] }, /context of 4096 tokens/, "messages"],
    ];
    for (const [body, re, param] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
      const err = (await res.json()) as { error: { message: string; type: string; param: string | null } };
      assert.match(err.error.message, re);
      assert.equal(err.error.type, "invalid_request_error");
      assert.equal(err.error.param, param);
    }
  });

  it("answers 404 for unknown routes and 405 for wrong methods", async () => {
    const res = await fetch(`${server.url}/v1/completions-nope`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { message: string } };
    assert.match(body.error.message, /unknown route/);
    assert.equal((await fetch(`${server.url}/v1/chat/completions`)).status, 405);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });
});
