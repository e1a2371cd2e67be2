/**
 * The standard Hugging Face cache layout, shared with the Python tools:
 *   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
 *     models--<org>--<name>/
 *       blobs/<sha256 or git oid>          file contents, stored once
 *       snapshots/<commit>/<path>          relative symlinks into blobs/
 *       refs/<revision>                    the commit a branch or tag pointed to
 */
import * as os from "node:os";
import * as path from "node:path";

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env["HF_HOME"]) return env["HF_HOME"];
  const xdg = env["XDG_CACHE_HOME"] || path.join(os.homedir(), ".cache");
  return path.join(xdg, "huggingface");
}

/** The hub cache root: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env["HF_HUB_CACHE"] || env["HUGGINGFACE_HUB_CACHE"] || path.join(hfHome(env), "hub");
}

/** "org/name" → "models--org--name". */
export function repoFolderName(repo: string, type: "model" | "dataset" | "space" = "model"): string {
  return [`${type}s`, ...repo.split("/")].join("--");
}

export interface RepoCachePaths {
  root: string;
  blobs: string;
  snapshots: string;
  refs: string;
}

export function repoCachePaths(repo: string, cacheDir = hubCacheDir()): RepoCachePaths {
  const root = path.join(cacheDir, repoFolderName(repo));
  return { root, blobs: path.join(root, "blobs"), snapshots: path.join(root, "snapshots"), refs: path.join(root, "refs") };
}

/** The endpoint: HF_ENDPOINT (a mirror) or https://huggingface.co, without a trailing slash. */
export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env["HF_ENDPOINT"] || "https://huggingface.co").replace(/\/+$/, "");
}
