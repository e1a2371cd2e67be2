/** Server-given repo paths are untrusted: they must stay inside the directory they are written to. */
import * as path from "node:path";
import { UnsafePathError } from "./HubError.ts";

/** Validates a relative repo path ("a/b.json"); throws UnsafePathError naming it otherwise. */
export function checkRepoPath(p: unknown): string {
  const bad = (why: string) => new UnsafePathError(`refusing file path ${JSON.stringify(p)} from the server: ${why}`);
  if (typeof p !== "string" || p.length === 0) throw bad("empty or not a string");
  if (p.length > 1024) throw bad("longer than 1024 characters");
  if (p.includes("\0")) throw bad("contains a NUL byte");
  if (p.includes("\\")) throw bad("contains a backslash");
  if (p.startsWith("/") || /^[A-Za-z]:/.test(p)) throw bad("is absolute");
  if (/[\x00-\x1f\x7f]/.test(p)) throw bad("contains control characters");
  for (const seg of p.split("/")) {
    if (seg === "" || seg === "." || seg === "..") throw bad(`has a "${seg || "(empty)"}" segment`);
  }
  return p;
}

/** Joins a checked repo path under root and verifies the result is still inside root. */
export function safeJoin(root: string, p: string): string {
  checkRepoPath(p);
  const base = path.resolve(root);
  const full = path.resolve(base, p);
  const rel = path.relative(base, full);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) {
    throw new UnsafePathError(`refusing file path ${JSON.stringify(p)} from the server: resolves outside ${base}`);
  }
  return full;
}
