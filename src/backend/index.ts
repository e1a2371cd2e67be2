/** Registers the built-in backends. "native" falls back to "reference" when the add-on is missing. */
import "./reference/index.ts";
import "./native/index.ts";

export type { Backend, View, UnaryOp, BinaryOp, ReduceOp, GemmArgs, AttentionArgs, RopeArgs, AdamWArgs } from "./Backend.ts";
export { getBackend, setDefaultBackend, defaultBackendName, listBackends, registerBackend } from "./registry.ts";
