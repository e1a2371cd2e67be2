/** OpenAI-compatible HTTP serving of a causal LM (/v1/models, /v1/chat/completions with SSE streaming). */
export { startServer, type RunningServer, type ServerOptions } from "./server.ts";
export { ApiError, parseChatCompletionRequest, type ChatCompletionRequest } from "./openai.ts";
export { SerialQueue } from "./SerialQueue.ts";
