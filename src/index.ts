/**
 * graft: pretrain, fine-tune, evaluate and chat with language models in TypeScript.
 *   import { tensor, nn, optim, data, models, peft } from "graft";
 *   const x = tensor.randn([2, 3], { requiresGrad: true });
 */
import "./backend/index.ts";
import "./peft/index.ts";

export * as tensor from "./tensor/index.ts";
export * as backend from "./backend/index.ts";
export * as nn from "./nn/index.ts";
export * as optim from "./optim/index.ts";
export * as data from "./data/index.ts";
export * as formats from "./formats/index.ts";
export * as hub from "./hub/index.ts";
export * as tokenizers from "./tokenizers/index.ts";
export * as models from "./models/index.ts";
export * as quant from "./quant/index.ts";
export * as peft from "./peft/index.ts";
export * as generation from "./generation/index.ts";
export * as train from "./train/index.ts";
export * as report from "./report/index.ts";
export * as serve from "./serve/index.ts";
export * as exporters from "./export/index.ts";
export { Tensor, noGrad } from "./tensor/index.ts";
export { manualSeed, Generator } from "./core/rng.ts";
export { GraftError, ShapeError, DTypeError, AutogradError } from "./core/errors.ts";
export type { DType } from "./core/dtype.ts";
