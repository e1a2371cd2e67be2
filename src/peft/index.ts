/**
 * PEFT methods (one folder each, registered by name on import) and the PEFT adapter layout:
 * importing this file registers lora, qlora, adalora, ia3, prompt-tuning, p-tuning, prefix-tuning
 * and adapter.
 */
export * from "./types.ts";
export * from "./registry.ts";
export * from "./adapterIO.ts";
export { InjectedPeftModel, isAdapterLayer, type AdapterLayer } from "./InjectedPeftModel.ts";
export * from "./lora/index.ts";
export * from "./ia3/index.ts";
export * from "./adapter/index.ts";
export * from "./qlora/index.ts";
export * from "./adalora/index.ts";
export * from "./PromptLearningModel.ts";
export * from "./prompt-tuning/index.ts";
export * from "./p-tuning/index.ts";
export * from "./prefix-tuning/index.ts";
export * from "./AdapterSet.ts";
