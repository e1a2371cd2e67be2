/** Text generation: logits processors, samplers, stop criteria, streaming generate(), chat sessions. */
export {
  applyMinP,
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  buildLogitsProcessors,
  softmaxRow,
  validateSamplingOptions,
  type LogitsProcessor,
  type SamplingOptions,
} from "./logitsProcessors.ts";
export { greedy, sampleMultinomial } from "./sampling.ts";
export { StopStringMatcher } from "./StopStringMatcher.ts";
export {
  GenerationRun,
  contextLength,
  generate,
  streamGenerate,
  type FinishReason,
  type GenerateOptions,
  type GenerationResult,
  type TokenEvent,
} from "./generate.ts";
export type { CausalLM, ChatMessage, ForwardOptions, KVCache, ModelConfig, TextTokenizer } from "./types.ts";
export { readGenerationConfig, generationDefaults, type GenerationDefaults } from "./generationConfig.ts";
export {
  ChatSession,
  DEFAULT_CHAT_MAX_NEW_TOKENS,
  type ChatGenerateOptions,
  type ChatReply,
  type ChatSessionOptions,
} from "./ChatSession.ts";
