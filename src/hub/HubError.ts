/** Errors of the hub client: the message names the repo, file or URL involved. */
import { GraftError } from "../core/errors.ts";

export class HubError extends GraftError {
  override name = "HubError";
  /** HTTP status when the error came from a response. */
  readonly status?: number;
  constructor(message: string, status?: number) {
    super(message);
    if (status !== undefined) this.status = status;
  }
}

/** A file path from the server that would land outside the target directory. */
export class UnsafePathError extends HubError {
  override name = "UnsafePathError";
}
