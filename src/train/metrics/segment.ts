/**
 * Text → tokens for the generation metrics. "char" (default) splits CJK text into single characters
 * and keeps runs of letters/digits as words, every other non-space character (punctuation) being a
 * token of its own — the usual character-level scoring of Chinese (as sacrebleu's "zh" tokenizer
 * does for CJK). "whitespace" splits on whitespace only (for pre-segmented text, e.g. jieba output).
 */
export type Segmentation = "char" | "whitespace";

const WORD = /[\p{L}\p{N}]/u;
/** Han, Hiragana, Katakana, Hangul and CJK punctuation/fullwidth forms: one token per character. */
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3000-\u303f\uff00-\uffef]/u;

export function segment(text: string, mode: Segmentation = "char"): string[] {
  if (mode === "whitespace") return text.split(/\s+/u).filter((t) => t.length > 0);
  const out: string[] = [];
  let word = "";
  for (const ch of text) {
    if (!CJK.test(ch) && WORD.test(ch)) {
      word += ch;
      continue;
    }
    if (word) {
      out.push(word);
      word = "";
    }
    if (!/\s/u.test(ch)) out.push(ch);
  }
  if (word) out.push(word);
  return out;
}

/** Counts of the n-grams of a token list, keyed by the tokens joined with U+0001. */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const k = tokens.slice(i, i + n).join("\u0001");
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}
