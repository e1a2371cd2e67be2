/**
 * Test doubles for generation: a byte-level tokenizer and two tiny causal LMs that honour the
 * CausalLM contract (KV cache, left-padding attention mask, position ids) without any weights.
 *
 * HashLM's next-token logits depend on every attended (token, position) pair, so a wrong mask,
 * wrong positions or a cache that drops or repeats a column all change its output, just as they
 * would for a transformer.
 */
import "../../src/backend/index.ts";
import { Module } from "../../src/nn/Module.ts";
import { type Tensor, tensor } from "../../src/tensor/index.ts";
import { KVCache, type ForwardOptions, type ModelConfig } from "../../src/models/types.ts";
import { type ChatMessage, type ChatTemplateOptions, DecodeStream, type DecodeStreamOptions } from "../../src/tokenizers/index.ts";
import type { TextTokenizer } from "../../src/generation/index.ts";

export const PAD = 0;
export const EOS = 1;
export const BOS = 2;
const SPECIALS = ["<pad>", "<eos>", "<bos>"];
/** Byte b is token b + 3. */
export const BYTE0 = 3;
export const VOCAB = 256 + BYTE0;

export class ByteTokenizer implements TextTokenizer {
  readonly eosTokenIds = [EOS];
  readonly padTokenId = PAD;
  encode(text: string): number[] {
    return [...new TextEncoder().encode(text)].map((b) => b + BYTE0);
  }
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    let out = "";
    let bytes: number[] = [];
    const flush = () => {
      out += new TextDecoder().decode(new Uint8Array(bytes));
      bytes = [];
    };
    for (const id of ids) {
      if (id >= BYTE0) bytes.push(id - BYTE0);
      else {
        flush();
        if (!opts.skipSpecialTokens) out += SPECIALS[id];
      }
    }
    flush();
    return out;
  }
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const msgs = opts.system !== undefined && messages[0]?.role !== "system" ? [{ role: "system", content: opts.system }, ...messages] : messages;
    return msgs.map((m) => `<${m.role}>${m.content}\n`).join("") + (opts.addGenerationPrompt ? "<assistant>" : "");
  }
  createDecodeStream(opts: DecodeStreamOptions = {}): DecodeStream {
    return new DecodeStream((ids) => this.decode(ids, { skipSpecialTokens: opts.skipSpecialTokens ?? false }), opts);
  }
}

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x9e3779b1) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** Base class: runs `logitsFor(attended, position)` for each query under causal + padding masks. */
abstract class FakeLM extends Module {
  forwardCalls: { T: number; cached: number }[] = [];
  readonly config: ModelConfig;
  constructor(vocab: number, context: number) {
    super();
    this.config = { model_type: "fake", vocab_size: vocab, max_position_embeddings: context };
  }

  /** A real one-layer cache whose "keys" are the (token, position) pairs fed so far. */
  newCache(batch: number, maxLength?: number): KVCache {
    return new KVCache(1, batch, 1, 2, maxLength);
  }

  protected abstract logitsFor(attended: { token: number; pos: number }[], queryPos: number, out: Float32Array): void;

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, T] = inputIds.shape as [number, number];
    const V = this.config.vocab_size;
    const ids = inputIds.toArray();
    const cache = opts.cache;
    const past = cache ? cache.length : 0;
    this.forwardCalls.push({ T, cached: past });
    const S = past + T;
    const mask = opts.attentionMask ? opts.attentionMask.toArray() : new Array<number>(B * S).fill(1);
    if (mask.length !== B * S) throw new Error(`attentionMask has ${mask.length} elements, expected B*S = ${B * S}`);
    const pos = opts.positionIds ? opts.positionIds.toArray() : Array.from({ length: B * T }, (_, i) => past + (i % T));
    const pairs = new Float32Array(B * T * 2);
    for (let i = 0; i < B * T; i++) {
      pairs[2 * i] = ids[i]!;
      pairs[2 * i + 1] = pos[i]!;
    }
    const fresh = tensor(pairs, { shape: [B, 1, T, 2] });
    const all = (cache ? cache.append(0, fresh, fresh)[0] : fresh).toArray();
    const out = new Float32Array(B * T * V);
    for (let b = 0; b < B; b++) {
      const toks = Array.from({ length: S }, (_, j) => all[(b * S + j) * 2]!);
      const poss = Array.from({ length: S }, (_, j) => all[(b * S + j) * 2 + 1]!);
      for (let t = 0; t < T; t++) {
        const q = past + t;
        const attended: { token: number; pos: number }[] = [];
        for (let j = 0; j <= q; j++) if (mask[b * S + j] !== 0) attended.push({ token: toks[j]!, pos: poss[j]! });
        this.logitsFor(attended, poss[q]!, out.subarray((b * T + t) * V, (b * T + t + 1) * V));
      }
    }
    return tensor(out, { shape: [B, T, V] });
  }
}

/** Logits are a hash of every attended (token, position) pair: sensitive to masks, positions and caching. */
export class HashLM extends FakeLM {
  constructor(opts: { vocab?: number; context?: number; eosBias?: number } = {}) {
    super(opts.vocab ?? VOCAB, opts.context ?? 4096);
    this.eosBias = opts.eosBias ?? -100;
  }
  private readonly eosBias: number;

  protected logitsFor(attended: { token: number; pos: number }[], _queryPos: number, out: Float32Array): void {
    let h = 0x12345;
    for (const a of attended) h = mix(mix(h, a.token), a.pos);
    for (let v = 0; v < out.length; v++) out[v] = (mix(h, v) / 4294967296) * 4 - 2;
    // Keep special tokens rare unless asked for, so text-level tests see bytes.
    out[PAD] = -100;
    out[BOS] = -100;
    out[EOS] = this.eosBias;
  }
}

/** Emits `script[k]` at generated step k (peaked logits), whatever the context: for stop-string and EOS tests. */
export class ScriptLM extends FakeLM {
  constructor(
    private readonly script: number[],
    private readonly promptLength: number,
    vocab = VOCAB,
  ) {
    super(vocab, 4096);
  }
  protected logitsFor(_attended: unknown[], queryPos: number, out: Float32Array): void {
    out.fill(0);
    const k = queryPos - this.promptLength + 1;
    out[this.script[Math.min(Math.max(k, 0), this.script.length - 1)]!] = 50;
  }
}
