/** A cli-progress bar for pull(): bytes done / total, speed, and the current file. */
import cliProgress from "cli-progress";
import type { PullProgress } from "./pull.ts";

export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Returns an onProgress handler drawing one bar on stderr, and a stop() to call at the end. */
export function pullProgressBar(stream: NodeJS.WriteStream = process.stderr): { onProgress: (e: PullProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: "{bar} {percentage}% | {doneH} / {totalH} | {speed} | {file}",
      hideCursor: true,
      barsize: 30,
      fps: 10,
      noTTYOutput: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let base = 0; // bytes of finished files
  let current = 0;
  let total = 0;
  let started = 0;
  let downloaded = 0; // bytes received this run (for the speed)
  let lastDone = 0;
  const payload = (file: string) => {
    const secs = (Date.now() - started) / 1000;
    return { doneH: formatBytes(base + current), totalH: formatBytes(total), speed: secs > 0 ? `${formatBytes(downloaded / secs)}/s` : "-", file };
  };
  return {
    onProgress(e) {
      if (e.type === "start") {
        total = e.totalBytes;
        started = Date.now();
        bar.start(Math.max(total, 1), 0, payload(""));
      } else if (e.type === "file") {
        current = 0;
        lastDone = 0;
        bar.update(base, payload(e.path));
      } else if (e.type === "bytes") {
        downloaded += Math.max(0, e.done - lastDone);
        lastDone = e.done;
        current = e.done;
        bar.update(base + current, payload(e.path));
      } else {
        base += e.size;
        current = 0;
        bar.update(base, payload(e.path + (e.cached ? " (cached)" : "")));
      }
    },
    stop() {
      bar.stop();
    },
  };
}
