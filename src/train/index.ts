/** train: the trainer, its losses, SFT / pretraining recipes, evaluation and metrics. */
export * from "./types.ts";
export * from "./losses.ts";
export * from "./train.ts";
export * from "./presets.ts";
export * from "./modelFiles.ts";
export * from "./pretrainModel.ts";
export * from "./finetune.ts";
export * from "./evaluate.ts";
export * from "./metrics/segment.ts";
export * from "./metrics/bleu.ts";
export * from "./metrics/rouge.ts";
export * from "./metrics/table.ts";
