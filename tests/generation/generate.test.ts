import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type TokenEvent, generate, streamGenerate } from "../../src/generation/index.ts";
import { tensor } from "../../src/tensor/index.ts";
import { ByteTokenizer, EOS, HashLM, PAD, ScriptLM, VOCAB } from "./fakes.ts";

const tok = new ByteTokenizer();
const prompts = [tok.encode("hello there"), tok.encode("hi"), tok.encode("a longer prompt, by far")];

describe("generate: greedy", () => {
  it("gives each prompt the same tokens alone as in a left-padded batch", async () => {
    const model = new HashLM();
    const batch = await generate(model, tok, prompts, { maxNewTokens: 12 });
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await generate(model, tok, [prompts[i]!], { maxNewTokens: 12 });
      assert.deepEqual(batch[i]!.tokenIds, alone!.tokenIds, `prompt ${i}`);
      assert.equal(batch[i]!.text, alone!.text);
      assert.equal(batch[i]!.promptTokens, prompts[i]!.length);
      assert.equal(batch[i]!.finishReason, "length");
      assert.equal(batch[i]!.tokenIds.length, 12);
    }
  });

  it("gives the same tokens with and without the KV cache", async () => {
    const model = new HashLM();
    const cached = await generate(model, tok, prompts, { maxNewTokens: 10 });
    model.forwardCalls = [];
    const uncached = await generate(model, tok, prompts, { maxNewTokens: 10, useCache: false });
    assert.deepEqual(
      uncached.map((r) => r.tokenIds),
      cached.map((r) => r.tokenIds),
    );
    // Without a cache every step refeeds the whole sequence.
    assert.deepEqual(
      model.forwardCalls.map((c) => c.T),
      Array.from({ length: 10 }, (_, i) => 23 + i),
    );
  });

  it("prefills once and then feeds one token per step into the cache", async () => {
    const model = new HashLM();
    await generate(model, tok, prompts, { maxNewTokens: 5 });
    assert.deepEqual(model.forwardCalls, [
      { T: 23, cached: 0 },
      { T: 1, cached: 23 },
      { T: 1, cached: 24 },
      { T: 1, cached: 25 },
      { T: 1, cached: 26 },
    ]);
  });

  it("is what a greedy argmax over the model's logits picks", async () => {
    const model = new HashLM();
    const [r] = await generate(model, null, [prompts[0]!], { maxNewTokens: 4, useCache: false });
    const seq = [...prompts[0]!];
    for (let i = 0; i < 4; i++) {
      const logits = model.forward(tensor([seq], { dtype: "int32" })).select(1, seq.length - 1).toArray();
      const best = logits.indexOf(Math.max(...logits));
      assert.equal(r!.tokenIds[i], best);
      seq.push(best);
    }
    assert.equal(r!.text, "");
  });
});

describe("generate: sampling", () => {
  const opts = { maxNewTokens: 16, temperature: 0.9, topK: 50, topP: 0.95 };

  it("is deterministic per seed", async () => {
    const model = new HashLM();
    const a = await generate(model, tok, prompts, { ...opts, seed: 7 });
    const b = await generate(model, tok, prompts, { ...opts, seed: 7 });
    assert.deepEqual(
      a.map((r) => r.tokenIds),
      b.map((r) => r.tokenIds),
    );
  });

  it("differs across seeds", async () => {
    const model = new HashLM();
    const a = await generate(model, tok, prompts, { ...opts, seed: 1 });
    const b = await generate(model, tok, prompts, { ...opts, seed: 2 });
    assert.notDeepEqual(
      a.map((r) => r.tokenIds),
      b.map((r) => r.tokenIds),
    );
  });

  it("gives row 0 of a batch the same sample as the prompt alone with the same seed", async () => {
    const model = new HashLM();
    const batch = await generate(model, tok, prompts, { ...opts, seed: 11 });
    const [alone] = await generate(model, tok, [prompts[0]!], { ...opts, seed: 11 });
    assert.deepEqual(batch[0]!.tokenIds, alone!.tokenIds);
  });

  it("with topK 1 is greedy", async () => {
    const model = new HashLM();
    const greedy = await generate(model, tok, prompts, { maxNewTokens: 8 });
    const k1 = await generate(model, tok, prompts, { maxNewTokens: 8, temperature: 1.5, topK: 1, seed: 3 });
    assert.deepEqual(
      k1.map((r) => r.tokenIds),
      greedy.map((r) => r.tokenIds),
    );
  });
});

describe("generate: stopping", () => {
  const text = (s: string) => tok.encode(s);

  it("stops at EOS, keeps it in tokenIds and adds no text for it", async () => {
    const prompt = text("q:");
    const model = new ScriptLM([...text("abc"), EOS, ...text("zzz")], prompt.length);
    const [r] = await generate(model, tok, [prompt], { maxNewTokens: 20 });
    assert.deepEqual(r!.tokenIds, [...text("abc"), EOS]);
    assert.equal(r!.text, "abc");
    assert.equal(r!.finishReason, "stop");
  });

  it("stops at a stop string spanning tokens and does not emit it", async () => {
    const prompt = text("q:");
    const model = new ScriptLM(text("Hello World. Bye now"), prompt.length);
    const deltas: string[] = [];
    const [r] = await generate(model, tok, [prompt], { maxNewTokens: 50, stopStrings: ["xyz", "d. B"], onToken: (_b, _id, t) => deltas.push(t) });
    assert.equal(r!.text, "Hello Worl");
    assert.equal(deltas.join(""), "Hello Worl");
    assert.equal(r!.finishReason, "stop");
    // Generation ran through the token that completed the stop string.
    assert.equal(r!.tokenIds.length, "Hello World. B".length);
    // "d" was held back while it could still begin "d. B".
    assert.ok(!deltas.slice(0, -1).join("").includes("d"));
  });

  it("releases held-back text when the row ends by length", async () => {
    const prompt = text("q:");
    const model = new ScriptLM(text("abcd"), prompt.length);
    const [r] = await generate(model, tok, [prompt], { maxNewTokens: 4, stopStrings: ["cde"] });
    assert.equal(r!.text, "abcd");
    assert.equal(r!.finishReason, "length");
  });

  it("streams multi-byte characters whole", async () => {
    const prompt = text("q:");
    const model = new ScriptLM(text("é😀!"), prompt.length);
    const deltas: string[] = [];
    const [r] = await generate(model, tok, [prompt], { maxNewTokens: 7, onToken: (_b, _id, t) => deltas.push(t) });
    assert.equal(r!.text, "é😀!");
    assert.deepEqual(
      deltas.filter((d) => d !== ""),
      ["é", "😀", "!"],
    );
    assert.ok(!deltas.join("").includes("\uFFFD"));
  });

  it("ends rows independently: a finished row is not reported while others go on", async () => {
    const model = new HashLM({ eosBias: 4 });
    // With eosBias 4 some rows hit EOS early; the batch must still match each prompt alone.
    const many = Array.from({ length: 6 }, (_, i) => text(`p${i}`.repeat(i + 1)));
    const events: [number, number][] = [];
    const batch = await generate(model, tok, many, { maxNewTokens: 30, temperature: 1, seed: 5, onToken: (b, id) => events.push([b, id]) });
    for (let i = 0; i < many.length; i++) {
      const alone = await generate(model, tok, [many[i]!], { maxNewTokens: 30, temperature: 1, seed: 5 + i });
      assert.deepEqual(batch[i]!.tokenIds, alone[0]!.tokenIds, `row ${i}`);
      const reported = events.filter(([b]) => b === i).map(([, id]) => id);
      assert.deepEqual(reported, batch[i]!.tokenIds);
      assert.ok(!reported.includes(PAD));
    }
    assert.ok(batch.some((r) => r.finishReason === "stop"), "some row should have ended at EOS");
  });

  it("caps new tokens at the model's context length", async () => {
    const model = new HashLM({ context: 20 });
    const prompt = text("0123456789abcdef"); // 16 tokens
    const [r] = await generate(model, tok, [prompt], { maxNewTokens: 100 });
    assert.equal(r!.tokenIds.length, 4);
    assert.equal(r!.finishReason, "length");
    await assert.rejects(generate(model, tok, [text("x".repeat(20))]), /leaves no room/);
  });

  it("aborts between tokens", async () => {
    const model = new HashLM();
    const ac = new AbortController();
    let n = 0;
    const [r] = await generate(model, tok, [prompts[0]!], {
      maxNewTokens: 100,
      signal: ac.signal,
      onToken: () => {
        if (++n === 3) ac.abort();
      },
    });
    assert.equal(r!.finishReason, "abort");
    assert.equal(r!.tokenIds.length, 3);
  });

  it("rejects bad arguments with named errors", async () => {
    const model = new HashLM();
    await assert.rejects(generate(model, tok, []), /inputIds is empty/);
    await assert.rejects(generate(model, tok, [[]]), /prompt 0 is empty/);
    await assert.rejects(generate(model, tok, [[3]], { maxNewTokens: 0 }), /maxNewTokens/);
    await assert.rejects(generate(model, tok, [[3]], { topP: 0 }), /topP/);
    await assert.rejects(generate(model, null, [[3]], { stopStrings: ["a"] }), /need a tokenizer/);
  });
});

describe("streamGenerate", () => {
  it("yields the same tokens and text as generate, with the finish reason on each row's last event", async () => {
    const model = new HashLM({ eosBias: 3 });
    const opts = { maxNewTokens: 12, temperature: 0.8, seed: 9 };
    const expected = await generate(model, tok, prompts, opts);
    const events: TokenEvent[] = [];
    const it = streamGenerate(model, tok, prompts, opts);
    let res = await it.next();
    while (!res.done) {
      events.push(res.value);
      res = await it.next();
    }
    assert.deepEqual(res.value, expected);
    for (let i = 0; i < prompts.length; i++) {
      const mine = events.filter((e) => e.batchIndex === i);
      assert.deepEqual(
        mine.map((e) => e.tokenId),
        expected[i]!.tokenIds,
      );
      assert.equal(mine.map((e) => e.text).join(""), expected[i]!.text);
      assert.equal(mine.at(-1)!.finishReason, expected[i]!.finishReason);
      assert.ok(mine.slice(0, -1).every((e) => e.finishReason === undefined));
    }
  });

  it("stops cleanly when the consumer breaks out", async () => {
    const model = new HashLM();
    let n = 0;
    for await (const e of streamGenerate(model, tok, [prompts[1]!], { maxNewTokens: 50 })) {
      assert.equal(e.batchIndex, 0);
      if (++n === 2) break;
    }
    assert.equal(n, 2);
  });
});

describe("generate: a vocab_size padded past the tokenizer", () => {
  it("never picks an id the tokenizer lacks, greedy or sampled, and decodes every token", async () => {
    // The model's vocab is 64 ids wider than the tokenizer's; those ids get the highest logits.
    class PaddedLM extends HashLM {
      override forward(...args: Parameters<HashLM["forward"]>) {
        const l = super.forward(...args);
        const V = this.config.vocab_size;
        const d = l.toArray();
        for (let i = 0; i < d.length; i++) if (i % V >= V - 64) d[i] = 10;
        return tensor(d, { shape: [...l.shape] });
      }
    }
    const model = new PaddedLM({ vocab: VOCAB + 64 });
    const sizedTok = Object.assign(Object.create(tok) as ByteTokenizer, { vocabSize: VOCAB });
    for (const opts of [{}, { temperature: 1.5, seed: 3 }, { temperature: 1, topK: 5, seed: 4 }]) {
      const [r] = await generate(model, sizedTok, [prompts[0]!], { maxNewTokens: 20, ...opts });
      assert.ok(r!.tokenIds.every((id) => id < VOCAB), JSON.stringify(r!.tokenIds));
      assert.equal(r!.text, tok.decode(r!.tokenIds));
    }
    // Without a vocabSize the padded ids win: the mask is what keeps them out.
    const [unmasked] = await generate(model, tok, [prompts[0]!], { maxNewTokens: 3 });
    assert.ok(unmasked!.tokenIds.every((id) => id >= VOCAB));
  });
});
