/**
 * One file over HTTP into `<dest>.incomplete`, resumed with `Range: bytes=<have>-` after a cut
 * connection or an earlier interrupted run, verified (size, sha256 or git blob sha1, ETag) and
 * renamed into place.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, type Hash } from "node:crypto";
import { HubError } from "./HubError.ts";

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Partial-file path (default `<dest>.incomplete`). */
  partial?: string;
  headers?: Record<string, string>;
  /** Expected size in bytes, when the listing gave one. */
  size?: number;
  /** Expected sha256 of the content (LFS oid). */
  sha256?: string;
  /** Expected git blob sha1 (oid of a non-LFS file). */
  gitOid?: string;
  /** Attempts in all, each resuming from the bytes on disk (default 5). */
  attempts?: number;
  fetch?: typeof fetch;
  /** Called as bytes arrive: total bytes on disk for this file. */
  onBytes?: (done: number, total: number | undefined) => void;
  /** Label for messages (repo path). */
  label?: string;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
  etag: string | null;
  /** Bytes that were already on disk when the download started (resumed from). */
  resumedFrom: number;
}

function hashFile(file: string, hashes: Hash[]): void {
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) for (const h of hashes) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

/** Normalises an ETag header: drops W/ and quotes. */
export function normalizeEtag(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Downloads `url` to `dest` (see module doc); returns what was verified. */
export async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const partial = opts.partial ?? `${opts.dest}.incomplete`;
  const label = opts.label ?? opts.url;
  const attempts = opts.attempts ?? 5;
  const doFetch = opts.fetch ?? fetch;
  fs.mkdirSync(path.dirname(partial), { recursive: true });
  const resumedFrom = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  let etag: string | null = null;
  let lastError: unknown = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const have = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
    if (opts.size !== undefined && have > opts.size) fs.truncateSync(partial, 0);
    const start = opts.size !== undefined && have > opts.size ? 0 : have;
    if (opts.size !== undefined && start === opts.size && start > 0) {
      lastError = null;
      break; // already complete, verify below
    }
    const headers: Record<string, string> = { ...opts.headers };
    if (start > 0) headers["Range"] = `bytes=${start}-`;
    let res: Response;
    try {
      res = await doFetch(opts.url, { headers, redirect: "follow" });
    } catch (e) {
      lastError = e;
      await delay(Math.min(100 * 2 ** attempt, 2000));
      continue;
    }
    if (res.status === 416 && start > 0) {
      await res.body?.cancel();
      lastError = null;
      break; // the server has no bytes past what we hold: verify what is on disk
    }
    if (!res.ok) {
      await res.body?.cancel();
      if (res.status >= 500 || res.status === 429) {
        lastError = new HubError(`${label}: HTTP ${res.status} from ${opts.url}`, res.status);
        await delay(Math.min(200 * 2 ** attempt, 3000));
        continue;
      }
      throw new HubError(`${label}: HTTP ${res.status} ${res.statusText} from ${opts.url}`, res.status);
    }
    etag = normalizeEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag")) ?? etag;
    const append = start > 0 && res.status === 206;
    if (append) {
      const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== start) {
        await res.body?.cancel();
        throw new HubError(`${label}: server answered Range bytes=${start}- with Content-Range "${res.headers.get("content-range")}"`);
      }
    }
    const fd = fs.openSync(partial, append ? "a" : "w");
    let done = append ? start : 0;
    try {
      if (!res.body) throw new HubError(`${label}: empty response body`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        let off = 0;
        while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
        done += chunk.byteLength;
        if (opts.size !== undefined && done > opts.size) throw new HubError(`${label}: server sent more than the ${opts.size} bytes listed`);
        opts.onBytes?.(done, opts.size);
      }
      lastError = null;
    } catch (e) {
      if (e instanceof HubError) throw e;
      lastError = e; // connection cut: the bytes written so far stay, the next attempt resumes
      await delay(Math.min(100 * 2 ** attempt, 2000));
      continue;
    } finally {
      fs.closeSync(fd);
    }
    if (opts.size === undefined || done === opts.size) break;
    lastError = new HubError(`${label}: connection ended at ${done} of ${opts.size} bytes`);
  }
  if (lastError) {
    throw new HubError(`${label}: download failed after ${attempts} attempts (${(lastError as Error).message ?? String(lastError)}); ${fs.existsSync(partial) ? fs.statSync(partial).size : 0} bytes kept in ${partial} for the next run`);
  }
  return verifyAndPlace(opts, partial, etag, resumedFrom, label);
}

function verifyAndPlace(opts: DownloadOptions, partial: string, etag: string | null, resumedFrom: number, label: string): DownloadResult {
  const bytes = fs.statSync(partial).size;
  const fail = (m: string) => {
    fs.rmSync(partial, { force: true });
    return new HubError(`${label}: ${m}; the partial file was deleted`);
  };
  if (opts.size !== undefined && bytes !== opts.size) throw fail(`got ${bytes} bytes, expected ${opts.size}`);
  const sha256 = createHash("sha256");
  const sha1 = createHash("sha1").update(`blob ${bytes}\0`);
  hashFile(partial, [sha256, sha1]);
  const digest = sha256.digest("hex");
  const gitOid = sha1.digest("hex");
  if (opts.sha256 && digest !== opts.sha256.toLowerCase()) throw fail(`sha256 ${digest} does not match ${opts.sha256}`);
  if (opts.gitOid && gitOid !== opts.gitOid.toLowerCase()) throw fail(`git blob sha1 ${gitOid} does not match ${opts.gitOid}`);
  if (!opts.sha256 && !opts.gitOid && etag) {
    // No listing hash: an ETag that is a content hash must match it.
    if (/^[0-9a-f]{64}$/i.test(etag) && etag.toLowerCase() !== digest) throw fail(`sha256 ${digest} does not match ETag ${etag}`);
    if (/^[0-9a-f]{40}$/i.test(etag) && etag.toLowerCase() !== gitOid) throw fail(`git blob sha1 ${gitOid} does not match ETag ${etag}`);
  }
  fs.mkdirSync(path.dirname(opts.dest), { recursive: true });
  fs.renameSync(partial, opts.dest);
  return { bytes, sha256: digest, etag, resumedFrom };
}
