/**
 * What the quant-kernel tests share: the add-on, native and reference backends, the kernel sets of
 * native/quant_*.cpp the add-on has, and a skip for an add-on built before them.
 */
import { loadAddon } from "../../src/backend/native/addon.ts";
import { NativeBackend } from "../../src/backend/native/NativeBackend.ts";
import { ReferenceBackend } from "../../src/backend/reference/ReferenceBackend.ts";

export const addon = loadAddon();
export const native = new NativeBackend(addon);
export const ref = new ReferenceBackend();
const hasQuantKernels = typeof addon["quantInfo"] === "function";
export const kernelSets = hasQuantKernels ? (addon["quantInfo"]!() as { available: string[] }).available : [];
export const needsKernels = { skip: hasQuantKernels ? false : "the add-on lacks native/quant_*.cpp (npm run build:native)" };
