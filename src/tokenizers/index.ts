/** Tokenizers (tokenizer.json via @huggingface/tokenizers), chat templates, streaming detokenization. */
export {
  Tokenizer,
  TokenizerError,
  type ChatMessage,
  type ChatTemplateOptions,
  type DecodeOptions,
  type EncodeOptions,
  type GenerationConfigTokens,
  type TokenizerConfig,
} from "./Tokenizer.ts";
export { DecodeStream, type DecodeStreamOptions } from "./DecodeStream.ts";
