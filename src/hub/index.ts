/** Hugging Face hub downloads (mirrors via HF_ENDPOINT, Range resume, standard cache or local dir). */
export * from "./HubError.ts";
export * from "./cache.ts";
export * from "./glob.ts";
export * from "./safePath.ts";
export * from "./downloadFile.ts";
export * from "./pull.ts";
export * from "./progressBar.ts";
