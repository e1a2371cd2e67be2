/** Registers the "native" backend (the C++ add-on); getBackend("native") throws if the add-on is missing. */
import { registerBackend } from "../registry.ts";
import { NativeBackend } from "./NativeBackend.ts";

registerBackend("native", () => new NativeBackend());

export { NativeBackend };
