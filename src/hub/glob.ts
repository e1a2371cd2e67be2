/**
 * Glob patterns for --include / --exclude, matched against repo paths ("a/b/c.json"):
 * `*` any run of characters except "/", `**` any run including "/" (and `** /` zero or more
 * directories), `?` one character except "/", `[abc]` / `[!abc]` classes, `{a,b}` alternatives.
 * A pattern without "/" also matches the file name in any directory ("*.json" matches "x/y.json"),
 * as huggingface-cli does.
 */

function escape(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function translate(glob: string): string {
  let re = "";
  let depth = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = glob.slice(i + 1, end);
        const negate = body.startsWith("!") || body.startsWith("^");
        if (negate) body = body.slice(1);
        re += `[${negate ? "^" : ""}${body.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (c === "{") {
      depth++;
      re += "(?:";
    } else if (c === "}" && depth > 0) {
      depth--;
      re += ")";
    } else if (c === "," && depth > 0) re += "|";
    else re += escape(c);
  }
  while (depth-- > 0) re += ")";
  return re;
}

/** Compiles a glob to an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = translate(glob.replace(/^\.\//, ""));
  return glob.includes("/") ? new RegExp(`^${body}$`) : new RegExp(`^(?:.*/)?${body}$`);
}

/** Whether a repo path passes include (empty = everything) and exclude lists. */
export function pathFilter(include: readonly string[] = [], exclude: readonly string[] = []): (p: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (p) => (inc.length === 0 || inc.some((r) => r.test(p))) && !exc.some((r) => r.test(p));
}
