/**
 * Streaming detokenization: ids arrive one at a time, text leaves only when it is complete. A CJK
 * character or an emoji spans several byte-level tokens, and SentencePiece tokens change their
 * leading space with context, so each step decodes a small window [prefixOffset, end) and emits what
 * it adds over [prefixOffset, readOffset) — unless it ends in U+FFFD (an unfinished UTF-8 sequence).
 * The algorithm of text-generation-inference and tokenizers' DecodeStream.
 */

export interface DecodeStreamOptions {
  skipSpecialTokens?: boolean;
  /**
   * Ids already shown to the user (e.g. the end of the prompt): they give the first new token its
   * context (a leading space) and are never emitted.
   */
  prefixIds?: readonly number[];
}

const REPLACEMENT = "\uFFFD";

export class DecodeStream {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  constructor(
    private readonly decodeFn: (ids: number[]) => string,
    opts: DecodeStreamOptions = {},
  ) {
    this.ids = [...(opts.prefixIds ?? [])];
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
  }

  /** Adds one id; returns the text it completes ("" while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decodeFn(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decodeFn(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith(REPLACEMENT)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return "";
  }

  /** Everything not yet emitted, even if it ends in an incomplete character (shown as U+FFFD). */
  flush(): string {
    if (this.readOffset === this.ids.length) return "";
    const prefix = this.decodeFn(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decodeFn(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return full.startsWith(prefix) ? full.slice(prefix.length) : full;
  }

  /** All ids pushed so far (prefix ids included). */
  get tokenIds(): readonly number[] {
    return this.ids;
  }
}
