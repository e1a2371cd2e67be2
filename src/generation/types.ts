/** The parts of a model and a tokenizer that generation relies on. */
import type { Tokenizer } from "../tokenizers/index.ts";

export type { CausalLM, ForwardOptions, KVCache, ModelConfig } from "../models/types.ts";
export type { ChatMessage } from "../tokenizers/index.ts";

/**
 * What generation needs from a tokenizer: src/tokenizers' Tokenizer, or any object with these
 * members (tests use a byte-level stand-in).
 */
/** What generation needs of a tokenizer; with `vocabSize`, ids past it (a padded vocab_size) are never picked. */
export type TextTokenizer = Pick<Tokenizer, "encode" | "decode" | "eosTokenIds" | "padTokenId" | "applyChatTemplate" | "createDecodeStream"> &
  Partial<Pick<Tokenizer, "vocabSize">>;
