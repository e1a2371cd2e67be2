/**
 * A byte-level tokenizer with no merges: 256 byte tokens (GPT-2's byte-to-unicode alphabet) plus
 * `<|endoftext|>` (256, document separator and padding) and ChatML's `<|im_start|>` (257) and
 * `<|im_end|>` (258, end of turn = EOS), as a standard tokenizer.json (ByteLevel pre-tokenizer,
 * BPE model, ByteLevel decoder) with a ChatML chat template (Qwen2.5's, without its default
 * system prompt). For pretraining small models from scratch, where a 150k-token vocabulary would
 * dominate the compute.
 */
import { Tokenizer } from "../tokenizers/index.ts";

export const BYTE_EOS = "<|endoftext|>";
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** GPT-2's bytes_to_unicode(): printable bytes map to themselves, the rest to U+0100 and up. */
function byteAlphabet(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

/** tokenizer.json, tokenizer_config.json and generation_config.json of the byte tokenizer. */
export function byteTokenizerFiles(): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; generationConfig: Record<string, unknown> } {
  const vocab: Record<string, number> = {};
  byteAlphabet().forEach((ch, b) => (vocab[ch] = b));
  const specials = [BYTE_EOS, "<|im_start|>", "<|im_end|>"];
  specials.forEach((t, i) => (vocab[t] = 256 + i));
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({ id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast", eos_token: "<|im_end|>", pad_token: BYTE_EOS, bos_token: null,
    model_max_length: 32768, chat_template: CHATML_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig, generationConfig: { eos_token_id: [258, 256], pad_token_id: 256 } };
}

export function byteTokenizer(): Tokenizer {
  const f = byteTokenizerFiles();
  return Tokenizer.fromJson(f.tokenizerJson, f.tokenizerConfig, f.generationConfig);
}
