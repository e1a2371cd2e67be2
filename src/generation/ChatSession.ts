/**
 * A multi-turn chat over a causal LM: keeps the history, renders it with the tokenizer's chat
 * template, drops the oldest turns when the prompt would not leave room for the answer, and
 * streams each answer as text deltas.
 */
import { GraftError } from "../core/errors.ts";
import { type FinishReason, type GenerateOptions, contextLength, streamGenerate } from "./generate.ts";
import type { CausalLM, ChatMessage, TextTokenizer } from "./types.ts";

export type ChatGenerateOptions = Omit<GenerateOptions, "onToken" | "signal">;

export interface ChatSessionOptions extends ChatGenerateOptions {
  /** The system prompt (default: none, i.e. whatever the chat template does without one). */
  system?: string;
}

export interface ChatReply {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Messages dropped from the front of the history to make this prompt fit. */
  droppedMessages: number;
}

/** Default answer budget when maxNewTokens is not set. */
export const DEFAULT_CHAT_MAX_NEW_TOKENS = 512;

export class ChatSession {
  /** The conversation so far, without the system prompt. */
  readonly history: ChatMessage[] = [];
  system: string | undefined;
  /** Generation options for the next answers; change them between turns (e.g. temperature). */
  options: ChatGenerateOptions;

  constructor(
    readonly model: CausalLM,
    readonly tokenizer: TextTokenizer,
    opts: ChatSessionOptions = {},
  ) {
    const { system, ...gen } = opts;
    this.system = system;
    this.options = gen;
  }

  get maxNewTokens(): number {
    return this.options.maxNewTokens ?? DEFAULT_CHAT_MAX_NEW_TOKENS;
  }

  /** Forgets the conversation (the system prompt stays). */
  clear(): void {
    this.history.length = 0;
  }

  /** Prompt ids for `messages` (system prompt first when set), ending with the assistant header. */
  encode(messages: readonly ChatMessage[]): number[] {
    const all = this.system ? [{ role: "system", content: this.system }, ...messages] : [...messages];
    return this.tokenizer.encode(this.tokenizer.applyChatTemplate(all, { addGenerationPrompt: true }), { addSpecialTokens: false });
  }

  /**
   * The prompt for the history plus a new user message. When it would exceed the context less
   * maxNewTokens, the oldest messages are dropped from the history (a whole user/assistant turn at
   * a time); throws when the new message alone does not fit.
   */
  buildPrompt(user: string): { ids: number[]; dropped: number } {
    const ctx = contextLength(this.model.config);
    const budget = ctx === null ? Infinity : ctx - this.maxNewTokens;
    let dropped = 0;
    for (;;) {
      const ids = this.encode([...this.history, { role: "user", content: user }]);
      if (ids.length <= budget) return { ids, dropped };
      if (this.history.length === 0) {
        throw new GraftError(
          `the message needs a ${ids.length}-token prompt, but the context of ${ctx} tokens holds ${Math.max(budget, 0)} once ${this.maxNewTokens} are kept for the answer`,
        );
      }
      this.history.shift();
      dropped++;
      while (this.history.length > 0 && this.history[0]!.role !== "user") {
        this.history.shift();
        dropped++;
      }
    }
  }

  /**
   * Streams the answer to `user` as text deltas and returns the reply. The turn joins the history
   * when it ends; an aborted answer is kept as far as it got (and dropped if it is empty).
   */
  async *send(user: string, signal?: AbortSignal): AsyncGenerator<string, ChatReply, undefined> {
    const { ids, dropped } = this.buildPrompt(user);
    const it = streamGenerate(this.model, this.tokenizer, [ids], {
      ...this.options,
      maxNewTokens: this.maxNewTokens,
      ...(signal ? { signal } : {}),
    });
    let r = await it.next();
    while (!r.done) {
      if (r.value.text) yield r.value.text;
      r = await it.next();
    }
    const res = r.value[0]!;
    if (res.finishReason !== "abort" || res.text.length > 0) {
      this.history.push({ role: "user", content: user }, { role: "assistant", content: res.text });
    }
    return { text: res.text, finishReason: res.finishReason, promptTokens: ids.length, completionTokens: res.tokenIds.length, droppedMessages: dropped };
  }
}
