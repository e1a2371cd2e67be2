/** Pretraining data: documents, the byte tokenizer, block packing (run_clm group_texts) and BERT's MLM corruption. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Generator } from "../../src/core/rng.ts";
import { byteTokenizer } from "../../src/data/byteTokenizer.ts";
import { collateBlocks, maskTokens, packBlocks, splitDocuments, tokenizeDocuments } from "../../src/data/pretrain.ts";

test("splitDocuments: paragraphs (blank lines, inner newlines joined), lines, or the whole file", () => {
  const text = "First para\nstill first.\r\n\r\nSecond.\n\n\n  \nThird\n";
  assert.deepEqual(splitDocuments(text), ["First para still first.", "Second.", "Third"]);
  assert.deepEqual(splitDocuments(text, "line"), ["First para", "still first.", "Second.", "Third"]);
  assert.deepEqual(splitDocuments("a\n\nb", "file"), ["a\n\nb"]);
});

test("byte tokenizer: UTF-8 bytes as ids 0-255, ChatML specials 256-258, lossless round trip", () => {
  const tok = byteTokenizer();
  assert.equal(tok.vocabSize, 259);
  assert.deepEqual(tok.encode("Hi 你"), [72, 105, 32, 0xe4, 0xbd, 0xa0]);
  assert.deepEqual(tok.encode("<|im_start|>x<|im_end|><|endoftext|>"), [257, 120, 258, 256]);
  const s = "混合 text, émojis 🙂 and\nnewlines\ttabs";
  assert.equal(tok.decode(tok.encode(s)), s);
  assert.deepEqual(tok.eosTokenIds, [258, 256]);
  assert.equal(tok.padTokenId, 256);
  assert.equal(tok.applyChatTemplate([{ role: "user", content: "问" }], { addGenerationPrompt: true }), "<|im_start|>user\n问<|im_end|>\n<|im_start|>assistant\n");
});

test("documents → one stream with a separator after each → blocks of blockSize, the tail dropped", () => {
  const tok = byteTokenizer();
  const ids = tokenizeDocuments(tok, ["ab", "cde"], { separatorId: 256 });
  assert.deepEqual([...ids], [97, 98, 256, 99, 100, 101, 256]);
  assert.deepEqual(packBlocks(ids, 3).map((b) => [...b]), [[97, 98, 256], [99, 100, 101]]);
  const batch = collateBlocks(packBlocks(ids, 3));
  assert.deepEqual(batch.inputIds.shape, [2, 3]);
  assert.deepEqual(batch.labels.toArray(), batch.inputIds.toArray());
  assert.throws(() => packBlocks(ids, 1), /blockSize must be an integer >= 2/);
});

test("maskTokens: 15% of non-special positions predicted; of them 80% [MASK], 10% random, 10% kept", () => {
  const n = 200_000;
  const block = Int32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 3 : 10 + (i % 50)));
  const b = maskTokens([block], { maskTokenId: 1, vocabSize: 100, specialIds: new Set([3]), generator: new Generator(7) });
  const ids = b.inputIds.data() as Int32Array;
  const labels = b.labels.data() as Int32Array;
  let predicted = 0;
  let masked = 0;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (block[i] === 3) {
      assert.equal(labels[i], -100);
      assert.equal(ids[i], 3);
      continue;
    }
    if (labels[i] === -100) {
      assert.equal(ids[i], block[i]);
      continue;
    }
    assert.equal(labels[i], block[i]);
    predicted++;
    if (ids[i] === 1) masked++;
    else if (ids[i] === block[i]) kept++;
  }
  const eligible = n - Math.ceil(n / 97);
  assert.ok(Math.abs(predicted / eligible - 0.15) < 0.005, `${predicted / eligible}`);
  assert.ok(Math.abs(masked / predicted - 0.8) < 0.01);
  // "random" replacements can draw the original token (1 in 100), so kept is ~10% + 0.1%.
  assert.ok(Math.abs(kept / predicted - 0.101) < 0.01, `${kept / predicted}`);
  // Same generator seed → the same corruption (resumable MLM batches).
  const again = maskTokens([block], { maskTokenId: 1, vocabSize: 100, specialIds: new Set([3]), generator: new Generator(7) });
  assert.deepEqual(again.inputIds.toArray(), b.inputIds.toArray());
});
