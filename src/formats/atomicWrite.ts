/**
 * Atomic file writes: bytes go to a temp file in the same directory, which is fsynced and renamed
 * over the target, so a reader sees the old file or the new one, never half of one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";

/** Writes `path` atomically; `produce` is handed a `write(bytes)` that appends to the temp file. */
export function writeAtomic(file: string, produce: (write: (bytes: Uint8Array) => void) => void): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fd = fs.openSync(tmp, "w");
  let ok = false;
  try {
    produce((bytes) => {
      let done = 0;
      while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
    });
    fs.fsyncSync(fd);
    ok = true;
  } finally {
    fs.closeSync(fd);
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** Writes a whole buffer or string atomically. */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  writeAtomic(file, (write) => write(bytes));
}

/** fsyncs a directory so a rename in it is durable (best effort: not every platform allows it). */
export function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // Directories cannot be opened or fsynced on some platforms; the rename is still atomic.
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}
