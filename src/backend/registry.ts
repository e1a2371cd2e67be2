/** Backends are looked up by name. "native" is the default when the add-on loads; "reference" always works. */
import { GraftError } from "../core/errors.ts";
import type { Backend } from "./Backend.ts";

const backends = new Map<string, () => Backend>();
const instances = new Map<string, Backend>();
let defaultName: string | null = null;

export function registerBackend(name: string, factory: () => Backend): void {
  backends.set(name, factory);
  instances.delete(name);
}

export function getBackend(name?: string): Backend {
  const key = name ?? defaultBackendName();
  let b = instances.get(key);
  if (b) return b;
  const factory = backends.get(key);
  if (!factory) throw new GraftError(`getBackend: unknown backend "${key}" (have: ${[...backends.keys()].join(", ")})`);
  b = factory();
  instances.set(key, b);
  return b;
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

/** Sets the backend new tensors run on (also settable with GRAFT_BACKEND=reference|native). */
export function setDefaultBackend(name: string): void {
  getBackend(name);
  defaultName = name;
}

export function defaultBackendName(): string {
  if (defaultName) return defaultName;
  const env = process.env["GRAFT_BACKEND"];
  if (env) {
    defaultName = env;
    return env;
  }
  try {
    getBackend("native");
    defaultName = "native";
  } catch {
    defaultName = "reference";
  }
  return defaultName;
}
