/** Model architectures (one file per HF model_type), the registry, and the causal-LM interface. */
export * from "./types.ts";
export * from "./registry.ts";
export { applyRope, scaledInvFreq, type RopeConfig, type RopeScaling } from "./rope.ts";
export { assignWeights, assignWeightsStreaming, entryToTensor, initWeights, isEmptyWeight, readAll, withEmptyWeights } from "./weights.ts";
export * from "./qwen2.ts";
export * from "./gpt2.ts";
export * from "./bert.ts";
