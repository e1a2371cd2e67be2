/** Registers the pure-TypeScript "reference" backend (always available; the test oracle). */
import { registerBackend } from "../registry.ts";
import { ReferenceBackend } from "./ReferenceBackend.ts";

registerBackend("reference", () => new ReferenceBackend());

export { ReferenceBackend };
