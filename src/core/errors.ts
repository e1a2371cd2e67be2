/** Errors thrown by graft. Messages name the op / file / argument and the offending values. */

export class GraftError extends Error {
  override name = "GraftError";
}

/** A shape, dtype or argument error in a tensor op; the message starts with the op name. */
export class ShapeError extends GraftError {
  override name = "ShapeError";
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
  }
}

export class DTypeError extends GraftError {
  override name = "DTypeError";
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
  }
}

export class AutogradError extends GraftError {
  override name = "AutogradError";
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
  }
}

/** Formats a shape the way errors print it: [2, 3, 4]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
