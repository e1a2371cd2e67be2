/**
 * Supervised fine-tuning samples: a record (question/answer, or chat messages) is rendered with
 * the tokenizer's chat template and tokenised, and the labels are the input ids with every token
 * that is not an assistant reply set to -100, so the loss covers the answers only (the assistant
 * header is prompt; the reply, its end-of-turn token and the template's trailing newline are
 * answer, as TRL's completion-only loss). Long samples are truncated on the right to maxLength; a
 * sample left with no answer token is dropped. Batches are right-padded (labels -100 on padding).
 *
 * Packing concatenates whole samples into rows of at most maxLength tokens (first fit, in order),
 * as TRL's packing without a varlen attention kernel: positions run on across samples and
 * attention is causal over the whole row.
 */
import { GraftError } from "../core/errors.ts";
import { Tensor, fromArray } from "../tensor/index.ts";
import type { ChatMessage, Tokenizer } from "../tokenizers/index.ts";

export const IGNORE_INDEX = -100;

export interface QARecord {
  question: string;
  answer: string;
  system?: string;
}

export interface MessagesRecord {
  messages: ChatMessage[];
}

export type SftRecord = QARecord | MessagesRecord;

export interface SftSample {
  inputIds: number[];
  /** inputIds with non-answer tokens set to -100 (not shifted: the model's loss shifts). */
  labels: number[];
}

export interface SftBatch {
  /** int32 [B, T]. */
  inputIds: Tensor;
  /** int32 [B, T], -100 on prompt and padding positions. */
  labels: Tensor;
  /** int32 [B, T], 1 on tokens, 0 on padding. */
  attentionMask: Tensor;
}

/** What SFT needs from a tokenizer. */
export type SftTokenizer = Pick<Tokenizer, "encode" | "applyChatTemplate">;

export interface SftEncodeOptions {
  /** Truncate samples to this many tokens (right side); default: no limit. */
  maxLength?: number;
  /** A system prompt for records without one (otherwise the template's default). */
  system?: string;
  /** A chat template to use instead of the tokenizer's. */
  chatTemplate?: string;
}

export function isMessagesRecord(r: SftRecord): r is MessagesRecord {
  return Array.isArray((r as MessagesRecord).messages);
}

/** The conversation of a record. */
export function recordMessages(r: SftRecord, system?: string): ChatMessage[] {
  if (isMessagesRecord(r)) {
    const msgs = r.messages;
    return system !== undefined && msgs[0]?.role !== "system" ? [{ role: "system", content: system }, ...msgs] : msgs;
  }
  const msgs: ChatMessage[] = [];
  const sys = r.system ?? system;
  if (sys !== undefined && sys !== "") msgs.push({ role: "system", content: sys });
  msgs.push({ role: "user", content: r.question }, { role: "assistant", content: r.answer });
  return msgs;
}

/** The prompt of a record for generation: everything before its last assistant reply. */
export function promptMessages(r: SftRecord, system?: string): { prompt: ChatMessage[]; reference: string } {
  const msgs = recordMessages(r, system);
  let last = msgs.length - 1;
  while (last >= 0 && msgs[last]!.role !== "assistant") last--;
  if (last < 0) throw new GraftError("record has no assistant message");
  return { prompt: msgs.slice(0, last), reference: msgs[last]!.content };
}

/**
 * Tokenises one record: the text of each assistant reply is found by rendering the conversation
 * up to it with and without the generation prompt. Returns null when truncation leaves no answer.
 */
export function encodeSft(tok: SftTokenizer, record: SftRecord, opts: SftEncodeOptions = {}): SftSample | null {
  const msgs = recordMessages(record, opts.system);
  const render = (m: ChatMessage[], gen: boolean) => tok.applyChatTemplate(m, { addGenerationPrompt: gen, chatTemplate: opts.chatTemplate });
  const inputIds: number[] = [];
  const labels: number[] = [];
  const push = (text: string, train: boolean) => {
    if (!text) return;
    const ids = tok.encode(text, { addSpecialTokens: false });
    for (const id of ids) {
      inputIds.push(id);
      labels.push(train ? id : IGNORE_INDEX);
    }
  };
  let done = "";
  let answers = 0;
  for (let i = 0; i < msgs.length; i++) {
    if (msgs[i]!.role !== "assistant") continue;
    const prefix = render(msgs.slice(0, i), true);
    const full = render(msgs.slice(0, i + 1), false);
    if (!prefix.startsWith(done) || !full.startsWith(prefix)) {
      throw new GraftError("the chat template does not render conversations incrementally (a prefix of the conversation is not a prefix of its text); cannot mask prompts");
    }
    push(prefix.slice(done.length), false);
    push(full.slice(prefix.length), true);
    done = full;
    answers++;
  }
  if (answers === 0) throw new GraftError("record has no assistant message to train on");
  if (opts.maxLength !== undefined && inputIds.length > opts.maxLength) {
    inputIds.length = opts.maxLength;
    labels.length = opts.maxLength;
  }
  // The first label is never predicted (the loss shifts): a sample needs an answer token after position 0.
  if (!labels.some((l, i) => i > 0 && l !== IGNORE_INDEX)) return null;
  return { inputIds, labels };
}

export interface SftDatasetStats {
  samples: number;
  /** Records dropped because truncation left no answer token. */
  dropped: number;
  /** Records cut to maxLength. */
  truncated: number;
  /** Answer (trained) tokens in all samples. */
  answerTokens: number;
}

/** Encodes every record; optionally packs the samples into rows of maxLength. */
export function buildSftSamples(
  tok: SftTokenizer,
  records: readonly SftRecord[],
  opts: SftEncodeOptions & { packing?: boolean } = {},
): { samples: SftSample[]; stats: SftDatasetStats } {
  let dropped = 0;
  let truncated = 0;
  let samples: SftSample[] = [];
  records.forEach((r, i) => {
    let s: SftSample | null;
    try {
      s = encodeSft(tok, r, opts);
    } catch (e) {
      throw new GraftError(`SFT record ${i}: ${(e as Error).message}`);
    }
    if (!s) {
      dropped++;
      return;
    }
    if (opts.maxLength !== undefined && s.inputIds.length === opts.maxLength) truncated++;
    samples.push(s);
  });
  if (opts.packing) {
    if (opts.maxLength === undefined) throw new GraftError("SFT packing needs a maxLength");
    samples = packSamples(samples, opts.maxLength);
  }
  const answerTokens = samples.reduce((n, s) => n + s.labels.filter((l, i) => i > 0 && l !== IGNORE_INDEX).length, 0);
  return { samples, stats: { samples: samples.length, dropped, truncated, answerTokens } };
}

/** Concatenates whole samples, in order, into rows of at most maxLength tokens. */
export function packSamples(samples: readonly SftSample[], maxLength: number): SftSample[] {
  const out: SftSample[] = [];
  let cur: SftSample = { inputIds: [], labels: [] };
  for (const s of samples) {
    if (cur.inputIds.length > 0 && cur.inputIds.length + s.inputIds.length > maxLength) {
      out.push(cur);
      cur = { inputIds: [], labels: [] };
    }
    cur.inputIds.push(...s.inputIds);
    cur.labels.push(...s.labels);
  }
  if (cur.inputIds.length > 0) out.push(cur);
  return out;
}

/** Right-pads samples to the longest one: pad ids, labels -100, attention mask 0. */
export function collateSft(samples: readonly SftSample[], padTokenId: number): SftBatch {
  if (samples.length === 0) throw new GraftError("collateSft: empty batch");
  const B = samples.length;
  const L = Math.max(...samples.map((s) => s.inputIds.length));
  const ids = new Int32Array(B * L).fill(padTokenId);
  const labels = new Int32Array(B * L).fill(IGNORE_INDEX);
  const mask = new Int32Array(B * L);
  samples.forEach((s, b) => {
    for (let t = 0; t < s.inputIds.length; t++) {
      ids[b * L + t] = s.inputIds[t]!;
      labels[b * L + t] = s.labels[t]!;
      mask[b * L + t] = 1;
    }
  });
  return { inputIds: fromArray(ids, [B, L]), labels: fromArray(labels, [B, L]), attentionMask: fromArray(mask, [B, L]) };
}
