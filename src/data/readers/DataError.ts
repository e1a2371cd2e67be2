/** The error readers throw for malformed input; the message starts with `file:line:` when a line is known. */
import { GraftError } from "../../core/errors.ts";

export class DataError extends GraftError {
  override name = "DataError";
  /** The file (as given to the reader) and the 1-based line, when known. */
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(file: string | undefined, line: number | undefined, message: string) {
    const where = file === undefined ? "" : line === undefined ? `${file}: ` : `${file}:${line}: `;
    super(where + message);
    this.file = file;
    this.line = line;
  }
}
