/** data: datasets, the DataLoader, file readers, and the SFT / pretraining dataset builders. */
export * from "./Dataset.ts";
export * from "./DataLoader.ts";
export * from "./batches.ts";
export * from "./readers/index.ts";
export * from "./sft.ts";
export * from "./pretrain.ts";
export * from "./prepare.ts";
export * from "./byteTokenizer.ts";
