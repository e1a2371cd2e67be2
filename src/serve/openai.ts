/**
 * The OpenAI chat-completions wire format: request validation (errors name the offending field, as
 * OpenAI's do) and the response / stream-chunk bodies.
 */
import { GraftError } from "../core/errors.ts";
import type { ChatMessage, FinishReason, SamplingOptions } from "../generation/index.ts";

/** An error answered with an HTTP status and an OpenAI-style error body. */
export class ApiError extends GraftError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status >= 500 ? "server_error" : status === 404 ? "not_found_error" : "invalid_request_error",
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface ChatCompletionRequest extends SamplingOptions {
  model: string | null;
  messages: ChatMessage[];
  stream: boolean;
  /** stream_options.include_usage: send a last chunk with the usage. */
  includeUsage: boolean;
  maxTokens?: number;
  seed?: number;
  stop: string[];
  /** graft extension: the name of a loaded PEFT adapter to answer with (absent: the base model). */
  adapter?: string;
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function messageContent(m: Record<string, unknown>, i: number): string {
  const c = m["content"];
  if (typeof c === "string") return c;
  if (c === null || c === undefined) {
    if (m["role"] === "assistant") return "";
    throw new ApiError(400, `messages[${i}].content is required`, `messages[${i}].content`);
  }
  if (Array.isArray(c)) {
    return c
      .map((part: unknown, j) => {
        const p = part as Record<string, unknown> | null;
        if (p && p["type"] === "text" && typeof p["text"] === "string") return p["text"];
        throw new ApiError(400, `messages[${i}].content[${j}]: only parts of type "text" are supported`, `messages[${i}].content`);
      })
      .join("");
  }
  throw new ApiError(400, `messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
}

function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined) throw new ApiError(400, "you must provide a 'messages' parameter", "messages");
  if (!Array.isArray(v)) throw new ApiError(400, "'messages' must be an array of message objects", "messages");
  if (v.length === 0) throw new ApiError(400, "'messages' must contain at least one message", "messages");
  return v.map((raw: unknown, i) => {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ApiError(400, `messages[${i}] must be an object`, `messages[${i}]`);
    const m = raw as Record<string, unknown>;
    const role = m["role"];
    if (typeof role !== "string" || !ROLES.has(role)) {
      throw new ApiError(400, `messages[${i}].role must be one of ${[...ROLES].join(", ")}; got ${JSON.stringify(role)}`, `messages[${i}].role`);
    }
    return { role: role === "developer" ? "system" : role, content: messageContent(m, i) };
  });
}

function optNumber(body: Record<string, unknown>, key: string, ok: (x: number) => boolean, want: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new ApiError(400, `'${key}' must be ${want}; got ${JSON.stringify(v)}`, key);
  return v;
}

/** Validates a parsed JSON body of POST /v1/chat/completions. */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "the request body must be a JSON object");
  const b = body as Record<string, unknown>;
  const messages = parseMessages(b["messages"]);
  const model = b["model"];
  if (model !== undefined && model !== null && typeof model !== "string") throw new ApiError(400, "'model' must be a string", "model");
  const stream = b["stream"];
  if (stream !== undefined && stream !== null && typeof stream !== "boolean") throw new ApiError(400, "'stream' must be a boolean", "stream");
  const so = b["stream_options"];
  const includeUsage = typeof so === "object" && so !== null && (so as Record<string, unknown>)["include_usage"] === true;

  const n = optNumber(b, "n", (x) => Number.isInteger(x), "an integer");
  if (n !== undefined && n !== 1) throw new ApiError(400, "only n = 1 is supported", "n");
  for (const key of ["presence_penalty", "frequency_penalty"]) {
    if (optNumber(b, key, () => true, "a number")) throw new ApiError(400, `'${key}' is not supported (use repetition_penalty)`, key);
  }
  const maxTokens = optNumber(b, "max_completion_tokens", (x) => Number.isInteger(x) && x >= 1, "an integer >= 1") ?? optNumber(b, "max_tokens", (x) => Number.isInteger(x) && x >= 1, "an integer >= 1");
  const seed = optNumber(b, "seed", (x) => Number.isInteger(x), "an integer");

  let stop: string[] = [];
  const s = b["stop"];
  if (typeof s === "string") stop = [s];
  else if (Array.isArray(s) && s.every((x) => typeof x === "string")) stop = s as string[];
  else if (s !== undefined && s !== null) throw new ApiError(400, "'stop' must be a string or an array of strings", "stop");

  const out: ChatCompletionRequest = { model: (model as string | undefined) ?? null, messages, stream: stream === true, includeUsage, stop };
  const set = <K extends keyof ChatCompletionRequest>(k: K, v: ChatCompletionRequest[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  const adapter = b["adapter"];
  if (adapter !== undefined && adapter !== null && (typeof adapter !== "string" || adapter === "")) throw new ApiError(400, "'adapter' must be the name of a loaded adapter", "adapter");
  set("adapter", (adapter as string | null | undefined) ?? undefined);
  set("maxTokens", maxTokens);
  set("seed", seed);
  set("temperature", optNumber(b, "temperature", (x) => x >= 0 && x <= 2, "a number between 0 and 2"));
  set("topP", optNumber(b, "top_p", (x) => x > 0 && x <= 1, "a number in (0, 1]"));
  set("topK", optNumber(b, "top_k", (x) => Number.isInteger(x) && x >= -1, "an integer >= -1 (-1 or 0: off)"));
  if (out.topK === -1) out.topK = 0;
  set("minP", optNumber(b, "min_p", (x) => x >= 0 && x <= 1, "a number in [0, 1]"));
  set("repetitionPenalty", optNumber(b, "repetition_penalty", (x) => x > 0, "a number > 0"));
  return out;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

export type ApiFinishReason = "stop" | "length";

export function apiFinishReason(r: FinishReason): ApiFinishReason {
  return r === "length" ? "length" : "stop";
}

export function chatCompletion(id: string, created: number, model: string, content: string, finish: ApiFinishReason, u: Usage) {
  return {
    id,
    object: "chat.completion",
    created,
    model,
    system_fingerprint: "graft",
    choices: [{ index: 0, message: { role: "assistant", content }, logprobs: null, finish_reason: finish }],
    usage: u,
  };
}

export function chatCompletionChunk(id: string, created: number, model: string, delta: { role?: string; content?: string }, finish: ApiFinishReason | null, u?: Usage) {
  return {
    id,
    object: "chat.completion.chunk",
    created,
    model,
    system_fingerprint: "graft",
    choices: u ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(u ? { usage: u } : {}),
  };
}
