/**
 * An OpenAI-compatible HTTP server over one causal LM: GET /v1/models, POST /v1/chat/completions
 * (JSON or `stream: true` server-sent events). Requests are queued and generated one at a time in
 * arrival order; a client that disconnects has its generation aborted (or skipped, if still queued).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { GraftError } from "../core/errors.ts";
import {
  type ChatGenerateOptions,
  type GenerateOptions,
  type GenerationResult,
  type TextTokenizer,
  contextLength,
  streamGenerate,
  validateSamplingOptions,
} from "../generation/index.ts";
import type { CausalLM } from "../models/types.ts";
import type { AdapterSet } from "../peft/index.ts";
import { ApiError, type ChatCompletionRequest, apiFinishReason, chatCompletion, chatCompletionChunk, parseChatCompletionRequest, usage } from "./openai.ts";
import { SerialQueue } from "./SerialQueue.ts";

export interface ServerOptions {
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** Default 11435; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** The model id /v1/models lists and responses name (default "graft"). */
  modelName?: string;
  /** Generation options for fields a request leaves out (e.g. from generation_config.json). */
  defaults?: ChatGenerateOptions;
  /** Largest accepted request body (default 8 MiB). */
  maxBodyBytes?: number;
  /** Called with one line per request (default: silent). */
  log?: (line: string) => void;
  /** PEFT adapters over `model` (its base), chosen per request by the `adapter` field; swapped inside the queue. */
  adapters?: AdapterSet;
}

export interface RunningServer {
  /** http://host:port */
  url: string;
  port: number;
  /** Stops accepting connections, aborts generations in flight and resolves once closed. */
  close(): Promise<void>;
}

/** The answer budget when neither the request nor the defaults set one and the model declares no context. */
const FALLBACK_MAX_TOKENS = 512;

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ApiError(413, `the request body exceeds ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { model, tokenizer } = opts;
  const modelName = opts.modelName ?? "graft";
  const defaults = opts.defaults ?? {};
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const log = opts.log ?? (() => {});
  const queue = new SerialQueue();
  const inFlight = new Set<AbortController>();
  const created = Math.floor(Date.now() / 1000);
  const ctx = contextLength(model.config);

  const modelObject = { id: modelName, object: "model", created, owned_by: "graft" };

  /** Renders and checks the prompt, and merges request fields over the defaults (all before queueing, so errors are 400s). */
  function prepare(r: ChatCompletionRequest): { promptIds: number[]; gen: GenerateOptions } {
    let prompt: string;
    try {
      prompt = tokenizer.applyChatTemplate(r.messages, { addGenerationPrompt: true });
    } catch (e) {
      throw new ApiError(400, `the chat template rejected the messages: ${(e as Error).message}`, "messages");
    }
    const promptIds = tokenizer.encode(prompt, { addSpecialTokens: false });
    if (ctx !== null && promptIds.length >= ctx) {
      throw new ApiError(400, `the prompt is ${promptIds.length} tokens, which leaves no room in this model's context of ${ctx} tokens`, "messages", "context_length_exceeded");
    }
    const gen: GenerateOptions = { ...defaults };
    for (const k of ["temperature", "topP", "topK", "minP", "repetitionPenalty", "seed"] as const) {
      if (r[k] !== undefined) gen[k] = r[k];
    }
    gen.maxNewTokens = r.maxTokens ?? defaults.maxNewTokens ?? (ctx !== null ? ctx - promptIds.length : FALLBACK_MAX_TOKENS);
    gen.stopStrings = [...(defaults.stopStrings ?? []), ...r.stop];
    try {
      validateSamplingOptions(gen);
    } catch (e) {
      throw new ApiError(400, (e as Error).message);
    }
    if (r.adapter !== undefined && !opts.adapters?.names().includes(r.adapter)) {
      const have = opts.adapters?.names() ?? [];
      throw new ApiError(404, `the adapter '${r.adapter}' is not loaded (${have.length ? `loaded: ${have.join(", ")}` : "this server has no adapters"})`, "adapter", "adapter_not_found");
    }
    return { promptIds, gen };
  }

  /** Runs one queued generation, calling onText per text delta; null when the client left first. */
  function runQueued(promptIds: number[], gen: GenerateOptions, ac: AbortController, onText: (t: string) => void, adapter?: string): Promise<GenerationResult | null> {
    return queue.run(async () => {
      if (ac.signal.aborted) return null;
      const m = opts.adapters ? opts.adapters.activate(adapter ?? null) : model;
      const it = streamGenerate(m, tokenizer, [promptIds], { ...gen, signal: ac.signal });
      let r = await it.next();
      while (!r.done) {
        if (r.value.text) onText(r.value.text);
        r = await it.next();
      }
      return r.value[0]!;
    });
  }

  async function chatCompletions(req: http.IncomingMessage, res: http.ServerResponse): Promise<string> {
    const text = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`);
    }
    const r = parseChatCompletionRequest(body);
    const { promptIds, gen } = prepare(r);
    const id = `chatcmpl-${randomUUID()}`;
    const now = Math.floor(Date.now() / 1000);
    const ac = new AbortController();
    inFlight.add(ac);
    res.on("close", () => {
      if (!res.writableFinished) ac.abort();
    });
    try {
      if (!r.stream) {
        const out = await runQueued(promptIds, gen, ac, () => {}, r.adapter);
        if (!out || out.finishReason === "abort") return "client gone";
        sendJson(res, 200, chatCompletion(id, now, modelName, out.text, apiFinishReason(out.finishReason), usage(promptIds.length, out.tokenIds.length)));
        return `${promptIds.length} + ${out.tokenIds.length} tokens, ${out.finishReason}`;
      }
      res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
      res.flushHeaders();
      const send = (chunk: unknown) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      let started = false;
      const start = () => {
        if (!started) send(chatCompletionChunk(id, now, modelName, { role: "assistant", content: "" }, null));
        started = true;
      };
      let out: GenerationResult | null;
      try {
        out = await runQueued(
          promptIds,
          gen,
          ac,
          (t) => {
            start();
            send(chatCompletionChunk(id, now, modelName, { content: t }, null));
          },
          r.adapter,
        );
      } catch (e) {
        send(new ApiError(500, `generation failed: ${(e as Error).message}`).body());
        res.end("data: [DONE]\n\n");
        throw e;
      }
      if (!out || out.finishReason === "abort") return "client gone";
      start();
      send(chatCompletionChunk(id, now, modelName, {}, apiFinishReason(out.finishReason)));
      if (r.includeUsage) send(chatCompletionChunk(id, now, modelName, {}, null, usage(promptIds.length, out.tokenIds.length)));
      res.end("data: [DONE]\n\n");
      return `${promptIds.length} + ${out.tokenIds.length} tokens, ${out.finishReason}, streamed`;
    } finally {
      inFlight.delete(ac);
    }
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<string> {
    const { pathname } = new URL(req.url ?? "/", "http://localhost");
    const path = pathname.replace(/\/+$/, "") || "/";
    const allow = (method: string) => {
      if (req.method !== method) throw new ApiError(405, `${req.method} is not allowed on ${path} (use ${method})`, null, "method_not_allowed");
    };
    if (path === "/v1/chat/completions") {
      allow("POST");
      return chatCompletions(req, res);
    }
    if (path === "/v1/models") {
      allow("GET");
      sendJson(res, 200, { object: "list", data: [modelObject] });
      return "";
    }
    if (path.startsWith("/v1/models/")) {
      allow("GET");
      const name = decodeURIComponent(path.slice("/v1/models/".length));
      if (name !== modelName) throw new ApiError(404, `the model '${name}' does not exist (this server has '${modelName}')`, "model", "model_not_found");
      sendJson(res, 200, modelObject);
      return "";
    }
    if (path === "/" || path === "/health") {
      allow("GET");
      sendJson(res, 200, { status: "ok", model: modelName, queued: queue.size, ...(opts.adapters ? { adapters: opts.adapters.names() } : {}) });
      return "";
    }
    throw new ApiError(404, `unknown route ${req.method} ${path} (try GET /v1/models or POST /v1/chat/completions)`, null, "unknown_route");
  }

  const server = http.createServer((req, res) => {
    const t0 = Date.now();
    route(req, res).then(
      (note) => log(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - t0}ms${note ? ` ${note}` : ""}`),
      (e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(500, e instanceof GraftError ? e.message : `internal error: ${(e as Error).message}`);
        if (!res.headersSent) sendJson(res, err.status, err.body());
        else if (!res.writableEnded) res.end();
        log(`${req.method} ${req.url} ${err.status} ${Date.now() - t0}ms ${err.message}`);
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 11435, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const ac of inFlight) ac.abort();
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}
