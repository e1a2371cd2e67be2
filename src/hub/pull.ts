/**
 * `pull`: downloads a model repo (or the files matching include/exclude globs) from the Hugging Face
 * hub or a mirror (HF_ENDPOINT) into the standard cache or a plain local directory. Listing goes
 * through `@huggingface/hub`; file GETs are ours so an interrupted file resumes with a Range request.
 * Every server-given path is checked to stay inside the target directory before anything is written.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { listFiles, modelInfo, type ListFileEntry } from "@huggingface/hub";
import { HubError } from "./HubError.ts";
import { hfHome, hubCacheDir, hubEndpoint, repoCachePaths } from "./cache.ts";
import { downloadFile } from "./downloadFile.ts";
import { pathFilter } from "./glob.ts";
import { checkRepoPath, safeJoin } from "./safePath.ts";

export interface PullOptions {
  /** "org/name" (or "name"). */
  repo: string;
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Download into this plain directory instead of the cache. */
  localDir?: string;
  /** Cache root (default: HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub). */
  cacheDir?: string;
  include?: string[];
  exclude?: string[];
  /** Access token (default: HF_TOKEN, then $HF_HOME/token). */
  token?: string;
  /** Endpoint (default: HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  fetch?: typeof fetch;
  /** Attempts per file, each resuming from the bytes on disk (default 5). */
  attempts?: number;
  onProgress?: (event: PullProgress) => void;
}

export type PullProgress =
  | { type: "start"; files: number; totalBytes: number; cachedBytes: number }
  | { type: "file"; path: string; size: number }
  | { type: "bytes"; path: string; done: number; total: number | undefined }
  | { type: "fileDone"; path: string; size: number; cached: boolean };

export interface PulledFile {
  path: string;
  size: number;
  /** Where the file is (snapshot path in cache mode). */
  localPath: string;
  /** True when it was already present and nothing was downloaded. */
  cached: boolean;
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot directory (cache mode) or the local directory. */
  dir: string;
  files: PulledFile[];
}

const REPO_RE = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

export function resolveToken(explicit?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit) return explicit;
  if (env["HF_TOKEN"]) return env["HF_TOKEN"];
  const file = env["HF_TOKEN_PATH"] || path.join(hfHome(env), "token");
  try {
    return fs.readFileSync(file, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

function encodePath(p: string): string {
  return p.split("/").map(encodeURIComponent).join("/");
}

interface LocalDirMeta {
  commit: string;
  etag: string;
}

/** Downloads a repo snapshot; see PullOptions. Resolves to what is on disk. */
export async function pull(opts: PullOptions): Promise<PullResult> {
  const repo = opts.repo;
  if (!REPO_RE.test(repo) || repo.includes("..")) throw new HubError(`"${repo}" is not a valid repo id (expected "org/name")`);
  const revision = opts.revision ?? "main";
  if (!revision || revision.includes("..") || /[\0\\]/.test(revision)) throw new HubError(`"${revision}" is not a valid revision`);
  const endpoint = (opts.endpoint ?? hubEndpoint()).replace(/\/+$/, "");
  const token = resolveToken(opts.token);
  const baseFetch = opts.fetch ?? fetch;
  const authHeaders: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  // The hub library only accepts "hf_" tokens; mirrors may issue others, so auth goes in via fetch.
  const authedFetch: typeof fetch = (input, init) => baseFetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...authHeaders } });

  const apiError = (e: unknown, what: string): HubError => {
    const status = (e as { statusCode?: number }).statusCode;
    if (status === 404) return new HubError(`repository "${repo}" (revision "${revision}") not found at ${endpoint}`, 404);
    if (status === 401 || status === 403) return new HubError(`repository "${repo}" at ${endpoint}: access denied (HTTP ${status}); pass --token or set HF_TOKEN for private or gated repos`, status);
    return new HubError(`repository "${repo}" at ${endpoint}: ${what} failed: ${(e as Error).message ?? String(e)}`, status);
  };

  let commit: string;
  try {
    const info = await modelInfo({ name: repo, revision, hubUrl: endpoint, additionalFields: ["sha"], fetch: authedFetch });
    commit = (info as { sha?: string }).sha ?? "";
  } catch (e) {
    throw apiError(e, "looking up the revision");
  }
  if (!/^[0-9a-f]{40}$/i.test(commit)) throw new HubError(`repository "${repo}": the server gave no valid commit for revision "${revision}" (got ${JSON.stringify(commit)})`);

  const entries: ListFileEntry[] = [];
  try {
    for await (const e of listFiles({ repo: { type: "model", name: repo }, revision: commit, recursive: true, hubUrl: endpoint, fetch: authedFetch })) {
      if (e.type === "file") entries.push(e);
    }
  } catch (e) {
    throw apiError(e, "listing files");
  }
  // Check every path before writing anything.
  for (const e of entries) checkRepoPath(e.path);
  const keep = pathFilter(opts.include, opts.exclude);
  const selected = entries.filter((e) => keep(e.path));
  if (selected.length === 0) throw new HubError(`repository "${repo}" (revision "${revision}"): no files match the include/exclude patterns`);

  const local = opts.localDir !== undefined;
  const cache = repoCachePaths(repo, opts.cacheDir ?? hubCacheDir());
  const dir = local ? path.resolve(opts.localDir!) : path.join(cache.snapshots, commit);
  const plan = selected.map((e) => {
    const target = safeJoin(dir, e.path);
    const sha256 = e.lfs?.oid;
    const blobName = sha256 ?? e.oid ?? null;
    if (blobName !== null && !/^[0-9a-f]{40}([0-9a-f]{24})?$/i.test(blobName)) throw new HubError(`${e.path}: the server gave an invalid oid ${JSON.stringify(blobName)}`);
    const size = e.lfs?.size ?? e.size;
    const metaFile = local ? safeJoin(path.join(dir, ".cache", "huggingface", "download"), `${e.path}.metadata`) : null;
    const etag = blobName ?? "";
    const cached = local ? localDirHas(target, metaFile!, commit, etag, size) : fs.existsSync(target) && fs.statSync(target).size === size;
    return { e, target, sha256, blobName, size, metaFile, cached };
  });

  opts.onProgress?.({
    type: "start",
    files: plan.length,
    totalBytes: plan.reduce((s, p) => s + p.size, 0),
    cachedBytes: plan.filter((p) => p.cached).reduce((s, p) => s + p.size, 0),
  });

  const files: PulledFile[] = [];
  for (const p of plan) {
    const { e, target } = p;
    if (p.cached) {
      files.push({ path: e.path, size: p.size, localPath: target, cached: true });
      opts.onProgress?.({ type: "fileDone", path: e.path, size: p.size, cached: true });
      continue;
    }
    opts.onProgress?.({ type: "file", path: e.path, size: p.size });
    const url = `${endpoint}/${repo}/resolve/${commit}/${encodePath(e.path)}`;
    const common = {
      url,
      headers: authHeaders,
      size: p.size,
      ...(p.sha256 ? { sha256: p.sha256 } : e.oid ? { gitOid: e.oid } : {}),
      ...(opts.attempts !== undefined ? { attempts: opts.attempts } : {}),
      fetch: baseFetch,
      label: `${repo}/${e.path}`,
      onBytes: (done: number, total: number | undefined) => opts.onProgress?.({ type: "bytes", path: e.path, done, total }),
    };
    let cached = false;
    if (local) {
      const partial = safeJoin(path.join(dir, ".cache", "huggingface", "download"), `${e.path}.incomplete`);
      const res = await downloadFile({ ...common, dest: target, partial });
      writeLocalMeta(p.metaFile!, { commit, etag: p.blobName ?? res.sha256 });
    } else {
      const blobName = p.blobName;
      let blob: string;
      if (blobName && fs.existsSync(path.join(cache.blobs, blobName)) && fs.statSync(path.join(cache.blobs, blobName)).size === p.size) {
        blob = path.join(cache.blobs, blobName); // same content in another snapshot
        cached = true;
      } else {
        const name = blobName ?? `sha256-pending-${e.path.replace(/\//g, "_")}`;
        blob = path.join(cache.blobs, name);
        const res = await downloadFile({ ...common, dest: blob, partial: `${blob}.incomplete` });
        if (!blobName) {
          const final = path.join(cache.blobs, res.sha256);
          fs.renameSync(blob, final);
          blob = final;
        }
      }
      linkIntoSnapshot(blob, target);
    }
    files.push({ path: e.path, size: p.size, localPath: target, cached });
    opts.onProgress?.({ type: "fileDone", path: e.path, size: p.size, cached });
  }

  if (!local && revision !== commit) {
    fs.mkdirSync(cache.refs, { recursive: true });
    const ref = safeJoin(cache.refs, revision);
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    fs.writeFileSync(ref, commit);
  }
  return { repo, revision, commit, dir, files };
}

/** Snapshot entry → relative symlink into blobs/ (a copy where symlinks are not allowed). */
function linkIntoSnapshot(blob: string, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.rmSync(target, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(target), blob), target);
  } catch {
    fs.copyFileSync(blob, target);
  }
}

function localDirHas(target: string, metaFile: string, commit: string, etag: string, size: number): boolean {
  if (!fs.existsSync(target) || fs.statSync(target).size !== size || !fs.existsSync(metaFile)) return false;
  const meta = readLocalMeta(metaFile);
  return meta !== null && (meta.etag === etag || meta.commit === commit);
}

/** huggingface_hub's local-dir metadata: commit, etag and timestamp on three lines. */
function readLocalMeta(file: string): LocalDirMeta | null {
  try {
    const [commit, etag] = fs.readFileSync(file, "utf8").split("\n");
    return commit && etag ? { commit, etag } : null;
  } catch {
    return null;
  }
}

function writeLocalMeta(file: string, meta: LocalDirMeta): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${meta.commit}\n${meta.etag}\n${Date.now() / 1000}\n`);
}
