/**
 * `graft chat <model-dir>`: an interactive chat in the terminal, like `ollama run`. Answers stream
 * as they are generated; the history is kept within the model's context; Ctrl-C stops an answer,
 * Ctrl-D or /bye exits. With piped stdin every line (or """ block) is one message, answers go to
 * stdout without decorations, and the command exits at end of input.
 */
import * as readline from "node:readline";
import { parseArgs } from "node:util";
import { GraftError } from "../../core/errors.ts";
import { type ChatGenerateOptions, ChatSession, validateSamplingOptions } from "../../generation/index.ts";
import { loadPeft } from "../../peft/index.ts";
import type { Command } from "../Command.ts";
import { loadForInference, samplingFlags, samplingFromFlags, samplingUsage } from "./generate.ts";

const HELP = [
  "Available commands:",
  "  /set temperature <t>         sampling temperature (0 = greedy)",
  "  /set top_p <p>               nucleus sampling mass (1 = off)",
  "  /set top_k <k>               keep the k most likely tokens (0 = off)",
  "  /set min_p <p>               min-p filter (0 = off)",
  "  /set repetition_penalty <r>  repetition penalty (1 = off)",
  "  /set seed <n>                sampling seed",
  "  /set max_new_tokens <n>      answer length limit",
  "  /set system <text>           system prompt for the next answers (no text clears it)",
  "  /show                        show the current settings",
  "  /clear                       forget the conversation",
  "  /bye                         exit",
  "  /?, /help                    this help",
  "",
  'Use """ to begin and end a multi-line message. Ctrl-C stops an answer; Ctrl-D exits.',
].join("\n");

/** Settable parameters: /set name → option, parser. */
const PARAMS: Record<string, { key: keyof ChatGenerateOptions; integer: boolean }> = {
  temperature: { key: "temperature", integer: false },
  top_p: { key: "topP", integer: false },
  top_k: { key: "topK", integer: true },
  min_p: { key: "minP", integer: false },
  repetition_penalty: { key: "repetitionPenalty", integer: false },
  repeat_penalty: { key: "repetitionPenalty", integer: false },
  seed: { key: "seed", integer: true },
  max_new_tokens: { key: "maxNewTokens", integer: true },
  num_predict: { key: "maxNewTokens", integer: true },
};

/** Applies one slash command; returns a message to show and whether to exit. */
export function chatCommandLine(session: ChatSession, line: string): { message: string; exit?: boolean } {
  const [cmd = "", ...rest] = line.trim().split(/\s+/);
  switch (cmd) {
    case "/bye":
    case "/exit":
      return { message: "", exit: true };
    case "/?":
    case "/help":
      return { message: HELP };
    case "/clear":
      session.clear();
      return { message: "Cleared session context" };
    case "/show": {
      const o = session.options;
      const params = Object.entries(PARAMS)
        .filter(([name]) => name !== "repeat_penalty" && name !== "num_predict")
        .map(([name, { key }]) => `  ${name.padEnd(20)} ${key === "maxNewTokens" ? session.maxNewTokens : (o[key] ?? (key === "temperature" ? "0 (greedy)" : "unset"))}`);
      return { message: [`system: ${session.system ?? "(none)"}`, "parameters:", ...params, `history: ${session.history.length} messages`].join("\n") };
    }
    case "/set": {
      let [name, ...value] = rest;
      if (name === "parameter") [name, ...value] = value;
      if (name === "system") {
        const text = line.trim().replace(/^\/set\s+system\s?/, "");
        session.system = text.length > 0 ? text : undefined;
        return { message: session.system === undefined ? "Cleared system message." : "Set system message." };
      }
      const p = name === undefined ? undefined : PARAMS[name];
      if (!p) return { message: `Unknown parameter '${name ?? ""}'. Settable: ${Object.keys(PARAMS).join(", ")}, system` };
      const raw = value.join(" ");
      const x = Number(raw);
      if (raw === "" || !Number.isFinite(x) || (p.integer && !Number.isInteger(x))) return { message: `'${name}' needs ${p.integer ? "an integer" : "a number"}, got '${raw}'` };
      const next = { ...session.options, [p.key]: x };
      try {
        validate(next);
      } catch (e) {
        return { message: (e as Error).message };
      }
      session.options = next;
      return { message: `Set parameter '${name}' to '${raw}'` };
    }
    default:
      return { message: `Unknown command '${cmd}'. Type /? for help` };
  }
}

function validate(o: ChatGenerateOptions): void {
  validateSamplingOptions(o);
  if (o.maxNewTokens !== undefined && o.maxNewTokens < 1) throw new GraftError(`maxNewTokens must be >= 1, got ${o.maxNewTokens}`);
}

export const chatCommand: Command = {
  name: "chat",
  description: "chat with a model in the terminal (streamed answers, multi-turn history, /? for commands)",
  usage: [
    "graft chat <model-dir> [options]",
    "",
    "  --system <text>              system prompt",
    "  --adapter <dir>              chat with a PEFT adapter (adapter_config.json + adapter_model.safetensors) on the model",
    ...samplingUsage,
  ].join("\n"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { system: { type: "string" }, adapter: { type: "string" }, ...samplingFlags },
    });
    if (positionals.length !== 1) {
      console.error(`usage: ${this.usage.split("\n")[0]}`);
      return 2;
    }
    const flags = samplingFromFlags(values);
    validate(flags);
    if (values.quantize !== undefined && values.adapter) throw new GraftError("--quantize cannot be combined with --adapter: merge the adapter into the model first");
    const loaded = loadForInference(positionals[0]!, values.dtype, values.quantize);
    const { tokenizer, defaults } = loaded;
    const model = values.adapter ? loadPeft(loaded.model, values.adapter).eval() : loaded.model;
    const session = new ChatSession(model, tokenizer, { ...defaults, ...flags, ...(values.system !== undefined ? { system: values.system } : {}) });

    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const rl = readline.createInterface({ input: process.stdin, ...(tty ? { output: process.stdout } : {}), terminal: tty, prompt: ">>> " });
    /** Feedback for commands: the terminal when interactive, stderr when piped (stdout carries only answers). */
    const say = (text: string) => {
      if (text) (tty ? process.stdout : process.stderr).write(`${text}\n`);
    };
    let answering: AbortController | null = null;
    const onInterrupt = () => {
      if (answering) answering.abort();
      else if (tty) {
        rl.write(null, { ctrl: true, name: "u" });
        process.stdout.write("\nUse Ctrl + d or /bye to exit.\n");
        rl.prompt();
      } else rl.close();
    };
    rl.on("SIGINT", onInterrupt);
    process.on("SIGINT", onInterrupt);

    const answer = async (text: string) => {
      answering = new AbortController();
      try {
        const it = session.send(text, answering.signal);
        let r = await it.next();
        while (!r.done) {
          process.stdout.write(r.value);
          r = await it.next();
        }
        process.stdout.write(tty ? "\n\n" : "\n");
        if (r.value.droppedMessages > 0 && tty) say(`(dropped the ${r.value.droppedMessages} oldest messages to fit the context)`);
      } catch (e) {
        if (!(e instanceof GraftError)) throw e;
        process.stderr.write(`error: ${e.message}\n`);
      } finally {
        answering = null;
      }
    };

    if (tty) say('Type a message; /? for help, """ for multi-line, Ctrl-D or /bye to exit.');
    let multi: string[] | null = null;
    try {
      if (tty) rl.prompt();
      for await (const line of rl) {
        let message: string | null = null;
        if (multi !== null) {
          if (line.trimEnd().endsWith('"""')) {
            const last = line.trimEnd().slice(0, -3);
            if (last.length > 0) multi.push(last);
            message = multi.join("\n");
            multi = null;
          } else multi.push(line);
        } else if (line.trimStart().startsWith('"""')) {
          const rest = line.trimStart().slice(3);
          if (rest.trimEnd().endsWith('"""')) message = rest.trimEnd().slice(0, -3);
          else multi = rest.length > 0 ? [rest] : [];
        } else if (line.trimStart().startsWith("/")) {
          const r = chatCommandLine(session, line);
          if (r.exit) break;
          say(r.message);
        } else if (line.trim().length > 0) message = line;

        if (message !== null && message.trim().length > 0) await answer(message);
        if (tty) {
          rl.setPrompt(multi !== null ? "... " : ">>> ");
          rl.prompt();
        }
      }
      if (multi !== null && multi.join("").trim().length > 0) await answer(multi.join("\n"));
    } finally {
      process.off("SIGINT", onInterrupt);
      rl.close();
    }
    return 0;
  },
};
