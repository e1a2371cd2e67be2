import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StopStringMatcher } from "../../src/generation/index.ts";

describe("StopStringMatcher", () => {
  const feed = (stops: string[], pieces: string[]) => {
    const m = new StopStringMatcher(stops);
    const out: string[] = [];
    let stopped = false;
    for (const p of pieces) {
      const r = m.push(p);
      out.push(r.text);
      if (r.stopped) {
        stopped = true;
        break;
      }
    }
    if (!stopped) out.push(m.flush());
    return { out, stopped, matched: m.matched };
  };

  it("passes text through without stop strings", () => {
    assert.deepEqual(feed([], ["a", "b"]).out, ["a", "b", ""]);
  });

  it("holds back a possible stop-string prefix until it is decided", () => {
    const r = feed(["</s>"], ["ab<", "/x", "y"]);
    assert.deepEqual(r.out, ["ab", "</x", "y", ""]);
    assert.equal(r.stopped, false);
  });

  it("stops at a match across pieces and drops the stop string and what follows", () => {
    const r = feed(["</s>", "STOP"], ["hi <", "/", "s>tail"]);
    assert.deepEqual(r.out, ["hi ", "", ""]);
    assert.equal(r.stopped, true);
    assert.equal(r.matched, "</s>");
  });

  it("picks the earliest of several matches", () => {
    const r = feed(["bc", "ab"], ["xabc"]);
    assert.deepEqual(r.out, ["x"]);
    assert.equal(r.matched, "ab");
  });

  it("ignores empty stop strings", () => {
    assert.deepEqual(feed([""], ["a"]).out, ["a", ""]);
  });
});
