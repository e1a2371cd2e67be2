/**
 * graft: pretrain, fine-tune, evaluate and chat with language models in TypeScript.
 *   import { tensor, backend } from "graft";
 *   const x = tensor.randn([2, 3], { requiresGrad: true });
 */
import "./backend/index.ts";

export * as tensor from "./tensor/index.ts";
export * as backend from "./backend/index.ts";
export { Tensor, noGrad } from "./tensor/index.ts";
export { manualSeed, Generator } from "./core/rng.ts";
export { GraftError, ShapeError, DTypeError, AutogradError } from "./core/errors.ts";
export type { DType } from "./core/dtype.ts";
