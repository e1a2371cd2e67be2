/** Exports: merged HF directories, GGUF models and LoRA adapters, Ollama Modelfiles. */
export * from "./ExportError.ts";
export * from "./exportMerged.ts";
export * from "./exportGguf.ts";
export * from "./exportLoraGguf.ts";
export * from "./ggufTokenizer.ts";
export * from "./modelfile.ts";
export * from "./exportRun.ts";
