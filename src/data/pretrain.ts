/**
 * Pretraining data: documents are tokenised, each followed by the EOS token, concatenated, and cut
 * into blocks of blockSize tokens (the remainder dropped), as transformers' run_clm `group_texts`.
 * For masked-LM (BERT) pretraining, `maskTokens` applies BERT's corruption to a block: 15% of the
 * non-special positions are predicted; of those 80% become the mask token, 10% a random token and
 * 10% stay (DataCollatorForLanguageModeling).
 */
import { GraftError } from "../core/errors.ts";
import type { Generator } from "../core/rng.ts";
import { fromArray } from "../tensor/index.ts";
import type { Tokenizer } from "../tokenizers/index.ts";
import { IGNORE_INDEX, type SftBatch } from "./sft.ts";

export type DocumentSplit = "file" | "paragraph" | "line";

/** Splits a text file into documents: the whole file, blank-line separated paragraphs, or lines. */
export function splitDocuments(text: string, mode: DocumentSplit = "paragraph"): string[] {
  const t = text.replace(/\r\n?/g, "\n");
  const parts = mode === "file" ? [t] : mode === "line" ? t.split("\n") : t.split(/\n\s*\n/);
  return parts.map((p) => (mode === "paragraph" ? p.replace(/\s*\n\s*/g, " ") : p).trim()).filter((p) => p.length > 0);
}

export interface TokenizeDocumentsOptions {
  /** Append this id after each document (default: the tokenizer's EOS; null for none). */
  separatorId?: number | null;
  /** The tokenizer's special tokens (BOS, [CLS]/[SEP]) per document; default false. */
  addSpecialTokens?: boolean;
}

/** One token stream of all documents. */
export function tokenizeDocuments(tok: Pick<Tokenizer, "encode" | "eosTokenId">, docs: readonly string[], opts: TokenizeDocumentsOptions = {}): Int32Array {
  const sep = opts.separatorId === undefined ? tok.eosTokenId : opts.separatorId;
  const chunks: number[][] = [];
  let n = 0;
  for (const d of docs) {
    const ids = tok.encode(d, { addSpecialTokens: opts.addSpecialTokens ?? false });
    if (sep !== null) ids.push(sep);
    chunks.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Cuts a token stream into consecutive blocks of blockSize (the last partial block is dropped). */
export function packBlocks(ids: Int32Array, blockSize: number): Int32Array[] {
  if (!Number.isInteger(blockSize) || blockSize < 2) throw new GraftError(`blockSize must be an integer >= 2, got ${blockSize}`);
  const out: Int32Array[] = [];
  for (let s = 0; s + blockSize <= ids.length; s += blockSize) out.push(ids.slice(s, s + blockSize));
  return out;
}

/** Stacks blocks of equal length into a causal-LM batch (labels = inputs; the model's loss shifts). */
export function collateBlocks(blocks: readonly Int32Array[]): SftBatch {
  if (blocks.length === 0) throw new GraftError("collateBlocks: empty batch");
  const L = blocks[0]!.length;
  const ids = new Int32Array(blocks.length * L);
  blocks.forEach((b, i) => {
    if (b.length !== L) throw new GraftError(`collateBlocks: block ${i} has ${b.length} tokens, block 0 has ${L}`);
    ids.set(b, i * L);
  });
  const shape = [blocks.length, L];
  return { inputIds: fromArray(ids, shape), labels: fromArray(ids.slice(), shape), attentionMask: fromArray(new Int32Array(ids.length).fill(1), shape) };
}

export interface MaskTokensOptions {
  maskTokenId: number;
  /** Random replacements are drawn from [0, vocabSize). */
  vocabSize: number;
  /** Ids never selected (CLS, SEP, PAD, EOS...). */
  specialIds?: ReadonlySet<number>;
  /** Fraction of positions to predict (default 0.15). */
  probability?: number;
  generator: Generator;
}

/** BERT's masked-LM corruption of a batch of blocks: inputs with masks, labels -100 except at predicted positions. */
export function maskTokens(blocks: readonly Int32Array[], opts: MaskTokensOptions): SftBatch {
  const base = collateBlocks(blocks);
  const ids = base.inputIds.data() as Int32Array;
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  const p = opts.probability ?? 0.15;
  const g = opts.generator;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (opts.specialIds?.has(id)) continue;
    if (g.random() >= p) continue;
    labels[i] = id;
    const r = g.random();
    if (r < 0.8) ids[i] = opts.maskTokenId;
    else if (r < 0.9) ids[i] = g.randint(opts.vocabSize);
  }
  return { inputIds: base.inputIds, labels: fromArray(labels, [...base.inputIds.shape]), attentionMask: base.attentionMask };
}
