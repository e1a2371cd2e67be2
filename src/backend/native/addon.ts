/** Loads the C++ add-on built by node-gyp (build/Release/graft.node), or GRAFT_NATIVE_PATH. */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GraftError } from "../../core/errors.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Addon = Record<string, (...args: any[]) => any> & {
  info(): { isa: string; threads: number; mallocReuse?: boolean };
  setThreads(n: number): void;
};

let cached: Addon | null = null;

function findAddon(): string {
  const env = process.env["GRAFT_NATIVE_PATH"];
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "build", "Release", "graft.node");
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new GraftError("native backend: build/Release/graft.node not found; run `npm run build:native`");
}

export function loadAddon(): Addon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  cached = require(findAddon()) as Addon;
  return cached;
}
