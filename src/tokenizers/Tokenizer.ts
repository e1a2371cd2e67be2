/**
 * Tokenizer: a Hugging Face `tokenizer.json` run by `@huggingface/tokenizers`, the special tokens of
 * `tokenizer_config.json` (+ `generation_config.json` eos ids), and chat templates rendered by
 * `@huggingface/jinja`, as transformers' `PreTrainedTokenizerFast.apply_chat_template` does.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { GraftError } from "../core/errors.ts";
import { DecodeStream, type DecodeStreamOptions } from "./DecodeStream.ts";

export class TokenizerError extends GraftError {
  override name = "TokenizerError";
}

/** One chat turn. Extra fields (tool_calls, name, ...) are passed to the template unchanged. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next (default false, as transformers). */
  addGenerationPrompt?: boolean;
  /** A system prompt put first unless the conversation already starts with a system message. */
  system?: string;
  /** Tool schemas, for templates that support them. */
  tools?: unknown[];
  /** A template to use instead of the tokenizer's (or the name of one of its named templates). */
  chatTemplate?: string;
  /** Further variables for the template. */
  extra?: Record<string, unknown>;
}

export interface EncodeOptions {
  /** Add the special tokens of the tokenizer's post-processor (BOS, [CLS]/[SEP]...); default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

/** tokenizer_config.json, as far as graft reads it. Special tokens are strings or AddedToken objects. */
export interface TokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string | { name: string; template: string }[] | null;
  [key: string]: unknown;
}

/** The generation_config.json fields that name special tokens. */
export interface GenerationConfigTokens {
  eos_token_id?: number | number[] | null;
  bos_token_id?: number | null;
  pad_token_id?: number | null;
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new TokenizerError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new SyntaxError("not a JSON object");
    return json as Record<string, unknown>;
  } catch (e) {
    throw new TokenizerError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

function tokenContent(t: TokenizerConfig[keyof TokenizerConfig]): string | null {
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && "content" in t && typeof t.content === "string") return t.content;
  return null;
}

export class Tokenizer {
  private readonly hf: HfTokenizer;
  readonly config: TokenizerConfig;
  /** Every token string → id, added tokens included. */
  private readonly vocab: Map<string, number>;
  private readonly specialIds: Set<number>;
  private readonly templates: Map<string, string>;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** Every id that ends generation: the config's eos token plus generation_config.json's eos ids. */
  readonly eosTokenIds: number[];
  /** One past the largest token id (added tokens included), like `len(tokenizer)` in transformers. */
  readonly vocabSize: number;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: TokenizerConfig = {}, generationConfig: GenerationConfigTokens = {}) {
    this.hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    this.config = tokenizerConfig;
    this.vocab = this.hf.get_vocab(true);
    let maxId = -1;
    for (const id of this.vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set();
    const added = (tokenizerJson["added_tokens"] ?? []) as { id: number; special?: boolean }[];
    for (const t of added) if (t.special) this.specialIds.add(t.id);

    this.bosToken = tokenContent(tokenizerConfig.bos_token);
    this.eosToken = tokenContent(tokenizerConfig.eos_token);
    this.padToken = tokenContent(tokenizerConfig.pad_token);
    this.unkToken = tokenContent(tokenizerConfig.unk_token);
    this.bosTokenId = (this.bosToken !== null ? this.tokenToId(this.bosToken) : null) ?? generationConfig.bos_token_id ?? null;
    this.padTokenId = (this.padToken !== null ? this.tokenToId(this.padToken) : null) ?? generationConfig.pad_token_id ?? null;
    const eos = new Set<number>();
    const cfgEos = this.eosToken !== null ? this.tokenToId(this.eosToken) : null;
    if (cfgEos !== null) eos.add(cfgEos);
    const genEos = generationConfig.eos_token_id;
    for (const id of genEos === null || genEos === undefined ? [] : Array.isArray(genEos) ? genEos : [genEos]) eos.add(id);
    this.eosTokenIds = [...eos];
    this.eosTokenId = cfgEos ?? this.eosTokenIds[0] ?? null;

    this.templates = new Map();
    const ct = tokenizerConfig.chat_template;
    if (typeof ct === "string") this.templates.set("default", ct);
    else if (Array.isArray(ct)) for (const { name, template } of ct) this.templates.set(name, template);
  }

  /** From the parsed tokenizer.json and tokenizer_config.json. */
  static fromJson(tokenizerJson: Record<string, unknown>, tokenizerConfig: TokenizerConfig = {}, generationConfig?: GenerationConfigTokens): Tokenizer {
    return new Tokenizer(tokenizerJson, tokenizerConfig, generationConfig);
  }

  /**
   * From a model directory: tokenizer.json and tokenizer_config.json (both required), plus
   * generation_config.json (eos ids) and chat_template.jinja / chat_template.json when present.
   */
  static fromDir(dir: string): Tokenizer {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new TokenizerError(`tokenizer directory ${dir} does not exist`);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      if (!fs.existsSync(path.join(dir, f))) throw new TokenizerError(`${f} is missing in ${dir} (a tokenizer needs tokenizer.json and tokenizer_config.json)`);
    }
    const json = readJson(path.join(dir, "tokenizer.json"));
    const config = readJson(path.join(dir, "tokenizer_config.json")) as TokenizerConfig;
    const jinja = path.join(dir, "chat_template.jinja");
    const ctJson = path.join(dir, "chat_template.json");
    if (fs.existsSync(jinja)) config.chat_template = fs.readFileSync(jinja, "utf8");
    else if (fs.existsSync(ctJson) && !config.chat_template) {
      const t = readJson(ctJson)["chat_template"];
      if (typeof t === "string") config.chat_template = t;
    }
    const genPath = path.join(dir, "generation_config.json");
    const gen = fs.existsSync(genPath) ? (readJson(genPath) as GenerationConfigTokens) : {};
    return new Tokenizer(json, config, gen);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** Token strings (byte-level tokens show as their mapped characters, e.g. "Ġworld"). */
  tokenize(text: string, opts: EncodeOptions = {}): string[] {
    return this.hf.tokenize(text, { add_special_tokens: opts.addSpecialTokens ?? true });
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(`decode: token id ${id} is out of range for a vocabulary of ${this.vocabSize}`);
      }
    }
    if (ids.length === 0) return "";
    return this.hf.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | null {
    return this.vocab.get(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.hf.id_to_token(id) ?? null;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Whether the tokenizer has a chat template (named or default). */
  get hasChatTemplate(): boolean {
    return this.templates.size > 0;
  }

  /** The chat template source: `name` picks a named template; "default" otherwise. */
  chatTemplate(name?: string): string {
    if (name !== undefined && this.templates.has(name)) return this.templates.get(name)!;
    const t = this.templates.get("default");
    if (t === undefined) {
      const named = [...this.templates.keys()];
      throw new TokenizerError(
        named.length
          ? `the tokenizer has no default chat template (named templates: ${named.join(", ")})`
          : "the tokenizer has no chat_template (tokenizer_config.json or chat_template.jinja); pass one as chatTemplate",
      );
    }
    return t;
  }

  /** Renders a conversation to the prompt string the model was trained on. */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const source = opts.chatTemplate !== undefined && !this.templates.has(opts.chatTemplate) ? opts.chatTemplate : this.chatTemplate(opts.chatTemplate);
    const msgs = [...messages];
    if (opts.system !== undefined && msgs[0]?.role !== "system") msgs.unshift({ role: "system", content: opts.system });
    let template: Template;
    try {
      template = new Template(source);
    } catch (e) {
      throw new TokenizerError(`chat template does not parse: ${(e as Error).message}`);
    }
    return template.render({
      ...opts.extra,
      messages: msgs,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      ...(opts.tools ? { tools: opts.tools } : {}),
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
      pad_token: this.padToken ?? "",
      unk_token: this.unkToken ?? "",
    });
  }

  /** A detokenizer fed one id at a time that only emits complete UTF-8 text. */
  createDecodeStream(opts: DecodeStreamOptions = {}): DecodeStream {
    return new DecodeStream((ids) => this.decode(ids, { skipSpecialTokens: opts.skipSpecialTokens }), opts);
  }
}
