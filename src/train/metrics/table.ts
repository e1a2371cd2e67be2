/** The comparison table of `graft eval`: one row per model, losses and generation metrics. */
export interface MetricRow {
  name: string;
  valLoss: number;
  perplexity: number;
  /** BLEU-4 (0-100) and ROUGE F1 (0-1). */
  bleu4?: number;
  rouge1?: number;
  rouge2?: number;
  rougeL?: number;
  samples?: number;
}

/** A Markdown table; ROUGE shown ×100 like BLEU. */
export function formatMetricTable(rows: readonly MetricRow[]): string {
  const head = ["model", "val loss", "perplexity", "BLEU-4", "ROUGE-1", "ROUGE-2", "ROUGE-L"];
  const f = (v: number | undefined, d: number) => (v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(d));
  const body = rows.map((r) => [r.name, f(r.valLoss, 4), f(r.perplexity, 2), f(r.bleu4, 2), f(r.rouge1 === undefined ? undefined : 100 * r.rouge1, 2), f(r.rouge2 === undefined ? undefined : 100 * r.rouge2, 2), f(r.rougeL === undefined ? undefined : 100 * r.rougeL, 2)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  return [line(head), `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|")}|`, ...body.map(line)].join("\n");
}
