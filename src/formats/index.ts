/** File formats: safetensors, GGUF, torch .bin/.pth, training checkpoints. Imports only core/. */
import * as fs from "node:fs";
import { FormatError } from "./FormatError.ts";
import { GgufFile } from "./gguf.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { openSafetensorsModel } from "./safetensorsIndex.ts";
import { TorchFile } from "./torchPickle.ts";
import type { TensorReader } from "./tensorData.ts";

export * from "./FormatError.ts";
export * from "./tensorData.ts";
export * from "./ByteSource.ts";
export * from "./atomicWrite.ts";
export * from "./safetensors.ts";
export * from "./safetensorsIndex.ts";
export * from "./gguf.ts";
export * from "./ggufWriter.ts";
export * from "./ggmlQuant.ts";
export * from "./torchPickle.ts";
export * from "./zipReader.ts";
export * from "./checkpoint.ts";

/**
 * Opens any tensor file graft reads, by content: a model directory or safetensors index, safetensors,
 * GGUF ("GGUF" magic) or a torch.save zip ("PK" magic).
 */
export function openTensorFile(p: string): TensorReader {
  if (fs.statSync(p).isDirectory() || p.endsWith(".json")) return openSafetensorsModel(p);
  const fd = fs.openSync(p, "r");
  const head = new Uint8Array(4);
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  const magic = String.fromCharCode(...head);
  if (magic === "GGUF") return GgufFile.open(p);
  if (magic.startsWith("PK")) return TorchFile.open(p);
  if (p.endsWith(".safetensors")) return SafetensorsFile.open(p);
  if (p.endsWith(".bin") || p.endsWith(".pth") || p.endsWith(".pt")) return TorchFile.open(p);
  throw new FormatError(p, "unknown tensor file format (expected safetensors, GGUF or a torch.save zip)");
}
