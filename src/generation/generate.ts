/**
 * Autoregressive generation: prefill the prompt(s) into a KV cache, then decode one token per
 * step. A batch of prompts of different lengths is left-padded and masked; each row has its own
 * seeded generator, so a row's tokens do not depend on what else is in the batch. Finished rows
 * keep being fed a pad token (their outputs are ignored) until every row is done.
 */
import { GraftError } from "../core/errors.ts";
import { Generator } from "../core/rng.ts";
import { type Tensor, noGrad, tensor } from "../tensor/index.ts";
import { StopStringMatcher } from "./StopStringMatcher.ts";
import { type LogitsProcessor, type SamplingOptions, buildLogitsProcessors } from "./logitsProcessors.ts";
import { greedy, sampleMultinomial } from "./sampling.ts";
import type { DecodeStream } from "../tokenizers/index.ts";
import type { CausalLM, KVCache, TextTokenizer } from "./types.ts";

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate per sequence at most (default 128); also capped by the model's context length. */
  maxNewTokens?: number;
  /** Seed of the sampling generators (row i uses seed + i); default: a random seed. Greedy ignores it. */
  seed?: number;
  /** Tokens that end a sequence (default: the tokenizer's). The EOS token is kept in tokenIds but adds no text. */
  eosTokenIds?: readonly number[];
  /** Strings that end a sequence when they appear in its decoded text; they are not emitted. Needs a tokenizer. */
  stopStrings?: readonly string[];
  /** Token used for left padding and for finished rows (default: the tokenizer's pad, else the first EOS, else 0). */
  padTokenId?: number;
  /** Use a KV cache (default true); false recomputes the whole sequence each step. */
  useCache?: boolean;
  /** Decode steps run one fused kernel per layer where the model has one (default true; see ForwardOptions.fused). */
  fused?: boolean;
  /** Drop special tokens from the decoded text (default true). */
  skipSpecialTokens?: boolean;
  /** Called for every generated token of an unfinished row, with the text it adds ("" while held back). */
  onToken?: (batchIndex: number, tokenId: number, textDelta: string) => void;
  /** Aborting stops generation before the next step; unfinished rows end with finishReason "abort". */
  signal?: AbortSignal;
}

export type FinishReason = "stop" | "length" | "abort";

export interface TokenEvent {
  batchIndex: number;
  tokenId: number;
  /** Text this token adds to the row's output (may be "" while a character or stop string is pending). */
  text: string;
  /** Set on the row's last token. */
  finishReason?: FinishReason;
}

export interface GenerationResult {
  /** Generated ids (the EOS that ended the row included; the prompt excluded). */
  tokenIds: number[];
  /** Decoded generated text, the concatenation of the emitted deltas ("" without a tokenizer). */
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
}

/** The context length a model config declares, when it declares one. */
export function contextLength(config: object): number | null {
  const c = config as Record<string, unknown>;
  for (const key of ["max_position_embeddings", "n_positions", "n_ctx"]) {
    const v = c[key];
    if (typeof v === "number" && v > 0) return v;
  }
  return null;
}

interface Row {
  prompt: readonly number[];
  /** Prompt + generated ids (what the repetition penalty sees). */
  ids: number[];
  generated: number[];
  text: string;
  finishReason: FinishReason | null;
  decoder: DecodeStream | null;
  stop: StopStringMatcher;
  rng: Generator;
}

/** One generation over a batch, advanced a token at a time by `step()`. */
export class GenerationRun {
  private readonly rows: Row[];
  private readonly padLeft: number[];
  /** Every row as fed to the model so far: left pads, prompt, then generated (or pad) ids. */
  private readonly seqs: number[][];
  private readonly processors: LogitsProcessor[];
  private readonly sampling: boolean;
  private readonly eos: Set<number>;
  private readonly maxNew: number;
  private readonly pad: number;
  /** The tokenizer's vocabulary size: logits past it (vocab_size padded, as Qwen2.5's 151936 vs 151665) are masked. */
  private readonly vocab: number | null;
  private readonly cache: KVCache | null;
  private readonly fused: boolean;
  /** Columns of `seqs` already in the cache. */
  private cached = 0;

  constructor(
    private readonly model: CausalLM,
    tokenizer: TextTokenizer | null,
    inputIds: readonly (readonly number[])[],
    opts: GenerateOptions = {},
  ) {
    if (inputIds.length === 0) throw new GraftError("generate: inputIds is empty (need at least one prompt)");
    inputIds.forEach((p, i) => {
      if (p.length === 0) throw new GraftError(`generate: prompt ${i} is empty (need at least one token)`);
      if (p.some((id) => !Number.isInteger(id) || id < 0)) throw new GraftError(`generate: prompt ${i} holds an id that is not a non-negative integer`);
    });
    const maxNewTokens = opts.maxNewTokens ?? 128;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new GraftError(`generate: maxNewTokens must be an integer >= 1, got ${maxNewTokens}`);
    const stopStrings = opts.stopStrings ?? [];
    if (stopStrings.length > 0 && !tokenizer) throw new GraftError("generate: stopStrings need a tokenizer to decode the text");

    this.processors = buildLogitsProcessors(opts);
    this.sampling = (opts.temperature ?? 0) > 0;
    this.eos = new Set(opts.eosTokenIds ?? tokenizer?.eosTokenIds ?? []);
    const pad = opts.padTokenId ?? tokenizer?.padTokenId ?? [...this.eos][0] ?? 0;
    this.pad = pad;
    this.vocab = tokenizer?.vocabSize ?? null;

    const longest = Math.max(...inputIds.map((p) => p.length));
    const ctx = contextLength(this.model.config);
    if (ctx !== null && longest >= ctx) throw new GraftError(`generate: a prompt of ${longest} tokens leaves no room in the model's context of ${ctx} tokens`);
    this.maxNew = ctx === null ? maxNewTokens : Math.min(maxNewTokens, ctx - longest);

    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
    const skipSpecial = opts.skipSpecialTokens ?? true;
    this.padLeft = inputIds.map((p) => longest - p.length);
    this.seqs = inputIds.map((p) => [...new Array<number>(longest - p.length).fill(pad), ...p]);
    this.rows = inputIds.map((p, i) => ({
      prompt: p,
      ids: [...p],
      generated: [],
      text: "",
      finishReason: null,
      decoder: tokenizer ? tokenizer.createDecodeStream({ skipSpecialTokens: skipSpecial, prefixIds: p.slice(-6) }) : null,
      stop: new StopStringMatcher(stopStrings),
      rng: new Generator((seed + i) >>> 0),
    }));
    this.cache = (opts.useCache ?? true) ? this.model.newCache(inputIds.length, longest + this.maxNew) : null;
    this.fused = opts.fused ?? true;
  }

  get done(): boolean {
    return this.rows.every((r) => r.finishReason !== null);
  }

  /** Ends every unfinished row with finishReason "abort" (their held-back text is dropped). */
  abort(): void {
    for (const r of this.rows) if (r.finishReason === null) r.finishReason = "abort";
  }

  /** Runs the model once and picks the next token of every unfinished row. */
  step(): TokenEvent[] {
    if (this.done) return [];
    const logits = noGrad(() => this.forwardLastLogits());
    const V = logits.length / this.rows.length;
    const events: TokenEvent[] = [];
    this.rows.forEach((row, b) => {
      if (row.finishReason !== null) {
        this.seqs[b]!.push(this.pad);
        return;
      }
      const l = logits.subarray(b * V, (b + 1) * V); // the forward's own output: processed in place
      if (this.vocab !== null && this.vocab < V) l.fill(-Infinity, this.vocab);
      for (const p of this.processors) p(l, row.ids);
      const id = this.sampling ? sampleMultinomial(l, row.rng) : greedy(l);
      this.seqs[b]!.push(id);
      row.ids.push(id);
      row.generated.push(id);
      events.push(this.advanceRow(row, b, id));
    });
    return events;
  }

  results(): GenerationResult[] {
    return this.rows.map((r) => ({ tokenIds: [...r.generated], text: r.text, finishReason: r.finishReason ?? "abort", promptTokens: r.prompt.length }));
  }

  /** Decodes the new token, checks EOS, stop strings and length, and records the row's text. */
  private advanceRow(row: Row, b: number, id: number): TokenEvent {
    let text = "";
    let reason: FinishReason | null = null;
    if (this.eos.has(id)) reason = "stop";
    else {
      const r = row.stop.push(row.decoder ? row.decoder.push(id) : "");
      text = r.text;
      if (r.stopped) reason = "stop";
      else if (row.generated.length >= this.maxNew) reason = "length";
    }
    if (reason !== null && row.stop.matched === null) {
      // Release what was held back: a partial character, or a tail that might have begun a stop string.
      const r = row.stop.push(row.decoder ? row.decoder.flush() : "");
      text += r.text;
      if (r.stopped) reason = "stop";
      else text += row.stop.flush();
    }
    row.text += text;
    row.finishReason = reason;
    return reason === null ? { batchIndex: b, tokenId: id, text } : { batchIndex: b, tokenId: id, text, finishReason: reason };
  }

  /** Feeds the columns not yet seen (all of them without a cache) and returns the last position's logits, [B × V]. */
  private forwardLastLogits(): Float32Array {
    const B = this.rows.length;
    const total = this.seqs[0]!.length;
    const start = this.cache ? this.cached : 0;
    const T = total - start;
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) ids[b * T + t] = this.seqs[b]![start + t]!;
    // Without left padding the mask is all ones and the positions are the model's own (past + t):
    // neither is built, so a decode step does not rebuild and re-read them.
    let padding: { attentionMask: Tensor; positionIds: Tensor } | null = null;
    if (this.padLeft.some((p) => p > 0)) {
      const pos = new Int32Array(B * T);
      const mask = new Int32Array(B * total);
      for (let b = 0; b < B; b++) {
        const padLeft = this.padLeft[b]!;
        for (let t = 0; t < T; t++) pos[b * T + t] = Math.max(0, start + t - padLeft);
        for (let j = padLeft; j < total; j++) mask[b * total + j] = 1;
      }
      padding = { attentionMask: tensor(mask, { shape: [B, total], dtype: "int32" }), positionIds: tensor(pos, { shape: [B, T], dtype: "int32" }) };
    }
    const out: Tensor = this.model.forward(tensor(ids, { shape: [B, T], dtype: "int32" }), {
      ...(this.cache ? { cache: this.cache } : {}),
      ...padding,
      logitsToKeep: 1,
      ...(this.fused ? {} : { fused: false }),
    });
    // The last position's logits, or every position's from a model that ignores logitsToKeep.
    if (out.ndim !== 3 || out.shape[0] !== B || (out.shape[1] !== 1 && out.shape[1] !== T)) {
      throw new GraftError(`generate: the model returned logits of shape [${out.shape.join(", ")}], expected [${B}, 1, V] or [${B}, ${T}, V]`);
    }
    this.cached = total;
    // A fresh output of this forward (the head's own result, a cast or a gathered copy), so it is
    // handed out as it is, without another copy of the B x V floats.
    const last = out.shape[1] === 1 && out.dtype === "float32" && out.isContiguous ? out : out.select(1, out.shape[1]! - 1).to("float32").contiguous();
    return last.data() as Float32Array;
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Generates continuations of each prompt in `inputIds` (token ids; a batch of any lengths).
 * Resolves to one result per prompt. The event loop gets a turn between tokens, so aborts,
 * HTTP requests and key presses are seen while generating.
 */
export async function generate(
  model: CausalLM,
  tokenizer: TextTokenizer | null,
  inputIds: readonly (readonly number[])[],
  opts: GenerateOptions = {},
): Promise<GenerationResult[]> {
  const it = streamGenerate(model, tokenizer, inputIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/**
 * The streaming form of generate(): yields a TokenEvent per generated token of every unfinished
 * row (onToken, when given, is called too) and returns the results.
 */
export async function* streamGenerate(
  model: CausalLM,
  tokenizer: TextTokenizer | null,
  inputIds: readonly (readonly number[])[],
  opts: GenerateOptions = {},
): AsyncGenerator<TokenEvent, GenerationResult[], undefined> {
  const run = new GenerationRun(model, tokenizer, inputIds, opts);
  while (!run.done) {
    if (opts.signal?.aborted) {
      run.abort();
      break;
    }
    for (const e of run.step()) {
      opts.onToken?.(e.batchIndex, e.tokenId, e.text);
      yield e;
    }
    await yieldToEventLoop();
  }
  return run.results();
}
