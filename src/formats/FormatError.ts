/** Named errors of the file-format layer. Each message starts with the file and names the key. */
import { GraftError } from "../core/errors.ts";

/** Base class of every format error: `<file>: <what went wrong>`. */
export class FormatError extends GraftError {
  override name = "FormatError";
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.file = file;
  }
}

export class SafetensorsError extends FormatError {
  override name = "SafetensorsError";
}

export class GgufError extends FormatError {
  override name = "GgufError";
}

export class TorchPickleError extends FormatError {
  override name = "TorchPickleError";
}

/** A pickle asked for a Python global outside the allowlist; nothing was executed. */
export class UnsafePickleError extends TorchPickleError {
  override name = "UnsafePickleError";
  readonly global: string;
  constructor(file: string, global: string) {
    super(file, `refusing to load global "${global}": it is not on the allowlist of torch state-dict globals (nothing was executed)`);
    this.global = global;
  }
}

export class ZipError extends FormatError {
  override name = "ZipError";
}

export class CheckpointError extends FormatError {
  override name = "CheckpointError";
}
