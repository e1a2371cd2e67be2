/** ProgressBar: plain lines off a TTY / in CI, a cli-progress bar on a TTY, rates and formatting. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { ProgressBar, fmtDuration, isInteractive } from "../../src/report/index.ts";

/** A writable that keeps what it is given; isTTY as asked (a TTY also needs columns for cli-progress). */
function sink(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  w.isTTY = isTTY;
  w.columns = 160;
  w.text = () => chunks.join("");
  return w;
}

test("isInteractive: a TTY outside CI", () => {
  assert.equal(isInteractive({ isTTY: true }, {}), true);
  assert.equal(isInteractive({ isTTY: true }, { CI: "true" }), false);
  assert.equal(isInteractive({ isTTY: true }, { CI: "1" }), false);
  assert.equal(isInteractive({ isTTY: true }, { CI: "false" }), true);
  assert.equal(isInteractive({ isTTY: false }, {}), false);
  assert.equal(isInteractive({}, {}), false);
});

test("lines mode (not a TTY): a line every logEvery steps and at the end", () => {
  const out = sink(false);
  const bar = new ProgressBar({ total: 45, label: "train", stream: out, logEvery: 10 });
  assert.equal(bar.mode, "lines");
  for (let step = 1; step <= 45; step++) bar.update(step, { loss: 3 / step, tokens: 512, extra: { lr: 3e-4 } });
  bar.log("eval loss 1.23");
  bar.stop();
  bar.update(46, { loss: 0 });
  const lines = out.text().trimEnd().split("\n");
  assert.deepEqual(
    lines.map((l) => /step (\d+)\/45/.exec(l)?.[1] ?? l),
    ["10", "20", "30", "40", "45", "eval loss 1.23"],
  );
  assert.match(lines[0]!, /^train step 10\/45 \(22%\) \| loss 0\.3000 \| [\d,]+ tok\/s \| elapsed \d+:\d\d \| ETA (\d+:\d\d|\?) \| lr 3\.00e-4$/);
  assert.match(lines[4]!, /\(100%\) .*\| ETA 0:00/);
});

test("bar mode (TTY): cli-progress draws step/total, loss, tokens/s and ETA", () => {
  const out = sink(true);
  const bar = new ProgressBar({ total: 50, label: "train", stream: out, mode: "bar" });
  for (let step = 1; step <= 50; step++) bar.update(step, { loss: 0.5, tokens: 100 });
  bar.log("checkpoint saved");
  bar.stop();
  bar.stop();
  const text = out.text().replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, "");
  assert.match(text, /train \|█+\| 50\/50 \| loss 0\.5000 \| [\d,]+ tok\/s \| \d+:\d\d < 0:00/);
  assert.match(text, /checkpoint saved/);
});

test("off mode prints nothing; rates come from the recent window", async () => {
  const out = sink(false);
  const bar = new ProgressBar({ total: 10, stream: out, mode: "off" });
  bar.update(1, { tokens: 1000 });
  await new Promise((r) => setTimeout(r, 60));
  bar.update(2, { tokens: 1000 });
  const { stepsPerSec, tokensPerSec } = bar.rates();
  assert.ok(stepsPerSec > 0 && stepsPerSec < 100, `steps/s ${stepsPerSec}`);
  assert.ok(Math.abs(tokensPerSec / stepsPerSec - 1000) < 1e-6, "tokens per step is 1000");
  bar.log("hidden");
  bar.stop();
  assert.equal(out.text(), "");
});

test("fmtDuration", () => {
  assert.equal(fmtDuration(0), "0:00");
  assert.equal(fmtDuration(59.6), "1:00");
  assert.equal(fmtDuration(3725), "1:02:05");
  assert.equal(fmtDuration(NaN), "?");
  assert.throws(() => new ProgressBar({ total: -1 }), /total must be a non-negative integer/);
});
