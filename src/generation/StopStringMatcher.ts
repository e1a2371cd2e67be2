/**
 * Stop strings over streamed text: text is released only once it can no longer be the start of a
 * stop string, and generation stops at the first complete match (the stop string is not emitted).
 */
export class StopStringMatcher {
  private readonly stops: string[];
  private pending = "";
  private stoppedAt: string | null = null;

  constructor(stopStrings: readonly string[]) {
    this.stops = stopStrings.filter((s) => s.length > 0);
  }

  /** The stop string that matched, once one has. */
  get matched(): string | null {
    return this.stoppedAt;
  }

  /** Feeds newly decoded text; returns the text that is safe to emit and whether a stop string completed. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stoppedAt !== null) return { text: "", stopped: true };
    const buf = this.pending + text;
    if (this.stops.length === 0) return { text: buf, stopped: false };
    let cut = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        this.stoppedAt = s;
      }
    }
    if (cut >= 0) {
      this.pending = "";
      return { text: buf.slice(0, cut), stopped: true };
    }
    const hold = this.heldSuffixLength(buf);
    this.pending = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /** Releases the text held back as a possible stop-string prefix (at the end of generation). */
  flush(): string {
    const out = this.pending;
    this.pending = "";
    return out;
  }

  /** Length of the longest suffix of buf that is a proper prefix of some stop string. */
  private heldSuffixLength(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
