import { GraftError } from "../core/errors.ts";

/** An export that cannot be written as asked (unsupported model or adapter, bad paths or options). */
export class ExportError extends GraftError {
  override name = "ExportError";
}
